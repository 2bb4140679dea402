"""SQL for ``wechat_inbound``: the record of every push, and what we answered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from wxbackend.store.followers import EFFECTS


@dataclass(slots=True)
class PushRecord:
    dedup_key: str
    openid: str
    msg_type: str
    event: str | None
    event_key: str | None
    msg_id: int | None
    created: datetime
    payload: dict
    reply: str | None
    deferred: bool
    effect: str                 # a key of wxbackend.store.followers.EFFECTS
    arg: str | None = None      # subscribe/scan: the scene; activity: the event or message type
    lat: float | None = None
    lng: float | None = None
    prec: float | None = None


_COLUMNS = ("dedup_key", "openid", "msg_type", "event", "event_key", "msg_id", "created",
            "payload", "reply", "deferred", "effect", "arg", "lat", "lng", "prec")
_TYPES = ("text", "text", "text", "text", "text", "bigint", "timestamptz", "jsonb", "text",
          "boolean", "text", "text", "float8", "float8", "float8")

_RECORD = f"""
WITH input AS (
    SELECT * FROM unnest({", ".join(f"${i + 2}::{t}[]" for i, t in enumerate(_TYPES))})
        AS t({", ".join(_COLUMNS)})
), ins AS (
    INSERT INTO wechat_inbound (appid, dedup_key, openid, msg_type, event, event_key, msg_id,
                                created, payload, reply, deferred)
    SELECT $1, dedup_key, openid, msg_type, event, event_key, msg_id, created, payload, reply,
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
