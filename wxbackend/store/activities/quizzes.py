"""SQL for online quizzes: the rules, the question bank and the rounds workers answer (rules in
:mod:`wxbackend.services.activities.quizzes`)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

RULES = ("per_round", "pass_mark", "round_seconds", "rounds_per_day", "rounds_total",
         "show_answers", "pass_daily")
_ROUND = """r.id, r.offering_id, r.account_id, r.china_day, r.shown, r.started_at, r.due_at,
    r.answers, r.marks, r.score, r.passed, r.submitted_at"""


async def rules(conn: asyncpg.Connection, offering_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {', '.join(RULES)} FROM quizzes WHERE offering_id = $1",  # noqa: S608
                               offering_id)


async def questions(conn: asyncpg.Connection, offering_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, position, multiple, prompt, options, answer, explanation FROM quiz_questions
           WHERE offering_id = $1 ORDER BY position""", offering_id)


async def questions_by_id(conn: asyncpg.Connection, ids: list[int]) -> dict[int, asyncpg.Record]:
    rows = await conn.fetch(
        """SELECT id, multiple, prompt, options, answer, explanation FROM quiz_questions
           WHERE id = ANY($1::bigint[])""", ids)
    return {r["id"]: r for r in rows}


async def question_ids(conn: asyncpg.Connection, offering_id: int) -> list[int]:
    return [r["id"] for r in await conn.fetch(
        "SELECT id FROM quiz_questions WHERE offering_id = $1 ORDER BY position", offering_id)]


async def replace(conn: asyncpg.Connection, offering_id: int, rules: dict,
                  questions: list[dict]) -> None:
    """The whole quiz at once: its rules and its bank (only before anyone could answer)."""
    columns = ", ".join(RULES)
    values = ", ".join(f"${i}" for i in range(2, 2 + len(RULES)))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in RULES)
    await conn.execute(
        f"""INSERT INTO quizzes (offering_id, {columns}) VALUES ($1, {values})
            ON CONFLICT (offering_id) DO UPDATE SET {updates}""",  # noqa: S608
        offering_id, *(rules[c] for c in RULES))
    await conn.execute("DELETE FROM quiz_questions WHERE offering_id = $1", offering_id)
    await conn.executemany(
        """INSERT INTO quiz_questions (offering_id, position, multiple, prompt, options, answer,
                                       explanation) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        [(offering_id, i, q["multiple"], q["prompt"], q["options"], q["answer"], q["explanation"])
         for i, q in enumerate(questions, start=1)])


async def bank_size(conn: asyncpg.Connection, offering_id: int) -> tuple[int | None, int]:
    """The questions a round draws (None: no quiz set yet) and the questions in the bank."""
    row = await conn.fetchrow(
        """SELECT q.per_round,
                  (SELECT count(*) FROM quiz_questions b WHERE b.offering_id = q.offering_id) AS n
           FROM quizzes q WHERE q.offering_id = $1""", offering_id)
    return (row["per_round"], row["n"]) if row else (None, 0)


async def rounds_of(conn: asyncpg.Connection, offering_id: int, account_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_ROUND} FROM quiz_rounds r WHERE r.offering_id = $1 AND r.account_id = $2
            ORDER BY r.id""", offering_id, account_id)  # noqa: S608


async def start_round(conn: asyncpg.Connection, *, offering_id: int, account_id: int, day: date,
                      shown: list[dict], now: datetime, due: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO quiz_rounds AS r (offering_id, account_id, china_day, shown, started_at, due_at)
            VALUES ($1, $2, $3, $4::jsonb, $5, $6) RETURNING {_ROUND}""",  # noqa: S608
        offering_id, account_id, day, shown, now, due)


async def get_round(conn: asyncpg.Connection, round_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_ROUND} FROM quiz_rounds r WHERE r.id = $1 {'FOR UPDATE' if lock else ''}",  # noqa: S608
        round_id)


async def finish_round(conn: asyncpg.Connection, round_id: int, *, answers: list,
                       marks: list[bool], passed: bool, now: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""UPDATE quiz_rounds r SET answers = $2::jsonb, marks = $3, score = $4, passed = $5,
                   submitted_at = $6
            WHERE r.id = $1 RETURNING {_ROUND}""",  # noqa: S608
        round_id, answers, marks, sum(marks), passed, now)


async def has_passed(conn: asyncpg.Connection, offering_id: int, account_id: int,
                     day: date | None) -> bool:
    """Whether the worker passed a round of the item (on ``day``, when given)."""
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM quiz_rounds WHERE offering_id = $1 AND account_id = $2
                          AND passed AND ($3::date IS NULL OR china_day = $3))""",
        offering_id, account_id, day)


async def stats(conn: asyncpg.Connection, offering_id: int) -> asyncpg.Record:
    return await conn.fetchrow(
        """SELECT count(DISTINCT account_id) AS participants,
                  count(*) FILTER (WHERE submitted_at IS NOT NULL) AS rounds,
                  count(DISTINCT account_id) FILTER (WHERE passed) AS passed_workers,
                  count(*) FILTER (WHERE passed) AS passed_rounds,
                  avg(score) AS average_score
           FROM quiz_rounds WHERE offering_id = $1""", offering_id)


async def accuracy(conn: asyncpg.Connection, offering_id: int) -> list[asyncpg.Record]:
    """Per question of the bank: how often it was answered in a submitted round, and how often
    right."""
    return await conn.fetch(
        """SELECT b.id, b.position, b.prompt, count(s.q) AS answered,
                  count(s.q) FILTER (WHERE s.right_answer) AS answered_right
           FROM quiz_questions b
           LEFT JOIN (SELECT (e.item->>'q')::bigint AS q, r.marks[e.i] AS right_answer
                      FROM quiz_rounds r, jsonb_array_elements(r.shown) WITH ORDINALITY AS e(item, i)
                      WHERE r.offering_id = $1 AND r.submitted_at IS NOT NULL) s ON s.q = b.id
           WHERE b.offering_id = $1 GROUP BY b.id ORDER BY b.position""", offering_id)


async def by_union(conn: asyncpg.Connection, offering_id: int, organiser_path: str,
                   limit: int) -> list[asyncpg.Record]:
    """Participation per union directly under the organiser (by the participant's member union):
    the ranking a quiz campaign reports."""
    return await conn.fetch(
        """WITH who AS (
               SELECT r.account_id, bool_or(r.passed) AS passed,
                      count(*) FILTER (WHERE r.submitted_at IS NOT NULL) AS n
               FROM quiz_rounds r WHERE r.offering_id = $1 GROUP BY r.account_id),
           unit AS (
               SELECT w.*, subpath(g.path, 0, nlevel($2::ltree) + 1) AS under
               FROM who w JOIN members m ON m.account_id = w.account_id
               JOIN orgs g ON g.id = m.org_id
               WHERE g.path <@ $2::ltree AND nlevel(g.path) > nlevel($2::ltree))
           SELECT o.id AS org_id, o.name, count(*) AS participants,
                  count(*) FILTER (WHERE u.passed) AS passed, sum(u.n)::bigint AS rounds
           FROM unit u JOIN orgs o ON o.path = u.under
           GROUP BY o.id, o.name ORDER BY participants DESC, o.id LIMIT $3""",
        offering_id, organiser_path, limit)
