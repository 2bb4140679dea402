"""SQL for ``process_definitions`` (rules in :mod:`wxbackend.services.casework.definitions`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def current(conn: asyncpg.Connection, module: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM process_definitions WHERE module = $1 AND status = 'published'", module)


async def by_id(conn: asyncpg.Connection, definition_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM process_definitions WHERE id = $1", definition_id)


async def versions(conn: asyncpg.Connection, module: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT d.id, d.version, d.name, d.digest, d.status, d.created_at, d.published_at,
                  (SELECT count(*) FROM work_items i WHERE i.definition_id = d.id
                     AND i.status <> 'closed') AS running
           FROM process_definitions d WHERE d.module = $1 ORDER BY d.version DESC""", module)


async def publish(conn: asyncpg.Connection, module: str, name: str, graph: dict, digest: str,
                  created_by: int | None, now: datetime) -> int:
    """A new published version; the one before is retired (its running items keep it)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('process_definitions:' || $1))", module)
    await conn.execute(
        "UPDATE process_definitions SET status = 'retired' WHERE module = $1 AND status = 'published'",
        module)
    return await conn.fetchval(
        """INSERT INTO process_definitions (module, version, name, graph, digest, status,
                                            created_by, created_at, published_at)
           VALUES ($1, coalesce((SELECT max(version) FROM process_definitions WHERE module = $1), 0) + 1,
                   $2, $3, $4, 'published', $5, $6, $6)
           RETURNING id""", module, name, graph, digest, created_by, now)
