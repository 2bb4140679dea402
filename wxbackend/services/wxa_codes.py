"""Mini Program codes (小程序码), each asked of WeChat once and kept.

getwxacodeunlimit is limited to 5,000 calls a minute per Mini Program and a code never changes
for a (page, scene), so the first request draws it and every later one reads it from
PostgreSQL. Concurrent first requests share one call: within a process through one task per
code, across processes through a short Redis lock whose losers wait for the winner's row. No
pooled connection is held while WeChat draws.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import datetime

import asyncpg
import redis.asyncio as aioredis

from wxbackend.services.clock import china_now
from wxbackend.store import wxa_codes as store
from wxbackend.wechat.api import WeChatAPI

LOCK_MS = 15_000     # longer than a WeChat call with its timeout
WAIT_STEP = 0.1      # how often a process that lost the lock looks for the winner's row
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0"""


class WxaCodes:
    def __init__(self, pool: asyncpg.Pool, api: WeChatAPI, *, redis: aioredis.Redis | None = None,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._api = api
        self._redis = redis
        self._now = now
        self._flights: dict[tuple[str, str], asyncio.Task[bytes]] = {}

    async def _kept(self, page: str, scene: str) -> bytes | None:
        async with self._pool.acquire() as conn:
            return await store.kept(conn, page, scene)

    async def png(self, page: str, scene: str) -> bytes:
        """The code's image (as WeChat drew it) for ``page`` carrying ``scene``."""
        kept = await self._kept(page, scene)
        if kept is not None:
            return kept
        key = (page, scene)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._draw(page, scene))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        # shield: one caller giving up (a closed request) does not cancel the others' call
        return await asyncio.shield(flight)

    async def _draw(self, page: str, scene: str) -> bytes:
        if self._redis is None:
            return await self._draw_and_keep(page, scene)
        lock, me = f"wxacode:lock:{page}:{scene}", secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + LOCK_MS / 1000 * 2
        while True:
            if await self._redis.set(lock, me, nx=True, px=LOCK_MS):
                try:
                    kept = await self._kept(page, scene)  # the previous holder may have kept it
                    return kept if kept is not None else await self._draw_and_keep(page, scene)
                finally:
                    await self._redis.eval(_RELEASE, 1, lock, me)
            await asyncio.sleep(WAIT_STEP)
            kept = await self._kept(page, scene)
            if kept is not None:
                return kept
            if loop.time() > give_up:  # the holder is stuck or gone: draw it ourselves
                return await self._draw_and_keep(page, scene)

    async def _draw_and_keep(self, page: str, scene: str) -> bytes:
        image = await self._api.get_wxacode_unlimited(scene, page)
        async with self._pool.acquire() as conn:
            return await store.keep(conn, page, scene, image, self._now())
