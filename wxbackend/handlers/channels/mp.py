"""``/mp/v1`` (and ``/h5/api/v1``) reading for the Mini Program: channels, their articles,
one article, search.
Public (no sign-in); image and file addresses are absolute, as the Mini Program needs."""

from __future__ import annotations

import re

from wxbackend.handlers.base import BaseHandler, url_pattern
from wxbackend.services.channels.reading import Reading
from wxbackend.services.channels.visits import VisitCounter

_OWN_PATH = re.compile(r'(src|href)="(/media/)')


class MpReadingHandler(BaseHandler):
    def initialize(self, reading: Reading, visits: VisitCounter, public_url: str) -> None:
        self.reading = reading
        self.visits = visits
        self.public_url = public_url.rstrip("/")

    def prepare(self) -> None:
        super().prepare()
        # Lists may be cached a minute on the way; an article is asked for again each time
        # (a withdrawal takes effect at once, and the visit is counted).
        self.set_header("Cache-Control", "public, max-age=60")

    def absolute(self, path: str | None) -> str | None:
        return f"{self.public_url}{path}" if path and path.startswith("/") else path

    def card(self, item: dict) -> dict:
        return {**item, "cover": self.absolute(item["cover"]), "page": self.absolute(item["page"])}


class MpChannelsHandler(MpReadingHandler):
    route = "channels"

    async def get(self) -> None:
        channels = await self.reading.channels()
        self.write_json({"channels": [{**c, "page": self.absolute(c["page"])} for c in channels]})


class MpChannelArticlesHandler(MpReadingHandler):
    route = "channels/{slug}/articles"

    async def get(self, slug: str) -> None:
        data = await self.reading.channel(slug, cursor=self.get_query_argument("cursor", "") or None)
        self.write_json({"channel": {**data["channel"], "page": self.absolute(data["channel"]["page"])},
                         "articles": [self.card(a) for a in data["articles"]], "next": data["next"]})


class MpArticlesHandler(MpReadingHandler):
    route = "articles"

    async def get(self) -> None:
        query = self.get_query_argument("q", "").strip()
        if query:
            data = await self.reading.search(query,
                                             channel=self.get_query_argument("channel", "") or None)
            data["next"] = None
        else:
            data = await self.reading.latest(cursor=self.get_query_argument("cursor", "") or None)
        self.write_json({"articles": [self.card(a) for a in data["articles"]], "next": data["next"]})


class MpArticleHandler(MpReadingHandler):
    route = "articles/{id}"

    async def get(self, article_id: str) -> None:
        page = await self.reading.article(int(article_id))
        self.set_header("Cache-Control", "no-cache")
        self.visits.record(page["id"], page["channel_id"], self.request.remote_ip or "",
                           self.request.headers.get("User-Agent", ""))
        body = _OWN_PATH.sub(lambda m: f'{m.group(1)}="{self.public_url}{m.group(2)}', page["body"])
        self.write_json({"article": {
            **self.card(page), "body": body, "revision": page["revision"],
            "cover_page": self.absolute(page["cover_page"]),
            "attachments": [{**f, "url": self.absolute(f["url"])} for f in page["attachments"]]}})


SLUG = r"([a-z0-9-]{1,40})"
_HANDLERS = (MpChannelsHandler, MpChannelArticlesHandler, MpArticlesHandler, MpArticleHandler)


def routes(reading: Reading, visits: VisitCounter, public_url: str) -> list:
    """The same reading under both transports (the H5 pages' scripts may use it too); a
    handler's ``route`` is relative, and under each prefix becomes its full route and label."""
    kwargs = {"reading": reading, "visits": visits, "public_url": public_url}
    out = []
    for prefix in ("/mp/v1", "/h5/api/v1"):
        for handler in _HANDLERS:
            route = f"{prefix}/{handler.route}"
            pattern = url_pattern(route).replace("{slug}", SLUG)
            out.append((pattern, type(handler.__name__, (handler,), {"route": route}), kwargs))
    return out
