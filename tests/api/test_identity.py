"""Sign-in and the shared platform API over HTTP, against the fake WeChat."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import APPID, MP_APPID, MP_SECRET, PUBLIC_URL, start_server
from tests.fakes import FakeWeChat
from wxbackend.runtime import Runtime
from wxbackend.services.identity import platform as platform_service

WORKER_PHONE = "13800000001"


# --- Mini Program ------------------------------------------------------------------------------
async def mp_sign_in(http: httpx.AsyncClient, server: str, fake: FakeWeChat, openid: str,
                     unionid: str | None = None) -> dict:
    fake.mp_user(openid, unionid=unionid)
    response = await http.post(f"{server}/mp/v1/session",
                               json={"code": fake.issue_js_code(openid, MP_APPID)})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_mp_session_is_ours_and_hides_the_session_key(http, server, fake_wechat, rt) -> None:
    body = await mp_sign_in(http, server, fake_wechat, "mZhang")
    assert set(body) == {"token", "expires_in", "account"}
    assert "session_key" not in json.dumps(body)
    raw = await rt.redis.get(f"sess:mp:{hashlib.sha256(body['token'].encode()).hexdigest()}")
    stored = json.loads(raw)
    assert stored["openid"] == "mZhang"
    session_key = await fake_wechat_session_key(http, fake_wechat, "mZhang")
    assert session_key not in raw  # encrypted at rest
    assert rt.pii.decrypt(bytes.fromhex(stored["session_key"]), "mp_session.session_key") == session_key
    me = await http.get(f"{server}/mp/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.json()["account"]["registered"] is False


async def fake_wechat_session_key(http: httpx.AsyncClient, fake: FakeWeChat, openid: str) -> str:
    """The session_key WeChat holds for this user (what must never reach the client)."""
    code = fake.issue_js_code(openid, MP_APPID)
    answer = await http.get(f"{fake.base_url}/sns/jscode2session", params={
        "appid": MP_APPID, "secret": MP_SECRET, "js_code": code, "grant_type": "authorization_code"})
    return answer.json()["session_key"]


async def test_mp_registration_end_to_end(http, server, fake_wechat, db) -> None:
    token = (await mp_sign_in(http, server, fake_wechat, "mZhang", "uZhang"))["token"]
    phone = await http.post(f"{server}/mp/v1/phone", headers=bearer(token),
                            json={"code": fake_wechat.issue_phone_code(WORKER_PHONE, MP_APPID)})
    assert phone.status_code == 200, phone.text
    assert phone.json()["account"]["phone"] == "138****0001"
    version = (await http.get(f"{server}/mp/v1/me", headers=bearer(token))).json()["privacy_version"]
    await http.put(f"{server}/mp/v1/me/region", headers=bearer(token), json={"region_code": "511702"})
    done = await http.post(f"{server}/mp/v1/me/privacy", headers=bearer(token), json={"version": version})
    account = done.json()["account"]
    assert account["registered"] is True
    assert account["region"] == {"code": "511702", "name": "通川区"}
    assert await db.fetchval("SELECT o.name FROM accounts a JOIN orgs o ON o.id = a.home_org_id "
                             "WHERE a.registered_at IS NOT NULL") == "达州市总工会"


async def test_mp_code_reuse_and_bad_tokens(http, server, fake_wechat, db) -> None:
    fake_wechat.mp_user("mZhang")
    code = fake_wechat.issue_js_code("mZhang", MP_APPID)
    assert (await http.post(f"{server}/mp/v1/session", json={"code": code})).status_code == 200
    again = await http.post(f"{server}/mp/v1/session", json={"code": code})
    assert again.status_code == 400 and again.json()["error"]["code"] == "code_invalid"
    for headers in ({}, bearer("forged-token"), {"Authorization": "Basic abc"}):
        response = await http.get(f"{server}/mp/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == {"code": "unauthenticated", "message": "请先登录"}
    reused_phone = fake_wechat.issue_phone_code(WORKER_PHONE, MP_APPID)
    token = (await mp_sign_in(http, server, fake_wechat, "mLisi"))["token"]
    await http.post(f"{server}/mp/v1/phone", headers=bearer(token), json={"code": reused_phone})
    second = await http.post(f"{server}/mp/v1/phone", headers=bearer(token), json={"code": reused_phone})
    assert second.status_code == 400 and second.json()["error"]["code"] == "code_invalid"


async def test_mp_cancel_revokes_sessions(http, server, fake_wechat) -> None:
    token = (await mp_sign_in(http, server, fake_wechat, "mZhang"))["token"]
    refused = await http.post(f"{server}/mp/v1/me/cancel", headers=bearer(token), json={})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "confirm_required"
    done = await http.post(f"{server}/mp/v1/me/cancel", headers=bearer(token), json={"confirm": "注销"})
    assert done.status_code == 200
    assert (await http.get(f"{server}/mp/v1/me", headers=bearer(token))).status_code == 401


# --- Official Account web OAuth ------------------------------------------------------------------
async def h5_sign_in(server: str, fake: FakeWeChat, openid: str, *, unionid: str | None = None,
                     next_path: str = "/h5/register.html") -> httpx.AsyncClient:
    """A browser inside WeChat: start, WeChat's authorize page, our callback."""
    fake.oauth_user(openid, unionid=unionid)
    browser = httpx.AsyncClient(trust_env=False, timeout=10)
    start = await browser.get(f"{server}/wechat/oauth/start", params={"next": next_path})
    assert start.status_code == 302
    wechat = await browser.get(start.headers["Location"].split("#")[0] + f"&fake_openid={openid}")
    assert wechat.status_code == 302
    callback = urlsplit(wechat.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}" == PUBLIC_URL
    landed = await browser.get(f"{server}{callback.path}?{callback.query}")
    assert landed.status_code == 302 and landed.headers["Location"] == next_path
    return browser


