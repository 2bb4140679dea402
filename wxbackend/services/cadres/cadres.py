"""Cadre accounts and their sign-in: the management measures' chapter 4, at MLPS level 3.

* The platform office (operators) creates every union's super admin; a change of super admin is
  filed (备案) and visible to the union above. A super admin creates cadre accounts of its own
  union only, and grants only what it holds — also to the super admins of its lower unions.
* Passwords: Argon2id, length and character-class rules, the last N never reused. Operators and
  super admins need a TOTP second factor (cadres too when configured); a code is accepted once.
  Repeated failures from one device (browser + address) lock that device out of the account
  for a while; many more failures from anywhere lock the account for everyone. So a stranger
  cannot lock a cadre out cheaply, and guessing stays bounded.
* Sign-in answers the same (401 login_failed), after the same Argon2 work, for an unknown
  username, a wrong password or code, a locked and a disabled account. Attempts are throttled
  per address (before any hashing) and per username. No pooled connection is held while a
  password is hashed (:mod:`wxbackend.services.cadres.passwords`).
* One active session per account: a new sign-in ends the old one, whose next request is told
  why. A session ends after ``session_idle_minutes`` without a request; the "current session"
  pointer slides with it. A sign-in from a device or address not seen before is recorded.
* Every change here writes an audit record in the same transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import pyotp
import redis.asyncio as aioredis

from wxbackend.config import AdminSettings
from wxbackend.infra.pii import PersonalData
from wxbackend.infra.redis import WindowCounter, hour_window, minute_window, retry_after
from wxbackend.infra.refusals import Refusals
from wxbackend.infra.xlsx import Watermark, watermarked_xlsx
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.passwords import PasswordHashing
from wxbackend.services.cadres.permissions import CATALOGUE, DUTY_LIMITS, Actor, grantable
from wxbackend.services.clock import CHINA, china_now
from wxbackend.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from wxbackend.store.cadres import cadres as store
from wxbackend.store.identity.accounts import log_change

TOTP_COLUMN = "cadres.totp_secret"
LEDGER_ACTIONS = ["operator.create", "super_admin.create", "cadre.create", "permissions.set",
                  "cadre.verify", "cadre.disable_overdue", "password.change",
                  # the self-built channel lifecycle (services/channels/self_built.py)
                  "channel_application.applied", "channel_application.approved",
                  "channel_application.rejected", "channel_application.checked",
                  "channel_application.accepted", "channel_application.connected",
                  "channel_application.suspended", "channel_application.retired"]
_ACTION_NAMES = {"operator.create": "创建平台账号", "super_admin.create": "创建超级管理员",
                 "cadre.create": "创建干部账号", "permissions.set": "变更权限",
                 "cadre.verify": "定期核实", "cadre.disable_overdue": "逾期未核实停用",
                 "password.change": "修改密码",
                 "channel_application.applied": "申请自建频道",
                 "channel_application.approved": "批准建设自建频道",
                 "channel_application.rejected": "不批准自建频道",
                 "channel_application.checked": "自建频道符合性检查",
                 "channel_application.accepted": "自建频道验收通过",
                 "channel_application.connected": "自建频道接入",
                 "channel_application.suspended": "暂停自建频道",
                 "channel_application.retired": "自建频道退出"}


def _ledger_workbook(rows: list[tuple], exporter: str, stamp: str) -> bytes:
    """Build the XLSX (CPU work: run in an executor)."""
    return watermarked_xlsx(
        title="川工之家 工会干部账号工作台账", sheet="工作台账",
        header=["记录号", "时间", "操作人", "操作", "对象", "详情", "IP", "所属工会"],
        rows=([rid, at.strftime("%Y-%m-%d %H:%M:%S"), actor, _ACTION_NAMES.get(action, action), target,
               json.dumps(detail, ensure_ascii=False), ip, org]
              for rid, at, actor, action, target, detail, ip, org in rows),
        watermark=Watermark(exporter=exporter, stamp=stamp))


_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,31}$")


class LoginFailed(Unauthenticated):
    code = "login_failed"
    message = "用户名、密码或动态验证码错误；若多次失败请稍后再试"


@dataclass(frozen=True)
class NewAccount:
    id: int
    username: str
    totp_uri: str | None     # to show once as a QR code for the authenticator app


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str
    actor: Actor
    new_device: bool
    replaced_other: bool
    failed_attempts: int = 0    # failures since the last sign-in: told to the real cadre only


def changed_by(cadre_id: int | None) -> str:
    """Who made a base-data change, as the change log names it."""
    return f"cadre:{cadre_id}" if cadre_id else "cli"


def _login_throttled(window_ends: int, now: datetime) -> TooManyRequests:
    return TooManyRequests("登录尝试过于频繁，请稍后再试", code="login_throttled",
                           headers={"Retry-After": retry_after(window_ends, now)})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Set the "current session" pointer to this session unless it names another (a newer sign-in
# replaced this one meanwhile), and slide both with the idle timeout.
_SLIDE = """
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""


