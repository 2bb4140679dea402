"""The reader's pages, rendered on the server so that a shared article opens at once: an
article (``/h5/a/<id>``), a channel (``/h5/c/<slug>``), every channel and search.

An article page carries its revision's ETag: a phone that has it gets a 304 without the page
being rendered again, and a page is rendered once per revision per process. Views are counted
after the answer, in memory (:class:`wxbackend.services.channels.visits.VisitCounter`).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from pathlib import Path

import tornado.escape
import tornado.template
import tornado.web

from wxbackend.handlers.base import BaseHandler
from wxbackend.handlers.static import PAGE_HEADERS
from wxbackend.services.channels.reading import Reading
from wxbackend.services.channels.visits import VisitCounter
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import DomainError

TEMPLATES = tornado.template.Loader(str(Path(__file__).with_name("templates")), autoescape="xhtml_escape")
# Article bodies keep their editors' inline styles (already filtered on the server), may embed
# Tencent Video, and the share card needs WeChat's JS-SDK; nothing else changes from the pages'
# policy: no inline scripts, no other origin.
ARTICLE_CSP = "; ".join((
    "default-src 'self'", "script-src 'self' https://res.wx.qq.com",
    "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "frame-src https://v.qq.com",
    "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'"))
RENDERED_KEPT = 512


def _day(iso: str | None, clock: bool = False) -> str:
    if not iso:
        return ""
    at = datetime.fromisoformat(iso).astimezone(CHINA)
    return at.strftime("%Y-%m-%d %H:%M" if clock else "%Y-%m-%d")


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{max(1, n // 1024)} KB"


class ReaderPage(BaseHandler):
    def initialize(self, reading: Reading, visits: VisitCounter, public_url: str,
                   rendered: OrderedDict[str, bytes]) -> None:
        self.reading = reading
        self.rendered = rendered  # article pages by ETag: the same bytes for every reader
        self.visits = visits
        self.public_url = public_url.rstrip("/")

    def set_default_headers(self) -> None:
        super().set_default_headers()
        for name, value in PAGE_HEADERS:
            self.set_header(name, value)
        self.set_header("Content-Security-Policy", ARTICLE_CSP)

    def page(self, template: str, **values) -> bytes:
        return TEMPLATES.load(template).generate(day=_day, size=_size, public_url=self.public_url,
                                                 url_escape=tornado.escape.url_escape, **values)

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.message if isinstance(exc, DomainError) else (
            "页面不存在" if status_code == 404 else "页面暂时无法打开")
        hint = "文章可能已撤回或地址有误。" if status_code == 404 else "请稍后再试。"
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(self.page("error.html", message=message, hint=hint))


class ArticlePageHandler(ReaderPage):
    route = "/h5/a/{id}"

    async def get(self, article_id: str) -> None:
        page = await self.reading.article(int(article_id))
        etag = f'"{page["etag"]}"'
        self.set_header("ETag", etag)
        # Every open asks again (cheaply): a withdrawal or a new revision shows at once.
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.visits.record(page["id"], page["channel_id"], self.request.remote_ip or "",
                           self.request.headers.get("User-Agent", ""))
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        body = self.rendered.get(page["etag"])
        if body is None:
            body = self.page("article.html", page=page, published=_day(page["published_at"], True))
            self.rendered[page["etag"]] = body
            while len(self.rendered) > RENDERED_KEPT:
                self.rendered.popitem(last=False)
        self.finish(body)

    def compute_etag(self) -> str | None:
        return None  # set above, from the revision; never a hash of the body


class ChannelPageHandler(ReaderPage):
    route = "/h5/c/{slug}"

    async def get(self, slug: str) -> None:
        data = await self.reading.channel(slug, cursor=self.get_query_argument("cursor", "") or None)
        channel = data["channel"]
        self.set_header("Cache-Control", "no-cache")
        more = f"/h5/c/{slug}?cursor={data['next']}" if data["next"] else None
        self.finish(self.page("channel.html", heading=channel["name"], note=channel["org_name"],
                              articles=data["articles"], channels=[], more=more, search=True,
                              query="", channel=slug, empty="频道暂时没有文章",
                              entrance=channel["entrance_url"] if channel["mode"] == "self_built" else None))


class ChannelsPageHandler(ReaderPage):
    route = "/h5/channels"

    async def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")
        self.finish(self.page("channel.html", heading="工会频道", note="省总工会、各市（州）和产业工会",
                              articles=[], channels=await self.reading.channels(), more=None,
                              search=True, query="", channel=None, empty="暂无频道", entrance=None))


class SearchPageHandler(ReaderPage):
    route = "/h5/search"

    async def get(self) -> None:
        query = self.get_query_argument("q", "").strip()
        channel = self.get_query_argument("channel", "") or None
        articles = (await self.reading.search(query, channel=channel))["articles"] if query else []
        self.set_header("Cache-Control", "no-cache")
        self.finish(self.page("channel.html", heading="搜索文章", note=None, articles=articles,
                              channels=[], more=None, search=True, query=query, channel=channel,
                              empty="没有找到相关文章" if query else "输入标题或正文中的字词",
                              entrance=None))


def routes(reading: Reading, visits: VisitCounter, public_url: str) -> list:
    kwargs = {"reading": reading, "visits": visits, "public_url": public_url,
              "rendered": OrderedDict()}
    return [(r"/h5/a/([0-9]{1,12})", ArticlePageHandler, kwargs),
            (r"/h5/c/([a-z0-9-]{1,40})", ChannelPageHandler, kwargs),
            (r"/h5/channels", ChannelsPageHandler, kwargs),
            (r"/h5/search", SearchPageHandler, kwargs)]
