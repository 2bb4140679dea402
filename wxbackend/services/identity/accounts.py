"""One person, one platform account, whichever entrance they came through.

An account is recognised by its identities: the Official Account openid, the Mini Program
openid, the unionid that joins the two, a verified phone, and the user ids of other access
entrances (App, websites, cities' channels). Rules:

* a unionid seen with a new openid attaches that openid to the unionid's account;
* when an openid's account and its unionid's account differ, they are merged — unless each
  holds a different verified phone: then nothing is merged and a conflict is recorded;
* a verified phone already held by another account links this WeChat identity to that account
  (the phone is the proof), unless this account holds a different verified phone (a conflict,
  reported to the worker, never merged silently);
* an account is a registered user (注册用户) from the moment it has a verified phone, has
  accepted the current privacy notice and has a home region — the KPIs count it there.

Every change to a registered user is appended to the base-data change log, without personal
data in clear.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from wxbackend.infra.pii import PersonalData, mask_phone, normalise_phone
from wxbackend.services.errors import Conflict, InvalidInput, NotFound
from wxbackend.services.membership.membership import application_view, member_view
from wxbackend.store.identity import accounts as store
from wxbackend.store.identity import followers
from wxbackend.store.membership import members as member_store
from wxbackend.store.messaging import inbound, outbox

log = logging.getLogger(__name__)

PHONE_COLUMN = "accounts.phone"
WECHAT_KINDS = ("oa_openid", "mp_openid")
UNIONID_ISSUER = "open"  # unionids are issued by the Open Platform, across apps


@dataclass(frozen=True)
class WeChatIdentity:
    kind: str           # oa_openid | mp_openid
    appid: str
    openid: str
    unionid: str | None = None


@dataclass(frozen=True)
class Account:
    id: int
    public_id: str
    status: str
    phone_masked: str | None
    phone_verified: bool
    privacy_version: str | None
    region_code: str | None
    region_name: str | None
    registered: bool
    registered_at: datetime | None
    nickname: str | None

    def public(self) -> dict:
        """What the worker sees about their own account."""
        return {
            "id": self.public_id, "status": self.status, "nickname": self.nickname,
            "phone": self.phone_masked, "phone_verified": self.phone_verified,
            "privacy_version": self.privacy_version,
            "region": {"code": self.region_code, "name": self.region_name}
            if self.region_code else None,
            "registered": self.registered,
            "registered_at": self.registered_at.isoformat() if self.registered_at else None,
        }


class AccountService:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, *, privacy_version: str) -> None:
        self._pool = pool
        self._pii = pii
        self.privacy_version = privacy_version
        # Other domains' part of the worker's data (name -> what they hold, read with the
        # export's connection) and of cancellation (run inside its transaction).
        self.export_parts: dict[str, Callable[[asyncpg.Connection, int], Awaitable[object]]] = {}
        self.cancel_parts: list[Callable[[asyncpg.Connection, int], Awaitable[None]]] = []

    # --- views ---------------------------------------------------------------------------------
    def _view(self, row: asyncpg.Record) -> Account:
        phone = self._pii.decrypt(row["phone_enc"], PHONE_COLUMN) if row["phone_enc"] else None
        return Account(
            id=row["id"], public_id=str(row["public_id"]), status=row["status"],
            phone_masked=mask_phone(phone), phone_verified=phone is not None,
            privacy_version=row["privacy_version"], region_code=row["region_code"],
            region_name=row["region_name"], registered=row["registered_at"] is not None,
            registered_at=row["registered_at"], nickname=row["nickname"])

    async def get_account(self, account_id: int) -> Account:
        async with self._pool.acquire() as conn:
            row = await self._live(conn, account_id)
        return self._view(row)

    async def _live(self, conn: asyncpg.Connection, account_id: int, *,
                    lock: bool = False) -> asyncpg.Record:
        """The account, following merges; an account that was cancelled is gone."""
        for _ in range(8):
            row = await store.get(conn, account_id, lock=lock)
            if row is None or row["status"] == "cancelled":
                raise NotFound("账号不存在或已注销", code="account_not_found")
            if row["status"] != "merged":
                return row
            account_id = row["merged_into"]
        raise NotFound("账号不存在或已注销", code="account_not_found")

    async def resolve_id(self, account_id: int) -> int:
        """The live account an id now stands for (a merged account points to its survivor)."""
        async with self._pool.acquire() as conn:
            return (await self._live(conn, account_id))["id"]

    # --- WeChat sign-in ------------------------------------------------------------------------
    async def sign_in_wechat(self, ident: WeChatIdentity, *, nickname: str | None = None,
                             avatar_url: str | None = None) -> Account:
        if ident.kind not in WECHAT_KINDS or not ident.openid:
            raise InvalidInput("无效的微信身份")
        async with self._pool.acquire() as conn, conn.transaction():
            account_id = await self._attach_wechat(conn, ident)
            if nickname or avatar_url:
                await store.update_profile(conn, account_id, nickname=nickname,
                                           avatar_url=avatar_url)
            return self._view(await self._live(conn, account_id))

    async def _attach_wechat(self, conn: asyncpg.Connection, ident: WeChatIdentity) -> int:
        # Two first sign-ins of one person at once must not make two accounts.
        await store.lock_identity(conn, f"unionid:{ident.unionid}" if ident.unionid
                                  else f"{ident.kind}:{ident.appid}:{ident.openid}")
        by_openid = await store.find_identity(conn, ident.kind, ident.appid, ident.openid)
        by_union = await store.find_identity(conn, "unionid", UNIONID_ISSUER, ident.unionid) \
            if ident.unionid else None
        openid_account = (await self._live(conn, by_openid["account_id"]))["id"] if by_openid else None
        union_account = (await self._live(conn, by_union["account_id"]))["id"] if by_union else None
        if openid_account is None and union_account is None:
            account_id = await store.create(conn)
            await store.log_change(conn, "registered_user", str(account_id), "created",
                                   f"wechat:{ident.kind}")
        elif openid_account is None or union_account is None \
                or openid_account == union_account:
            account_id = openid_account or union_account
        else:
            account_id = await self._merge_or_report(conn, openid_account, union_account,
                                                     reason="unionid_links_two_accounts")
        if by_openid is None:
            await store.add_identity(conn, account_id, ident.kind, ident.appid, ident.openid)
        else:
            await store.touch_identity(conn, ident.kind, ident.appid, ident.openid)
        if ident.unionid and by_union is None and account_id == (openid_account or account_id):
            await store.add_identity(conn, account_id, "unionid", UNIONID_ISSUER, ident.unionid)
        return account_id

    async def _merge_or_report(self, conn: asyncpg.Connection, a: int, b: int, *,
                               reason: str) -> int:
        """Merge two accounts of one person, or — if each holds a different verified phone —
        record the conflict and keep them apart. Returns the account to continue with."""
        first, second = sorted((a, b))  # lock in id order: no deadlock with a concurrent merge
        rows = {r["id"]: r for r in [await store.get(conn, first, lock=True),
                                     await store.get(conn, second, lock=True)]}
        pa, pb = rows[a]["phone_bidx"], rows[b]["phone_bidx"]
        if pa is not None and pb is not None and pa != pb:
            await store.record_conflict(conn, a, b, reason, {"rule": "two verified phones"})
            log.warning("accounts %d and %d not merged: each holds a verified phone (%s)",
                        a, b, reason)
            return a
        # The survivor: the one with a phone, else the registered one, else the older one.
        survivor, absorbed = sorted(
            (a, b), key=lambda i: (rows[i]["phone_bidx"] is None,
                                   rows[i]["registered_at"] is None, rows[i]["created_at"], i))
        await store.absorb(conn, survivor, absorbed)
        await store.log_change(conn, "registered_user", str(absorbed), "merged", "system",
                               {"into": str(survivor), "reason": reason})
        return survivor

    # --- the three registration conditions ----------------------------------------------------
    async def verify_phone(self, account_id: int, raw_phone: str, source: str) -> Account:
        """Record a phone the worker proved to own (SMS code or WeChat's phone API). If another
        account holds it, this WeChat identity joins that account (one person, one account)."""
        phone = normalise_phone(raw_phone)
        if phone is None:
            raise InvalidInput("请输入正确的 11 位手机号码", code="invalid_phone")
        bidx = self._pii.blind_index(phone, PHONE_COLUMN)
        async with self._pool.acquire() as conn, conn.transaction():
            me = await self._live(conn, account_id, lock=True)
            holder = await store.find_by_phone(conn, bidx, lock=True)
            if holder is not None and holder["id"] != me["id"] and me["phone_bidx"] is not None:
                # The report is all this transaction writes; the worker is told, nothing merges.
                await store.record_conflict(conn, me["id"], holder["id"], "phone_held_by_another",
                                            {"source": source})
                conflict = True
            else:
                conflict = False
                if holder is None or holder["id"] == me["id"]:
                    await store.set_phone(conn, me["id"], self._pii.encrypt(phone, PHONE_COLUMN),
                                          bidx, source)
                    target = me["id"]
                else:
                    target = await self._merge_or_report(conn, me["id"], holder["id"],
                                                          reason="phone_links_two_accounts")
                await self._check_registered(conn, target)
                account = self._view(await self._live(conn, target))
        if conflict:
            raise Conflict("该手机号已被另一个账号绑定，且您的账号已绑定其他手机号。"
                           "请联系工会工作人员核实处理。", code="phone_conflict")
        return account

    async def account_for_phone(self, raw_phone: str) -> Account:
        """The account holding a phone just proved by SMS outside WeChat, or a new one."""
        phone = normalise_phone(raw_phone)
        if phone is None:
            raise InvalidInput("请输入正确的 11 位手机号码", code="invalid_phone")
        bidx = self._pii.blind_index(phone, PHONE_COLUMN)
        for _ in range(2):  # a concurrent sign-in may create it first: then use that one
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    holder = await store.find_by_phone(conn, bidx)
                    if holder is not None:
                        return self._view(await self._live(conn, holder["id"]))
                    account_id = await store.create(conn)
                    await store.set_phone(conn, account_id, self._pii.encrypt(phone, PHONE_COLUMN),
                                          bidx, "sms")
                    await store.log_change(conn, "registered_user", str(account_id), "created",
                                           "sms")
                    return self._view(await self._live(conn, account_id))
            except asyncpg.UniqueViolationError:
                continue
        raise Conflict("请稍后再试", code="retry")

    async def accept_privacy(self, account_id: int, version: str) -> Account:
        if version != self.privacy_version:
            raise InvalidInput("隐私政策已更新，请阅读最新版本后再同意", code="privacy_version_outdated")
        async with self._pool.acquire() as conn, conn.transaction():
            me = await self._live(conn, account_id, lock=True)
            await store.set_privacy(conn, me["id"], version)
            await self._check_registered(conn, me["id"])
            return self._view(await self._live(conn, me["id"]))

    async def set_region(self, account_id: int, region_code: str) -> Account:
        async with self._pool.acquire() as conn, conn.transaction():
            region = await store.get_region(conn, region_code or "")
            if region is None:
                raise InvalidInput("请选择四川省内的市（州）和区（县）", code="invalid_region")
            me = await self._live(conn, account_id, lock=True)
            await store.set_region(conn, me["id"], region["code"], region["city_org_id"])
            if me["registered_at"] is not None and me["region_code"] != region["code"]:
                await store.log_change(conn, "registered_user", str(me["id"]), "region_changed",
                                       "self", {"region": region["code"]})
            await self._check_registered(conn, me["id"])
            return self._view(await self._live(conn, me["id"]))

    async def _check_registered(self, conn: asyncpg.Connection, account_id: int) -> None:
        if await store.mark_registered(conn, account_id):
            row = await store.get(conn, account_id)
            await store.log_change(conn, "registered_user", str(account_id), "registered", "self",
                                   {"region": row["region_code"], "home_org": row["home_org_id"]})

    async def list_regions(self) -> list[dict]:
        async with self._pool.acquire() as conn:
            rows = await store.list_regions(conn)
        return [dict(r) for r in rows]

    # --- the worker's own data -----------------------------------------------------------------
    async def export_data(self, account_id: int) -> dict:
        """Everything the platform holds about the worker's account (PIPL art. 45)."""
        async with self._pool.acquire() as conn:
            row = await self._live(conn, account_id)
            idents = await store.identities(conn, row["id"])
            conflicts = await store.open_conflicts(conn, row["id"])
            member = await member_store.member_of_account(conn, row["id"])
            applications = await member_store.applications_of(conn, row["id"], limit=1000)
            parts = {name: await part(conn, row["id"]) for name, part in self.export_parts.items()}
        phone = self._pii.decrypt(row["phone_enc"], PHONE_COLUMN) if row["phone_enc"] else None
        return {
            "account": self._view(row).public() | {"phone": phone,
                                                   "created_at": row["created_at"].isoformat()},
            "privacy_accepted_at": row["privacy_accepted_at"].isoformat()
            if row["privacy_accepted_at"] else None,
            "identities": [{"kind": i["kind"], "issuer": i["issuer"], "subject": i["subject"],
                            "since": i["created_at"].isoformat()} for i in idents],
            "open_conflicts": len(conflicts),
            # Masked like everywhere else: a certified record is not proof of owning its ID number.
            "member": member_view(member, self._pii) if member else None,
            "applications": [application_view(a, self._pii) for a in applications],
            **parts,
        }

    async def cancel(self, account_id: int) -> str:
        """注销: personal data deleted, the account's KPI facts kept (docs/privacy.md)."""
        async with self._pool.acquire() as conn, conn.transaction():
            me = await self._live(conn, account_id, lock=True)
            # What the Official Account recorded of this person goes with the identities.
            await followers.forget_account(conn, me["id"])
            await inbound.forget_account(conn, me["id"])
            await outbox.forget_account(conn, me["id"])
            for part in self.cancel_parts:
                await part(conn, me["id"])
            await store.cancel(conn, me["id"])
            await store.log_change(conn, "registered_user", str(me["id"]), "cancelled", "self")
        return str(me["public_id"])

    # --- conflicts, resolved explicitly by the platform office ----------------------------------
    async def list_conflicts(self) -> list[dict]:
        async with self._pool.acquire() as conn:
            rows = await store.list_open_conflicts(conn)
        return [{"id": r["id"], "account": str(r["account_public"]), "other": str(r["other_public"]),
                 "reason": r["reason"], "since": r["created_at"].isoformat()} for r in rows]

    async def resolve_conflict(self, conflict_id: int, *, action: str, keep: str | None = None,
                               by: str) -> str:
        """``separate``: two people after all, both accounts stay. ``merge``: one person, after
        the office checked; ``keep`` (a public account id) survives with its phone, the other's
        phone is dropped and its identities join the survivor."""
        async with self._pool.acquire() as conn, conn.transaction():
            conflict = await store.get_conflict(conn, conflict_id)
            if conflict is None or conflict["status"] != "open":
                raise NotFound("没有这个待处理的账号冲突", code="conflict_not_found")
            a, b = conflict["account_id"], conflict["other_id"]
            if action == "separate":
                await store.close_conflict(conn, conflict_id, f"separate by {by}")
                return "separate"
            if action != "merge":
                raise InvalidInput("处理方式应为 separate 或 merge", code="resolution_invalid")
            rows = {r["id"]: r for r in [await store.get(conn, i, lock=True) for i in sorted((a, b))]}
            survivor = next((i for i, r in rows.items() if str(r["public_id"]) == keep), None)
            if survivor is None or any(r["status"] != "active" for r in rows.values()):
                raise InvalidInput("keep 应为冲突双方之一的账号编号，且两个账号都有效",
                                   code="resolution_invalid")
            absorbed = b if survivor == a else a
            await store.drop_phone(conn, absorbed)
            await store.absorb(conn, survivor, absorbed)
            await store.log_change(conn, "registered_user", str(absorbed), "merged", by,
                                   {"into": str(survivor), "conflict": conflict_id})
            await store.close_conflict(conn, conflict_id, f"merged into {survivor} by {by}")
            await self._check_registered(conn, survivor)
            return "merged"

    # --- other entrances -----------------------------------------------------------------------
    async def resolve(self, *, kind: str, issuer: str, subject: str) -> Account | None:
        async with self._pool.acquire() as conn:
            found = await store.find_identity(conn, kind, issuer, subject)
            if found is None:
                return None
            try:
                return self._view(await self._live(conn, found["account_id"]))
            except NotFound:
                return None

    async def resolve_phone(self, raw_phone: str) -> Account | None:
        phone = normalise_phone(raw_phone)
        if phone is None:
            raise InvalidInput("请输入正确的 11 位手机号码", code="invalid_phone")
        async with self._pool.acquire() as conn:
            row = await store.find_by_phone(conn, self._pii.blind_index(phone, PHONE_COLUMN))
        return self._view(row) if row is not None and row["status"] == "active" else None

    async def by_public_id(self, public_id: str) -> Account:
        async with self._pool.acquire() as conn:
            try:
                row = await store.get_by_public_id(conn, public_id)
            except (asyncpg.DataError, ValueError):
                row = None
            if row is None:
                raise NotFound("账号不存在或已注销", code="account_not_found")
            return self._view(await self._live(conn, row["id"]))

    async def phone_of(self, account_id: int) -> str | None:
        return (await self.phone_and_consent(account_id))[0]

    async def phone_and_consent(self, account_id: int) -> tuple[str | None, bool]:
        """The verified phone, and whether the current privacy notice is accepted (one read)."""
        async with self._pool.acquire() as conn:
            row = await self._live(conn, account_id)
        phone = self._pii.decrypt(row["phone_enc"], PHONE_COLUMN) if row["phone_enc"] else None
        return phone, row["privacy_version"] == self.privacy_version

    async def link_app_user(self, account_id: int, app_id: str, app_user_id: str) -> Account:
        """An entrance's own user id joins the account (the entrance proved who the user is)."""
        if not app_user_id or len(app_user_id) > 128:
            raise InvalidInput("无效的用户标识", code="invalid_subject")
        async with self._pool.acquire() as conn, conn.transaction():
            me = await self._live(conn, account_id, lock=True)
            existing = await store.find_identity(conn, "app_user", app_id, app_user_id)
            if existing is not None and (await self._live(conn, existing["account_id"]))["id"] != me["id"]:
                raise Conflict("该用户标识已关联其他账号", code="identity_taken")
            await store.add_identity(conn, me["id"], "app_user", app_id, app_user_id)
            return self._view(me)
