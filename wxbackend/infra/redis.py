"""The shared Redis client (``redis.asyncio``; aioredis was merged into redis-py)."""

from __future__ import annotations

import redis.asyncio as aioredis

from wxbackend.config import RedisSettings


def create_redis(url: str, settings: RedisSettings | None = None) -> aioredis.Redis:
    settings = settings or RedisSettings()
    return aioredis.Redis.from_url(
        url, decode_responses=True, socket_timeout=settings.timeout,
        socket_connect_timeout=settings.timeout, health_check_interval=30,
        max_connections=200)
