"""Page views and unique visitors per article, per channel and per China day.

A view costs the page nothing it waits for: it is added to this process's buffer, which goes to
Redis in one pipeline about once a second (views as counters, visitors into HyperLogLogs). Once a
day, and every few minutes for the day in progress, the counts are rolled up into PostgreSQL,
which is what the console reads. A visitor is a keyed hash of address and browser, made in
memory and gone after the flush: a HyperLogLog keeps no member, so nothing personal is stored.
Crawlers and link-preview fetchers are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta

import asyncpg
import redis.asyncio as aioredis

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.store.channels import channels as channels_store
from wxbackend.store.channels import visits as store

log = logging.getLogger(__name__)

KEEP_DAYS = 3                      # Redis keeps a day's counts this long after it ends
FLUSH_SECONDS = 1.0
MAX_STATS_DAYS = 92
CRAWLER = re.compile(
    r"bot|spider|crawl|slurp|archiver|preview|facebookexternalhit|curl|wget|python|httpx|"
    r"aiohttp|go-http|java/|okhttp|libwww|scrapy|headless|phantom|lighthouse|monitor",
    re.IGNORECASE)


def is_crawler(user_agent: str) -> bool:
    return not user_agent or bool(CRAWLER.search(user_agent))


def _keys(kind: str, ident: int, day: str) -> tuple[str, str]:
    return f"visits:{kind}:{ident}:{day}:v", f"visits:{kind}:{ident}:{day}:u"


class VisitCounter:
    def __init__(self, redis: aioredis.Redis, key: bytes, *,
                 now: Callable[[], datetime] = china_now) -> None:
        self._redis = redis
        self._key = hmac.new(key, b"page-visits", hashlib.sha256).digest()
        self._now = now
        self._views: Counter[tuple[str, int, str]] = Counter()
        self._visitors: defaultdict[tuple[str, int, str], set[bytes]] = defaultdict(set)

    def record(self, article_id: int, channel_id: int, address: str, user_agent: str) -> bool:
        """Count one view (``False``: a crawler, not counted)."""
        if is_crawler(user_agent):
            return False
        day = self._now().date().isoformat()
        visitor = hashlib.blake2b(f"{day}\x00{address}\x00{user_agent}".encode(), key=self._key,
                                  digest_size=8).digest()
        for target in (("a", article_id, day), ("c", channel_id, day)):
            self._views[target] += 1
            self._visitors[target].add(visitor)
        return True

    @property
    def pending(self) -> int:
        return sum(self._views.values())

    async def flush(self) -> None:
        if not self._views:
            return
        views, visitors = self._views, self._visitors
        self._views, self._visitors = Counter(), defaultdict(set)
        pipe = self._redis.pipeline(transaction=False)
        for (kind, ident, day), count in views.items():
            v_key, u_key = _keys(kind, ident, day)
            ttl = _ttl(day)
            pipe.incrby(v_key, count)
            pipe.expire(v_key, ttl)
            pipe.pfadd(u_key, *visitors[(kind, ident, day)])
            pipe.expire(u_key, ttl)
            pipe.sadd(f"visits:days:{day}", f"{kind}:{ident}")
            pipe.expire(f"visits:days:{day}", ttl)
        try:
            await pipe.execute()
        except (aioredis.RedisError, OSError):
            # Counts are worth less than the page: put them back for the next flush.
            log.warning("visit counts not flushed; kept for the next try")
            self._views.update(views)
            for target, members in visitors.items():
                self._visitors[target] |= members

    async def run(self, stop: asyncio.Event) -> None:
        """Flush about once a second until ``stop``, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
            await self.flush()


def _ttl(day: str) -> int:
    return int(timedelta(days=KEEP_DAYS + 1).total_seconds())


class VisitStats:
    """Rolls Redis's counts into PostgreSQL, and shows them to cadres."""

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, *,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._redis = redis
        self._now = now

    async def roll_up(self, day: date | None = None) -> int:
        """Copy one day's counts (default: today and yesterday) into PostgreSQL; rerunnable."""
        days = [day] if day else [self._now().date(), self._now().date() - timedelta(days=1)]
        written = 0
        for one in days:
            label = one.isoformat()
            members = [m.decode() if isinstance(m, bytes) else m
                       async for m in self._redis.sscan_iter(f"visits:days:{label}", count=500)]
            for start in range(0, len(members), 500):
                batch = [m.split(":") for m in members[start:start + 500]]
                pipe = self._redis.pipeline(transaction=False)
                for kind, ident in batch:
                    v_key, u_key = _keys(kind, int(ident), label)
                    pipe.get(v_key)
                    pipe.pfcount(u_key)
                counts = await pipe.execute()
                rows = {"a": [], "c": []}
                for index, (kind, ident) in enumerate(batch):
                    views, visitors = counts[2 * index], counts[2 * index + 1]
                    rows[kind].append((int(ident), one, int(views or 0), int(visitors or 0)))
                async with self._pool.acquire() as conn, conn.transaction():
                    await store.upsert(conn, "article", rows["a"])
                    await store.upsert(conn, "channel", rows["c"])
                written += len(batch)
        return written

    async def channel_stats(self, actor: Actor, channel_id: int, *, days: int = 30) -> dict:
        """Daily views and visitors of a channel, its articles published and its most read."""
        if not actor.permissions & {"channel.publish", "channel.review", "kpi.read"}:
            actor.require("channel.publish")
        if not 1 <= days <= MAX_STATS_DAYS:
            raise InvalidInput(f"统计天数须在 1 至 {MAX_STATS_DAYS} 之间", code="invalid_days")
        today = self._now().date()
        first = today - timedelta(days=days - 1)
        async with self._pool.acquire() as conn:
            channel = await channels_store.get(conn, channel_id)
            if channel is None or not actor.covers(channel["org_path"]):
                raise NotFound("频道不存在", code="channel_not_found")
            daily = await store.channel_days(conn, channel_id, first, today)
            top = await store.top_articles(conn, channel_id, first, today, limit=10)
            published = await store.published_per_month(conn, channel_id, first, today)
        by_day = {r["day"]: r for r in daily}
        return {
            "channel": {"id": channel["id"], "name": channel["name"]},
            "from": first.isoformat(), "to": today.isoformat(),
            "days": [{"day": (first + timedelta(days=i)).isoformat(),
                      "views": by_day[d]["views"] if (d := first + timedelta(days=i)) in by_day else 0,
                      "visitors": by_day[d]["visitors"] if d in by_day else 0}
                     for i in range(days)],
            "views": sum(r["views"] for r in daily),
            "top_articles": [{"id": r["id"], "title": r["title"], "views": r["views"],
                              "visitors": r["visitors"]} for r in top],
            "published_per_month": [{"month": r["month"], "articles": r["articles"]}
                                    for r in published],
        }
