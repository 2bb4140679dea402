"""What unions offer: cadres create, edit, publish and close items inside their subtree; workers
browse what is open to them and see why an item is not.

Permissions: ``activity.manage`` for activities, ``service.manage`` for inclusive services, on
items whose organiser lies in the cadre's subtree. Every cadre action is audited.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from datetime import datetime

import asyncpg

from wxbackend.infra.pii import PersonalData
from wxbackend.services.activities import eligibility
from wxbackend.services.activities.admission import Item
from wxbackend.services.activities.item_forms import KIND_NAMES, clean_item, invalid
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, Forbidden, NotFound
from wxbackend.services.membership.membership import row_id
from wxbackend.store.activities import offerings as store
from wxbackend.store.activities import polls as polls_store
from wxbackend.store.activities import quizzes as quizzes_store

PERMISSION = {"activity": "activity.manage", "service": "service.manage"}
SEED_COLUMN = "offerings.seed"
WORKER_LIST_LIMIT = 100
CACHE_SECONDS = 2.0


def item_view(row: asyncpg.Record | dict, now: datetime) -> dict:
    """An item as the worker's pages and the console show it (no seed before the draw)."""
    state = ("draft" if row["status"] == "draft" else "closed" if row["status"] == "closed"
             or now >= row["closes_at"] else "upcoming" if now < row["opens_at"] else "open")
    return {
        "id": row["id"], "kind": row["kind"], "form": row["form"], "mode": row["mode"],
        "title": row["title"], "summary": row["summary"], "place": row["place"],
        "org_id": row["org_id"], "org_name": row["org_name"], "campaign_id": row["campaign_id"],
        "starts_at": _iso(row["starts_at"]), "ends_at": _iso(row["ends_at"]),
        "opens_at": _iso(row["opens_at"]), "closes_at": _iso(row["closes_at"]),
        "cancel_until": _iso(row["cancel_until"]), "stock": row["stock"],
        "left": max(0, row["stock"] - row["taken"]), "per_person": row["per_person"],
        "per_day": row["per_day"], "hold_minutes": row["hold_minutes"], "status": row["status"],
        "state": state, "audience": _audience(row["audience"]),
        "seed_hash": row["seed_hash"].hex() if row["seed_hash"] else None,
    }


# What a quiz or a vote item has besides its fields, set by its organiser until the window opens.
CONTENT = {"quiz": ("答题", "题库"), "vote": ("投票", "投票选项")}


def window_refusal(item: dict, now: datetime, ended: str = "报名已结束") -> Conflict | None:
    """Why a worker may not act on ``item`` now (closed, or not open yet), or None."""
    if item["status"] != "published" or now >= item["closes_at"]:
        return Conflict(ended, code="closed")
    if now < item["opens_at"]:
        return Conflict(f"尚未开始，{item['opens_at'].astimezone(now.tzinfo):%m月%d日 %H:%M} 开放",
                        code="not_open")
    return None


def fixed_once_open(row: asyncpg.Record | dict, now: datetime) -> str | None:
    """Why a quiz's bank or a poll's options may no longer change (workers may have seen them),
    or None."""
    if row["status"] == "closed":
        return "活动已结束"
    if row["status"] == "published" and now >= row["opens_at"]:
        return "活动已开始"
    return None


async def _not_ready(conn: asyncpg.Connection, row: asyncpg.Record) -> str | None:
    """Why an item cannot be published yet: a quiz needs its bank, a vote its options."""
    if row["form"] == "quiz":
        per_round, size = await quizzes_store.bank_size(conn, row["id"])
        if per_round is None or size < per_round:
            return "请先设置题库和答题规则"
    elif row["form"] == "vote" and (await polls_store.option_count(conn, row["id"]) or 0) < 2:
        return "请先设置投票规则和至少两个选项"
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _audience(value: object) -> dict:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


