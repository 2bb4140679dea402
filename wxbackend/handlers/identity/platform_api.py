"""``/api/v1``: the shared platform API other access entrances use (互联互通, 账号互信互认).

Account endpoints need a signed request (see :mod:`wxbackend.services.identity.platform`) and the scope
they name. The OAuth 2 endpoints follow RFC 6749 instead: ``/oauth/authorize`` is a browser
redirect for the signed-in worker, ``/oauth/token`` authenticates the entrance with its client
secret and answers OAuth's own error shape (``{"error": ..., "error_description": ...}``), which
OAuth client libraries expect.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from wxbackend.handlers.base import BaseHandler
from wxbackend.handlers.identity.accounts import H5_COOKIE
from wxbackend.services.errors import DomainError, InvalidInput, Unauthenticated
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.platform import (
    IDENTITY_KINDS,
    PlatformApp,
    PlatformApps,
    profile_for,
    resolve_for,
    userinfo_for,
)
from wxbackend.services.identity.sessions import SessionStore
from wxbackend.services.identity.sso import SingleSignOn, SsoRequest


class SignedHandler(BaseHandler):
    def initialize(self, apps: PlatformApps, accounts: AccountService, sso: SingleSignOn) -> None:
        self.apps = apps
        self.accounts = accounts
        self.sso = sso
        self.app: PlatformApp | None = None

    async def prepare(self) -> None:
        super().prepare()
        self.set_header("Cache-Control", "no-store")
        h = self.request.headers
        self.app = await self.apps.authenticate(
            app_id=h.get("X-App-Id", ""), timestamp=h.get("X-Timestamp", ""),
            nonce=h.get("X-Nonce", ""), signature=h.get("X-Signature", ""),
            method=self.request.method or "", path=self.request.path,
            query=self.request.query, body=self.request.body)


class ResolveHandler(SignedHandler):
    route = "/api/v1/accounts/resolve"

    async def post(self) -> None:
        body = self.json_body()
        if "phone" in body:
            self.app.require("identity.resolve_phone")
            account = await resolve_for(self.apps, self.accounts, self.app, phone=str(body["phone"]))
        else:
            self.app.require("identity.resolve")
            ident = body.get("identity")
            if not isinstance(ident, dict) or ident.get("kind") not in IDENTITY_KINDS \
                    or not ident.get("subject"):
                raise InvalidInput("identity 需要 kind（oa_openid、mp_openid、unionid、app_user）和 subject",
                                   code="identity_invalid")
            account = await resolve_for(self.apps, self.accounts, self.app, kind=ident["kind"],
                                        issuer=ident.get("issuer"), subject=str(ident["subject"]))
        self.write_json({"account_id": account.public_id, "registered": account.registered})


class LinkHandler(SignedHandler):
    """The entrance's own user id joins a platform account. The proof is an SSO access token
    the worker's sign-in gave this same entrance."""
    route = "/api/v1/accounts/link"

    async def post(self) -> None:
        self.app.require("identity.link")
        body = self.json_body()
        proof = await self.sso.token_info(str(body.get("access_token", "")))
        if proof is None or proof["app_id"] != self.app.app_id:
            raise DomainError("缺少有效的用户授权证明（access_token）", code="proof_invalid")
        account = await self.accounts.link_app_user(proof["account_id"], self.app.app_id,
                                                    str(body.get("app_user_id", "")))
        self.write_json({"account_id": account.public_id, "linked": True})


class ProfileHandler(SignedHandler):
    route = "/api/v1/accounts/{account_id}"

    async def get(self, account_id: str) -> None:
        self.app.require("profile.read")
        self.write_json(await profile_for(self.apps, self.accounts, self.app, account_id))


# --- OAuth 2 (single sign-on) -------------------------------------------------------------------
class _OAuthHandler(BaseHandler):
    def initialize(self, sso: SingleSignOn, apps: PlatformApps, accounts: AccountService,
                   h5_sessions: SessionStore, public_url: str) -> None:
        self.sso = sso
        self.apps = apps
        self.accounts = accounts
        self.h5_sessions = h5_sessions
        self.public_url = public_url.rstrip("/")

    def sso_request(self, form: dict[str, str]) -> SsoRequest:
        return SsoRequest(method=self.request.method or "GET",
                          uri=self.public_url + self.request.uri,
                          headers=dict(self.request.headers), form=form)

    def answer(self, status: int, body, headers: dict) -> None:
        self.set_status(status)
        for name, value in headers.items():
            self.set_header(name, value)
        if status in (301, 302, 303):
            self.finish()
        else:
            self.finish(body if isinstance(body, str) else json.dumps(body, ensure_ascii=False))


class AuthorizeHandler(_OAuthHandler):
    route = "/api/v1/oauth/authorize"

    async def get(self) -> None:
        session = await self.h5_sessions.get(self.get_cookie(H5_COOKIE))
        if session is None:  # sign in on our H5 page first, then come back here
            self.redirect("/h5/login.html?next=" + quote(self.request.uri, safe=""))
            return
        account_id = await self.accounts.resolve_id(int(session["account_id"]))
        form = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        self.answer(*await self.sso.authorize(self.sso_request(form), account_id))


class TokenHandler(_OAuthHandler):
    route = "/api/v1/oauth/token"

    async def post(self) -> None:
        self.set_header("Cache-Control", "no-store")
        form = {k: self.get_body_argument(k) for k in self.request.body_arguments}
        client_id = form.get("client_id")
        auth = self.request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                client_id = None
        self.answer(*await self.sso.token(self.sso_request(form), client_id))


class UserInfoHandler(_OAuthHandler):
    route = "/api/v1/oauth/userinfo"

    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        header = self.request.headers.get("Authorization", "")
        info = await self.sso.token_info(header[7:].strip() if header.lower().startswith("bearer ") else None)
        if info is None:
            raise Unauthenticated("访问令牌无效或已过期", code="token_invalid",
                                  headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        self.write_json(await userinfo_for(self.apps, self.accounts, info["app_id"], info["account_id"],
                                           info["scope"].split()))


def routes(apps: PlatformApps, accounts: AccountService, sso: SingleSignOn,
           h5_sessions: SessionStore, public_url: str) -> list:
    signed = {"apps": apps, "accounts": accounts, "sso": sso}
    oauth = {"sso": sso, "apps": apps, "accounts": accounts, "h5_sessions": h5_sessions,
             "public_url": public_url}
    return [
        (ResolveHandler.route, ResolveHandler, signed),
        (LinkHandler.route, LinkHandler, signed),
        (r"/api/v1/accounts/([0-9a-fA-F-]{36})", ProfileHandler, signed),
        (AuthorizeHandler.route, AuthorizeHandler, oauth),
        (TokenHandler.route, TokenHandler, oauth),
        (UserInfoHandler.route, UserInfoHandler, oauth),
    ]
