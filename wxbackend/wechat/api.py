"""The one async client for WeChat's server APIs (``https://api.weixin.qq.com``).

wechatpy's client blocks the event loop (``requests``) and lets every process refresh tokens on
its own, so calls go through httpx here; wechatpy is still used for crypto, parsing and replies.
Every call has a timeout; transient failures are retried with backoff; a token WeChat rejects
(40001 / 40014 / 42001) is replaced once through the central control and the call retried once.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import random
import re
from typing import Any

import httpx

from wxbackend.config import WeChatSettings
from wxbackend.infra.metrics import WECHAT_CALLS, WECHAT_ERRORS
from wxbackend.services.errors import InvalidInput
from wxbackend.wechat.tokens import TokenManager

log = logging.getLogger(__name__)

TOKEN_REJECTED = frozenset({40001, 40014, 42001})
BUSY = -1  # "system error": WeChat asks to retry
NO_GRANT = 43101   # subscribe message: the user granted no (more) sends of this template
BAD_VALUE = 47003  # a template keyword's value breaks its type's rule
# getwxacodeunlimit's scene: at most 32 visible characters from this set (WeChat: 40169).
_SCENE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")

# Official Account articles (草稿箱 / 发布能力 / 群发): WeChat's documented limits, checked before
# calling so an editor gets a Chinese message instead of an errcode. Lengths are characters
# unless named _BYTES; "MAX" is inclusive except where the comment says "under".
OA_TITLE_MAX = 32                       # 45003
OA_AUTHOR_MAX = 16                      # 45110
OA_DIGEST_MAX = 128                     # 45004
OA_CONTENT_MAX_CHARS = 20_000           # under; 45002
OA_CONTENT_MAX_BYTES = 1 << 20          # under, in UTF-8; 45002
OA_SOURCE_URL_MAX_BYTES = 1024
OA_ARTICLES_MAX = 8                     # articles in one draft
OA_IMAGE_MAX_BYTES = 1 << 20            # under: uploadimg (正文图片), JPEG/PNG only; 40005/40009
OA_MATERIAL_IMAGE_MAX_BYTES = 10 << 20  # add_material?type=image, BMP/PNG/JPEG/GIF; 40009
NO_MASS_QUOTA = 45028        # mass send: no send left this month (a service account has 4)
CLIENT_MSG_ID_EXISTS = 45065  # mass send: this clientmsgid was used within 24 h
# freepublish/get's publish_status: 0 published, 1 still publishing, 2-6 failed (2 original-
# declaration check, 3 general failure, 4 platform review rejected, 5 deleted, 6 banned).
PUBLISH_SUCCESS = 0
PUBLISH_RUNNING = 1
# Image kinds by their first bytes: (magic, extension, Content-Type).
_IMAGE_KINDS = (
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
    (b"BM", "bmp", "image/bmp"),
)


class WeChatAPIError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, path: str, errcode: int, errmsg: str) -> None:
        super().__init__(f"{path}: {errcode} {errmsg}")
        self.path = path
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def no_grant(self) -> bool:
        """A subscribe message the user refused or has no accepted send left for: not retried,
        the caller falls back (e.g. to the Official Account's template message)."""
        return self.errcode == NO_GRANT

    @property
    def bad_value(self) -> bool:
        """A template keyword's value broke its type's rule: a bug in the values, not an outage."""
        return self.errcode == BAD_VALUE


class WeChatUnreachable(Exception):
    """No answer from WeChat. ``maybe_delivered`` is true when the request may have arrived."""

    def __init__(self, path: str, reason: str, *, maybe_delivered: bool) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.maybe_delivered = maybe_delivered


class WeChatAPI:
    """One WeChat app (the Official Account, or the Mini Program with ``appid``/``secret``
    given): its access_token and jsapi_ticket under central control, and its API calls."""

    def __init__(self, http: httpx.AsyncClient, settings: WeChatSettings, redis, *,
                 appid: str | None = None, secret: str | None = None) -> None:
        self._http = http
        self._settings = settings
        self._base = settings.api_base.rstrip("/")
        self.appid = appid or settings.appid
        self._secret = secret if secret is not None else settings.secret.reveal()
        self.tokens = TokenManager(redis, self.appid, self._fetch_access_token)
        self.tickets = TokenManager(redis, self.appid, self._fetch_jsapi_ticket,
                                    kind="jsapi_ticket")

    # --- transport ---------------------------------------------------------------------------
    async def _send(self, method: str, path: str, *, params: dict | None, json: Any = None,
                    idempotent: bool, content: bytes | None = None, files: dict | None = None,
                    headers: dict[str, str] | None = None) -> dict:
        retries = self._settings.http_retries
        for attempt in range(retries + 1):
            try:
                response = await self._http.request(
                    method, self._base + path, params=params, json=json, content=content,
                    files=files, headers=headers, timeout=self._settings.http_timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                reason, sent = f"{type(exc).__name__}", False
            except httpx.TransportError as exc:  # read timeout, reset: it may have arrived
                reason, sent = f"{type(exc).__name__}", True
            else:
                try:
                    data = response.json()
                except ValueError:
                    reason, sent = f"HTTP {response.status_code} without JSON", True
                else:
                    if not isinstance(data, dict):
                        data = {"errcode": 47001, "errmsg": "unexpected answer"}
                    errcode = int(data.get("errcode") or 0)
                    if errcode == BUSY and attempt < retries:
                        WECHAT_ERRORS.labels(path, str(errcode)).inc()
                        await asyncio.sleep(self._backoff(attempt))
                        continue
                    return data
            WECHAT_CALLS.labels(path, "unreachable").inc()
            if (sent and not idempotent) or attempt == retries:
                raise WeChatUnreachable(path, reason, maybe_delivered=sent)
            log.warning("WeChat %s unreachable (%s); retrying", path, reason)
            await asyncio.sleep(self._backoff(attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(2.0, 0.2 * (2 ** attempt)) * (0.5 + random.random() / 2)

    def _check(self, path: str, data: dict) -> dict:
        errcode = int(data.get("errcode") or 0)
        if errcode:
            WECHAT_CALLS.labels(path, "error").inc()
            WECHAT_ERRORS.labels(path, str(errcode)).inc()
            raise WeChatAPIError(path, errcode, str(data.get("errmsg", "")))
        WECHAT_CALLS.labels(path, "ok").inc()
        return data

    async def call(self, method: str, path: str, *, params: dict | None = None,
                   json: Any = None, idempotent: bool | None = None) -> dict:
        """Call an API that takes ``access_token`` in the query string."""
        idempotent = method == "GET" if idempotent is None else idempotent
        return await self._call_with_token(method, path, params=params, json=json,
                                           idempotent=idempotent)

    async def _call_with_token(self, method: str, path: str, *, params: dict | None = None,
                               json: Any = None, content: bytes | None = None,
                               files: dict | None = None, headers: dict[str, str] | None = None,
                               idempotent: bool, accept: frozenset[int] = frozenset()) -> dict:
        """:meth:`call` for any body (JSON, raw bytes, multipart): the token is replaced once when
        WeChat rejects it; an errcode in ``accept`` is returned as an answer, not raised."""
        token = await self.tokens.get()
        for replaced in (False, True):
            query = {**(params or {}), "access_token": token}
            data = await self._send(method, path, params=query, json=json, content=content,
                                    files=files, headers=headers, idempotent=idempotent)
            errcode = int(data.get("errcode") or 0)
            if errcode in TOKEN_REJECTED and not replaced:
                WECHAT_ERRORS.labels(path, str(errcode)).inc()
                log.warning("WeChat rejected the access_token on %s (%d); replacing it", path, errcode)
                token = await self.tokens.invalidate(token)
                continue
            if errcode and errcode in accept:
                WECHAT_ERRORS.labels(path, str(errcode)).inc()
                WECHAT_CALLS.labels(path, "ok").inc()
                return data
            return self._check(path, data)
        raise AssertionError("unreachable")

    # --- credentials -------------------------------------------------------------------------
    async def _fetch_access_token(self) -> tuple[str, int]:
        """``POST /cgi-bin/stable_token`` (normal mode, never force) or the classic
        ``GET /cgi-bin/token``. Errors: 40013 bad appid, 40125 bad secret, 40164 IP not whitelisted."""
        if self._settings.token_endpoint == "stable":
            path = "/cgi-bin/stable_token"
            data = await self._send("POST", path, params=None, idempotent=True, json={
                "grant_type": "client_credential", "appid": self.appid,
                "secret": self._secret, "force_refresh": False})
        else:
            path = "/cgi-bin/token"
            data = await self._send("GET", path, json=None, idempotent=True, params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self._secret})
        data = self._check(path, data)
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    async def _fetch_jsapi_ticket(self) -> tuple[str, int]:
        """``GET /cgi-bin/ticket/getticket?type=jsapi`` — its quota is small, so it lives under
        the same central control as the access_token."""
        data = await self.call("GET", "/cgi-bin/ticket/getticket", params={"type": "jsapi"})
        return str(data["ticket"]), int(data.get("expires_in", 7200))

    async def _call_without_token(self, method: str, path: str, *, params: dict | None = None,
                                  json: Any = None) -> dict:
        return self._check(path, await self._send(method, path, params=params, json=json,
                                                  idempotent=method == "GET"))

    # --- web OAuth (网页授权) and the Mini Program login -----------------------------------------
    async def oauth_exchange(self, code: str) -> dict:
        """``GET /sns/oauth2/access_token``: a web-OAuth code for openid (+ unionid, scope,
        is_snapshotuser, the user's access_token). 40029 invalid code, 40163 code used."""
        return await self._call_without_token("GET", "/sns/oauth2/access_token", params={
            "appid": self.appid, "secret": self._secret, "code": code,
            "grant_type": "authorization_code"})

    async def oauth_userinfo(self, user_token: str, openid: str) -> dict:
        """``GET /sns/userinfo`` with the user's token (snsapi_userinfo only)."""
        return await self._call_without_token("GET", "/sns/userinfo", params={
            "access_token": user_token, "openid": openid, "lang": "zh_CN"})

    async def code_to_session(self, js_code: str) -> dict:
        """``GET /sns/jscode2session``: a Mini Program ``wx.login`` code for openid,
        session_key (+ unionid). 40029 invalid code, 45011 too frequent, 40226 risky user."""
        return await self._call_without_token("GET", "/sns/jscode2session", params={
            "appid": self.appid, "secret": self._secret, "js_code": js_code,
            "grant_type": "authorization_code"})

    async def get_phone_number(self, code: str) -> dict:
        """``POST /wxa/business/getuserphonenumber`` (Mini Program token): the phone_info of a
        ``getPhoneNumber`` button code (single use, 5 minutes). 40029 invalid code."""
        data = await self.call("POST", "/wxa/business/getuserphonenumber", json={"code": code},
                               idempotent=True)
        return data["phone_info"]

    # --- APIs used by the product ------------------------------------------------------------
    async def create_menu(self, menu: dict) -> None:
        """``POST /cgi-bin/menu/create`` (40016/40017/40018 = bad buttons)."""
        await self.call("POST", "/cgi-bin/menu/create", json=menu)

    async def send_custom(self, message: dict) -> dict:
        """``POST /cgi-bin/message/custom/send``; 45015 window closed, 45047 quota used up."""
        return await self.call("POST", "/cgi-bin/message/custom/send", json=message)

    async def send_template(self, message: dict) -> dict:
        """``POST /cgi-bin/message/template/send``; 43004 not following, 40037 bad template,
        47003 a keyword's value (``WeChatAPIError.bad_value``: fix the values, do not retry).
        ``client_msg_id`` makes a repeated send a no-op at WeChat, so it may be retried."""
        return await self.call("POST", "/cgi-bin/message/template/send", json=message,
                               idempotent="client_msg_id" in message)

    async def send_mp_subscribe(self, message: dict) -> dict:
        """``POST /cgi-bin/message/subscribe/send`` (Mini Program token): one send per grant the
        user gave at a tap; :data:`NO_GRANT` when none is left, :data:`BAD_VALUE` for a value."""
        return await self.call("POST", "/cgi-bin/message/subscribe/send", json=message)

    async def get_wxacode_unlimited(self, scene: str, page: str, *, width: int = 430,
                                    check_path: bool = False,
                                    env_version: str = "release") -> bytes:
        """``POST /wxa/getwxacodeunlimit`` (Mini Program token): the image of a Mini Program code
        for ``page`` carrying ``scene`` (≤ 32 visible characters). WeChat answers the image on
        success and JSON on failure (41030 bad page, 45009 over 5,000 calls a minute)."""
        if not isinstance(scene, str) or not _SCENE.match(scene):
            raise InvalidInput("小程序码参数须为 1 至 32 个英文字母、数字或 !#$&'()*+,/:;=?@-._~ 符号",
                               code="invalid_scene")
        path = "/wxa/getwxacodeunlimit"
        body = {"scene": scene, "page": page, "width": width, "check_path": check_path,
                "env_version": env_version}
        token = await self.tokens.get()
        for replaced in (False, True):
            try:
                response = await self._http.post(self._base + path, params={"access_token": token},
                                                  json=body, timeout=self._settings.http_timeout)
            except httpx.TransportError as exc:
                WECHAT_CALLS.labels(path, "unreachable").inc()
                raise WeChatUnreachable(path, type(exc).__name__, maybe_delivered=True) from None
            # Success is the image itself; WeChat's content-type is not always reliable, so the
            # first bytes decide too.
            if response.headers.get("Content-Type", "").startswith("image/") or (
                    response.content.startswith(_IMAGE_MAGIC)):
                WECHAT_CALLS.labels(path, "ok").inc()
                return response.content
            try:
                data = response.json()
            except ValueError:
                data = {"errcode": BUSY, "errmsg": f"HTTP {response.status_code} without an image"}
            errcode = int(data.get("errcode") or 0) if isinstance(data, dict) else BUSY
            if errcode in TOKEN_REJECTED and not replaced:
                token = await self.tokens.invalidate(token)
                continue
            self._check(path, data if errcode else {"errcode": BUSY, "errmsg": "no image"})
        raise AssertionError("unreachable")

    async def send_oa_subscribe(self, message: dict) -> dict:
        """``POST /cgi-bin/message/subscribe/bizsend`` (订阅通知); 43101 no grant left."""
        return await self.call("POST", "/cgi-bin/message/subscribe/bizsend", json=message)

    # --- Official Account articles: images, drafts, publishing, mass send ---------------------
    async def upload_article_image(self, data: bytes, filename: str) -> str:
        """``POST /cgi-bin/media/uploadimg``: an image for an article's body, whose URL the
        content must use (WeChat filters other image URLs out). JPEG/PNG under 1 MB, checked
        here first (40005 bad type, 40009 too large); it takes no material quota. Retried
        safely: a repeat only stores the image again."""
        kind = _image_kind(data)
        if kind is None or kind[0] not in ("jpg", "png") or len(data) >= OA_IMAGE_MAX_BYTES:
            raise InvalidInput("正文图片须为 1 MB 以内的 JPG 或 PNG", code="oa_image_invalid")
        answer = await self._upload("/cgi-bin/media/uploadimg", None, data, filename, kind)
        return str(answer["url"])

    async def add_permanent_image(self, data: bytes, filename: str) -> str:
        """``POST /cgi-bin/material/add_material?type=image``: a permanent image, whose media_id
        a draft's ``thumb_media_id`` (cover) needs. BMP/PNG/JPEG/GIF up to 10 MB, checked here
        first (40005/40004 bad type, 40009 too large); the answer's ``url`` is not returned."""
        kind = _image_kind(data)
        if kind is None or len(data) > OA_MATERIAL_IMAGE_MAX_BYTES:
            raise InvalidInput("封面图片须为 10 MB 以内的 JPG、PNG、GIF 或 BMP", code="oa_image_invalid")
        answer = await self._upload("/cgi-bin/material/add_material", {"type": "image"}, data,
                                    filename, kind)
        return str(answer["media_id"])

    async def _upload(self, path: str, params: dict | None, data: bytes, filename: str,
                      kind: tuple[str, str]) -> dict:
        # The file goes in the form field "media", named with the extension its bytes call for
        # (WeChat also judges the type by the name).
        extension, content_type = kind
        stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "image"
        files = {"media": (f"{stem}.{extension}", data, content_type)}
        return await self._call_with_token("POST", path, params=params, files=files,
                                           idempotent=True)

    async def draft_add(self, articles: list[dict]) -> str:
        """``POST /cgi-bin/draft/add``: save articles to the draft box; returns the draft's
        media_id. Each article is checked here against WeChat's limits (45003 title, 45110
        author, 45004 digest, 44003/45002 content, 40007 unknown thumb_media_id) so an editor
        reads why in Chinese. The body is sent as real UTF-8 JSON: WeChat stores ``\\uXXXX``
        escapes literally. Not retried after it may have arrived: a repeat makes a second draft."""
        if not isinstance(articles, list) or not articles:
            raise InvalidInput("至少需要一篇图文", code="oa_articles_missing")
        if len(articles) > OA_ARTICLES_MAX:
            raise InvalidInput(f"一次最多 {OA_ARTICLES_MAX} 篇图文", code="oa_too_many_articles")
        for index, article in enumerate(articles, 1):
            _check_article(article, f"第 {index} 篇：" if len(articles) > 1 else "")
        # Fields left None are left out rather than sent as null.
        payload = [{k: v for k, v in article.items() if v is not None} for article in articles]
        content = jsonlib.dumps({"articles": payload}, ensure_ascii=False).encode("utf-8")
        answer = await self._call_with_token(
            "POST", "/cgi-bin/draft/add", content=content,
            headers={"Content-Type": "application/json; charset=utf-8"}, idempotent=False)
        return str(answer["media_id"])

    async def freepublish_submit(self, media_id: str) -> dict:
        """``POST /cgi-bin/freepublish/submit``: publish a draft (it leaves the draft box); the
        answer has ``publish_id`` and ``msg_data_id``. Publishing ends later: poll
        :meth:`freepublish_get` or wait for the ``PUBLISHJOBFINISH`` event. 40007 unknown
        media_id. Not retried after it may have arrived: a repeat could publish twice."""
        return await self.call("POST", "/cgi-bin/freepublish/submit", json={"media_id": media_id},
                               idempotent=False)

    async def freepublish_get(self, publish_id: str) -> dict:
        """``POST /cgi-bin/freepublish/get``: how a publish went. ``publish_status`` is
        :data:`PUBLISH_SUCCESS` (with ``article_id`` and ``article_detail.item[].article_url``),
        :data:`PUBLISH_RUNNING`, or 2-6 for failures (``fail_idx``: the articles at fault).
        53600 unknown publish_id. A read, so retried."""
        return await self.call("POST", "/cgi-bin/freepublish/get",
                               json={"publish_id": publish_id}, idempotent=True)

    async def mass_send_all(self, media_id: str, *, client_msg_id: str,
                            send_ignore_reprint: int = 0) -> dict:
        """``POST /cgi-bin/message/mass/sendall``: send a draft's articles to every follower;
        the answer has ``msg_id`` and ``msg_data_id``. WeChat drops a repeated ``clientmsgid``
        within 24 h, so this is retried; a repeat's answer (:data:`CLIENT_MSG_ID_EXISTS`, with
        the first send's ``msg_id``) is returned, not raised: check ``errcode`` to tell it.
        :data:`NO_MASS_QUOTA` when this month's sends are used up; 40007 unknown media_id."""
        body = {"filter": {"is_to_all": True}, "mpnews": {"media_id": media_id},
                "msgtype": "mpnews", "send_ignore_reprint": send_ignore_reprint,
                "clientmsgid": client_msg_id}
        return await self._call_with_token("POST", "/cgi-bin/message/mass/sendall", json=body,
                                           idempotent=True,
                                           accept=frozenset({CLIENT_MSG_ID_EXISTS}))


def _image_kind(data: bytes) -> tuple[str, str] | None:
    """(extension, Content-Type) of an image by its first bytes, or None."""
    if isinstance(data, bytes | bytearray):
        for magic, extension, content_type in _IMAGE_KINDS:
            if data.startswith(magic):
                return extension, content_type
    return None


def _check_article(article: Any, where: str) -> None:
    """Refuse an article WeChat would refuse, with the reason in Chinese (``where`` names it)."""
    if not isinstance(article, dict):
        raise InvalidInput(f"{where}图文格式有误", code="oa_article_invalid")

    def text(name: str) -> str:
        value = article.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InvalidInput(f"{where}图文格式有误", code="oa_article_invalid")
        return value

    title = text("title")
    if not title.strip():
        raise InvalidInput(f"{where}标题不能为空", code="oa_title_missing")
    if len(title) > OA_TITLE_MAX:
        raise InvalidInput(f"{where}标题不能超过 {OA_TITLE_MAX} 个字", code="oa_title_too_long")
    if len(text("author")) > OA_AUTHOR_MAX:
        raise InvalidInput(f"{where}作者不能超过 {OA_AUTHOR_MAX} 个字", code="oa_author_too_long")
    if len(text("digest")) > OA_DIGEST_MAX:
        raise InvalidInput(f"{where}摘要不能超过 {OA_DIGEST_MAX} 个字", code="oa_digest_too_long")
    content = text("content")
    if not content.strip():
        raise InvalidInput(f"{where}正文不能为空", code="oa_content_missing")
    if len(content) >= OA_CONTENT_MAX_CHARS or len(content.encode("utf-8")) >= OA_CONTENT_MAX_BYTES:
        raise InvalidInput(f"{where}正文超过公众号的长度限制（2 万字、1 MB）", code="oa_content_too_long")
    if len(text("content_source_url").encode("utf-8")) > OA_SOURCE_URL_MAX_BYTES:
        raise InvalidInput(f"{where}原文链接不能超过 {OA_SOURCE_URL_MAX_BYTES} 个字节",
                           code="oa_source_url_too_long")
    if (article.get("article_type") or "news") == "news" and not text("thumb_media_id"):
        raise InvalidInput(f"{where}请先上传封面图片", code="oa_thumb_missing")