async def test_h5_oauth_signs_in_and_binds_state_to_the_browser(server, fake_wechat) -> None:
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    cookie = browser.cookies.jar
    session = next(c for c in cookie if c.name == "wx_h5")
    assert session.has_nonstandard_attr("HttpOnly")
    me = await browser.get(f"{server}/h5/api/v1/me")
    assert me.status_code == 200 and me.json()["csrf_token"]
    await browser.aclose()


async def test_forged_replayed_and_foreign_states_are_refused(server, fake_wechat, db) -> None:
    fake_wechat.oauth_user("oZhang")
    async with httpx.AsyncClient(trust_env=False) as victim, \
            httpx.AsyncClient(trust_env=False) as attacker:
        start = await victim.get(f"{server}/wechat/oauth/start", params={"next": "/h5/me.html"})
        state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
        code = fake_wechat.issue_oauth_code("oZhang")
        foreign = await attacker.get(f"{server}/wechat/oauth/callback", params={"code": code, "state": state})
        assert foreign.status_code == 403 and "oauth_state_mismatch" in foreign.text
        replay = await victim.get(f"{server}/wechat/oauth/callback", params={"code": code, "state": state})
        assert replay.status_code == 400 and "oauth_state_invalid" in replay.text  # consumed
        forged = await victim.get(f"{server}/wechat/oauth/callback",
                                  params={"code": code, "state": "f" * 32})
        assert forged.status_code == 400 and "登录已过期" in forged.text
    assert await db.fetchval("SELECT count(*) FROM accounts") == 0


async def test_an_oauth_code_is_exchanged_once(server, fake_wechat) -> None:
    fake_wechat.oauth_user("oZhang")
    code = fake_wechat.issue_oauth_code("oZhang")
    results = []
    for _ in range(2):
        async with httpx.AsyncClient(trust_env=False) as browser:
            start = await browser.get(f"{server}/wechat/oauth/start")
            state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
            results.append(await browser.get(f"{server}/wechat/oauth/callback",
                                             params={"code": code, "state": state}))
    assert results[0].status_code == 302
    assert results[1].status_code == 400 and "oauth_code_used" in results[1].text
    assert fake_wechat.count("/sns/oauth2/access_token") == 1


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example", "/h5/../admin",
                                    "javascript:alert(1)", "/api/v1/accounts"])
