"""SQL for the daily counters (rules in :mod:`wxbackend.services.kpi.rollups`).

Every source is counted per union and China day, then added to the union and each of its
ancestors: an org's ``path`` is the ids from the root, so its ancestors are its path's labels and
no join is needed to expand them.
"""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

# A week of the province's sources is counted in seconds; the pool's default statement timeout
# is for requests, not for this.
RECOUNT_TIMEOUT = 600

# The completion counts (办结率) of each engine module: ``due:<module>`` the items counted on the
# day (the denominator), ``closed:<module>`` those of them closed, ``on_time:<module>`` those
# closed by their limit. Which day an item is counted on is the facts' ``counted_on``
# (0032_kpi_completion.sql); an item's org_path ends with its union's id.
COMPLETION = ("due", "closed", "on_time")
_COMPLETION = """
    SELECT k.name || ':' || f.module AS counter, ltree2text(subpath(f.org_path, -1))::bigint AS org_id,
           f.counted_on AS day, count(*) AS value
    FROM work_item_facts f
    CROSS JOIN LATERAL (VALUES ('due', true), ('closed', f.finish_kind = 'closed'),
                               ('on_time', f.finish_kind = 'closed' AND f.finish_at <= f.due_at)) k(name, hit)
    WHERE f.counted_on >= $1 AND f.counted_on < $2 AND k.hit
    GROUP BY 1, 2, 3
"""

# New members by how they joined, dated by joining (a roster import brings years of them).
_JOINED = """
    SELECT CASE source WHEN 'platform' THEN 'joined_platform' ELSE 'joined_roster' END AS counter,
           org_id, joined_on AS day, count(*) AS value
    FROM members WHERE joined_on >= $1 AND joined_on < $2
    GROUP BY 1, 2, 3
"""

# The parts a recount may be limited to: their sources (reading $1, $2 alone) and their counters'
# names before any ':'. A refresh recounts the days a change touched in that change's part only.
PARTS = {"members": (_JOINED, ("joined_platform", "joined_roster")),
         "completion": (_COMPLETION, COMPLETION)}

# Everything. ($1, $2): the first China day counted and the day after the last; $3, $4: the same
# as moments.
_SOURCES = """
    SELECT 'registered' AS counter, home_org_id AS org_id,
           (registered_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS value
    FROM accounts WHERE registered_at >= $3 AND registered_at < $4 AND home_org_id IS NOT NULL
    GROUP BY 2, 3
  UNION ALL
    SELECT 'certified', org_id, (certified_at AT TIME ZONE 'Asia/Shanghai')::date, count(*)
    FROM members WHERE certified_at >= $3 AND certified_at < $4
    GROUP BY 2, 3
  UNION ALL
""" + _JOINED + """  UNION ALL
    SELECT CASE WHEN founded_via_platform THEN 'founded_platform' ELSE 'founded_other' END,
           id, (created_at AT TIME ZONE 'Asia/Shanghai')::date, count(*)
    FROM orgs WHERE kind = 'grassroots' AND created_at >= $3 AND created_at < $4
    GROUP BY 1, 2, 3
  UNION ALL
    SELECT 'articles', c.org_id, (a.first_published_at AT TIME ZONE 'Asia/Shanghai')::date, count(*)
    FROM articles a JOIN channels c ON c.id = a.channel_id
    WHERE a.first_published_at >= $3 AND a.first_published_at < $4
    GROUP BY 2, 3
  UNION ALL
    SELECT 'visits', c.org_id, v.day, sum(v.views)
    FROM channel_visits v JOIN channels c ON c.id = v.channel_id
    WHERE v.day >= $1 AND v.day < $2
    GROUP BY 2, 3
  UNION ALL
    SELECT CASE kind WHEN 'activity' THEN 'activities' ELSE 'services' END, org_id,
           (published_at AT TIME ZONE 'Asia/Shanghai')::date, count(*)
    FROM offerings WHERE published_at >= $3 AND published_at < $4
    GROUP BY 1, 2, 3
  UNION ALL
    SELECT 'cadres', org_id, (created_at AT TIME ZONE 'Asia/Shanghai')::date, count(*)
    FROM cadres WHERE created_at >= $3 AND created_at < $4
    GROUP BY 2, 3
  UNION ALL
    SELECT 'opened:' || module, org_id, (opened_at AT TIME ZONE 'Asia/Shanghai')::date, count(*)
    FROM work_items WHERE opened_at >= $3 AND opened_at < $4 AND channel = 'online'
    GROUP BY 1, 2, 3
  UNION ALL
""" + _COMPLETION  # noqa: S608 - the parts are constants


