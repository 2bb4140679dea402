"""SQL for the union tree and its registered-user targets."""

from __future__ import annotations

import asyncpg


async def upsert(conn: asyncpg.Connection, *, code: str, name: str, short_name: str | None,
                 kind: str, parent_id: int | None, division_code: str | None) -> int:
    """Insert or update an org by its code; keeps ``path`` = parent's path + own id."""
    org_id = await conn.fetchval(
        """INSERT INTO orgs (code, name, short_name, kind, parent_id, division_code, path)
           VALUES ($1, $2, $3, $4, $5, $6, '0')
           ON CONFLICT (code) DO UPDATE SET name = $2, short_name = $3, kind = $4,
               parent_id = $5, division_code = $6, updated_at = now()
           RETURNING id""",
        code, name, short_name, kind, parent_id, division_code)
    await conn.execute(
        """UPDATE orgs SET path = coalesce((SELECT p.path FROM orgs p WHERE p.id = orgs.parent_id),
                                           ''::ltree) || text2ltree(orgs.id::text)
           WHERE id = $1""",
        org_id)
    return org_id


async def set_target(conn: asyncpg.Connection, org_id: int, year: int, new_users: int) -> None:
    await conn.execute(
        """INSERT INTO registered_user_targets (org_id, year, new_users) VALUES ($1, $2, $3)
           ON CONFLICT (org_id, year) DO UPDATE SET new_users = $3""",
        org_id, year, new_users)


async def count_by_kind(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT kind, count(*) AS n FROM orgs GROUP BY kind")
    return {r["kind"]: r["n"] for r in rows}
