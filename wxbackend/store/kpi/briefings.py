"""SQL for briefings (rules in :mod:`wxbackend.services.kpi.briefings`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_BRIEFING = """SELECT b.id, b.org_id, b.period, b.kind, b.issued_at, b.issued_by, b.report, b.changes,
                      b.previous_id, o.name AS org_name, o.path::text AS org_path,
                      c.display_name AS issued_by_name
               FROM kpi_briefings b JOIN orgs o ON o.id = b.org_id
               LEFT JOIN cadres c ON c.id = b.issued_by"""


async def insert(conn: asyncpg.Connection, *, org_id: int, period: str, kind: str, now: datetime,
                 issued_by: int | None, report: dict, changes: dict, previous_id: int | None,
                 xlsx: bytes) -> int | None:
    """The new briefing's id; None when this month's was already issued (another worker)."""
    return await conn.fetchval(
        """INSERT INTO kpi_briefings (org_id, period, kind, issued_at, issued_by, report, changes,
                                      previous_id, xlsx)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (org_id, period) WHERE kind = 'monthly' DO NOTHING
           RETURNING id""", org_id, period, kind, now, issued_by, report, changes, previous_id, xlsx)


async def monthly_exists(conn: asyncpg.Connection, org_id: int, period: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM kpi_briefings WHERE org_id = $1 AND period = $2 AND kind = 'monthly')",
        org_id, period)


async def latest_monthly(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"{_BRIEFING} WHERE b.org_id = $1 AND b.kind = 'monthly' ORDER BY b.period DESC LIMIT 1", org_id)


async def briefing(conn: asyncpg.Connection, briefing_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_BRIEFING} WHERE b.id = $1", briefing_id)


async def xlsx(conn: asyncpg.Connection, briefing_id: int) -> bytes | None:
    return await conn.fetchval("SELECT xlsx FROM kpi_briefings WHERE id = $1", briefing_id)


async def visible_to(conn: asyncpg.Connection, org_path: str, limit: int = 100) -> list[asyncpg.Record]:
    """Briefings about the union at ``org_path``, the unions above it (which name it) and those
    below it, newest first."""
    return await conn.fetch(
        f"""{_BRIEFING} WHERE o.path @> $1::ltree OR o.path <@ $1::ltree
            ORDER BY b.issued_at DESC, b.id DESC LIMIT $2""", org_path, limit)


async def readers(conn: asyncpg.Connection, org_id: int) -> list[tuple[int, str]]:
    """Cadres holding ``kpi.read`` of the union and the unions directly below it, with a bound
    WeChat: (cadre id, openid)."""
    return [(r["id"], r["oa_openid"]) for r in await conn.fetch(
        """SELECT c.id, w.oa_openid FROM cadres c
           JOIN cadre_grants g ON g.cadre_id = c.id AND g.permission = 'kpi.read'
           JOIN cadre_wechat w ON w.cadre_id = c.id
           JOIN orgs o ON o.id = c.org_id
           WHERE c.status = 'active' AND (c.org_id = $1 OR o.parent_id = $1)
           ORDER BY c.id""", org_id)]


async def root_union(conn: asyncpg.Connection) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT id, name, path::text AS path FROM orgs WHERE parent_id IS NULL ORDER BY id LIMIT 1")
