"""The shared Redis client (``redis.asyncio``; aioredis was merged into redis-py)."""

from __future__ import annotations

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
