"""A worker's membership: find a union, apply to join (入会), certify an offline membership
(会员认证), ask for a transfer (会员关系接转), apply to found a union (建会), the member card.

The same service answers the Official Account's H5 pages and the Mini Program. Every
application waits for a cadre's decision (:mod:`wxbackend.services.membership.reviews`). Certification is
immediate when name, ID number and the worker's verified phone match the roster record (a record
without a phone needs the union's confirmation unless ``certify_without_phone = "allow"``).

Nothing a worker is answered says whether somebody else's name or ID number is on a roster:
attempts are counted per worker and per network address, every unsuccessful certification gets
the same answer, and a join application with a member's ID number is accepted like any other.
What the roster check found (:data:`ROSTER_CHECKS`) is kept (``certification_misses``) and, on
what the worker files, shown to the reviewing cadres only. Filings are limited per worker per
day, so filing and withdrawing cannot be used to probe either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg
import redis.asyncio as aioredis

from wxbackend.config import MembershipSettings
from wxbackend.infra.pii import PersonalData, mask_id_number, mask_phone
from wxbackend.infra.redis import WindowCounter, day_window, hour_window, retry_after
from wxbackend.services.casework import reporting
from wxbackend.services.clock import china_now, unix_time
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from wxbackend.services.membership import member_card
from wxbackend.services.membership.idnumbers import parse_id_number
from wxbackend.services.membership.member_forms import clean_founding_form, clean_member_form, clean_name
from wxbackend.services.signed_tokens import derived_key
from wxbackend.store.identity import accounts as account_store
from wxbackend.store.membership import members as store
from wxbackend.store.membership import orgs as org_store

if TYPE_CHECKING:   # services.accounts imports this module's views
    from wxbackend.services.identity.accounts import AccountService

ID_COLUMN = "members.id_number"
PHONE_COLUMN = "members.phone"
KIND_NAMES = {"join": "入会申请", "certify": "会员认证申诉", "transfer": "会员关系接转", "found": "建会申请"}
STATUS_NAMES = {"pending": "待审核", "approved": "已通过", "rejected": "未通过", "withdrawn": "已撤回"}
MEMBER_STATUS = {"active": "正常", "retained": "保留会籍", "withdrawn": "已退会"}
# What comparing a filing (or a certification attempt) with the roster found: for the reviewing
# cadres and ``certification_misses``, never for the worker.
ROSTER_CHECKS = {
    "no_record": "名册中没有该身份证号码",
    "name_differs": "名册中该身份证号码登记的姓名与填写的不同",
    "member_withdrawn": "名册中该会员已退会",
    "linked_elsewhere": "该会员信息已被另一个账号认证；核实本人后通过，会员信息将改由本账号认证",
    "phone_differs": "名册登记的手机号码与申请人验证的手机号码不同",
    "roster_without_phone": "名册未登记手机号码，姓名与身份证号码相符：请核实是否本人",
    "matches": "姓名、身份证号码和手机号码与名册相符",
    "already_member": "该身份证号码已有会员记录（可能已通过名册导入）：请驳回并提示其进行会员认证",
    "pending_elsewhere": "另一个账号已用该身份证号码提交了待审核的入会申请",
}
# The one answer to every unsuccessful certification, whatever the roster holds.
NO_MATCH_MESSAGE = ("未能自动完成会员认证：名册中没有与您填写的姓名、身份证号码和已验证的手机号码"
                    "都相符的会员信息。如确已入会，请提交认证申诉，由所在工会核实")

_MAX_ID = 2**63 - 1


def row_id(value: object) -> int | None:
    """A database id from JSON: a positive integer that fits bigint, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_ID else None


