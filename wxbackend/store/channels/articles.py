"""SQL for articles, their revisions and review steps (rules in
:mod:`wxbackend.services.channels.articles`; public reading in
:mod:`wxbackend.services.channels.reading`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = """a.id, a.channel_id, a.org_path::text AS org_path, a.created_by, a.stage, a.working,
    a.first_reviewer, a.submitted_by, a.publish_at, a.scheduled_by, a.live_revision,
    a.withdrawn_at, a.withdrawn_reason, a.first_published_at, a.published_at, a.created_at,
    a.updated_at, c.name AS channel_name, c.slug AS channel_slug, c.org_id,
    c.second_review, k.username AS created_by_name"""
_FROM = """articles a JOIN channels c ON c.id = a.channel_id JOIN cadres k ON k.id = a.created_by"""


async def insert(conn: asyncpg.Connection, *, channel_id: int, org_path: str, created_by: int,
                 working: dict, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO articles (channel_id, org_path, created_by, stage, working, created_at,
                                 updated_at)
           VALUES ($1, $2::ltree, $3, 'draft', $4, $5, $5) RETURNING id""",
        channel_id, org_path, created_by, working, now)


async def get(conn: asyncpg.Connection, article_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM {_FROM} WHERE a.id = $1
            {"FOR UPDATE OF a" if lock else ""}""", article_id)  # noqa: S608


async def within(conn: asyncpg.Connection, root: str, *, channel_id: int | None,
                 stage: str | None, before_id: int | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_COLUMNS} FROM {_FROM}
            WHERE a.org_path <@ $1::ltree AND ($2::bigint IS NULL OR a.channel_id = $2)
              AND ($3::text IS NULL OR a.stage = $3) AND ($4::bigint IS NULL OR a.id < $4)
            ORDER BY a.id DESC LIMIT $5""",  # noqa: S608
        root, channel_id, stage, before_id, limit)


async def set_working(conn: asyncpg.Connection, article_id: int, working: dict,
                      now: datetime) -> None:
    """An edit: the working copy goes back to draft, whatever review it had passed."""
    await conn.execute(
        """UPDATE articles SET working = $2, stage = 'draft', first_reviewer = NULL,
                  submitted_by = NULL, publish_at = NULL, scheduled_by = NULL, updated_at = $3
           WHERE id = $1""", article_id, working, now)


async def set_stage(conn: asyncpg.Connection, article_id: int, stage: str, now: datetime, *,
                    first_reviewer: int | None = None, submitted_by: int | None = None,
                    publish_at: datetime | None = None, scheduled_by: int | None = None) -> None:
    await conn.execute(
        """UPDATE articles SET stage = $2, updated_at = $3,
                  first_reviewer = CASE WHEN $2 IN ('draft', 'returned', 'submitted') THEN NULL
                                        ELSE COALESCE($4, first_reviewer) END,
                  submitted_by = CASE WHEN $2 IN ('draft', 'returned') THEN NULL
                                      ELSE COALESCE($5, submitted_by) END,
                  publish_at = $6, scheduled_by = $7
           WHERE id = $1""", article_id, stage, now, first_reviewer, submitted_by, publish_at,
        scheduled_by)


