"""SQL for ``wechat_inbound``: the record of every push, and what we answered.

A push's content is stored sealed (``payload_enc``, SM4-GCM under the column label
:data:`PAYLOAD_COLUMN`) and dropped after the retention period; the row itself stays, since its
dedup key is what makes a retried push a no-op."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from wxbackend.store.identity.followers import EFFECTS


@dataclass(slots=True)
class PushRecord:
    dedup_key: str
    openid: str
    msg_type: str
    event: str | None
    event_key: str | None
    msg_id: int | None
    created: datetime
    payload_enc: bytes          # the push's fields as JSON, sealed under PAYLOAD_COLUMN
    reply: str | None
    deferred: bool
    effect: str                 # a key of wxbackend.store.identity.followers.EFFECTS
    arg: str | None = None      # subscribe/scan: the scene; activity: the event or message type
    lat: float | None = None
    lng: float | None = None
    prec: float | None = None


PAYLOAD_COLUMN = "wechat_inbound.payload"

_COLUMNS = ("dedup_key", "openid", "msg_type", "event", "event_key", "msg_id", "created",
            "payload_enc", "reply", "deferred", "effect", "arg", "lat", "lng", "prec")
_TYPES = ("text", "text", "text", "text", "text", "bigint", "timestamptz", "bytea", "text",
          "boolean", "text", "text", "float8", "float8", "float8")

_RECORD = f"""
WITH input AS (
    SELECT * FROM unnest({", ".join(f"${i + 2}::{t}[]" for i, t in enumerate(_TYPES))})
        AS t({", ".join(_COLUMNS)})
), ins AS (
    INSERT INTO wechat_inbound (appid, dedup_key, openid, msg_type, event, event_key, msg_id,
                                created, payload_enc, reply, deferred)
    SELECT $1, dedup_key, openid, msg_type, event, event_key, msg_id, created, payload_enc, reply,
           deferred
    FROM input
    ON CONFLICT (appid, dedup_key) DO NOTHING
    RETURNING id, dedup_key
), new AS (
    SELECT input.*, ins.id FROM input JOIN ins USING (dedup_key)
), {", ".join(f"effect_{kind} AS ({sql})" for kind, sql in EFFECTS.items())}
SELECT dedup_key, id FROM ins"""  # noqa: S608 - built from constants only; values are parameters


async def record(conn: asyncpg.Connection, appid: str, pushes: list[PushRecord]) -> list[int | None]:
    """Record pushes and apply their follower effects in one statement. Returns, per push, its
    new row id, or ``None`` when the same push was recorded before (a WeChat retry) — in which
    case it changed nothing. At most one push per openid per call (an upsert may not touch a
    row twice in one statement)."""
    if len({p.openid for p in pushes}) != len(pushes):
        raise ValueError("one push per openid per statement")
    columns = [[getattr(p, name) for p in pushes] for name in _COLUMNS]
    rows = await conn.fetch(_RECORD, appid, *columns)
    ids = {r["dedup_key"]: r["id"] for r in rows}
    return [ids.get(p.dedup_key) for p in pushes]


async def mark_deferred(conn: asyncpg.Connection, inbound_id: int) -> None:
    await conn.execute("UPDATE wechat_inbound SET deferred = true WHERE id = $1", inbound_id)


async def get_reply(conn: asyncpg.Connection, appid: str, dedup_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, reply, deferred FROM wechat_inbound WHERE appid = $1 AND dedup_key = $2",
        appid, dedup_key)


async def forget_account(conn: asyncpg.Connection, account_id: int) -> None:
    """Cancellation: every push from the account's Official Account openids goes. Call before
    the account's identities are deleted."""
    await conn.execute(
        """DELETE FROM wechat_inbound w USING account_identities i
           WHERE i.account_id = $1 AND i.kind = 'oa_openid'
             AND w.appid = i.issuer AND w.openid = i.subject""", account_id)


async def drop_content(conn: asyncpg.Connection, received_before: datetime, limit: int) -> int:
    """Retention: the content (and our reply, which quotes the sender) of up to ``limit`` pushes
    received before ``received_before`` goes; the rows and their dedup keys stay. Rows another
    sweep is working on are skipped. Returns how many were emptied."""
    status = await conn.execute(
        """UPDATE wechat_inbound SET payload = NULL, payload_enc = NULL, reply = NULL
           WHERE id IN (SELECT id FROM wechat_inbound
                        WHERE received_at < $1
                          AND (payload IS NOT NULL OR payload_enc IS NOT NULL OR reply IS NOT NULL)
                        ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)""",
        received_before, limit)
    return int(status.split()[-1])


async def clear_payloads(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Rows written before payloads were sealed."""
    return await conn.fetch(
        "SELECT id, payload FROM wechat_inbound WHERE payload IS NOT NULL LIMIT $1", limit)


async def seal_payloads(conn: asyncpg.Connection, ids: list[int], sealed: list[bytes]) -> None:
    """Store sealed payloads in place of clear ones (a row emptied meanwhile stays empty)."""
    await conn.execute(
        """UPDATE wechat_inbound w SET payload_enc = v.sealed, payload = NULL
           FROM unnest($1::bigint[], $2::bytea[]) AS v(id, sealed)
           WHERE w.id = v.id AND w.payload IS NOT NULL""",
        ids, sealed)
