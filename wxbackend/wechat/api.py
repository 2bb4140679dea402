"""The one async client for WeChat's server APIs (``https://api.weixin.qq.com``).

wechatpy's client blocks the event loop (``requests``) and lets every process refresh tokens on
its own, so calls go through httpx here; wechatpy is still used for crypto, parsing and replies.
Every call has a timeout; transient failures are retried with backoff; a token WeChat rejects
(40001 / 40014 / 42001) is replaced once through the central control and the call retried once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

from wxbackend.config import WeChatSettings
from wxbackend.infra.metrics import WECHAT_CALLS, WECHAT_ERRORS
from wxbackend.wechat.tokens import TokenManager

log = logging.getLogger(__name__)

TOKEN_REJECTED = frozenset({40001, 40014, 42001})
BUSY = -1  # "system error": WeChat asks to retry


class WeChatAPIError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, path: str, errcode: int, errmsg: str) -> None:
        super().__init__(f"{path}: {errcode} {errmsg}")
        self.path = path
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnreachable(Exception):
    """No answer from WeChat. ``maybe_delivered`` is true when the request may have arrived."""

    def __init__(self, path: str, reason: str, *, maybe_delivered: bool) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.maybe_delivered = maybe_delivered


class WeChatAPI:
    def __init__(self, http: httpx.AsyncClient, settings: WeChatSettings, redis) -> None:
        self._http = http
        self._settings = settings
        self._base = settings.api_base.rstrip("/")
        self.tokens = TokenManager(redis, settings.appid, self._fetch_access_token)

    # --- transport ---------------------------------------------------------------------------
    async def _send(self, method: str, path: str, *, params: dict | None, json: Any,
                    idempotent: bool) -> dict:
        retries = self._settings.http_retries
        for attempt in range(retries + 1):
            try:
                response = await self._http.request(
                    method, self._base + path, params=params, json=json,
                    timeout=self._settings.http_timeout)
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
        token = await self.tokens.get()
        for replaced in (False, True):
            query = {**(params or {}), "access_token": token}
            data = await self._send(method, path, params=query, json=json, idempotent=idempotent)
            errcode = int(data.get("errcode") or 0)
            if errcode in TOKEN_REJECTED and not replaced:
                WECHAT_ERRORS.labels(path, str(errcode)).inc()
                log.warning("WeChat rejected the access_token on %s (%d); replacing it", path, errcode)
                token = await self.tokens.invalidate(token)
                continue
            return self._check(path, data)
        raise AssertionError("unreachable")

    # --- credentials -------------------------------------------------------------------------
    async def _fetch_access_token(self) -> tuple[str, int]:
        """``POST /cgi-bin/stable_token`` (normal mode, never force) or the classic
        ``GET /cgi-bin/token``. Errors: 40013 bad appid, 40125 bad secret, 40164 IP not whitelisted."""
        wx = self._settings
        if wx.token_endpoint == "stable":
            path = "/cgi-bin/stable_token"
            data = await self._send("POST", path, params=None, idempotent=True, json={
                "grant_type": "client_credential", "appid": wx.appid,
                "secret": wx.secret.reveal(), "force_refresh": False})
        else:
            path = "/cgi-bin/token"
            data = await self._send("GET", path, json=None, idempotent=True, params={
                "grant_type": "client_credential", "appid": wx.appid,
                "secret": wx.secret.reveal()})
        data = self._check(path, data)
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    # --- APIs used by the product ------------------------------------------------------------
    async def create_menu(self, menu: dict) -> None:
        """``POST /cgi-bin/menu/create`` (40016/40017/40018 = bad buttons)."""
        await self.call("POST", "/cgi-bin/menu/create", json=menu)

    async def send_custom(self, message: dict) -> dict:
        """``POST /cgi-bin/message/custom/send``; 45015 window closed, 45047 quota used up."""
        return await self.call("POST", "/cgi-bin/message/custom/send", json=message)

    async def send_template(self, message: dict) -> dict:
        """``POST /cgi-bin/message/template/send``; 43004 not following, 40037 bad template.
        ``client_msg_id`` makes a repeated send a no-op at WeChat, so it may be retried."""
        return await self.call("POST", "/cgi-bin/message/template/send", json=message,
                               idempotent="client_msg_id" in message)

    async def send_oa_subscribe(self, message: dict) -> dict:
        """``POST /cgi-bin/message/subscribe/bizsend`` (订阅通知); 43101 no grant left."""
        return await self.call("POST", "/cgi-bin/message/subscribe/bizsend", json=message)
