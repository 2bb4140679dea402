"""Every module whose items the engine runs or whose decisions count in the completion rates.
A new module in code is one entry here (and its desk); a module configured by the platform office
(流程改造后上网) is data, put on the engine when it goes live (services/office/business)."""

from __future__ import annotations

from wxbackend.services.casework.appeals import APPEAL
from wxbackend.services.casework.modules import MEMBERSHIP_REVIEWS, Module
from wxbackend.services.casework.proposals import PROPOSAL
from wxbackend.services.office.business.definitions import REQUEST as BUSINESS_REQUEST
from wxbackend.services.office.documents import INCOMING as DOCUMENT_IN
from wxbackend.services.office.documents import OUTGOING as DOCUMENT_OUT
from wxbackend.services.office.info_reports.process import INFO_REPORT
from wxbackend.services.office.meetings.external import MEETING_EXTERNAL
from wxbackend.services.office.meetings.internal import MEETING, MEETING_ACTION
from wxbackend.services.office.notices import NOTICE

MODULES: tuple[Module, ...] = (APPEAL, PROPOSAL, MEMBERSHIP_REVIEWS, BUSINESS_REQUEST, NOTICE,
                               INFO_REPORT, MEETING, MEETING_ACTION, MEETING_EXTERNAL, DOCUMENT_OUT,
                               DOCUMENT_IN)
