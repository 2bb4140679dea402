"""Everything a running process holds, built once from settings and passed in explicitly.

``Runtime`` owns the connections (pool, Redis, HTTP client) and the services made from them;
handlers and the worker receive what they need from it, never from module globals.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import redis.asyncio as aioredis

from wxbackend.config import Settings
from wxbackend.infra.db import create_pool
from wxbackend.infra.redis import create_redis
from wxbackend.services.keywords import KeywordRouter
from wxbackend.services.oa_inbox import OAInbox
from wxbackend.services.outbox import OutboxWorker
from wxbackend.wechat.api import WeChatAPI
from wxbackend.wechat.envelope import Envelope


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    http: httpx.AsyncClient
    api: WeChatAPI
    envelope: Envelope
    keywords: KeywordRouter
    inbox: OAInbox
    outbox: OutboxWorker

    @property
    def h5_base(self) -> str:
        return self.settings.server.public_url.rstrip("/") + "/h5"


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, dsn: str, redis_url: str) -> AsyncIterator[Runtime]:
    pool = await create_pool(dsn, settings.database)
    redis = create_redis(redis_url, settings.redis)
    http = httpx.AsyncClient(
        timeout=settings.wechat.http_timeout, trust_env=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "wxbackend"})
    try:
        wx = settings.wechat
        api = WeChatAPI(http, wx, redis)
        router = KeywordRouter(pool, h5_base=settings.server.public_url.rstrip("/") + "/h5",
                               cache_seconds=wx.keyword_cache_seconds)
        inbox = OAInbox(pool, redis, router, appid=wx.appid, reply_budget=wx.reply_budget,
                        dedup_ttl=wx.dedup_ttl)
        yield Runtime(settings=settings, pool=pool, redis=redis, http=http, api=api,
                      envelope=Envelope(wx), keywords=router, inbox=inbox,
                      outbox=OutboxWorker(pool, api, settings.outbox))
    finally:
        await http.aclose()
        await redis.aclose()
        await pool.close()
