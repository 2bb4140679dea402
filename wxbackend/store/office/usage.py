"""SQL for the offline ledger (台账), the usage standards, and the online counts the usage rates
divide (rules in :mod:`wxbackend.services.office.usage`)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

_ENTRY = """SELECT l.*, l.org_path::text AS org_path, o.name AS org_name, c.display_name AS recorded_by_name
            FROM offline_ledger l JOIN orgs o ON o.id = l.org_id JOIN cadres c ON c.id = l.recorded_by"""


async def insert_entry(conn: asyncpg.Connection, *, org_id: int, module: str, handled_on: date,
                       items: int, title: str, note: str | None, recorded_by: int,
                       now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO offline_ledger (org_id, org_path, module, handled_on, items, title, note,
                                       recorded_by, recorded_at)
           SELECT id, path, $2, $3, $4, $5, $6, $7, $8 FROM orgs WHERE id = $1
           RETURNING id""", org_id, module, handled_on, items, title, note, recorded_by, now)


async def entry(conn: asyncpg.Connection, entry_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_ENTRY} WHERE l.id = $1", entry_id)


async def void_entry(conn: asyncpg.Connection, entry_id: int, cadre_id: int, reason: str,
                     now: datetime) -> bool:
    return await conn.fetchval(
        """UPDATE offline_ledger SET voided_by = $2, voided_at = $3, void_reason = $4
           WHERE id = $1 AND voided_at IS NULL RETURNING true""", entry_id, cadre_id, now, reason) or False


async def entries(conn: asyncpg.Connection, org_path: str, start: date, end: date,
                  module: str | None, limit: int = 500) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""{_ENTRY} WHERE l.org_path <@ $1::ltree AND l.handled_on >= $2 AND l.handled_on < $3
                        AND ($4::text IS NULL OR l.module = $4)
            ORDER BY l.handled_on DESC, l.id DESC LIMIT $5""", org_path, start, end, module, limit)


# In both counts, ``unit`` is the union directly below the viewer's ($2, the viewer's depth) that
# an item falls under, or the viewer's own union.


async def online_counts(conn: asyncpg.Connection, org_path: str, start: datetime, end: datetime,
                        excluded: list[str]) -> list[asyncpg.Record]:
    """Items opened on the platform in the period, by module and by the union directly below
    ``org_path`` they fall under (or ``org_path`` itself)."""
    return await conn.fetch(
        """SELECT module,
                   CASE WHEN nlevel(org_path) > $2 THEN subpath(org_path, 0, $2 + 1)
                        ELSE org_path END::text AS unit,
                   count(*) AS items FROM work_items
            WHERE org_path <@ $1::ltree AND opened_at >= $3 AND opened_at < $4
              AND channel = 'online' AND module <> ALL($5::text[])
            GROUP BY 1, 2""", org_path, org_path.count(".") + 1, start, end, excluded)


async def offline_counts(conn: asyncpg.Connection, org_path: str, start: date,
                         end: date) -> list[asyncpg.Record]:
    """The ledger's items (and items registered on the platform as handled offline)."""
    return await conn.fetch(
        """SELECT module, unit, sum(items)::bigint AS items FROM (
                SELECT module,
                       CASE WHEN nlevel(org_path) > $2 THEN subpath(org_path, 0, $2 + 1)
                            ELSE org_path END::text AS unit,
                       items FROM offline_ledger
                WHERE org_path <@ $1::ltree AND handled_on >= $3 AND handled_on < $4
                  AND voided_at IS NULL
                UNION ALL
                SELECT module,
                       CASE WHEN nlevel(org_path) > $2 THEN subpath(org_path, 0, $2 + 1)
                            ELSE org_path END::text,
                       1 FROM work_items
                WHERE org_path <@ $1::ltree AND channel = 'offline'
                  AND opened_at >= $3::date::timestamp AT TIME ZONE 'Asia/Shanghai'
                  AND opened_at < $4::date::timestamp AT TIME ZONE 'Asia/Shanghai') counted
            GROUP BY 1, 2""", org_path, org_path.count(".") + 1, start, end)


async def units(conn: asyncpg.Connection, paths: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, name, path::text AS path FROM orgs WHERE path = ANY($1::ltree[])", paths)


async def units_by_id(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, name, path::text AS path FROM orgs WHERE id = $1", org_id)


async def children(conn: asyncpg.Connection, org_path: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, name, path::text AS path FROM orgs
           WHERE path <@ $1::ltree AND nlevel(path) = nlevel($1::ltree) + 1 ORDER BY path""", org_path)


# --- standards ------------------------------------------------------------------------------------
async def standards(conn: asyncpg.Connection, at: datetime | None = None) -> list[asyncpg.Record]:
    """Each module's standard in force at ``at`` (now when None)."""
    return await conn.fetch(
        """SELECT DISTINCT ON (module) module, tiers, set_by, set_at FROM usage_standards
           WHERE $1::timestamptz IS NULL OR set_at <= $1
           ORDER BY module, set_at DESC, id DESC""", at)


async def standard_history(conn: asyncpg.Connection, module: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT s.module, s.tiers, s.set_at, c.display_name AS set_by_name FROM usage_standards s
           LEFT JOIN cadres c ON c.id = s.set_by WHERE s.module = $1 ORDER BY s.set_at DESC, s.id DESC""",
        module)


async def insert_standard(conn: asyncpg.Connection, module: str, tiers: list[float], set_by: int,
                          now: datetime) -> None:
    await conn.execute(
        "INSERT INTO usage_standards (module, tiers, set_by, set_at) VALUES ($1, $2, $3, $4)",
        module, tiers, set_by, now)
