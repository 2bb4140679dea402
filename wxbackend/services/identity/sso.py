"""Single sign-on for other access entrances: OAuth 2 authorization code + PKCE (S256, required)
with Authlib.

A city's self-built channel sends the worker to ``/api/v1/oauth/authorize``; a worker signed in to
the platform (H5 session) is sent back with a code; the channel's server trades it at
``/api/v1/oauth/token`` for an access token and reads ``/api/v1/oauth/userinfo``. Registered
entrances are trusted by the platform office, so there is no consent page; a sign-in makes the
account readable by that entrance (:meth:`PlatformApps.record_sign_in`).

Authlib's authorization server is synchronous. Rather than block the event loop on the
database, each request first loads what Authlib will ask for (the client; for the token
endpoint, the code, read without consuming it), runs Authlib over that, and then stores what
Authlib produced (a code, a token) before answering. A code is consumed once its own client
has authenticated — someone who only saw the code cannot burn it — and atomically, so it works
once: of two exchanges that both passed Authlib, the one that did not consume it gets no token.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge

from wxbackend.config import PlatformSettings
from wxbackend.services.identity.platform import PlatformApp, PlatformApps

SSO_SCOPES = ("profile.read", "profile.phone")


@dataclass(frozen=True)
class SsoRequest:
    """The facts of an HTTP request Authlib needs, without the web framework."""
    method: str
    uri: str                # as the client addressed it, https
    headers: dict[str, str]
    form: dict[str, str]    # the query (authorize) or the form body (token)


class _Request(OAuth2Request):
    """Authlib's request over plain values (as its Flask integration wraps Flask's)."""

    def __init__(self, request: SsoRequest) -> None:
        super().__init__(request.method, request.uri, headers=request.headers)
        self._form = request.form
        self.payload = BasicOAuth2Payload(request.form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return self._form if self.method == "GET" else {}


@dataclass
class _Exchange:
    client: _Client | None = None
    code: _Code | None = None
    authenticated: str | None = None    # the client id that proved its secret at the token endpoint
    writes: list[tuple[str, Any]] = field(default_factory=list)


_exchange: contextvars.ContextVar[_Exchange] = contextvars.ContextVar("sso_exchange")


class _Client(ClientMixin):
    def __init__(self, app: PlatformApp) -> None:
        self.app = app

    def get_client_id(self) -> str:
        return self.app.app_id

    def get_default_redirect_uri(self) -> str | None:
        return self.app.redirect_uris[0] if self.app.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        wanted = (scope or "profile.read").split()
        return " ".join(s for s in wanted if s in SSO_SCOPES and s in self.app.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.app.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.app.secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code:
    code: str
    client_id: str
    account_id: int
    redirect_uri: str | None    # only when the authorize request named one (RFC 6749 §4.1.3)
    scope: str
    code_challenge: str | None = None
    code_challenge_method: str | None = None

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class _User:
    account_id: int

    def get_user_id(self) -> int:
        return self.account_id


class _S256Only(CodeChallenge):
    """PKCE on every code, S256 only: ``plain`` would hand the verifier to whoever sees the
    authorize URL, and without a challenge a stolen code is as good as the client's."""
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: AuthorizationCodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'")
        super().validate_code_challenge(grant, redirect_uri)


