"""Notices (通知公告): drafting, review on the work-item engine, publication to the cadres of
chosen unions, reads, receipts, 催办 and recall."""

from wxbackend.services.office.notices.rules import NOTICE
from wxbackend.services.office.notices.service import OfficeNotices

__all__ = ["NOTICE", "OfficeNotices"]
