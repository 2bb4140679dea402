"""Cadres decide what workers filed: join, certification disputes, transfers and foundings.

A decision is made by a cadre holding ``member.review`` whose subtree contains the union that
reviews the application (the union joined or moved to; for a founding, the upper union).
Approval writes the member record or the new union, the base-data change log, the audit trail
and the applicant's WeChat notification (through the outbox) in one transaction. Applications
not decided within ``review_days`` are overdue: they count against the completion-rate KPI.
"""

from __future__ import annotations

import logging
from datetime import date

import asyncpg

from wxbackend.config import MembershipSettings
from wxbackend.infra.pii import PersonalData
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.cadres import changed_by
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework import reporting
from wxbackend.services.clock import Clock, china_now, unix_time
from wxbackend.services.errors import Conflict, InvalidInput, NotFound
from wxbackend.services.membership import member_card
from wxbackend.services.membership.idnumbers import mask_name, parse_credit_code
from wxbackend.services.membership.membership import (
    KIND_NAMES,
    MEMBER_STATUS,
    PHONE_COLUMN,
    STATUS_NAMES,
    application_view,
    member_view,
    roster_check_view,
    row_id,
)
from wxbackend.services.messaging.outbox import custom_text
from wxbackend.store.identity import accounts as account_store
from wxbackend.store.membership import members as store
from wxbackend.store.membership import orgs as org_store
from wxbackend.store.messaging import outbox as outbox_store

log = logging.getLogger(__name__)


