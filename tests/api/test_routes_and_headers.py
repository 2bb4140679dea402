"""What every route shares: numeric ids in the URL table and metrics labels, the default headers
on pages, the session cookies' lifetime, and the scope-driven account profile."""

from __future__ import annotations

import tornado.routing

from tests.api.test_identity import WORKER_PHONE, bearer, mp_sign_in, signed
from tests.conftest import MP_APPID
from tests.services.cadres.test_cadres import PASSWORD, otp
from wxbackend.app import make_app
from wxbackend.handlers.base import DEFAULT_HEADERS, ID, url_pattern
from wxbackend.services.identity import platform as platform_service


def _rules(router: tornado.routing.RuleRouter) -> list[tornado.routing.Rule]:
    out = []
    for rule in router.rules:
        if isinstance(rule.target, tornado.routing.RuleRouter):
            out += _rules(rule.target)
        elif getattr(rule.matcher, "regex", None) is not None:
            out.append(rule)
    return out


async def test_numeric_id_routes_are_labelled_by_their_pattern(rt) -> None:
    labelled = 0
    for rule in _rules(make_app(rt).default_router):
        pattern = rule.matcher.regex.pattern.removesuffix("$")
        label = getattr(rule.target, "route", None)
        if ID in pattern:
            assert label is not None and url_pattern(label) == pattern, (pattern, label)
            labelled += 1
        if label is not None:
            assert "(" not in label, f"a metrics label is a route, not a regex: {label}"
    assert labelled >= 8  # admin, reviews, rosters and membership under both transports


async def test_id_routes_are_counted_under_the_route_not_the_id(http, server) -> None:
    await http.get(f"{server}/admin/v1/applications/123")
    await http.post(f"{server}/mp/v1/membership/applications/77/withdraw")
    text = (await http.get(f"{server}/metrics")).text
    assert 'route="/admin/v1/applications/{id}",status="401"' in text
    assert 'route="/mp/v1/membership/applications/{id}/withdraw",status="401"' in text
    assert "/123" not in text and "/77/" not in text


async def test_unknown_api_paths_answer_the_json_error_not_a_page(http, server) -> None:
    """Under every API prefix an unknown path (or an id that is no id) is the one JSON 404,
    whatever the method: the H5 pages' static route must not answer for ``/h5/api/``."""
    for prefix in ("/h5/api/v1", "/mp/v1", "/admin/v1", "/api/v1"):
        for method, path in (("GET", "/nope"), ("POST", "/nope"),
                             ("POST", "/membership/applications/-5/withdraw")):
            response = await http.request(method, f"{server}{prefix}{path}")
            assert response.status_code == 404, (method, prefix + path, response.text)
            assert response.headers["Content-Type"].startswith("application/json")
            assert response.json()["error"]["code"] == "not_found"


async def test_pages_carry_the_default_headers(http, server) -> None:
    for path, status in (("/h5/register.html", 200), ("/h5/no-such-page.html", 404)):
        response = await http.get(server + path)
        assert response.status_code == status
        for name, value in DEFAULT_HEADERS:
            assert response.headers[name] == value, (path, name)


async def test_the_admin_cookie_lasts_a_day(http, server, rt) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    login = await http.post(f"{server}/admin/v1/login",
                            json={"username": "office", "password": PASSWORD, "totp": otp(office.totp_uri)})
    assert login.status_code == 200, login.text
    header = login.headers["Set-Cookie"]
    assert header.startswith("wx_admin=") and "Max-Age=86400" in header and "Path=/admin" in header
    assert "HttpOnly" in header and "SameSite=Strict" in header


async def test_profile_and_userinfo_follow_the_scopes(http, server, fake_wechat, rt, db) -> None:
    token = (await mp_sign_in(http, server, fake_wechat, "mZhang"))["token"]
    await http.post(f"{server}/mp/v1/phone", headers=bearer(token),
                    json={"code": fake_wechat.issue_phone_code(WORKER_PHONE, MP_APPID)})
    public_id = (await http.get(f"{server}/mp/v1/me", headers=bearer(token))).json()["account"]["id"]
    account_id = await db.fetchval("SELECT id FROM accounts")

    for scopes, phone in ((("profile.read",), None), (("profile.read", "profile.phone"), WORKER_PHONE)):
        app_id = "entrance-" + str(len(scopes))
        _, secret = await rt.apps.create_app(app_id=app_id, name="入口", org_code="SC-510100",
                                             scopes=list(scopes), redirect_uris=[])
        await rt.apps.record_sign_in(app_id, account_id)  # entrances read only their own users
        path = f"/api/v1/accounts/{public_id}"
        profile = (await http.get(server + path, headers=signed("GET", path, b"", app_id, secret))).json()
        expected = {"account_id": public_id, "registered": False, "registered_at": None, "region": None,
                    "nickname": None}
        assert profile == (expected | {"phone": phone} if phone else expected)

    def userinfo(scopes: list[str]):
        return platform_service.userinfo_for(rt.apps, rt.accounts, "entrance-1", account_id, scopes)

    assert await userinfo(["sso"]) == {"sub": public_id, "registered": False}
    assert await userinfo(["profile.read", "profile.phone"]) == {
        "sub": public_id, "registered": False, "region": None, "nickname": None, "phone": WORKER_PHONE}
