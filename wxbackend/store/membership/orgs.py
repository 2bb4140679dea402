"""SQL for the union tree (its registered-user targets: :mod:`wxbackend.store.kpi.targets`)."""

from __future__ import annotations

from collections.abc import Sequence

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


async def count_by_kind(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT kind, count(*) AS n FROM orgs GROUP BY kind")
    return {r["kind"]: r["n"] for r in rows}


async def create_grassroots(conn: asyncpg.Connection, *, parent_id: int, name: str,
                            credit_code: str | None, employer_name: str | None,
                            region_code: str | None, founded_via_platform: bool) -> asyncpg.Record:
    """A new grassroots union under ``parent_id``; its code is derived from the credit code
    (or the new id when the unit has none)."""
    row = await conn.fetchrow(
        """INSERT INTO orgs (parent_id, code, name, kind, credit_code, employer_name, region_code,
                             founded_via_platform, path)
           SELECT $1, 'SC-G-' || coalesce($3, gen_random_uuid()::text), $2,
                  'grassroots', $3, $4, $5, $6, p.path
           FROM orgs p WHERE p.id = $1
           RETURNING id""",
        parent_id, name, credit_code, employer_name, region_code, founded_via_platform)
    return await conn.fetchrow(
        """UPDATE orgs SET path = path || text2ltree(id::text),
                  code = CASE WHEN credit_code IS NULL THEN 'SC-G-N' || id ELSE code END
           WHERE id = $1
           RETURNING id, code, name, path::text AS path, parent_id""", row["id"])


async def get(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, parent_id, code, name, kind, path::text AS path, credit_code, employer_name,
                  region_code, accepts_members, founded_via_platform
           FROM orgs WHERE id = $1""", org_id)


async def by_code(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, kind, path::text AS path, name FROM orgs WHERE code = $1", code)


async def by_codes(conn: asyncpg.Connection, codes: Sequence[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, code, kind, path::text AS path FROM orgs WHERE code = ANY($1::text[])", list(codes))
