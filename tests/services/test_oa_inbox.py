"""The inbox when storage fails after ``success`` was already answered: WeChat will not send
the push again, so the inbox itself tries again before giving the push up."""

from __future__ import annotations

import asyncpg
import pytest

from tests.fakes import FakePusher
from wxbackend.runtime import Runtime
from wxbackend.services.oa_inbox import OAInbox
from wxbackend.store import inbound

WORKER = "oZhangSan_0001"


def late_inbox(rt: Runtime) -> OAInbox:
    # A budget of nothing: every push overruns it and is answered "success" at once.
    return OAInbox(rt.pool, rt.keywords, appid=rt.settings.wechat.appid, reply_budget=0.0,
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
