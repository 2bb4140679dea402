"""``/admin/v1`` over HTTP: sign-in, CSRF, forged sessions, privilege escalation attempts."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import start_server
from tests.services.cadres.test_cadres import PASSWORD, otp
from wxbackend.handlers.edge import Tarpit
from wxbackend.services.clock import CHINA


@pytest.fixture
async def chengdu(db) -> int:
    return await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")


async def sign_in(server: str, username: str, totp: str = "") -> tuple[httpx.AsyncClient, str]:
    browser = httpx.AsyncClient(trust_env=False, timeout=10)
    response = await browser.post(f"{server}/admin/v1/login",
                                  json={"username": username, "password": PASSWORD, "totp": totp})
    assert response.status_code == 200, response.text
    return browser, response.json()["csrf_token"]


async def test_sign_in_and_create_a_cadre(server, rt, db, chengdu) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    browser, csrf = await sign_in(server, "office", otp(office.totp_uri))
    cookie = next(v for k, v in browser.cookies.items() if k == "wx_admin")
    assert cookie
    created = await browser.post(f"{server}/admin/v1/cadres", headers={"X-CSRF-Token": csrf}, json={
        "username": "wangwu", "display_name": "王五", "org_id": chengdu, "role": "super_admin",
        "duty": "system", "permissions": ["account.manage", "kpi.read"], "password": PASSWORD})
    assert created.status_code == 201, created.text
    assert created.json()["totp_uri"].startswith("otpauth://totp/")
    listing = await browser.get(f"{server}/admin/v1/cadres")
    assert {c["username"] for c in listing.json()["cadres"]} == {"office", "wangwu"}
    await browser.aclose()


async def test_bad_sign_ins_and_sessions_change_nothing(server, rt, db, chengdu) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    async with httpx.AsyncClient(trust_env=False) as client:
        wrong = await client.post(f"{server}/admin/v1/login",
                                  json={"username": "office", "password": "Wrong-Password-99", "totp": "1"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "login_failed"
        no_totp = await client.post(f"{server}/admin/v1/login",
                                    json={"username": "office", "password": PASSWORD})
        assert no_totp.status_code == 401
        forged = await client.get(f"{server}/admin/v1/cadres", headers={"Cookie": "wx_admin=forged"})
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "session_expired"
    browser, _ = await sign_in(server, "office", otp(office.totp_uri))
    no_csrf = await browser.post(f"{server}/admin/v1/cadres", json={
        "username": "evil", "display_name": "x", "org_id": chengdu, "role": "super_admin",
        "duty": "system", "permissions": [], "password": PASSWORD})
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf_failed"
    assert await db.fetchval("SELECT count(*) FROM cadres WHERE username = 'evil'") == 0
    await browser.aclose()


async def test_privilege_escalation_through_the_api_is_refused(server, rt, db, chengdu) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_actor = (await rt.cadres.login(username="office", password=PASSWORD,
                                          totp=otp(office.totp_uri), ip="", user_agent="")).actor
    wangwu = await rt.cadres.create_account(office_actor, username="wangwu", display_name="王五",
                                            org_id=chengdu, role="super_admin", duty="system",
                                            password=PASSWORD, permissions={"account.manage", "kpi.read"})
    browser, csrf = await sign_in(server, "wangwu", otp(wangwu.totp_uri))
    headers = {"X-CSRF-Token": csrf}
    lisi = await browser.post(f"{server}/admin/v1/cadres", headers=headers, json={
        "username": "lisi", "display_name": "李四", "org_id": chengdu, "role": "cadre",
        "duty": "business", "permissions": ["kpi.read"], "password": PASSWORD})
    assert lisi.status_code == 201
    attempts = [
        ("PUT", f"/admin/v1/cadres/{lisi.json()['id']}/permissions", {"permissions": ["member.export"]},
         "grant_beyond_own"),
        ("PUT", f"/admin/v1/cadres/{wangwu.id}/permissions", {"permissions": ["audit.read"]}, "self_grant"),
        ("POST", "/admin/v1/cadres", {"username": "boss", "display_name": "x", "org_id": chengdu,
                                      "role": "super_admin", "duty": "system", "permissions": [],
                                      "password": PASSWORD, "replace": True}, "super_admin_by_platform"),
        ("POST", "/admin/v1/cadres", {"username": "spy", "display_name": "x", "org_id": chengdu,
                                      "role": "cadre", "duty": "audit", "permissions": ["audit.read"],
                                      "password": PASSWORD}, "grant_beyond_own"),
    ]
    before = await db.fetch("SELECT cadre_id, permission FROM cadre_grants ORDER BY 1, 2")
    for method, path, payload, code in attempts:
        response = await browser.request(method, f"{server}{path}", json=payload, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == code
    assert await db.fetch("SELECT cadre_id, permission FROM cadre_grants ORDER BY 1, 2") == before
    assert await db.fetchval("SELECT count(*) FROM cadres") == 3
    await browser.aclose()


async def test_an_org_id_beyond_the_database_range_is_refused_with_400(server, rt, db, chengdu) -> None:
    """An id that is no database id (too large for bigint, a boolean) is bad input, not a crash."""
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    browser, csrf = await sign_in(server, "office", otp(office.totp_uri))
    for org_id in (2**70, -(2**70), True):
        created = await browser.post(f"{server}/admin/v1/cadres", headers={"X-CSRF-Token": csrf}, json={
            "username": "wangwu", "display_name": "王五", "org_id": org_id, "role": "super_admin",
            "duty": "system", "permissions": [], "password": PASSWORD})
        assert created.status_code == 400, (org_id, created.text)
        assert created.json()["error"]["code"] == "invalid_input"
    assert await db.fetchval("SELECT count(*) FROM cadres WHERE username = 'wangwu'") == 0
    await browser.aclose()


async def test_a_nul_character_in_a_json_body_is_refused_with_400(http, server, db) -> None:
    """PostgreSQL text cannot hold U+0000: a JSON body carrying one is bad input, not a crash.
    The text "\\u0000" (an escaped backslash, then "u0000") is an ordinary string."""
    for raw in (b'{"username": "office\\u0000", "password": "x"}', b'{"password": "\\\\\\u0000"}'):
        refused = await http.post(f"{server}/admin/v1/login", content=raw,
                                  headers={"Content-Type": "application/json"})
        assert refused.status_code == 400, (raw, refused.text)
        assert refused.json()["error"]["code"] == "invalid_json"
    ordinary = await http.post(f"{server}/admin/v1/login", content=b'{"username": "office\\\\u0000"}',
                               headers={"Content-Type": "application/json"})
    assert ordinary.status_code == 401 and ordinary.json()["error"]["code"] == "login_failed"
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_a_sign_in_flood_from_one_address_is_answered_429_before_hashing(server, rt) -> None:
    limit = rt.settings.admin.login_per_ip_minute
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        # 2 × limit + 1 tries span at most two minute windows: one of them goes over the limit
        answers = [await client.post(f"{server}/admin/v1/login",
                                     json={"username": f"nobody{n}", "password": PASSWORD, "totp": ""})
                   for n in range(2 * limit + 1)]
    assert {a.status_code for a in answers} == {401, 429}
    throttled = next(a for a in answers if a.status_code == 429)
    assert throttled.json()["error"] == {"code": "login_throttled", "message": "登录尝试过于频繁，请稍后再试"}
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60


async def test_a_flooding_address_waits_for_its_refusals_and_others_do_not(rt, clock) -> None:
    """A refused address's answers are held back a random while (so a flood's tries come back
    spread out instead of together); the server goes on answering everyone else meanwhile, and
    an attacker who hangs up frees its place."""
    flooded = dataclasses.replace(rt, settings=rt.settings.replace(admin={"refused_delay_ms": 1200}))
    srv, url = await start_server(flooded)
    tarpit = srv.request_callback.tarpit
    clock.set(datetime(2030, 3, 1, 9, 0, 5, tzinfo=CHINA), frozen=True)
    attempt = {"username": "nobody", "password": PASSWORD, "totp": ""}
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            for _ in range(rt.settings.admin.login_per_ip_minute + 1):  # the last: 429 from the counters
                await client.post(f"{url}/admin/v1/login", json=attempt)
            began = time.monotonic()
            held = [asyncio.create_task(client.post(f"{url}/admin/v1/login", json=attempt)) for _ in range(3)]
            while tarpit.held < 3:  # noqa: ASYNC110 - waiting for the server to take them
                await asyncio.sleep(0.01)
            health = await client.get(f"{url}/healthz")
            assert health.status_code == 200 and not any(t.done() for t in held)
            answers = await asyncio.gather(*held)
            assert time.monotonic() - began >= 0.6  # at least half of the delay, each
            assert {(a.status_code, a.json()["error"]["code"]) for a in answers} == {(429, "login_throttled")}
            assert tarpit.held == 0
        async with httpx.AsyncClient(trust_env=False, timeout=0.2) as impatient:
            with pytest.raises(httpx.ReadTimeout):
                await impatient.post(f"{url}/admin/v1/login", json=attempt)
        for _ in range(100):  # the server notices the hang-up and lets go of its answer
            if tarpit.held == 0:
                break
            await asyncio.sleep(0.02)
        assert tarpit.held == 0
    finally:
        srv.stop()
        await srv.close_all_connections()


def test_the_tarpit_holds_between_half_and_all_of_its_delay_and_no_more_than_its_bound() -> None:
    tarpit = Tarpit(2.0, max_held=3)
    delays = [tarpit.hold() for _ in range(3)]
    assert all(1.0 <= d <= 2.0 for d in delays) and tarpit.held == 3
    assert tarpit.hold() == 0.0 and tarpit.held == 3  # full: written at once
    tarpit.release()
    assert tarpit.hold() > 0
    assert Tarpit(0.0).hold() == 0.0


async def test_a_refused_address_is_answered_without_the_counters(server, rt, clock, caplog) -> None:
    """Once an address is over its limit, the rest of its minute is answered at the server's
    front: with the Redis counters gone it is still refused, and only the first repeat is logged."""
    limit = rt.settings.admin.login_per_ip_minute
    clock.set(datetime(2030, 3, 1, 9, 0, 5, tzinfo=CHINA), frozen=True)  # ahead of Redis's clock
    attempt = {"username": "nobody", "password": PASSWORD, "totp": ""}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        answers = [await client.post(f"{server}/admin/v1/login", json=attempt) for _ in range(limit + 1)]
        assert [a.status_code for a in answers] == [401] * limit + [429]
        await rt.redis.flushdb()
        caplog.clear()
        with caplog.at_level("WARNING", logger="wxbackend.access"):
            repeats = [await client.post(f"{server}/admin/v1/login", json=attempt) for _ in range(3)]
    assert {(r.status_code, r.headers["Retry-After"]) for r in repeats} == {(429, "55")}
    assert repeats[0].json() == answers[-1].json()
    assert len([r for r in caplog.records if r.getMessage() == "POST /admin/v1/login 429"]) == 1
    clock.advance(timedelta(seconds=55))  # a new minute: the counters decide again
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        again = await client.post(f"{server}/admin/v1/login", json=attempt)
    assert again.status_code == 401
