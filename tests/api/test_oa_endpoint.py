"""``/wechat/oa`` over HTTP: the real server, real PostgreSQL and Redis, pushes signed and
encrypted by the fake WeChat exactly as WeChat does."""

from __future__ import annotations

import asyncio
import socket
import time

import asyncpg
import httpx
import pytest

from tests.conftest import ORIGINAL_ID, PUBLIC_URL, start_server
from tests.fakes import FakePusher, FakeWeChat
from wxbackend.runtime import Runtime, open_runtime

WORKER = "oZhangSan_0001"  # 职工 张三


async def push(http: httpx.AsyncClient, server: str, pusher: FakePusher, xml: str,
               **kw) -> tuple[httpx.Response, dict[str, str] | str]:
    query, body = pusher.request(xml, **kw)
    response = await http.post(f"{server}/wechat/oa", params=query, content=body)
    if response.status_code != 200:
        return response, response.text
    plain = pusher.open_reply(response.content, timestamp=query["timestamp"], nonce=query["nonce"])
    return response, (FakePusher.parse(plain) if plain not in ("", "success") else plain)


async def follower(db: asyncpg.Connection, openid: str = WORKER) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM wechat_followers WHERE openid = $1", openid)


async def test_url_verification(http, server, pusher) -> None:
    response = await http.get(f"{server}/wechat/oa", params=pusher.verification("8675309"))
    assert response.status_code == 200
    assert response.text == "8675309"