def _like(text: str) -> str:
    """``text`` matched literally inside ILIKE … ESCAPE '!': its own % and _ are not wildcards."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def card_key(index_key: bytes) -> bytes:
    """The member-card MAC key, derived from the blind-index key so no new secret is needed."""
    return derived_key(index_key, b"member-card-v1")


def member_view(row: asyncpg.Record, pii: PersonalData) -> dict:
    """A member record as workers and cadres see it, the worker's own data export included: the
    ID number and phone masked (whoever certified a record is not proof of owning its ID number
    when the union allows certifying records without a phone)."""
    number = pii.decrypt(row["id_number_enc"], ID_COLUMN)
    phone = pii.decrypt(row["phone_enc"], PHONE_COLUMN) if row["phone_enc"] else None
    return {
        "id": row["id"], "member_no": row["member_no"], "name": row["name"],
        "id_number": mask_id_number(number), "phone": mask_phone(phone),
        "gender": "男" if row["gender"] == 1 else "女", "birth_date": row["birth_date"].isoformat(),
        "ethnicity": row["ethnicity"], "education": row["education"],
        "political_status": row["political_status"], "household_type": row["household_type"],
        "migrant_worker": row["migrant_worker"], "employer": row["employer"], "job": row["job"],
        "status": row["status"], "status_label": MEMBER_STATUS[row["status"]], "source": row["source"],
        "joined_on": row["joined_on"].isoformat(), "certified": row["account_id"] is not None,
        "union": {"id": row["org_id"], "name": row["org_name"]},
    }


def application_view(row: asyncpg.Record, pii: PersonalData) -> dict:
    number = pii.decrypt(row["id_number_enc"], ID_COLUMN) if row["id_number_enc"] else None
    phone = pii.decrypt(row["phone_enc"], PHONE_COLUMN) if row["phone_enc"] else None
    return {
        "id": row["id"], "kind": row["kind"], "kind_label": KIND_NAMES[row["kind"]],
        "status": row["status"], "status_label": STATUS_NAMES[row["status"]],
        "union": {"id": row["org_id"], "name": row["org_name"]},
        "from_union": ({"id": row["from_org_id"], "name": row["from_org_name"]}
                       if row["from_org_id"] else None),
        "name": row["name"], "id_number": mask_id_number(number), "phone": mask_phone(phone),
        "form": dict(row["form"]), "reason": row["reason"], "member_no": row["member_no"],
        "result_union_id": row["result_org_id"], "overdue": row["overdue"],
        "created_at": row["created_at"].isoformat(), "due_at": row["due_at"].isoformat(),
        "reviewed_at": row["reviewed_at"].isoformat() if row["reviewed_at"] else None,
    }


def roster_check_view(row: asyncpg.Record) -> dict | None:
    """What the roster check found when the application was filed, for the reviewing cadres."""
    check = row["roster_check"]
    return {"code": check, "label": ROSTER_CHECKS[check]} if check else None


def roster_check(member: asyncpg.Record | None, name: str, phone_bidx: bytes,
                 account_id: int) -> str:
    """How a roster record compares with a name, a verified phone and an account."""
    if member is None:
        return "no_record"
    if member["name"] != name:
        return "name_differs"
    if member["status"] == "withdrawn":
        return "member_withdrawn"
    if member["account_id"] is not None and member["account_id"] != account_id:
        return "linked_elsewhere"
    if member["phone_bidx"] is None:
        return "roster_without_phone"
    if member["phone_bidx"] != phone_bidx:
        return "phone_differs"
    return "matches"


class MembershipService:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, pii: PersonalData,
                 settings: MembershipSettings, *, accounts: AccountService, card_key: bytes,
                 card_url: str, now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._redis = redis
        self._pii = pii
        self._s = settings
        self._accounts = accounts   # the worker's phone and privacy consent live with the account
        self._card_key = card_key
        self._card_url = card_url     # the QR code opens this URL + "#" + token
        self._now = now               # ages and rate-limit windows are counted in China time
        self._counter = WindowCounter(redis)

    # --- finding a union -----------------------------------------------------------------------
    async def search_unions(self, *, text: str = "", region_code: str = "",
                            credit_code: str = "") -> list[dict]:
        text = text.strip()[:40]
        if not (text or region_code or credit_code):
            raise InvalidInput("请输入工会或单位名称、所在地区或统一社会信用代码", code="search_empty")
        if text and len(text) < 2:
            raise InvalidInput("请至少输入两个字", code="search_too_short")
        async with self._pool.acquire() as conn:
            rows = await store.search_unions(conn, text=_like(text) or None, region_code=region_code or None,
                                             credit_code=credit_code.strip().upper() or None, limit=20)
        return [dict(r) for r in rows]

    async def upper_unions(self, region_code: str) -> list[dict]:
        """The unions that may approve founding a union in this region (建会的上级工会)."""
        async with self._pool.acquire() as conn:
            if await account_store.get_region(conn, region_code) is None:
                raise InvalidInput("请选择单位所在地区", code="region_invalid")
            return [dict(r) for r in await store.upper_unions(conn, region_code)]

    # --- what the worker sees ------------------------------------------------------------------
    async def overview(self, account_id: int) -> dict:
        async with self._pool.acquire() as conn:
            member = await store.member_of_account(conn, account_id)
            applications = await store.applications_of(conn, account_id)
        return {"member": member_view(member, self._pii) if member else None,
                "applications": [application_view(a, self._pii) for a in applications]}

    async def _phone(self, account_id: int) -> tuple[str, bool]:
        """The worker's verified phone, and whether the current privacy notice is accepted."""
        phone, consented = await self._accounts.phone_and_consent(account_id)
        if phone is None:
            raise InvalidInput("请先验证手机号码", code="phone_required")
        return phone, consented

    async def _joinable(self, conn: asyncpg.Connection, org_id: object) -> asyncpg.Record:
        org = await org_store.get(conn, row_id(org_id)) if row_id(org_id) else None
        if org is None or org["kind"] != "grassroots" or not org["accepts_members"]:
            raise InvalidInput("请选择一个可以申请加入的基层工会", code="union_not_joinable")
        return org

    async def _file(self, *, consent: bool, **fields) -> dict:
        """File an application whose checks have passed; ``consent``: the worker agreed to the
        privacy notice with it and the account has yet to record that (which may complete
        registration)."""
        await self._limit_filings(fields["account_id"])
        if consent:
            await self._accounts.accept_privacy(fields["account_id"], self._accounts.privacy_version)
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    application_id = await store.create_application(
                        conn, review_days=self._s.review_days, **fields)
                    row = await store.application(conn, application_id)
                    await reporting.application_filed(conn, row)
            except asyncpg.UniqueViolationError:
                if fields["kind"] == "found":
                    raise Conflict("该单位已有待审核的建会申请", code="application_pending") from None
                raise Conflict(f"您已有一份待审核的{KIND_NAMES[fields['kind']]}，请等待审核结果或先撤回",
                               code="application_pending") from None
            return application_view(row, self._pii)

    async def _limit_filings(self, account_id: int) -> None:
        """Filings per worker per day (China time), withdrawn ones included: filing and
        withdrawing must not become an unthrottled way to try ID numbers."""
        now = self._now()
        day, day_ends = day_window(now)
        [count] = await self._counter.hit({f"apply:acct:{account_id}:{day}": day_ends})
        if count > self._s.applications_per_account_day:
            raise TooManyRequests("今日提交申请的次数已用完，请明天再试", code="application_limit",
                                  headers={"Retry-After": retry_after(day_ends, now)})

    def _check_privacy(self, body: dict) -> None:
        """The application carries consent to the current privacy notice."""
        if body.get("privacy_version") != self._accounts.privacy_version:
            raise InvalidInput("请阅读并同意《隐私政策》", code="privacy_required")

    # --- 入会 ----------------------------------------------------------------------------------
    async def apply_join(self, account_id: int, body: dict) -> dict:
        self._check_privacy(body)
        name, ident, form = clean_member_form(body, self._now().date())
        bidx = self._pii.blind_index(ident.number, ID_COLUMN)
        phone, consented = await self._phone(account_id)
        async with self._pool.acquire() as conn:
            org = await self._joinable(conn, body.get("union_id"))
            # The worker's own account may be told it is a member; whether the ID number is on
            # a roster (or in someone else's pending application) is for the reviewer to see.
            if await store.member_of_account(conn, account_id):
                raise Conflict("您已是工会会员。如已在其他单位工作，请办理会员关系接转",
                               code="already_member")
            check = "already_member" if await store.member_by_id_number(conn, bidx) else \
                "pending_elsewhere" if await store.pending_with_id_number(conn, bidx, "join", account_id) \
                else None
        return await self._file(
            consent=not consented, kind="join", account_id=account_id, org_id=org["id"], from_org_id=None,
            member_id=None, name=name, id_number_enc=self._pii.encrypt(ident.number, ID_COLUMN),
            id_number_bidx=bidx, phone_enc=self._pii.encrypt(phone, PHONE_COLUMN),
            form={**form, "gender": ident.gender, "birth_date": ident.birth_date.isoformat()},
            roster_check=check)

    async def withdraw(self, account_id: int, application_id: int) -> dict:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.application(conn, application_id, lock=True)
            if row is None or row["account_id"] != account_id:
                raise NotFound("未找到该申请", code="application_not_found")
            if row["status"] != "pending":
                raise Conflict("该申请已处理，不能撤回", code="application_decided")
            await store.withdraw(conn, application_id)
            row = await store.application(conn, application_id)
            await reporting.application_finished(conn, row, at=self._now())
            return application_view(row, self._pii)

    # --- 会员认证 ------------------------------------------------------------------------------
    async def _limit(self, account_id: int, client_ip: str) -> None:
        """Per network address per clock hour and per worker per day (China time), counted in one
        round trip; a limited client waits until its hour or day ends."""
        now = self._now()
        hour, hour_ends = hour_window(now)
        day, day_ends = day_window(now)
        ip_count, account_count = await self._counter.hit(
            {f"certify:ip:{client_ip}:{hour}": hour_ends, f"certify:acct:{account_id}:{day}": day_ends})
        if ip_count > self._s.certify_per_ip_hour:
            raise TooManyRequests("当前网络认证尝试过于频繁，请稍后再试", code="certify_limit",
                                  headers={"Retry-After": retry_after(hour_ends, now)})
        if account_count > self._s.certify_per_account_day:
            raise TooManyRequests("今日认证次数已用完，请明天再试或提交认证申诉", code="certify_limit",
                                  headers={"Retry-After": retry_after(day_ends, now)})

    async def certify(self, account_id: int, body: dict, client_ip: str) -> dict:
        # Counted before anything is checked: a malformed attempt is still an attempt.
        await self._limit(account_id, client_ip)
        name = clean_name(body.get("name"))
        ident = parse_id_number(str(body.get("id_number", "")), self._now().date(), min_age=0)
        bidx = self._pii.blind_index(ident.number, ID_COLUMN)
        # Asked of every attempt, before the roster is read: what the worker is told never
        # depends on what the roster holds, only on their own account.
        phone, _ = await self._phone(account_id)
        # Three round trips at most (the hot path of a certification campaign): the account's
        # phone, the record, and one atomic link-and-log statement.
        async with self._pool.acquire() as conn:
            member, holds_one = await store.certify_lookup(conn, bidx, account_id)
        if member is not None and member["account_id"] == account_id and member["name"] == name:
            return member_view(member, self._pii)
        if holds_one:
            raise Conflict("您的账号已认证其他会员信息", code="already_certified")
        check = roster_check(member, name, self._pii.blind_index(phone, PHONE_COLUMN), account_id)
        if check == "matches" or (check == "roster_without_phone"
                                  and self._s.certify_without_phone == "allow"):
            async with self._pool.acquire() as conn:
                try:
                    linked = await store.certify(conn, member["id"], account_id)
                except asyncpg.UniqueViolationError:   # this account certified another one meanwhile
                    raise Conflict("您的账号已认证其他会员信息", code="already_certified") from None
            if linked is not None:
                return member_view({**member, "account_id": account_id}, self._pii)
            check = "linked_elsewhere"                  # another account got there first
        await self._record_miss(account_id, member, check)
        raise InvalidInput(NO_MATCH_MESSAGE, code="certify_no_match")

    async def _record_miss(self, account_id: int, member: asyncpg.Record | None, check: str) -> None:
        """Why an attempt failed, kept under the union of the record it was compared with, so the
        union can tell a mistyped roster from someone trying ID numbers. Every miss is recorded,
        found record or not, so misses cost the same either way. Its own table, not the cadres'
        hash-chained audit trail: that one serialises its writers, and misses come in campaigns."""
        async with self._pool.acquire() as conn:
            await store.record_certification_miss(
                conn, account_id=account_id, member_id=member["id"] if member else None,
                org_id=member["org_id"] if member else None, reason=check)

    async def dispute(self, account_id: int, body: dict) -> dict:
        """认证申诉: the roster does not match; the union checks the worker's papers."""
        self._check_privacy(body)
        name = clean_name(body.get("name"))
        ident = parse_id_number(str(body.get("id_number", "")), self._now().date(), min_age=0)
        note = str(body.get("note", "")).strip()[:200]
        phone, consented = await self._phone(account_id)
        bidx = self._pii.blind_index(ident.number, ID_COLUMN)
        async with self._pool.acquire() as conn:
            org = await self._joinable(conn, body.get("union_id"))
            if await store.member_of_account(conn, account_id):
                raise Conflict("您的账号已认证会员信息", code="already_certified")
            member = await store.member_by_id_number(conn, bidx)
        # Why the automatic certification would not pass, for the union deciding the dispute.
        check = roster_check(member, name, self._pii.blind_index(phone, PHONE_COLUMN), account_id)
        return await self._file(
            consent=not consented, kind="certify", account_id=account_id, org_id=org["id"], from_org_id=None,
            member_id=None, name=name, id_number_enc=self._pii.encrypt(ident.number, ID_COLUMN),
            id_number_bidx=bidx, phone_enc=self._pii.encrypt(phone, PHONE_COLUMN), form={"note": note},
            roster_check=check)

    # --- 会员关系接转 ---------------------------------------------------------------------------
    async def request_transfer(self, account_id: int, body: dict) -> dict:
        reason = str(body.get("reason", "")).strip()
        if not 2 <= len(reason) <= 200:
            raise InvalidInput("请填写接转原因（如：调动到新单位工作）", code="reason_required")
        async with self._pool.acquire() as conn:
            member = await store.member_of_account(conn, account_id)
            if member is None:
                raise Forbidden("请先完成会员认证，再办理会员关系接转", code="not_a_member")
            if member["status"] != "active":
                raise Conflict("会籍状态不是“正常”，暂不能办理接转", code="member_not_active")
            org = await self._joinable(conn, body.get("union_id"))
            if org["id"] == member["org_id"]:
                raise InvalidInput("您已是该工会的会员", code="same_union")
        return await self._file(
            consent=False, kind="transfer", account_id=account_id, org_id=org["id"],
            from_org_id=member["org_id"], member_id=member["id"], name=member["name"],
            id_number_enc=member["id_number_enc"], id_number_bidx=None,
            phone_enc=member["phone_enc"], form={"reason": reason})

    # --- 建会 ----------------------------------------------------------------------------------
    async def apply_found(self, account_id: int, body: dict) -> dict:
        self._check_privacy(body)
        form = clean_founding_form(body)
        phone, consented = await self._phone(account_id)
        async with self._pool.acquire() as conn:
            if await account_store.get_region(conn, form["region_code"]) is None:
                raise InvalidInput("请选择单位所在地区", code="region_invalid")
            allowed = {r["id"] for r in await store.upper_unions(conn, form["region_code"])}
            upper = row_id(body.get("upper_union_id"))
            if upper not in allowed:
                raise InvalidInput("请选择上级工会（单位所在地的县级或市级总工会、产业工会）",
                                   code="upper_union_invalid")
            if await store.union_exists_for(conn, form["credit_code"]):
                raise Conflict("该单位已建立工会，可直接申请入会", code="union_exists")
        return await self._file(
            consent=not consented, kind="found", account_id=account_id, org_id=upper, from_org_id=None,
            member_id=None, name=form["organiser_name"], id_number_enc=None, id_number_bidx=None,
            phone_enc=self._pii.encrypt(phone, PHONE_COLUMN), form=form)

    # --- 电子会员卡 ----------------------------------------------------------------------------
    async def member_card(self, account_id: int) -> bytes:
        async with self._pool.acquire() as conn:
            member = await store.member_of_account(conn, account_id)
        if member is None:
            raise Forbidden("您还不是认证会员，请先入会或进行会员认证", code="not_a_member")
        if member["status"] == "withdrawn":
            raise Conflict("会籍已终止，会员卡不可用", code="member_not_active")
        token = member_card.issue_token(self._card_key, member["id"], unix_time(self._now))
        data = member_card.CardData(name=member["name"], member_no=member["member_no"],
                                    union_name=member["org_name"], joined_on=member["joined_on"],
                                    status_label=MEMBER_STATUS[member["status"]])
        # Pillow work is CPU-bound: off the event loop.
        return await asyncio.get_running_loop().run_in_executor(
            None, member_card.render_card, data, f"{self._card_url}#{token}")
