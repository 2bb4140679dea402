"""SQL for channels and the self-built channel lifecycle (rules in
:mod:`wxbackend.services.channels.channels`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = """c.id, c.org_id, c.org_path::text AS org_path, c.slug, c.name, c.mode, c.entrance_url,
    c.second_review, g.kind AS org_kind, g.name AS org_name"""


async def upsert(conn: asyncpg.Connection, *, org_id: int, slug: str, name: str) -> int:
    """The seed's channel of a union; an existing channel keeps its settings."""
    return await conn.fetchval(
        """INSERT INTO channels (org_id, org_path, slug, name)
           SELECT id, path, $2, $3 FROM orgs WHERE id = $1
           ON CONFLICT (org_id) DO UPDATE SET name = EXCLUDED.name
           RETURNING id""", org_id, slug, name)


async def get(conn: asyncpg.Connection, channel_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM channels c JOIN orgs g ON g.id = c.org_id
            WHERE c.id = $1 {"FOR UPDATE OF c" if lock else ""}""", channel_id)  # noqa: S608


async def by_slug(conn: asyncpg.Connection, slug: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM channels c JOIN orgs g ON g.id = c.org_id WHERE c.slug = $1",  # noqa: S608
        slug)


async def listed(conn: asyncpg.Connection, root: str | None = None) -> list[asyncpg.Record]:
    """Every channel (``root``: only those of unions in that subtree), the province first."""
    return await conn.fetch(
        f"""SELECT {_COLUMNS} FROM channels c JOIN orgs g ON g.id = c.org_id
            WHERE $1::ltree IS NULL OR c.org_path <@ $1::ltree
            ORDER BY nlevel(c.org_path), g.kind, g.division_code NULLS LAST, c.id""",  # noqa: S608
        root)


async def set_settings(conn: asyncpg.Connection, channel_id: int, *, second_review: bool,
                       now: datetime) -> None:
    await conn.execute("UPDATE channels SET second_review = $2, updated_at = $3 WHERE id = $1",
                       channel_id, second_review, now)


async def set_mode(conn: asyncpg.Connection, channel_id: int, mode: str, entrance_url: str | None,
                   now: datetime) -> None:
    await conn.execute(
        "UPDATE channels SET mode = $2, entrance_url = $3, updated_at = $4 WHERE id = $1",
        channel_id, mode, entrance_url, now)


# --- self-built applications ------------------------------------------------------------------
_APP = """a.id, a.channel_id, a.status, a.plan, a.attachments, a.platform_app_id, a.conformance,
    a.created_by, a.created_at, a.updated_at, c.org_id, c.org_path::text AS org_path, c.name AS channel_name,
    c.slug"""


async def insert_application(conn: asyncpg.Connection, *, channel_id: int, plan: dict,
                             attachments: list[int], created_by: int, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO channel_applications (channel_id, status, plan, attachments, created_by,
                                             created_at, updated_at)
           VALUES ($1, 'applied', $2, $3, $4, $5, $5) RETURNING id""",
        channel_id, plan, attachments, created_by, now)


async def live_application(conn: asyncpg.Connection, channel_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_APP} FROM channel_applications a JOIN channels c ON c.id = a.channel_id
            WHERE a.channel_id = $1 AND a.status NOT IN ('rejected', 'retired')""",  # noqa: S608
        channel_id)


async def application(conn: asyncpg.Connection, application_id: int, *,
                      lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_APP} FROM channel_applications a JOIN channels c ON c.id = a.channel_id
            WHERE a.id = $1 {"FOR UPDATE OF a" if lock else ""}""", application_id)  # noqa: S608


async def applications_within(conn: asyncpg.Connection, root: str,
                              reader: int) -> list[asyncpg.Record]:
    """Newest first, each with ``news``: a step ``reader`` has not seen."""
    return await conn.fetch(
        f"""SELECT {_APP},
                   (SELECT max(s.id) FROM channel_application_steps s WHERE s.application_id = a.id)
                     > COALESCE((SELECT r.seen_step_id FROM channel_application_reads r
                                 WHERE r.cadre_id = $2 AND r.application_id = a.id), 0) AS news
            FROM channel_applications a JOIN channels c ON c.id = a.channel_id
            WHERE c.org_path <@ $1::ltree ORDER BY a.id DESC LIMIT 500""", root, reader)  # noqa: S608


async def mark_read(conn: asyncpg.Connection, reader: int, application_id: int) -> None:
    await conn.execute(
        """INSERT INTO channel_application_reads (cadre_id, application_id, seen_step_id)
           SELECT $1, $2, max(id) FROM channel_application_steps WHERE application_id = $2
           ON CONFLICT (cadre_id, application_id) DO UPDATE SET seen_step_id = EXCLUDED.seen_step_id""",
        reader, application_id)


async def set_application(conn: asyncpg.Connection, application_id: int, *, status: str,
                          now: datetime, platform_app_id: str | None = None,
                          conformance: dict | None = None) -> None:
    await conn.execute(
        """UPDATE channel_applications SET status = $2, updated_at = $3,
                  platform_app_id = COALESCE($4, platform_app_id),
                  conformance = COALESCE($5, conformance)
           WHERE id = $1""", application_id, status, now, platform_app_id, conformance)


async def add_step(conn: asyncpg.Connection, *, application_id: int, status: str, reason: str,
                   detail: dict, actor_id: int | None, actor_org: str, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO channel_application_steps (application_id, status, reason, detail, actor_id,
                                                  actor_org, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        application_id, status, reason, detail, actor_id, actor_org, now)


async def steps(conn: asyncpg.Connection, application_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT s.status, s.reason, s.detail, s.actor_org, s.at, k.username AS actor
           FROM channel_application_steps s LEFT JOIN cadres k ON k.id = s.actor_id
           WHERE s.application_id = $1 ORDER BY s.id""", application_id)
