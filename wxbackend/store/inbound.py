"""SQL for ``wechat_inbound``: the record of every push, and what we answered."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def insert_once(conn: asyncpg.Connection, *, appid: str, dedup_key: str, openid: str,
                      msg_type: str, event: str | None, event_key: str | None,
                      msg_id: int | None, created: datetime, payload: dict) -> int | None:
    """Record a push; ``None`` when the same push was already recorded (a WeChat retry)."""
    return await conn.fetchval(
        """INSERT INTO wechat_inbound
               (appid, dedup_key, openid, msg_type, event, event_key, msg_id, created, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (appid, dedup_key) DO NOTHING
           RETURNING id""",
        appid, dedup_key, openid, msg_type, event, event_key, msg_id, created, payload)


async def set_reply(conn: asyncpg.Connection, inbound_id: int, reply: str | None,
                    deferred: bool) -> None:
    await conn.execute("UPDATE wechat_inbound SET reply = $2, deferred = $3 WHERE id = $1",
                       inbound_id, reply, deferred)


async def get_reply(conn: asyncpg.Connection, appid: str, dedup_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, reply, deferred FROM wechat_inbound WHERE appid = $1 AND dedup_key = $2",
        appid, dedup_key)


async def count(conn: asyncpg.Connection, appid: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM wechat_inbound WHERE appid = $1", appid)
