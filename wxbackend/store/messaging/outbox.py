"""SQL for ``outbox``: messages to WeChat, written with the change that causes them."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def enqueue(conn: asyncpg.Connection, kind: str, payload: dict,
                  idempotency_key: str | None = None, *,
                  not_before: datetime | None = None) -> int | None:
    """Add a message, to be sent from ``not_before`` (default now); ``None`` when a row with
    the same idempotency key already exists."""
    return await conn.fetchval(
        """INSERT INTO outbox (kind, payload, idempotency_key, next_attempt_at)
           VALUES ($1, $2, $3, coalesce($4, now()))
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING id""",
        kind, payload, idempotency_key, not_before)


async def enqueue_many(conn: asyncpg.Connection, messages: list[tuple[str, dict, str]], *,
                       not_before: datetime | None = None) -> int:
    """Several (kind, payload, idempotency key) at once; how many were new."""
    if not messages:
        return 0
    kinds, payloads, keys = zip(*messages, strict=True)
    status = await conn.execute(
        """INSERT INTO outbox (kind, payload, idempotency_key, next_attempt_at)
           SELECT k, p, i, coalesce($4, now())
           FROM unnest($1::text[], $2::jsonb[], $3::text[]) AS m(k, p, i)
           ON CONFLICT (idempotency_key) DO NOTHING""",
        list(kinds), list(payloads), list(keys), not_before)
    return int(status.split()[-1])


async def claim_due(conn: asyncpg.Connection, limit: int, lease_seconds: int) -> list[asyncpg.Record]:
    """Mark up to ``limit`` due rows as being sent. SKIP LOCKED lets several workers share the
    queue without ever claiming one row twice; the claim commits before anything is sent."""
    return await conn.fetch(
        """UPDATE outbox SET status = 'sending', attempts = attempts + 1,
               lease_until = now() + make_interval(secs => $2)
           WHERE id IN (SELECT id FROM outbox
                        WHERE status = 'pending' AND next_attempt_at <= now()
                        ORDER BY next_attempt_at, id LIMIT $1
                        FOR UPDATE SKIP LOCKED)
           RETURNING id, kind, payload, attempts""",
        limit, lease_seconds)


async def mark_sent(conn: asyncpg.Connection, outbox_id: int, wechat_msgid: int | None) -> None:
    await conn.execute(
        """UPDATE outbox SET status = 'sent', sent_at = now(), lease_until = NULL,
               wechat_msgid = $2, last_error = NULL
           WHERE id = $1 AND status = 'sending'""",
        outbox_id, wechat_msgid)


async def mark_retry(conn: asyncpg.Connection, outbox_id: int, delay: float, error: str) -> None:
    await conn.execute(
        """UPDATE outbox SET status = 'pending', lease_until = NULL, last_error = $3,
               next_attempt_at = now() + make_interval(secs => $2)
           WHERE id = $1 AND status = 'sending'""",
        outbox_id, delay, error)


async def mark_final(conn: asyncpg.Connection, outbox_id: int, status: str, error: str) -> None:
    await conn.execute(
        """UPDATE outbox SET status = $2, lease_until = NULL, last_error = $3
           WHERE id = $1 AND status = 'sending'""",
        outbox_id, status, error)


async def expire_leases(conn: asyncpg.Connection) -> int:
    """Rows whose worker died mid-send: we cannot know whether WeChat got them, so they become
    'unknown' rather than being sent again."""
    status = await conn.execute(
        """UPDATE outbox SET status = 'unknown', lease_until = NULL,
               last_error = 'worker stopped during delivery'
           WHERE status = 'sending' AND lease_until < now()""")
    return int(status.split()[-1])


async def depth(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM outbox WHERE status IN ('pending', 'sending') "
        "GROUP BY status")
    return {"pending": 0, "sending": 0} | {r["status"]: r["n"] for r in rows}


async def get(conn: asyncpg.Connection, outbox_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM outbox WHERE id = $1", outbox_id)


async def forget_account(conn: asyncpg.Connection, account_id: int) -> None:
    """Cancellation: the messages to the account's openids go, sent or not (they name the
    person and what was decided about them). Call before the account's identities are deleted."""
    await conn.execute(
        """DELETE FROM outbox o USING account_identities i
           WHERE i.account_id = $1 AND i.kind IN ('oa_openid', 'mp_openid')
             AND o.payload->>'touser' = i.subject""", account_id)


async def drop_payloads(conn: asyncpg.Connection, finished_before: datetime, limit: int) -> int:
    """Retention: the payload (recipient and text) of up to ``limit`` messages finished before
    ``finished_before`` goes; the row and its idempotency key stay, so a decision is still never
    notified twice. Returns how many were emptied."""
    status = await conn.execute(
        """UPDATE outbox SET payload = '{}'::jsonb
           WHERE id IN (SELECT id FROM outbox
                        WHERE status IN ('sent', 'failed', 'unknown') AND payload <> '{}'::jsonb
                          AND coalesce(sent_at, created_at) < $1
                        ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)""", finished_before, limit)
    return int(status.split()[-1])