async def recount(conn: asyncpg.Connection, first: date, after: date, starts: datetime,
                  ends: datetime, now: datetime, *, part: str | None = None) -> int:
    """Count the days ``first`` ≤ day < ``after`` again, in the caller's transaction: their rows
    are replaced. ``starts``, ``ends``: the same days' bounds as China moments. ``part``: only
    that part's counters (:data:`PARTS`). How many rows were written."""
    if part in (None, "completion"):
        # The days' marks go first: a change committed after this statement leaves its mark for
        # the next refresh, while everything committed before it is in what is counted below.
        await conn.execute("DELETE FROM kpi_dirty_days WHERE day >= $1 AND day < $2", first, after)
    # The month totals change by what the new days hold less what the deleted ones held, read
    # from the rows each statement touches. A recount mostly finds what was there: only the
    # totals that moved are written.
    gone = await conn.fetch(
        """WITH gone AS (DELETE FROM kpi_daily WHERE day >= $1 AND day < $2
                           AND ($3::text[] IS NULL OR split_part(counter, ':', 1) = ANY($3::text[]))
                          RETURNING counter, org_id, day, value)
            SELECT counter, org_id, date_trunc('month', day)::date AS month, sum(value)::bigint AS value
            FROM gone GROUP BY 1, 2, 3""",
        first, after, list(PARTS[part][1]) if part else None, timeout=RECOUNT_TIMEOUT)
    sources, args = (PARTS[part][0], ()) if part else (_SOURCES, (starts, ends))
    added = await conn.fetch(
        f"""WITH added AS (
                INSERT INTO kpi_daily (counter, org_id, day, value)
                SELECT s.counter, a.id::bigint, s.day, sum(s.value)
                FROM ({sources}) s
                JOIN orgs o ON o.id = s.org_id
                CROSS JOIN LATERAL unnest(string_to_array(o.path::text, '.')) AS a(id)
                GROUP BY 1, 2, 3
                RETURNING counter, org_id, day, value
            )
            SELECT counter, org_id, date_trunc('month', day)::date AS month, sum(value)::bigint AS value,
                   count(*) AS n
            FROM added GROUP BY 1, 2, 3""",  # noqa: S608 - the sources are constants
        first, after, *args, timeout=RECOUNT_TIMEOUT)
    delta: dict[tuple[str, int, date], int] = {}
    for row in gone:
        key = (row["counter"], row["org_id"], row["month"])
        delta[key] = delta.get(key, 0) - row["value"]
    for row in added:
        key = (row["counter"], row["org_id"], row["month"])
        delta[key] = delta.get(key, 0) + row["value"]
    moved = [(k, v) for k, v in delta.items() if v]
    if moved:
        await conn.execute(
            """INSERT INTO kpi_monthly AS m (counter, org_id, month, value)
               SELECT * FROM unnest($1::text[], $2::bigint[], $3::date[], $4::bigint[])
               ON CONFLICT (counter, org_id, month) DO UPDATE SET value = m.value + excluded.value""",
            [k[0] for k, _ in moved], [k[1] for k, _ in moved], [k[2] for k, _ in moved],
            [v for _, v in moved], timeout=RECOUNT_TIMEOUT)
    written = sum(r["n"] for r in added)
    if part:
        return int(written)     # the days were counted, only not all of them
    await conn.execute(
        """INSERT INTO kpi_days (day, refreshed_at)
           SELECT d::date, $3 FROM generate_series($1::date, $2::date - 1, interval '1 day') d
           ON CONFLICT (day) DO UPDATE SET refreshed_at = excluded.refreshed_at""",
        first, after, now)
    return int(written)


