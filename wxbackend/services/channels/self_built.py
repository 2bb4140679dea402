"""A city or provincial industry union building its own channel (自建频道), from the application
to retirement, as the usage arrangement sets it out:

applied → approved (or rejected, with reasons) → built by the union → accepted (验收: uniformity,
content norms and security, with the automated conformance report) → connected (its entrance
enabled) → suspended ⇄ connected → retired.

The union applies (``channel.review`` in its subtree); the platform office — cadres of the
province union holding ``channel.review`` — decides every later step. Each step reaches the
union's reviewers and those of every union above as news in their console until they open it.
Approval registers the channel's entrance with the shared platform API (its secret shown once,
to the approver, to hand over). Until connected, and again once suspended or retired, the union
publishes in the common channel. Every step is audited, kept in the application's history
(which the union and every union above it see), and in the work ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.channels.conformance import ConformanceCheck
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.identity.platform import SCOPES, PlatformApps
from wxbackend.store.channels import channels as store

REVIEW = "channel.review"
APPLYING_KINDS = frozenset({"city", "industry"})
STATUS_NAMES = {"applied": "已申请", "approved": "已批准建设", "rejected": "未批准",
                "accepted": "已验收", "connected": "已接入", "suspended": "已暂停",
                "retired": "已退出"}
# Which step may follow which, and whether it needs a reason.
STEPS = {
    "approve": (("applied",), "approved", False),
    "reject": (("applied",), "rejected", True),
    "accept": (("approved",), "accepted", False),
    "connect": (("accepted",), "connected", False),
    "suspend": (("connected",), "suspended", True),
    "resume": (("suspended",), "connected", False),
    "retire": (("approved", "accepted", "connected", "suspended"), "retired", True),
}
TEXTS = {"plan": ("建设方案", 2000), "reasons": ("申请理由", 1000),
         "hosting": ("部署环境（政务云）", 100), "mlps_report": ("等保三级测评报告编号", 60),
         "police_filing": ("公安备案号", 60)}
MAX_REDIRECTS = 5


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_application")


def _https(value: object, name: str) -> str:
    if not isinstance(value, str) or len(value) > 300:
        raise _invalid(f"{name}须为 HTTPS 地址")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.fragment or "*" in value:
        raise _invalid(f"{name}须为完整的 HTTPS 地址（不含 # 和通配符）：{value}")
    return value


def clean_application(body: dict) -> tuple[dict, list[int]]:
    if not isinstance(body, dict):
        raise _invalid("请求内容须为 JSON 对象")
    unknown = set(body) - set(TEXTS) - {"entrance_url", "redirect_uris", "scopes", "attachments"}
    if unknown:
        raise _invalid(f"未知的字段：{', '.join(sorted(unknown))}")
    plan = {}
    for key, (name, limit) in TEXTS.items():
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _invalid(f"请填写{name}")
        if len(value) > limit:
            raise _invalid(f"{name}不能超过 {limit} 个字")
        plan[key] = value.strip()
    if "政务云" not in plan["hosting"]:
        raise _invalid("自建频道须部署在政务云上，请在部署环境中写明所用政务云")
    plan["entrance_url"] = _https(body.get("entrance_url"), "频道入口")
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not 1 <= len(uris) <= MAX_REDIRECTS:
        raise _invalid(f"请填写 1 至 {MAX_REDIRECTS} 个单点登录回调地址")
    host = urlsplit(plan["entrance_url"]).hostname
    plan["redirect_uris"] = []
    for uri in uris:
        if urlsplit(_https(uri, "回调地址")).hostname != host:
            raise _invalid(f"回调地址须在频道入口的域名 {host} 下：{uri}")
        plan["redirect_uris"].append(uri)
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes) \
            or "sso" not in scopes or set(scopes) - set(SCOPES):
        raise _invalid(f"接口权限须包含 sso，且只能从这些中选：{', '.join(sorted(SCOPES))}")
    plan["scopes"] = sorted(set(scopes))
    attachments = body.get("attachments") or []
    if not isinstance(attachments, list) or len(attachments) > 10 or not all(
            isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in attachments):
        raise _invalid("附件须为至多 10 个编号的列表")
    return plan, list(dict.fromkeys(attachments))


def _reason(value: object, required: bool) -> str:
    reason = " ".join(value.split()) if isinstance(value, str) else ""
    if required and not reason:
        raise InvalidInput("请填写理由", code="reason_missing")
    if len(reason) > 500:
        raise InvalidInput("理由不能超过 500 个字", code="reason_too_long")
    return reason


class SelfBuiltChannels:
    def __init__(self, pool: asyncpg.Pool, apps: PlatformApps, media: MediaLibrary,
                 conformance: ConformanceCheck, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._apps = apps
        self._media = media
        self._conformance = conformance
        self._audit = audit
        self._now = now

    @staticmethod
    def _office(actor: Actor) -> None:
        actor.require(REVIEW)
        if "." in actor.org_path:
            raise Forbidden("自建频道由平台办公室（省总工会）审批和验收", code="platform_office_only")

    async def _view(self, conn: asyncpg.Connection, row: asyncpg.Record) -> dict:
        steps = await store.steps(conn, row["id"])
        return {"news": bool(row.get("news", False)), "id": row["id"],
                "channel_id": row["channel_id"], "channel_name": row["channel_name"],
                "status": row["status"], "status_name": STATUS_NAMES[row["status"]],
                "plan": row["plan"], "attachments": row["attachments"],
                "platform_app_id": row["platform_app_id"], "conformance": row["conformance"],
                "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
                "history": [{"status": s["status"], "reason": s["reason"], "actor": s["actor"],
                             "actor_org": s["actor_org"], "at": s["at"].isoformat()} for s in steps]}

    async def _step(self, conn: asyncpg.Connection, actor: Actor, row: asyncpg.Record, status: str,
                    reason: str = "", detail: dict | None = None) -> None:
        await store.add_step(conn, application_id=row["id"], status=status, reason=reason,
                             detail=detail or {}, actor_id=actor.id,
                             actor_org=await conn.fetchval("SELECT name FROM orgs WHERE id = $1",
                                                           actor.org_id) or "",
                             now=self._now())
        await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=row["org_id"],
                                 action=f"channel_application.{status}",
                                 target=f"channel_application:{row['id']}",
                                 detail={"channel": row["slug"], "reason": reason, **(detail or {})},
                                 ip=actor.ip)

    async def _owned(self, conn: asyncpg.Connection, actor: Actor, application_id: int, *,
                     lock: bool = False) -> asyncpg.Record:
        row = await store.application(conn, application_id, lock=lock)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("申请不存在", code="application_not_found")
        return row

    async def apply(self, actor: Actor, channel_id: int, body: dict) -> dict:
        actor.require(REVIEW)
        plan, attachments = clean_application(body)
        async with self._pool.acquire() as conn, conn.transaction():
            channel = await store.get(conn, channel_id, lock=True)
            if channel is None:
                raise NotFound("频道不存在", code="channel_not_found")
            actor.require_within(channel["org_path"])
            if channel["org_kind"] not in APPLYING_KINDS:
                raise Forbidden("只有市（州）总工会和省级产业工会可以申请自建频道",
                                code="self_built_not_allowed")
            if await store.live_application(conn, channel_id) is not None:
                raise Conflict("该频道已有进行中的自建申请", code="application_exists")
            await self._media.owned(conn, actor.org_path, attachments, "attachment")
            app_id = await store.insert_application(conn, channel_id=channel_id, plan=plan,
                                                    attachments=attachments, created_by=actor.id,
                                                    now=self._now())
            row = await store.application(conn, app_id)
            await self._step(conn, actor, row, "applied")
            await store.mark_read(conn, actor.id, row["id"])
            return await self._view(conn, row)

    async def list(self, actor: Actor) -> list[dict]:
        """The applications of the actor's subtree; ``news`` marks those with a step the actor
        has not yet seen — how a union (and the unions above it) learn of each step."""
        actor.require(REVIEW)
        async with self._pool.acquire() as conn:
            return [await self._view(conn, r)
                    for r in await store.applications_within(conn, actor.org_path, actor.id)]

    async def get(self, actor: Actor, application_id: int) -> dict:
        """One application; reading it marks its steps seen."""
        actor.require(REVIEW)
        async with self._pool.acquire() as conn:
            row = await self._owned(conn, actor, application_id)
            await store.mark_read(conn, actor.id, application_id)
            return await self._view(conn, row)

    async def check(self, actor: Actor, application_id: int) -> dict:
        """Run the conformance report now and keep it with the application."""
        self._office(actor)
        async with self._pool.acquire() as conn:
            row = await self._owned(conn, actor, application_id)
            approved_at = await self._approved_at(conn, row)
        report = await self._conformance.report(row, approved_at)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._owned(conn, actor, application_id, lock=True)
            await store.set_application(conn, row["id"], status=row["status"], now=self._now(),
                                        conformance=report)
            await self._step(conn, actor, row, "checked", detail={"passed": report["passed"]})
            await store.mark_read(conn, actor.id, row["id"])
            return await self._view(conn, await store.application(conn, row["id"]))

    async def _approved_at(self, conn: asyncpg.Connection, row: asyncpg.Record) -> datetime:
        approved = [s["at"] for s in await store.steps(conn, row["id"]) if s["status"] == "approved"]
        if not approved:
            raise Conflict("申请尚未批准", code="application_state")
        return approved[-1]

    async def decide(self, actor: Actor, application_id: int, step: str, body: dict) -> dict:
        """One lifecycle step by the platform office; returns the application (and, on
        approval, the entrance's secret, shown this once)."""
        self._office(actor)
        if step not in STEPS:
            raise NotFound("未知的操作", code="not_found")
        allowed, status, needs_reason = STEPS[step]
        reason = _reason(body.get("reason"), needs_reason)
        if step == "accept":
            checks = {k: body.get(k) for k in ("uniformity", "content", "security")}
            if not all(v is True for v in checks.values()):
                raise InvalidInput("验收须确认标准统一、内容规范和网络安全三项均已通过",
                                   code="acceptance_incomplete")
        async with self._pool.acquire() as conn:
            row = await self._owned(conn, actor, application_id)
        if row["status"] not in allowed:
            raise Conflict(f"申请{STATUS_NAMES[row['status']]}，不能进行此操作", code="application_state")
        if step == "accept" and not (row["conformance"] or {}).get("passed"):
            raise Conflict("自动符合性检查尚未通过，请先运行检查", code="conformance_failed")
        secret = None
        if step == "approve":
            app, secret = await self._apps.create_app(
                app_id=f"channel-{row['slug']}-{row['id']}", name=row["channel_name"],
                org_code=await self._org_code(row["org_id"]), scopes=row["plan"]["scopes"],
                redirect_uris=row["plan"]["redirect_uris"], by=actor.username)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._owned(conn, actor, application_id, lock=True)
            if row["status"] not in allowed:  # another office cadre was quicker
                raise Conflict(f"申请{STATUS_NAMES[row['status']]}，不能进行此操作",
                               code="application_state")
            now = self._now()
            await store.set_application(conn, row["id"], status=status, now=now,
                                        platform_app_id=app.app_id if step == "approve" else None)
            if status == "connected":
                await store.set_mode(conn, row["channel_id"], "self_built", row["plan"]["entrance_url"], now)
            elif status in ("suspended", "retired"):
                await store.set_mode(conn, row["channel_id"], "common", None, now)
            detail = {"checks": {k: True for k in ("uniformity", "content", "security")}} \
                if step == "accept" else {}
            await self._step(conn, actor, row, status, reason, detail)
            await store.mark_read(conn, actor.id, row["id"])
            view = await self._view(conn, await store.application(conn, row["id"]))
        if row["platform_app_id"] and status in ("suspended", "retired", "connected"):
            await self._apps.set_status(row["platform_app_id"], status == "connected")
        if secret is not None:
            view["platform_secret"] = secret
        return view

    async def _org_code(self, org_id: int) -> str:
        async with self._pool.acquire() as conn:
            return await conn.fetchval("SELECT code FROM orgs WHERE id = $1", org_id)