async def test_a_push_answer_has_what_every_answer_has(http, server, pusher, caplog) -> None:
    """Pushes skip Tornado's request handlers; their answers still carry the request id (the
    caller's, if sane), the default headers, a Date, an access-log line and the request metric."""
    query, body = pusher.request(pusher.text(WORKER, "帮助"))
    with caplog.at_level("INFO", logger="wxbackend.access"):
        response = await http.post(f"{server}/wechat/oa", params={**query, "x": "%E5%B8%AE+1"},
                                   content=body, headers={"X-Request-Id": "wx-push-42"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/xml; charset=UTF-8"
    assert response.headers["X-Request-Id"] == "wx-push-42"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Date"].endswith(" GMT")
    assert int(response.headers["Content-Length"]) == len(response.content)
    [line] = [r for r in caplog.records if r.name == "wxbackend.access"]
    assert line.getMessage() == "POST /wechat/oa 200" and line.request_id == "wx-push-42"
    metrics = (await http.get(f"{server}/metrics")).text
    assert 'wxbackend_http_requests_total{method="POST",route="/wechat/oa",status="200"}' in metrics
    # The same connection goes on serving other requests through the application.
    assert (await http.get(f"{server}/healthz")).status_code == 200


async def test_percent_encoded_parameters_are_decoded(http, server, pusher) -> None:
    query, body = pusher.request(pusher.text(WORKER, "帮助"))
    target = f"{server}/wechat/oa?" + "&".join(
        f"{k}={''.join(f'%{b:02X}' for b in v.encode())}" for k, v in query.items())
    response = await http.post(target, content=body)
    assert response.status_code == 200 and b"<Encrypt>" in response.content


async def test_follow_with_qr_scene_is_persisted_and_welcomed(http, server, pusher, db) -> None:
    response, reply = await push(http, server, pusher, pusher.event(
        WORKER, "subscribe", EventKey="qrscene_chengdu-2026", Ticket="gQH47joAAAAAAAAAASxodHRw"))
    assert response.status_code == 200
    assert reply["MsgType"] == "text"
    assert reply["ToUserName"] == WORKER and reply["FromUserName"] == ORIGINAL_ID
    assert f"{PUBLIC_URL}/h5/register.html" in reply["Content"]
    row = await follower(db)
    assert row["subscribed"] is True
    assert row["subscribe_scene"] == "chengdu-2026"
    assert row["first_subscribed_at"] is not None


async def test_unsubscribe_then_follow_again_keeps_first_follow_time(http, server, pusher, db) -> None:
    now = int(time.time())
    await push(http, server, pusher, pusher.event(WORKER, "subscribe", create_time=now - 100))
    first = (await follower(db))["first_subscribed_at"]
    _, reply = await push(http, server, pusher, pusher.event(WORKER, "unsubscribe", create_time=now - 50))
    assert reply == "success"
    row = await follower(db)
    assert row["subscribed"] is False and row["unsubscribed_at"] is not None
    await push(http, server, pusher, pusher.event(WORKER, "subscribe", create_time=now))
    row = await follower(db)
    assert row["subscribed"] is True
    assert row["first_subscribed_at"] == first
    assert row["subscribed_at"] > first


async def test_scan_location_click_and_view_are_recorded(http, server, pusher, db) -> None:
    now = int(time.time())
    await push(http, server, pusher, pusher.event(WORKER, "SCAN", EventKey="activity-42",
                                                  Ticket="t", create_time=now - 3))
    row = await follower(db)
    assert row["last_scan_scene"] == "activity-42"

    _, reply = await push(http, server, pusher, pusher.event(
        WORKER, "LOCATION", Latitude="30.572269", Longitude="104.066541", Precision="65.0",
        create_time=now - 2))
    assert reply == "success"
    row = await follower(db)
    assert (row["latitude"], row["longitude"], row["location_precision"]) == \
        (30.572269, 104.066541, 65.0)

    _, reply = await push(http, server, pusher, pusher.event(WORKER, "CLICK", EventKey="HELP",
                                                             create_time=now - 1))
    assert "入会" in reply["Content"]
    _, reply = await push(http, server, pusher, pusher.event(
        WORKER, "VIEW", EventKey=f"{PUBLIC_URL}/h5/join.html", MenuId="1", create_time=now))
    assert reply == "success"
    row = await follower(db)
    assert (row["last_event"], row["last_event_key"]) == ("VIEW", f"{PUBLIC_URL}/h5/join.html")
    events = await db.fetch("SELECT event, event_key FROM wechat_inbound ORDER BY id")
    assert [e["event"] for e in events] == ["SCAN", "LOCATION", "CLICK", "VIEW"]


@pytest.mark.parametrize(("text", "expected"), [
    ("注册", "/h5/register.html"), ("我想入会", "/h5/join.html"), ("会员认证", "/h5/certify.html"),
    ("最近有什么活动", "/h5/activities.html"), ("普惠", "/h5/services.html"),
    ("帮助", "回复“注册”"), ("你好", "您的消息已收到"),
])
async def test_keyword_router_answers_in_chinese_with_links(http, server, pusher, text, expected) -> None:
    _, reply = await push(http, server, pusher, pusher.text(WORKER, text))
    assert expected in reply["Content"]


async def test_rules_live_in_the_database(http, server, pusher, db, rt: Runtime) -> None:
    await db.execute("""INSERT INTO keyword_rules (name, match_kind, pattern, reply, priority)
                        VALUES ('工会热线', 'exact', '热线', '职工服务热线：12351', 5)""")
    rt.keywords.invalidate()
    _, reply = await push(http, server, pusher, pusher.text(WORKER, "热线"))
    assert reply["Content"] == "职工服务热线：12351"


async def test_a_retried_message_has_one_effect_and_the_same_reply(http, server, pusher, db) -> None:
    xml = pusher.text(WORKER, "注册", msg_id=24_100_000_000_000_001)
    _, first = await push(http, server, pusher, xml)
    await asyncio.sleep(1.1)  # a retry comes seconds later; a fresh reply would have a new CreateTime
    _, second = await push(http, server, pusher, xml)
    assert first == second
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 1


async def test_a_retried_event_has_one_effect(http, server, pusher, db) -> None:
    xml = pusher.event(WORKER, "subscribe", create_time=int(time.time()))
    await push(http, server, pusher, xml)
    await db.execute("UPDATE wechat_followers SET subscribed = false")  # a later unfollow
    await push(http, server, pusher, xml)
    assert (await follower(db))["subscribed"] is False  # the retry did not apply it again
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 1


async def test_same_second_events_of_different_kinds_are_not_merged(http, server, pusher, db) -> None:
    now = int(time.time())
    await push(http, server, pusher, pusher.event(WORKER, "CLICK", EventKey="HELP", create_time=now))
    await push(http, server, pusher, pusher.event(WORKER, "VIEW", EventKey="u", create_time=now))
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 2


async def test_retry_reaching_another_process_concurrently(http, pusher, db, rt, backing) -> None:
    """Two server processes (two runtimes with their own pools, one DB and one Redis) get the
    same push at once: one effect, one reply for both."""
    async with open_runtime(rt.settings, backing.dsn, backing.redis_url) as rt2:
        srv1, url1 = await start_server(rt)
        srv2, url2 = await start_server(rt2)
        try:
            xml = pusher.text(WORKER, "入会")
            (_, a), (_, b) = await asyncio.gather(push(http, url1, pusher, xml),
                                                  push(http, url2, pusher, xml))
        finally:
            srv1.stop()
            srv2.stop()
    assert a == b and "/h5/join.html" in a["Content"]
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 1


async def test_retry_after_redis_lost_its_memory_is_still_one_effect(http, server, pusher, db, rt) -> None:
    xml = pusher.text(WORKER, "认证")
    _, first = await push(http, server, pusher, xml)
    await rt.redis.flushdb()
    _, second = await push(http, server, pusher, xml)
    assert first == second
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 1


async def test_slow_work_answers_success_and_replies_through_customer_service(
        http, pusher, db, rt, fake_wechat: FakeWeChat, backing) -> None:
    settings = rt.settings.replace(wechat={"reply_budget": 0.0005})
    async with open_runtime(settings, backing.dsn, backing.redis_url) as slow:
        srv, url = await start_server(slow)
        try:
            xml = pusher.text(WORKER, "普惠")
            response, reply = await push(http, url, pusher, xml)
            assert response.status_code == 200 and reply == "success"
            await slow.inbox.drain()
            _, again = await push(http, url, pusher, xml)  # WeChat's retry
            assert again == "success"
            assert await slow.outbox.run_once() == 1
        finally:
            srv.stop()
    sent = fake_wechat.bodies("/cgi-bin/message/custom/send")
    assert len(sent) == 1
    assert sent[0]["touser"] == WORKER
    assert "/h5/services.html" in sent[0]["text"]["content"]
    row = await db.fetchrow("SELECT deferred, reply FROM wechat_inbound")
    assert row["deferred"] is True
    assert await db.fetchval("SELECT status FROM outbox") == "sent"


async def test_messages_other_than_text_get_the_default_answer(http, server, pusher) -> None:
    _, reply = await push(http, server, pusher, pusher.message(
        WORKER, "image", PicUrl="http://mmbiz.qpic.cn/x.jpg", MediaId="media1"))
    assert "您的消息已收到" in reply["Content"]


# --- bad input: a 4xx, nothing written, never a 500 --------------------------------------------
async def _nothing_written(db: asyncpg.Connection) -> None:
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 0
    assert await db.fetchval("SELECT count(*) FROM wechat_followers") == 0


def _mutations(pusher: FakePusher):
    good = pusher.text(WORKER, "注册")
    yield "wrong signature", lambda q, b: ({**q, "signature": "0" * 40}, b), 403
    yield "wrong msg_signature", lambda q, b: ({**q, "msg_signature": "0" * 40}, b), 403
    yield "no signature", lambda q, b: ({k: v for k, v in q.items() if k != "signature"}, b), 400
    yield "stale timestamp", lambda q, b: pusher.request(good, timestamp=int(time.time()) - 3600), 403
    yield "plaintext in safe mode", lambda q, b: (
        {k: v for k, v in q.items() if k not in ("encrypt_type", "msg_signature")}, good.encode()), 403
    yield "malformed envelope", lambda q, b: (q, b[:-10]), 400
    yield "billion laughs", lambda q, b: (q, b"<!DOCTYPE x [<!ENTITY a 'a'>]><xml>&a;</xml>"), 400
    yield "oversized", lambda q, b: (q, b"<xml>" + b"x" * 70_000 + b"</xml>"), 413
    yield "over the server cap", lambda q, b: (q, b"x" * 1_100_000), 413


@pytest.mark.parametrize("case", list(range(9)))
async def test_bad_pushes_are_refused_and_write_nothing(http, server, pusher, db, case) -> None:
    name, mutate, status = list(_mutations(pusher))[case]
    query, body = mutate(*pusher.request(pusher.text(WORKER, "注册")))
    response = await http.post(f"{server}/wechat/oa", params=query, content=body)
    assert response.status_code == status, name
    await _nothing_written(db)


async def test_wrong_appid_in_the_ciphertext(http, server, db) -> None:
    from tests.conftest import AES_KEY, TOKEN
    intruder = FakePusher(TOKEN, AES_KEY, "wxffffffffffffffff", ORIGINAL_ID, mode="safe")
    query, body = intruder.request(intruder.text(WORKER, "注册"))
    response = await http.post(f"{server}/wechat/oa", params=query, content=body)
    assert response.status_code == 403
    await _nothing_written(db)


async def test_get_without_echostr_and_other_methods(http, server, pusher) -> None:
    params = pusher.verification("x")
    del params["echostr"]
    assert (await http.get(f"{server}/wechat/oa", params=params)).status_code == 400
    assert (await http.put(f"{server}/wechat/oa", content=b"")).status_code == 405



@pytest.mark.expected_errors(r"storage unavailable", r"POST /wechat/oa 503")
async def test_database_outage_is_a_503_so_wechat_delivers_again(http, pusher, db, rt, backing) -> None:
    async with open_runtime(rt.settings, backing.dsn, backing.redis_url) as broken:
        await broken.pool.close()  # every later acquire fails, as when PostgreSQL is gone
        srv, url = await start_server(broken)
        try:
            response, _ = await push(http, url, pusher, pusher.text(WORKER, "注册"))
        finally:
            srv.stop()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["X-Request-Id"] and response.headers["X-Content-Type-Options"] == "nosniff"
    await _nothing_written(db)


async def test_pushes_do_not_need_redis(http, pusher, db, rt, backing) -> None:
    """Retries are recognised by PostgreSQL's unique key alone, so a Redis outage leaves the
    Official Account answering, with one effect per push."""
    from wxbackend.infra.embedded import _free_port
    async with open_runtime(rt.settings, backing.dsn, f"redis://127.0.0.1:{_free_port()}/0") as no_redis:
        srv, url = await start_server(no_redis)
        try:
            xml = pusher.text(WORKER, "入会")
            _, first = await push(http, url, pusher, xml)
            _, again = await push(http, url, pusher, xml)
        finally:
            srv.stop()
    assert "/h5/join.html" in first["Content"] and again == first
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 1


async def test_a_burst_of_mixed_pushes_is_recorded_with_each_effect(http, server, pusher, db) -> None:
    """Concurrent pushes share statements; every effect still lands on the right follower,
    including several pushes from one follower in the same burst."""
    now = int(time.time())
    pushes = []
    for i in range(40):
        openid = f"oBurst{i:03d}"
        pushes.append(pusher.event(openid, "subscribe", EventKey=f"qrscene_s{i}", create_time=now - 5))
        pushes.append(pusher.text(openid, "帮助"))
        pushes.append(pusher.event(openid, "LOCATION", Latitude=str(30 + i / 100),
                                   Longitude="104.06", Precision="10", create_time=now))
    # the subscribe of each follower first, then the rest at once
    await asyncio.gather(*(push(http, server, pusher, xml) for xml in pushes[0::3]))
    results = await asyncio.gather(*(push(http, server, pusher, xml)
                                     for xml in pushes[1::3] + pushes[2::3]))
    assert all(r.status_code == 200 for r, _ in results)
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound") == 120
    rows = {r["openid"]: r for r in await db.fetch("SELECT * FROM wechat_followers")}
    assert len(rows) == 40
    for i in range(40):
        row = rows[f"oBurst{i:03d}"]
        assert row["subscribed"] and row["subscribe_scene"] == f"s{i}"
        assert row["latitude"] == pytest.approx(30 + i / 100)


async def test_connections_keep_tcp_nodelay_between_requests(http, pusher, rt) -> None:
    """The server sets TCP_NODELAY once per connection instead of on and off per response."""
    srv, url = await start_server(rt)
    try:
        await push(http, url, pusher, pusher.text(WORKER, "帮助"))
        assert (await http.get(f"{url}/healthz")).status_code == 200
        sockets = [conn.stream.socket for conn in srv._connections]
        assert sockets
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)
    finally:
        srv.stop()
