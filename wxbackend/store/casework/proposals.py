"""SQL for congress sessions, representatives, proposals and seconders (rules in
:mod:`wxbackend.services.casework.proposals`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_SESSION = """s.*, o.name AS org_name, o.path::text AS org_path,
    (SELECT count(*) FROM congress_representatives r WHERE r.session_id = s.id) AS representatives,
    (SELECT count(*) FROM proposals p WHERE p.session_id = s.id) AS proposals"""
_PROPOSAL = """p.*,
    (SELECT array_agg(x.name ORDER BY x.seconded_at) FROM proposal_seconders x
      WHERE x.proposal_id = p.id) AS seconder_names,
    i.due_at, CASE WHEN p.replied_at IS NULL THEN NULL ELSE p.replied_at <= i.due_at END AS on_time"""


async def insert_session(conn: asyncpg.Connection, *, org_id: int, kind: str, name: str,
                         opens_at: datetime, closes_at: datetime, seconders: int, reply_days: int,
                         created_by: int, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO congress_sessions (org_id, kind, name, opens_at, closes_at, seconders,
               reply_days, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
        org_id, kind, name, opens_at, closes_at, seconders, reply_days, created_by, now)


async def session(conn: asyncpg.Connection, session_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_SESSION} FROM congress_sessions s JOIN orgs o ON o.id = s.org_id
            WHERE s.id = $1""", session_id)  # noqa: S608


async def sessions_in(conn: asyncpg.Connection, subtree: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_SESSION} FROM congress_sessions s JOIN orgs o ON o.id = s.org_id
            WHERE o.path <@ $1::ltree ORDER BY s.opens_at DESC, s.id DESC LIMIT 200""", subtree)  # noqa: S608


async def sessions_of_account(conn: asyncpg.Connection, account_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_SESSION} FROM congress_sessions s JOIN orgs o ON o.id = s.org_id
            JOIN congress_representatives r ON r.session_id = s.id AND r.account_id = $1
            ORDER BY s.opens_at DESC""", account_id)  # noqa: S608


async def representatives(conn: asyncpg.Connection, session_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT account_id, name, delegation FROM congress_representatives WHERE session_id = $1
           ORDER BY delegation, name""", session_id)


async def representative(conn: asyncpg.Connection, session_id: int,
                         account_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM congress_representatives WHERE session_id = $1 AND account_id = $2",
        session_id, account_id)


async def roster_size(conn: asyncpg.Connection, session_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM congress_representatives WHERE session_id = $1", session_id)


async def account_by_phone(conn: asyncpg.Connection, phone_bidx: bytes) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM accounts WHERE phone_bidx = $1 AND status = 'active'", phone_bidx)


async def add_representative(conn: asyncpg.Connection, session_id: int, account_id: int, name: str,
                             delegation: str, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO congress_representatives (session_id, account_id, name, delegation, added_at)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (session_id, account_id) DO UPDATE SET name = EXCLUDED.name,
                 delegation = EXCLUDED.delegation""", session_id, account_id, name, delegation, now)


async def insert_proposal(conn: asyncpg.Connection, *, session_id: int, account_id: int, proposer: str,
                          title: str, reasons: str, measures: str, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO proposals (session_id, account_id, proposer, title, reasons, measures, submitted_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        session_id, account_id, proposer, title, reasons, measures, now)


async def proposal(conn: asyncpg.Connection, proposal_id: int, *,
                   lock: bool = False) -> asyncpg.Record | None:
    if lock:
        await conn.execute("SELECT 1 FROM proposals WHERE id = $1 FOR UPDATE", proposal_id)
    return await conn.fetchrow(
        f"""SELECT {_PROPOSAL} FROM proposals p LEFT JOIN work_items i ON i.id = p.item_id
            WHERE p.id = $1""", proposal_id)  # noqa: S608


async def by_item(conn: asyncpg.Connection, item_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_PROPOSAL} FROM proposals p LEFT JOIN work_items i ON i.id = p.item_id
            WHERE p.item_id = $1""", item_id)  # noqa: S608


async def proposals_of(conn: asyncpg.Connection, session_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_PROPOSAL} FROM proposals p LEFT JOIN work_items i ON i.id = p.item_id
            WHERE p.session_id = $1 ORDER BY p.number NULLS LAST, p.id""", session_id)  # noqa: S608


async def seconded_by(conn: asyncpg.Connection, session_id: int, account_id: int) -> set[int]:
    return {r["proposal_id"] for r in await conn.fetch(
        """SELECT x.proposal_id FROM proposal_seconders x JOIN proposals p ON p.id = x.proposal_id
           WHERE p.session_id = $1 AND x.account_id = $2""", session_id, account_id)}


async def add_seconder(conn: asyncpg.Connection, proposal_id: int, account_id: int, name: str,
                       now: datetime) -> bool:
    status = await conn.execute(
        """INSERT INTO proposal_seconders (proposal_id, account_id, name, seconded_at)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""", proposal_id, account_id, name, now)
    return status.endswith(" 1")


async def seconder_count(conn: asyncpg.Connection, proposal_id: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM proposal_seconders WHERE proposal_id = $1", proposal_id)


async def set_item(conn: asyncpg.Connection, proposal_id: int, item_id: int) -> None:
    await conn.execute("UPDATE proposals SET item_id = $2, status = 'reviewing' WHERE id = $1",
                       proposal_id, item_id)


async def set_status(conn: asyncpg.Connection, proposal_id: int, status: str) -> None:
    await conn.execute("UPDATE proposals SET status = $2 WHERE id = $1", proposal_id, status)


async def next_number(conn: asyncpg.Connection, session_id: int) -> int:
    """The next 案号 of the session (the session row is locked for it)."""
    await conn.execute("SELECT 1 FROM congress_sessions WHERE id = $1 FOR UPDATE", session_id)
    return await conn.fetchval(
        "SELECT coalesce(max(number), 0) + 1 FROM proposals WHERE session_id = $1", session_id)


async def filed(conn: asyncpg.Connection, proposal_id: int, number: int) -> None:
    await conn.execute("UPDATE proposals SET status = 'filed', number = $2 WHERE id = $1",
                       proposal_id, number)


async def not_filed(conn: asyncpg.Connection, proposal_id: int, status: str, reason: str | None,
                    merged_into: int | None) -> None:
    await conn.execute(
        "UPDATE proposals SET status = $2, reason = $3, merged_into = $4 WHERE id = $1",
        proposal_id, status, reason, merged_into)


async def replied(conn: asyncpg.Connection, proposal_id: int, cls: str, reply: str, at: datetime) -> None:
    await conn.execute(
        """UPDATE proposals SET status = 'replied', class = $2, reply = $3, replied_at = $4,
               replies = replies + 1 WHERE id = $1""", proposal_id, cls, reply, at)


async def rated(conn: asyncpg.Connection, proposal_id: int, rating: str) -> None:
    await conn.execute("UPDATE proposals SET rating = $2, ratings = ratings + 1 WHERE id = $1",
                       proposal_id, rating)


async def reopened(conn: asyncpg.Connection, proposal_id: int) -> None:
    await conn.execute("UPDATE proposals SET reopened = true, status = 'filed' WHERE id = $1", proposal_id)


async def lapse(conn: asyncpg.Connection, now: datetime) -> int:
    status = await conn.execute(
        """UPDATE proposals p SET status = 'lapsed' FROM congress_sessions s
           WHERE s.id = p.session_id AND p.status = 'seconding' AND s.closes_at <= $1""", now)
    return int(status.split()[-1])
