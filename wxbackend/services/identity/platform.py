"""The shared platform API's access entrances (apps) and how their requests are trusted.

The platform office registers every entrance — the union App, websites, cities' self-built
channels — with an app id, a secret, the scopes it may use and the union that owns it. Each API
request is signed: ``hex(HMAC-SHA256(secret, METHOD \\n PATH \\n QUERY \\n TIMESTAMP \\n NONCE \\n
hex(SHA-256(body))))`` where QUERY is the query string's pairs sorted and joined with ``&``. A
request is accepted within ``signature_window`` seconds of its timestamp and a nonce is never
accepted twice (Redis, kept longer than the window). Nonces are only as good as Redis's memory:
the marker ``platform:nonce-epoch`` (never expiring) says from when they are recorded, so a
Redis that lost its data (the marker gone with it) starts a new epoch, and a request signed
before the epoch began — one whose nonce may have been seen and forgotten — is refused.
Secrets are stored SM4-encrypted: the server needs them to check signatures.

What an entrance reaches: it reads (profile, userinfo) only accounts that signed in through it
or were linked to it, and resolves only those and the accounts whose home union lies in its own
union's subtree — the whole province only if the platform office granted ``province_scope``.
An account out of reach is answered exactly like one that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

import asyncpg
import redis.asyncio as aioredis

from wxbackend.config import PlatformSettings
from wxbackend.infra.pii import PersonalData
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from wxbackend.store.identity import platform as store

if TYPE_CHECKING:
    from wxbackend.services.identity.accounts import Account, AccountService

log = logging.getLogger(__name__)

SECRET_COLUMN = "platform_apps.secret"  # noqa: S105 - a column name
NONCE_EPOCH_KEY = "platform:nonce-epoch"
SCOPES = {
    "identity.resolve": "由微信或本入口的用户标识查找平台账号",
    "identity.resolve_phone": "由手机号查找平台账号",
    "identity.link": "将本入口的用户标识关联到平台账号（需用户授权证明）",
    "profile.read": "读取账号的注册状态、所属地区和昵称",
    "profile.phone": "读取账号的手机号",
    "sso": "以平台账号为用户提供单点登录",
    "kpi.read": "读取本入口所属工会及下级工会的使用情况指标",
    "ledger.node": "作为城市节点跟随、核验基础数据账本（读取本辖区条目、证明，上报告警）",
}
SIGNED_CALL_KEPT = 90 * 86400


def signed_call_key(app_id: str) -> str:
    return f"api:signed:{app_id}"


_APP_ID = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class PlatformApp:
    app_id: str
    name: str
    secret: str
    scopes: frozenset[str]
    org_id: int
    redirect_uris: tuple[str, ...]
    active: bool
    province_scope: bool = False

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"该接入入口没有“{SCOPES.get(scope, scope)}”的权限", code="scope_missing")


IDENTITY_KINDS = ("oa_openid", "mp_openid", "unionid", "app_user")


def identity_issuer(app: PlatformApp, kind: str, issuer: str | None) -> str:
    """Whose id space a subject lives in: an entrance resolves only its own users' ids; a
    unionid is the Open Platform's; an openid is the WeChat app's the caller names."""
    if kind == "app_user":
        return app.app_id
    if kind == "unionid":
        return "open"
    return str(issuer or "")


def _not_found() -> NotFound:
    return NotFound("账号不存在或已注销", code="account_not_found")


async def resolve_for(apps: PlatformApps, accounts: AccountService, app: PlatformApp, *,
                      phone: str | None = None, kind: str | None = None, issuer: str | None = None,
                      subject: str | None = None) -> Account:
    """``POST /api/v1/accounts/resolve``: by phone or by identity, within the entrance's reach."""
    if phone is not None:
        account = await accounts.resolve_phone(phone)
    else:
        account = await accounts.resolve(kind=str(kind), issuer=identity_issuer(app, str(kind), issuer),
                                         subject=str(subject))
    if account is None or not await apps.may_resolve(app, account.id):
        raise NotFound("没有找到对应的平台账号", code="account_not_found")
    return account


async def profile_for(apps: PlatformApps, accounts: AccountService, app: PlatformApp,
                      public_id: str) -> dict:
    """An account as an entrance may see it (``GET /api/v1/accounts/{account_id}``): only an
    account linked to the entrance; the entrance's scopes decide the fields."""
    account = await accounts.by_public_id(public_id)
    if not await apps.is_linked(app.app_id, account.id):
        raise _not_found()
    return {"account_id": account.public_id,
            **await _scoped_fields(accounts, account, app.scopes, registered_at=True)}


