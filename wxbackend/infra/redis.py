"""The shared Redis client (``redis.asyncio``; aioredis was merged into redis-py) and the rate
counters built on it."""

from __future__ import annotations

from datetime import datetime, timedelta

import redis.asyncio as aioredis

from wxbackend.config import RedisSettings


def create_redis(url: str, settings: RedisSettings | None = None) -> aioredis.Redis:
    """A client whose pool waits (up to the timeout) for a free connection in a burst instead
    of failing with "too many connections"."""
    settings = settings or RedisSettings()
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, socket_timeout=settings.timeout,
        socket_connect_timeout=settings.timeout, health_check_interval=30,
        max_connections=100, timeout=settings.timeout)
    return aioredis.Redis(connection_pool=pool)


# Count a hit under every key; a key this hit creates expires at ARGV[i], the end of its window.
_COUNT = """
local out = {}
for i, key in ipairs(KEYS) do
    local n = redis.call('INCR', key)
    if n == 1 then redis.call('EXPIREAT', key, ARGV[i]) end
    out[i] = n
end
return out
"""


def minute_window(now: datetime) -> tuple[str, int]:
    """The minute ``now`` falls in: its label and its end, Unix time."""
    start = now.replace(second=0, microsecond=0)
    return start.strftime("%Y%m%d%H%M"), int((start + timedelta(minutes=1)).timestamp())


def hour_window(now: datetime) -> tuple[str, int]:
    """The clock hour ``now`` falls in (in ``now``'s time zone): its label and its end, Unix time."""
    start = now.replace(minute=0, second=0, microsecond=0)
    return start.strftime("%Y%m%d%H"), int((start + timedelta(hours=1)).timestamp())


def day_window(now: datetime) -> tuple[str, int]:
    """The calendar day ``now`` falls in (in ``now``'s time zone): its label and its end, Unix time."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.strftime("%Y%m%d"), int((start + timedelta(days=1)).timestamp())


def retry_after(ends_at: int, now: datetime) -> str:
    """A Retry-After header value: the whole seconds from ``now`` to the end of a window."""
    return str(max(1, ends_at - int(now.timestamp())))


class WindowCounter:
    """Fixed-window rate counters. A key names its window (see :func:`hour_window`) and expires when
    the window ends, so what a limited client must wait is the time left in the window."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._script = redis.register_script(_COUNT)

    async def hit(self, windows: dict[str, int]) -> list[int]:
        """Count one hit under every key (key -> its window's end, Unix time), in one round trip;
        return the counts in the same order."""
        return await self._script(keys=list(windows), args=list(windows.values()))
