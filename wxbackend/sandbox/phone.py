"""The trainee's phone: what a worker does in WeChat, sent the way WeChat sends it. A chat message,
a menu tap, following or unfollowing, scanning a union's QR code: each becomes the signed and
encrypted push WeChat's servers would POST to ``/wechat/oa``, and the passive reply is opened as
WeChat opens it. What the product sends the worker later (template, subscribe and customer-service
messages, SMS codes) is read from the simulated WeChat and SMS, where it arrived over real HTTP."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import httpx
from defusedxml import ElementTree

from wxbackend.sandbox.people import mp_openid_of, unionid_of
from wxbackend.sandbox.simulated import FakePusher, FakeTencentSms, FakeWeChat
from wxbackend.services.errors import InvalidInput

ACTIONS = ("text", "click", "follow", "unfollow", "scan")
_SCENE_PREFIX = "qrscene_"
# The product's sends a worker sees in the chat, by WeChat API path.
_SENDS = {"/cgi-bin/message/template/send": "模板消息", "/cgi-bin/message/custom/send": "客服消息",
          "/cgi-bin/message/subscribe/send": "订阅消息", "/cgi-bin/message/subscribe/bizsend": "订阅消息"}
TIMEOUT = 10.0


class Phone:
    def __init__(self, http: httpx.AsyncClient, server_url: str, pusher: FakePusher, wechat: FakeWeChat,
                 sms: FakeTencentSms, *, mp_appid: str) -> None:
        self._http = http
        self._url = server_url.rstrip("/") + "/wechat/oa"
        self._pusher = pusher
        self._wechat = wechat
        self._sms = sms
        self._mp_appid = mp_appid

    def knows(self, openid: str) -> bool:
        """Whether the simulated WeChat has this user (signing in needs one)."""
        return self._wechat.has_oauth_user(openid)

    def authorize(self, query: dict[str, str], openid: str) -> str:
        """Where WeChat's sign-in page sends ``openid`` for the product's sign-in ``query``."""
        try:
            return self._wechat.authorize(query, openid)
        except ValueError as problem:
            raise InvalidInput(f"微信授权失败：{problem}", code="oauth_refused") from None

    def new_user(self) -> str:
        """A WeChat user who has never met the union: a fresh openid, known to WeChat's sign-in."""
        openid = "o-sandbox-" + secrets.token_hex(8)
        self._wechat.oauth_user(openid, unionid=unionid_of(openid))
        return openid

    async def push(self, openid: str, action: str, value: str = "") -> dict | None:
        """Push one of the user's actions; the passive reply as the phone shows it (None: none)."""
        if not isinstance(openid, str) or not openid.startswith("o") or len(openid) > 64:
            raise InvalidInput("请选择一位职工", code="invalid_input")
        if action not in ACTIONS or not isinstance(value, str) or len(value) > 600:
            raise InvalidInput("不支持的操作", code="invalid_input")
        if action == "text":
            if not value.strip():
                raise InvalidInput("请输入消息内容", code="invalid_input")
            xml = self._pusher.text(openid, value)
        elif action == "click":
            xml = self._pusher.event(openid, "CLICK", EventKey=value)
        elif action == "follow":
            xml = self._pusher.event(openid, "subscribe", EventKey=_SCENE_PREFIX + value if value else "")
        elif action == "unfollow":
            xml = self._pusher.event(openid, "unsubscribe", EventKey="")
        else:
            # Scanning a union's parametric QR code: a follower gets SCAN, anyone else follows.
            xml = self._pusher.event(openid, "SCAN", EventKey=value, Ticket="sandbox-" + value)
        params, body = self._pusher.request(xml)
        response = await self._http.post(self._url, params=params, content=body, timeout=TIMEOUT,
                                         headers={"Content-Type": "text/xml"})
        if response.status_code != 200:
            raise InvalidInput(f"公众号服务返回 {response.status_code}", code="oa_refused")
        return _reply(self._pusher.open_reply(response.content))

    def messages(self, openid: str, phone: str = "") -> list[dict]:
        """What reached the user's phone from the product: WeChat messages to ``openid`` and SMS to
        ``phone``, oldest first."""
        out = []
        for call in self._wechat.calls:
            kind = _SENDS.get(call.path)
            body = call.body or {}
            if kind and body.get("touser") == openid:
                out.append({"at": _wall(call.at), "kind": kind, "text": _summary(body)})
        if phone:
            for sent, at in zip(self._sms.sent, self._sms.sent_at, strict=True):
                if (sent["phone"] or "").endswith(phone):
                    out.append({"at": _wall(at), "kind": "短信",
                                "text": f"【{sent['sign_name']}】验证码 " + "，".join(sent["params"])})
        return sorted(out, key=lambda m: m["at"])

    def menu(self) -> dict:
        """The Official Account's menu as WeChat holds it (pushed there as ``wxbackend wechat
        menu push`` pushes it): what the phone shows under the chat."""
        return {"button": (self._wechat.menu or {}).get("button", [])}

    def mp_code(self, openid: str) -> str:
        """What ``wx.login`` gives the Mini Program of this user: WeChat gives each app its own
        openid for a person, and the unionid joins them (the product links the two by it)."""
        if not isinstance(openid, str) or not openid.startswith("o"):
            raise InvalidInput("请选择一位职工", code="invalid_input")
        mp_openid = mp_openid_of(openid)
        if not self._wechat.has_mp_user(mp_openid):
            self._wechat.mp_user(mp_openid, unionid=unionid_of(openid))
        return self._wechat.issue_js_code(mp_openid, self._mp_appid)

    def phone_code(self, phone: str) -> str:
        """What the phone-number button gives the Mini Program."""
        if not (len(phone) == 11 and phone.isdigit()):
            raise InvalidInput("手机号应为 11 位数字", code="invalid_input")
        return self._wechat.issue_phone_code(phone, self._mp_appid)


def _reply(xml: str) -> dict | None:
    if xml in ("", "success"):
        return None
    root = ElementTree.fromstring(xml)
    kind = root.findtext("MsgType") or ""
    if kind == "news":
        return {"type": "news", "articles": [
            {"title": item.findtext("Title") or "", "description": item.findtext("Description") or "",
             "url": item.findtext("Url") or ""} for item in root.iter("item")]}
    return {"type": kind, "content": root.findtext("Content") or ""}


def _summary(body: dict) -> str:
    if "text" in body:
        return str(body["text"].get("content", ""))
    if isinstance(body.get("data"), dict):
        return "；".join(str(v.get("value", "")) if isinstance(v, dict) else str(v)
                        for v in body["data"].values())
    return str(body.get("msgtype", ""))


def _wall(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat() if at > 1e9 else ""
