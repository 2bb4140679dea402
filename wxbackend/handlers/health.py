"""``/healthz`` (PostgreSQL and Redis state) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis

from wxbackend.handlers.base import BaseHandler
from wxbackend.infra.metrics import OUTBOX_DEPTH, render
from wxbackend.store import health as health_store
from wxbackend.store.messaging import outbox

_TIMEOUT = 2.0


async def _check(coro) -> str:
    try:
        await asyncio.wait_for(coro, _TIMEOUT)
    except Exception as exc:  # any failure means "down"; the reason helps the operator
        return f"down: {type(exc).__name__}"
    return "ok"


class HealthHandler(BaseHandler):
    route = "/healthz"

    def initialize(self, pool: asyncpg.Pool, redis: aioredis.Redis) -> None:
        self.pool = pool
        self.redis = redis

    async def get(self) -> None:
        postgres, redis = await asyncio.gather(
            _check(health_store.ping(self.pool)), _check(self.redis.ping()))
        ok = postgres == "ok" and redis == "ok"
        self.set_header("Cache-Control", "no-store")
        self.write_json({"status": "ok" if ok else "unavailable",
                         "postgres": postgres, "redis": redis}, 200 if ok else 503)


class MetricsHandler(BaseHandler):
    route = "/metrics"

    def initialize(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self) -> None:
        try:
            async with asyncio.timeout(_TIMEOUT), self.pool.acquire() as conn:
                for status, n in (await outbox.depth(conn)).items():
                    OUTBOX_DEPTH.labels(status).set(n)
        except Exception:  # noqa: S110 - metrics must render even with the database down
            pass
        body, content_type = render()
        self.set_header("Content-Type", content_type)
        self.finish(body)


def routes(pool: asyncpg.Pool, redis: aioredis.Redis) -> list:
    return [
        (r"/healthz", HealthHandler, {"pool": pool, "redis": redis}),
        (r"/metrics", MetricsHandler, {"pool": pool}),
    ]
