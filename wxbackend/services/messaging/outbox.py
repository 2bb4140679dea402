"""The outbox: messages to WeChat are rows written with the change that causes them, and the
worker delivers them — retried with backoff, and sent at most once per row.

At most once: a row is claimed ('sending') and the claim committed before WeChat is called. A
definite failure (WeChat busy, quota, token, connection refused) goes back to 'pending' with a
backoff; a call whose outcome cannot be known (timeout after the request left) becomes
'unknown', never a second send — except template messages, which carry ``client_msg_id`` so
WeChat itself drops a repeat. A worker that dies mid-send leaves a lease that expires into
'unknown'. Several workers (one per server process) share the queue through SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging
import random

import asyncpg

from wxbackend.config import OutboxSettings
from wxbackend.infra.metrics import OUTBOX_SENT
from wxbackend.store.messaging import outbox as store
from wxbackend.wechat.api import WeChatAPI, WeChatAPIError, WeChatUnreachable
from wxbackend.wechat.tokens import TokenUnavailable

log = logging.getLogger(__name__)

# Errors that say "not delivered, try later": busy, quotas, token trouble after the one refresh.
RETRYABLE = frozenset({-1, 45009, 45011, 40001, 40014, 42001, 45035})


def custom_text(openid: str, content: str) -> dict:
    """A customer-service text message (``/cgi-bin/message/custom/send``)."""
    return {"touser": openid, "msgtype": "text", "text": {"content": content}}


class OutboxWorker:
    def __init__(self, pool: asyncpg.Pool, api: WeChatAPI, settings: OutboxSettings, *,
                 mp: WeChatAPI | None = None) -> None:
        self._pool = pool
        self._api = api
        self._settings = settings
        self._senders = {
            "custom": api.send_custom,
            "template": api.send_template,
            "oa_subscribe": api.send_oa_subscribe,
        }
        if mp is not None:  # the Mini Program's own messages go with its own token
            self._senders["mp_subscribe"] = mp.send_mp_subscribe

    def _backoff(self, attempts: int) -> float:
        base = self._settings.backoff_base ** attempts
        return min(self._settings.backoff_max, base) * (0.75 + random.random() / 2)

    async def run_once(self) -> int:
        """Deliver one batch of due rows; return how many were handled."""
        async with self._pool.acquire() as conn:
            expired = await store.expire_leases(conn)
            if expired:
                log.error("%d outbox rows were left mid-delivery; marked unknown", expired)
            rows = await store.claim_due(conn, self._settings.batch_size,
                                         self._settings.lease_seconds)
        if rows:
            await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _deliver(self, row: asyncpg.Record) -> None:
        outbox_id, kind, attempts = row["id"], row["kind"], row["attempts"]
        payload = dict(row["payload"])
        if kind == "template":
            payload.setdefault("client_msg_id", f"outbox-{outbox_id}")
        send = self._senders.get(kind)
        status, error, delay, msgid = "sent", "", 0.0, None
        if send is None:
            status, error = "failed", f"unknown kind {kind}"
        else:
            try:
                answer = await send(payload)
                msgid = answer.get("msgid")
            except WeChatAPIError as exc:
                error = f"{exc.errcode} {exc.errmsg}"
                status = "retry" if exc.errcode in RETRYABLE else "failed"
            except TokenUnavailable as exc:
                status, error = "retry", str(exc)
            except WeChatUnreachable as exc:
                error = str(exc)
                retry_safe = not exc.maybe_delivered or "client_msg_id" in payload
                status = "retry" if retry_safe else "unknown"
            except Exception as exc:  # a bug must not kill the worker; the row records it
                log.exception("outbox row %d crashed the sender", outbox_id)
                status, error = "unknown", f"{type(exc).__name__}: {exc}"
        if status == "retry":
            if attempts >= self._settings.max_attempts:
                status = "failed"
            else:
                delay = self._backoff(attempts)
        OUTBOX_SENT.labels(kind, status).inc()
        async with self._pool.acquire() as conn:
            if status == "sent":
                await store.mark_sent(conn, outbox_id, int(msgid) if msgid else None)
            elif status == "retry":
                await store.mark_retry(conn, outbox_id, delay, error)
            else:
                await store.mark_final(conn, outbox_id, status, error)
        if status in {"failed", "unknown"}:
            log.warning("outbox row %d (%s) %s: %s", outbox_id, kind, status, error)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a full batch is followed at once by the next one."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("outbox worker cannot reach the database: %s", exc)
                handled = 0
            if handled < self._settings.batch_size:
                try:
                    await asyncio.wait_for(stop.wait(), self._settings.poll_interval)
                except TimeoutError:
                    pass
