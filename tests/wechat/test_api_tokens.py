"""The WeChat API client and access_token central control, counted at the fake WeChat."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings
from tests.fakes import FakeWeChat
from wxbackend.config import Settings
from wxbackend.infra.redis import create_redis
from wxbackend.wechat.api import WeChatAPI, WeChatAPIError, WeChatUnreachable
from wxbackend.wechat.tokens import TokenManager, TokenUnavailable

STABLE = "/cgi-bin/stable_token"
CUSTOM = "/cgi-bin/message/custom/send"
TEXT = {"touser": "oZhangSan", "msgtype": "text", "text": {"content": "您好"}}


class Process:
    """What one server process holds: its own Redis connections and HTTP client."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.redis = create_redis(redis_url)
        self.http = httpx.AsyncClient(trust_env=False)
        self.api = WeChatAPI(self.http, settings.wechat, self.redis)

    async def close(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()


@contextlib.asynccontextmanager
async def one_process(settings: Settings, redis_url: str) -> AsyncIterator[Process]:
    """One process on an emptied Redis, closed afterwards."""
    proc = Process(settings, redis_url)
    try:
        await proc.redis.flushdb()
        yield proc
    finally:
        await proc.close()


@pytest.fixture
async def processes(backing, fake_wechat: FakeWeChat) -> AsyncIterator[list[Process]]:
    settings = make_settings(fake_wechat.base_url)
    procs = [Process(settings, backing.redis_url) for _ in range(4)]
    await procs[0].redis.flushdb()
    yield procs
    for p in procs:
        await p.close()


async def test_many_processes_asking_at_once_cause_one_token_call(processes, fake_wechat) -> None:
    tokens = await asyncio.gather(*(p.api.tokens.get() for p in processes for _ in range(25)))
    assert len(set(tokens)) == 1
    assert fake_wechat.count(STABLE) == 1
    assert fake_wechat.count("/cgi-bin/token") == 0


async def test_token_is_cached_until_shortly_before_it_expires(processes, fake_wechat) -> None:
    token = await processes[0].api.tokens.get()
    ttl = await processes[0].redis.ttl("wx:access_token:wx0123456789abcdef")
    assert 7200 - 300 - 5 <= ttl <= 7200 - 300
    await processes[0].redis.expire("wx:access_token:wx0123456789abcdef", 1)
    await asyncio.sleep(1.1)
    assert await processes[1].api.tokens.get() == token  # stable_token normal mode: same token
    assert fake_wechat.count(STABLE) == 2


@pytest.mark.parametrize("errcode", [40001, 42001])
async def test_rejected_token_is_refreshed_once_and_the_call_retried(
        processes, fake_wechat, errcode) -> None:
    first = await processes[0].api.tokens.get()
    (fake_wechat.invalidate_tokens if errcode == 40001 else fake_wechat.expire_tokens)()
    results = await asyncio.gather(*(p.api.send_custom(TEXT) for p in processes))
    assert all(r["errcode"] == 0 for r in results)
    assert fake_wechat.count(STABLE) == 2  # one forced refresh for all four processes
    assert await processes[0].api.tokens.get() != first
    assert len(fake_wechat.delivered(CUSTOM)) == 4


async def test_a_token_rejected_twice_is_an_error_not_a_loop(processes, fake_wechat) -> None:
    await processes[0].api.tokens.get()
    fake_wechat.fail_next(CUSTOM, 40001, times=2)
    with pytest.raises(WeChatAPIError) as info:
        await processes[0].api.send_custom(TEXT)
    assert info.value.errcode == 40001
    assert fake_wechat.count(CUSTOM) == 2


async def test_busy_is_retried_but_quota_is_not(processes, fake_wechat) -> None:
    fake_wechat.fail_next(CUSTOM, -1, times=2)
    assert (await processes[0].api.send_custom(TEXT))["errcode"] == 0
    assert fake_wechat.count(CUSTOM) == 3
    fake_wechat.reset()
    fake_wechat.fail_next(CUSTOM, 45009)
    with pytest.raises(WeChatAPIError) as info:
        await processes[0].api.send_custom(TEXT)
    assert info.value.errcode == 45009
    assert fake_wechat.count(CUSTOM) == 1


async def test_timeouts_are_bounded_and_a_post_is_not_repeated(backing, fake_wechat) -> None:
    settings = make_settings(fake_wechat.base_url, wechat={"http_timeout": 0.3})
    async with one_process(settings, backing.redis_url) as proc:
        await proc.api.tokens.get()
        fake_wechat.set_delay(CUSTOM, 2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(WeChatUnreachable) as info:
            await proc.api.send_custom(TEXT)
        assert info.value.maybe_delivered is True
        assert loop.time() - started < 1.5
        assert fake_wechat.count(CUSTOM) == 1  # it may have arrived: never sent twice


async def test_unreachable_wechat_is_retried_with_backoff_then_reported(backing) -> None:
    settings = make_settings("http://127.0.0.1:9", wechat={"http_retries": 2})
    async with one_process(settings, backing.redis_url) as proc:
        with pytest.raises(WeChatUnreachable) as info:
            await proc.api.tokens.get()
        assert info.value.maybe_delivered is False


async def test_classic_token_endpoint(backing, fake_wechat) -> None:
    settings = make_settings(fake_wechat.base_url, wechat={"token_endpoint": "classic"})
    async with one_process(settings, backing.redis_url) as proc:
        await asyncio.gather(*(proc.api.send_custom(TEXT) for _ in range(10)))
        assert fake_wechat.count("/cgi-bin/token") == 1
        assert fake_wechat.count(STABLE) == 0


async def test_wrong_secret_is_reported_as_wechat_says(backing, fake_wechat) -> None:
    settings = make_settings(fake_wechat.base_url, wechat={"secret": "not-the-secret"})
    async with one_process(settings, backing.redis_url) as proc:
        with pytest.raises(WeChatAPIError) as info:
            await proc.api.send_custom(TEXT)
        assert info.value.errcode == 40125


async def test_waiters_give_up_when_the_refresher_is_stuck(backing) -> None:
    redis: aioredis.Redis = create_redis(backing.redis_url)
    try:
        await redis.flushdb()
        stuck = asyncio.Event()

        async def never() -> tuple[str, int]:
            await stuck.wait()
            return "t", 7200

        holder = TokenManager(redis, "wxstuck", never, wait_seconds=0.3)
        waiter = TokenManager(redis, "wxstuck", never, wait_seconds=0.3)
        task = asyncio.create_task(holder.get())
        await asyncio.sleep(0.05)
        with pytest.raises(TokenUnavailable):
            await waiter.get()
        stuck.set()
        assert await task == "t"
    finally:
        await redis.aclose()
