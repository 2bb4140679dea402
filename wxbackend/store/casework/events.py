"""SQL for ``work_events``: every state change of every handled item, appended, never changed —
the timeline of an item and the one source of the completion rates."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def append(conn: asyncpg.Connection, *, ref: str, item_id: int | None, module: str,
                 org_path: str, kind: str, at: datetime, channel: str = "online",
                 actor_cadre_id: int | None = None, actor_account_id: int | None = None,
                 task_id: int | None = None, due_at: datetime | None = None,
                 opinion: str | None = None, detail: dict | None = None) -> int:
    return await conn.fetchval(
        """INSERT INTO work_events (ref, item_id, module, org_path, kind, at, channel,
               actor_cadre_id, actor_account_id, task_id, due_at, opinion, detail)
           VALUES ($1, $2, $3, $4::ltree, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id""",
        ref, item_id, module, org_path, kind, at, channel, actor_cadre_id, actor_account_id,
        task_id, due_at, opinion, detail or {})


async def append_many(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """Rows of (ref, item_id, module, org_path, kind, at, task_id, due_at, detail), in one
    statement (the deadline sweep writes thousands at a time)."""
    if not rows:
        return
    columns = [list(c) for c in zip(*rows, strict=True)]
    await conn.execute(
        """INSERT INTO work_events (ref, item_id, module, org_path, kind, at, task_id, due_at, detail)
           SELECT r, i, m, p::ltree, k, a, t, d, x
           FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                       $6::timestamptz[], $7::bigint[], $8::timestamptz[], $9::jsonb[])
                AS e(r, i, m, p, k, a, t, d, x)""", *columns)


async def timeline(conn: asyncpg.Connection, item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT e.id, e.kind, e.at, e.channel, e.task_id, e.due_at, e.opinion, e.detail,
                  e.actor_cadre_id, k.display_name AS actor_name, o.name AS actor_org,
                  e.actor_account_id IS NOT NULL AS by_submitter
           FROM work_events e LEFT JOIN cadres k ON k.id = e.actor_cadre_id
           LEFT JOIN orgs o ON o.id = k.org_id
           WHERE e.item_id = $1 ORDER BY e.id""", item_id)


async def last_of(conn: asyncpg.Connection, item_id: int, kind: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM work_events WHERE item_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1",
        item_id, kind)


