"""The fakes must speak WeChat's real wire format, or every test built on them proves nothing.

wechatpy, the library real servers use, is the independent judge on the push side; on the API side
the fake is driven over real HTTP with httpx, the way the client code under test will drive it.
"""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.parse
from collections.abc import AsyncIterator

import httpx
import pytest
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.events import ClickEvent, LocationEvent, SubscribeScanEvent
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.messages import TextMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from tests.fakes import FakePusher, FakeWeChat

TOKEN = "wxbackendtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx0123456789abcdef"
SECRET = "fake-secret"
GH_ID = "gh_0123456789ab"
OPENID = "oXYZ-user-openid-0000000001"


def make_pusher(mode: str = "safe") -> FakePusher:
    return FakePusher(TOKEN, AES_KEY, APPID, GH_ID, mode=mode)


# -- pushes: FakePusher against wechatpy ---------------------------------------------------------


def test_safe_request_decrypts_with_wechatpy() -> None:
    p = make_pusher("safe")
    xml = p.text(OPENID, "你好 <world> & ]]> tail", msg_id=1234567890123456, create_time=1700000000)
    params, body = p.request(xml, timestamp=1700000001, nonce="1320562132", openid=OPENID)

    assert params["encrypt_type"] == "aes"
    assert params["openid"] == OPENID
    assert params["timestamp"] == "1700000001"
    check_signature(TOKEN, params["signature"], params["timestamp"], params["nonce"])
    assert set(FakePusher.parse(body.decode())) == {"ToUserName", "Encrypt"}
    assert FakePusher.parse(body.decode())["ToUserName"] == GH_ID

    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    plain = crypto.decrypt_message(
        body, params["msg_signature"], params["timestamp"], params["nonce"]
    )
    assert plain == xml
    msg = parse_message(plain)
    assert isinstance(msg, TextMessage)
    assert msg.content == "你好 <world> & ]]> tail"
    assert (msg.source, msg.target, msg.id) == (OPENID, GH_ID, 1234567890123456)
    assert msg.create_time.timestamp() == 1700000000


def test_compat_body_carries_plaintext_and_encrypt() -> None:
    p = make_pusher("compat")
    xml = p.text(OPENID, "hello")
    params, body = p.request(xml)

    fields = FakePusher.parse(body.decode())
    assert fields["Content"] == "hello"
    assert fields["FromUserName"] == OPENID
    assert fields["Encrypt"]
    assert parse_message(body).content == "hello"
    plain = WeChatCrypto(TOKEN, AES_KEY, APPID).decrypt_message(
        body, params["msg_signature"], params["timestamp"], params["nonce"]
    )
    assert plain == xml


def test_plain_request_and_url_verification() -> None:
    p = make_pusher("plain")
    xml = p.text(OPENID, "hi")
    params, body = p.request(xml)
    assert body == xml.encode()
    assert "encrypt_type" not in params and "msg_signature" not in params and "openid" not in params
    check_signature(TOKEN, params["signature"], params["timestamp"], params["nonce"])

    query = make_pusher("safe").verification("echo-123", timestamp=1700000000, nonce="42")
    assert query["echostr"] == "echo-123"
    check_signature(TOKEN, query["signature"], query["timestamp"], query["nonce"])


def test_events_and_messages_parse_like_real_pushes() -> None:
    p = make_pusher()
    scan = parse_message(p.event(OPENID, "subscribe", EventKey="qrscene_bind42", Ticket="gQH"))
    assert isinstance(scan, SubscribeScanEvent)
    assert scan.scene_id == "bind42"
    assert "MsgId" not in FakePusher.parse(p.event(OPENID, "unsubscribe"))

    loc = parse_message(
        p.event(OPENID, "LOCATION", Latitude=30.657, Longitude=104.066, Precision=65.0)
    )
    assert isinstance(loc, LocationEvent)
    assert (loc.latitude, loc.longitude) == (30.657, 104.066)
    assert isinstance(parse_message(p.event(OPENID, "CLICK", EventKey="MENU_NEWS")), ClickEvent)

    image = FakePusher.parse(p.message(OPENID, "image", PicUrl="http://x/y.jpg", MediaId="m1"))
    assert list(image)[-3:] == ["PicUrl", "MediaId", "MsgId"]
    assert p.text(OPENID, "a") != p.text(OPENID, "a")  # fresh MsgId each time