async def test_no_open_redirect(server, fake_wechat, target) -> None:
    browser = httpx.AsyncClient(trust_env=False)
    fake_wechat.oauth_user("oZhang")
    start = await browser.get(f"{server}/wechat/oauth/start", params={"next": target})
    wechat = await browser.get(start.headers["Location"].split("#")[0] + "&fake_openid=oZhang")
    callback = urlsplit(wechat.headers["Location"])
    landed = await browser.get(f"{server}{callback.path}?{callback.query}")
    assert landed.headers["Location"] == "/h5/"
    await browser.aclose()


async def test_snapshot_visitors_get_no_account(server, fake_wechat, db) -> None:
    fake_wechat.oauth_user("oSnap", snapshot=True)
    async with httpx.AsyncClient(trust_env=False) as browser:
        start = await browser.get(f"{server}/wechat/oauth/start", params={"scope": "snsapi_userinfo"})
        wechat = await browser.get(start.headers["Location"].split("#")[0] + "&fake_openid=oSnap")
        callback = urlsplit(wechat.headers["Location"])
        landed = await browser.get(f"{server}{callback.path}?{callback.query}")
    assert landed.status_code == 403 and "oauth_snapshot_user" in landed.text
    assert await db.fetchval("SELECT count(*) FROM accounts") == 0


async def test_h5_writes_need_the_csrf_token(server, fake_wechat) -> None:
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    token = (await browser.get(f"{server}/h5/api/v1/me")).json()["csrf_token"]
    without = await browser.put(f"{server}/h5/api/v1/me/region", json={"region_code": "510104"})
    assert without.status_code == 403 and without.json()["error"]["code"] == "csrf_failed"
    ok = await browser.put(f"{server}/h5/api/v1/me/region", json={"region_code": "510104"},
                           headers={"X-CSRF-Token": token})
    assert ok.status_code == 200
    await browser.aclose()


async def test_jssdk_signature_matches_wechats_rule(http, server, fake_wechat) -> None:
    page = f"{PUBLIC_URL}/h5/register.html?from=menu"
    response = await http.get(f"{server}/wechat/jssdk", params={"url": page + "#top"})
    assert response.status_code == 200, response.text
    cfg = response.json()
    plain = (f"jsapi_ticket={fake_wechat.jsapi_ticket}&noncestr={cfg['nonceStr']}"
             f"&timestamp={cfg['timestamp']}&url={page}")
    assert cfg["signature"] == hashlib.sha1(plain.encode()).hexdigest()
    assert cfg["appId"] == APPID
    await http.get(f"{server}/wechat/jssdk", params={"url": page})
    assert fake_wechat.count("/cgi-bin/ticket/getticket") == 1  # central control
    foreign = await http.get(f"{server}/wechat/jssdk", params={"url": "https://evil.example/"})
    assert foreign.status_code == 400


# --- the shared platform API ---------------------------------------------------------------------
async def make_app(rt: Runtime, app_id: str = "chengdu-channel", scopes: tuple = (
        "identity.resolve", "identity.link", "profile.read", "sso")) -> tuple[str, str]:
    _, secret = await rt.apps.create_app(
        app_id=app_id, name="成都市总工会自建频道", org_code="SC-510100", scopes=list(scopes),
        redirect_uris=["https://cd.example.org/sso/callback"])
    return app_id, secret


def signed(method: str, path: str, body: bytes, app_id: str, secret: str, *,
           timestamp: int | None = None, nonce: str | None = None, query: str = "") -> dict:
    timestamp = str(timestamp or int(time.time()))
    nonce = nonce or secrets.token_hex(8)
    return {"X-App-Id": app_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
            "X-Signature": platform_service.sign(secret, method, path, query, timestamp, nonce, body),
            "Content-Type": "application/json"}


async def api(http, server, method, path, payload, app_id, secret, **kw) -> httpx.Response:
    body = json.dumps(payload).encode() if payload is not None else b""
    return await http.request(method, f"{server}{path}", content=body,
                              headers=signed(method, path, body, app_id, secret, **kw))


