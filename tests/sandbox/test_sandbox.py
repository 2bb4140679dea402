"""The sandbox's safety: its banner on every page it serves and on none of production's, its
routes only where ``wxbackend demo`` builds them, and its refusal of a configuration that looks
like production's."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import tornado.testing

from tests.conftest import APPID, MP_APPID
from tests.infra.test_cli import config, run
from wxbackend.app import make_server
from wxbackend.cli_demo import demo_settings
from wxbackend.config import load_settings
from wxbackend.handlers.sandbox.banner import BANNER_TEXT
from wxbackend.sandbox.guide import Guide
from wxbackend.sandbox.kit import Sandbox
from wxbackend.sandbox.phone import Phone
from wxbackend.sandbox.safety import refusals
from wxbackend.sandbox.simulated import FakeTencentSms
from wxbackend.services.clock import CHINA
from wxbackend.services.messaging.menu import push_menu

SECRET = pyotp.random_base32()
DEMO = {"cadres": [{"username": "office", "display_name": "平台办公室", "role": "operator",
                    "duty": "system", "org_name": "四川省总工会", "totp_secret": SECRET, "tour": "office"}],
        "workers": [{"account_id": 1, "name": "测试甲", "phone": "19900000001", "openid": "o-demo-1",
                     "member": True}],
        "counts": {"workers": 1}}
PAGES = ("/admin/", "/h5/", "/verify/")
MENU = [{"name": "工会服务",
         "sub_button": [{"type": "view", "name": "活动报名", "url": "{h5}/activities.html"}]},
        {"type": "click", "name": "帮助", "key": "HELP"}]


@pytest.fixture
async def sandboxed(rt, fake_wechat, pusher):
    """The application as ``wxbackend demo`` builds it, its phone pushing to it over HTTP."""
    guide = Guide(DEMO, password="Demo-Password-2026", now=lambda: datetime(2026, 3, 2, 9, tzinfo=CHINA))
    sock, port = tornado.testing.bind_unused_port()
    url = f"http://127.0.0.1:{port}"
    fake_wechat.oauth_user("o-demo-1")
    phone = Phone(rt.http, url, pusher, fake_wechat, FakeTencentSms(), mp_appid=MP_APPID)
    await push_menu(rt.api, {"button": MENU}, rt.h5_base)      # as the demo does at start
    server = make_server(rt, Sandbox(guide=guide, phone=phone))
    server.add_sockets([sock])
    yield url
    server.stop()
    await rt.inbox.drain()
    await server.close_all_connections()


async def test_every_page_of_the_sandbox_carries_the_banner(sandboxed, http) -> None:
    for path in (*PAGES, "/sandbox/", "/sandbox/phone.html", "/sandbox/authorize.html"):
        page = await http.get(f"{sandboxed}{path}")
        assert page.status_code == 200, path
        assert BANNER_TEXT in page.text, path
        assert len(page.content) == int(page.headers["Content-Length"]), path
        # Inside the page's body, with its stylesheet from our own origin.
        assert page.text.index("<body") < page.text.index(BANNER_TEXT), path
        assert '<link rel="stylesheet" href="/static/shared/sandbox-banner.css">' in page.text
        # The phone page may frame the worker's pages; no other site may.
        assert page.headers["X-Frame-Options"] == "SAMEORIGIN", path
        assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"], path
    assert (await http.get(f"{sandboxed}/static/shared/sandbox-banner.css")).status_code == 200
    # An API answer is not a page: left as it is.
    assert BANNER_TEXT not in (await http.get(f"{sandboxed}/healthz")).text


async def test_the_sandbox_page_shows_the_cadres_codes(sandboxed, http) -> None:
    people = (await http.get(f"{sandboxed}/sandbox/api/people")).json()
    office = people["cadres"][0]
    at = datetime(2026, 3, 2, 9, tzinfo=CHINA)
    assert office["username"] == "office" and office["totp"] == pyotp.TOTP(SECRET).at(at)
    assert "totp_secret" not in office
    assert people["password"] == "Demo-Password-2026"
    assert people["workers"] == [{"name": "测试甲", "phone": "19900000001", "member": True,
                                  "openid": "o-demo-1"}]


async def test_a_production_server_has_no_sandbox_and_no_banner(server, http) -> None:
    for path in PAGES:
        page = await http.get(f"{server}{path}")
        assert page.status_code == 200 and BANNER_TEXT not in page.text
    for path in ("/sandbox/", "/sandbox/api/people", "/sandbox/sandbox.js", "/sandbox/phone.html",
                 "/sandbox/api/phone/menu", "/sandbox/wechat/authorize"):
        assert (await http.get(f"{server}{path}")).status_code == 404, path


def test_a_configuration_like_productions_is_refused() -> None:
    assert refusals(load_settings(None, environ={})) == []
    for environ, what in (({"WXBACKEND__DATABASE__DSN": "postgresql://db.example/prod"}, "[database] dsn"),
                          ({"WXBACKEND__REDIS__URL": "redis://cache.example/0"}, "[redis] url"),
                          ({"WXBACKEND__WECHAT__APPID": "wx0123456789abcdef"}, "AppID"),
                          ({"WXBACKEND__SMS__PROVIDER": "tencent"}, "短信")):
        found = refusals(load_settings(None, environ=environ))
        assert len(found) == 1 and what in found[0], environ


async def test_the_demo_command_refuses_real_credentials_unless_forced(tmp_path) -> None:
    # The test configuration carries (made-up) WeChat credentials, as a production one would.
    code, _, err = await run("--config", str(config(tmp_path)), "demo", "--port", "9")
    assert code == 2 and "演示环境拒绝启动" in err and "--force" in err
    assert not (tmp_path / "var" / "demo").exists()          # nothing was started or written


async def test_the_phone_pushes_through_the_same_envelope_as_wechat(sandboxed, http, db, rt) -> None:
    async def act(action: str, value: str = "") -> dict:
        answer = await http.post(f"{sandboxed}/sandbox/api/phone/push",
                                 json={"openid": "o-demo-1", "action": action, "value": value})
        assert answer.status_code == 200, answer.text
        return answer.json()["reply"]

    await act("follow")
    assert await db.fetchval("SELECT subscribed FROM wechat_followers WHERE openid = 'o-demo-1'") is True
    reply = await act("text", "帮助")
    assert reply["type"] == "text" and reply["content"]
    # Received by the product's own endpoint, signed and encrypted: it recorded both pushes.
    kinds = [r["msg_type"] for r in await db.fetch(
        "SELECT msg_type FROM wechat_inbound WHERE openid = 'o-demo-1' ORDER BY id")]
    assert kinds == ["event", "text"]
    await act("unfollow")
    assert await db.fetchval("SELECT subscribed FROM wechat_followers WHERE openid = 'o-demo-1'") is False
    # What the product sends the worker later arrives on the phone.
    await rt.api.send_custom({"touser": "o-demo-1", "msgtype": "text", "text": {"content": "报名成功"}})
    messages = (await http.get(f"{sandboxed}/sandbox/api/phone/messages",
                               params={"openid": "o-demo-1"})).json()
    assert [(m["kind"], m["text"]) for m in messages["messages"]] == [("客服消息", "报名成功")]
    bad = await http.post(f"{sandboxed}/sandbox/api/phone/push",
                          json={"openid": "o-demo-1", "action": "pay"})
    assert bad.status_code == 400


async def test_the_pages_sign_in_as_the_worker_chosen_on_the_phone(sandboxed, http, rt) -> None:
    query = {"appid": "wx", "redirect_uri": "http://x.example/cb", "response_type": "code",
             "scope": "snsapi_base", "state": "s1"}
    nobody = await http.get(f"{sandboxed}/sandbox/wechat/authorize", params=query)
    assert nobody.status_code == 302 and nobody.headers["Location"].startswith("/sandbox/authorize.html?")
    chosen = await http.get(f"{sandboxed}/sandbox/wechat/authorize", params=query,
                            headers={"Cookie": "sandbox_openid=o-demo-1"})
    assert chosen.status_code == 400 and "appid" in chosen.json()["error"]["message"]   # WeChat's check
    query["appid"] = APPID
    chosen = await http.get(f"{sandboxed}/sandbox/wechat/authorize", params=query,
                            headers={"Cookie": "sandbox_openid=o-demo-1"})
    assert chosen.status_code == 302
    back = urlsplit(chosen.headers["Location"])
    assert (back.netloc, back.path) == ("x.example", "/cb")
    code = parse_qs(back.query)["code"][0]
    assert parse_qs(back.query)["state"] == ["s1"]
    # The code is WeChat's: the product exchanges it for the worker's openid.
    assert (await rt.api.oauth_exchange(code))["openid"] == "o-demo-1"
    menu = (await http.get(f"{sandboxed}/sandbox/api/phone/menu")).json()["button"]
    assert menu[0]["sub_button"][0]["url"] == f"{rt.h5_base}/activities.html"


def test_the_sandbox_listens_on_this_machine_only_with_its_own_keys(tmp_path) -> None:
    settings = load_settings(None, environ={"WXBACKEND__SERVER__DATA_DIR": str(tmp_path)})
    demo = demo_settings(settings, 8123, force=False)
    assert (demo.server.address, demo.server.public_url) == ("127.0.0.1", "http://127.0.0.1:8123")
    assert demo.data_dir == tmp_path / "demo" and demo.embedded_database
    assert demo.wechat.appid and demo.miniprogram.appid and demo.security.field_keys.reveal()
    # Made once: a restart keeps the keys the data was sealed with.
    assert demo_settings(settings, 8123, force=False).security.field_keys == demo.security.field_keys
