"""What readers see: published articles, channel lists and search, for the H5 pages and the
Mini Program alike. Nothing here needs a signed-in reader.

A hot article is read from PostgreSQL at most once per :data:`CACHE_SECONDS` per process: a
shared article is opened by thousands of phones within minutes, and an edit or a withdrawal
showing a second later is fine. When the copy is due, one request reads the new one while the
others are served the copy a moment old, so a hot page's readers never all queue on the
database together. The process that made the change forgets its copy at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from wxbackend.services.channels.media import media_url
from wxbackend.services.channels.search_terms import query_terms
from wxbackend.services.clock import china_now
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.store.channels import articles as store
from wxbackend.store.channels import channels as channels_store
from wxbackend.store.channels import media as media_store

CACHE_SECONDS = 2.0
CACHE_ENTRIES = 1024
PAGE_SIZE = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def channel_view(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "slug": row["slug"], "name": row["name"], "org_name": row["org_name"],
            "org_kind": row["org_kind"], "mode": row["mode"], "entrance_url": row["entrance_url"],
            "page": f"/h5/c/{row['slug']}"}


def card_view(row: asyncpg.Record) -> dict:
    """An article as a list shows it."""
    cover = row["cover_variants"]
    return {"id": row["id"], "title": row["title"], "summary": row["summary"],
            "author": row["author"], "channel": row["channel_slug"],
            "channel_name": row["channel_name"], "published_at": _iso(row["published_at"]),
            "cover": media_url(cover["thumb"]["key"]) if cover else None,
            "page": f"/h5/a/{row['id']}"}


def _cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value:
        return None
    at, _, last = value.partition("_")
    try:
        return _EPOCH + timedelta(microseconds=int(at)), int(last)
    except (ValueError, OverflowError):
        raise InvalidInput("翻页参数无效", code="invalid_cursor") from None


class Reading:
    def __init__(self, pool: asyncpg.Pool, *, now: Callable[[], datetime] = china_now,
                 tick: Callable[[], float] = time.monotonic) -> None:
        """``tick``: the seconds the cache's age is measured in."""
        self._pool = pool
        self._now = now
        self._tick = tick
        self._pages: OrderedDict[int, tuple[float, dict]] = OrderedDict()
        self._loading: dict[int, asyncio.Future] = {}
        self._forgotten: dict[int, int] = {}  # bumped by forget(): a read begun before is not kept

    def forget(self, article_id: int) -> None:
        self._pages.pop(article_id, None)
        self._forgotten[article_id] = self._forgotten.get(article_id, 0) + 1

    async def article(self, article_id: int) -> dict:
        """The live revision of an article, whole, with its ETag."""
        hit = self._pages.get(article_id)
        if hit is not None and self._tick() - hit[0] < CACHE_SECONDS:
            return hit[1]
        loading = self._loading.get(article_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(article_id))
            self._loading[article_id] = loading
            loading.add_done_callback(lambda done: self._loaded(article_id, done))
        if hit is not None:
            return hit[1]
        return await asyncio.shield(loading)

    def _loaded(self, article_id: int, done: asyncio.Future) -> None:
        self._loading.pop(article_id, None)
        if not done.cancelled():
            done.exception()  # read here: a stale copy's refresh may fail with nobody waiting

    async def _load(self, article_id: int) -> dict:
        forgotten = self._forgotten.get(article_id, 0)
        async with self._pool.acquire() as conn:
            row = await store.live_page(conn, article_id)
            files = await media_store.many(conn, list(row["attachments"])) if row else []
        if row is None:
            self.forget(article_id)
            raise NotFound("文章不存在或已撤回", code="article_not_found")
        by_id = {f["id"]: f for f in files}
        page = {**card_view(row), "channel_id": row["channel_id"], "revision": row["revision"],
                "etag": row["etag"],
                "body": row["body"],
                "cover_page": media_url(row["cover_variants"]["page"]["key"])
                if row["cover_variants"] else None,
                "attachments": [{"filename": by_id[i]["filename"], "bytes": by_id[i]["bytes"],
                                 "url": media_url(by_id[i]["variants"]["file"]["key"])}
                                for i in row["attachments"] if i in by_id]}
        if self._forgotten.get(article_id, 0) == forgotten:
            self._pages[article_id] = (self._tick(), page)
            self._pages.move_to_end(article_id)
            while len(self._pages) > CACHE_ENTRIES:
                self._pages.popitem(last=False)
        return page

    async def channels(self) -> list[dict]:
        async with self._pool.acquire() as conn:
            return [channel_view(r) for r in await channels_store.listed(conn)]

    async def channel(self, slug: str, *, cursor: str | None = None) -> dict:
        before = _cursor(cursor)
        async with self._pool.acquire() as conn:
            row = await channels_store.by_slug(conn, slug)
            if row is None:
                raise NotFound("频道不存在", code="channel_not_found")
            articles = await store.live_in_channel(conn, row["id"], before=before,
                                                   limit=PAGE_SIZE)
        return {"channel": channel_view(row), "articles": [card_view(a) for a in articles],
                "next": _next(articles)}

    async def latest(self, *, cursor: str | None = None) -> dict:
        async with self._pool.acquire() as conn:
            articles = await store.live_in_channel(conn, None, before=_cursor(cursor),
                                                   limit=PAGE_SIZE)
        return {"articles": [card_view(a) for a in articles], "next": _next(articles)}

    async def search(self, query: str, *, channel: str | None = None) -> dict:
        terms, phrases = query_terms(query or "")
        if not terms:
            raise InvalidInput("请输入要搜索的字词", code="query_missing")
        async with self._pool.acquire() as conn:
            channel_id = None
            if channel:
                row = await channels_store.by_slug(conn, channel)
                if row is None:
                    raise NotFound("频道不存在", code="channel_not_found")
                channel_id = row["id"]
            rows = await store.search(conn, terms, phrases, channel_id=channel_id, limit=PAGE_SIZE)
        return {"query": query, "articles": [card_view(r) for r in rows]}


def _next(rows: list[asyncpg.Record]) -> str | None:
    if len(rows) < PAGE_SIZE:
        return None
    last = rows[-1]
    micros = (last["published_at"] - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{last['id']}"