async def test_resolve_an_account_from_a_wechat_identity(http, server, fake_wechat, rt) -> None:
    app_id, secret = await make_app(rt)
    body = await mp_sign_in(http, server, fake_wechat, "mZhang", "uZhang")
    # A 成都 entrance finds the accounts of 成都's subtree: the worker's home is 锦江区.
    await http.put(f"{server}/mp/v1/me/region", headers=bearer(body["token"]), json={"region_code": "510104"})
    found = await api(http, server, "POST", "/api/v1/accounts/resolve",
                      {"identity": {"kind": "unionid", "subject": "uZhang"}}, app_id, secret)
    assert found.status_code == 200
    assert found.json() == {"account_id": body["account"]["id"], "registered": False}
    by_openid = await api(http, server, "POST", "/api/v1/accounts/resolve",
                          {"identity": {"kind": "mp_openid", "issuer": MP_APPID, "subject": "mZhang"}},
                          app_id, secret)
    assert by_openid.json()["account_id"] == body["account"]["id"]
    missing = await api(http, server, "POST", "/api/v1/accounts/resolve",
                        {"identity": {"kind": "unionid", "subject": "nobody"}}, app_id, secret)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "account_not_found"


async def test_signature_replay_and_scope_rules(http, server, rt, db) -> None:
    app_id, secret = await make_app(rt, scopes=("identity.resolve",))
    payload = {"identity": {"kind": "unionid", "subject": "u"}}
    body = json.dumps(payload).encode()
    headers = signed("POST", "/api/v1/accounts/resolve", body, app_id, secret)
    first = await http.post(f"{server}/api/v1/accounts/resolve", content=body, headers=headers)
    assert first.status_code == 404
    replay = await http.post(f"{server}/api/v1/accounts/resolve", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "nonce_replayed"
    tampered = signed("POST", "/api/v1/accounts/resolve", body, app_id, secret)
    bad = await http.post(f"{server}/api/v1/accounts/resolve", content=body + b" ", headers=tampered)
    assert bad.json()["error"]["code"] == "signature_invalid"
    old = await api(http, server, "POST", "/api/v1/accounts/resolve", payload, app_id, secret,
                    timestamp=int(time.time()) - 400)
    assert old.json()["error"]["code"] == "timestamp_expired"
    unknown = await api(http, server, "POST", "/api/v1/accounts/resolve", payload, "no-such-app", secret)
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "app_unknown"
    by_phone = await api(http, server, "POST", "/api/v1/accounts/resolve", {"phone": WORKER_PHONE},
                         app_id, secret)
    assert by_phone.status_code == 403 and by_phone.json()["error"]["code"] == "scope_missing"
    profile = await api(http, server, "GET", "/api/v1/accounts/00000000-0000-0000-0000-000000000000",
                        None, app_id, secret)
    assert profile.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM accounts") == 0


async def test_sso_code_flow_with_pkce_then_link(http, server, fake_wechat, rt, db) -> None:
    app_id, secret = await make_app(rt)
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    verifier = secrets.token_urlsafe(48)
    challenge = platform_service_s256(verifier)
    auth = await browser.get(f"{server}/api/v1/oauth/authorize", params={
        "response_type": "code", "client_id": app_id, "scope": "profile.read",
        "redirect_uri": "https://cd.example.org/sso/callback", "state": "xyz",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert auth.status_code == 302, auth.text
    back = urlsplit(auth.headers["Location"])
    params = parse_qs(back.query)
    assert back.netloc == "cd.example.org" and params["state"] == ["xyz"]
    code = params["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": "https://cd.example.org/sso/callback"}
    token = await http.post(f"{server}/api/v1/oauth/token", data=form, auth=(app_id, secret))
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    again = await http.post(f"{server}/api/v1/oauth/token", data=form, auth=(app_id, secret))
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    info = await http.get(f"{server}/api/v1/oauth/userinfo", headers=bearer(access))
    assert info.status_code == 200 and info.json()["sub"]
    link = await api(http, server, "POST", "/api/v1/accounts/link",
                     {"access_token": access, "app_user_id": "cd-user-42"}, app_id, secret)
    assert link.status_code == 200 and link.json()["account_id"] == info.json()["sub"]
    resolved = await api(http, server, "POST", "/api/v1/accounts/resolve",
                         {"identity": {"kind": "app_user", "subject": "cd-user-42"}}, app_id, secret)
    assert resolved.json()["account_id"] == info.json()["sub"]
    no_proof = await api(http, server, "POST", "/api/v1/accounts/link",
                         {"access_token": "made-up", "app_user_id": "cd-user-43"}, app_id, secret)
    assert no_proof.status_code == 400 and no_proof.json()["error"]["code"] == "proof_invalid"
    assert await db.fetchval("SELECT count(*) FROM account_identities WHERE kind = 'app_user'") == 1
    await browser.aclose()


def platform_service_s256(verifier: str) -> str:
    from authlib.oauth2.rfc7636 import create_s256_code_challenge
    return create_s256_code_challenge(verifier)


async def test_sso_refuses_unknown_redirects_and_wrong_verifiers(http, server, fake_wechat, rt) -> None:
    app_id, secret = await make_app(rt)
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    evil = await browser.get(f"{server}/api/v1/oauth/authorize", params={
        "response_type": "code", "client_id": app_id, "redirect_uri": "https://evil.example/cb"})
    assert evil.status_code == 400 and "Location" not in evil.headers
    auth = await browser.get(f"{server}/api/v1/oauth/authorize", params={
        "response_type": "code", "client_id": app_id, "code_challenge": "x" * 43,
        "code_challenge_method": "S256", "redirect_uri": "https://cd.example.org/sso/callback"})
    code = parse_qs(urlsplit(auth.headers["Location"]).query)["code"][0]
    wrong = await http.post(f"{server}/api/v1/oauth/token", auth=(app_id, secret), data={
        "grant_type": "authorization_code", "code": code, "code_verifier": "y" * 43,
        "redirect_uri": "https://cd.example.org/sso/callback"})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    bad_client = await http.post(f"{server}/api/v1/oauth/token", auth=(app_id, "wrong"), data={
        "grant_type": "authorization_code", "code": "c"})
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    signed_out = await http.get(f"{server}/api/v1/oauth/authorize", params={"client_id": app_id})
    assert signed_out.status_code == 302 and signed_out.headers["Location"].startswith("/h5/login.html?next=")
    await browser.aclose()


async def test_sso_answers_a_malformed_response_type_with_400(server, fake_wechat, rt) -> None:
    """A response_type outside RFC 6749's characters is a malformed request, not a crash:
    Authlib would quote it in an error description that may only hold plain ASCII."""
    app_id, _ = await make_app(rt)
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    for response_type in ("câde", 'co"de', "code\\"):
        auth = await browser.get(f"{server}/api/v1/oauth/authorize", params={
            "response_type": response_type, "client_id": app_id,
            "redirect_uri": "https://cd.example.org/sso/callback"})
        assert auth.status_code == 400 and "Location" not in auth.headers, response_type
        assert auth.json()["error"] == "invalid_request"
    await browser.aclose()


def _set_cookie(response: httpx.Response, name: str) -> str:
    return next(v for k, v in response.headers.multi_items()
                if k.lower() == "set-cookie" and v.startswith(f"{name}="))


async def test_cookies_are_secure_behind_tls(rt, fake_wechat) -> None:
    fake_wechat.oauth_user("oZhang")
    tls = {"X-Forwarded-Proto": "https"}  # nginx, on this host, terminates TLS in front of us
    behind_nginx = dataclasses.replace(
        rt, settings=rt.settings.replace(server={"trusted_proxies": ["127.0.0.1"]}))
    srv, server = await start_server(behind_nginx)
    try:
        async with httpx.AsyncClient(trust_env=False, headers=tls) as browser:
            start = await browser.get(f"{server}/wechat/oauth/start")
            nonce_cookie = _set_cookie(start, "wx_oauth")
            wechat = await browser.get(start.headers["Location"].split("#")[0] + "&fake_openid=oZhang")
            callback = urlsplit(wechat.headers["Location"])
            # A browser returns a Secure cookie over https only; this test client speaks http.
            landed = await browser.get(f"{server}{callback.path}?{callback.query}",
                                       headers={"Cookie": nonce_cookie.split(";")[0]})
    finally:
        srv.stop()
    assert landed.status_code == 302
    for cookie in (nonce_cookie, _set_cookie(landed, "wx_h5")):
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite"} <= attributes, cookie
        assert "SameSite=Lax" in cookie
