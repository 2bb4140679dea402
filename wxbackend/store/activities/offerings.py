"""SQL for activity and service items and campaigns (rules in
:mod:`wxbackend.services.activities.catalogue`)."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

# Columns a cadre sets; the rest (status, taken, seed, timestamps) move only through actions.
EDITABLE = ("kind", "form", "campaign_id", "title", "summary", "place", "starts_at", "ends_at",
            "opens_at", "closes_at", "cancel_until", "mode", "stock", "per_person", "per_day",
            "audience", "hold_minutes", "no_show_ban_days")
_COLUMNS = """o.id, o.kind, o.form, o.org_id, o.org_path::text AS org_path, o.campaign_id,
    o.title, o.summary, o.place, o.starts_at, o.ends_at, o.opens_at, o.closes_at, o.cancel_until,
    o.mode, o.stock, o.taken, o.per_person, o.per_day, o.audience, o.hold_minutes,
    o.no_show_ban_days, o.seed_hash, o.seed_sealed, o.seed, o.draw_entries, o.drawn_at, o.status,
    o.created_at, o.updated_at,
    o.published_at, g.name AS org_name"""


def _value(column: str, value: object) -> object:
    return json.dumps(value, ensure_ascii=False) if column == "audience" else value


async def insert(conn: asyncpg.Connection, *, org_id: int, org_path: str, created_by: int,
                 fields: dict, seed_hash: bytes | None, now: datetime) -> int:
    columns = [c for c in EDITABLE if c in fields]
    values = [_value(c, fields[c]) for c in columns]
    placeholders = ", ".join(f"${i}" for i in range(6, 6 + len(columns)))
    return await conn.fetchval(
        f"""INSERT INTO offerings (org_id, org_path, created_by, seed_hash, created_at, updated_at,
                                   {", ".join(columns)})
            VALUES ($1, $2::ltree, $3, $4, $5, $5, {placeholders}) RETURNING id""",  # noqa: S608
        org_id, org_path, created_by, seed_hash, now, *values)


async def update(conn: asyncpg.Connection, offering_id: int, fields: dict, now: datetime) -> None:
    columns = [c for c in EDITABLE if c in fields]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=3))
    await conn.execute(f"UPDATE offerings SET updated_at = $2, {sets} WHERE id = $1",  # noqa: S608
                       offering_id, now, *(_value(c, fields[c]) for c in columns))


async def get(conn: asyncpg.Connection, offering_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM offerings o JOIN orgs g ON g.id = o.org_id WHERE o.id = $1
            {"FOR UPDATE OF o" if lock else ""}""", offering_id)  # noqa: S608


async def set_status(conn: asyncpg.Connection, offering_id: int, status: str, now: datetime) -> None:
    await conn.execute(
        """UPDATE offerings SET status = $2, updated_at = $3,
                  published_at = CASE WHEN $2 = 'published' THEN $3 ELSE published_at END
           WHERE id = $1""", offering_id, status, now)


async def within(conn: asyncpg.Connection, root: str, *, status: str | None, kind: str | None,
                 limit: int, before_id: int | None) -> list[asyncpg.Record]:
    """Items organised inside the subtree at ``root``, newest first."""
    return await conn.fetch(
        f"""SELECT {_COLUMNS} FROM offerings o JOIN orgs g ON g.id = o.org_id
            WHERE o.org_path <@ $1::ltree AND ($2::text IS NULL OR o.status = $2)
              AND ($3::text IS NULL OR o.kind = $3) AND ($5::bigint IS NULL OR o.id < $5)
            ORDER BY o.id DESC LIMIT $4""", root, status, kind, limit, before_id)  # noqa: S608


async def open_to(conn: asyncpg.Connection, paths: list[str], now: datetime,
                  limit: int) -> list[asyncpg.Record]:
    """Published items whose organiser is an ancestor of (or is) one of ``paths``, not yet
    over: the worker's own unions first (the deepest organiser), then by opening time. The
    province's own items (the root) are open to everyone, a worker with no union too."""
    return await conn.fetch(
        f"""SELECT {_COLUMNS} FROM offerings o JOIN orgs g ON g.id = o.org_id
            WHERE o.status = 'published'
              AND (o.org_path @> $1::ltree[] OR nlevel(o.org_path) = 1)
              AND coalesce(o.ends_at, o.closes_at) > $2
            ORDER BY nlevel(o.org_path) DESC, o.opens_at, o.id LIMIT $3""", paths, now, limit)  # noqa: S608


async def keep_seed(conn: asyncpg.Connection, offering_id: int, sealed: bytes) -> None:
    await conn.execute("UPDATE offerings SET seed_sealed = $2 WHERE id = $1", offering_id, sealed)


async def org_paths(conn: asyncpg.Connection, org_ids: list[int]) -> dict[int, str]:
    rows = await conn.fetch("SELECT id, path::text AS path FROM orgs WHERE id = ANY($1::bigint[])", org_ids)
    return {r["id"]: r["path"] for r in rows}


async def campaign(conn: asyncpg.Connection, campaign_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT c.id, c.org_id, c.title, c.per_person, g.path::text AS org_path
           FROM campaigns c JOIN orgs g ON g.id = c.org_id WHERE c.id = $1""", campaign_id)


async def insert_campaign(conn: asyncpg.Connection, *, org_id: int, title: str, per_person: int,
                          created_by: int, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO campaigns (org_id, title, per_person, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""", org_id, title, per_person, created_by, now)


async def profile(conn: asyncpg.Connection, account_id: int) -> asyncpg.Record | None:
    """What the eligibility rules read about a worker: the account and its linked member record."""
    return await conn.fetchrow(
        """SELECT a.id, a.registered_at IS NOT NULL AS registered,
                  a.phone_verified_at IS NOT NULL AS phone_verified,
                  h.path::text AS home_path, mo.path::text AS member_path, m.status AS member_status,
                  m.migrant_worker, m.household_type, m.job
           FROM accounts a
           LEFT JOIN orgs h ON h.id = a.home_org_id
           LEFT JOIN members m ON m.account_id = a.id
           LEFT JOIN orgs mo ON mo.id = m.org_id
           WHERE a.id = $1 AND a.status = 'active'""", account_id)


async def gated(conn: asyncpg.Connection, now: datetime) -> list[int]:
    """First-come items whose gate may be in use: published, and not closed for over a day."""
    return [r["id"] for r in await conn.fetch(
        """SELECT id FROM offerings WHERE mode = 'first_come' AND status = 'published'
             AND closes_at > $1::timestamptz - interval '1 day' ORDER BY id""", now)]


async def drawn(conn: asyncpg.Connection, offering_id: int, seed: bytes, entries: list[int],
                now: datetime) -> None:
    await conn.execute(
        """UPDATE offerings SET seed = $2, draw_entries = $3, drawn_at = $4, updated_at = $4
           WHERE id = $1""", offering_id, seed, entries, now)


async def due_draws(conn: asyncpg.Connection, now: datetime) -> list[int]:
    return [r["id"] for r in await conn.fetch(
        """SELECT id FROM offerings WHERE mode = 'lottery' AND status = 'published'
             AND drawn_at IS NULL AND closes_at <= $1 ORDER BY closes_at""", now)]


async def lock_worker(conn: asyncpg.Connection, offering_id: int, account_id: int) -> None:
    """Serialise, until the transaction ends, one worker's rounds and votes on one item."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 11))",
                       f"{offering_id}:{account_id}")