async def userinfo_for(apps: PlatformApps, accounts: AccountService, app_id: str, account_id: int,
                       scopes: Collection[str]) -> dict:
    """The OAuth userinfo answer: the account under ``sub``, with the fields the access token's
    scopes allow (without ``registered_at``), while the account is still linked to the entrance."""
    account = await accounts.get_account(account_id)
    if not await apps.is_linked(app_id, account.id):
        raise _not_found()
    return {"sub": account.public_id,
            **await _scoped_fields(accounts, account, scopes, registered_at=False)}


async def _scoped_fields(accounts: AccountService, account: Account, scopes: Collection[str], *,
                         registered_at: bool) -> dict:
    """``profile.read``: registration, region and nickname; ``profile.phone``: the full phone
    number, read (decrypted) only then."""
    out: dict = {"registered": account.registered}
    if "profile.read" in scopes:
        if registered_at:
            out["registered_at"] = account.registered_at.isoformat() if account.registered_at else None
        out |= {"region": {"code": account.region_code, "name": account.region_name}
                if account.region_code else None,
                "nickname": account.nickname}
    if "profile.phone" in scopes:
        out["phone"] = await accounts.phone_of(account.id)
    return out


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_query(query: str) -> str:
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


def string_to_sign(method: str, path: str, query: str, timestamp: str, nonce: str,
                   body: bytes) -> str:
    return "\n".join([method.upper(), path, canonical_query(query), timestamp, nonce,
                      body_digest(body)])


