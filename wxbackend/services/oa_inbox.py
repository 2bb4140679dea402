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
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from wxbackend.infra.coalesce import Coalescer
from wxbackend.infra.metrics import WECHAT_PUSHES
from wxbackend.services.errors import Unavailable
from wxbackend.services.keywords import KeywordRouter
from wxbackend.services.outbox import custom_text
from wxbackend.store import inbound, outbox
from wxbackend.store.inbound import PushRecord
from wxbackend.wechat.envelope import OpenedPush, text_reply

log = logging.getLogger(__name__)

SUCCESS = "success"
_PENDING = "P"
_DEFERRED = "D"
_SCENE_PREFIX = "qrscene_"
_NEW, _DUPLICATE, _DEFERRED_PUSH, _UNAVAILABLE = (
    WECHAT_PUSHES.labels(o) for o in ("new", "duplicate", "deferred", "unavailable"))


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
        # In a burst, concurrent pushes share their Redis and PostgreSQL round trips.
        self._gate = Coalescer(self._claim_many, max_batch=512, max_inflight=4)
        self._writer = Coalescer(self._record_many, max_batch=256, max_inflight=4,
                                   key=lambda p: p.openid)

    async def _claim_many(self, keys: list[str]) -> list[bool]:
        """``SET key P NX EX ttl`` for each: true where this delivery is the first."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(key, _PENDING, nx=True, ex=self._ttl)
            return [bool(r) for r in await pipe.execute()]

    async def _record_many(self, pushes: list[PushRecord]) -> list[int | None]:
        async with self._pool.acquire() as conn:
            return await inbound.record(conn, self._appid, pushes)

    async def handle(self, push: OpenedPush) -> InboxResult:
        """Apply a verified push once and return what to answer.
        Raises :class:`Unavailable` when PostgreSQL or Redis fails: nothing was committed, and the
        non-200 answer makes WeChat deliver the push again."""
        try:
            return await self._handle(push)
        except (OSError, TimeoutError, RedisError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as exc:
            _UNAVAILABLE.inc()
            log.error("push not processed, storage unavailable: %s", type(exc).__name__)
            raise Unavailable() from exc

    async def _handle(self, push: OpenedPush) -> InboxResult:
        key = dedup_key(push.fields)
        rkey = f"wx:push:{self._appid}:{key}"
        if not await self._gate.submit(rkey):
            _DUPLICATE.inc()
            return InboxResult(await self._answer_again(rkey, key), "duplicate")
        late = asyncio.Event()
        task = asyncio.ensure_future(self._process(push, key, late))
        # asyncio.wait leaves the task running when the budget runs out.
        await asyncio.wait((task,), timeout=self._budget)
        if not task.done():
            late.set()
            self._background.add(task)
            task.add_done_callback(lambda t: self._finished_late(t, rkey))
            await self._redis.set(rkey, _DEFERRED, xx=True, ex=self._ttl)
            _DEFERRED_PUSH.inc()
            return InboxResult(SUCCESS, "deferred")
        try:
            reply = task.result()
        except BaseException:
            # Nothing committed: let WeChat's retry (or another process) try again.
            await self._forget(rkey)
            raise
        _NEW.inc()
        return InboxResult(reply or SUCCESS, "new")

    async def drain(self) -> None:
        """Wait for deferred work and for batches already on their way (graceful shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._gate.drain()
        await self._writer.drain()

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
        """A retry: answer what the first delivery answered (kept with its record), waiting
        briefly while the first delivery is still being worked on. A deferred push answers
        ``success``: its reply goes through the outbox."""
        deadline = time.monotonic() + self._budget
        delay = 0.01
        while True:
            async with self._pool.acquire() as conn:
                row = await inbound.get_reply(conn, self._appid, key)
            if row is not None:
                return (row["reply"] if not row["deferred"] else None) or SUCCESS
            if await self._redis.get(rkey) in (_DEFERRED, None) or \
                    time.monotonic() + delay > deadline:
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

    async def _process(self, push: OpenedPush, key: str, late: asyncio.Event) -> str | None:
        data = push.fields
        event = data.get("Event") or None
        event_key = data.get("EventKey") or None
        text = await self._reply_text(data)
        reply = text_reply(push, text) if text else None
        record = PushRecord(
            dedup_key=key, openid=push.source, msg_type=push.msg_type, event=event,
            event_key=event_key, msg_id=_int(data.get("MsgId")),
            created=datetime.fromtimestamp(push.create_time, UTC), payload=data, reply=reply,
            deferred=False, **self._effect(data, event, event_key))
        if late.is_set():  # already past the deadline: record it and queue its reply together
            async with self._pool.acquire() as conn, conn.transaction():
                [inbound_id] = await inbound.record(conn, self._appid,
                                                    [dataclasses.replace(record, deferred=True)])
                if inbound_id is not None and text:
                    await self._queue_reply(conn, inbound_id, push.source, text)
            return reply
        inbound_id = await self._writer.submit(record)
        if inbound_id is None:  # recorded by an earlier delivery whose Redis key is gone
            async with self._pool.acquire() as conn:
                return self._stored_reply(await inbound.get_reply(conn, self._appid, key))
        if late.is_set() and text:  # the deadline passed while we wrote: "success" was sent
            async with self._pool.acquire() as conn, conn.transaction():
                await inbound.mark_deferred(conn, inbound_id)
                await self._queue_reply(conn, inbound_id, push.source, text)
        return reply

    @staticmethod
    async def _queue_reply(conn: asyncpg.Connection, inbound_id: int, openid: str, text: str) -> None:
        await outbox.enqueue(conn, "custom", custom_text(openid, text), f"reply:{inbound_id}")

    @staticmethod
    def _stored_reply(row) -> str | None:
        return row["reply"] if row and not row["deferred"] else None

    @staticmethod
    def _effect(data: dict, event: str | None, event_key: str | None) -> dict:
        """Which follower change a push makes (see :data:`wxbackend.store.followers.EFFECTS`)."""
        if event == "subscribe":
            scene = event_key[len(_SCENE_PREFIX):] if event_key and \
                event_key.startswith(_SCENE_PREFIX) else None
            return {"effect": "subscribe", "arg": scene}
        if event == "unsubscribe":
            return {"effect": "unsubscribe"}
        if event == "SCAN":
            return {"effect": "scan", "arg": event_key}
        if event == "LOCATION":
            lat, lng = _float(data.get("Latitude")), _float(data.get("Longitude"))
            if lat is not None and lng is not None and -90 <= lat <= 90 and -180 <= lng <= 180:
                return {"effect": "location", "lat": lat, "lng": lng,
                        "prec": _float(data.get("Precision"))}
        return {"effect": "activity", "arg": event or data.get("MsgType", "")}