def test_forged_appid_is_refused_by_wechatpy() -> None:
    encrypt = make_pusher().encrypt("<xml></xml>", appid="wxsomebodyelse0001")
    key = base64.b64decode(AES_KEY + "=")
    assert PrpCrypto(key).decrypt(encrypt, "wxsomebodyelse0001") == "<xml></xml>"
    with pytest.raises(InvalidAppIdException):
        PrpCrypto(key).decrypt(encrypt, APPID)


def _wechatpy_reply(appid: str = APPID) -> tuple[str, str]:
    msg = parse_message(make_pusher().text(OPENID, "ping"))
    xml = TextReply(message=msg, content="pong ✓").render()
    return xml, WeChatCrypto(TOKEN, AES_KEY, appid).encrypt_message(xml, "9876", "1700000000")


def test_open_reply_opens_wechatpy_envelope() -> None:
    xml, envelope = _wechatpy_reply()
    opened = make_pusher().open_reply(envelope.encode())
    assert opened == xml
    fields = FakePusher.parse(opened)
    assert (fields["ToUserName"], fields["FromUserName"]) == (OPENID, GH_ID)
    assert fields["Content"] == "pong ✓"
    assert make_pusher("compat").open_reply(envelope) == xml


def test_open_reply_refuses_bad_signature_wrong_appid_and_plaintext_in_safe_mode() -> None:
    _, envelope = _wechatpy_reply()
    root = FakePusher.parse(envelope)
    tampered = envelope.replace(root["MsgSignature"], "0" * 40)
    with pytest.raises(AssertionError, match="MsgSignature mismatch"):
        make_pusher().open_reply(tampered)

    _, foreign = _wechatpy_reply(appid="wxsomebodyelse0001")
    with pytest.raises(AssertionError, match="AppID"):
        make_pusher().open_reply(foreign)

    plain_reply = "<xml><MsgType><![CDATA[text]]></MsgType></xml>"
    with pytest.raises(AssertionError, match="safe mode requires"):
        make_pusher("safe").open_reply(plain_reply)
    assert make_pusher("compat").open_reply(plain_reply) == plain_reply
    assert make_pusher("plain").open_reply(plain_reply.encode()) == plain_reply
    assert make_pusher().open_reply(b"") == ""
    assert make_pusher().open_reply(b"success") == "success"


# -- API: FakeWeChat over HTTP -------------------------------------------------------------------


