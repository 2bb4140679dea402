"""Readers' lists, search over Chinese text, and visit counting without personal data."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import redis.asyncio as aioredis

from tests.services.channels.conftest import T0, article_body, channel_of, live_article
from wxbackend.services.channels.reading import CACHE_SECONDS, PAGE_SIZE, Reading
from wxbackend.services.errors import InvalidInput, NotFound

WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI")


def _url(client: aioredis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.fixture
async def chengdu(db) -> int:
    return await channel_of(db, "SC-510100")


async def test_search_finds_chinese_words_in_titles_and_bodies(rt, db, cadres, chengdu) -> None:
    a = await live_article(rt, cadres, chengdu, title="职工技能大赛开幕",
                           body="<p>焊工、电工同台竞技</p>")
    b = await live_article(rt, cadres, chengdu, title="夏送清凉慰问一线职工",
                           body="<p>高温天气下的<b>户外劳动者</b>收到慰问品</p>")
    found = lambda data: [x["id"] for x in data["articles"]]  # noqa: E731
    assert found(await rt.reading.search("技能")) == [a["id"]]
    assert found(await rt.reading.search("职工")) == [b["id"], a["id"]]  # newest first
    assert found(await rt.reading.search("户外劳动")) == [b["id"]]      # in the body, across a tag
    assert found(await rt.reading.search("电工 焊工")) == [a["id"]]     # every word
    assert found(await rt.reading.search("工职")) == []                 # the pair, not the letters
    assert found(await rt.reading.search("工会技能")) == []             # "工会" appears nowhere
    assert found(await rt.reading.search("清", channel="511700")) == []
    with pytest.raises(InvalidInput):
        await rt.reading.search("  ")
    await rt.articles.withdraw(cadres["writer"], a["id"], "重复")
    assert found(await rt.reading.search("技能")) == []


async def test_channel_pages_list_newest_first_in_pages(rt, db, cadres, chengdu, clock) -> None:
    ids = []
    for n in range(PAGE_SIZE + 3):
        clock.set(T0 + timedelta(minutes=n), frozen=True)
        ids.append((await live_article(rt, cadres, chengdu, title=f"第{n}篇"))["id"])
    first = await rt.reading.channel("510100")
    assert [a["id"] for a in first["articles"]] == ids[::-1][:PAGE_SIZE]
    second = await rt.reading.channel("510100", cursor=first["next"])
    assert [a["id"] for a in second["articles"]] == ids[::-1][PAGE_SIZE:] and second["next"] is None
    assert (await rt.reading.latest())["articles"][0]["id"] == ids[-1]
    with pytest.raises(NotFound):
        await rt.reading.channel("nowhere")
    with pytest.raises(InvalidInput):
        await rt.reading.channel("510100", cursor="yesterday")


async def test_visits_count_views_and_visitors_without_keeping_who(rt, db, cadres, chengdu) -> None:
    live = await live_article(rt, cadres, chengdu)
    counter = rt.visits
    for _ in range(3):
        assert counter.record(live["id"], chengdu, "203.0.113.7", WECHAT_UA)
    assert counter.record(live["id"], chengdu, "203.0.113.8", WECHAT_UA)
    assert not counter.record(live["id"], chengdu, "66.249.66.1", "Googlebot/2.1")
    assert not counter.record(live["id"], chengdu, "203.0.113.9", "")
    await counter.flush()
    assert counter.pending == 0
    assert await rt.visit_stats.roll_up() == 2  # the article and the channel
    row = await db.fetchrow("SELECT views, visitors FROM article_visits WHERE article_id = $1",
                            live["id"])
    assert dict(row) == {"views": 4, "visitors": 2}
    # Redis holds counters and HyperLogLogs only: no address, no browser, no visitor hash.
    keys = await rt.redis.keys("visits:*")
    for key in keys:
        kind = await rt.redis.type(key)
        assert kind in ("string", "set"), key  # HyperLogLogs are strings
        if kind == "set":
            assert await rt.redis.smembers(key) == {f"a:{live['id']}", f"c:{chengdu}"}
    raw = aioredis.Redis.from_url(_url(rt.redis))
    try:
        dump = b"".join([await raw.get(k) or b"" for k in keys if k.endswith(":u")])
    finally:
        await raw.aclose()
    assert len(dump) > 0 and b"203.0.113" not in dump and b"iPhone" not in dump
    stats = await rt.visit_stats.channel_stats(cadres["writer"], chengdu, days=7)
    assert stats["days"][-1] == {"day": T0.date().isoformat(), "views": 4, "visitors": 2}
    assert stats["views"] == 4 and stats["top_articles"][0]["id"] == live["id"]
    assert stats["published_per_month"] == [{"month": "2030-06", "articles": 1}]
    with pytest.raises(NotFound):
        await rt.visit_stats.channel_stats(cadres["dazhou"], chengdu)


async def test_a_roll_up_again_keeps_the_counts(rt, db, cadres, chengdu) -> None:
    live = await live_article(rt, cadres, chengdu)
    rt.visits.record(live["id"], chengdu, "198.51.100.1", WECHAT_UA)
    await rt.visits.flush()
    await rt.visit_stats.roll_up()
    rt.visits.record(live["id"], chengdu, "198.51.100.2", WECHAT_UA)
    await rt.visits.flush()
    await rt.visit_stats.roll_up()
    await rt.visit_stats.roll_up()
    assert await db.fetchval("SELECT views FROM channel_visits WHERE channel_id = $1", chengdu) == 2


class _CountingPool:
    """The runtime's pool, counting the connections taken."""

    def __init__(self, pool) -> None:
        self.pool = pool
        self.taken = 0

    def acquire(self):
        self.taken += 1
        return self.pool.acquire()


async def test_a_hot_article_is_read_once_however_many_ask(rt, db, cadres, chengdu) -> None:
    live = await live_article(rt, cadres, chengdu)
    ticks = [1000.0]
    reading = Reading(_CountingPool(rt.pool), tick=lambda: ticks[0])
    pool = reading._pool
    pages = await asyncio.gather(*(reading.article(live["id"]) for _ in range(50)))
    assert pool.taken == 1 and {p["etag"] for p in pages} == {pages[0]["etag"]}
    # The copy is due: readers get it at once while one of them reads the new one.
    await rt.articles.update(cadres["writer"], live["id"], article_body(body="<p>第二版</p>"))
    await rt.articles.submit(cadres["writer"], live["id"])
    await rt.articles.review(cadres["reviewer"], live["id"], approve=True)
    await rt.articles.publish(cadres["writer"], live["id"])
    ticks[0] += CACHE_SECONDS + 1
    stale = await asyncio.gather(*(reading.article(live["id"]) for _ in range(50)))
    assert {p["revision"] for p in stale} == {1} and pool.taken == 2
    await asyncio.sleep(0.05)  # the one read finishes
    assert (await reading.article(live["id"]))["revision"] == 2 and pool.taken == 2
    # Gone: the next read after the copy is due says so.
    await rt.articles.withdraw(cadres["writer"], live["id"], "重复")
    ticks[0] += CACHE_SECONDS + 1
    await reading.article(live["id"])       # the old copy, one last time, while it is read
    await asyncio.sleep(0.05)
    with pytest.raises(NotFound):
        await reading.article(live["id"])
