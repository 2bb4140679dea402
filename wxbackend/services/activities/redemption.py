"""Redemption (核销) and check-in: a confirmed place is used exactly once.

* The worker's code is a short-lived signed token for their confirmed place (rotating like the
  member card: a screenshot is good for two minutes at most), shown as a QR on their page.
* Verifiers are a merchant's or a venue's staff: accounts the organiser creates, bound to the
  items they may act on and nothing else, signing in on a phone page. A redemption sends the
  scanned code with a request id of the verifier's client; the place turns ``used`` in one
  conditional statement, so of ten verifiers scanning one code at once exactly one redeems it,
  and a retried request gets the first answer again.
* Check-in at an activity is the same act: staff (a verifier bound to the activity, or a cadre
  managing it) scan the worker's code; or the venue shows a rotating code on a screen (a token
  for the item, valid :data:`VENUE_MAX_AGE` seconds) that the worker scans with their own
  signed-in phone — a photo of the screen, or a printed copy, stops working within a minute.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime

import asyncpg
import redis.asyncio as aioredis

from wxbackend.infra.redis import WindowCounter, minute_window, retry_after
from wxbackend.services import signed_tokens
from wxbackend.services.activities.catalogue import PERMISSION
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.passwords import PasswordHashing
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.drawing import qr_png
from wxbackend.services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    Unauthenticated,
)
from wxbackend.services.identity.sessions import SessionStore
from wxbackend.services.membership.idnumbers import mask_name
from wxbackend.services.membership.membership import row_id
from wxbackend.store.activities import offerings as offerings_store
from wxbackend.store.activities import redemptions as store

CODE_MAX_AGE = 120     # seconds a worker's code is good for; their page refreshes it every minute
VENUE_MAX_AGE = 45     # the venue screen shows a new code every 30 seconds
LOGIN_PER_IP_MINUTE = 20
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,31}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CLAIM_CODE = signed_tokens.TokenKind(
    domain=b"offering-claim\x00",
    invalid=("券码无效，请职工出示本人页面上的券码", "code_invalid"),
    expired=("券码已过期，请职工刷新页面后重新出示", "code_expired"))
VENUE_CODE = signed_tokens.TokenKind(
    domain=b"offering-venue\x00",
    invalid=("签到码无效，请扫描现场屏幕上的签到码", "venue_code_invalid"),
    expired=("签到码已过期，请扫描现场屏幕上最新的签到码", "venue_code_expired"))


def code_key(index_key: bytes) -> bytes:
    """The codes' key, derived from the blind-index key (nothing new to configure or rotate)."""
    return signed_tokens.derived_key(index_key, b"offering-codes-v1")


