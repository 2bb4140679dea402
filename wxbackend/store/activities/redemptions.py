"""SQL for verifier accounts, redemption and check-in (rules in
:mod:`wxbackend.services.activities.redemption`)."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg


async def insert_verifier(conn: asyncpg.Connection, *, org_id: int, username: str, display_name: str,
                          password_hash: str, created_by: int, offering_ids: list[int],
                          now: datetime) -> int:
    verifier_id = await conn.fetchval(
        """INSERT INTO offering_verifiers (org_id, username, display_name, password_hash,
                                           created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        org_id, username, display_name, password_hash, created_by, now)
    await conn.executemany("INSERT INTO offering_verifier_items (verifier_id, offering_id) VALUES ($1, $2)",
                           [(verifier_id, o) for o in offering_ids])
    return verifier_id


_VERIFIER = """v.id, v.org_id, v.username, v.display_name, v.created_at, v.disabled_at,
    g.path::text AS org_path,
    ARRAY(SELECT offering_id FROM offering_verifier_items i WHERE i.verifier_id = v.id
          ORDER BY offering_id) AS offering_ids"""


async def verifier(conn: asyncpg.Connection, verifier_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_VERIFIER} FROM offering_verifiers v JOIN orgs g ON g.id = v.org_id
            WHERE v.id = $1""", verifier_id)  # noqa: S608


async def verifier_by_username(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_VERIFIER}, v.password_hash FROM offering_verifiers v
            JOIN orgs g ON g.id = v.org_id WHERE v.username = $1""", username)  # noqa: S608


async def verifiers_within(conn: asyncpg.Connection, root: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_VERIFIER} FROM offering_verifiers v JOIN orgs g ON g.id = v.org_id
            WHERE g.path <@ $1::ltree ORDER BY v.id DESC LIMIT 500""", root)  # noqa: S608


async def disable_verifier(conn: asyncpg.Connection, verifier_id: int, now: datetime) -> None:
    await conn.execute("UPDATE offering_verifiers SET disabled_at = coalesce(disabled_at, $2) WHERE id = $1",
                       verifier_id, now)


async def earlier(conn: asyncpg.Connection, verifier_id: int, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT status, answer FROM redemptions WHERE verifier_id = $1 AND request_id = $2",
        verifier_id, request_id)


async def remember(conn: asyncpg.Connection, *, verifier_id: int, request_id: str,
                   claim_id: int | None, status: int, answer: dict, now: datetime) -> bool:
    """Records the answer to a request; False when the same request was recorded meanwhile."""
    made = await conn.fetchval(
        """INSERT INTO redemptions (verifier_id, request_id, claim_id, status, answer, at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING true""",
        verifier_id, request_id, claim_id, status, json.dumps(answer, ensure_ascii=False), now)
    return bool(made)


async def use(conn: asyncpg.Connection, claim_id: int, offering_ids: list[int] | None, by: str,
              now: datetime) -> asyncpg.Record | None:
    """Marks a confirmed place used — once: the state is re-checked in the same statement, so
    of any number of concurrent scans of one code exactly one succeeds. ``offering_ids``: the
    items the scanner may act on (None: the caller checked already)."""
    return await conn.fetchrow(
        """UPDATE offering_claims SET status = 'used', used_at = $4, used_by = $3, updated_at = $4
           WHERE id = $1 AND status = 'confirmed'
             AND ($2::bigint[] IS NULL OR offering_id = ANY($2::bigint[]))
           RETURNING id, offering_id, account_id, used_at""", claim_id, offering_ids, by, now)


async def claim_for_scan(conn: asyncpg.Connection, claim_id: int) -> asyncpg.Record | None:
    """A claim with what a scanner's answer needs: the item's window and the holder's masked
    identity."""
    return await conn.fetchrow(
        """SELECT c.id, c.offering_id, c.account_id, c.status, c.used_at, c.used_by, o.title,
                  o.kind, o.starts_at, o.ends_at, o.opens_at, o.org_path::text AS org_path,
                  m.name, a.nickname
           FROM offering_claims c JOIN offerings o ON o.id = c.offering_id
           JOIN accounts a ON a.id = c.account_id
           LEFT JOIN members m ON m.account_id = c.account_id
           WHERE c.id = $1""", claim_id)


async def confirmed_place(conn: asyncpg.Connection, offering_id: int,
                          account_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, status FROM offering_claims WHERE offering_id = $1 AND account_id = $2
             AND status IN ('confirmed', 'used') ORDER BY status = 'confirmed' DESC, id LIMIT 1""",
        offering_id, account_id)
