"""``/admin/v1`` for membership work: the review queue, decisions, members, member cards and
grassroots unions. Scope and permissions are decided in :mod:`wxbackend.services.membership.reviews`."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.membership.reviews import ReviewService


class ReviewHandler(AdminHandler):
    def initialize(self, cadres: CadreService, reviews: ReviewService) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.reviews = reviews


class ApplicationsHandler(ReviewHandler):
    route = "/admin/v1/applications"

    async def get(self) -> None:
        self.write_json(await self.reviews.queue(
            self.actor, kind=self.get_query_argument("kind", ""),
            status=self.get_query_argument("status", ""),
            overdue=self.get_query_argument("overdue", "") in ("1", "true"),
            before=self.int_argument("before"), limit=self.int_argument("limit", 50)))


class ApplicationHandler(ReviewHandler):
    route = "/admin/v1/applications/{id}"

    async def get(self, application_id: str) -> None:
        self.write_json({"application": await self.reviews.get(self.actor, int(application_id))})


class ApproveHandler(ReviewHandler):
    route = "/admin/v1/applications/{id}/approve"

    async def post(self, application_id: str) -> None:
        self.write_json({"application": await self.reviews.approve(self.actor, int(application_id))})


class RejectHandler(ReviewHandler):
    route = "/admin/v1/applications/{id}/reject"

    async def post(self, application_id: str) -> None:
        reason = str(self.json_body().get("reason", ""))
        self.write_json({"application": await self.reviews.reject(self.actor, int(application_id), reason)})


class MembersHandler(ReviewHandler):
    route = "/admin/v1/members"

    async def get(self) -> None:
        self.write_json({"members": await self.reviews.members(
            self.actor, org_id=self.int_argument("org_id"), name=self.get_query_argument("name", ""),
            before=self.int_argument("before"), limit=self.int_argument("limit", 50))})


class CardCheckHandler(ReviewHandler):
    route = "/admin/v1/cards/verify"

    async def post(self) -> None:
        token = str(self.json_body().get("token", ""))
        self.write_json({"card": await self.reviews.verify_card(self.actor, token)})


class UnionsHandler(ReviewHandler):
    route = "/admin/v1/unions"

    async def post(self) -> None:
        self.write_json({"union": await self.reviews.create_union(self.actor, self.json_body())}, 201)


def routes(cadres: CadreService, reviews: ReviewService) -> list:
    return route_table((ApplicationsHandler, ApplicationHandler, ApproveHandler, RejectHandler,
                        MembersHandler, CardCheckHandler, UnionsHandler),
                       {"cadres": cadres, "reviews": reviews})
