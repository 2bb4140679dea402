"""Documents (公文流转): outgoing (发文) and incoming (收文) documents on the work-item engine."""

from wxbackend.services.office.documents.desk import Documents
from wxbackend.services.office.documents.incoming import INCOMING
from wxbackend.services.office.documents.outgoing import OUTGOING

__all__ = ["INCOMING", "OUTGOING", "Documents"]
