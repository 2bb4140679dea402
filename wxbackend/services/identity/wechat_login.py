"""Signing workers in through WeChat: the Official Account's web OAuth (H5 pages), the Mini
Program's code2Session and phone-number code, and the JS-SDK signature.

Web OAuth: ``state`` is random, stored in Redis with a hash of a nonce that only this browser
holds (an HttpOnly cookie), and consumed on first use — a forged, replayed or other-browser
state fails. A code is exchanged at most once (claimed in Redis before WeChat is asked), and
the worker is only ever sent back to one of our own H5 pages. Snapshot-mode visitors
(``is_snapshotuser``) get no account. Mini Program: our own opaque session token is returned;
WeChat's ``session_key`` stays on the server, encrypted, and is never returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import redis.asyncio as aioredis

from wxbackend.infra.pii import PersonalData
from wxbackend.services.clock import Clock, china_now, unix_time
from wxbackend.services.errors import DomainError, Forbidden, InvalidInput, Unavailable
from wxbackend.services.identity.accounts import Account, AccountService, WeChatIdentity
from wxbackend.services.identity.sessions import SessionStore
from wxbackend.wechat.api import WeChatAPI, WeChatAPIError, WeChatUnreachable

SESSION_KEY_COLUMN = "mp_session.session_key"
OAUTH_AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
_NEXT = re.compile(r"^/h5/[A-Za-z0-9_./-]*(\?[A-Za-z0-9_=&%.-]*)?$")
_CODE_ERRORS = {40029, 40163}


def safe_next(next_path: str | None) -> str:
    """Only our own H5 pages: no scheme, no host, no ``//``, no ``..`` (no open redirect)."""
    if next_path and _NEXT.match(next_path) and "//" not in next_path and ".." not in next_path:
        return next_path
    return "/h5/"


@contextlib.contextmanager
def _wechat_errors(known: dict[int, DomainError]) -> Iterator[None]:
    """WeChat's answer, in the worker's terms: the errcodes we expect as the given errors,
    anything else (and no answer at all) as "try again later"."""
    try:
        yield
    except WeChatAPIError as exc:
        raise known.get(exc.errcode) or _unavailable() from exc
    except WeChatUnreachable as exc:
        raise _unavailable() from exc


def _unavailable() -> Unavailable:
    return Unavailable("微信服务暂时不可用，请稍后再试", code="wechat_unavailable")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class OAuthStart:
    browser_nonce: str      # goes into the HttpOnly cookie
    redirect_url: str       # WeChat's authorize page


@dataclass(frozen=True)
class SignedIn:
    token: str
    account: Account
    next_path: str = "/h5/"
    expires_in: int = 0


