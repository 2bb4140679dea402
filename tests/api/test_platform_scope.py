"""The shared platform API's reach and its single sign-on rules, over HTTP: two entrances of two
cities (成都 SC-510100, 绵阳 SC-510700), a 成都 worker 张三, and a Redis that lost its data."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.api.test_identity import api, bearer, h5_sign_in, mp_sign_in, signed
from tests.conftest import APPID, MP_APPID
from tests.fakes import FakeWeChat
from wxbackend.runtime import Runtime
from wxbackend.services.clock import CHINA
from wxbackend.services.identity.accounts import WeChatIdentity
from wxbackend.services.identity.platform import NONCE_EPOCH_KEY

ZHANG_PHONE = "13800000001"
NOBODY_PHONE = "13900000009"
SCOPES = ["identity.resolve", "identity.resolve_phone", "identity.link", "profile.read",
          "profile.phone", "sso"]
CHENGDU_CB = "https://cd.example.org/sso/callback"
MIANYANG_CB = "https://my.example.org/sso/callback"
RESOLVE = "/api/v1/accounts/resolve"


async def entrance(rt: Runtime, app_id: str, org_code: str, redirect: str, *,
                   province_scope: bool = False) -> tuple[str, str]:
    _, secret = await rt.apps.create_app(app_id=app_id, name=f"{app_id} 自建频道", org_code=org_code,
                                         scopes=SCOPES, redirect_uris=[redirect],
                                         province_scope=province_scope, by="cli:office")
    return app_id, secret


async def chengdu_worker(http: httpx.AsyncClient, server: str, fake: FakeWeChat) -> str:
    """张三: Mini Program, verified phone, home region 武侯区 (成都); returns the account id."""
    token = (await mp_sign_in(http, server, fake, "mZhang", "uZhang"))["token"]
    phone = await http.post(f"{server}/mp/v1/phone", headers=bearer(token),
                            json={"code": fake.issue_phone_code(ZHANG_PHONE, MP_APPID)})
    assert phone.status_code == 200, phone.text
    region = await http.put(f"{server}/mp/v1/me/region", headers=bearer(token),
                            json={"region_code": "510107"})
    assert region.status_code == 200, region.text
    return region.json()["account"]["id"]


async def h5_zhang(server: str, fake: FakeWeChat) -> httpx.AsyncClient:
    """张三's browser inside WeChat, signed in with snsapi_userinfo: the unionid joins her OA
    openid to her Mini Program account."""
    fake.oauth_user("oZhang", unionid="uZhang")
    browser = httpx.AsyncClient(trust_env=False, timeout=10)
    start = await browser.get(f"{server}/wechat/oauth/start", params={"scope": "snsapi_userinfo"})
    wechat = await browser.get(start.headers["Location"].split("#")[0] + "&fake_openid=oZhang")
    callback = urlsplit(wechat.headers["Location"])
    landed = await browser.get(f"{server}{callback.path}?{callback.query}")
    assert landed.status_code == 302, landed.text
    return browser


async def authorize(browser: httpx.AsyncClient, server: str, app_id: str, **params: str) -> httpx.Response:
    return await browser.get(f"{server}/api/v1/oauth/authorize",
                             params={"response_type": "code", "client_id": app_id, **params})


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


async def token_form(browser: httpx.AsyncClient, server: str, app_id: str, redirect: str) -> dict:
    """An authorization code with an S256 challenge, as the token request's form."""
    verifier = secrets.token_urlsafe(48)
    code = code_of(await authorize(browser, server, app_id, redirect_uri=redirect,
                                   code_challenge=create_s256_code_challenge(verifier),
                                   code_challenge_method="S256"))
    return {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": redirect}


async def sso_sign_in(http: httpx.AsyncClient, browser: httpx.AsyncClient, server: str, app_id: str,
                      secret: str, redirect: str) -> str:
    """The worker signs in to an entrance; returns the entrance's access token."""
    verifier = secrets.token_urlsafe(48)
    code = code_of(await authorize(browser, server, app_id, redirect_uri=redirect,
                                   scope="profile.read profile.phone",
                                   code_challenge=create_s256_code_challenge(verifier),
                                   code_challenge_method="S256"))
    token = await http.post(f"{server}/api/v1/oauth/token", auth=(app_id, secret), data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": redirect})
    assert token.status_code == 200, token.text
    return token.json()["access_token"]


# --- finding: an entrance read across the whole province ----------------------------------------
async def test_an_entrance_of_another_city_cannot_find_or_read_a_worker(http, server, fake_wechat,
                                                                       rt) -> None:
    mianyang = await entrance(rt, "mianyang-channel", "SC-510700", MIANYANG_CB)
    account_id = await chengdu_worker(http, server, fake_wechat)

    async def as_mianyang(method: str, path: str, payload: dict | None) -> httpx.Response:
        return await api(http, server, method, path, payload, *mianyang)

    # Out of reach answers exactly like "no such account": no oracle.
    by_phone = await as_mianyang("POST", RESOLVE, {"phone": ZHANG_PHONE})
    nobody = await as_mianyang("POST", RESOLVE, {"phone": NOBODY_PHONE})
    assert by_phone.status_code == nobody.status_code == 404
    assert by_phone.json() == nobody.json()
    by_union = await as_mianyang("POST", RESOLVE, {"identity": {"kind": "unionid", "subject": "uZhang"}})
    assert by_union.status_code == 404 and by_union.json() == nobody.json()
    by_openid = await as_mianyang("POST", RESOLVE, {"identity": {
        "kind": "mp_openid", "issuer": MP_APPID, "subject": "mZhang"}})
    assert by_openid.status_code == 404
    profile = await as_mianyang("GET", f"/api/v1/accounts/{account_id}", None)
    missing = await as_mianyang("GET", "/api/v1/accounts/00000000-0000-0000-0000-000000000000", None)
    assert profile.status_code == missing.status_code == 404
    assert profile.json() == missing.json()
    assert ZHANG_PHONE not in profile.text


async def test_an_entrance_reads_only_accounts_signed_in_or_linked_to_it(http, server, fake_wechat,
                                                                        rt) -> None:
    chengdu = await entrance(rt, "chengdu-channel", "SC-510100", CHENGDU_CB)
    mianyang = await entrance(rt, "mianyang-channel", "SC-510700", MIANYANG_CB)
    account_id = await chengdu_worker(http, server, fake_wechat)
    path = f"/api/v1/accounts/{account_id}"

    # Its own city's worker: 成都 finds her, but reads her only once she signed in to it.
    found = await api(http, server, "POST", RESOLVE, {"phone": ZHANG_PHONE}, *chengdu)
    assert found.status_code == 200 and found.json()["account_id"] == account_id
    before = await api(http, server, "GET", path, None, *chengdu)
    assert before.status_code == 404 and before.json()["error"]["code"] == "account_not_found"

    browser = await h5_zhang(server, fake_wechat)
    access = await sso_sign_in(http, browser, server, *chengdu, CHENGDU_CB)
    after = await api(http, server, "GET", path, None, *chengdu)
    assert after.status_code == 200
    assert after.json()["phone"] == ZHANG_PHONE and after.json()["region"]["code"] == "510107"
    info = await http.get(f"{server}/api/v1/oauth/userinfo", headers=bearer(access))
    assert info.status_code == 200 and info.json()["sub"] == account_id

    # Signing in to 成都 gives 绵阳 nothing.
    assert (await api(http, server, "GET", path, None, *mianyang)).status_code == 404

    # 张三 signs in to 绵阳's channel too and links her 绵阳 user id: now 绵阳 reaches her.
    my_access = await sso_sign_in(http, browser, server, *mianyang, MIANYANG_CB)
    linked = await api(http, server, "POST", "/api/v1/accounts/link",
                       {"access_token": my_access, "app_user_id": "my-7"}, *mianyang)
    assert linked.status_code == 200
    assert (await api(http, server, "GET", path, None, *mianyang)).json()["phone"] == ZHANG_PHONE
    for payload in ({"phone": ZHANG_PHONE}, {"identity": {"kind": "app_user", "subject": "my-7"}}):
        again = await api(http, server, "POST", RESOLVE, payload, *mianyang)
        assert again.status_code == 200 and again.json()["account_id"] == account_id
    await browser.aclose()


async def test_a_province_grant_is_explicit_and_audited(http, server, fake_wechat, rt, db) -> None:
    wide = await entrance(rt, "mianyang-wide", "SC-510700", MIANYANG_CB, province_scope=True)
    account_id = await chengdu_worker(http, server, fake_wechat)
    found = await api(http, server, "POST", RESOLVE, {"phone": ZHANG_PHONE}, *wide)
    assert found.status_code == 200 and found.json()["account_id"] == account_id
    # The grant widens finding, not reading: the profile still needs a sign-in or a link.
    profile = await api(http, server, "GET", f"/api/v1/accounts/{account_id}", None, *wide)
    assert profile.status_code == 404
    record = await db.fetchrow("SELECT actor, action, target, detail FROM audit_log "
                               "WHERE action = 'platform_app.create'")
    assert (record["actor"], record["target"]) == ("cli:office", "mianyang-wide")
    assert record["detail"]["province_scope"] is True


# --- finding: SSO details ------------------------------------------------------------------------
async def test_sso_requires_pkce_with_s256(server, fake_wechat, rt) -> None:
    app_id, _ = await entrance(rt, "chengdu-channel", "SC-510100", CHENGDU_CB)
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    verifier = secrets.token_urlsafe(48)
    for pkce in ({}, {"code_challenge": verifier, "code_challenge_method": "plain"},
                 {"code_challenge": verifier}):
        refused = await authorize(browser, server, app_id, redirect_uri=CHENGDU_CB, state="s", **pkce)
        assert refused.status_code == 302, pkce
        back = parse_qs(urlsplit(refused.headers["Location"]).query)
        assert back["error"] == ["invalid_request"] and "code" not in back, pkce
    await browser.aclose()


async def test_a_code_survives_exchanges_by_anyone_but_its_client(http, server, fake_wechat, rt) -> None:
    app_id, secret = await entrance(rt, "chengdu-channel", "SC-510100", CHENGDU_CB)
    other_id, other_secret = await entrance(rt, "mianyang-channel", "SC-510700", MIANYANG_CB)
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    form = await token_form(browser, server, app_id, CHENGDU_CB)
    # Someone who saw the code: no secret, a wrong one, or another entrance's.
    for auth, data in (((app_id, "wrong-secret"), form), (None, form | {"client_id": app_id}),
                       ((other_id, other_secret), form)):
        burned = await http.post(f"{server}/api/v1/oauth/token", auth=auth, data=data)
        assert burned.status_code in (400, 401), burned.text
        assert burned.json()["error"] in ("invalid_client", "invalid_grant")
    token = await http.post(f"{server}/api/v1/oauth/token", auth=(app_id, secret), data=form)
    assert token.status_code == 200, token.text
    again = await http.post(f"{server}/api/v1/oauth/token", auth=(app_id, secret), data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    await browser.aclose()


async def test_two_exchanges_of_one_code_at_once_give_one_token(http, server, fake_wechat, rt) -> None:
    app_id, secret = await entrance(rt, "chengdu-channel", "SC-510100", CHENGDU_CB)
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    form = await token_form(browser, server, app_id, CHENGDU_CB)
    answers = await asyncio.gather(*(http.post(f"{server}/api/v1/oauth/token", auth=(app_id, secret),
                                               data=form) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400]
    assert len(await rt.redis.keys("sso:token:*")) == 1
    await browser.aclose()


async def test_a_code_issued_without_redirect_uri_is_exchanged_without_one(http, server, fake_wechat,
                                                                          rt) -> None:
    app_id, secret = await entrance(rt, "chengdu-channel", "SC-510100", CHENGDU_CB)
    browser = await h5_sign_in(server, fake_wechat, "oZhang")
    verifier = secrets.token_urlsafe(48)
    auth = await authorize(browser, server, app_id, code_challenge_method="S256",
                           code_challenge=create_s256_code_challenge(verifier))
    assert auth.headers["Location"].startswith(CHENGDU_CB + "?")  # the registered one
    token = await http.post(f"{server}/api/v1/oauth/token", auth=(app_id, secret), data={
        "grant_type": "authorization_code", "code": code_of(auth), "code_verifier": verifier})
    assert token.status_code == 200, token.text
    # A code issued for a named redirect_uri still needs that same one (RFC 6749 §4.1.3).
    named = code_of(await authorize(browser, server, app_id, redirect_uri=CHENGDU_CB,
                                    code_challenge_method="S256",
                                    code_challenge=create_s256_code_challenge(verifier)))
    without = await http.post(f"{server}/api/v1/oauth/token", auth=(app_id, secret), data={
        "grant_type": "authorization_code", "code": named, "code_verifier": verifier})
    assert without.status_code == 400 and without.json()["error"] == "invalid_grant"
    await browser.aclose()


# --- finding: a replay after Redis lost its data -------------------------------------------------
START = datetime(2026, 12, 31, 23, 58, tzinfo=CHINA)


@pytest.fixture
async def started(rt, clock) -> None:
    """The services' clock stands at START, when the nonce record began (as at start-up)."""
    clock.set(START, frozen=True)
    await rt.redis.delete(NONCE_EPOCH_KEY)
    await rt.apps.nonce_epoch()


async def test_a_request_captured_before_redis_lost_its_data_is_not_replayed(http, server, started,
                                                                             clock, rt) -> None:
    app_id, secret = await entrance(rt, "chengdu-channel", "SC-510100", CHENGDU_CB)
    body = json.dumps({"identity": {"kind": "unionid", "subject": "u-none"}}).encode()
    captured = signed("POST", RESOLVE, body, app_id, secret, timestamp=int(clock().timestamp()))
    first = await http.post(server + RESOLVE, content=body, headers=captured)
    assert first.status_code == 404  # authenticated, nothing found
    replay = await http.post(server + RESOLVE, content=body, headers=captured)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "nonce_replayed"

    clock.advance(120)                # still inside the 5-minute window
    await rt.redis.flushdb()          # Redis restarted without its data
    after_loss = await http.post(server + RESOLVE, content=body, headers=captured)
    assert after_loss.status_code == 401
    assert after_loss.json()["error"]["code"] == "request_stale"

    fresh = signed("POST", RESOLVE, body, app_id, secret, timestamp=int(clock().timestamp()))
    assert (await http.post(server + RESOLVE, content=body, headers=fresh)).status_code == 404
    assert int(await rt.redis.get(NONCE_EPOCH_KEY)) == int(clock().timestamp())
    assert await rt.redis.ttl(NONCE_EPOCH_KEY) == -1  # never expires


async def test_the_signature_window_follows_the_clock(http, server, started, clock, rt) -> None:
    app_id, secret = await entrance(rt, "chengdu-channel", "SC-510100", CHENGDU_CB)
    body = json.dumps({"identity": {"kind": "unionid", "subject": "u-none"}}).encode()
    now = int(clock().timestamp())
    window = rt.settings.platform.signature_window
    for timestamp, status in ((now + window + 1, 401), (now + window, 404)):
        response = await http.post(server + RESOLVE, content=body,
                                   headers=signed("POST", RESOLVE, body, app_id, secret,
                                                  timestamp=timestamp))
        assert response.status_code == status, response.text
    clock.advance(window + 1)
    stale = signed("POST", RESOLVE, body, app_id, secret, timestamp=now)
    response = await http.post(server + RESOLVE, content=body, headers=stale)
    assert response.json()["error"]["code"] == "timestamp_expired"


# --- the record of sign-ins follows the person ---------------------------------------------------
async def test_sign_ins_follow_a_merge_and_go_with_a_cancellation(rt, db) -> None:
    app_id, _ = await entrance(rt, "chengdu-channel", "SC-510100", CHENGDU_CB)
    oa_only = await rt.accounts.sign_in_wechat(WeChatIdentity("oa_openid", APPID, "oZhang"))
    await rt.apps.record_sign_in(app_id, oa_only.id)  # signed in to the channel from the OA page
    mp_acct = await rt.accounts.sign_in_wechat(WeChatIdentity("mp_openid", MP_APPID, "mZhang", "uZhang"))
    await rt.accounts.verify_phone(mp_acct.id, ZHANG_PHONE, "miniprogram")
    merged = await rt.accounts.sign_in_wechat(WeChatIdentity("oa_openid", APPID, "oZhang", "uZhang"))
    assert merged.id == mp_acct.id != oa_only.id
    assert await rt.apps.is_linked(app_id, merged.id)
    await rt.accounts.cancel(merged.id)
    assert await db.fetchval("SELECT count(*) FROM platform_sign_ins") == 0
