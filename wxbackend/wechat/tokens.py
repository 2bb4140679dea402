"""access_token / jsapi_ticket central control (中控) shared by every process through Redis.

WeChat invalidates an access_token whenever anyone fetches a new one (classic endpoint), and caps
the fetches per day, so N processes each refreshing on their own would knock each other's tokens
out. Here one Redis key holds the token for every process; a Redis lock lets exactly one process
refresh while the others wait for its result; the cached copy expires ``refresh_margin`` seconds
before WeChat's, so the token is replaced before it dies; and a token WeChat rejected is replaced
only if it is still the cached one (another process may already have replaced it).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

Fetcher = Callable[[], Awaitable[tuple[str, int]]]

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class TokenUnavailable(Exception):
    """No token could be had in time (WeChat unreachable, or the refresher is stuck)."""


class TokenManager:
    def __init__(self, redis: aioredis.Redis, appid: str, fetch: Fetcher, *,
                 kind: str = "access_token", refresh_margin: int = 300, lock_seconds: float = 15,
                 wait_seconds: float = 20) -> None:
        self._redis = redis
        self._fetch = fetch
        self._key = f"wx:{kind}:{appid}"
        self._lock_key = f"{self._key}:lock"
        self._margin = refresh_margin
        self._lock_ms = int(lock_seconds * 1000)
        self._wait = wait_seconds
        self._release = redis.register_script(_RELEASE)

    async def get(self) -> str:
        token = await self._redis.get(self._key)
        return token or await self._refresh(stale=None)

    async def invalidate(self, rejected: str) -> str:
        """WeChat said ``rejected`` is invalid or expired: get a token that is not it."""
        current = await self._redis.get(self._key)
        if current and current != rejected:
            return current
        return await self._refresh(stale=rejected)

    async def _refresh(self, stale: str | None) -> str:
        me = secrets.token_hex(8)
        deadline = time.monotonic() + self._wait
        delay = 0.02
        while True:
            if await self._redis.set(self._lock_key, me, nx=True, px=self._lock_ms):
                try:
                    current = await self._redis.get(self._key)
                    if current and current != stale:
                        return current  # someone refreshed between our read and our lock
                    token, expires_in = await self._fetch()
                    ttl = max(60, int(expires_in) - self._margin)
                    await self._redis.set(self._key, token, ex=ttl)
                    log.info("refreshed %s (cached for %ds)", self._key, ttl)
                    return token
                finally:
                    await self._release(keys=[self._lock_key], args=[me])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
            current = await self._redis.get(self._key)
            if current and current != stale:
                return current
            if time.monotonic() > deadline:
                raise TokenUnavailable(f"no {self._key} within {self._wait:.0f}s")
