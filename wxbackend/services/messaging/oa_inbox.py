"""What a push from the Official Account does, exactly once, and what it answers.

WeChat re-sends a push it got no answer to within 5 seconds. A push's effects (the record of it,
the follower change) commit in one statement keyed by its dedup key, unique in PostgreSQL, so a
second delivery is a no-op even if it lands on another process: while the first is still being
written, PostgreSQL holds the second's insert until the first commits. The first delivery's reply
is kept with its record, so a retry gets the very same answer. Work that is not done within
``reply_budget`` seconds answers ``success`` at once and sends its reply later through the
customer-service message API, via the outbox.

Redis takes no part: a claim there would cost a round trip per burst and still leave PostgreSQL's
unique key as the real guarantee (Redis can lose its memory).

What a worker sends (text, a location, a phone or ID number typed in a message) is personal
data: a push's fields are stored sealed like other personal data, and :class:`InboxRetention`
drops them after ``[privacy] inbound_retention_days``, keeping the dedup key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from wxbackend.infra.coalesce import Coalescer
from wxbackend.infra.deadlines import Deadline, Deadlines
from wxbackend.infra.metrics import WECHAT_PUSHES
from wxbackend.infra.pii import PersonalData
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Unavailable
from wxbackend.services.messaging.keywords import KeywordRouter
from wxbackend.services.messaging.outbox import custom_text
from wxbackend.store.identity import followers
from wxbackend.store.messaging import inbound, outbox
from wxbackend.store.messaging.inbound import PAYLOAD_COLUMN, PushRecord
from wxbackend.wechat.envelope import OpenedPush, text_reply

log = logging.getLogger(__name__)

SUCCESS = "success"
_SCENE_PREFIX = "qrscene_"
_NEW, _DUPLICATE, _DEFERRED_PUSH, _UNAVAILABLE, _LOST = (
    WECHAT_PUSHES.labels(o) for o in ("new", "duplicate", "deferred", "unavailable", "lost"))
_STORAGE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True)
class InboxResult:
    reply: str        # plaintext reply XML, or "success"
    outcome: str      # new | duplicate | deferred | lost


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


def seal_payload(pii: PersonalData, fields: dict) -> bytes:
    """A push's fields as stored: compact JSON, SM4-GCM sealed (about 10 µs a push, measured in
    docs/privacy.md)."""
    return pii.encrypt(json.dumps(fields, ensure_ascii=False, separators=(",", ":")), PAYLOAD_COLUMN)


def open_payload(pii: PersonalData, sealed: bytes) -> dict:
    return json.loads(pii.decrypt(sealed, PAYLOAD_COLUMN))


class OAInbox:
    def __init__(self, pool: asyncpg.Pool, router: KeywordRouter, pii: PersonalData, *, appid: str,
                 reply_budget: float = 4.0,
                 late_retries: tuple[float, ...] = (1.0, 5.0, 15.0)) -> None:
        self._pool = pool
        self._router = router
        self._pii = pii
        self._appid = appid
        self._deadlines = Deadlines(reply_budget)
        self._late_retries = late_retries
        self._background: set[asyncio.Task] = set()
        # Other domains act on some events (an article's publishing finished): called once per
        # new push, in the background, after it is recorded. Keyed by the event's name.
        self.event_hooks: dict[str, Callable[[dict], Awaitable[object]]] = {}
        # In a burst, concurrent pushes share their statements. Batches of at most 32 rather
        # than all at once: several smaller statements come back one after another, so the first
        # ones' answers are being written while the others are still on their way, instead of
        # the whole burst waiting on the database together. Measured with 64 pushes in flight
        # (bench/oa_messages): batches of 8, 16, 24, 32 and 64 (the whole burst) gave 6459, 6320,
        # 6547, 7091 and 6405 pushes/s. Four in flight leave most of the pool to the rest. One
        # openid is never in two batches at once, so no batch waits on another's follower row.
        self._writer = Coalescer(self._record_many, max_batch=32, max_inflight=4,
                                 key=lambda p: p.openid)

    async def _record_many(self, pushes: list[PushRecord]) -> list[int | None]:
        async with self._pool.acquire() as conn:
            return await inbound.record(conn, self._appid, pushes)

    async def handle(self, push: OpenedPush, answer_now: Callable[[], None]) -> InboxResult:
        """Apply a verified push once and return what to answer.

        The push is processed in the caller's task. Should that take longer than the reply
        budget, ``answer_now`` is called (from a timer) so the caller answers ``success`` at once;
        processing goes on, its reply then goes through the outbox, and the result returned is
        ``deferred`` (which the caller no longer needs).
        Raises :class:`Unavailable` when PostgreSQL fails before the deadline: nothing was
        committed, and the non-200 answer makes WeChat deliver the push again."""
        # No task of its own: the push is worked on right here, and only a push that overruns
        # its deadline pays for the early answer.
        late = self._deadlines.start(self._deadline_passed, answer_now, asyncio.current_task())
        try:
            reply, outcome = await self._process(push, late)
        except _STORAGE_ERRORS as exc:
            _UNAVAILABLE.inc()
            if not late.passed:
                log.error("push not processed, storage unavailable: %s", type(exc).__name__)
                raise Unavailable() from exc
            return await self._record_late(push, late, exc)
        finally:
            late.close()
        if late.passed:
            _DEFERRED_PUSH.inc()
            return InboxResult(SUCCESS, "deferred")
        (_NEW if outcome == "new" else _DUPLICATE).inc()
        return InboxResult(reply or SUCCESS, outcome)

    async def _record_late(self, push: OpenedPush, late: Deadline, exc: BaseException) -> InboxResult:
        """``success`` was answered, so WeChat will not deliver this push again: keep trying to
        record it (and queue its reply) for a while before giving it up as lost."""
        for delay in self._late_retries:
            log.warning("deferred push not recorded (%s); trying again in %gs",
                        type(exc).__name__, delay)
            await asyncio.sleep(delay)
            try:
                await self._process(push, late)
            except _STORAGE_ERRORS as again:
                exc = again
                continue
            _DEFERRED_PUSH.inc()
            return InboxResult(SUCCESS, "deferred")
        _LOST.inc()
        log.error("push lost: answered success but never recorded, storage unavailable (%s)",
                  type(exc).__name__)
        return InboxResult(SUCCESS, "lost")

    def _deadline_passed(self, answer_now: Callable[[], None], task: asyncio.Task | None) -> None:
        answer_now()
        if task is not None:  # shutdown waits for it
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _in_background(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("event hook failed")

        task = asyncio.ensure_future(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for pushes past their deadline and for batches already on their way (graceful
        shutdown)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._writer.drain()

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

    async def _process(self, push: OpenedPush, late: Deadline) -> tuple[str | None, str]:
        """Record the push and apply its effect; its reply and ``new`` or, for a push recorded
        before, the reply stored then and ``duplicate``."""
        data = push.fields
        key = dedup_key(data)
        event = data.get("Event") or None
        event_key = data.get("EventKey") or None
        text = await self._reply_text(data)
        reply = text_reply(push, text) if text else None
        record = PushRecord(
            dedup_key=key, openid=push.source, msg_type=push.msg_type, event=event,
            event_key=event_key, msg_id=_int(data.get("MsgId")),
            created=datetime.fromtimestamp(push.create_time, UTC),
            payload_enc=seal_payload(self._pii, data), reply=reply,
            deferred=False, **self._effect(data, event, event_key))
        if late.passed:  # already past the deadline: record it and queue its reply together
            async with self._pool.acquire() as conn, conn.transaction():
                [inbound_id] = await inbound.record(conn, self._appid,
                                                    [dataclasses.replace(record, deferred=True)])
                if inbound_id is not None and text:
                    await self._queue_reply(conn, inbound_id, push.source, text)
        else:
            inbound_id = await self._writer.submit(record)
            if inbound_id is not None and late.passed and text:
                # The deadline passed while we wrote: "success" was sent.
                async with self._pool.acquire() as conn, conn.transaction():
                    await inbound.mark_deferred(conn, inbound_id)
                    await self._queue_reply(conn, inbound_id, push.source, text)
        if inbound_id is not None:
            hook = self.event_hooks.get(event or "")
            if hook is not None:
                self._in_background(hook(data))
            return reply, "new"
        # Recorded by an earlier delivery: answer what it answered ("success" if its reply went
        # through the outbox).
        async with self._pool.acquire() as conn:
            row = await inbound.get_reply(conn, self._appid, key)
        return (row["reply"] if row and not row["deferred"] else None), "duplicate"

    @staticmethod
    async def _queue_reply(conn: asyncpg.Connection, inbound_id: int, openid: str, text: str) -> None:
        await outbox.enqueue(conn, "custom", custom_text(openid, text), f"reply:{inbound_id}")

    @staticmethod
    def _effect(data: dict, event: str | None, event_key: str | None) -> dict:
        """Which follower change a push makes (see :data:`wxbackend.store.identity.followers.EFFECTS`)."""
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


_SEAL_BATCH = 500   # about 5 ms of sealing between two statements


class InboxRetention:
    """Drops the content of pushes, the payloads of messages we sent and the followers' last
    locations older than the retention period, and seals the content of rows written before
    contents were sealed. Run periodically by the worker and by ``wxbackend inbound purge``;
    each batch is its own short statement, so running it on several processes at once is safe
    (rows locked by one are skipped by the others)."""

    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, *, retention_days: int,
                 batch: int = 5000, now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._pii = pii
        self._retention = timedelta(days=retention_days)
        self._batch = batch
        self._now = now

    async def _in_batches(self, step: Callable[[asyncpg.Connection, int], Awaitable[int]]) -> int:
        """Run ``step(conn, batch)``, a short statement each, until a batch comes back short."""
        total = 0
        while True:
            async with self._pool.acquire() as conn:
                done = await step(conn, self._batch)
            total += done
            if done < self._batch:
                return total

    async def sweep(self) -> dict:
        """How many pushes lost their content (``dropped``), how many were sealed, how many sent
        messages lost their payload (``sent``) and how many followers' locations were dropped."""
        before = self._now() - self._retention
        dropped = await self._in_batches(lambda conn, n: inbound.drop_content(conn, before, n))
        sealed = 0
        while True:   # read, seal with no connection held, write back
            async with self._pool.acquire() as conn:
                rows = await inbound.clear_payloads(conn, _SEAL_BATCH)
            if not rows:
                break
            blobs = [seal_payload(self._pii, r["payload"]) for r in rows]
            async with self._pool.acquire() as conn:
                await inbound.seal_payloads(conn, [r["id"] for r in rows], blobs)
            sealed += len(rows)
        sent = await self._in_batches(lambda conn, n: outbox.drop_payloads(conn, before, n))
        async with self._pool.acquire() as conn:
            locations = await followers.drop_locations(conn, before)
        if dropped or sealed or sent or locations:
            log.info("message retention: content of %d pushes dropped, %d sealed, %d sent messages "
                     "emptied, %d locations dropped", dropped, sealed, sent, locations)
        return {"dropped": dropped, "sealed": sealed, "sent": sent, "locations": locations}
