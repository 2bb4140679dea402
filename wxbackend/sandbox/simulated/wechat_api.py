"""A fake https://api.weixin.qq.com served over real HTTP on 127.0.0.1.

The client code under test talks to it with its real HTTP stack, so timeouts, retries, JSON
decoding and token refresh are exercised end to end. Every answer is built from a JSON fixture
holding a real WeChat response (``fixtures/``; errors in ``fixtures/errors/<errcode>.json``), and,
as on the real platform, every answer is HTTP 200: failures are told apart only by ``errcode``.

Besides the Official Account given to the constructor, further apps (the Mini Program) can be added
with :meth:`FakeWeChat.add_app`; each app has its own tokens, and every token-checked call is
recorded with the app its token belongs to. The fake also plays the user's side of the flows that
start in the WeChat client: web OAuth (网页授权, including open.weixin.qq.com's authorize page),
``wx.login`` codes and phone-number codes, which tests mint with the ``issue_*`` methods.

The Official Account's article publishing is faked too: images for article bodies
(``media/uploadimg``) and permanent images (``material/add_material``), both multipart uploads;
the draft box (``draft/add``); publishing, which ends a little later (``freepublish/submit`` and
``/get``, :meth:`FakeWeChat.fail_publish`, :meth:`FakeWeChat.finish_publishing`,
:meth:`FakeWeChat.publish_job_finish_event`); and the mass send to all followers, four a month.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import io
import itertools
import json
import math
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import tornado.httputil
import tornado.web

from ._server import FakeServer

__all__ = ["FIXTURES", "FakeCall", "FakeWeChat", "error_fixture", "fixture"]

FIXTURES = Path(__file__).parent / "fixtures"

# A classic token stays usable this long after its successor is issued.
CLASSIC_OVERLAP = 300.0
# The template-message client_msg_id dedup window.
CLIENT_MSG_ID_WINDOW = 600.0
# OAuth codes, wx.login codes and phone-number codes are single use and live five minutes.
CODE_TTL = 300.0
# Lifetime of a user-level OAuth access_token and of a jsapi_ticket.
SNS_TOKEN_TTL = 7200
TICKET_TTL = 7200

OFFICIAL = "official"
MINIPROGRAM = "miniprogram"
_APP_KINDS = frozenset({OFFICIAL, MINIPROGRAM})
SNSAPI_BASE = "snsapi_base"
SNSAPI_USERINFO = "snsapi_userinfo"
_SCOPES = frozenset({SNSAPI_BASE, SNSAPI_USERINFO})
AUTHORIZE_PATH = "/connect/oauth2/authorize"

# Article publishing: WeChat's documented limits (lengths in characters unless named _BYTES).
ARTICLE_IMAGE_MAX_BYTES = 1 << 20           # uploadimg: under 1 MB, JPEG/PNG
MATERIAL_IMAGE_MAX_BYTES = 10 << 20         # add_material?type=image: up to 10 MB
MATERIAL_THUMB_MAX_BYTES = 64 << 10         # add_material?type=thumb: up to 64 KB, JPEG
TITLE_MAX, AUTHOR_MAX, DIGEST_MAX = 32, 16, 128
CONTENT_MAX_CHARS, CONTENT_MAX_BYTES = 20_000, 1 << 20  # content must stay under both
MASS_SENDS_PER_MONTH = 4                    # a service account's sends to its followers
CLIENTMSGID_WINDOW = 86400.0                # mass-send clientmsgid dedup window
PUBLISH_RUNNING, PUBLISH_SUCCESS = 1, 0
PUBLISH_FAILURES = frozenset({2, 3, 4, 5, 6})
_UPLOAD_PATHS = frozenset({"/cgi-bin/media/uploadimg", "/cgi-bin/material/add_material"})
_CHINA = timezone(timedelta(hours=8))

_KEY_TYPES = frozenset(
    {
        "click",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
    }
)
_BUTTON_TYPES = _KEY_TYPES | {
    "view",
    "miniprogram",
    "media_id",
    "view_limited",
    "article_id",
    "article_view_limited",
}
# Fields a custom/send payload cannot do without, per msgtype.
_CUSTOM_PAYLOAD = {
    "text": ("content",),
    "image": ("media_id",),
    "voice": ("media_id",),
    "video": ("media_id",),
    "music": ("musicurl", "hqmusicurl", "thumb_media_id"),
    "news": ("articles",),
    "mpnews": ("media_id",),
    "mpnewsarticle": ("article_id",),
    "msgmenu": ("list",),
    "wxcard": ("card_id",),
    "miniprogrampage": ("title", "appid", "pagepath", "thumb_media_id"),
}


@functools.cache
def _load(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture, so answers can be filled in without touching the cache."""
    return copy.deepcopy(json.loads(_load(name)))


def error_fixture(errcode: int) -> dict[str, Any]:
    """WeChat's exact error body for ``errcode``; a missing file fails loudly."""
    return fixture(f"errors/{errcode}.json")




class _Reject(Exception):
    """Ends request handling with WeChat's error body for ``errcode`` (plus ``extra`` fields,
    as some errors carry them)."""

    def __init__(self, errcode: int, **extra: Any) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.extra = extra


@dataclass
class FakeCall:
    """One request as it arrived (failed ones too); ``at`` is on the fake's clock.

    ``appid`` is the app the request acted for, once the fake could tell: the owner of a valid
    access_token, or the app whose appid/secret a credential endpoint was given. It stays None
    when the request failed before that point. ``raw`` is the body's bytes as sent; ``files``
    the files of a multipart/form-data body (field name to tornado ``HTTPFile`` list).
    """

    method: str
    path: str
    query: dict[str, str]
    body: dict | None
    at: float
    appid: str | None = None
    raw: bytes = b""
    files: dict[str, list[tornado.httputil.HTTPFile]] = field(default_factory=dict)


_Endpoint = Callable[[FakeCall], dict]


@dataclass
class _Token:
    value: str
    kind: str  # "classic" or "stable": separate namespaces that never affect each other
    expires_at: float
    superseded_at: float = math.inf  # from then on it answers 40001 ("not latest")
    revoked: bool = False
    expired: bool = False
    appid: str = ""


