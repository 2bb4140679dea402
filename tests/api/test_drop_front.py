"""Once a process has seen an item sold out, further attempts on it are answered at the server's
front — the same 409 "已抢完", without reading the session or Redis — until the memory lapses or a
unit comes back; a request without credentials still gets its 401."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.api.test_activities_api import grassroots, worker_client
from tests.conftest import make_settings
from tests.services.activities.conftest import make_workers


@pytest.fixture
def settings(fake_wechat):
    return make_settings(fake_wechat.base_url, activities={"sold_out_memo_seconds": 60.0})


async def test_sold_out_attempts_are_answered_at_the_front(server, rt, db) -> None:
    union = await grassroots(db, "SC-510100", "锦江宾馆工会")
    now = rt.clock()
    item = await db.fetchval(
        """INSERT INTO offerings (kind, form, org_id, org_path, title, opens_at, closes_at, mode,
                                  stock, audience, status)
           SELECT 'service', 'coupon', id, path, '洗衣券', $1, $2, 'first_come', 1,
                  '{"level": "certified"}', 'published' FROM orgs WHERE code = 'SC-510100' RETURNING id""",
        now - timedelta(minutes=1), now + timedelta(days=1))
    first, second, third = [await worker_client(rt, w) for w in await make_workers(db, 3, union)]
    try:
        url = f"{server}/mp/v1/offerings/{item}/signup"
        assert (await first.post(url)).status_code == 201
        lost = await second.post(url)
        assert (lost.status_code, lost.json()["error"]["code"]) == (409, "sold_out")
        await rt.redis.flushdb()  # sessions and the gate gone: only the front can still answer
        again = await third.post(url)
        assert (again.status_code, again.json()) == (409, lost.json())
        async with httpx.AsyncClient(trust_env=False, timeout=10) as anonymous:
            assert (await anonymous.post(url)).status_code == 401
    finally:
        for client in (first, second, third):
            await client.aclose()
    assert await db.fetchval("SELECT count(*) FROM offering_claims") == 1
