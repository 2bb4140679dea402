"""The HTTP edge under hostile or broken conditions: forwarded headers from strangers, Redis
gone, odd input (deep JSON, Unicode digits, oversized bodies), query strings in logs, and the
security headers of the pages."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
import tornado.httputil

from tests.api.test_identity import bearer, make_app, mp_sign_in, signed
from tests.conftest import MP_APPID, start_server
from tests.services.cadres.test_cadres import PASSWORD, otp
from wxbackend.infra.embedded import _free_port
from wxbackend.runtime import Runtime, open_runtime

TOO_LARGE = {"code": "too_large", "message": "提交的内容过大"}


async def _serve(rt: Runtime, **server: object) -> tuple[object, str]:
    """The real server for ``rt`` with some [server] settings changed."""
    return await start_server(dataclasses.replace(rt, settings=rt.settings.replace(server=server)))


async def _sms_addresses(rt: Runtime) -> set[str]:
    """The client addresses the SMS sender counted (its per-address keys)."""
    return {key.split(":")[2] for key in await rt.redis.keys("sms:ip:*")}


# --- forwarded headers ---------------------------------------------------------------------------
async def test_forwarded_headers_from_a_stranger_are_ignored(rt, http) -> None:
    """With no trusted proxy (the default), X-Forwarded-For and X-Real-IP are the client's own
    words: the per-address SMS limit still bites and the address counted is the socket's."""
    srv, url = await _serve(rt)
    limit = rt.settings.sms.max_per_ip_hour
    try:
        answers = []
        for i in range(limit + 1):
            spoof = {"X-Forwarded-For": f"203.0.113.{i}", "X-Real-Ip": f"198.51.100.{i}",
                     "X-Forwarded-Proto": "https"}
            answers.append(await http.post(f"{url}/h5/api/v1/sms/send", headers=spoof,
                                           json={"phone": f"139{i:08d}"}))
    finally:
        srv.stop()
    assert [a.status_code for a in answers[:limit]] == [200] * limit
    assert answers[limit].status_code == 429
    assert answers[limit].json()["error"]["code"] == "sms_ip_limit"
    assert await _sms_addresses(rt) == {"127.0.0.1"}


