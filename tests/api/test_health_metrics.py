"""``/healthz`` reports PostgreSQL and Redis; ``/metrics`` speaks Prometheus."""

from __future__ import annotations

import asyncpg
import pytest
import tornado.httpserver
import tornado.testing
import tornado.web

from wxbackend.handlers import health
from wxbackend.infra.embedded import _free_port
from wxbackend.infra.redis import create_redis
from wxbackend.services.messaging.outbox import custom_text
from wxbackend.store.messaging import outbox


async def test_healthy(http, server) -> None:
    response = await http.get(f"{server}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.expected_errors(r"503 GET /healthz")
@pytest.mark.parametrize("down", ["postgres", "redis"])
async def test_unhealthy_when_either_is_down(http, backing, down) -> None:
    dead = f"127.0.0.1:{_free_port()}"
    dsn = f"postgresql://postgres@{dead}/postgres" if down == "postgres" else backing.dsn
    redis_url = f"redis://{dead}/0" if down == "redis" else backing.redis_url
    pool = await asyncpg.create_pool(dsn, min_size=0, max_size=1)
    redis = create_redis(redis_url)
    sock, port = tornado.testing.bind_unused_port()
    srv = tornado.httpserver.HTTPServer(tornado.web.Application(health.routes(pool, redis)))
    srv.add_sockets([sock])
    try:
        response = await http.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        srv.stop()
        await redis.aclose()
        await pool.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body[down].startswith("down")
    assert body["redis" if down == "postgres" else "postgres"] == "ok"


async def test_metrics_count_requests_by_route_and_show_outbox_depth(http, server, rt) -> None:
    async with rt.pool.acquire() as conn:
        await outbox.enqueue(conn, "custom", custom_text("o1", "hi"))
    await http.get(f"{server}/wechat/oa", params={"signature": "x", "timestamp": "1",
                                                  "nonce": "n", "echostr": "e"})
    await http.get(f"{server}/h5/no-such-page.html")
    text = (await http.get(f"{server}/metrics")).text
    assert 'wxbackend_http_requests_total{method="GET",route="/wechat/oa",status="403"}' in text
    assert 'wxbackend_outbox_depth{status="pending"} 1.0' in text
    assert "wxbackend_http_request_duration_seconds_bucket" in text
    assert 'wxbackend_wechat_pushes_total{outcome="rejected"}' in text


async def test_unknown_paths_get_the_json_error_shape(http, server) -> None:
    response = await http.get(f"{server}/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "未找到相应的内容"}}


async def test_h5_pages_are_served_in_chinese(http, server) -> None:
    response = await http.get(f"{server}/h5/register.html")
    assert response.status_code == 200
    assert "用户注册" in response.text and 'lang="zh-CN"' in response.text
    index = await http.get(f"{server}/h5/")
    assert "申请加入工会" in index.text