class Redemption:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, key: bytes, *,
                 sessions: SessionStore, audit: AuditTrail, hashing: PasswordHashing,
                 public_url: str, now: Callable[[], datetime] = china_now) -> None:
        self._public_url = public_url.rstrip("/")
        self._pool = pool
        self._key = key
        self._sessions = sessions
        self._audit = audit
        self._hashing = hashing
        self._now = now
        self._counter = WindowCounter(redis)

    def _unix(self) -> int:
        return int(self._now().timestamp())

    # --- the worker's side --------------------------------------------------------------------
    async def code_for(self, account_id: int, claim_id: int) -> dict:
        """The code to show for one's own confirmed place."""
        async with self._pool.acquire() as conn:
            row = await store.claim_for_scan(conn, claim_id)
        if row is None or row["account_id"] != account_id:
            raise NotFound("未找到该报名记录", code="claim_not_found")
        if row["status"] == "used":
            raise Conflict("该名额已使用", code="already_used")
        if row["status"] != "confirmed":
            raise Conflict("确认名额后才能出示券码", code="claim_state")
        code = signed_tokens.issue(self._key, CLAIM_CODE, claim_id, self._unix())
        # The QR opens the verifier's page with the code: any phone camera scans it, no app needed.
        return {"code": code, "url": f"{self._public_url}/verify/#code={code}",
                "expires_in": CODE_MAX_AGE, "refresh_in": CODE_MAX_AGE // 2}

    async def code_png(self, account_id: int, claim_id: int) -> bytes:
        """The code as a QR image for the worker's page."""
        shown = await self.code_for(account_id, claim_id)
        return await asyncio.get_running_loop().run_in_executor(None, qr_png, shown["url"])

    async def check_in_at_venue(self, account_id: int, offering_id: int, venue_code: str) -> dict:
        """The worker scanned the venue's screen with their own phone."""
        subject, _ = signed_tokens.read(self._key, VENUE_CODE, venue_code, self._unix(), VENUE_MAX_AGE)
        if subject != offering_id:
            raise VENUE_CODE.refuse(VENUE_CODE.invalid)
        async with self._pool.acquire() as conn, conn.transaction():
            place = await store.confirmed_place(conn, offering_id, account_id)
            if place is None:
                raise Conflict("您没有该活动已确认的名额", code="no_place")
            if place["status"] == "used":
                raise Conflict("您已签到", code="already_used")
            row = await store.claim_for_scan(conn, place["id"])
            self._check_window(row)
            used = await store.use(conn, place["id"], [offering_id], "现场签到码", self._now())
            if used is None:
                raise Conflict("您已签到", code="already_used")
        return {"signup_id": used["id"], "used_at": used["used_at"].isoformat()}

    # --- cadres: verifiers and the venue code ----------------------------------------------------
    async def _items_in_reach(self, conn: asyncpg.Connection, actor: Actor,
                              offering_ids: list[int]) -> None:
        for offering_id in offering_ids:
            row = await offerings_store.get(conn, offering_id)
            if row is None or not actor.covers(row["org_path"]):
                raise NotFound("未找到该活动或服务", code="item_not_found")
            actor.require(PERMISSION[row["kind"]])

    async def create_verifier(self, actor: Actor, body: dict) -> dict:
        """A verifier account bound to items of the actor's subtree; its first password is
        answered once and never stored in clear."""
        username = str(body.get("username") or "").strip().lower()
        display_name = str(body.get("display_name") or "").strip()
        offering_ids = body.get("offering_ids")
        if not _USERNAME.match(username):
            raise InvalidInput("用户名为 3–32 位小写字母、数字、点、下划线或短横线", code="invalid_username")
        if not 1 <= len(display_name) <= 40:
            raise InvalidInput("请填写核销员名称（不超过 40 字）", code="invalid_input")
        if not isinstance(offering_ids, list) or not 1 <= len(offering_ids) <= 50 or \
                not all(row_id(o) for o in offering_ids):
            raise InvalidInput("请选择可核销的活动或服务（1–50 项）", code="invalid_input")
        offering_ids = sorted(set(offering_ids))
        async with self._pool.acquire() as conn:
            await self._items_in_reach(conn, actor, offering_ids)
        password = secrets.token_urlsafe(12)
        hashed = await self._hashing.hash(password)  # no connection held while hashing
        async with self._pool.acquire() as conn, conn.transaction():
            await self._items_in_reach(conn, actor, offering_ids)
            try:
                verifier_id = await store.insert_verifier(
                    conn, org_id=actor.org_id, username=username, display_name=display_name,
                    password_hash=hashed, created_by=actor.id, offering_ids=offering_ids, now=self._now())
            except asyncpg.UniqueViolationError:
                raise Conflict("该用户名已被使用", code="username_taken") from None
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action="verifier.create", target=f"verifier:{verifier_id}",
                                     detail={"username": username, "offering_ids": offering_ids},
                                     ip=actor.ip)
            row = await store.verifier(conn, verifier_id)
        return {"verifier": _verifier_view(row), "password": password}

    async def verifiers(self, actor: Actor) -> list[dict]:
        if not ({"activity.manage", "service.manage"} & actor.permissions):
            actor.require("service.manage")
        async with self._pool.acquire() as conn:
            return [_verifier_view(r) for r in await store.verifiers_within(conn, actor.org_path)]

    async def disable_verifier(self, actor: Actor, verifier_id: int) -> dict:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.verifier(conn, verifier_id)
            if row is None or not actor.covers(row["org_path"]):
                raise NotFound("未找到该核销员", code="verifier_not_found")
            await self._items_in_reach(conn, actor, list(row["offering_ids"]))
            await store.disable_verifier(conn, verifier_id, self._now())
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=row["org_id"],
                                     action="verifier.disable", target=f"verifier:{verifier_id}",
                                     detail={"username": row["username"]}, ip=actor.ip)
            row = await store.verifier(conn, verifier_id)
        return _verifier_view(row)

    async def venue_code(self, actor: Actor, offering_id: int) -> dict:
        """The rotating code a venue's screen shows (the console page refreshes it)."""
        async with self._pool.acquire() as conn:
            await self._items_in_reach(conn, actor, [offering_id])
        code = signed_tokens.issue(self._key, VENUE_CODE, offering_id, self._unix())
        return {"code": code, "url": f"{self._public_url}/h5/checkin.html#o={offering_id}&code={code}",
                "refresh_in": 30, "expires_in": VENUE_MAX_AGE}

    async def venue_code_png(self, actor: Actor, offering_id: int) -> bytes:
        """The venue's code as a large QR for its screen: scanned, it opens the worker's check-in
        page signed in as the worker."""
        shown = await self.venue_code(actor, offering_id)
        return await asyncio.get_running_loop().run_in_executor(None, qr_png, shown["url"], 720)

    async def check_in_by_cadre(self, actor: Actor, offering_id: int, code: str) -> dict:
        """A cadre managing the item scans a worker's code at the door."""
        async with self._pool.acquire() as conn:
            await self._items_in_reach(conn, actor, [offering_id])
        status, answer = await self._use(code, [offering_id], f"干部 {actor.username}")
        if status != 200:
            raise _as_error(status, answer)
        return answer

    # --- verifiers ---------------------------------------------------------------------------
    async def sign_in(self, username: str, password: str, ip: str) -> dict:
        now = self._now()
        minute, ends = minute_window(now)
        [tries] = await self._counter.hit({f"verifier:login:ip:{ip}:{minute}": ends})
        if tries > LOGIN_PER_IP_MINUTE:
            raise TooManyRequests("登录尝试过于频繁，请稍后再试", code="login_throttled",
                                  headers={"Retry-After": retry_after(ends, now)})
        name = (username or "").strip().lower()
        row = None
        if _USERNAME.match(name):
            async with self._pool.acquire() as conn:
                row = await store.verifier_by_username(conn, name)
        matches = await self._hashing.matches(row["password_hash"] if row else None, password or "")
        if row is None or not matches or row["disabled_at"] is not None:
            raise Unauthenticated("用户名或密码错误", code="login_failed")
        token = await self._sessions.create(row["id"], {"verifier_id": row["id"]})
        return {"token": token, "verifier": _verifier_view(row)}

    async def verifier(self, token: str | None) -> dict:
        """The signed-in verifier of a session (disabled ones are signed out)."""
        session = await self._sessions.get(token)
        if session is None or "verifier_id" not in session:
            raise Unauthenticated()
        async with self._pool.acquire() as conn:
            row = await store.verifier(conn, int(session["verifier_id"]))
        if row is None or row["disabled_at"] is not None:
            await self._sessions.revoke(token or "")
            raise Unauthenticated("账号已停用", code="account_disabled")
        return _verifier_view(row)

    async def sign_out(self, token: str | None) -> None:
        if token:
            await self._sessions.revoke(token)

    async def redeem(self, verifier: dict, code: str, request_id: str) -> tuple[int, dict]:
        """(status, answer) of one scan; the same request again gets the same answer."""
        if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
            raise InvalidInput("缺少请求编号（request_id，8–64 位字母数字）", code="invalid_request_id")
        async with self._pool.acquire() as conn:
            earlier = await store.earlier(conn, verifier["id"], request_id)
        if earlier is not None:
            return earlier["status"], _json(earlier["answer"])
        status, answer = await self._use(code, verifier["offering_ids"],
                                         f"{verifier['display_name']}（{verifier['username']}）",
                                         remember=(verifier["id"], request_id))
        return status, answer

    async def _use(self, code: str, offering_ids: list[int], by: str, *,
                   remember: tuple[int, str] | None = None) -> tuple[int, dict]:
        now = self._now()
        code = code.rsplit("code=", 1)[-1].strip()  # the scanned URL, or the code typed in
        try:
            claim_id, _ = signed_tokens.read(self._key, CLAIM_CODE, code, self._unix(), CODE_MAX_AGE)
        except DomainError as exc:
            return exc.status, {"error": {"code": exc.code, "message": exc.message}}
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.claim_for_scan(conn, claim_id)
            if row is None or row["offering_id"] not in offering_ids:
                status, answer = 403, {"error": {"code": "other_item",
                                                 "message": "该券码不属于您可核销的活动或服务"}}
            else:
                status, answer = await self._use_place(conn, row, offering_ids, by, now)
            if remember is not None and not await store.remember(
                    conn, verifier_id=remember[0], request_id=remember[1],
                    claim_id=claim_id if row is not None else None, status=status, answer=answer,
                    now=now):
                raise Conflict("重复的请求正在处理，请稍后重试", code="request_in_flight")
        return status, answer

    async def _use_place(self, conn: asyncpg.Connection, row: asyncpg.Record,
                         offering_ids: list[int], by: str, now: datetime) -> tuple[int, dict]:
        try:
            self._check_window(row)
        except DomainError as exc:
            return exc.status, {"error": {"code": exc.code, "message": exc.message}}
        used = await store.use(conn, row["id"], offering_ids, by, now)
        if used is None:
            # Read again: a concurrent scan that won the row lock has committed by now.
            return _refusal(await store.claim_for_scan(conn, row["id"]))
        return 200, {"redeemed": True, "signup_id": row["id"], "title": row["title"],
                     "holder": mask_name(row["name"] or row["nickname"]),
                     "used_at": used["used_at"].isoformat()}

    def _check_window(self, row: asyncpg.Record) -> None:
        now = self._now()
        if now < (row["starts_at"] or row["opens_at"]):
            raise Conflict("尚未到使用时间", code="not_yet_valid")
        if row["ends_at"] is not None and now > row["ends_at"]:
            raise Conflict("已过使用期限", code="code_expired_window")



def _refusal(row: asyncpg.Record) -> tuple[int, dict]:
    if row["status"] == "used":
        when = row["used_at"].strftime("%m月%d日 %H:%M") if row["used_at"] else ""
        return 409, {"error": {"code": "already_used", "message": f"该券码已于 {when} 使用"}}
    return 409, {"error": {"code": "claim_state", "message": "该名额尚未确认或已失效"}}


def _as_error(status: int, answer: dict) -> DomainError:
    kind = {400: InvalidInput, 403: Forbidden}.get(status, Conflict)
    return kind(answer["error"]["message"], code=answer["error"]["code"])


def _json(value: object) -> dict:
    return json.loads(value) if isinstance(value, str) else dict(value)


def _verifier_view(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "username": row["username"], "display_name": row["display_name"],
            "org_id": row["org_id"], "offering_ids": list(row["offering_ids"]),
            "created_at": row["created_at"].isoformat(),
            "disabled_at": row["disabled_at"].isoformat() if row["disabled_at"] else None}