def _locked(row: asyncpg.Record, now: datetime) -> bool:
    return bool(row["locked_until"] and row["locked_until"] > now)


class CadreService:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, pii: PersonalData,
                 settings: AdminSettings, *, audit: AuditTrail, issuer: str = "川工之家",
                 now: Callable[[], datetime] = china_now,
                 hashing: PasswordHashing | None = None) -> None:
        self._pool = pool
        self._audit = audit
        self._redis = redis
        self._pii = pii
        self._s = settings
        self._issuer = issuer
        self._now = now
        self._hashing = hashing or PasswordHashing(concurrency=settings.hash_concurrency,
                                                   queue=settings.hash_queue)
        self._counter = WindowCounter(redis)
        self._refused = Refusals()
        self._slide = redis.register_script(_SLIDE)

    # --- passwords -----------------------------------------------------------------------------
    def check_password_rules(self, password: str, username: str) -> None:
        classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
        if len(password) < self._s.password_min_length or classes < 3:
            raise InvalidInput(f"密码至少 {self._s.password_min_length} 位，且包含大写字母、小写字母、"
                               "数字、符号中的至少三类", code="password_weak")
        if username.lower() in password.lower():
            raise InvalidInput("密码不能包含用户名", code="password_weak")

    def _needs_totp(self, role: str) -> bool:
        return role in ("operator", "super_admin") or self._s.totp_for_cadres

    # --- accounts ------------------------------------------------------------------------------
    async def _credentials(self, username: str, display_name: str, password: str) -> str:
        """Check a new account's fields and hash its password, before any transaction opens."""
        if not _USERNAME.match(username):
            raise InvalidInput("用户名为 3–32 位小写字母、数字或 . _ -，以字母开头", code="username_invalid")
        if not display_name.strip():
            raise InvalidInput("请填写姓名", code="display_name_missing")
        self.check_password_rules(password, username)
        return await self._hashing.hash(password)

    async def _create(self, conn: asyncpg.Connection, *, username: str, display_name: str,
                      org_id: int, role: str, duty: str, hashed: str, permissions: frozenset[str],
                      created_by: int | None) -> NewAccount:
        secret = pyotp.random_base32() if self._needs_totp(role) else None
        cadre_id = await store.create(
            conn, username=username, display_name=display_name.strip(), org_id=org_id, role=role,
            duty=duty, password_hash=hashed, created_by=created_by,
            totp_secret_enc=self._pii.encrypt(secret, TOTP_COLUMN) if secret else None)
        if cadre_id is None:
            raise Conflict("该用户名已被使用", code="username_taken")
        await store.set_grants(conn, cadre_id, sorted(permissions), created_by)
        await store.add_password_history(conn, cadre_id, hashed)
        await log_change(conn, "cadre", str(cadre_id), "created", changed_by(created_by),
                         {"org_id": org_id, "role": role, "duty": duty, "permissions": sorted(permissions)})
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=self._issuer) if secret else None
        return NewAccount(cadre_id, username, uri)

    async def actor(self, cadre_id: int, ip: str = "") -> Actor:
        """The cadre as they act once signed in (their union, role and grants): for work the
        platform does on a cadre's behalf, such as the sandbox's demo province."""
        async with self._pool.acquire() as conn:
            row = await store.get(conn, cadre_id)
        if row is None:
            raise NotFound("账号不存在", code="cadre_not_found")
        return self._actor(row, ip)

    async def count(self) -> int:
        """How many cadre accounts there are (none: the first operator is still to be created)."""
        async with self._pool.acquire() as conn:
            return await store.count(conn)

    async def create_operator(self, *, username: str, display_name: str, password: str,
                              duty: str = "system") -> NewAccount:
        """Bootstrap (CLI): an account of the platform office at the province union."""
        if duty not in DUTY_LIMITS or duty == "business":
            raise InvalidInput("operator duty: system, security or audit")
        hashed = await self._credentials(username, display_name, password)
        async with self._pool.acquire() as conn, conn.transaction():
            province = await store.org_by_code(conn, "SC")
            if province is None:
                raise NotFound("run `wxbackend seed` first: the province union is missing")
            account = await self._create(conn, username=username, display_name=display_name,
                                         org_id=province["id"], role="operator", duty=duty,
                                         hashed=hashed, permissions=DUTY_LIMITS[duty],
                                         created_by=None)
            await self._audit.record(conn, actor_id=None, actor="cli", org_id=province["id"],
                                     action="operator.create", target=f"cadre:{account.id}",
                                     detail={"username": username, "duty": duty})
        return account

    async def create_account(self, actor: Actor, *, username: str, display_name: str, org_id: int,
                             role: str, duty: str, permissions: set[str], password: str,
                             replace: bool = False) -> NewAccount:
        actor.require("account.manage")
        if role not in ("super_admin", "cadre") or duty not in DUTY_LIMITS:
            raise InvalidInput("角色应为 super_admin 或 cadre", code="role_invalid")
        granted = grantable(actor, set(permissions), duty)
        async with self._pool.acquire() as conn:
            union = await store.org(conn, org_id)
        if union is None:
            raise NotFound("没有这个工会组织", code="org_not_found")
        actor.require_within(union["path"])
        if role == "super_admin" and actor.role != "operator":
            raise Forbidden("各级工会的超级管理员由平台统一创建", code="super_admin_by_platform")
        if role == "cadre" and (actor.role != "super_admin" or org_id != actor.org_id):
            raise Forbidden("工会干部账号由本单位超级管理员创建", code="cadre_by_own_super_admin")
        hashed = await self._credentials(username, display_name, password)  # no transaction open
        async with self._pool.acquire() as conn, conn.transaction():
            previous = await store.active_super_admin(conn, org_id) if role == "super_admin" else None
            if previous and not replace:
                raise Conflict("该工会已有超级管理员；更换请选择“更换”并备案", code="super_admin_exists")
            if previous:
                await store.disable(conn, previous)
                await log_change(conn, "cadre", str(previous), "disabled", changed_by(actor.id),
                                 {"reason": "replaced"})
                await self._end_sessions(previous, "replaced")
            account = await self._create(conn, username=username, display_name=display_name,
                                         org_id=org_id, role=role, duty=duty, hashed=hashed,
                                         permissions=granted, created_by=actor.id)
            if role == "super_admin":
                await store.file_super_admin(conn, org_id, account.id,
                                             "replaced" if previous else "appointed", actor.id)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action=f"{role}.create", target=f"cadre:{account.id}", ip=actor.ip,
                                     detail={"username": username, "org": org_id, "duty": duty,
                                             "permissions": sorted(granted), "replaced": previous})
        return account

    async def set_permissions(self, actor: Actor, cadre_id: int, permissions: set[str]) -> list[str]:
        """Grant: to a cadre of one's own union, or to the super admin of a lower union."""
        actor.require("account.manage")
        async with self._pool.acquire() as conn, conn.transaction():
            target = await store.get(conn, cadre_id, lock=True)
            if target is None or not actor.covers(target["org_path"]):
                raise NotFound("没有这个账号", code="cadre_not_found")  # outside: as if absent
            if target["id"] == actor.id:
                raise Forbidden("不能给自己授权", code="self_grant")
            own_cadre = target["org_id"] == actor.org_id and target["role"] == "cadre"
            lower_admin = target["org_id"] != actor.org_id and target["role"] == "super_admin"
            if not (own_cadre or lower_admin or actor.role == "operator"):
                raise Forbidden("只能给本单位干部或下级工会超级管理员授权", code="grant_target_invalid")
            granted = grantable(actor, set(permissions), target["duty"])
            await store.set_grants(conn, cadre_id, sorted(granted), actor.id)
            await log_change(conn, "cadre", str(cadre_id), "permissions_changed", changed_by(actor.id),
                             {"permissions": sorted(granted)})
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action="permissions.set", target=f"cadre:{cadre_id}", ip=actor.ip,
                                     detail={"before": list(target["permissions"]), "after": sorted(granted)})
        return sorted(granted)  # sessions read permissions per request: effective at once

    async def list_cadres(self, actor: Actor) -> list[dict]:
        actor.require("account.manage")
        async with self._pool.acquire() as conn:
            rows = await store.list_within(conn, actor.org_path)
        return [{"id": r["id"], "username": r["username"], "display_name": r["display_name"],
                 "org": {"id": r["org_id"], "name": r["org_name"]}, "role": r["role"],
                 "duty": r["duty"], "status": r["status"], "permissions": list(r["permissions"]),
                 "verified_at": r["verified_at"].isoformat()} for r in rows]

    async def filings(self, actor: Actor) -> list[dict]:
        actor.require("account.manage")
        async with self._pool.acquire() as conn:
            rows = await store.filings_visible_to(conn, actor.org_path)
        return [{"id": r["id"], "union": r["org_name"], "username": r["username"],
                 "name": r["display_name"], "action": r["action"],
                 "filed_at": r["filed_at"].isoformat()} for r in rows]

    async def list_orgs(self, actor: Actor) -> list[dict]:
        async with self._pool.acquire() as conn:
            rows = await store.orgs_within(conn, actor.org_path)
        return [dict(r) for r in rows]

    # --- periodic verification (定期核实) -------------------------------------------------------
    def _may_verify(self, actor: Actor, row: asyncpg.Record) -> bool:
        """A super admin re-confirms its own union's cadres and its lower unions' super admins;
        the platform office re-confirms super admins."""
        if row["id"] == actor.id or not actor.covers(row["org_path"]) or row["role"] == "operator":
            return False
        if actor.role == "operator":
            return row["role"] == "super_admin"
        return (row["org_id"] == actor.org_id and row["role"] == "cadre") or \
            (row["org_id"] != actor.org_id and row["role"] == "super_admin")

    async def verification_queue(self, actor: Actor) -> dict:
        actor.require("account.manage")
        days = self._s.verification_days
        async with self._pool.acquire() as conn:
            rows = await store.list_within(conn, actor.org_path)
        now = self._now().timestamp()
        out = []
        for r in rows:
            if r["status"] != "active" or not self._may_verify(actor, r):
                continue
            due = r["verified_at"].timestamp() + days * 86_400
            state = "overdue" if due < now else "due_soon" if due - now < 14 * 86_400 else "ok"
            out.append({"id": r["id"], "username": r["username"], "display_name": r["display_name"],
                        "org": {"id": r["org_id"], "name": r["org_name"]},
                        "verified_at": r["verified_at"].isoformat(),
                        "due_at": datetime.fromtimestamp(due, CHINA).isoformat(timespec="seconds"),
                        "state": state})
        out.sort(key=lambda c: c["due_at"])
        return {"days": days, "cadres": out}

    async def verify(self, actor: Actor, cadre_id: int) -> str:
        actor.require("account.manage")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.get(conn, cadre_id, lock=True)
            if row is None or not actor.covers(row["org_path"]):
                raise NotFound("没有这个账号", code="cadre_not_found")
            if not self._may_verify(actor, row) or row["status"] != "active":
                raise Forbidden("只能核实本单位干部或下级工会超级管理员的账号", code="verify_target_invalid")
            done = await store.mark_verified(conn, cadre_id)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action="cadre.verify", target=f"cadre:{cadre_id}", ip=actor.ip)
        return done["verified_at"].isoformat()

    async def sweep_overdue(self, grace_days: int = 14) -> list[str]:
        """Disable accounts not re-confirmed within ``verification_days`` + ``grace_days``
        (run daily: ``wxbackend admin sweep``)."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await store.overdue(conn, self._s.verification_days + grace_days)
            for r in rows:
                await store.disable(conn, r["id"])
                await log_change(conn, "cadre", str(r["id"]), "disabled", "system",
                                 {"reason": "verification_overdue"})
                await self._audit.record(conn, actor_id=None, actor="system", org_id=r["org_id"],
                                         action="cadre.disable_overdue", target=f"cadre:{r['id']}")
        for r in rows:
            await self._end_sessions(r["id"], "disabled")
        return [r["username"] for r in rows]

    # --- the audit view and the work ledger ---------------------------------------------------
    async def audit_records(self, actor: Actor, before: int | None, limit: int = 50) -> dict:
        actor.require("audit.read")
        limit = max(1, min(limit, 200))
        async with self._pool.acquire() as conn:
            rows = await store.audit_within(conn, actor.org_path, before, limit)
        records = [{"id": r["id"], "at": r["at"].isoformat(), "actor": r["actor"],
                    "union": r["org_name"], "action": r["action"], "target": r["target"],
                    "detail": r["detail"], "ip": r["ip"]} for r in rows]
        return {"records": records, "next_before": records[-1]["id"] if len(records) == limit else None}

    async def ledger_xlsx(self, actor: Actor) -> tuple[bytes, str]:
        """The work ledger (工作台账) of account changes in the actor's subtree, as XLSX,
        watermarked with who exported it and when; the export itself is audited."""
        actor.require("account.manage")
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await store.audit_within(conn, actor.org_path, None, 100_000, LEDGER_ACTIONS)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action="ledger.export", ip=actor.ip, detail={"rows": len(rows)})
        now = self._now()
        data = await asyncio.get_running_loop().run_in_executor(
            None, _ledger_workbook, [tuple(r.values()) for r in rows], actor.username,
            now.strftime("%Y-%m-%d %H:%M:%S"))
        return data, f"工作台账-{now:%Y%m%d%H%M%S}.xlsx"

    # --- sign-in -------------------------------------------------------------------------------
    def _actor(self, row: asyncpg.Record, ip: str = "") -> Actor:
        return Actor(id=row["id"], username=row["username"], org_id=row["org_id"],
                     org_path=row["org_path"], role=row["role"], duty=row["duty"],
                     permissions=frozenset(row["permissions"]), ip=ip)

    async def _throttle(self, ip: str, username: str, now: datetime) -> None:
        """Per address first (a blocked address uses no username's quota), then per username;
        both before any hashing, so a flood is answered cheaply."""
        minute, minute_ends = minute_window(now)
        [from_ip] = await self._counter.hit({f"admin:login:ip:{ip}:{minute}": minute_ends})
        if from_ip > self._s.login_per_ip_minute:
            self._refused.refuse(ip, minute_ends)
            raise _login_throttled(minute_ends, now)
        hour, hour_ends = hour_window(now)
        [for_name] = await self._counter.hit({f"admin:login:user:{_digest(username)[:32]}:{hour}": hour_ends})
        if for_name > self._s.login_per_username_hour:
            raise _login_throttled(hour_ends, now)

    def refusal(self, ip: str) -> tuple[TooManyRequests, int] | None:
        """The 429 for an address this process refused earlier in the same minute, and how many
        times it has been answered so since: the server's front answers it without a handler or
        a Redis round trip. None when the address may try (its counters then decide)."""
        now = self._now()
        seen = self._refused.check(ip, int(now.timestamp()))
        if seen is None:
            return None
        until, times = seen
        return _login_throttled(until, now), times

    async def login(self, *, username: str, password: str, totp: str, ip: str,
                    user_agent: str) -> Session:
        """One answer (401 login_failed) and the same Argon2 work for an unknown username, a
        wrong password or code, a locked and a disabled account."""
        name = (username or "").strip().lower()
        now = self._now()
        await self._throttle(ip, name, now)
        row = None
        if _USERNAME.match(name):
            async with self._pool.acquire() as conn:  # a short read; nothing held while hashing
                row = await store.get_by_username(conn, name)
        matches = await self._hashing.matches(row["password_hash"] if row else None, password or "")
        if row is None:
            raise LoginFailed()
        device = hashlib.sha256(f"{user_agent}|{ip}".encode()).hexdigest()[:32]
        device_locked_until = await self._redis.get(f"admin:lock:{row['id']}:{device}")
        device_locked = float(device_locked_until or 0) > now.timestamp()
        blocked = row["status"] != "active" or _locked(row, now) or device_locked
        step = self._check_totp(row, totp, now) if matches and not blocked else False
        if step is not False:
            async with self._pool.acquire() as conn, conn.transaction():
                # Conditional: a code used meanwhile, a password changed or a lock set since
                # the read above all make this sign-in fail.
                signed_in = await store.login_succeeded(
                    conn, row["id"], row["password_hash"], step if isinstance(step, int) else None, now)
                if signed_in:
                    new_device = await store.see_device(conn, row["id"], device, ip)
                    await self._audit.record(conn, actor_id=row["id"], actor=row["username"],
                                             org_id=row["org_id"], ip=ip,
                                             action="login.new_device" if new_device else "login",
                                             detail={"user_agent": user_agent[:200]})
            if signed_in:
                await self._redis.delete(f"admin:fail:dev:{row['id']}:{device}")
                if self._hashing.needs_rehash(row["password_hash"]):
                    hashed = await self._hashing.hash(password)
                    async with self._pool.acquire() as conn:
                        await store.set_password(conn, row["id"], hashed, expected=row["password_hash"])
                return await self._open_session(self._actor(row, ip), new_device,
                                                failed_attempts=row["failed_logins"])
        if row["status"] == "active":
            await self._login_failed(row, device, ip, now, blocked, device_locked)
        raise LoginFailed()

    async def _login_failed(self, row: asyncpg.Record, device: str, ip: str, now: datetime,
                            blocked: bool, device_locked: bool) -> None:
        """Count a failure for this device and for the account. ``lockout_failures`` from one
        device lock that device out; ``account_lockout_failures`` in a clock hour from anywhere
        lock the account for everyone (what MLPS level 3 asks for, at a price an attacker pays)."""
        lock_ends = int(now.timestamp()) + self._s.lockout_minutes * 60
        hour, hour_ends = hour_window(now)
        on_device, on_account = await self._counter.hit({
            f"admin:fail:dev:{row['id']}:{device}": lock_ends,
            f"admin:fail:acct:{row['id']}:{hour}": hour_ends})
        # A failure while locked does not extend the lock: the cadre trying again does not lock
        # himself out longer. Once it lapses, further failures count towards the next lock.
        if on_device >= self._s.lockout_failures and not device_locked:
            # the value is the lock's end by the service's clock; the expiry is Redis's own
            await self._redis.set(f"admin:lock:{row['id']}:{device}", lock_ends, exat=lock_ends)
        locked_until = now + timedelta(minutes=self._s.account_lockout_minutes) \
            if on_account >= self._s.account_lockout_failures and not _locked(row, now) else None
        async with self._pool.acquire() as conn, conn.transaction():
            await store.login_failed(conn, row["id"], locked_until)
            await self._audit.record(conn, actor_id=row["id"], actor=row["username"], org_id=row["org_id"],
                                     action="login.failed", ip=ip,
                                     detail={"failures": on_device, "account_failures_hour": on_account,
                                             "while_locked": blocked,
                                             "device_locked": device_locked
                                             or on_device >= self._s.lockout_failures,
                                             "account_locked": locked_until is not None})

    def _check_totp(self, row: asyncpg.Record, totp: str, now: datetime) -> int | bool:
        """False for a wrong or reused code; otherwise the TOTP time step used (or True when
        the account has no second factor)."""
        if row["totp_secret_enc"] is None:
            return True
        secret = self._pii.decrypt(row["totp_secret_enc"], TOTP_COLUMN)
        at = int(now.timestamp())
        for step in (at // 30, at // 30 - 1, at // 30 + 1):  # one step of clock drift
            if secrets.compare_digest(pyotp.TOTP(secret).at(step * 30), totp or ""):
                last = row["totp_last_step"]
                return False if last is not None and step <= last else step  # used once
        return False

    # --- sessions (Redis) ----------------------------------------------------------------------
    async def _open_session(self, actor: Actor, new_device: bool, *, failed_attempts: int = 0) -> Session:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        idle = self._s.session_idle_minutes * 60
        previous = await self._redis.get(f"admin:current:{actor.id}")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"admin:sess:{_digest(token)}", json.dumps({"cadre_id": actor.id, "csrf": csrf,
                                                                 "ip": actor.ip}), ex=idle)
            pipe.set(f"admin:current:{actor.id}", _digest(token), ex=idle)  # slides with the session
            if previous:
                pipe.delete(f"admin:sess:{previous}")
                pipe.set(f"admin:ended:{previous}", "replaced", ex=86_400)
            await pipe.execute()
        return Session(token, csrf, actor, new_device, replaced_other=bool(previous),
                       failed_attempts=failed_attempts)

    async def _end_sessions(self, cadre_id: int, reason: str) -> None:
        current = await self._redis.get(f"admin:current:{cadre_id}")
        if current:
            await self._redis.delete(f"admin:sess:{current}", f"admin:current:{cadre_id}")
            await self._redis.set(f"admin:ended:{current}", reason, ex=86_400)

    async def authenticate(self, token: str | None, ip: str = "") -> tuple[Actor, str]:
        """The actor behind a session token (and its CSRF token); slides the idle timeout."""
        if not token or len(token) > 128:
            raise Unauthenticated("请先登录", code="unauthenticated")
        key = f"admin:sess:{_digest(token)}"
        raw = await self._redis.get(key)
        if raw is None:
            reason = await self._redis.get(f"admin:ended:{_digest(token)}")
            if reason == "replaced":
                raise Unauthenticated("您的账号已在其他地方登录，本次会话已结束", code="session_replaced")
            raise Unauthenticated("登录已超时，请重新登录", code="session_expired")
        session = json.loads(raw)
        await self._slide(keys=[key, f"admin:current:{session['cadre_id']}"],
                          args=[_digest(token), self._s.session_idle_minutes * 60])
        async with self._pool.acquire() as conn:
            row = await store.get(conn, session["cadre_id"])
        if row is None or row["status"] != "active":
            await self._redis.delete(key)
            raise Unauthenticated("账号已停用", code="account_disabled")
        return self._actor(row, ip), session["csrf"]

    async def logout(self, token: str, actor: Actor) -> None:
        await self._redis.delete(f"admin:sess:{_digest(token)}")
        async with self._pool.acquire() as conn, conn.transaction():
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action="logout", ip=actor.ip)

    async def change_password(self, actor: Actor, old: str, new: str) -> None:
        """Read, release, verify and hash, then a short conditional write: no connection is
        held across the Argon2 work (up to ``password_history`` + 2 runs)."""
        async with self._pool.acquire() as conn:
            row = await store.get(conn, actor.id)
            history = await store.password_history(conn, actor.id, self._s.password_history)
        if not await self._hashing.matches(row["password_hash"], old or ""):
            raise InvalidInput("原密码不正确", code="password_wrong")
        self.check_password_rules(new, row["username"])
        for old_hash in history:
            if await self._hashing.matches(old_hash, new):
                raise InvalidInput(f"新密码不能与最近 {self._s.password_history} 次使用过的密码相同",
                                   code="password_reused")
        hashed = await self._hashing.hash(new)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await store.set_password(conn, actor.id, hashed, expected=row["password_hash"]):
                raise Conflict("密码刚刚已被修改，请重新操作", code="password_changed_meanwhile")
            await store.add_password_history(conn, actor.id, hashed)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action="password.change", ip=actor.ip)

    @staticmethod
    def catalogue() -> dict[str, str]:
        return dict(CATALOGUE)
