"""``/admin/v1/channels``, ``/admin/v1/articles``: cadres run their channels and write, review
and publish articles (permissions and subtree checked in :mod:`wxbackend.services.channels`)."""

from __future__ import annotations

from datetime import datetime

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.channels.articles import Articles
from wxbackend.services.channels.channels import Channels
from wxbackend.services.channels.oa_publishing import OAPublishing
from wxbackend.services.channels.self_built import STEPS, SelfBuiltChannels
from wxbackend.services.channels.visits import VisitStats
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import InvalidInput


class ChannelAdminHandler(AdminHandler):
    def initialize(self, cadres: CadreService, channels: Channels,  # type: ignore[override]
                   articles: Articles, stats: VisitStats, oa: OAPublishing,
                   self_built: SelfBuiltChannels) -> None:
        super().initialize(cadres)
        self.self_built = self_built
        self.oa = oa
        self.channels = channels
        self.articles = articles
        self.stats = stats


class ChannelsHandler(ChannelAdminHandler):
    route = "/admin/v1/channels"

    async def get(self) -> None:
        self.write_json({"channels": await self.channels.manage_list(self.actor)})


class ChannelHandler(ChannelAdminHandler):
    route = "/admin/v1/channels/{id}"

    async def get(self, channel_id: str) -> None:
        self.write_json({"channel": await self.channels.get(self.actor, int(channel_id))})

    async def patch(self, channel_id: str) -> None:
        self.write_json({"channel": await self.channels.configure(self.actor, int(channel_id),
                                                                  self.json_body())})


class ChannelStatsHandler(ChannelAdminHandler):
    route = "/admin/v1/channels/{id}/stats"

    async def get(self, channel_id: str) -> None:
        self.write_json({"stats": await self.stats.channel_stats(
            self.actor, int(channel_id), days=self.int_argument("days", 30) or 30)})


# Article bodies come pasted from Word: allow them more room than a form (the limits that matter
# are checked on the cleaned HTML).
ARTICLE_BODY_LIMIT = 4 << 20


class ChannelArticlesHandler(ChannelAdminHandler):
    route = "/admin/v1/channels/{id}/articles"

    async def post(self, channel_id: str) -> None:
        self.write_json({"article": await self.articles.create(
            self.actor, int(channel_id), self.json_body(ARTICLE_BODY_LIMIT))}, 201)


class ArticlesHandler(ChannelAdminHandler):
    route = "/admin/v1/articles"

    async def get(self) -> None:
        self.write_json({"articles": await self.articles.manage_list(
            self.actor, channel_id=self.int_argument("channel"),
            stage=self.get_query_argument("stage", "") or None,
            before_id=self.int_argument("before"))})


class ArticleHandler(ChannelAdminHandler):
    route = "/admin/v1/articles/{id}"

    async def get(self, article_id: str) -> None:
        self.write_json({"article": await self.articles.get(self.actor, int(article_id))})

    async def put(self, article_id: str) -> None:
        self.write_json({"article": await self.articles.update(
            self.actor, int(article_id), self.json_body(ARTICLE_BODY_LIMIT))})


class SubmitHandler(ChannelAdminHandler):
    route = "/admin/v1/articles/{id}/submit"

    async def post(self, article_id: str) -> None:
        self.write_json({"article": await self.articles.submit(self.actor, int(article_id))})


class ReviewHandler(ChannelAdminHandler):
    route = "/admin/v1/articles/{id}/review"

    async def post(self, article_id: str) -> None:
        body = self.json_body()
        approve = body.get("approve")
        if not isinstance(approve, bool):
            raise InvalidInput("请选择通过（approve: true）或退回（approve: false）",
                               code="invalid_review")
        self.write_json({"article": await self.articles.review(
            self.actor, int(article_id), approve=approve, reason=body.get("reason", ""))})


def _publish_time(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput("发布时间格式应为 2026-12-01T09:00", code="invalid_time") from None
    return at if at.tzinfo else at.replace(tzinfo=CHINA)


class PublishHandler(ChannelAdminHandler):
    route = "/admin/v1/articles/{id}/publish"

    async def post(self, article_id: str) -> None:
        self.write_json({"article": await self.articles.publish(
            self.actor, int(article_id), at=_publish_time(self.json_body().get("at")))})


class UnscheduleHandler(ChannelAdminHandler):
    route = "/admin/v1/articles/{id}/unschedule"

    async def post(self, article_id: str) -> None:
        self.write_json({"article": await self.articles.unschedule(self.actor, int(article_id))})


class WithdrawHandler(ChannelAdminHandler):
    route = "/admin/v1/articles/{id}/withdraw"

    async def post(self, article_id: str) -> None:
        self.write_json({"article": await self.articles.withdraw(
            self.actor, int(article_id), self.json_body().get("reason", ""))})


class OfficialAccountHandler(ChannelAdminHandler):
    route = "/admin/v1/articles/{id}/oa"

    async def get(self, article_id: str) -> None:
        self.write_json({"publications": await self.oa.of_article(self.actor, int(article_id))})

    async def post(self, article_id: str) -> None:
        mass_send = self.json_body().get("mass_send", False)
        if not isinstance(mass_send, bool):
            raise InvalidInput("mass_send 应为 true 或 false", code="invalid_input")
        self.write_json({"publication": await self.oa.send(self.actor, int(article_id),
                                                           mass_send=mass_send)}, 201)


class ApplyHandler(ChannelAdminHandler):
    route = "/admin/v1/channels/{id}/applications"

    async def post(self, channel_id: str) -> None:
        self.write_json({"application": await self.self_built.apply(
            self.actor, int(channel_id), self.json_body(65_536))}, 201)


class ApplicationsHandler(ChannelAdminHandler):
    route = "/admin/v1/channel-applications"

    async def get(self) -> None:
        self.write_json({"applications": await self.self_built.list(self.actor)})


class ApplicationHandler(ChannelAdminHandler):
    route = "/admin/v1/channel-applications/{id}"

    async def get(self, application_id: str) -> None:
        self.write_json({"application": await self.self_built.get(self.actor, int(application_id))})


class ConformanceHandler(ChannelAdminHandler):
    route = "/admin/v1/channel-applications/{id}/conformance"

    async def post(self, application_id: str) -> None:
        self.write_json({"application": await self.self_built.check(self.actor, int(application_id))})


class DecisionHandler(ChannelAdminHandler):
    route = "/admin/v1/channel-applications/{id}/decisions"

    async def post(self, application_id: str) -> None:
        body = self.json_body()
        step = body.pop("step", None)
        if step not in STEPS:
            raise InvalidInput(f"step 应为 {'、'.join(STEPS)} 之一", code="invalid_step")
        self.write_json({"application": await self.self_built.decide(
            self.actor, int(application_id), step, body)})


def routes(cadres: CadreService, channels: Channels, articles: Articles, stats: VisitStats,
           oa: OAPublishing, self_built: SelfBuiltChannels) -> list:
    return route_table((ChannelsHandler, ChannelHandler, ChannelStatsHandler,
                        ChannelArticlesHandler, ArticlesHandler, ArticleHandler, SubmitHandler,
                        ReviewHandler, PublishHandler, UnscheduleHandler, WithdrawHandler,
                        OfficialAccountHandler, ApplyHandler, ApplicationsHandler,
                        ApplicationHandler, ConformanceHandler, DecisionHandler),
                       {"cadres": cadres, "channels": channels, "articles": articles,
                        "stats": stats, "oa": oa, "self_built": self_built})