async def test_a_trusted_proxy_names_the_client(rt, http) -> None:
    """From a configured proxy the client is X-Real-IP, or else the right-most X-Forwarded-For
    hop that is not one of our proxies (hops left of it are the client's own words)."""
    srv, url = await _serve(rt, trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    try:
        for i, headers in enumerate(({"X-Real-Ip": "198.51.100.7"},
                                     {"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.1.2.3"},
                                     {"X-Real-Ip": "10.0.0.2", "X-Forwarded-For": "6.6.6.6, 192.0.2.44"})):
            response = await http.post(f"{url}/h5/api/v1/sms/send", headers=headers,
                                       json={"phone": f"1390000000{i}"})
            assert response.status_code == 200
    finally:
        srv.stop()
    assert await _sms_addresses(rt) == {"198.51.100.7", "203.0.113.9", "192.0.2.44"}


async def test_the_push_endpoint_logs_the_socket_peer(http, server, pusher, caplog) -> None:
    from tests.api.test_oa_endpoint import WORKER
    query, body = pusher.request(pusher.text(WORKER, "帮助"))
    response = await http.post(f"{server}/wechat/oa", params=query, content=body,
                               headers={"X-Forwarded-For": "203.0.113.50", "X-Real-Ip": "203.0.113.51"})
    assert response.status_code == 200
    [line] = [r for r in caplog.records if r.name == "wxbackend.access" and "/wechat/oa" in r.getMessage()]
    assert line.remote_ip == "127.0.0.1"


def test_the_client_address_rule() -> None:
    from wxbackend.handlers.edge import TrustedProxies
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"])
    h = tornado.httputil.HTTPHeaders
    assert proxies.client("192.0.2.1", h({"X-Real-Ip": "6.6.6.6"})) == "192.0.2.1"
    assert proxies.client("127.0.0.1", h({})) == "127.0.0.1"
    assert proxies.client("::ffff:127.0.0.1", h({"X-Real-Ip": "192.0.2.8"})) == "192.0.2.8"
    assert proxies.client("127.0.0.1", h({"X-Forwarded-For": "6.6.6.6, 10.0.0.9"})) == "6.6.6.6"
    assert proxies.client("10.2.3.4", h({"X-Forwarded-For": "1.1.1.1, [2001:db8::1]:443, 192.0.2.5"})) \
        == "192.0.2.5"
    assert proxies.client("127.0.0.1", h({"X-Forwarded-For": "6.6.6.6, garbage, 10.0.0.9"})) == "127.0.0.1"
    assert proxies.protocol("192.0.2.1", "http", h({"X-Forwarded-Proto": "https"})) == "http"
    assert proxies.protocol("127.0.0.1", "http", h({"X-Forwarded-Proto": "http, https"})) == "https"


# --- Redis down ------------------------------------------------------------------------------------
@pytest.fixture
async def no_redis(rt, backing) -> AsyncIterator[tuple[Runtime, str]]:
    """A server whose Redis is gone (nothing listens at its address)."""
    async with open_runtime(rt.settings, backing.dsn, f"redis://127.0.0.1:{_free_port()}/0") as broken:
        srv, url = await start_server(broken)
        yield broken, url
        srv.stop()


@pytest.mark.expected_errors(r" 503$")
async def test_redis_down_is_a_503_with_retry_after(no_redis, rt, http, fake_wechat) -> None:
    _, url = no_redis
    app_id, secret = await make_app(rt)
    body = json.dumps({"identity": {"kind": "unionid", "subject": "u"}}).encode()
    fake_wechat.mp_user("mZhang")
    answers = {
        "mp session": await http.post(f"{url}/mp/v1/session",
                                      json={"code": fake_wechat.issue_js_code("mZhang", MP_APPID)}),
        "mp me": await http.get(f"{url}/mp/v1/me", headers=bearer("some-token")),
        "admin me": await http.get(f"{url}/admin/v1/me", headers={"Cookie": "wx_admin=some-session"}),
        "sms": await http.post(f"{url}/h5/api/v1/sms/send", json={"phone": "13900000001"}),
        "signed api": await http.post(f"{url}/api/v1/accounts/resolve", content=body, headers=signed(
            "POST", "/api/v1/accounts/resolve", body, app_id, secret)),
    }
    for name, response in answers.items():
        assert response.status_code == 503, (name, response.text)
        assert response.json()["error"]["code"] == "cache_unavailable", name
        assert "稍后" in response.json()["error"]["message"]
        assert int(response.headers["Retry-After"]) > 0, name


@pytest.mark.expected_errors(r" 503$")
async def test_database_down_is_a_503_with_retry_after(rt, backing, http, caplog, monkeypatch) -> None:
    from wxbackend.handlers import base
    monkeypatch.setattr(base, "_outage_log", base._OutageLog())  # no report from earlier tests
    async with open_runtime(rt.settings, backing.dsn, backing.redis_url) as broken:
        await broken.pool.close()  # every later acquire fails, as when PostgreSQL is gone
        srv, url = await start_server(broken)
        try:
            answers = [await http.get(f"{url}/h5/api/v1/regions") for _ in range(3)]
        finally:
            srv.stop()
    for response in answers:
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        assert int(response.headers["Retry-After"]) > 0
    # one warning for the outage, no traceback per request
    warnings = [r for r in caplog.records if "database_unavailable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None


# --- no query string in any log line ---------------------------------------------------------------
@pytest.mark.expected_errors(r"(?i)uncaught exception", r"GET /wechat/oauth/callback 500")
async def test_an_uncaught_exception_logs_no_query_string(rt, server, monkeypatch, caplog) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the callback broke")

    monkeypatch.setattr(rt.login, "finish_oauth", broken)
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"{server}/wechat/oauth/callback",
                                    params={"code": "secret-oauth-code", "state": "secret-state"})
    assert response.status_code == 500
    ours = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert any(r.exc_info for r in ours), "the exception is logged with its traceback"
    for record in ours:
        text = record.getMessage() + logging.Formatter().formatException(record.exc_info) \
            if record.exc_info else record.getMessage()
        assert "secret" not in text, text


# --- odd input ---------------------------------------------------------------------------------------
async def test_deeply_nested_json_is_a_400(http, server, fake_wechat) -> None:
    token = (await mp_sign_in(http, server, fake_wechat, "mZhang"))["token"]
    response = await http.post(f"{server}/mp/v1/me/privacy", headers=bearer(token),
                               content=b"[" * 5000 + b"]" * 5000)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_unicode_digits_in_a_number_argument_are_a_400(http, server, rt) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    async with httpx.AsyncClient(trust_env=False) as browser:
        login = await browser.post(f"{server}/admin/v1/login", json={
            "username": "office", "password": PASSWORD, "totp": otp(office.totp_uri)})
        assert login.status_code == 200, login.text
        for value in ("%C2%B2", "%D9%A3", "%EF%BC%91"):  # ², Arabic-Indic 3, full-width 1
            response = await browser.get(f"{server}/admin/v1/audit?limit={value}")
            assert response.status_code == 400, value
            assert response.json()["error"]["code"] == "invalid_input"
        plain = await browser.get(f"{server}/admin/v1/audit?limit=5")
        assert plain.status_code != 400  # ASCII digits pass (the platform office may not read it)


async def test_a_body_over_the_limit_gets_the_json_413(http, server, fake_wechat, rt) -> None:
    token = (await mp_sign_in(http, server, fake_wechat, "mZhang"))["token"]
    big = b'{"version": "' + b"x" * 2_000_000 + b'"}'
    response = await http.post(f"{server}/mp/v1/me/privacy", headers=bearer(token), content=big)
    assert response.status_code == 413
    assert response.json()["error"] == TOO_LARGE
    assert response.headers["X-Request-Id"] and response.headers["X-Content-Type-Options"] == "nosniff"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 50_000

    chunked = await http.post(f"{server}/mp/v1/me/privacy", headers=bearer(token), content=chunks())
    assert chunked.status_code == 413 and chunked.json()["error"] == TOO_LARGE
    # the connection still serves
    assert (await http.get(f"{server}/mp/v1/me", headers=bearer(token))).status_code == 200


async def test_a_client_waiting_for_100_continue_gets_the_413_at_once(server) -> None:
    url = urlsplit(server)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write((f"POST /mp/v1/me/privacy HTTP/1.1\r\nHost: {url.netloc}\r\n"
                      "Expect: 100-continue\r\nContent-Length: 50000000\r\n\r\n").encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)  # answered, then closed
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body)["error"] == TOO_LARGE


# --- the pages' security headers ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/admin/", "/admin/card.html", "/h5/register.html", "/h5/me.html",
                                  "/static/shared/h5.js"])
async def test_pages_forbid_framing_and_foreign_scripts(http, server, path) -> None:
    response = await http.get(server + path)
    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1)
                  for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'self'" and policy["form-action"] == "'self'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