async def lock(conn: asyncpg.Connection) -> None:
    """One recount at a time (the worker's and a backfill may overlap)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('kpi_daily'))")


async def watermark(conn: asyncpg.Connection, source: str) -> datetime | None:
    return await conn.fetchval("SELECT seen_until FROM kpi_watermarks WHERE source = $1", source)


async def set_watermark(conn: asyncpg.Connection, source: str, seen_until: datetime) -> None:
    await conn.execute(
        """INSERT INTO kpi_watermarks (source, seen_until) VALUES ($1, $2)
           ON CONFLICT (source) DO UPDATE SET seen_until = excluded.seen_until""", source, seen_until)


async def members_changed(conn: asyncpg.Connection,
                          since: datetime | None) -> tuple[list[date], datetime | None]:
    """The joining days of member records added after ``since`` (a roster import adds members who
    joined long ago), and the latest addition seen: the next watermark. A certification or an
    edit of an existing member changes no joining day (certifications are counted on their own
    day); correcting a joining day is a data correction, recounted with ``kpi backfill``. The
    watermark is the data's own time; rows stamped when their transaction began may commit after
    later ones, so each look reaches an hour behind it (a day counted twice is only counted again)."""
    latest = await conn.fetchval("SELECT max(created_at) FROM members")
    if since is None or latest is None:
        return [], latest
    days = [r["joined_on"] for r in await conn.fetch(
        """SELECT DISTINCT joined_on FROM members
           WHERE created_at > $1::timestamptz - interval '1 hour' AND created_at <= $2""",
        since, latest)]
    return days, latest


async def dirty_days(conn: asyncpg.Connection) -> list[date]:
    """The days whose completion counts casework changes moved since they were last counted."""
    return [r["day"] for r in await conn.fetch("SELECT DISTINCT day FROM kpi_dirty_days ORDER BY 1")]


async def last_refresh(conn: asyncpg.Connection) -> datetime | None:
    return await conn.fetchval("SELECT max(refreshed_at) FROM kpi_days")


# --- reading ----------------------------------------------------------------------------------
def _month_after(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


async def sums(conn: asyncpg.Connection, org_ids: list[int], counters: list[str], first: date,
               after: date) -> list[dict]:
    """Each union's (subtree's) total of each counter over the days ``first`` ≤ day < ``after``:
    the whole months in between from the month totals, the days of the months cut into from the
    daily counters. Rows ``{org_id, counter, value}``, none for a total of nothing."""
    whole_first = first if first.day == 1 else _month_after(first)
    whole_after = after.replace(day=1)
    if whole_first >= whole_after:
        parts = await _day_sums(conn, org_ids, counters, first, after)
    else:
        parts = [*await _day_sums(conn, org_ids, counters, first, whole_first),
                 *await conn.fetch(
                     """SELECT o.id AS org_id, c.counter, s.value
                        FROM unnest($1::bigint[]) o(id) CROSS JOIN unnest($2::text[]) c(counter)
                        CROSS JOIN LATERAL (SELECT sum(k.value)::bigint AS value FROM kpi_monthly k
                                            WHERE k.counter = c.counter AND k.org_id = o.id
                                              AND k.month >= $3 AND k.month < $4) s
                        WHERE s.value IS NOT NULL""", org_ids, counters, whole_first, whole_after),
                 *await _day_sums(conn, org_ids, counters, whole_after, after)]
    totals: dict[tuple[int, str], int] = {}
    for row in parts:
        key = (row["org_id"], row["counter"])
        totals[key] = totals.get(key, 0) + row["value"]
    return [{"org_id": o, "counter": c, "value": v} for (o, c), v in totals.items() if v]


async def _day_sums(conn: asyncpg.Connection, org_ids: list[int], counters: list[str], first: date,
                    after: date) -> list[asyncpg.Record]:
    """One range of the primary key per union and counter, read from the index alone: written so
    that the plan does not depend on the arguments (asyncpg prepares statements, and after five
    runs PostgreSQL may keep a generic plan, which for ``= ANY`` of both keys scanned far more)."""
    if first >= after:
        return []
    return await conn.fetch(
        """SELECT o.id AS org_id, c.counter, s.value
           FROM unnest($1::bigint[]) o(id) CROSS JOIN unnest($2::text[]) c(counter)
           CROSS JOIN LATERAL (SELECT sum(k.value)::bigint AS value FROM kpi_daily k
                               WHERE k.counter = c.counter AND k.org_id = o.id
                                 AND k.day >= $3 AND k.day < $4) s
           WHERE s.value IS NOT NULL""", org_ids, counters, first, after)


async def monthly(conn: asyncpg.Connection, org_id: int, counters: list[str], first: date,
                  after: date) -> list[asyncpg.Record]:
    """One union's counters by China month, for trends."""
    return await conn.fetch(
        """SELECT date_trunc('month', day)::date AS month, counter, sum(value)::bigint AS value
           FROM kpi_daily
           WHERE org_id = $1 AND counter = ANY($2::text[]) AND day >= $3 AND day < $4
           GROUP BY 1, 2 ORDER BY 1""", org_id, counters, first, after)
