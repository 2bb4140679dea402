"""SQL for ``work_deadlines``: rows the worker sweeps (warn, due, escalate). A deadline's dates
are never edited; a new row supersedes it."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg


async def insert(conn: asyncpg.Connection, *, item_id: int, step_id: int | None, starts_on: date,
                 count: int, unit: str, due_at: datetime, warn_at: datetime,
                 escalate_at: datetime, provisional: bool, reason: str, supersedes: int | None,
                 now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO work_deadlines (item_id, step_id, starts_on, count, unit, due_at, warn_at,
               escalate_at, provisional, reason, supersedes, next_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $7, $12) RETURNING id""",
        item_id, step_id, starts_on, count, unit, due_at, warn_at, escalate_at, provisional,
        reason, supersedes, now)


async def open_of_item(conn: asyncpg.Connection, item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM work_deadlines WHERE item_id = $1 AND status = 'open' ORDER BY id", item_id)


async def all_of_item(conn: asyncpg.Connection, item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM work_deadlines WHERE item_id = $1 ORDER BY id", item_id)


async def set_status(conn: asyncpg.Connection, ids: list[int], status: str) -> None:
    await conn.execute(
        "UPDATE work_deadlines SET status = $2 WHERE id = ANY($1::bigint[]) AND status = 'open'",
        ids, status)


async def close_for_steps(conn: asyncpg.Connection, step_ids: list[int], status: str) -> None:
    await conn.execute(
        """UPDATE work_deadlines SET status = $2
           WHERE step_id = ANY($1::bigint[]) AND status = 'open'""", step_ids, status)


async def claim_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Advance up to ``limit`` deadlines whose next moment has come, in one statement: a
    deadline the sweep missed for a while jumps straight to the stage it is in now. Returns
    each with the stage it left and the one it reached. Several workers share the sweep
    through SKIP LOCKED; a worker that dies mid-batch rolls it back."""
    return await conn.fetch(
        """WITH due AS (SELECT id FROM work_deadlines
                        WHERE status = 'open' AND stage <> 'done' AND next_at <= $1
                        ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           UPDATE work_deadlines d SET
               stage = CASE WHEN $1 >= d.escalate_at THEN 'done'
                            WHEN $1 >= d.due_at THEN 'escalate' ELSE 'due' END,
               next_at = CASE WHEN $1 >= d.escalate_at THEN d.escalate_at
                              WHEN $1 >= d.due_at THEN d.escalate_at ELSE d.due_at END
           FROM due WHERE d.id = due.id
           RETURNING d.id, d.item_id, d.step_id, d.due_at, d.provisional,
                     old.stage AS left_stage, new.stage AS stage""", now, limit)


async def provisional_open(conn: asyncpg.Connection, after_id: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM work_deadlines WHERE status = 'open' AND provisional AND id > $1
           ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""", after_id, limit)
