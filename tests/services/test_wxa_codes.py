"""Mini Program codes are asked of WeChat once per (page, scene) and kept: concurrent first
requests, in one process or in several, share one call; a failure keeps nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from wxbackend.services.clock import CHINA
from wxbackend.services.wxa_codes import WxaCodes
from wxbackend.wechat.api import WeChatAPIError

CODE = "/wxa/getwxacodeunlimit"
PAGE = "pages/offering/offering"


async def test_a_code_is_drawn_once_and_kept_with_the_services_time(rt, db, fake_wechat, clock) -> None:
    clock.set(datetime(2027, 4, 30, 23, 50, tzinfo=CHINA), frozen=True)
    first = await rt.wxa_codes.png(PAGE, "o=1")
    assert first[:2] == b"\xff\xd8"
    assert await rt.wxa_codes.png(PAGE, "o=1") == first
    assert fake_wechat.count(CODE) == 1
    row = await db.fetchrow("SELECT image, created_at FROM wxa_codes WHERE page = $1 AND scene = $2",
                            PAGE, "o=1")
    assert row["image"] == first and row["created_at"] == datetime(2027, 4, 30, 23, 50, tzinfo=CHINA)
    assert await rt.wxa_codes.png(PAGE, "o=2") != first  # another scene is another code
    assert fake_wechat.count(CODE) == 2


async def test_concurrent_first_requests_in_one_process_share_one_call(rt, fake_wechat) -> None:
    fake_wechat.set_delay(CODE, 0.3)
    images = await asyncio.gather(*(rt.wxa_codes.png(PAGE, "o=3") for _ in range(8)))
    assert len(set(images)) == 1 and fake_wechat.count(CODE) == 1


async def test_concurrent_first_requests_in_two_processes_share_one_call(rt, fake_wechat) -> None:
    # A second service over the same database and Redis stands for another worker process.
    other = WxaCodes(rt.pool, rt.mp_api, redis=rt.redis, now=rt.clock)
    fake_wechat.set_delay(CODE, 0.3)
    images = await asyncio.gather(rt.wxa_codes.png(PAGE, "o=4"), other.png(PAGE, "o=4"),
                                  other.png(PAGE, "o=4"))
    assert len(set(images)) == 1 and fake_wechat.count(CODE) == 1


async def test_a_failure_keeps_nothing_and_the_next_request_asks_again(rt, db, fake_wechat) -> None:
    fake_wechat.fail_next(CODE, 45009)  # over 5,000 calls a minute
    with pytest.raises(WeChatAPIError) as quota:
        await rt.wxa_codes.png(PAGE, "o=5")
    assert quota.value.errcode == 45009
    assert await db.fetchval("SELECT count(*) FROM wxa_codes") == 0
    assert (await rt.wxa_codes.png(PAGE, "o=5"))[:2] == b"\xff\xd8"
    assert fake_wechat.count(CODE) == 2
    assert await rt.redis.keys("wxacode:lock:*") == []  # the lock went with the failed call
