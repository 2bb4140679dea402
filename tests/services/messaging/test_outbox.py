"""The outbox worker: written with the change, retried with backoff, sent at most once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.conftest import make_settings
from tests.fakes import FakeWeChat
from wxbackend.runtime import Runtime, open_runtime
from wxbackend.services.messaging.outbox import custom_text
from wxbackend.store.messaging import outbox

CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"
WORKER = "oZhangSan_0001"


async def enqueue(rt: Runtime, kind: str = "custom", payload: dict | None = None,
                  key: str | None = None) -> int:
    async with rt.pool.acquire() as conn:
        return await outbox.enqueue(conn, kind, payload or custom_text(WORKER, "审核通过"), key)


async def row(db: asyncpg.Connection, outbox_id: int) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM outbox WHERE id = $1", outbox_id)


async def test_a_row_is_delivered_once(rt, db, fake_wechat: FakeWeChat) -> None:
    oid = await enqueue(rt)
    assert await rt.outbox.run_once() == 1
    assert await rt.outbox.run_once() == 0
    assert fake_wechat.delivered(CUSTOM) == [custom_text(WORKER, "审核通过")]
    r = await row(db, oid)
    assert (r["status"], r["attempts"]) == ("sent", 1)
    assert r["sent_at"] is not None


async def test_a_rolled_back_change_sends_nothing(rt, fake_wechat) -> None:
    async with rt.pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await outbox.enqueue(conn, "custom", custom_text(WORKER, "x"))
                raise RuntimeError("the change failed")
    assert await rt.outbox.run_once() == 0
    assert fake_wechat.count(CUSTOM) == 0


async def test_idempotency_key_keeps_one_row(rt, db) -> None:
    assert await enqueue(rt, key="reply:1") is not None
    assert await enqueue(rt, key="reply:1") is None
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_busy_wechat_is_retried_later_with_backoff(rt, db, fake_wechat) -> None:
    oid = await enqueue(rt)
    fake_wechat.fail_next(CUSTOM, -1, times=3)  # the client's own retries use up all three
    await rt.outbox.run_once()
    r = await row(db, oid)
    assert r["status"] == "pending" and r["attempts"] == 1
    assert "-1" in r["last_error"]
    assert await db.fetchval("SELECT next_attempt_at > now() FROM outbox WHERE id = $1", oid)
    await db.execute("UPDATE outbox SET next_attempt_at = now() WHERE id = $1", oid)
    await rt.outbox.run_once()
    assert (await row(db, oid))["status"] == "sent"
    assert len(fake_wechat.delivered(CUSTOM)) == 1


async def test_quota_errors_give_up_after_max_attempts(rt, db, fake_wechat, backing) -> None:
    settings = rt.settings.replace(outbox={"max_attempts": 2})
    async with open_runtime(settings, backing.dsn, backing.redis_url) as rt2:
        oid = await enqueue(rt2)
        fake_wechat.fail_next(CUSTOM, 45011, times=5)
        for _ in range(2):
            await rt2.outbox.run_once()
            await db.execute("UPDATE outbox SET next_attempt_at = now() WHERE id = $1", oid)
        r = await row(db, oid)
    assert (r["status"], r["attempts"]) == ("failed", 2)


@pytest.mark.parametrize("errcode", [40003, 45015, 43004])
async def test_permanent_errors_fail_at_once(rt, db, fake_wechat, errcode) -> None:
    oid = await enqueue(rt)
    fake_wechat.fail_next(CUSTOM, errcode)
    await rt.outbox.run_once()
    r = await row(db, oid)
    assert r["status"] == "failed" and r["last_error"].startswith(str(errcode))


async def test_an_unknown_outcome_is_never_sent_again(db, fake_wechat, backing, clean_db) -> None:
    settings = make_settings(fake_wechat.base_url, wechat={"http_timeout": 0.3})
    async with open_runtime(settings, backing.dsn, backing.redis_url) as rt:
        await rt.redis.flushdb()
        oid = await enqueue(rt)
        fake_wechat.set_delay(CUSTOM, 1.0)
        await rt.outbox.run_once()
        assert (await row(db, oid))["status"] == "unknown"
        fake_wechat.set_delay(CUSTOM, 0)
        await db.execute("UPDATE outbox SET next_attempt_at = now()")
        assert await rt.outbox.run_once() == 0
    assert fake_wechat.count(CUSTOM) == 1


async def test_template_messages_carry_client_msg_id_and_may_be_retried(
        db, fake_wechat, backing, clean_db) -> None:
    settings = make_settings(fake_wechat.base_url, wechat={"http_timeout": 0.3})
    async with open_runtime(settings, backing.dsn, backing.redis_url) as rt:
        await rt.redis.flushdb()
        oid = await enqueue(rt, "template", {"touser": WORKER, "template_id": "TPL-approve",
                                             "data": {"thing1": {"value": "入会申请已通过"}}})
        fake_wechat.set_delay(TEMPLATE, 1.0)
        await rt.outbox.run_once()
        assert (await row(db, oid))["status"] == "pending"  # timed out, but safe to retry
        fake_wechat.set_delay(TEMPLATE, 0)
        await db.execute("UPDATE outbox SET next_attempt_at = now()")
        await rt.outbox.run_once()
        r = await row(db, oid)
    assert r["status"] == "sent" and r["wechat_msgid"] is not None
    bodies = fake_wechat.bodies(TEMPLATE)
    assert {b["client_msg_id"] for b in bodies} == {f"outbox-{oid}"}
    assert len(fake_wechat.delivered(TEMPLATE)) == 1  # WeChat dropped the repeat


@pytest.mark.expected_errors(r"left mid-delivery")
async def test_a_worker_that_died_mid_send_leaves_unknown(rt, db, fake_wechat) -> None:
    oid = await enqueue(rt)
    await db.execute("""UPDATE outbox SET status = 'sending', attempts = 1,
                        lease_until = now() - interval '1 second' WHERE id = $1""", oid)
    await rt.outbox.run_once()
    assert (await row(db, oid))["status"] == "unknown"
    assert fake_wechat.count(CUSTOM) == 0


async def test_two_workers_share_the_queue_without_double_sends(
        rt, db, fake_wechat, backing) -> None:
    ids = [await enqueue(rt, payload=custom_text(WORKER, f"消息{i}")) for i in range(120)]
    async with open_runtime(rt.settings, backing.dsn, backing.redis_url) as rt2:
        stop = asyncio.Event()
        workers = [asyncio.create_task(w.run(stop)) for w in (rt.outbox, rt2.outbox)]
        for _ in range(200):
            if await db.fetchval("SELECT count(*) FROM outbox WHERE status = 'sent'") == len(ids):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*workers)
    contents = [b["text"]["content"] for b in fake_wechat.delivered(CUSTOM)]
    assert sorted(contents) == sorted(f"消息{i}" for i in range(120))


async def test_depth_counts_pending_rows(rt, db) -> None:
    for _ in range(3):
        await enqueue(rt)
    assert (await outbox.depth(db))["pending"] == 3