def sign(secret: str, method: str, path: str, query: str, timestamp: str, nonce: str,
         body: bytes) -> str:
    """What an entrance computes (and what we recompute) for ``X-Signature``."""
    message = string_to_sign(method, path, query, timestamp, nonce, body)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class PlatformApps:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, pii: PersonalData,
                 settings: PlatformSettings, *, audit: AuditTrail, cache_seconds: float = 30.0,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._redis = redis
        self._pii = pii
        self._s = settings
        self._audit = audit
        self._now = now
        self._cache: dict[str, tuple[float, PlatformApp | None]] = {}
        self._cache_seconds = cache_seconds

    # --- registration (the platform office, through the CLI) ----------------------------------
    async def create_app(self, *, app_id: str, name: str, org_code: str, scopes: list[str],
                         redirect_uris: list[str], province_scope: bool = False,
                         by: str = "cli") -> tuple[PlatformApp, str]:
        """Register an entrance; returns it and its secret, which is shown only this once.
        ``province_scope`` lets it resolve accounts of the whole province, not only its union's
        subtree: an explicit grant, written to the audit trail."""
        if not _APP_ID.match(app_id):
            raise InvalidInput("app id: 3–40 lower-case letters, digits or '-', starting with a letter")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InvalidInput(f"unknown or missing scopes: {unknown}; known: {sorted(SCOPES)}")
        for uri in redirect_uris:
            if not uri.startswith("https://") or "#" in uri:
                raise InvalidInput(f"redirect URI must be https and without a fragment: {uri}")
        secret = secrets.token_urlsafe(32)
        async with self._pool.acquire() as conn, conn.transaction():
            org_id = await store.org_id(conn, org_code)
            if org_id is None:
                raise NotFound(f"no union with code {org_code}")
            created = await store.create_app(conn, app_id=app_id, name=name,
                                             secret_enc=self._pii.encrypt(secret, SECRET_COLUMN),
                                             scopes=sorted(set(scopes)), org_id=org_id,
                                             redirect_uris=redirect_uris,
                                             province_scope=province_scope)
            if not created:
                raise InvalidInput(f"app id {app_id} is taken")
            await self._audit.record(conn, actor_id=None, actor=by, org_id=org_id,
                                     action="platform_app.create", target=app_id,
                                     detail={"scopes": sorted(set(scopes)),
                                             "province_scope": province_scope})
        if province_scope:
            log.warning("platform app %s granted province scope by %s", app_id, by)
        self._cache.pop(app_id, None)
        return await self.get_app(app_id), secret

    async def set_status(self, app_id: str, active: bool) -> None:
        async with self._pool.acquire() as conn:
            if not await store.set_status(conn, app_id, "active" if active else "disabled"):
                raise NotFound(f"no app {app_id}")
        self._cache.pop(app_id, None)

    async def get_app(self, app_id: str) -> PlatformApp | None:
        """Apps are read on every request; each process keeps them for a few seconds."""
        now = time.monotonic()
        hit = self._cache.get(app_id)
        if hit and now - hit[0] < self._cache_seconds:
            return hit[1]
        async with self._pool.acquire() as conn:
            row = await store.get_app(conn, app_id)
        app = None if row is None else PlatformApp(
            app_id=row["app_id"], name=row["name"],
            secret=self._pii.decrypt(row["secret_enc"], SECRET_COLUMN),
            scopes=frozenset(row["scopes"]), org_id=row["org_id"],
            redirect_uris=tuple(row["redirect_uris"]), active=row["status"] == "active",
            province_scope=row["province_scope"])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[app_id] = (now, app)
        return app

    # --- which accounts an entrance reaches --------------------------------------------------------
    async def record_sign_in(self, app_id: str, account_id: int) -> None:
        """The worker signed in to the entrance by SSO: from now on it may read the account."""
        async with self._pool.acquire() as conn:
            await store.record_sign_in(conn, app_id, account_id)

    async def is_linked(self, app_id: str, account_id: int) -> bool:
        async with self._pool.acquire() as conn:
            return await store.is_linked(conn, app_id, account_id)

    async def may_resolve(self, app: PlatformApp, account_id: int) -> bool:
        if app.province_scope:
            return True
        async with self._pool.acquire() as conn:
            return await store.in_subtree(conn, app.org_id, account_id) \
                or await store.is_linked(conn, app.app_id, account_id)

    # --- every signed request ------------------------------------------------------------------
    async def authenticate(self, *, app_id: str, timestamp: str, nonce: str, signature: str,
                           method: str, path: str, query: str, body: bytes) -> PlatformApp:
        if not (app_id and timestamp and nonce and signature):
            raise Unauthenticated("缺少签名参数（X-App-Id、X-Timestamp、X-Nonce、X-Signature）",
                                  code="signature_missing")
        now = self._now().timestamp()
        try:
            signed_at = int(timestamp)
        except ValueError:
            raise Unauthenticated("X-Timestamp 应为 Unix 秒", code="timestamp_invalid") from None
        if abs(now - signed_at) > self._s.signature_window:
            raise Unauthenticated("请求时间与服务器相差超过 5 分钟", code="timestamp_expired")
        if not _NONCE.match(nonce):
            raise Unauthenticated("X-Nonce 应为 8–64 位字母、数字、- 或 _", code="nonce_invalid")
        app = await self.get_app(app_id)
        if app is None or not app.active:
            raise Unauthenticated("未知或已停用的接入入口", code="app_unknown")
        expected = sign(app.secret, method, path, query, timestamp, nonce, body)
        if not hmac.compare_digest(expected, signature.lower()):
            raise Unauthenticated("请求签名无效", code="signature_invalid")
        # Checked last, so a forged request cannot burn a legitimate client's nonce; the epoch is
        # read in the same round trip.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(NONCE_EPOCH_KEY)
            pipe.set(f"api:nonce:{app_id}:{nonce}", 1, nx=True, ex=self._s.nonce_ttl)
            # When the entrance last signed a request we accepted: the evidence a self-built
            # channel's acceptance check reads (services/channels/conformance.py).
            pipe.set(signed_call_key(app_id), signed_at, ex=SIGNED_CALL_KEPT)
            epoch, fresh, _ = await pipe.execute()
        if signed_at < (int(epoch) if epoch is not None else await self.nonce_epoch()):
            raise Unauthenticated("请求签于重放保护记录起点之前，请用当前时间重新签名后再发",
                                  code="request_stale")
        if not fresh:
            raise Unauthenticated("重复的请求（nonce 已使用）", code="nonce_replayed")
        return app

    async def nonce_epoch(self) -> int:
        """Unix second from which this Redis has recorded the nonces it saw. Missing means Redis
        lost its data (or never had any): a new epoch starts now. The key never expires, so
        only a loss of data removes it; an eviction that did would only refuse more."""
        raw = await self._redis.get(NONCE_EPOCH_KEY)
        if raw is None:
            start = int(self._now().timestamp())
            if await self._redis.set(NONCE_EPOCH_KEY, start, nx=True):
                log.warning("platform API nonce record (re)started at %d: requests signed "
                            "earlier are refused", start)
            raw = await self._redis.get(NONCE_EPOCH_KEY)
        return int(raw or 0)
