"""SQL for online votes: the rules, the options and every vote (rules in
:mod:`wxbackend.services.activities.polls`)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

RULES = ("votes_per_day", "votes_total", "show_counts")


async def rules(conn: asyncpg.Connection, offering_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {', '.join(RULES)} FROM polls WHERE offering_id = $1",  # noqa: S608
                               offering_id)


# Rows each option's count is split over (see migration 0015).
COUNT_SHARDS = 16


async def options(conn: asyncpg.Connection, offering_id: int) -> list[asyncpg.Record]:
    """The options in order, each with its count."""
    return await conn.fetch(
        """SELECT o.id, o.position, o.label, o.summary,
                  COALESCE((SELECT sum(c.votes) FROM poll_counts c WHERE c.option_id = o.id), 0)::integer
                      AS votes
           FROM poll_options o WHERE o.offering_id = $1 ORDER BY o.position""", offering_id)


async def replace(conn: asyncpg.Connection, offering_id: int, rules: dict, options: list[dict]) -> None:
    """The whole poll at once: its rules and its options (only before anyone could vote)."""
    columns = ", ".join(RULES)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in RULES)
    await conn.execute(
        f"""INSERT INTO polls (offering_id, {columns}) VALUES ($1, $2, $3, $4)
            ON CONFLICT (offering_id) DO UPDATE SET {updates}""",  # noqa: S608
        offering_id, *(rules[c] for c in RULES))
    await conn.execute("DELETE FROM poll_options WHERE offering_id = $1", offering_id)
    await conn.executemany(
        """INSERT INTO poll_options (offering_id, position, label, summary)
           VALUES ($1, $2, $3, $4)""",
        [(offering_id, i, o["label"], o["summary"]) for i, o in enumerate(options, start=1)])


async def option_count(conn: asyncpg.Connection, offering_id: int) -> int | None:
    """How many options the item's poll has (None: no poll set yet)."""
    return await conn.fetchval(
        """SELECT (SELECT count(*) FROM poll_options o WHERE o.offering_id = p.offering_id)
           FROM polls p WHERE p.offering_id = $1""", offering_id)


async def votes_of(conn: asyncpg.Connection, offering_id: int, account_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT china_day, option_id FROM poll_votes WHERE offering_id = $1 AND account_id = $2
           ORDER BY china_day, option_id""", offering_id, account_id)


async def cast(conn: asyncpg.Connection, *, offering_id: int, account_id: int, day: date,
               option_ids: list[int], now: datetime) -> str:
    """One call of ``cast_votes`` (migration 0015): 'ok' or what stopped the ballot."""
    return await conn.fetchval("SELECT cast_votes($1, $2, $3, $4::bigint[], $5, $6::smallint)",
                               offering_id, account_id, day, sorted(option_ids), now,
                               account_id % COUNT_SHARDS)


async def has_voted(conn: asyncpg.Connection, offering_id: int, account_id: int) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM poll_votes WHERE offering_id = $1 AND account_id = $2)",
        offering_id, account_id)


async def voters(conn: asyncpg.Connection, offering_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(DISTINCT account_id) FROM poll_votes WHERE offering_id = $1", offering_id)