@dataclass
class _App:
    appid: str
    secret: str
    kind: str  # OFFICIAL or MINIPROGRAM
    classic: list[_Token] = field(default_factory=list)
    stable: _Token | None = None
    ticket: str | None = None
    ticket_expires_at: float = 0.0


@dataclass
class _OAuthUser:
    openid: str
    unionid: str | None
    nickname: str
    headimgurl: str
    snapshot: bool


@dataclass
class _MpUser:
    openid: str
    unionid: str | None
    session_key: str


@dataclass
class _Code:
    appid: str
    subject: str  # the openid (OAuth, wx.login) or the phone number it stands for
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class _PublishJob:
    publish_id: str
    media_id: str
    articles: list[dict]
    msg_data_id: int
    outcome: int                   # the publish_status it ends with
    fail_idx: list[int]
    status: int = PUBLISH_RUNNING
    polls: int = 0
    article_id: str = ""
    urls: list[str] = field(default_factory=list)


@dataclass
class _UserToken:
    value: str
    appid: str
    openid: str
    scope: str
    expires_at: float
    revoked: bool = False
    expired: bool = False


class FakeWeChat(FakeServer):
    """In-process stand-in for the WeChat server API with WeChat's token and error semantics.

    ``clock`` (seconds, monotonic) drives token, ticket and code lifetimes and ``FakeCall.at``;
    tests replace it to move past ``token_ttl`` or a code's five minutes without sleeping.
    """

    def __init__(
        self,
        appid: str = "wx0123456789abcdef",
        secret: str = "fake-secret",  # noqa: S107 - the fake's own credential, not a real one
        *,
        token_ttl: int = 7200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.appid = appid
        self.secret = secret
        self.token_ttl = token_ttl
        self.clock = clock
        self.calls: list[FakeCall] = []
        self.menu: dict | None = None
        self._apps: dict[str, _App] = {appid: _App(appid, secret, OFFICIAL)}
        self._delivered: dict[str, list[dict]] = {}
        self._failures: dict[str, list[int]] = {}
        self._delays: dict[str, float] = {}
        self._tokens: dict[str, _Token] = {}
        self._user_tokens: dict[str, _UserToken] = {}
        self._oauth_users: dict[str, _OAuthUser] = {}
        self._mp_users: dict[str, _MpUser] = {}
        self._oauth_codes: dict[str, _Code] = {}
        self._js_codes: dict[str, _Code] = {}
        self._phone_codes: dict[str, _Code] = {}
        self._serial = itertools.count(1)
        self._msgids = itertools.count(int(fixture("template_send.json")["msgid"]))
        self._client_msg_ids: dict[tuple[str, str], tuple[int, float]] = {}
        self._grants: dict[tuple[str, str], int] = {}  # (openid, template_id) -> sends granted
        self.wxacode_pages: set[str] = set()            # pages "released" (check_path=true)
        # Article publishing: what was uploaded, the draft box, what got published.
        self.article_images: dict[str, bytes] = {}      # uploadimg URL -> image bytes
        self.materials: dict[str, bytes] = {}           # permanent media_id -> image bytes
        self.drafts: dict[str, list[dict]] = {}         # the draft box: media_id -> articles
        self.published: dict[str, list[dict]] = {}      # article_id -> articles
        self._material_urls: set[str] = set()
        self._publish_jobs: dict[str, _PublishJob] = {}
        self._publish_outcomes: list[tuple[int, list[int]]] = []
        self._publish_ids = itertools.count(2247483647)
        self._msg_data_ids = itertools.count(int(fixture("freepublish_submit.json")["msg_data_id"]))
        self._mass_msg_ids = itertools.count(int(fixture("mass_sendall.json")["msg_id"]))
        self._mass_sends: dict[tuple[int, int], int] = {}  # (year, month) in China -> sends
        self._mass_client_msg_ids: dict[str, tuple[int, float]] = {}
        # The wall time the clock's readings stand for (the mass-send quota is per month).
        self._wall_offset = time.time() - clock()
        self._routes: dict[str, tuple[str, bool, _Endpoint]] = {
            "/cgi-bin/token": ("GET", False, self._token),
            "/cgi-bin/stable_token": ("POST", False, self._stable_token),
            "/cgi-bin/ticket/getticket": ("GET", True, self._getticket),
            "/cgi-bin/menu/create": ("POST", True, self._menu_create),
            "/cgi-bin/menu/get": ("GET", True, self._menu_get),
            "/cgi-bin/menu/delete": ("GET", True, self._menu_delete),
            "/cgi-bin/message/custom/send": ("POST", True, self._custom_send),
            "/cgi-bin/message/template/send": ("POST", True, self._template_send),
            "/cgi-bin/message/subscribe/bizsend": ("POST", True, self._subscribe_send),
            "/cgi-bin/message/subscribe/send": ("POST", True, self._mp_subscribe_send),
            "/wxa/getwxacodeunlimit": ("POST", True, self._wxacode_unlimited),
            "/sns/oauth2/access_token": ("GET", False, self._sns_access_token),
            "/sns/userinfo": ("GET", False, self._sns_userinfo),
            "/sns/jscode2session": ("GET", False, self._jscode2session),
            "/wxa/business/getuserphonenumber": ("POST", True, self._phone_number),
            "/cgi-bin/media/uploadimg": ("POST", True, self._uploadimg),
            "/cgi-bin/material/add_material": ("POST", True, self._add_material),
            "/cgi-bin/draft/add": ("POST", True, self._draft_add),
            "/cgi-bin/freepublish/submit": ("POST", True, self._freepublish_submit),
            "/cgi-bin/freepublish/get": ("POST", True, self._freepublish_get),
            "/cgi-bin/message/mass/sendall": ("POST", True, self._mass_sendall),
        }

    # -- apps and users -------------------------------------------------------------------------

    def add_app(self, appid: str, secret: str, kind: str = MINIPROGRAM) -> None:
        """Register another app (usually the Mini Program) with its own tokens and tickets.

        Only ``kind="miniprogram"`` apps may call Mini-Program-only APIs such as
        ``getuserphonenumber``; an Official Account token gets 48001 there, as on the platform.
        """
        if kind not in _APP_KINDS:
            raise ValueError(f"kind must be one of {sorted(_APP_KINDS)}, not {kind!r}")
        if appid in self._apps:
            raise ValueError(f"app {appid} is already registered")
        self._apps[appid] = _App(appid, secret, kind)

    def oauth_user(
        self,
        openid: str,
        *,
        unionid: str | None = None,
        nickname: str = "",
        headimgurl: str = "",
        snapshot: bool = False,
    ) -> None:
        """Register (or replace) a WeChat user of the Official Account for web OAuth.

        ``snapshot=True`` makes a virtual user of the "snapshot page" mode, whose token answers
        carry ``is_snapshotuser: 1`` and who must never become a member.
        """
        self._oauth_users[openid] = _OAuthUser(openid, unionid, nickname, headimgurl, snapshot)

    def has_oauth_user(self, openid: str) -> bool:
        return openid in self._oauth_users

    def issue_oauth_code(self, openid: str, scope: str = SNSAPI_BASE) -> str:
        """The code open.weixin.qq.com would hand to ``redirect_uri``, without the HTTP round trip."""
        if scope not in _SCOPES:
            raise ValueError(f"scope must be one of {sorted(_SCOPES)}, not {scope!r}")
        if openid not in self._oauth_users:
            raise LookupError(f"no OAuth user {openid!r}: register it with oauth_user() first")
        return self._new_code(self._oauth_codes, self.appid, openid, scope)

    def mp_user(
        self, openid: str, *, unionid: str | None = None, session_key: str | None = None
    ) -> None:
        """Register (or replace) a Mini Program user; ``session_key`` defaults to a fresh one."""
        self._mp_users[openid] = _MpUser(openid, unionid, session_key or _new_session_key())

    def has_mp_user(self, openid: str) -> bool:
        return openid in self._mp_users

    def session_key(self, openid: str) -> str:
        """The user's current session_key, so tests can build encryptedData or rawData signatures."""
        return self._mp_user(openid).session_key

    def rotate_session_key(self, openid: str) -> str:
        """Give the user a new session_key, as a later ``wx.login`` may do; returns it."""
        user = self._mp_user(openid)
        user.session_key = _new_session_key()
        return user.session_key

    def issue_js_code(self, openid: str, appid: str | None = None) -> str:
        """A single-use ``wx.login`` code of ``openid`` for the Mini Program ``appid``."""
        self._mp_user(openid)
        return self._new_code(self._js_codes, self._miniprogram(appid).appid, openid, "")

    def issue_phone_code(self, phone: str, appid: str | None = None) -> str:
        """A single-use code from a ``getPhoneNumber`` button press that stands for ``phone``."""
        return self._new_code(self._phone_codes, self._miniprogram(appid).appid, phone, "")

    @property
    def jsapi_ticket(self) -> str | None:
        """The Official Account's current jsapi_ticket (None before the first getticket)."""
        return self._apps[self.appid].ticket

    def _mp_user(self, openid: str) -> _MpUser:
        user = self._mp_users.get(openid)
        if user is None:
            raise LookupError(f"no Mini Program user {openid!r}: register it with mp_user() first")
        return user

    def _miniprogram(self, appid: str | None) -> _App:
        if appid is None:
            for app in self._apps.values():
                if app.kind == MINIPROGRAM:
                    return app
            raise LookupError("no Mini Program registered: call add_app() first")
        app = self._apps.get(appid)
        if app is None or app.kind != MINIPROGRAM:
            raise ValueError(f"{appid} is not a Mini Program registered with add_app()")
        return app

    def _new_code(self, codes: dict[str, _Code], appid: str, subject: str, scope: str) -> str:
        # Shaped like real codes: 32 characters that need no URL encoding.
        value = secrets.token_urlsafe(24)
        codes[value] = _Code(appid, subject, scope, self.clock() + CODE_TTL)
        return value

    # -- inspection and fault injection ---------------------------------------------------------

    def count(self, path: str) -> int:
        """How many requests reached ``path``, failed ones included."""
        return sum(1 for call in self.calls if call.path == path)

    def bodies(self, path: str) -> list[dict]:
        """JSON bodies sent to ``path`` in arrival order (requests without one are skipped)."""
        return [call.body for call in self.calls if call.path == path and call.body is not None]

    def raw_bodies(self, path: str) -> list[bytes]:
        """Request bodies sent to ``path`` as bytes, in arrival order (empty ones included)."""
        return [call.raw for call in self.calls if call.path == path]

    def delivered(self, path: str) -> list[dict]:
        """Message bodies ``path`` accepted: what users would actually receive."""
        return list(self._delivered.get(path, []))

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """Answer the next ``times`` calls to ``path`` with the fixture for ``errcode``."""
        error_fixture(errcode)  # a typo in errcode should fail here, not inside the server
        self._failures.setdefault(path, []).extend([errcode] * times)

    def set_delay(self, path: str, seconds: float) -> None:
        """Hold every answer on ``path`` for ``seconds``, to drive client timeouts (0 clears)."""
        if seconds > 0:
            self._delays[path] = seconds
        else:
            self._delays.pop(path, None)

    def invalidate_tokens(self) -> None:
        """Every token issued so far (user OAuth tokens too) now answers 40001."""
        for token in [*self._tokens.values(), *self._user_tokens.values()]:
            token.revoked = True

    def expire_tokens(self) -> None:
        """Every token issued so far (user OAuth tokens too) now answers 42001, without waiting."""
        for token in [*self._tokens.values(), *self._user_tokens.values()]:
            token.expired = True

    def reset(self) -> None:
        """Forget recorded calls, deliveries, injected failures (publish outcomes too) and delays;
        tokens, menu, uploads, drafts and publishes stay."""
        self.calls.clear()
        self._delivered.clear()
        self._failures.clear()
        self._delays.clear()
        self._publish_outcomes.clear()

    # -- request handling -----------------------------------------------------------------------

    async def _serve(self, handler: tornado.web.RequestHandler) -> None:
        request = handler.request
        path = request.path
        query = {k: v[0].decode("utf-8", "replace") for k, v in request.query_arguments.items()}
        body: dict | None = None
        body_is_json_object = False
        files: dict[str, list[tornado.httputil.HTTPFile]] = {}
        content_type = request.headers.get("Content-Type", "")
        if request.body and content_type.startswith("multipart/form-data"):
            tornado.httputil.parse_body_arguments(content_type, request.body, {}, files)
        elif request.body:
            try:
                parsed = json.loads(request.body)
            except (UnicodeDecodeError, ValueError):
                parsed = None
            if isinstance(parsed, dict):
                body, body_is_json_object = parsed, True
        call = FakeCall(request.method or "", path, query, body, self.clock(),
                        raw=request.body or b"", files=files)
        self.calls.append(call)

        if path == AUTHORIZE_PATH:
            # A page of open.weixin.qq.com, not an API: it redirects or shows an error page.
            self._authorize_page(handler, call)
            return

        queued = self._failures.get(path)
        injected = queued.pop(0) if queued else None
        await self._hold(self._delays.get(path, 0.0))

        if injected is not None:
            answer = error_fixture(injected)
        else:
            try:
                answer = self._route(call, body_is_json_object)
            except _Reject as reject:
                answer = {**error_fixture(reject.errcode), **reject.extra}
        if isinstance(answer, bytes):  # an image API's success is the image itself
            handler.set_header("Content-Type", "image/jpeg")
            handler.finish(answer)
            return
        handler.set_header("Content-Type", "application/json; encoding=utf-8")
        # Not awaited: if the client already gave up, the write fails quietly, as it should.
        handler.finish(json.dumps(answer, ensure_ascii=False, separators=(",", ":")))

    def _route(self, call: FakeCall, body_is_json_object: bool) -> dict:
        route = self._routes.get(call.path)
        if route is None:
            raise _Reject(40066)
        expected_method, needs_token, answer = route
        if needs_token:
            call.appid = self._check_token(call.query.get("access_token")).appid
        if call.method != expected_method:
            raise _Reject(43001 if expected_method == "GET" else 43002)
        if call.method == "POST" and not body_is_json_object and call.path not in _UPLOAD_PATHS:
            raise _Reject(47001)
        return answer(call)

    def _check_token(self, value: str | None) -> _Token:
        if not value:
            raise _Reject(41001)
        token = self._tokens.get(value)
        now = self.clock()
        if token is None or token.revoked:
            raise _Reject(40001)
        if token.expired or now >= token.expires_at:
            raise _Reject(42001)
        if now >= token.superseded_at:
            raise _Reject(40001)
        return token

    def _usable(self, token: _Token, now: float) -> bool:
        return (
            not token.revoked
            and not token.expired
            and now < min(token.expires_at, token.superseded_at)
        )

    def _issue(self, kind: str, appid: str, now: float) -> _Token:
        # Shaped like real tokens: a short numeric prefix, then ~130 URL-safe characters.
        value = f"{next(self._serial)}_{secrets.token_urlsafe(96)}"
        token = _Token(value, kind, now + self.token_ttl, appid=appid)
        self._tokens[value] = token
        return token

    def _check_credentials(
        self,
        grant_type: object,
        appid: object,
        secret: object,
        expected_grant: str = "client_credential",
    ) -> _App:
        if grant_type != expected_grant:
            raise _Reject(40002)
        if not appid:
            raise _Reject(41002)
        app = self._apps.get(appid) if isinstance(appid, str) else None
        if app is None:
            raise _Reject(40013)
        if not secret:
            raise _Reject(41004)
        if secret != app.secret:
            raise _Reject(40125)
        return app

    def _consume(self, codes: dict[str, _Code], value: str | None, appid: str, reused: int) -> _Code:
        """Spend a single-use code: ``reused`` when it was spent before, 40029 when unknown/expired."""
        if not value:
            raise _Reject(41008)
        code = codes.get(value)
        if code is None or code.appid != appid:
            raise _Reject(40029)
        if code.used:
            raise _Reject(reused)
        if self.clock() >= code.expires_at:
            raise _Reject(40029)
        code.used = True
        return code

    def _authorize_page(self, handler: tornado.web.RequestHandler, call: FakeCall) -> None:
        query = call.query
        try:
            target = self.authorize(query, query.get("fake_openid", ""))
        except ValueError as problem:
            handler.set_status(400)
            handler.set_header("Content-Type", "text/html; charset=utf-8")
            handler.finish(f"<!DOCTYPE html><html><body><p>{problem}</p></body></html>")
            return
        call.appid = self.appid
        handler.redirect(target)

    def authorize(self, query: dict[str, str], openid: str) -> str:
        """What open.weixin.qq.com's sign-in page does for ``openid``: the ``redirect_uri`` with a
        fresh code and the state; ValueError with what WeChat's error page would say."""
        redirect_uri = query.get("redirect_uri", "")
        scope = query.get("scope", "")
        if query.get("appid") != self.appid:
            raise ValueError("appid 参数错误")
        if not redirect_uri.startswith(("http://", "https://")):
            raise ValueError("redirect_uri 参数错误")
        if query.get("response_type") != "code":
            raise ValueError("response_type 参数错误")
        if scope not in _SCOPES:
            raise ValueError("scope 参数错误或没有 scope 权限")
        if openid not in self._oauth_users:
            raise ValueError(f"no OAuth user {openid!r} (append fake_openid=<openid> to the URL)")
        code = self._new_code(self._oauth_codes, self.appid, openid, scope)
        return _add_query(redirect_uri, code=code, state=query.get("state", ""))

    # -- endpoints ------------------------------------------------------------------------------

    def _token(self, call: FakeCall) -> dict:
        query = call.query
        app = self._check_credentials(query.get("grant_type"), query.get("appid"), query.get("secret"))
        call.appid = app.appid
        now = self.clock()
        # Each fetch leaves only the immediately previous token alive, and that one for 5 minutes.
        for older in app.classic[:-1]:
            older.superseded_at = min(older.superseded_at, now)
        if app.classic:
            previous = app.classic[-1]
            previous.superseded_at = min(previous.superseded_at, now + CLASSIC_OVERLAP)
        token = self._issue("classic", app.appid, now)
        app.classic.append(token)
        answer = fixture("token.json")
        answer.update(access_token=token.value, expires_in=self.token_ttl)
        return answer

    def _stable_token(self, call: FakeCall) -> dict:
        body = call.body
        assert body is not None
        app = self._check_credentials(body.get("grant_type"), body.get("appid"), body.get("secret"))
        call.appid = app.appid
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            raise _Reject(47001)
        now = self.clock()
        # The platform rotates a stable token in its last 5 minutes (1/24 of the 2-hour life), so
        # a normal-mode answer always has some life left.
        rotate_within = min(300.0, self.token_ttl / 24)
        current = app.stable
        if force and current is not None:
            current.superseded_at = min(current.superseded_at, now)
        if (
            force
            or current is None
            or not self._usable(current, now)
            or current.expires_at - now <= rotate_within
        ):
            current = app.stable = self._issue("stable", app.appid, now)
        answer = fixture("stable_token.json")
        answer.update(access_token=current.value, expires_in=round(current.expires_at - now))
        return answer

    def _getticket(self, call: FakeCall) -> dict:
        if call.query.get("type") != "jsapi":
            raise _Reject(40097)
        app = self._apps[call.appid or self.appid]
        now = self.clock()
        # Like the stable token: the same ticket until it runs out, then a new one.
        if app.ticket is None or now >= app.ticket_expires_at:
            app.ticket = secrets.token_urlsafe(64)
            app.ticket_expires_at = now + TICKET_TTL
        answer = fixture("getticket.json")
        answer.update(ticket=app.ticket, expires_in=round(app.ticket_expires_at - now))
        return answer

    def _sns_access_token(self, call: FakeCall) -> dict:
        query = call.query
        app = self._check_credentials(
            query.get("grant_type"), query.get("appid"), query.get("secret"), "authorization_code"
        )
        call.appid = app.appid
        code = self._consume(self._oauth_codes, query.get("code"), app.appid, reused=40163)
        user = self._oauth_users[code.subject]
        token = _UserToken(
            f"{next(self._serial)}_{secrets.token_urlsafe(72)}",
            app.appid,
            user.openid,
            code.scope,
            self.clock() + SNS_TOKEN_TTL,
        )
        self._user_tokens[token.value] = token
        answer = fixture("sns_oauth2_access_token.json")
        answer.update(
            access_token=token.value,
            expires_in=SNS_TOKEN_TTL,
            refresh_token=f"{next(self._serial)}_{secrets.token_urlsafe(72)}",
            openid=user.openid,
            scope=code.scope,
        )
        # Both fields are only present when they apply.
        if not user.snapshot:
            del answer["is_snapshotuser"]
        if user.unionid and code.scope == SNSAPI_USERINFO:
            answer["unionid"] = user.unionid
        else:
            del answer["unionid"]
        return answer

    def _sns_userinfo(self, call: FakeCall) -> dict:
        value = call.query.get("access_token")
        if not value:
            raise _Reject(41001)
        token = self._user_tokens.get(value)
        if token is None or token.revoked:
            raise _Reject(40001)
        call.appid = token.appid
        if token.expired or self.clock() >= token.expires_at:
            raise _Reject(42001)
        if token.scope != SNSAPI_USERINFO:
            raise _Reject(48001)
        if call.query.get("openid") != token.openid:
            raise _Reject(40003)
        user = self._oauth_users[token.openid]
        answer = fixture("sns_userinfo.json")
        answer.update(openid=user.openid, nickname=user.nickname, headimgurl=user.headimgurl)
        if user.unionid:
            answer["unionid"] = user.unionid
        else:
            del answer["unionid"]
        return answer

    def _jscode2session(self, call: FakeCall) -> dict:
        query = call.query
        app = self._check_credentials(
            query.get("grant_type"), query.get("appid"), query.get("secret"), "authorization_code"
        )
        call.appid = app.appid
        code = self._consume(self._js_codes, query.get("js_code"), app.appid, reused=40029)
        user = self._mp_user(code.subject)
        answer = fixture("jscode2session.json")
        answer.update(openid=user.openid, session_key=user.session_key)
        if user.unionid:
            answer["unionid"] = user.unionid
        return answer

    def _phone_number(self, call: FakeCall) -> dict:
        assert call.body is not None and call.appid is not None
        app = self._apps[call.appid]
        if app.kind != MINIPROGRAM:
            raise _Reject(48001)
        value = call.body.get("code")
        if not isinstance(value, str):
            raise _Reject(47001)
        code = self._consume(self._phone_codes, value, app.appid, reused=40029)
        answer = fixture("getuserphonenumber.json")
        info = answer["phone_info"]
        info.update(phoneNumber=code.subject, purePhoneNumber=code.subject, countryCode="86")
        info["watermark"] = {"timestamp": int(time.time()), "appid": app.appid}
        return answer

    def _menu_create(self, call: FakeCall) -> dict:
        body = call.body
        assert body is not None
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise _Reject(40016)
        for button in buttons:
            if not isinstance(button, dict):
                raise _Reject(47001)
            _check_size(button.get("name"), 16, 40018)
            subs = button.get("sub_button")
            if not subs:
                _check_action(button, type_error=40017, key_error=40019, url_error=40020)
                continue
            if not isinstance(subs, list):
                raise _Reject(47001)
            if len(subs) > 5:
                raise _Reject(40023)
            for sub in subs:
                if not isinstance(sub, dict):
                    raise _Reject(47001)
                if sub.get("sub_button"):
                    raise _Reject(40022)
                _check_size(sub.get("name"), 60, 40025)
                _check_action(sub, type_error=40024, key_error=40026, url_error=40027)
        self.menu = copy.deepcopy(body)
        return fixture("ok.json")

    def _menu_get(self, call: FakeCall) -> dict:
        if self.menu is None:
            raise _Reject(46003)
        answer = fixture("menu_get.json")
        answer["menu"]["button"] = [_echo_button(b) for b in self.menu["button"]]
        return answer

    def _menu_delete(self, call: FakeCall) -> dict:
        self.menu = None
        return fixture("ok.json")

    def _custom_send(self, call: FakeCall) -> dict:
        body = call.body
        assert body is not None
        _check_touser(body)
        msgtype = body.get("msgtype")
        required = _CUSTOM_PAYLOAD.get(msgtype) if isinstance(msgtype, str) else None
        payload = body.get(msgtype) if isinstance(msgtype, str) else None
        if required is None or not isinstance(payload, dict):
            raise _Reject(47001)
        if any(not payload.get(name) for name in required):
            raise _Reject(47001)
        self._deliver(call.path, body)
        return fixture("ok.json")

    def _template_send(self, call: FakeCall) -> dict:
        body = call.body
        assert body is not None
        _check_template_message(body)
        now = self.clock()
        client_msg_id = body.get("client_msg_id")
        if client_msg_id is not None and not isinstance(client_msg_id, str):
            raise _Reject(47001)
        key = (body["touser"], client_msg_id) if client_msg_id else None
        answer = fixture("template_send.json")
        if key is not None:
            # Same openid + client_msg_id within the window: the same msgid, no second message.
            seen = self._client_msg_ids.get(key)
            if seen is not None and now - seen[1] < CLIENT_MSG_ID_WINDOW:
                answer["msgid"] = seen[0]
                return answer
        answer["msgid"] = next(self._msgids)
        if key is not None:
            self._client_msg_ids[key] = (answer["msgid"], now)
        self._deliver(call.path, body)
        return answer

    def _subscribe_send(self, call: FakeCall) -> dict:
        body = call.body
        assert body is not None
        _check_template_message(body)
        self._deliver(call.path, body)
        return fixture("ok.json")

    def grant_subscribe(self, openid: str, template_id: str, sends: int = 1) -> None:
        """The user tapped "allow" for a one-time template ``sends`` times (wx.requestSubscribeMessage)."""
        key = (openid, template_id)
        self._grants[key] = self._grants.get(key, 0) + sends

    def _mp_subscribe_send(self, call: FakeCall) -> dict:
        body = call.body
        assert body is not None and call.appid is not None
        if self._apps[call.appid].kind != MINIPROGRAM:
            raise _Reject(48001)
        _check_template_message(body)
        key = (body["touser"], body["template_id"])
        if self._grants.get(key, 0) <= 0:
            raise _Reject(43101)
        self._grants[key] -= 1
        self._deliver(call.path, body)
        return fixture("ok.json")

    def _wxacode_unlimited(self, call: FakeCall) -> dict | bytes:
        body = call.body
        assert body is not None and call.appid is not None
        if self._apps[call.appid].kind != MINIPROGRAM:
            raise _Reject(48001)
        scene, page = body.get("scene"), body.get("page", "")
        if not isinstance(scene, str) or not 1 <= len(scene) <= 32 or not _SCENE.match(scene):
            raise _Reject(40169)
        if not isinstance(page, str) or page.startswith("/") or "?" in page or (
                body.get("check_path", True) and page and page not in self.wxacode_pages):
            raise _Reject(41030)
        self._deliver(call.path, body)
        return _code_image(f"{page}?scene={scene}")

    # -- article publishing ---------------------------------------------------------------------

    def fail_publish(self, status: int, fail_idx: list[int] | None = None) -> None:
        """Make the next ``freepublish/submit`` end with ``status`` (2 original-declaration check,
        3 general failure, 4 review rejected, 5 deleted, 6 banned) instead of 0. ``fail_idx``
        (the articles at fault, from 1) defaults to ``[1]`` for 2 and 4, as WeChat reports them
        only then. A draft whose publish fails goes back to the draft box."""
        if status not in PUBLISH_FAILURES:
            raise ValueError(f"status must be one of {sorted(PUBLISH_FAILURES)}, not {status!r}")
        if fail_idx is None:
            fail_idx = [1] if status in (2, 4) else []
        self._publish_outcomes.append((status, list(fail_idx)))

    def finish_publishing(self, publish_id: str | None = None) -> None:
        """End the publish ``publish_id`` (every one still running when None) now, so the next
        ``freepublish/get`` already gives its final status."""
        jobs = [self._publish_job(publish_id)] if publish_id is not None else [
            job for job in self._publish_jobs.values() if job.status == PUBLISH_RUNNING]
        for job in jobs:
            self._settle(job)

    def publish_job_finish_event(
        self,
        publish_id: str,
        *,
        original_id: str = "gh_0123456789ab",
        openid: str = "oV5CrjpxgaGXNHIQigzNlgLTnwic",
    ) -> dict[str, Any]:
        """The fields of the ``PUBLISHJOBFINISH`` event WeChat pushes when the publish ends (it
        is ended now if still running), for ``FakePusher.event(openid, "PUBLISHJOBFINISH",
        PublishEventInfo=fields["PublishEventInfo"])``. ``original_id`` is the account's gh_ id."""
        job = self._publish_job(publish_id)
        self._settle(job)
        info: dict[str, Any] = {"publish_id": int(job.publish_id), "publish_status": job.status}
        if job.status == PUBLISH_SUCCESS:
            info["article_id"] = job.article_id
            info["article_detail"] = _article_detail(job.urls)
        elif job.fail_idx:
            info["fail_idx"] = list(job.fail_idx)
        return {
            "ToUserName": original_id,
            "FromUserName": openid,
            "CreateTime": int(self._wall_offset + self.clock()),
            "MsgType": "event",
            "Event": "PUBLISHJOBFINISH",
            "PublishEventInfo": info,
        }

    def freeze_at(self, when: datetime) -> None:
        """Stop the fake's clock at the wall time ``when`` (its month decides mass-send quotas)."""
        reading = when.timestamp() - self._wall_offset
        self.clock = lambda: reading

    def mass_sends_this_month(self) -> int:
        """Mass sends to all followers accepted in the fake clock's current month."""
        return self._mass_sends.get(self._month(), 0)

    def _publish_job(self, publish_id: str) -> _PublishJob:
        job = self._publish_jobs.get(publish_id)
        if job is None:
            raise LookupError(f"no publish {publish_id!r}")
        return job

    def _settle(self, job: _PublishJob) -> None:
        if job.status != PUBLISH_RUNNING:
            return
        job.status = job.outcome
        if job.outcome == PUBLISH_SUCCESS:
            job.article_id = secrets.token_urlsafe(32)
            job.urls = [f"https://mp.weixin.qq.com/s/{secrets.token_urlsafe(16)}" for _ in job.articles]
            self.published[job.article_id] = job.articles
        elif job.outcome in (2, 3, 4):
            self.drafts[job.media_id] = job.articles

    def _month(self) -> tuple[int, int]:
        now = datetime.fromtimestamp(self._wall_offset + self.clock(), _CHINA)
        return now.year, now.month

    def _uploadimg(self, call: FakeCall) -> dict:
        data = _media(call)
        kind = _image_kind(data)
        if kind not in ("jpg", "png"):
            raise _Reject(40005)
        if len(data) >= ARTICLE_IMAGE_MAX_BYTES:
            raise _Reject(40009)
        answer = fixture("uploadimg.json")
        answer["url"] = f"http://mmbiz.qpic.cn/mmbiz_{kind}/{secrets.token_urlsafe(60)}/0"
        self.article_images[answer["url"]] = data
        return answer

    def _add_material(self, call: FakeCall) -> dict:
        media_type = call.query.get("type")
        # voice and video are real types but not faked here.
        if media_type not in ("image", "thumb"):
            raise _Reject(40004)
        data = _media(call)
        kind = _image_kind(data)
        if kind is None or (media_type == "thumb" and kind != "jpg"):
            raise _Reject(40005)
        limit = MATERIAL_IMAGE_MAX_BYTES if media_type == "image" else MATERIAL_THUMB_MAX_BYTES
        if len(data) > limit:
            raise _Reject(40009)
        answer = fixture("add_material.json")
        fmt = "jpeg" if kind == "jpg" else kind
        answer.update(
            media_id=secrets.token_urlsafe(48),
            url=f"http://mmbiz.qpic.cn/sz_mmbiz_{kind}/{secrets.token_urlsafe(60)}/0?wx_fmt={fmt}",
        )
        self.materials[answer["media_id"]] = data
        self._material_urls.add(answer["url"])
        return answer

    def _draft_add(self, call: FakeCall) -> dict:
        assert call.body is not None
        articles = call.body.get("articles")
        if not isinstance(articles, list) or not articles:
            raise _Reject(44003)
        stored = [self._check_article(article) for article in articles]
        answer = fixture("draft_add.json")
        answer["media_id"] = secrets.token_urlsafe(48)
        self.drafts[answer["media_id"]] = stored
        return answer

    def _check_article(self, article: object) -> dict:
        """The article as WeChat stores it (scripts and foreign images removed), or the errcode."""
        if not isinstance(article, dict):
            raise _Reject(47001)
        title = article.get("title")
        if not isinstance(title, str) or not 1 <= len(title) <= TITLE_MAX:
            raise _Reject(45003)
        for name, limit, errcode in (("author", AUTHOR_MAX, 45110), ("digest", DIGEST_MAX, 45004)):
            value = article.get(name, "")
            if not isinstance(value, str) or len(value) > limit:
                raise _Reject(errcode)
        content = article.get("content")
        if not isinstance(content, str) or not content.strip():
            raise _Reject(44003)
        if len(content) >= CONTENT_MAX_CHARS or len(content.encode("utf-8")) >= CONTENT_MAX_BYTES:
            raise _Reject(45002)
        article_type = article.get("article_type", "news")
        if article_type == "news":
            if article.get("thumb_media_id") not in self.materials:
                raise _Reject(40007)
        elif article_type == "newspic":
            images = (article.get("image_info") or {}).get("image_list")
            if not isinstance(images, list) or not images or any(
                    not isinstance(i, dict) or i.get("image_media_id") not in self.materials
                    for i in images):
                raise _Reject(40007)
        else:
            raise _Reject(47001)
        return {**copy.deepcopy(article), "content": self._clean_content(content)}

    def _clean_content(self, content: str) -> str:
        # WeChat deletes scripts and filters out images not uploaded to it.
        content = _SCRIPT_ELEMENT.sub("", content)

        def keep_own_image(match: re.Match[str]) -> str:
            src = _IMG_SRC.search(match.group(0))
            url = src.group(1) if src else ""
            return match.group(0) if url in self.article_images or url in self._material_urls else ""

        return _IMG_TAG.sub(keep_own_image, content)

    def _freepublish_submit(self, call: FakeCall) -> dict:
        assert call.body is not None
        media_id = call.body.get("media_id")
        if not isinstance(media_id, str) or media_id not in self.drafts:
            raise _Reject(40007)
        outcome, fail_idx = self._publish_outcomes.pop(0) if self._publish_outcomes else (0, [])
        job = _PublishJob(str(next(self._publish_ids)), media_id, self.drafts.pop(media_id),
                          next(self._msg_data_ids), outcome, fail_idx)
        self._publish_jobs[job.publish_id] = job
        answer = fixture("freepublish_submit.json")
        answer.update(publish_id=job.publish_id, msg_data_id=job.msg_data_id)
        return answer

    def _freepublish_get(self, call: FakeCall) -> dict:
        assert call.body is not None
        publish_id = call.body.get("publish_id")
        job = self._publish_jobs.get(publish_id) if isinstance(publish_id, str) else None
        if job is None:
            raise _Reject(53600)
        # The first look finds it still publishing; by the next it has ended.
        if job.status == PUBLISH_RUNNING:
            if job.polls == 0:
                job.polls += 1
                return {"publish_id": job.publish_id, "publish_status": PUBLISH_RUNNING,
                        "fail_idx": []}
            self._settle(job)
        answer = fixture("freepublish_get.json")
        answer.update(publish_id=job.publish_id, publish_status=job.status, fail_idx=list(job.fail_idx))
        if job.status == PUBLISH_SUCCESS:
            answer.update(article_id=job.article_id, article_detail=_article_detail(job.urls))
        else:
            del answer["article_id"], answer["article_detail"]
        return answer

    def _mass_sendall(self, call: FakeCall) -> dict:
        body = call.body
        assert body is not None
        target = body.get("filter")
        if not isinstance(target, dict) or not (target.get("is_to_all") is True or target.get("tag_id")):
            raise _Reject(47001)
        # Only mpnews (a draft's articles) is faked.
        mpnews = body.get("mpnews")
        if body.get("msgtype") != "mpnews" or not isinstance(mpnews, dict):
            raise _Reject(47001)
        media_id = mpnews.get("media_id")
        client_msg_id = body.get("clientmsgid")
        if client_msg_id is not None and not isinstance(client_msg_id, str):
            raise _Reject(47001)
        # Without a clientmsgid WeChat uses a digest of the audience and the content.
        key = client_msg_id or json.dumps([target, media_id], sort_keys=True)
        now = self.clock()
        seen = self._mass_client_msg_ids.get(key)
        if seen is not None and now - seen[1] < CLIENTMSGID_WINDOW:
            raise _Reject(45065, msg_id=seen[0])
        if not isinstance(media_id, str) or media_id not in self.drafts:
            raise _Reject(40007)
        month = self._month()
        if self._mass_sends.get(month, 0) >= MASS_SENDS_PER_MONTH:
            raise _Reject(45028)
        self._mass_sends[month] = self._mass_sends.get(month, 0) + 1
        del self.drafts[media_id]
        answer = fixture("mass_sendall.json")
        answer.update(msg_id=next(self._mass_msg_ids), msg_data_id=next(self._msg_data_ids))
        self._mass_client_msg_ids[key] = (answer["msg_id"], now)
        self._deliver(call.path, body)
        return answer

    def _deliver(self, path: str, body: dict) -> None:
        self._delivered.setdefault(path, []).append(body)


_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
_SCRIPT_ELEMENT = re.compile(r"<script\b.*?(?:</script\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_IMG_SRC = re.compile(r"""\bsrc\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)


def _image_kind(data: bytes) -> str | None:
    """WeChat judges an image by its bytes: jpg, png, gif or bmp, else None."""
    for magic, kind in _IMAGE_MAGIC:
        if data.startswith(magic):
            return kind
    return None


def _media(call: FakeCall) -> bytes:
    """The file of an upload's ``media`` form field; 41005 without one."""
    uploads = call.files.get("media")
    if not uploads or not uploads[0].body:
        raise _Reject(41005)
    return uploads[0].body


def _article_detail(urls: list[str]) -> dict:
    return {"count": len(urls),
            "item": [{"idx": i, "article_url": url} for i, url in enumerate(urls, 1)]}


def _new_session_key() -> str:
    """Shaped like WeChat's: base64 of 16 random bytes (24 characters), an AES-128 key."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def _add_query(url: str, **params: str) -> str:
    """Append ``params`` to ``url``'s query, leaving what is already there byte for byte."""
    parts = urllib.parse.urlsplit(url)
    extra = urllib.parse.urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _check_size(value: object, limit: int, errcode: int) -> None:
    """Menu limits count UTF-8 bytes, which is why 4 Chinese characters fill a top-level name."""
    if not isinstance(value, str) or not 1 <= len(value.encode("utf-8")) <= limit:
        raise _Reject(errcode)


def _check_action(button: dict, *, type_error: int, key_error: int, url_error: int) -> None:
    kind = button.get("type")
    if kind not in _BUTTON_TYPES:
        raise _Reject(type_error)
    if kind in _KEY_TYPES:
        _check_size(button.get("key"), 128, key_error)
    elif kind == "view":
        _check_size(button.get("url"), 1024, url_error)
    elif kind == "miniprogram":
        if not button.get("appid") or not button.get("pagepath"):
            raise _Reject(47001)
        _check_size(button.get("url"), 1024, url_error)
    elif kind in ("media_id", "view_limited"):
        if not button.get("media_id"):
            raise _Reject(47001)
    elif not button.get("article_id"):
        raise _Reject(47001)


def _echo_button(button: dict) -> dict:
    # menu/get gives every button a sub_button list, empty for leaves.
    echoed = copy.deepcopy(button)
    echoed["sub_button"] = [_echo_button(sub) for sub in button.get("sub_button") or []]
    return echoed


def _check_touser(body: dict) -> None:
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser:
        raise _Reject(40003)


def _check_template_message(body: dict) -> None:
    _check_touser(body)
    template_id = body.get("template_id")
    if not isinstance(template_id, str) or not template_id:
        raise _Reject(40037)
    if not isinstance(body.get("data"), dict):
        raise _Reject(47001)
    for key, entry in body["data"].items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(value, str) or not _value_fits(key, value):
            raise _Reject(47003)


# WeChat's rules for typed keywords, as its documentation states them (kept apart from the
# product's own code on purpose: the fake must catch the product's mistakes, not share them).
_SCENE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]+$")
_HAN = re.compile(r"^[\u3400-\u9fff]+$")


def _value_fits(key: str, value: str) -> bool:
    kind = key.rstrip("0123456789")
    if "\n" in value or not value:
        return False
    if kind == "thing":
        return len(value) <= 20
    if kind == "phrase":
        return len(value) <= 5 and bool(_HAN.match(value))
    if kind == "character_string":
        return len(value) <= 32 and value.isascii()
    if kind == "number":
        return len(value) <= 32 and value.replace(".", "").isdigit()
    return len(value) <= 40


def _code_image(text: str) -> bytes:
    """A small real JPEG standing for a Mini Program code (its pixels do not matter here)."""
    from PIL import Image
    shade = hashlib.sha256(text.encode()).digest()[:3]  # another code, another image
    buffer = io.BytesIO()
    Image.new("RGB", (430, 430), tuple(shade)).save(buffer, "JPEG")
    return buffer.getvalue()
