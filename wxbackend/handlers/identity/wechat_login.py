"""``/wechat/oauth/*`` (the Official Account's web OAuth for H5 pages) and ``/wechat/jssdk``."""

from __future__ import annotations

from typing import Any

from wxbackend.handlers.base import BaseHandler
from wxbackend.handlers.identity.accounts import H5_COOKIE
from wxbackend.services.errors import DomainError
from wxbackend.services.identity.wechat_login import WeChatLogin

OAUTH_COOKIE = "wx_oauth"
_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>川工之家</title>
<link rel="stylesheet" href="/static/shared/h5.css"></head><body>
<header><h1>无法完成登录</h1></header><main><div class="card"><p>{message}</p>
<p class="muted">错误代码：{code}</p><a class="button" href="/h5/">返回川工之家首页</a></div></main>
</body></html>"""


class _LoginHandler(BaseHandler):
    def initialize(self, login: WeChatLogin) -> None:
        self.login = login

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """A browser lands here: an error page in Chinese, not JSON."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        code, message = (exc.code, exc.message) if isinstance(exc, DomainError) else \
            ("error", "登录没有完成，请返回重新进入。")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(_PAGE.format(message=message, code=code))


class OAuthStartHandler(_LoginHandler):
    route = "/wechat/oauth/start"

    async def get(self) -> None:
        start = await self.login.begin_oauth(self.get_query_argument("next", None),
                                             self.get_query_argument("scope", "snsapi_base"))
        self.set_private_cookie(OAUTH_COOKIE, start.browser_nonce, samesite="Lax",
                                path="/wechat/oauth", max_age=600)
        self.redirect(start.redirect_url)


class OAuthCallbackHandler(_LoginHandler):
    route = "/wechat/oauth/callback"

    async def get(self) -> None:
        signed = await self.login.finish_oauth(
            code=self.get_query_argument("code", None), state=self.get_query_argument("state", None),
            browser_nonce=self.get_cookie(OAUTH_COOKIE))
        self.clear_cookie(OAUTH_COOKIE, path="/wechat/oauth")
        self.set_private_cookie(H5_COOKIE, signed.token, samesite="Lax", path="/",
                                max_age=signed.expires_in)
        self.redirect(signed.next_path)


class JssdkHandler(BaseHandler):
    route = "/wechat/jssdk"

    def initialize(self, login: WeChatLogin) -> None:
        self.login = login

    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write_json(await self.login.jssdk_config(self.get_query_argument("url", "")))


def routes(login: WeChatLogin) -> list:
    kwargs = {"login": login}
    return [
        (OAuthStartHandler.route, OAuthStartHandler, kwargs),
        (OAuthCallbackHandler.route, OAuthCallbackHandler, kwargs),
        (JssdkHandler.route, JssdkHandler, {"login": login}),
    ]
