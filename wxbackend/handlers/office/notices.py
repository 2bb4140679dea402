"""Notices (通知公告) in the cadre console: drafting, the review desk, publication figures,
催办 and 撤回 for cadres holding ``notice.publish`` (``/admin/v1/notices``), and every cadre's
inbox and receipts (``/admin/v1/me/notices``)."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.office.notices import OfficeNotices


class NoticeHandler(AdminHandler):
    def initialize(self, cadres: CadreService, notices: OfficeNotices) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.notices = notices

    def page(self, default: int) -> tuple[int, int]:
        return self.int_argument("limit", default) or default, self.int_argument("offset", 0) or 0


class NoticesHandler(NoticeHandler):
    route = "/admin/v1/notices"

    async def get(self) -> None:
        limit, offset = self.page(50)
        self.write_json(await self.notices.notices(
            self.actor, status=self.get_query_argument("status", "") or None, limit=limit, offset=offset))

    async def post(self) -> None:
        self.write_json({"notice": await self.notices.create(self.actor, self.json_body(131_072))}, 201)


class OneNoticeHandler(NoticeHandler):
    route = "/admin/v1/notices/{id}"

    async def get(self, notice_id: str) -> None:
        self.write_json({"notice": await self.notices.notice(self.actor, int(notice_id))})

    async def put(self, notice_id: str) -> None:
        self.write_json({"notice": await self.notices.update(self.actor, int(notice_id),
                                                             self.json_body(131_072))})


class SubmitHandler(NoticeHandler):
    route = "/admin/v1/notices/{id}/submit"

    async def post(self, notice_id: str) -> None:
        self.write_json({"notice": await self.notices.submit(self.actor, int(notice_id))})


class ReviewHandler(NoticeHandler):
    route = "/admin/v1/notices/{id}/review"

    async def post(self, notice_id: str) -> None:
        self.write_json({"result": await self.notices.review(self.actor, int(notice_id), self.json_body())})


class ReceiptHandler(NoticeHandler):
    route = "/admin/v1/notices/{id}/receipt"

    async def post(self, notice_id: str) -> None:
        self.write_json({"notice": await self.notices.answer(self.actor, int(notice_id),
                                                             self.json_body(65_536))})


class StatsHandler(NoticeHandler):
    route = "/admin/v1/notices/{id}/stats"

    async def get(self, notice_id: str) -> None:
        self.write_json(await self.notices.stats(self.actor, int(notice_id), self.int_argument("org_id")))


class RecipientsHandler(NoticeHandler):
    route = "/admin/v1/notices/{id}/recipients"

    async def get(self, notice_id: str) -> None:
        limit, offset = self.page(200)
        self.write_json(await self.notices.recipients(
            self.actor, int(notice_id), org_id=self.int_argument("org_id"),
            state=self.get_query_argument("state", "unread"), limit=limit, offset=offset))


class UrgeHandler(NoticeHandler):
    route = "/admin/v1/notices/{id}/urge"

    async def post(self, notice_id: str) -> None:
        self.write_json({"urged": await self.notices.urge(self.actor, int(notice_id), self.json_body())})


class RecallHandler(NoticeHandler):
    route = "/admin/v1/notices/{id}/recall"

    async def post(self, notice_id: str) -> None:
        self.write_json({"notice": await self.notices.recall(self.actor, int(notice_id), self.json_body())})


class TargetsHandler(NoticeHandler):
    route = "/admin/v1/notice-targets"

    async def get(self) -> None:
        self.write_json(await self.notices.targets_menu(self.actor))


class InboxHandler(NoticeHandler):
    route = "/admin/v1/me/notices"

    async def get(self) -> None:
        limit, offset = self.page(50)
        self.write_json(await self.notices.inbox(
            self.actor, unread=self.get_query_argument("unread", "") in ("1", "true"),
            limit=limit, offset=offset))


def routes(cadres: CadreService, notices: OfficeNotices) -> list:
    return route_table((NoticesHandler, OneNoticeHandler, SubmitHandler, ReviewHandler,
                        ReceiptHandler, StatsHandler, RecipientsHandler, UrgeHandler, RecallHandler,
                        TargetsHandler, InboxHandler),
                       {"cadres": cadres, "notices": notices})
