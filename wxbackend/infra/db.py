"""The asyncpg pool. Every query goes through ``wxbackend.store``; this module only connects."""

from __future__ import annotations

import json

import asyncpg

from wxbackend.config import DatabaseSettings


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=lambda v: json.dumps(v, ensure_ascii=False),
                                  decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a released connection needs beyond asyncpg's own clean-up (which already rolls back
    an open transaction and drops listeners): nothing. asyncpg's default reset sends one more
    query per release (unlock session advisory locks, close cursors, UNLISTEN, RESET ALL), for
    state this code never creates: it takes only transaction-scoped advisory locks, opens
    cursors only inside transactions and sets no session variables."""


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection, configured like the pool's (for CLI commands and tests)."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "wxbackend-cli"})
    await _init_connection(conn)
    return conn


async def create_pool(dsn: str, settings: DatabaseSettings | None = None,
                      *, min_size: int | None = None, max_size: int | None = None) -> asyncpg.Pool:
    settings = settings or DatabaseSettings()
    return await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min if min_size is None else min_size,
        max_size=settings.pool_max if max_size is None else max_size,
        command_timeout=settings.command_timeout,
        init=_init_connection,
        reset=_keep_session,
        server_settings={"application_name": "wxbackend", "timezone": "Asia/Shanghai"},
    )