class ReviewService:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, settings: MembershipSettings, *,
                 oa_appid: str, h5_base: str, card_key: bytes, audit: AuditTrail,
                 now: Clock = china_now) -> None:
        self._pool = pool
        self._audit = audit
        self._now = now
        self._pii = pii
        self._s = settings
        self._oa_appid = oa_appid
        self._h5_base = h5_base
        self._card_key = card_key

    # --- the queue -----------------------------------------------------------------------------
    async def queue(self, actor: Actor, *, kind: str = "", status: str = "", overdue: bool = False,
                    before: int | None = None, limit: int = 50) -> dict:
        actor.require("member.review")
        if (kind and kind not in KIND_NAMES) or (status and status not in STATUS_NAMES):
            raise InvalidInput("筛选条件无效", code="invalid_filter")
        async with self._pool.acquire() as conn:
            rows = await store.review_queue(conn, subtree=actor.org_path, kind=kind or None,
                                            status=status or None, overdue=overdue, before=before,
                                            limit=max(1, min(limit, 200)))
            counts = await store.queue_counts(conn, actor.org_path)
        return {"applications": [self._cadre_view(actor, r) for r in rows], "counts": dict(counts)}

    def _cadre_view(self, actor: Actor, row: asyncpg.Record) -> dict:
        view = application_view(row, self._pii)
        # A transfer is decided by the union joined; the union left only watches it go.
        view["decidable"] = row["status"] == "pending" and actor.covers(row["org_path"])
        view["roster_check"] = roster_check_view(row)   # the worker was not told this
        return view

    async def get(self, actor: Actor, application_id: int) -> dict:
        actor.require("member.review")
        async with self._pool.acquire() as conn:
            row = await store.application(conn, application_id)
        if row is None or not (actor.covers(row["org_path"]) or
                               (row["from_org_path"] and actor.covers(row["from_org_path"]))):
            raise NotFound("未找到该申请", code="application_not_found")
        return self._cadre_view(actor, row)

    async def _pending(self, conn: asyncpg.Connection, actor: Actor, application_id: int) -> asyncpg.Record:
        actor.require("member.review")
        row = await store.application(conn, application_id, lock=True)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("未找到该申请", code="application_not_found")
        if row["status"] != "pending":
            raise Conflict(f"该申请已{STATUS_NAMES[row['status']]}，不能重复处理", code="application_decided")
        return row

    # --- decisions -----------------------------------------------------------------------------
    async def approve(self, actor: Actor, application_id: int) -> dict:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                row = await self._pending(conn, actor, application_id)
                member_id, org_id, detail = await getattr(self, f"_approve_{row['kind']}")(conn, actor, row)
                await store.decide(conn, application_id, status="approved", reviewed_by=actor.id,
                                   reason=None, member_id=member_id, result_org_id=org_id)
                await reporting.application_finished(conn, await store.application(conn, application_id),
                                                     actor_cadre_id=actor.id)
                await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=row["org_id"],
                                         action="application.approve", target=f"application:{application_id}",
                                         detail={"kind": row["kind"], **detail}, ip=actor.ip)
                await self._notify(conn, row, "已通过", "请在川工之家查看")
                return self._cadre_view(actor, await store.application(conn, application_id))
        except asyncpg.UniqueViolationError:
            # A roster import or another decision got there first (same ID number, account or
            # credit code): nothing of this decision was written.
            raise Conflict("申请人的会员信息或该单位的工会已在此期间建立，请刷新后重新处理",
                           code="changed_meanwhile") from None

    async def reject(self, actor: Actor, application_id: int, reason: str) -> dict:
        reason = (reason or "").strip()
        if not 2 <= len(reason) <= 200:
            raise InvalidInput("请填写不通过的原因（2–200 字），申请人会收到这条说明", code="reason_required")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._pending(conn, actor, application_id)
            await store.decide(conn, application_id, status="rejected", reviewed_by=actor.id, reason=reason)
            await reporting.application_finished(conn, await store.application(conn, application_id),
                                                 actor_cadre_id=actor.id)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=row["org_id"],
                                     action="application.reject", target=f"application:{application_id}",
                                     detail={"kind": row["kind"], "reason": reason}, ip=actor.ip)
            await self._notify(conn, row, "未通过", reason)
            return self._cadre_view(actor, await store.application(conn, application_id))

    async def _approve_join(self, conn: asyncpg.Connection, actor: Actor,
                            row: asyncpg.Record) -> tuple[int, None, dict]:
        if await store.member_by_id_number(conn, row["id_number_bidx"]) or \
                await store.member_of_account(conn, row["account_id"]):
            raise Conflict("申请人已有会员记录（可能已通过名册导入），请驳回并提示其进行会员认证",
                           code="already_member")
        form = dict(row["form"])
        phone = self._pii.decrypt(row["phone_enc"], PHONE_COLUMN)
        created = await store.create_member(
            conn, org_id=row["org_id"], name=row["name"], id_number_enc=row["id_number_enc"],
            id_number_bidx=row["id_number_bidx"], phone_enc=row["phone_enc"],
            phone_bidx=self._pii.blind_index(phone, PHONE_COLUMN), gender=form["gender"],
            birth_date=date.fromisoformat(form["birth_date"]), form=form,
            source="platform", account_id=row["account_id"], joined_on=self._now().date())
        await account_store.log_change(conn, "member", str(created["id"]), "joined", changed_by(actor.id),
                                       {"member_no": created["member_no"], "org_id": row["org_id"],
                                        "source": "platform"})
        return created["id"], None, {"member_no": created["member_no"]}

    async def _approve_certify(self, conn: asyncpg.Connection, actor: Actor,
                               row: asyncpg.Record) -> tuple[int, None, dict]:
        if await store.member_of_account(conn, row["account_id"]):
            raise Conflict("申请人的账号已认证会员信息", code="already_certified")
        member = await store.member_by_id_number(conn, row["id_number_bidx"], lock=True)
        if member is None:
            raise Conflict("本工会名册中没有该身份证号码的会员，请先导入名册或驳回申诉",
                           code="member_not_in_roster")
        if not actor.covers(member["org_path"]):
            raise Conflict("该会员属于其他工会，请驳回并提示其向所在工会申诉", code="member_elsewhere")
        if member["account_id"] is not None and member["account_id"] != row["account_id"]:
            # The cadre has checked the papers: the record moves to the rightful account.
            await account_store.log_change(conn, "member", str(member["id"]), "unlinked",
                                           changed_by(actor.id), {"member_no": member["member_no"]})
        await store.link_account(conn, member["id"], row["account_id"], name=row["name"])
        await account_store.log_change(conn, "member", str(member["id"]), "certified", changed_by(actor.id),
                                       {"member_no": member["member_no"], "via": "dispute"})
        return member["id"], None, {"member_no": member["member_no"]}

    async def _approve_transfer(self, conn: asyncpg.Connection, actor: Actor,
                                row: asyncpg.Record) -> tuple[int, None, dict]:
        member = await store.member(conn, row["member_id"])
        if member is None or member["org_id"] != row["from_org_id"] or member["status"] != "active":
            raise Conflict("会员的会籍已发生变化，请驳回该申请", code="member_changed")
        await store.move_member(conn, member["id"], row["org_id"])
        await account_store.log_change(conn, "member", str(member["id"]), "transferred", changed_by(actor.id),
                                       {"member_no": member["member_no"], "from_org_id": row["from_org_id"],
                                        "to_org_id": row["org_id"]})
        return member["id"], None, {"member_no": member["member_no"], "from_org_id": row["from_org_id"]}

    async def _approve_found(self, conn: asyncpg.Connection, actor: Actor,
                             row: asyncpg.Record) -> tuple[None, int, dict]:
        form = dict(row["form"])
        if await store.union_exists_for(conn, form["credit_code"]):
            raise Conflict("该单位已建立工会", code="union_exists")
        org = await org_store.create_grassroots(
            conn, parent_id=row["org_id"], name=form["union_name"], credit_code=form["credit_code"],
            employer_name=form["employer_name"], region_code=form["region_code"], founded_via_platform=True)
        await account_store.log_change(conn, "org", str(org["id"]), "founded", changed_by(actor.id),
                                       {"code": org["code"], "name": org["name"], "parent_id": row["org_id"],
                                        "founded_via_platform": True})
        return None, org["id"], {"org_id": org["id"], "org_code": org["code"]}

    async def _notify(self, conn: asyncpg.Connection, row: asyncpg.Record, result: str, note: str) -> None:
        """Tell the applicant through the Official Account (written with the decision, sent by
        the outbox worker)."""
        openid = await account_store.oa_openid(conn, row["account_id"], self._oa_appid)
        if openid is None:
            log.info("application %s: applicant has no Official Account identity; not notified", row["id"])
            return
        subject = KIND_NAMES[row["kind"]]
        url = f"{self._h5_base}/membership.html"
        if self._s.notify_template_id:
            payload = {"touser": openid, "template_id": self._s.notify_template_id, "url": url,
                       "client_msg_id": f"application-{row['id']}",
                       "data": {"thing1": {"value": subject}, "phrase2": {"value": result},
                                "time3": {"value": self._now().strftime("%Y-%m-%d %H:%M")},
                                "thing4": {"value": note[:20]}}}
            kind = "template"
        else:
            payload = custom_text(openid, f"您的{subject}{result}。{note}\n查看详情：{url}")
            kind = "custom"
        await outbox_store.enqueue(conn, kind, payload, f"application:{row['id']}:decision")

    # --- members, cards, unions ----------------------------------------------------------------
    async def members(self, actor: Actor, *, org_id: int | None = None, name: str = "",
                      before: int | None = None, limit: int = 50) -> list[dict]:
        actor.require("member.review")
        async with self._pool.acquire() as conn:
            rows = await store.list_members(conn, subtree=actor.org_path, org_id=org_id,
                                            name=name.strip() or None, before=before,
                                            limit=max(1, min(limit, 200)))
        return [member_view(r, self._pii) for r in rows]

    async def verify_card(self, actor: Actor, token: str) -> dict:
        """A cadre scans a member card: valid, and whose? Any signed-in cadre may check a card
        (services are redeemed across unions); only masked data is shown."""
        member_id = member_card.read_token(self._card_key, token, unix_time(self._now), self._s.card_max_age)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.member(conn, member_id)
            if row is None or row["account_id"] is None:
                raise InvalidInput("会员卡无效", code="card_invalid")
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action="card.verify", target=f"member:{member_id}", ip=actor.ip)
        # Built from the row: the ID number and phone stay sealed.
        return {"valid": row["status"] == "active", "member_no": row["member_no"],
                "name": mask_name(row["name"]), "union": {"id": row["org_id"], "name": row["org_name"]},
                "status_label": MEMBER_STATUS[row["status"]], "joined_on": row["joined_on"].isoformat()}

    async def create_union(self, actor: Actor, body: dict) -> dict:
        """A grassroots union added by a cadre (one founded offline)."""
        actor.require("org.manage")
        name = str(body.get("name", "")).strip()
        if not 2 <= len(name) <= 60:
            raise InvalidInput("请填写工会名称", code="form_invalid")
        credit_code = parse_credit_code(str(body["credit_code"])) if body.get("credit_code") else None
        employer = str(body.get("employer_name", "")).strip()[:100] or None
        async with self._pool.acquire() as conn, conn.transaction():
            parent = await org_store.get(conn, row_id(body.get("parent_id"))) \
                if row_id(body.get("parent_id")) else None
            if parent is None or parent["kind"] == "grassroots":
                raise InvalidInput("请选择上级工会", code="upper_union_invalid")
            actor.require_within(parent["path"])
            region = body.get("region_code") or None
            if region is not None and await account_store.get_region(conn, str(region)) is None:
                raise InvalidInput("所在地区无效", code="region_invalid")
            exists = Conflict("该统一社会信用代码已有工会", code="union_exists")
            if credit_code and await store.union_exists_for(conn, credit_code):
                raise exists
            try:
                org = await org_store.create_grassroots(conn, parent_id=parent["id"], name=name,
                                                        credit_code=credit_code, employer_name=employer,
                                                        region_code=region, founded_via_platform=False)
            except asyncpg.UniqueViolationError:   # the same credit code added meanwhile
                raise exists from None
            await account_store.log_change(conn, "org", str(org["id"]), "created", changed_by(actor.id),
                                           {"code": org["code"], "name": name, "parent_id": parent["id"]})
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=parent["id"],
                                     action="org.create", target=f"org:{org['id']}",
                                     detail={"code": org["code"], "name": name}, ip=actor.ip)
        return {"id": org["id"], "code": org["code"], "name": org["name"], "parent_id": parent["id"]}