class _CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # noqa: RUF012

    def authenticate_token_endpoint_client(self) -> _Client:
        client = super().authenticate_token_endpoint_client()
        _exchange.get().authenticated = client.get_client_id()
        return client

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        _exchange.get().writes.append(("code", _Code(
            code=code, client_id=request.client.get_client_id(), account_id=request.user.account_id,
            redirect_uri=data.get("redirect_uri") or None,
            scope=request.client.get_allowed_scope(data.get("scope", "")),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"))))

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        found = _exchange.get().code
        if found and found.code == code and found.client_id == client.get_client_id():
            return found
        return None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        """Consumed after Authlib ran, once the client authenticated (:meth:`SingleSignOn.token`)."""

    def authenticate_user(self, authorization_code: _Code) -> _User:
        return _User(authorization_code.account_id)


class _Server(AuthorizationServer):
    def __init__(self, token_ttl: int) -> None:
        super().__init__(scopes_supported=list(SSO_SCOPES))
        self.register_grant(_CodeGrant, [_S256Only(required=True)])
        self.register_token_generator("default", BearerTokenGenerator(
            access_token_generator=lambda **_: secrets.token_urlsafe(32),
            expires_generator=lambda client, grant_type: token_ttl))

    def query_client(self, client_id: str) -> _Client | None:
        client = _exchange.get().client
        return client if client and client.get_client_id() == client_id else None

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        _exchange.get().writes.append(("token", (token, request.user.account_id,
                                                 request.client.get_client_id())))

    def create_oauth2_request(self, request: SsoRequest | OAuth2Request) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def handle_response(self, status: int, body: Any, headers: list) -> tuple[int, Any, dict]:
        return status, body, dict(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


# RFC 6749 §3.1.1: response-name *( SP response-name ), each of "_", digits and letters.
_RESPONSE_TYPE = re.compile(r"[A-Za-z0-9_ ]*")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SingleSignOn:
    def __init__(self, apps: PlatformApps, redis: aioredis.Redis, settings: PlatformSettings) -> None:
        self._apps = apps
        self._redis = redis
        self._s = settings
        self._server = _Server(settings.access_token_ttl)

    async def _client(self, client_id: str | None) -> _Client | None:
        app = await self._apps.get_app(client_id) if client_id else None
        return _Client(app) if app and app.active and "sso" in app.scopes else None

    async def authorize(self, request: SsoRequest, account_id: int) -> tuple[int, Any, dict]:
        """The signed-in worker approves; answers Authlib's redirect (or error)."""
        if not _RESPONSE_TYPE.fullmatch(request.form.get("response_type", "")):
            # Authlib quotes an unsupported type in its error description, which may only hold
            # plain ASCII: it would fail building the error (a 500). Malformed, so refused here.
            return self._server.handle_error_response(
                request, InvalidRequestError("Invalid 'response_type' parameter."))
        exchange = _Exchange(client=await self._client(request.form.get("client_id")))
        token = _exchange.set(exchange)
        try:
            try:
                grant = self._server.get_consent_grant(request, end_user=_User(account_id))
            except Exception as error:  # an OAuth2Error: answer it the way Authlib does
                if not hasattr(error, "get_body"):
                    raise
                return self._server.handle_error_response(request, error)
            response = self._server.create_authorization_response(
                request, grant_user=_User(account_id), grant=grant)
        finally:
            _exchange.reset(token)
        for kind, code in exchange.writes:
            if kind == "code":
                await self._redis.set(f"sso:code:{_hash(code.code)}", json.dumps(code.__dict__),
                                      ex=self._s.oauth_code_ttl)
        return response

    async def token(self, request: SsoRequest, client_id: str | None) -> tuple[int, Any, dict]:
        exchange = _Exchange(client=await self._client(client_id))
        code = request.form.get("code")
        key = f"sso:code:{_hash(code)}" if code else None
        if key:
            raw = await self._redis.get(key)
            exchange.code = _Code(**json.loads(raw)) if raw else None
        token = _exchange.set(exchange)
        try:
            response = self._server.create_token_response(request)
        finally:
            _exchange.reset(token)
        if key and exchange.code and exchange.authenticated == exchange.code.client_id:
            # Its own client tried it (right or wrong): a code is good for one try only.
            if not await self._redis.delete(key) and exchange.writes:
                exchange.writes.clear()  # a concurrent exchange consumed it first
                error = InvalidGrantError("Invalid 'code' in request.")
                return self._server.handle_error_response(request, error)
        for kind, (issued, account_id, app_id) in exchange.writes:
            if kind == "token":
                await self._apps.record_sign_in(app_id, account_id)  # readable before it is usable
                await self._redis.set(
                    f"sso:token:{_hash(issued['access_token'])}",
                    json.dumps({"account_id": account_id, "app_id": app_id,
                                "scope": issued.get("scope", "")}),
                    ex=int(issued.get("expires_in", self._s.access_token_ttl)))
        return response

    async def token_info(self, access_token: str | None) -> dict | None:
        """What a bearer token stands for: account_id, app_id, scope — or None."""
        if not access_token or len(access_token) > 256:
            return None
        raw = await self._redis.get(f"sso:token:{_hash(access_token)}")
        return json.loads(raw) if raw else None