async def add_revision(conn: asyncpg.Connection, article_id: int, *, title: str, author: str,
                       summary: str, cover_id: int | None, body: str, attachments: list[int],
                       etag: str, published_by: int | None, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO article_revisions (article_id, number, title, author, summary, cover_id, body,
                                          attachments, etag, published_by, published_at)
           SELECT $1, COALESCE(max(number), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10
           FROM article_revisions WHERE article_id = $1
           RETURNING number""",
        article_id, title, author, summary, cover_id, body, attachments, etag, published_by, now)


async def go_live(conn: asyncpg.Connection, article_id: int, revision: int, *,
                  search_terms: list[str], search_text: str, now: datetime) -> None:
    await conn.execute(
        """UPDATE articles SET live_revision = $2, stage = 'live', publish_at = NULL,
                  scheduled_by = NULL, published_at = $3,
                  first_published_at = COALESCE(first_published_at, $3),
                  withdrawn_at = NULL, withdrawn_reason = NULL, search_terms = $4,
                  search_text = $5, updated_at = $3
           WHERE id = $1""", article_id, revision, now, search_terms, search_text)


async def withdraw(conn: asyncpg.Connection, article_id: int, reason: str, now: datetime) -> None:
    await conn.execute(
        """UPDATE articles SET live_revision = NULL, withdrawn_at = $3, withdrawn_reason = $2,
                  search_terms = '{}', search_text = '', updated_at = $3,
                  stage = CASE WHEN stage = 'live' THEN 'draft' ELSE stage END
           WHERE id = $1""", article_id, reason, now)


async def due(conn: asyncpg.Connection, now: datetime, limit: int = 100) -> list[int]:
    return [r["id"] for r in await conn.fetch(
        """SELECT id FROM articles WHERE stage = 'scheduled' AND publish_at <= $1
           ORDER BY publish_at LIMIT $2""", now, limit)]


async def add_step(conn: asyncpg.Connection, article_id: int, step: str, *, reason: str = "",
                   actor_id: int | None, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO article_steps (article_id, step, reason, actor_id, at)
           VALUES ($1, $2, $3, $4, $5)""", article_id, step, reason, actor_id, now)


async def steps(conn: asyncpg.Connection, article_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT s.step, s.reason, s.at, k.username AS actor
           FROM article_steps s LEFT JOIN cadres k ON k.id = s.actor_id
           WHERE s.article_id = $1 ORDER BY s.id""", article_id)


async def revisions(conn: asyncpg.Connection, article_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT r.number, r.title, r.etag, r.published_at, k.username AS published_by
           FROM article_revisions r LEFT JOIN cadres k ON k.id = r.published_by
           WHERE r.article_id = $1 ORDER BY r.number""", article_id)


# --- public reading ---------------------------------------------------------------------------
_LIVE = """a.id, a.channel_id, a.published_at, a.first_published_at, r.number AS revision,
    r.title, r.author, r.summary, r.cover_id, r.etag, c.slug AS channel_slug, c.name AS channel_name,
    m.variants AS cover_variants"""
_LIVE_FROM = """articles a JOIN article_revisions r ON r.article_id = a.id AND r.number = a.live_revision
    JOIN channels c ON c.id = a.channel_id LEFT JOIN media m ON m.id = r.cover_id"""


async def live_page(conn: asyncpg.Connection, article_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_LIVE}, r.body, r.attachments FROM {_LIVE_FROM}
            WHERE a.id = $1 AND a.live_revision IS NOT NULL""", article_id)  # noqa: S608


async def live_etag(conn: asyncpg.Connection, article_id: int) -> str | None:
    return await conn.fetchval(
        """SELECT r.etag FROM articles a JOIN article_revisions r
             ON r.article_id = a.id AND r.number = a.live_revision WHERE a.id = $1""", article_id)


async def live_in_channel(conn: asyncpg.Connection, channel_id: int | None, *,
                          before: tuple[datetime, int] | None, limit: int) -> list[asyncpg.Record]:
    """Published articles, newest first (``channel_id`` None: every channel)."""
    at, last_id = before if before else (None, None)
    return await conn.fetch(
        f"""SELECT {_LIVE} FROM {_LIVE_FROM}
            WHERE a.live_revision IS NOT NULL AND ($1::bigint IS NULL OR a.channel_id = $1)
              AND ($2::timestamptz IS NULL OR (a.published_at, a.id) < ($2, $3))
            ORDER BY a.published_at DESC, a.id DESC LIMIT $4""",  # noqa: S608
        channel_id, at, last_id, limit)


async def search(conn: asyncpg.Connection, terms: list[str], phrases: list[str], *,
                 channel_id: int | None, limit: int) -> list[asyncpg.Record]:
    """Articles holding every term (GIN on the term arrays) and every phrase as written."""
    return await conn.fetch(
        f"""SELECT {_LIVE} FROM {_LIVE_FROM}
            WHERE a.live_revision IS NOT NULL AND a.search_terms @> $1::text[]
              AND ($3::bigint IS NULL OR a.channel_id = $3)
              AND NOT EXISTS (SELECT 1 FROM unnest($2::text[]) p WHERE strpos(a.search_text, p) = 0)
            ORDER BY a.published_at DESC, a.id DESC LIMIT $4""",  # noqa: S608
        terms, phrases, channel_id, limit)