class Catalogue:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._pii = pii
        self._audit = audit
        self._now = now
        self._cache: dict[int, tuple[float, dict | None]] = {}

    # --- cadres ------------------------------------------------------------------------------
    async def create(self, actor: Actor, body: dict) -> dict:
        fields = clean_item(body)
        actor.require(PERMISSION[fields["kind"]])
        now = self._now()
        seed_hash = sealed_seed = None
        if fields["mode"] == "lottery":
            seed = secrets.token_bytes(32)  # committed now, revealed at the draw
            seed_hash = hashlib.sha256(seed).digest()
            sealed_seed = self._pii.encrypt(seed.hex(), SEED_COLUMN)
        async with self._pool.acquire() as conn, conn.transaction():
            fields["audience"] = await self._audience(conn, actor.org_path, body.get("audience", {}))
            await self._check_campaign(conn, actor, fields.get("campaign_id"))
            offering_id = await store.insert(conn, org_id=actor.org_id, org_path=actor.org_path,
                                             created_by=actor.id, fields=fields,
                                             seed_hash=seed_hash, now=now)
            if sealed_seed is not None:
                await store.keep_seed(conn, offering_id, sealed_seed)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=actor.org_id, action=f"{fields['kind']}.create",
                                     target=f"offering:{offering_id}",
                                     detail={"title": fields["title"], "mode": fields["mode"],
                                             "stock": fields["stock"]}, ip=actor.ip)
            row = await store.get(conn, offering_id)
        return item_view(row, now)

    async def _audience(self, conn: asyncpg.Connection, organiser_path: str, raw: object) -> dict:
        orgs = raw.get("orgs") if isinstance(raw, dict) else None
        ids = [o for o in orgs if row_id(o)] if isinstance(orgs, list) else []
        paths = await store.org_paths(conn, ids[:eligibility.MAX_ORGS]) if ids else {}
        return eligibility.normalise(raw, organiser_path, paths)

    async def _check_campaign(self, conn: asyncpg.Connection, actor: Actor,
                              campaign_id: int | None) -> None:
        if campaign_id is None:
            return
        campaign = await store.campaign(conn, campaign_id)
        if campaign is None or not actor.covers(campaign["org_path"]):
            raise invalid("所属专项活动不存在")

    async def owned(self, conn: asyncpg.Connection, actor: Actor, offering_id: int, *,
                   lock: bool = False) -> asyncpg.Record:
        """An item in the actor's subtree that the actor may manage; others are not found."""
        row = await store.get(conn, offering_id, lock=lock)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("未找到该活动或服务", code="item_not_found")
        actor.require(PERMISSION[row["kind"]])
        return row

    async def owned_content(self, conn: asyncpg.Connection, actor: Actor, offering_id: int,
                            form: str) -> asyncpg.Record:
        """An item of ``form`` whose quiz bank or poll options the actor may set now, locked."""
        row = await self.owned(conn, actor, offering_id, lock=True)
        name, content = CONTENT[form]
        if row["form"] != form:
            raise Conflict(f"只有线上{name}活动有{content}", code=f"not_a_{form}")
        reason = fixed_once_open(row, self._now())
        if reason is not None:
            raise Conflict(f"{reason}，{content}不能再修改", code=f"{form}_fixed")
        return row

    async def update(self, actor: Actor, offering_id: int, body: dict) -> dict:
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self.owned(conn, actor, offering_id, lock=True)
            if row["status"] == "closed":
                raise Conflict("已结束的活动不能修改", code="item_closed")
            current = {k: row[k] for k in store.EDITABLE if k != "audience"}
            fields = clean_item(body, current=current)
            if row["status"] == "published":
                # Once workers may have signed up, what they signed up for stays: only the text,
                # the place, the times still ahead and more stock may change.
                fixed = {"kind", "form", "mode", "per_person", "per_day", "campaign_id"} & set(fields)
                if fixed or "audience" in body:
                    raise Conflict("已发布的活动不能修改参与方式、条件或限额", code="item_published")
                if fields.get("stock", row["stock"]) < row["stock"]:
                    raise Conflict("已发布的活动不能减少名额", code="item_published")
                if "opens_at" in fields and row["opens_at"] <= now:
                    raise Conflict("报名已开始，不能修改报名开始时间", code="item_published")
            if fields.get("kind", row["kind"]) != row["kind"]:
                actor.require(PERMISSION[fields["kind"]])
            if "audience" in body:
                fields["audience"] = await self._audience(conn, row["org_path"], body["audience"])
            if fields.get("mode", row["mode"]) == "lottery" and row["mode"] != "lottery":
                raise invalid("抽签方式需在创建时选定")
            if fields.get("mode", row["mode"]) != "lottery" and row["mode"] == "lottery":
                raise invalid("抽签方式创建后不能更改")
            await self._check_campaign(conn, actor, fields.get("campaign_id"))
            if fields:
                await store.update(conn, offering_id, fields, now)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=row["org_id"], action=f"{row['kind']}.update",
                                     target=f"offering:{offering_id}",
                                     detail={"fields": sorted(fields)}, ip=actor.ip)
            row = await store.get(conn, offering_id)
        self._cache.pop(offering_id, None)
        return item_view(row, now)

    async def set_status(self, actor: Actor, offering_id: int, status: str) -> dict:
        """``published`` (from draft) or ``closed`` (from draft or published)."""
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self.owned(conn, actor, offering_id, lock=True)
            allowed = {"published": ("draft",), "closed": ("draft", "published")}[status]
            if row["status"] not in allowed:
                raise Conflict(f"当前状态不能{'发布' if status == 'published' else '结束'}",
                               code="item_state")
            if status == "published" and row["closes_at"] <= now:
                raise Conflict("报名截止时间已过，不能发布", code="item_state")
            if status == "published" and (reason := await _not_ready(conn, row)) is not None:
                raise Conflict(reason, code="item_not_ready")
            await store.set_status(conn, offering_id, status, now)
            verb = "publish" if status == "published" else "close"
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=row["org_id"], action=f"{row['kind']}.{verb}",
                                     target=f"offering:{offering_id}", detail={}, ip=actor.ip)
            row = await store.get(conn, offering_id)
        self._cache.pop(offering_id, None)
        return item_view(row, now)

    async def manage_list(self, actor: Actor, *, kind: str | None, status: str | None,
                          before_id: int | None) -> list[dict]:
        if kind is not None and kind not in KIND_NAMES:
            raise invalid("类型只能是活动或普惠服务")
        async with self._pool.acquire() as conn:
            rows = await store.within(conn, actor.org_path, status=status, kind=kind, limit=50,
                                      before_id=before_id)
        now = self._now()
        return [item_view(r, now) for r in rows if PERMISSION[r["kind"]] in actor.permissions]

    async def manage_get(self, actor: Actor, offering_id: int) -> dict:
        async with self._pool.acquire() as conn:
            row = await self.owned(conn, actor, offering_id)
        return item_view(row, self._now())

    async def create_campaign(self, actor: Actor, body: dict) -> dict:
        title = str(body.get("title") or "").strip()
        per_person = body.get("per_person")
        if not 1 <= len(title) <= 60:
            raise invalid("请填写专项活动名称（不超过 60 字）")
        if not isinstance(per_person, int) or isinstance(per_person, bool) or not 1 <= per_person <= 1000:
            raise invalid("每人限领应为 1–1000 之间的整数")
        if not ({"activity.manage", "service.manage"} & actor.permissions):
            actor.require("activity.manage")
        async with self._pool.acquire() as conn, conn.transaction():
            campaign_id = await store.insert_campaign(conn, org_id=actor.org_id, title=title,
                                                      per_person=per_person, created_by=actor.id,
                                                      now=self._now())
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=actor.org_id, action="campaign.create",
                                     target=f"campaign:{campaign_id}",
                                     detail={"title": title, "per_person": per_person}, ip=actor.ip)
        return {"id": campaign_id, "title": title, "per_person": per_person}

    # --- workers -----------------------------------------------------------------------------
    async def published(self, offering_id: int) -> dict | None:
        """A published or closed item as a plain dict, cached for a moment in this process: a
        drop reads its item thousands of times a second. Drafts are not found."""
        hit = self._cache.get(offering_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self._pool.acquire() as conn:
            row = await store.get(conn, offering_id)
            cap, known = None, {}
            if row is not None and row["campaign_id"] is not None:
                campaign = await store.campaign(conn, row["campaign_id"])
                cap = campaign["per_person"] if campaign else None
            audience = _audience(row["audience"]) if row is not None else {}
            if audience.get("orgs"):
                known = await store.org_paths(conn, audience["orgs"])
        item = None
        if row is not None and row["status"] != "draft":
            item = {**dict(row), "audience": audience, "campaign_cap": cap, "audience_paths": known}
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[offering_id] = (time.monotonic() + CACHE_SECONDS, item)
        return item

    async def published_of_form(self, offering_id: int, form: str) -> dict:
        """A published or closed quiz or vote item, or NotFound."""
        item = await self.published(offering_id)
        if item is None or item["form"] != form:
            raise NotFound(f"未找到该{CONTENT[form][0]}活动", code="item_not_found")
        return item

    async def require_eligible(self, item: dict, account_id: int) -> None:
        reason = await self.refusal(item, await self.profile(account_id))
        if reason is not None:
            raise Forbidden(f"不符合参与条件：{reason}", code="not_eligible")

    @staticmethod
    def admission_item(item: dict) -> Item:
        return Item(id=item["id"], campaign_id=item["campaign_id"], per_person=item["per_person"],
                    per_day=item["per_day"], campaign_cap=item["campaign_cap"])

    async def profile(self, account_id: int) -> eligibility.Profile:
        async with self._pool.acquire() as conn:
            row = await store.profile(conn, account_id)
        if row is None:
            return eligibility.Profile(account_id=account_id, registered=False, phone_verified=False,
                                       home_path=None, member_path=None, member_status=None)
        return eligibility.Profile(
            account_id=account_id, registered=row["registered"], phone_verified=row["phone_verified"],
            home_path=row["home_path"], member_path=row["member_path"],
            member_status=row["member_status"], migrant_worker=bool(row["migrant_worker"]),
            household_type=row["household_type"], job=row["job"])

    async def refusal(self, item: dict, profile: eligibility.Profile,
                      known: dict[int, str] | None = None) -> str | None:
        """Why this worker may not take part in ``item``, or None. ``known``: union paths
        already read."""
        audience = item["audience"]
        wanted = audience.get("orgs") or []
        known = known if known is not None else item.get("audience_paths")
        if known is None and wanted:
            async with self._pool.acquire() as conn:
                known = await store.org_paths(conn, wanted)
        paths = [known[o] for o in wanted if known and o in known]
        return eligibility.refusal(audience, item["org_path"], profile, paths)

    async def open_to(self, account_id: int) -> list[dict]:
        """Items published by the worker's unions and every union above them, the nearest first,
        each with whether the worker may take part and why not."""
        profile = await self.profile(account_id)
        paths = [p for p in (profile.member_path, profile.home_path) if p]
        now = self._now()
        async with self._pool.acquire() as conn:
            rows = await store.open_to(conn, paths, now, WORKER_LIST_LIMIT)
            views = [item_view(row, now) for row in rows]
            wanted = sorted({o for v in views for o in v["audience"].get("orgs", [])})
            known = await store.org_paths(conn, wanted) if wanted else {}
        out = []
        for row, view in zip(rows, views, strict=True):
            reason = await self.refusal({**dict(row), "audience": view["audience"]}, profile, known)
            out.append({**view, "eligible": reason is None, "reason": reason})
        return out

    async def detail(self, account_id: int, offering_id: int) -> dict:
        item = await self.published(offering_id)
        if item is None:
            raise NotFound("未找到该活动或服务", code="item_not_found")
        reason = await self.refusal(item, await self.profile(account_id))
        return {**item_view(item, self._now()), "eligible": reason is None, "reason": reason}