async def count_of(conn: asyncpg.Connection, item_id: int, kind: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM work_events WHERE item_id = $1 AND kind = $2", item_id, kind)


async def forget_account(conn: asyncpg.Connection, account_id: int) -> None:
    """Cancellation: the events stay (they are the statistics), the link to the person goes."""
    await conn.execute(
        "UPDATE work_events SET actor_account_id = NULL WHERE actor_account_id = $1", account_id)


# --- the rates (definitions in docs/casework.md) -------------------------------------------
RATES_SQL = """
WITH candidates AS MATERIALIZED (
    SELECT ref FROM work_events
    WHERE kind = 'due' AND due_at >= $1 AND due_at < $2 AND at <= $3
    UNION
    SELECT ref FROM work_events WHERE kind = 'closed' AND at >= $1 AND at < $2 AND at <= $3),
counted AS (
    -- each candidate's latest time limit and latest closing (or reopening), by index (ref, id)
    SELECT c.ref, d.module, d.org_path, d.due_at,
           f.kind = 'closed' AS closed, f.kind = 'closed' AND f.at <= d.due_at AS on_time,
           f.kind AS finish_kind, f.at AS finish_at
    FROM candidates c
    CROSS JOIN LATERAL (SELECT e.module, e.org_path, e.due_at FROM work_events e
                        WHERE e.ref = c.ref AND e.kind = 'due' AND e.at <= $3
                        ORDER BY e.id DESC LIMIT 1) d
    LEFT JOIN LATERAL (SELECT e.kind, e.at FROM work_events e
                       WHERE e.ref = c.ref AND e.kind IN ('closed', 'reopened', 'cancelled')
                         AND e.at <= $3
                       ORDER BY e.id DESC LIMIT 1) f ON true)
SELECT {group} AS grp, module, count(*) AS counted,
       count(*) FILTER (WHERE closed) AS closed,
       count(*) FILTER (WHERE on_time) AS on_time
FROM counted
WHERE org_path <@ $4::ltree AND ($5::text IS NULL OR module = $5)
  AND finish_kind IS DISTINCT FROM 'cancelled'   -- withdrawn: out of the count
  -- due in the period (unless it was closed early, in a period before), or closed in the
  -- period ahead of a limit that falls later: each item counts in one period only
  AND ((due_at >= $1 AND due_at < $2 AND NOT coalesce(closed AND finish_at < $1, false))
       OR (closed AND finish_at >= $1 AND finish_at < $2 AND due_at >= $2))
GROUP BY 1, 2"""

# The same count from each item's latest facts (kept by a trigger as events are appended): the
# rates as they stand now, without reading the events. The two branches are disjoint.
RATES_NOW_SQL = """
WITH counted AS (
    SELECT org_path, module, due_at, finish_kind, finish_at FROM work_item_facts
    WHERE due_at >= $1 AND due_at < $2 AND org_path <@ $3::ltree
      AND NOT coalesce(finish_kind = 'closed' AND finish_at < $1, false)
    UNION ALL
    SELECT org_path, module, due_at, finish_kind, finish_at FROM work_item_facts
    WHERE finish_kind = 'closed' AND finish_at >= $1 AND finish_at < $2 AND due_at >= $2
      AND org_path <@ $3::ltree)
SELECT {group} AS grp, module, count(*) AS counted,
       count(*) FILTER (WHERE finish_kind = 'closed') AS closed,
       count(*) FILTER (WHERE finish_kind = 'closed' AND finish_at <= due_at) AS on_time
FROM counted
WHERE org_path <@ $3::ltree AND ($4::text IS NULL OR module = $4)
  AND finish_kind IS DISTINCT FROM 'cancelled'
GROUP BY 1, 2"""

RATINGS_SQL = """
SELECT {group} AS grp, module,
       count(*) FILTER (WHERE kind = 'rated') AS rated,
       count(*) FILTER (WHERE kind = 'rated'
                        AND detail->>'rating' IN ('satisfied', 'basically')) AS satisfied,
       count(*) FILTER (WHERE kind = 'revisited') AS revisited,
       count(*) FILTER (WHERE kind = 'closed') AS closings
FROM work_events
WHERE kind IN ('rated', 'revisited', 'closed') AND at >= $1 AND at < $2 AND at <= $3
  AND org_path <@ $4::ltree AND ($5::text IS NULL OR module = $5)
GROUP BY 1, 2"""


def _group(depth: int | None) -> str:
    """Group by the union at ``depth`` below the root of the subtree (its child unions), or not."""
    return "NULL::text" if depth is None else \
        f"CASE WHEN nlevel(org_path) > {int(depth)} THEN subpath(org_path, 0, {int(depth) + 1})::text END"


async def rates(conn: asyncpg.Connection, start: datetime, end: datetime, as_of: datetime | None,
                subtree: str, module: str | None, child_depth: int | None) -> tuple[list, list]:
    """The counts and ratings of a period; ``as_of`` None: as things stand now (from the facts),
    else as they stood at that moment (from the events alone)."""
    group = _group(child_depth)
    if as_of is None:
        counted = await conn.fetch(RATES_NOW_SQL.format(group=group), start, end, subtree, module)
        as_of = end   # every rating of the period counts
    else:
        counted = await conn.fetch(RATES_SQL.format(group=group), start, end, as_of, subtree, module)
    return counted, await conn.fetch(RATINGS_SQL.format(group=group), start, end, as_of, subtree, module)
