"""The inbox when storage fails after ``success`` was already answered: WeChat will not send
the push again, so the inbox itself tries again before giving the push up."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timedelta

import asyncpg
import pytest

from tests.conftest import AUDIT_KEY, FIELD_KEYS, INDEX_KEY
from tests.fakes import FakePusher
from wxbackend.infra.pii import SealError
from wxbackend.runtime import Runtime
from wxbackend.services.clock import CHINA
from wxbackend.services.messaging.oa_inbox import InboxRetention, OAInbox, open_payload
from wxbackend.services.messaging.outbox import custom_text
from wxbackend.store.messaging import inbound, outbox

WORKER = "oZhangSan_0001"


def late_inbox(rt: Runtime) -> OAInbox:
    # A budget of nothing: every push overruns it and is answered "success" at once.
    return OAInbox(rt.pool, rt.keywords, rt.pii, appid=rt.settings.wechat.appid, reply_budget=0.0,
                   late_retries=(0.01, 0.01))


def failing(times: int):
    real = inbound.record
    calls = {"n": 0}

    async def record(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= times:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        return await real(*args, **kwargs)

    return record, calls


async def test_a_deferred_push_is_recorded_once_storage_is_back(
        rt: Runtime, pusher: FakePusher, db, monkeypatch) -> None:
    record, calls = failing(times=2)
    monkeypatch.setattr(inbound, "record", record)
    answered: list[str] = []
    query, body = pusher.request(pusher.text(WORKER, "入会"))
    result = await late_inbox(rt).handle(rt.envelope.open(query, body), lambda: answered.append("success"))
    assert answered == ["success"] and result.outcome == "deferred"
    assert calls["n"] == 3
    row = await db.fetchrow("SELECT deferred, openid FROM wechat_inbound")
    assert row["deferred"] is True and row["openid"] == WORKER
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1  # its reply, by customer service


@pytest.mark.expected_errors(r"push lost")
async def test_a_push_is_given_up_as_lost_only_after_the_retries(
        rt: Runtime, pusher: FakePusher, db, monkeypatch, caplog) -> None:
    record, calls = failing(times=99)
    monkeypatch.setattr(inbound, "record", record)
    query, body = pusher.request(pusher.text(WORKER, "入会"))
    result = await late_inbox(rt).handle(rt.envelope.open(query, body), lambda: None)
    assert result.outcome == "lost" and calls["n"] == 3
    assert "push lost" in caplog.text
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 0


# --- what a push leaves behind ------------------------------------------------------------------
async def test_a_push_is_stored_sealed(rt: Runtime, pusher: FakePusher, db) -> None:
    typed = "我的手机号码是13800000001"
    query, body = pusher.request(pusher.text(WORKER, typed))
    await rt.inbox.handle(rt.envelope.open(query, body), lambda: None)
    row = await db.fetchrow("SELECT payload, payload_enc FROM wechat_inbound")
    assert row["payload"] is None and b"13800000001" not in row["payload_enc"]
    assert open_payload(rt.pii, row["payload_enc"])["Content"] == typed
    with pytest.raises(SealError):      # bound to its column
        rt.pii.decrypt(row["payload_enc"], "members.phone")


async def test_retention_drops_the_content_and_keeps_the_dedup_key(
        rt: Runtime, pusher: FakePusher, db) -> None:
    old = pusher.request(pusher.text(WORKER, "入会"))
    await rt.inbox.handle(rt.envelope.open(*old), lambda: None)
    received = await db.fetchval("SELECT received_at FROM wechat_inbound")
    await rt.inbox.handle(rt.envelope.open(*pusher.request(pusher.text("oLater", "会员卡"))), lambda: None)
    await db.execute("UPDATE wechat_inbound SET received_at = $1 WHERE openid = 'oLater'",
                     received + timedelta(days=5))
    # a row written before payloads were sealed
    await db.execute(
        """INSERT INTO wechat_inbound (appid, dedup_key, openid, msg_type, created, payload, received_at)
           VALUES ($1, 'm:1', 'oEarlier', 'text', $2, '{"Content": "13800000001"}', $2)""",
        rt.settings.wechat.appid, received + timedelta(days=2))
    clock = [received + timedelta(days=29)]
    retention = InboxRetention(rt.pool, rt.pii, retention_days=30, now=lambda: clock[0])
    assert await retention.sweep() == {"dropped": 0, "sealed": 1, "sent": 0, "locations": 0}
    sealed = await db.fetchrow("SELECT payload, payload_enc FROM wechat_inbound WHERE openid = 'oEarlier'")
    assert sealed["payload"] is None
    assert open_payload(rt.pii, sealed["payload_enc"]) == {"Content": "13800000001"}
    clock[0] = received + timedelta(days=30, seconds=1)
    assert await retention.sweep() == {"dropped": 1, "sealed": 0, "sent": 0, "locations": 0}
    rows = {r["openid"]: r for r in await db.fetch("SELECT * FROM wechat_inbound")}
    first = rows[WORKER]
    assert (first["payload"], first["payload_enc"], first["reply"]) == (None, None, None)
    assert first["dedup_key"].startswith("m:") and rows["oLater"]["payload_enc"] is not None
    # WeChat delivering the same push again changes nothing
    again = await rt.inbox.handle(rt.envelope.open(*old), lambda: None)
    assert again.outcome == "duplicate" and await db.fetchval("SELECT count(*) FROM wechat_inbound") == 3
    clock[0] = received + timedelta(days=40)
    assert await retention.sweep() == {"dropped": 2, "sealed": 0, "sent": 0, "locations": 0}


async def test_retention_empties_the_messages_we_sent_and_keeps_their_keys(rt: Runtime, db) -> None:
    sent_at = datetime(2026, 12, 1, 9, 0, tzinfo=CHINA)
    for key, status in (("application:1:decision", "sent"), ("application:2:decision", "failed"),
                        ("application:3:decision", "pending")):
        await outbox.enqueue(db, "custom", custom_text(WORKER, "您的入会申请已通过。"), key)
        await db.execute("UPDATE outbox SET status = $2, sent_at = $3, created_at = $3 "
                         "WHERE idempotency_key = $1", key, status, sent_at)
    retention = InboxRetention(rt.pool, rt.pii, retention_days=30, now=lambda: sent_at + timedelta(days=30))
    assert (await retention.sweep())["sent"] == 0
    retention = InboxRetention(rt.pool, rt.pii, retention_days=30,
                               now=lambda: sent_at + timedelta(days=30, seconds=1))
    assert (await retention.sweep())["sent"] == 2
    rows = {r["idempotency_key"]: r["payload"] for r in await db.fetch("SELECT * FROM outbox")}
    assert rows["application:1:decision"] == rows["application:2:decision"] == {}
    assert rows["application:3:decision"]["touser"] == WORKER     # not yet sent: kept to send
    # the key stays: the same decision is still never notified twice
    assert await outbox.enqueue(db, "custom", custom_text(WORKER, "again"), "application:1:decision") is None


async def test_retention_drops_a_followers_old_location(rt: Runtime, pusher: FakePusher, db) -> None:
    where = pusher.event(WORKER, "LOCATION", Latitude="30.657", Longitude="104.066", Precision="65")
    await rt.inbox.handle(rt.envelope.open(*pusher.request(where)), lambda: None)
    reported = await db.fetchval("SELECT location_at FROM wechat_followers")
    clock = [reported + timedelta(days=30)]
    retention = InboxRetention(rt.pool, rt.pii, retention_days=30, now=lambda: clock[0])
    assert (await retention.sweep())["locations"] == 0
    clock[0] += timedelta(seconds=1)
    assert (await retention.sweep())["locations"] == 1
    row = await db.fetchrow("SELECT * FROM wechat_followers")
    assert (row["latitude"], row["longitude"], row["location_precision"]) == (None, None, None)
    assert row["subscribed"] and row["location_at"] == reported   # when, not where


async def test_the_purge_command_drops_old_content(rt: Runtime, db, backing) -> None:
    await db.execute(
        """INSERT INTO wechat_inbound (appid, dedup_key, openid, msg_type, created, payload_enc, received_at)
           VALUES ($1, 'm:1', $2, 'text', now(), '\\x01'::bytea, now() - interval '40 days'),
                  ($1, 'm:2', $2, 'text', now(), '\\x01'::bytea, now() - interval '20 days')""",
        rt.settings.wechat.appid, WORKER)
    env = {**os.environ, "WXBACKEND__DATABASE__DSN": backing.dsn, "WXBACKEND__REDIS__URL": backing.redis_url,
           "WXBACKEND__SECURITY__FIELD_KEYS": FIELD_KEYS, "WXBACKEND__SECURITY__INDEX_KEY": INDEX_KEY,
           "WXBACKEND__SECURITY__AUDIT_KEY": AUDIT_KEY}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "wxbackend.cli", "inbound", "purge",
                                                env=env, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and b"content dropped from 1 messages older than 30 days" in out
    kept = await db.fetch("SELECT dedup_key, payload_enc IS NOT NULL AS has_content FROM wechat_inbound "
                          "ORDER BY dedup_key")
    assert [(r["dedup_key"], r["has_content"]) for r in kept] == [("m:1", False), ("m:2", True)]