class WeChatLogin:
    def __init__(self, *, oa: WeChatAPI, mp: WeChatAPI | None, accounts: AccountService,
                 redis: aioredis.Redis, h5_sessions: SessionStore, mp_sessions: SessionStore,
                 pii: PersonalData, public_url: str, state_ttl: int,
                 authorize_url: str = OAUTH_AUTHORIZE, now: Clock = china_now) -> None:
        self._oa = oa
        self._now = now
        self._mp = mp
        self._accounts = accounts
        self._redis = redis
        self.h5_sessions = h5_sessions
        self.mp_sessions = mp_sessions
        self._pii = pii
        self._public = public_url.rstrip("/")
        self._state_ttl = state_ttl
        self._authorize = authorize_url

    # --- Official Account web OAuth ------------------------------------------------------------
    async def begin_oauth(self, next_path: str | None, scope: str = "snsapi_base") -> OAuthStart:
        if scope not in ("snsapi_base", "snsapi_userinfo"):
            raise InvalidInput("不支持的授权方式", code="oauth_scope_invalid")
        state = secrets.token_hex(16)  # WeChat: ≤128 bytes of [a-zA-Z0-9]
        nonce = secrets.token_urlsafe(24)
        await self._redis.set(f"oauth:state:{state}", json.dumps(
            {"nonce": _digest(nonce), "next": safe_next(next_path), "scope": scope}),
            ex=self._state_ttl)
        query = urlencode({"appid": self._oa.appid,
                           "redirect_uri": f"{self._public}/wechat/oauth/callback",
                           "response_type": "code", "scope": scope, "state": state})
        return OAuthStart(nonce, f"{self._authorize}?{query}#wechat_redirect")

    async def finish_oauth(self, *, code: str | None, state: str | None,
                           browser_nonce: str | None) -> SignedIn:
        if not code or not state or len(state) > 128 or len(code) > 256:
            raise InvalidInput("授权参数不完整，请重新进入", code="oauth_params_missing")
        raw = await self._redis.getdel(f"oauth:state:{state}")
        if raw is None:
            raise InvalidInput("登录已过期或已使用，请重新进入", code="oauth_state_invalid")
        saved = json.loads(raw)
        if not browser_nonce or not hmac.compare_digest(saved["nonce"], _digest(browser_nonce)):
            raise Forbidden("登录请求与当前浏览器不匹配，请重新进入", code="oauth_state_mismatch")
        if not await self._redis.set(f"oauth:code:{_digest(code)}", 1, nx=True, ex=600):
            raise InvalidInput("授权码已使用，请重新进入", code="oauth_code_used")
        invalid = InvalidInput("授权码无效或已过期，请重新进入", code="oauth_code_invalid")
        with _wechat_errors(dict.fromkeys(_CODE_ERRORS, invalid)):
            grant = await self._oa.oauth_exchange(code)
            profile = {}
            if saved["scope"] == "snsapi_userinfo" and not grant.get("is_snapshotuser"):
                profile = await self._oa.oauth_userinfo(grant["access_token"], grant["openid"])
        if grant.get("is_snapshotuser") == 1:
            raise Forbidden("请在微信中打开页面并同意授权后使用", code="oauth_snapshot_user")
        account = await self._accounts.sign_in_wechat(
            WeChatIdentity("oa_openid", self._oa.appid, grant["openid"],
                           grant.get("unionid") or profile.get("unionid")),
            nickname=profile.get("nickname") or None, avatar_url=profile.get("headimgurl") or None)
        token = await self.h5_sessions.create(account.id, {"openid": grant["openid"],
                                                          "csrf": secrets.token_urlsafe(24)})
        return SignedIn(token, account, saved["next"], self.h5_sessions.ttl)

    async def h5_sign_in_by_phone(self, phone: str) -> SignedIn:
        """A worker outside WeChat (a city channel's website) proved a phone by SMS: the
        account that holds it, or a new one."""
        account = await self._accounts.account_for_phone(phone)
        token = await self.h5_sessions.create(account.id, {"csrf": secrets.token_urlsafe(24)})
        return SignedIn(token, account, "/h5/", self.h5_sessions.ttl)

    async def jssdk_config(self, url: str) -> dict:
        """``wx.config`` values for one of our pages (the URL without its #fragment)."""
        page = (url or "").split("#", 1)[0]
        ours, theirs = urlsplit(self._public), urlsplit(page)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            raise InvalidInput("只能为本站页面签名", code="jssdk_url_invalid")
        with _wechat_errors({}):
            ticket = await self._oa.tickets.get()
        nonce, timestamp = secrets.token_hex(8), str(unix_time(self._now))
        plain = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={page}"
        return {"appId": self._oa.appid, "timestamp": timestamp, "nonceStr": nonce,
                "signature": hashlib.sha1(plain.encode()).hexdigest()}  # noqa: S324 - WeChat's scheme

    # --- Mini Program --------------------------------------------------------------------------
    def _mini_program(self) -> WeChatAPI:
        if self._mp is None:
            raise Unavailable("小程序尚未配置", code="miniprogram_not_configured")
        return self._mp

    async def mp_session(self, js_code: str) -> SignedIn:
        mp = self._mini_program()
        if not js_code or len(js_code) > 256:
            raise InvalidInput("缺少登录凭证 code", code="code_missing")
        with _wechat_errors({
                40029: InvalidInput("登录凭证无效或已使用，请重新登录", code="code_invalid"),
                40226: Forbidden("当前微信账号存在风险，暂时无法登录", code="wechat_risky_user")}):
            grant = await mp.code_to_session(js_code)
        account = await self._accounts.sign_in_wechat(
            WeChatIdentity("mp_openid", mp.appid, grant["openid"], grant.get("unionid")))
        sealed = self._pii.encrypt(grant["session_key"], SESSION_KEY_COLUMN).hex()
        token = await self.mp_sessions.create(account.id, {"openid": grant["openid"],
                                                          "session_key": sealed})
        return SignedIn(token, account, expires_in=self.mp_sessions.ttl)

    async def mp_phone(self, account_id: int, phone_code: str) -> Account:
        mp = self._mini_program()
        if not phone_code or len(phone_code) > 256:
            raise InvalidInput("缺少手机号授权 code", code="code_missing")
        with _wechat_errors({40029: InvalidInput("手机号授权已失效，请重新授权", code="code_invalid")}):
            info = await mp.get_phone_number(phone_code)
        if str(info.get("countryCode")) != "86" or info.get("watermark", {}).get("appid") != mp.appid:
            raise InvalidInput("仅支持中国大陆手机号", code="invalid_phone")
        return await self._accounts.verify_phone(account_id, info["purePhoneNumber"], "miniprogram")
