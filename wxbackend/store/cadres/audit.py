"""SQL for the audit trail (its rules are in :mod:`wxbackend.services.cadres.audit`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg


async def lock_head(conn: asyncpg.Connection, lock_id: int) -> tuple[bytes | None, str]:
    """Take the trail's append lock for this transaction; return the newest record's hash and
    the transaction's isolation level."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
    row = await conn.fetchrow(
        """SELECT (SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1) AS hash,
                  current_setting('transaction_isolation') AS isolation""")
    return row["hash"], row["isolation"]


async def append(conn: asyncpg.Connection, *, at: datetime, actor_id: int | None, actor: str,
                 org_id: int | None, action: str, target: str, detail: dict, ip: str,
                 prev_hash: bytes, digest: bytes, mac_version: int) -> None:
    await conn.execute(
        """INSERT INTO audit_log (at, actor_id, actor, org_id, action, target, detail, ip,
                                  prev_hash, hash, mac_version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        at, actor_id, actor, org_id, action, target, detail, ip, prev_hash, digest, mac_version)


async def walk(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Record]:
    """Every record in order (call inside a transaction: a server-side cursor)."""
    async for row in conn.cursor("SELECT * FROM audit_log ORDER BY id", prefetch=1000):
        yield row


async def newest(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")


async def add_head(conn: asyncpg.Connection, *, seq: int, digest: bytes, at: datetime,
                   mac: bytes) -> None:
    await conn.execute("INSERT INTO audit_heads (seq, hash, at, mac) VALUES ($1, $2, $3, $4)",
                       seq, digest, at, mac)


async def heads(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """The newest published heads, newest first."""
    return await conn.fetch("SELECT seq, hash, at, mac FROM audit_heads ORDER BY id DESC LIMIT $1",
                            limit)
