"""SQL for articles sent to the Official Account (rules in
:mod:`wxbackend.services.channels.oa_publishing`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = """id, article_id, revision, mass_send, status, draft_media_id, publish_id, msg_id,
    article_url, failure, month, created_at, updated_at"""


async def claim(conn: asyncpg.Connection, *, article_id: int, revision: int, mass_send: bool,
                month: str, created_by: int, now: datetime) -> asyncpg.Record | None:
    """A new sending row for this revision, or a failed one taken up again; ``None`` when this
    revision already went (or is going) to the account this way."""
    return await conn.fetchrow(
        f"""INSERT INTO oa_publications (article_id, revision, mass_send, status, month,
                                         created_by, created_at, updated_at)
            VALUES ($1, $2, $3, 'sending', $4, $5, $6, $6)
            ON CONFLICT (article_id, revision, mass_send) DO UPDATE
              SET status = 'sending', failure = NULL, month = EXCLUDED.month,
                  created_by = EXCLUDED.created_by, updated_at = EXCLUDED.updated_at
              WHERE oa_publications.status = 'failed'
            RETURNING {_COLUMNS}""",  # noqa: S608
        article_id, revision, mass_send, month, created_by, now)


async def mass_sends_in(conn: asyncpg.Connection, month: str) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM oa_publications
           WHERE mass_send AND month = $1 AND status IN ('sending', 'sent')""", month)


async def update(conn: asyncpg.Connection, row_id: int, now: datetime, **fields) -> None:
    allowed = {"status", "draft_media_id", "publish_id", "msg_id", "article_url", "failure"}
    names = [k for k in fields if k in allowed]
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, 3))
    await conn.execute(f"UPDATE oa_publications SET updated_at = $2, {sets} WHERE id = $1",  # noqa: S608
                       row_id, now, *[fields[n] for n in names])


async def publishing(conn: asyncpg.Connection, limit: int = 50) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_COLUMNS} FROM oa_publications WHERE status = 'publishing'
            ORDER BY updated_at LIMIT $1""", limit)  # noqa: S608


async def of_article(conn: asyncpg.Connection, article_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM oa_publications WHERE article_id = $1 ORDER BY id",  # noqa: S608
        article_id)


async def by_publish_id(conn: asyncpg.Connection, publish_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM oa_publications WHERE publish_id = $1", publish_id)  # noqa: S608
