"""SQL the usage reports read besides the daily counters: unions and their targets."""

from __future__ import annotations

import asyncpg


async def union(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, name, kind, path::text AS path, parent_id FROM orgs WHERE id = $1", org_id)


async def children(conn: asyncpg.Connection, org_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, name, kind, path::text AS path FROM orgs WHERE parent_id = $1 ORDER BY id""", org_id)


async def cumulative_targets(conn: asyncpg.Connection, org_ids: list[int], year: int) -> dict[int, int]:
    """Each union's new-user targets added up to ``year`` (unions without targets are absent)."""
    return {r["org_id"]: r["total"] for r in await conn.fetch(
        """SELECT org_id, sum(new_users)::bigint AS total FROM registered_user_targets
           WHERE org_id = ANY($1::bigint[]) AND year <= $2 GROUP BY org_id""", org_ids, year)}
