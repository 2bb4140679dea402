"""SQL for the daily visit counts of articles and channels."""

from __future__ import annotations

from datetime import date

import asyncpg

_TABLES = {"article": ("article_visits", "article_id"), "channel": ("channel_visits", "channel_id")}


async def upsert(conn: asyncpg.Connection, kind: str, rows: list[tuple[int, date, int, int]]) -> None:
    """Set the day's counts (Redis holds the running totals, so the newest roll-up wins).
    Rows of articles or channels that no longer exist are skipped."""
    if not rows:
        return
    table, column = _TABLES[kind]
    parent = "articles" if kind == "article" else "channels"
    await conn.execute(
        f"""INSERT INTO {table} ({column}, day, views, visitors)
            SELECT r.id, r.day, r.views, r.visitors
            FROM unnest($1::bigint[], $2::date[], $3::bigint[], $4::bigint[])
                 AS r (id, day, views, visitors)
            WHERE EXISTS (SELECT 1 FROM {parent} p WHERE p.id = r.id)
            ON CONFLICT ({column}, day) DO UPDATE
              SET views = GREATEST({table}.views, EXCLUDED.views),
                  visitors = GREATEST({table}.visitors, EXCLUDED.visitors)""",  # noqa: S608
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


async def channel_days(conn: asyncpg.Connection, channel_id: int, first: date,
                       last: date) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT day, views, visitors FROM channel_visits
           WHERE channel_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day""", channel_id, first, last)


async def top_articles(conn: asyncpg.Connection, channel_id: int, first: date, last: date, *,
                       limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT a.id, COALESCE(r.title, a.working->>'title') AS title, sum(v.views)::bigint AS views,
                  max(v.visitors) AS visitors
           FROM article_visits v JOIN articles a ON a.id = v.article_id
           LEFT JOIN article_revisions r ON r.article_id = a.id AND r.number = a.live_revision
           WHERE a.channel_id = $1 AND v.day BETWEEN $2 AND $3
           GROUP BY a.id, r.title ORDER BY views DESC, a.id LIMIT $4""",
        channel_id, first, last, limit)


async def published_per_month(conn: asyncpg.Connection, channel_id: int, first: date,
                              last: date) -> list[asyncpg.Record]:
    """Articles first published per China month (the usage arrangement counts ≥ 50 a month)."""
    return await conn.fetch(
        """SELECT to_char(first_published_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month,
                  count(*) AS articles
           FROM articles
           WHERE channel_id = $1 AND first_published_at IS NOT NULL
             AND (first_published_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN $2 AND $3
           GROUP BY 1 ORDER BY 1""", channel_id, first, last)