class Clock:
    """A hand-moved clock, so token lifetimes can pass without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeWeChat]:
    async with FakeWeChat(APPID, SECRET, clock=clock) as server:
        yield server


@pytest.fixture
async def api(fake: FakeWeChat) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=5, trust_env=False) as client:
        yield client


async def classic_token(api: httpx.AsyncClient, **overrides: str) -> dict:
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, **overrides}
    resp = await api.get("/cgi-bin/token", params=params)
    assert resp.status_code == 200
    return resp.json()


async def stable_token(
    api: httpx.AsyncClient, force: bool = False, *, appid: str = APPID, secret: str = SECRET
) -> dict:
    body = {"grant_type": "client_credential", "appid": appid, "secret": secret}
    resp = await api.post("/cgi-bin/stable_token", json={**body, "force_refresh": force})
    return resp.json()


async def send_text(api: httpx.AsyncClient, token: str | None) -> int:
    params = {} if token is None else {"access_token": token}
    body = {"touser": OPENID, "msgtype": "text", "text": {"content": "hi"}}
    resp = await api.post("/cgi-bin/message/custom/send", params=params, json=body)
    assert resp.status_code == 200
    return resp.json()["errcode"]


async def test_classic_token_rotation_keeps_only_the_previous_token(
    fake: FakeWeChat, api: httpx.AsyncClient, clock: Clock
) -> None:
    first, second, third = [await classic_token(api) for _ in range(3)]
    assert third["expires_in"] == 7200
    assert len({first["access_token"], second["access_token"], third["access_token"]}) == 3
    assert await send_text(api, first["access_token"]) == 40001
    assert await send_text(api, second["access_token"]) == 0
    assert await send_text(api, third["access_token"]) == 0
    clock.now += 301  # the overlap is about five minutes
    assert await send_text(api, second["access_token"]) == 40001
    assert await send_text(api, third["access_token"]) == 0
    assert fake.count("/cgi-bin/token") == 3


async def test_token_credential_errors(api: httpx.AsyncClient) -> None:
    assert (await classic_token(api, appid="wxwrong"))["errcode"] == 40013
    assert (await classic_token(api, secret="wrong"))["errcode"] == 40125
    assert (await classic_token(api, grant_type="password"))["errcode"] == 40002


async def test_stable_token_normal_and_force_modes(api: httpx.AsyncClient, clock: Clock) -> None:
    classic = (await classic_token(api))["access_token"]
    one = await stable_token(api)
    clock.now += 100
    two = await stable_token(api)
    assert one["access_token"] == two["access_token"]
    assert (one["expires_in"], two["expires_in"]) == (7200, 7100)

    forced = await stable_token(api, force=True)
    assert forced["access_token"] != one["access_token"]
    assert await send_text(api, one["access_token"]) == 40001
    assert await send_text(api, forced["access_token"]) == 0
    assert await send_text(api, classic) == 0  # separate namespaces
    await classic_token(api)
    await classic_token(api)
    assert await send_text(api, forced["access_token"]) == 0

    clock.now += 7200 - 299  # inside the last five minutes the platform rotates
    rotated = await stable_token(api)
    assert rotated["access_token"] != forced["access_token"]
    assert rotated["expires_in"] == 7200


async def test_access_token_errors(fake: FakeWeChat, api: httpx.AsyncClient, clock: Clock) -> None:
    token = (await stable_token(api))["access_token"]
    assert await send_text(api, None) == 41001
    assert await send_text(api, "not-a-token") == 40001
    assert await send_text(api, token) == 0
    fake.expire_tokens()
    assert await send_text(api, token) == 42001
    fresh = (await stable_token(api))["access_token"]
    assert fresh != token
    fake.invalidate_tokens()
    assert await send_text(api, fresh) == 40001
    last = (await classic_token(api))["access_token"]
    clock.now += 7200
    assert await send_text(api, last) == 42001


async def test_fail_next_unknown_path_and_bad_bodies(
    fake: FakeWeChat, api: httpx.AsyncClient
) -> None:
    token = (await stable_token(api))["access_token"]
    fake.fail_next("/cgi-bin/message/custom/send", 45011, times=2)
    assert [await send_text(api, token) for _ in range(3)] == [45011, 45011, 0]
    assert fake.count("/cgi-bin/message/custom/send") == 3
    assert len(fake.delivered("/cgi-bin/message/custom/send")) == 1
    error = (await api.post("/cgi-bin/message/custom/send", params={"access_token": token})).json()
    assert error == {"errcode": 47001, "errmsg": "data format error"}

    resp = await api.get("/cgi-bin/no/such/api", params={"access_token": token})
    assert resp.status_code == 200
    assert resp.json() == {"errcode": 40066, "errmsg": "invalid url"}
    resp = await api.post("/cgi-bin/menu/create", params={"access_token": token}, content=b"<xml/>")
    assert resp.json()["errcode"] == 47001
    assert fake.calls[-1].body is None and fake.calls[-1].path == "/cgi-bin/menu/create"
    assert (await api.get("/cgi-bin/stable_token")).json()["errcode"] == 43002

    fake.reset()
    assert fake.calls == [] and fake.count("/cgi-bin/message/custom/send") == 0
    with pytest.raises(FileNotFoundError):
        fake.fail_next("/cgi-bin/token", 12345)


def _leaf(name: str = "资讯", **extra: str) -> dict:
    return {"type": "click", "name": name, "key": "NEWS", **extra}


@pytest.mark.parametrize(
    ("menu", "errcode"),
    [
        ({"button": []}, 40016),
        ({"button": [_leaf()] * 4}, 40016),
        ({"button": [{"name": "更多", "sub_button": [_leaf()] * 6}]}, 40023),
        ({"button": [_leaf("一二三四五六")]}, 40018),  # 18 bytes > 16
        ({"button": [{"name": "更多", "sub_button": [_leaf("长" * 21)]}]}, 40025),  # 63 > 60
        ({"button": [{"type": "hover", "name": "x"}]}, 40017),
        ({"button": [{"type": "click", "name": "x"}]}, 40019),
        ({"button": [{"type": "view", "name": "x"}]}, 40020),
        ({"button": [{"name": "更多", "sub_button": [{"type": "view", "name": "x"}]}]}, 40027),
        ({"button": [{"type": "miniprogram", "name": "x", "url": "https://a"}]}, 47001),
    ],
)
async def test_menu_validation(
    fake: FakeWeChat, api: httpx.AsyncClient, menu: dict, errcode: int
) -> None:
    token = (await stable_token(api))["access_token"]
    resp = await api.post("/cgi-bin/menu/create", params={"access_token": token}, json=menu)
    assert resp.json()["errcode"] == errcode
    assert fake.menu is None


async def test_menu_create_and_get(fake: FakeWeChat, api: httpx.AsyncClient) -> None:
    token = (await stable_token(api))["access_token"]
    query = {"access_token": token}
    assert (await api.get("/cgi-bin/menu/get", params=query)).json()["errcode"] == 46003
    menu = {
        "button": [
            _leaf("四个汉字"),
            {
                "name": "服务",
                "sub_button": [
                    {"type": "view", "name": "会员", "url": "https://example.com/m"},
                    {
                        "type": "miniprogram",
                        "name": "小程序",
                        "url": "https://example.com",
                        "appid": "wx1111111111111111",
                        "pagepath": "pages/index",
                    },
                ],
            },
        ]
    }
    resp = await api.post("/cgi-bin/menu/create", params=query, json=menu)
    assert resp.json() == {"errcode": 0, "errmsg": "ok"}
    assert fake.menu == menu
    got = (await api.get("/cgi-bin/menu/get", params=query)).json()["menu"]["button"]
    assert got[0]["sub_button"] == [] and got[0]["key"] == "NEWS"
    assert got[1]["sub_button"][0]["url"] == "https://example.com/m"


async def test_template_send_dedupes_client_msg_id(
    fake: FakeWeChat, api: httpx.AsyncClient
) -> None:
    path = "/cgi-bin/message/template/send"
    query = {"access_token": (await stable_token(api))["access_token"]}
    msg = {"touser": OPENID, "template_id": "T1", "data": {"thing1": {"value": "会议"}}}

    first = (await api.post(path, params=query, json={**msg, "client_msg_id": "a"})).json()
    again = (await api.post(path, params=query, json={**msg, "client_msg_id": "a"})).json()
    other = (await api.post(path, params=query, json={**msg, "client_msg_id": "b"})).json()
    assert first["errcode"] == 0 and first["errmsg"] == "ok"
    assert again["msgid"] == first["msgid"]
    assert other["msgid"] > first["msgid"]
    assert fake.count(path) == 3
    assert [b["client_msg_id"] for b in fake.delivered(path)] == ["a", "b"]
    assert len(fake.bodies(path)) == 3

    bad = (await api.post(path, params=query, json={"touser": OPENID, "data": {}})).json()
    assert bad["errcode"] == 40037


async def test_custom_and_subscribe_sends_validate_their_bodies(
    fake: FakeWeChat, api: httpx.AsyncClient
) -> None:
    query = {"access_token": (await stable_token(api))["access_token"]}
    custom = "/cgi-bin/message/custom/send"
    no_user = {"msgtype": "text", "text": {"content": "x"}}
    assert (await api.post(custom, params=query, json=no_user)).json()["errcode"] == 40003
    no_content = {"touser": OPENID, "msgtype": "text", "text": {}}
    assert (await api.post(custom, params=query, json=no_content)).json()["errcode"] == 47001

    note = {"touser": OPENID, "template_id": "T2", "data": {"thing1": {"value": "x"}}}
    path = "/cgi-bin/message/subscribe/bizsend"
    assert (await api.post(path, params=query, json=note)).json()["errcode"] == 0
    no_data = {"touser": OPENID, "template_id": "T2"}
    assert (await api.post(path, params=query, json=no_data)).json()["errcode"] == 47001
    too_long = {**note, "data": {"thing1": {"value": "字" * 21}, "phrase2": {"value": "已通过"}}}
    assert (await api.post(path, params=query, json=too_long)).json()["errcode"] == 47003
    not_a_phrase = {**note, "data": {"phrase2": {"value": "OK"}}}
    assert (await api.post(path, params=query, json=not_a_phrase)).json()["errcode"] == 47003
    assert fake.delivered(path) == [note]
    # The Mini Program's subscribe message: the OA's token may not send it
    assert (await api.post("/cgi-bin/message/subscribe/send", params=query,
                           json=note)).json()["errcode"] == 48001


async def test_delay_drives_client_timeouts_and_stop_does_not_hang(
    fake: FakeWeChat, api: httpx.AsyncClient
) -> None:
    fake.set_delay("/cgi-bin/stable_token", 2.0)
    with pytest.raises(httpx.ReadTimeout):
        body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
        await api.post("/cgi-bin/stable_token", json=body, timeout=0.1)
    assert fake.count("/cgi-bin/stable_token") == 1
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 1.0


# -- more apps, web OAuth, JS-SDK, Mini Program login and phone numbers -------------------------

MP_APPID = "wxfedcba9876543210"
MP_SECRET = "fake-mp-secret"
CUSTOM = "/cgi-bin/message/custom/send"
PHONE_PATH = "/wxa/business/getuserphonenumber"
CALLBACK = "https://wx.example.org/h5/oauth/callback?next=%2Fme%3Fa%3D1&x=1"


async def sns_token(api: httpx.AsyncClient, code: str, **overrides: str) -> dict:
    params = {
        "appid": APPID,
        "secret": SECRET,
        "code": code,
        "grant_type": "authorization_code",
        **overrides,
    }
    return (await api.get("/sns/oauth2/access_token", params=params)).json()


async def userinfo(api: httpx.AsyncClient, token: str, openid: str) -> dict:
    params = {"access_token": token, "openid": openid, "lang": "zh_CN"}
    return (await api.get("/sns/userinfo", params=params)).json()


async def authorize(api: httpx.AsyncClient, **overrides: str) -> httpx.Response:
    params = {
        "appid": APPID,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "snsapi_userinfo",
        "state": "s7Kq2",
        "fake_openid": "oUser",
        **overrides,
    }
    return await api.get("/connect/oauth2/authorize", params=params)


async def js_login(api: httpx.AsyncClient, code: str, **overrides: str) -> dict:
    params = {
        "appid": MP_APPID,
        "secret": MP_SECRET,
        "js_code": code,
        "grant_type": "authorization_code",
        **overrides,
    }
    return (await api.get("/sns/jscode2session", params=params)).json()


async def phone_number(api: httpx.AsyncClient, token: str, code: str) -> dict:
    resp = await api.post(PHONE_PATH, params={"access_token": token}, json={"code": code})
    return resp.json()


async def test_each_app_has_its_own_tokens(fake: FakeWeChat, api: httpx.AsyncClient) -> None:
    fake.add_app(MP_APPID, MP_SECRET)
    with pytest.raises(ValueError, match="already registered"):
        fake.add_app(MP_APPID, "other")
    with pytest.raises(ValueError, match="kind"):
        fake.add_app("wx2222222222222222", "s", kind="game")

    oa = (await stable_token(api))["access_token"]
    mp = (await stable_token(api, appid=MP_APPID, secret=MP_SECRET))["access_token"]
    assert oa != mp
    await stable_token(api, force=True, appid=MP_APPID, secret=MP_SECRET)
    assert await send_text(api, oa) == 0  # the Mini Program's force refresh leaves the OA alone
    assert await send_text(api, mp) == 40001

    oa_classic = (await classic_token(api))["access_token"]
    for _ in range(3):
        await classic_token(api, appid=MP_APPID, secret=MP_SECRET)
    assert await send_text(api, oa_classic) == 0
    assert (await classic_token(api, appid=MP_APPID, secret=SECRET))["errcode"] == 40125
    assert (await stable_token(api, appid=MP_APPID, secret="wrong"))["errcode"] == 40125

    assert [c.appid for c in fake.calls if c.path == CUSTOM] == [APPID, None, APPID]
    assert {c.appid for c in fake.calls if c.path == "/cgi-bin/token"} == {APPID, MP_APPID, None}


async def test_oauth_authorize_redirects_with_a_single_use_code(
    fake: FakeWeChat, api: httpx.AsyncClient
) -> None:
    fake.oauth_user("oUser", unionid="uUnion", nickname="张三", headimgurl="https://img/a.png")
    resp = await authorize(api)
    assert resp.status_code == 302
    location = urllib.parse.urlsplit(resp.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "wx.example.org",
        "/h5/oauth/callback",
    )
    assert location.query.startswith("next=%2Fme%3Fa%3D1&x=1&code=")  # existing query kept as is
    query = urllib.parse.parse_qs(location.query)
    assert query["state"] == ["s7Kq2"] and query["next"] == ["/me?a=1"]
    code = query["code"][0]
    assert fake.calls[-1].appid == APPID

    token = await sns_token(api, code)
    assert set(token) == {"access_token", "expires_in", "refresh_token", "openid", "scope", "unionid"}
    assert (token["openid"], token["scope"], token["unionid"]) == ("oUser", "snsapi_userinfo", "uUnion")
    assert token["expires_in"] == 7200 and token["refresh_token"] != token["access_token"]
    assert (await sns_token(api, code))["errcode"] == 40163
    assert await send_text(api, token["access_token"]) == 40001  # a user token is not global

    info = await userinfo(api, token["access_token"], "oUser")
    assert info == {
        "openid": "oUser",
        "nickname": "张三",
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": "https://img/a.png",
        "privilege": [],
        "unionid": "uUnion",
    }
    assert (await userinfo(api, token["access_token"], "oSomeoneElse"))["errcode"] == 40003


async def test_oauth_code_and_token_errors(
    fake: FakeWeChat, api: httpx.AsyncClient, clock: Clock
) -> None:
    fake.oauth_user("oBase", unionid="uBase")
    fake.oauth_user("oSnap", snapshot=True)

    base = await sns_token(api, fake.issue_oauth_code("oBase"))
    assert base["scope"] == "snsapi_base"
    assert "unionid" not in base and "is_snapshotuser" not in base
    assert (await userinfo(api, base["access_token"], "oBase"))["errcode"] == 48001
    assert (await userinfo(api, "not-a-token", "oBase")) == {
        "errcode": 40001,
        "errmsg": "invalid credential, access_token is invalid or not latest",
    }

    snap = await sns_token(api, fake.issue_oauth_code("oSnap", "snsapi_userinfo"))
    assert snap["is_snapshotuser"] == 1 and "unionid" not in snap
    assert "unionid" not in await userinfo(api, snap["access_token"], "oSnap")

    assert await sns_token(api, "no-such-code") == {"errcode": 40029, "errmsg": "invalid code"}
    code = fake.issue_oauth_code("oBase")
    assert (await sns_token(api, code, appid="wxwrong"))["errcode"] == 40013
    assert (await sns_token(api, code, secret="wrong"))["errcode"] == 40125
    assert (await sns_token(api, code, grant_type="client_credential"))["errcode"] == 40002
    clock.now += 301  # codes live five minutes
    assert (await sns_token(api, code))["errcode"] == 40029
    clock.now += 7200
    assert (await userinfo(api, snap["access_token"], "oSnap"))["errcode"] == 42001

    with pytest.raises(LookupError):
        fake.issue_oauth_code("oNobody")
    with pytest.raises(ValueError, match="scope"):
        fake.issue_oauth_code("oBase", "snsapi_login")


@pytest.mark.parametrize(
    "overrides",
    [
        {"appid": "wxunknown"},
        {"appid": MP_APPID},
        {"fake_openid": "oNobody"},
        {"scope": "snsapi_login"},
        {"response_type": "token"},
        {"redirect_uri": "javascript:alert(1)"},
    ],
)
async def test_oauth_authorize_error_page(
    fake: FakeWeChat, api: httpx.AsyncClient, overrides: dict[str, str]
) -> None:
    fake.add_app(MP_APPID, MP_SECRET)
    fake.oauth_user("oUser")
    resp = await authorize(api, **overrides)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Location" not in resp.headers


async def test_jsapi_ticket_is_reused_while_valid(
    fake: FakeWeChat, api: httpx.AsyncClient, clock: Clock
) -> None:
    assert fake.jsapi_ticket is None
    token = (await stable_token(api))["access_token"]
    path = "/cgi-bin/ticket/getticket"
    first = (await api.get(path, params={"access_token": token, "type": "jsapi"})).json()
    assert (first["errcode"], first["errmsg"], first["expires_in"]) == (0, "ok", 7200)
    clock.now += 60
    again = (await api.get(path, params={"access_token": token, "type": "jsapi"})).json()
    assert again["ticket"] == first["ticket"] == fake.jsapi_ticket
    assert again["expires_in"] == 7140

    # What a test of the JS-SDK config endpoint recomputes (keys sorted, raw values, sha1).
    raw = f"jsapi_ticket={fake.jsapi_ticket}&noncestr=Wm3WZYTPz0wzccnW&timestamp=1414587457&url=https://a/b?c=1"
    assert len(hashlib.sha1(raw.encode()).hexdigest()) == 40

    assert (await api.get(path, params={"access_token": token, "type": "wx_card"})).json()[
        "errcode"
    ] == 40097
    assert (await api.get(path, params={"type": "jsapi"})).json()["errcode"] == 41001
    fake.fail_next(path, 45009)
    assert (await api.get(path, params={"access_token": token, "type": "jsapi"})).json()[
        "errcode"
    ] == 45009

    fake.add_app(MP_APPID, MP_SECRET)
    mp = (await stable_token(api, appid=MP_APPID, secret=MP_SECRET))["access_token"]
    mp_ticket = (await api.get(path, params={"access_token": mp, "type": "jsapi"})).json()["ticket"]
    assert mp_ticket != fake.jsapi_ticket  # per app

    clock.now += 7200
    token = (await stable_token(api))["access_token"]
    renewed = (await api.get(path, params={"access_token": token, "type": "jsapi"})).json()
    assert renewed["ticket"] != first["ticket"] and renewed["ticket"] == fake.jsapi_ticket


async def test_jscode2session(fake: FakeWeChat, api: httpx.AsyncClient, clock: Clock) -> None:
    fake.mp_user("oMini")
    with pytest.raises(LookupError, match="add_app"):
        fake.issue_js_code("oMini")
    fake.add_app(MP_APPID, MP_SECRET)
    fake.mp_user("oMini", unionid="uUnion")
    fake.mp_user("oPlain")

    session = await js_login(api, fake.issue_js_code("oMini"))
    assert session == {"openid": "oMini", "session_key": fake.session_key("oMini"), "unionid": "uUnion"}
    assert len(session["session_key"]) == 24
    assert len(base64.b64decode(session["session_key"])) == 16
    assert (await js_login(api, fake.issue_js_code("oMini")))["session_key"] == session["session_key"]
    assert set(await js_login(api, fake.issue_js_code("oPlain"))) == {"openid", "session_key"}
    assert fake.calls[-1].appid == MP_APPID

    code = fake.issue_js_code("oMini")
    fake.fail_next("/sns/jscode2session", 45011)
    assert (await js_login(api, code))["errcode"] == 45011
    assert (await js_login(api, code))["openid"] == "oMini"  # the injected failure spent nothing
    assert await js_login(api, code) == {"errcode": 40029, "errmsg": "invalid code"}
    assert (await js_login(api, "unknown"))["errcode"] == 40029
    assert (await js_login(api, fake.issue_js_code("oMini"), secret="wrong"))["errcode"] == 40125
    # A Mini Program code means nothing to another app.
    assert (await js_login(api, fake.issue_js_code("oMini"), appid=APPID, secret=SECRET))[
        "errcode"
    ] == 40029
    expiring = fake.issue_js_code("oMini")
    clock.now += 301
    assert (await js_login(api, expiring))["errcode"] == 40029

    rotated = fake.rotate_session_key("oMini")
    assert rotated != session["session_key"]
    assert (await js_login(api, fake.issue_js_code("oMini")))["session_key"] == rotated
    fake.mp_user("oMini", session_key="AAAAAAAAAAAAAAAAAAAAAA==")
    assert fake.session_key("oMini") == "AAAAAAAAAAAAAAAAAAAAAA=="

    with pytest.raises(LookupError):
        fake.issue_js_code("oNobody")
    with pytest.raises(ValueError, match="not a Mini Program"):
        fake.issue_js_code("oMini", appid=APPID)


async def test_phone_number_needs_a_mini_program_token(
    fake: FakeWeChat, api: httpx.AsyncClient, clock: Clock
) -> None:
    fake.add_app(MP_APPID, MP_SECRET)
    fake.add_app("wx3333333333333333", "second-oa", kind="official")
    mp = (await stable_token(api, appid=MP_APPID, secret=MP_SECRET))["access_token"]
    oa = (await stable_token(api))["access_token"]
    other_oa = (await stable_token(api, appid="wx3333333333333333", secret="second-oa"))[
        "access_token"
    ]

    code = fake.issue_phone_code("13812345678")
    assert await phone_number(api, oa, code) == {"errcode": 48001, "errmsg": "api unauthorized"}
    assert (await phone_number(api, other_oa, code))["errcode"] == 48001
    before = int(time.time())
    answer = await phone_number(api, mp, code)  # refused calls did not spend the code
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok")
    info = answer["phone_info"]
    assert (info["phoneNumber"], info["purePhoneNumber"], info["countryCode"]) == (
        "13812345678",
        "13812345678",
        "86",
    )
    assert info["watermark"]["appid"] == MP_APPID
    assert before <= info["watermark"]["timestamp"] <= int(time.time())
    assert fake.calls[-1].appid == MP_APPID

    assert (await phone_number(api, mp, code))["errcode"] == 40029
    assert (await phone_number(api, mp, "unknown"))["errcode"] == 40029
    assert (await phone_number(api, "not-a-token", code))["errcode"] == 40001
    resp = await api.post(PHONE_PATH, params={"access_token": mp}, json={})
    assert resp.json()["errcode"] == 47001
    expiring = fake.issue_phone_code("13900001111", appid=MP_APPID)
    clock.now += 301
    assert (await phone_number(api, mp, expiring))["errcode"] == 40029


async def test_mini_program_subscribe_sends_spend_grants_and_codes_are_images(
    fake: FakeWeChat, api: httpx.AsyncClient
) -> None:
    fake.add_app(MP_APPID, MP_SECRET)
    query = {"access_token": (await stable_token(api, appid=MP_APPID, secret=MP_SECRET))["access_token"]}
    send = "/cgi-bin/message/subscribe/send"
    note = {"touser": "mp-user", "template_id": "T9", "data": {"thing1": {"value": "活动提醒"}}}
    assert (await api.post(send, params=query, json=note)).json()["errcode"] == 43101
    fake.grant_subscribe("mp-user", "T9")
    assert (await api.post(send, params=query, json=note)).json()["errcode"] == 0
    assert (await api.post(send, params=query, json=note)).json()["errcode"] == 43101  # one tap, one send
    code = "/wxa/getwxacodeunlimit"
    image = await api.post(code, params=query, json={"scene": "o=12", "page": "pages/item/item",
                                                       "check_path": False})
    assert image.headers["Content-Type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
    bad_scene = await api.post(code, params=query, json={"scene": "中文", "page": "pages/item/item"})
    assert bad_scene.json()["errcode"] == 40169
    unreleased = await api.post(code, params=query, json={"scene": "o=12", "page": "pages/new/new"})
    assert unreleased.json()["errcode"] == 41030
