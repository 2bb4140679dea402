"""What a push from the Official Account does, exactly once, and what it answers.

WeChat re-sends a push it got no answer to within 5 seconds. A push's effects (the record of it,
the follower change) commit in one transaction keyed by its dedup key, so a second delivery is a
no-op even if it lands on another process; the first delivery's reply is kept (in Redis for the
fast path, in PostgreSQL for good) so a retry gets the very same answer. Work that is not done
within ``reply_budget`` seconds answers ``success`` at once and sends its reply later through the
customer-service message API, via the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from wechatpy import create_reply
from wechatpy.messages import BaseMessage

from wxbackend.infra.metrics import WECHAT_PUSHES
from wxbackend.services.errors import Unavailable
from wxbackend.services.keywords import KeywordRouter
from wxbackend.services.outbox import custom_text
from wxbackend.store import followers, inbound, outbox

log = logging.getLogger(__name__)

SUCCESS = "success"
_PENDING = "P"
_DEFERRED = "D"
_REPLY = "R:"
_SCENE_PREFIX = "qrscene_"


@dataclass(frozen=True)
class InboxResult:
    reply: str        # plaintext reply XML, or "success"
    outcome: str      # new | duplicate | deferred


def dedup_key(fields: dict) -> str:
    """MsgId for messages; for events (no MsgId) sender + CreateTime + Event + EventKey, so two
    different events in the same second stay apart."""
    if fields.get("MsgId"):
        return f"m:{fields['MsgId']}"
    return f"e:{fields.get('FromUserName', '')}:{fields.get('CreateTime', '')}:" \
           f"{fields.get('Event', '')}:{fields.get('EventKey', '') or ''}"


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class OAInbox:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, router: KeywordRouter, *,
                 appid: str, reply_budget: float = 4.0, dedup_ttl: int = 600) -> None:
        self._pool = pool
        self._redis = redis
        self._router = router
        self._appid = appid
        self._budget = reply_budget
        self._ttl = dedup_ttl
        self._background: set[asyncio.Task] = set()

    async def handle(self, message: BaseMessage, fields: dict) -> InboxResult:
        """``message`` is wechatpy's view (for replies); ``fields`` the push as sent.
        Raises :class:`Unavailable` when PostgreSQL or Redis fails: nothing was committed, and the
        non-200 answer makes WeChat deliver the push again."""
        try:
            return await self._handle(message, fields)
        except (OSError, TimeoutError, RedisError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as exc:
            WECHAT_PUSHES.labels("unavailable").inc()
            log.error("push not processed, storage unavailable: %s", type(exc).__name__)
            raise Unavailable() from exc

    async def _handle(self, message: BaseMessage, fields: dict) -> InboxResult:
        key = dedup_key(fields)
        rkey = f"wx:push:{self._appid}:{key}"
        if not await self._redis.set(rkey, _PENDING, nx=True, ex=self._ttl):
            WECHAT_PUSHES.labels("duplicate").inc()
            return InboxResult(await self._answer_again(rkey, key), "duplicate")
        late = asyncio.Event()
        task = asyncio.ensure_future(self._process(message, fields, key, late))
        try:
            reply = await asyncio.wait_for(asyncio.shield(task), self._budget)
        except TimeoutError:
            late.set()
            self._background.add(task)
            task.add_done_callback(lambda t: self._finished_late(t, rkey))
            await self._redis.set(rkey, _DEFERRED, xx=True, ex=self._ttl)
            WECHAT_PUSHES.labels("deferred").inc()
            return InboxResult(SUCCESS, "deferred")
        except BaseException:
            # Nothing committed: let WeChat's retry (or another process) try again.
            await self._forget(rkey)
            raise
        await self._redis.set(rkey, _REPLY + (reply or ""), xx=True, ex=self._ttl)
        WECHAT_PUSHES.labels("new").inc()
        return InboxResult(reply or SUCCESS, "new")

    async def drain(self) -> None:
        """Wait for deferred work (graceful shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _forget(self, rkey: str) -> None:
        try:
            await self._redis.delete(rkey)
        except (OSError, RedisError):
            log.warning("could not release %s; it expires in %ds", rkey, self._ttl)

    def _finished_late(self, task: asyncio.Task, rkey: str) -> None:
        self._background.discard(task)
        if task.cancelled() or task.exception() is not None:
            reason = "cancelled" if task.cancelled() else repr(task.exception())
            log.error("deferred push %s failed: %s; WeChat's next retry will process it", rkey, reason)
            # Nothing committed: forget the push so a retry is processed, not answered "success".
            cleanup = asyncio.ensure_future(self._forget(rkey))
            self._background.add(cleanup)
            cleanup.add_done_callback(self._background.discard)

    async def _answer_again(self, rkey: str, key: str) -> str:
        """A retry: answer what the first delivery answered, waiting briefly if it is still
        being worked on. A deferred push answers ``success`` (its reply goes by the outbox)."""
        deadline = time.monotonic() + self._budget
        delay = 0.01
        while True:
            value = await self._redis.get(rkey)
            if value is None:  # Redis lost it; PostgreSQL has the truth
                async with self._pool.acquire() as conn:
                    row = await inbound.get_reply(conn, self._appid, key)
                return (row["reply"] if row and not row["deferred"] else None) or SUCCESS
            if value.startswith(_REPLY):
                return value[len(_REPLY):] or SUCCESS
            if value == _DEFERRED or time.monotonic() + delay > deadline:
                return SUCCESS
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _reply_text(self, data: dict) -> str | None:
        msg_type = data.get("MsgType", "")
        if msg_type == "text":
            return await self._router.for_text(data.get("Content") or "")
        if msg_type != "event":
            return await self._router.default()
        event = data.get("Event", "")
        if event == "subscribe":
            return await self._router.for_event("subscribe")
        if event == "CLICK":
            return await self._router.for_click(data.get("EventKey") or "")
        if event == "SCAN":
            return await self._router.for_event("SCAN")
        return None

    async def _process(self, message: BaseMessage, data: dict, key: str,
                       late: asyncio.Event) -> str | None:
        event = data.get("Event") or None
        event_key = data.get("EventKey") or None
        at = datetime.fromtimestamp(message.time, UTC)
        text = await self._reply_text(data)
        reply = create_reply(text, message).render() if text else None
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                inbound_id = await inbound.insert_once(
                    conn, appid=self._appid, dedup_key=key, openid=message.source,
                    msg_type=data.get("MsgType", ""), event=event, event_key=event_key,
                    msg_id=_int(data.get("MsgId")), created=at, payload=data)
                if inbound_id is None:  # recorded by an earlier delivery whose Redis key is gone
                    row = await inbound.get_reply(conn, self._appid, key)
                    return row["reply"] if row and not row["deferred"] else None
                await self._apply(conn, message.source, data, event, event_key, at)
                deferred = late.is_set()
                await inbound.set_reply(conn, inbound_id, reply, deferred)
                if deferred and text:
                    await outbox.enqueue(conn, "custom", custom_text(message.source, text),
                                         f"reply:{inbound_id}")
            if not deferred and late.is_set() and text:
                # The deadline passed while we committed: the caller answered "success".
                async with conn.transaction():
                    await inbound.set_reply(conn, inbound_id, reply, True)
                    await outbox.enqueue(conn, "custom", custom_text(message.source, text),
                                         f"reply:{inbound_id}")
        return reply

    async def _apply(self, conn: asyncpg.Connection, openid: str, data: dict, event: str | None,
                     event_key: str | None, at: datetime) -> None:
        appid = self._appid
        if event == "subscribe":
            scene = event_key[len(_SCENE_PREFIX):] if event_key and \
                event_key.startswith(_SCENE_PREFIX) else None
            await followers.subscribe(conn, appid, openid, at, scene)
        elif event == "unsubscribe":
            await followers.unsubscribe(conn, appid, openid, at)
        elif event == "SCAN":
            await followers.record_scan(conn, appid, openid, at, event_key)
        elif event == "LOCATION":
            lat, lng = _float(data.get("Latitude")), _float(data.get("Longitude"))
            if lat is not None and lng is not None and -90 <= lat <= 90 and -180 <= lng <= 180:
                await followers.record_location(conn, appid, openid, at, lat, lng,
                                                _float(data.get("Precision")))
        else:
            await followers.record_activity(conn, appid, openid, at,
                                            event or data.get("MsgType", ""), event_key)
