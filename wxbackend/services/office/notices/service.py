"""Notices (通知公告): drafted by a cadre holding ``notice.publish``, reviewed (审核) by another
cadre of the same union as a work item of module ``notice``, and on approval published to every
active cadre the targets reach (rules in :mod:`.rules`).

Publication is one transaction inside the review step: a single INSERT … SELECT writes a row per
recipient (delivered), and the recipients with a bound WeChat get an Official Account template
message through the outbox, with idempotency keys and the quiet hours casework keeps. A
recipient's first opening of the notice in the console marks it read (WeChat reports delivery,
never reading); a receipt (回执) is an explicit answer to the notice's form before its deadline.
The sender follows the figures by union, lists who is behind, urges them (催办, at most every
``urge_every_hours`` per recipient; these in :mod:`.figures`, mixed in) and may recall the
notice: recipients keep the row and the title, the body is no longer shown, nothing is deleted.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from wxbackend.config import CaseworkSettings
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step, clean_opinion, holder
from wxbackend.services.casework.operations import Operations
from wxbackend.services.channels.media import MediaLibrary, media_view
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.office.forms import clean_answers
from wxbackend.services.office.notices.figures import NOT_FOUND, NoticeFigures, iso
from wxbackend.services.office.notices.rules import (
    LEVEL_NAMES,
    LEVELS,
    MODULE_CODE,
    PERMISSION,
    ROLES,
    STATUS_NAMES,
    clean_draft,
    clean_receipt,
    clean_targets,
    describe,
    kinds_of,
)
from wxbackend.store.casework import items as item_store
from wxbackend.store.office import notices as store


class OfficeNotices(NoticeFigures):
    def __init__(self, pool: asyncpg.Pool, engine: Engine, ops: Operations, media: MediaLibrary,
                 settings: CaseworkSettings, *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._engine = engine
        self._ops = ops
        self._media = media
        self._s = settings
        self._audit = audit
        self._now = now

    async def _audited(self, conn: asyncpg.Connection, actor: Actor, action: str, notice_id: int,
                       detail: dict | None = None) -> None:
        await self._audit.acted(conn, actor, action, f"notice:{notice_id}", detail or {})

    # --- drafting --------------------------------------------------------------------------------
    async def targets_menu(self, actor: Actor) -> dict:
        """What the sender may choose: the levels below them (with how many unions each), the
        cities of their subtree, the roles and the departments in use."""
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            kinds = {r["kind"]: r for r in await store.unions_below(conn, actor.org_path)}
            departments = await store.departments(conn, actor.org_path)
        levels = [{"level": level, "name": LEVEL_NAMES[level],
                   "unions": sum(kinds[k]["unions"] for k in ks if k in kinds)}
                  for level, ks in LEVELS.items()]
        cities = kinds["city"]["cities"] if "city" in kinds else []
        return {"levels": [v for v in levels if v["unions"]], "cities": cities,
                "roles": [{"role": k, "name": v} for k, v in ROLES.items()],
                "departments": departments}

    async def _resolve(self, conn: asyncpg.Connection, actor: Actor, targets: dict) -> dict[int, str]:
        """Every union the targets name exists and lies in the sender's subtree; their names."""
        ids = targets.get("unions") or ([targets["city_id"]] if "city_id" in targets else [])
        rows = {r["id"]: r for r in await store.orgs(conn, ids)}
        missing = [i for i in ids if i not in rows]
        if missing:
            raise InvalidInput(f"工会不存在：{'、'.join(map(str, missing[:10]))}", code="invalid_targets")
        outside = [rows[i]["name"] for i in ids if not actor.covers(rows[i]["path"])]
        if outside:
            raise Forbidden(f"只能向本单位及下级工会发通知，这些工会不在范围内：{'、'.join(outside[:10])}",
                            code="outside_subtree")
        if "city_id" in targets and rows[targets["city_id"]]["kind"] != "city":
            raise InvalidInput(f"{rows[targets['city_id']]['name']}不是市州总工会", code="invalid_targets")
        return {i: rows[i]["name"] for i in ids}

    async def _cleaned(self, conn: asyncpg.Connection, actor: Actor, body: dict) -> dict:
        draft = clean_draft(body)
        targets = clean_targets(body.get("targets"))
        form, due = clean_receipt(body.get("receipt"), self._now())
        await self._resolve(conn, actor, targets)
        await self._media.owned(conn, actor.org_path, draft["attachments"], "attachment")
        return {**draft, "targets": targets, "receipt_form": form, "receipt_due_at": due}

    async def create(self, actor: Actor, body: dict) -> dict:
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn, conn.transaction():
            fields = await self._cleaned(conn, actor, body)
            notice_id = await store.insert(conn, org_id=actor.org_id, created_by=actor.id,
                                           now=self._now(), **fields)
            await self._audited(conn, actor, "notice.create", notice_id, {"title": fields["title"]})
        return await self.notice(actor, notice_id)

    async def _own_draft(self, conn: asyncpg.Connection, actor: Actor, notice_id: int) -> asyncpg.Record:
        actor.require(PERMISSION)
        row = await store.get(conn, notice_id, lock=True)
        if row is None or not self._manages(actor, row):
            raise NotFound(NOT_FOUND, code="notice_not_found")
        if row["created_by"] != actor.id:
            raise Forbidden("只有起草人可以修改和提交通知", code="not_author")
        if row["status"] != "draft":
            raise Conflict(f"通知{STATUS_NAMES[row['status']]}，不能再修改或提交", code="not_draft")
        return row

    async def update(self, actor: Actor, notice_id: int, body: dict) -> dict:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._own_draft(conn, actor, notice_id)
            fields = await self._cleaned(conn, actor, body)
            await store.update_draft(conn, notice_id, now=self._now(), **fields)
            await self._audited(conn, actor, "notice.update", notice_id)
        return await self.notice(actor, notice_id)

    async def _audience(self, conn: asyncpg.Connection, row: asyncpg.Record) -> store.Audience:
        t = row["targets"]
        city = await store.orgs(conn, [t["city_id"]]) if "city_id" in t else []
        return store.Audience(row["org_path"], row["created_by"], kinds_of(t),
                              city[0]["path"] if city else None, t.get("unions", []),
                              t.get("roles"), t.get("departments"))

    async def submit(self, actor: Actor, notice_id: int) -> dict:
        """The draft goes to review: a work item for the union's other publishers."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._own_draft(conn, actor, notice_id)
            now = self._now()
            if row["receipt_due_at"] is not None and row["receipt_due_at"] <= now:
                raise InvalidInput("回执截止时间已过，请修改后再提交", code="invalid_receipt")
            audience = await store.audience_size(conn, await self._audience(conn, row))
            if audience == 0:
                raise Conflict("所选范围内没有可接收通知的干部，请调整接收范围", code="no_recipients")
            if not await store.other_publishers(conn, row["org_id"], actor.id, PERMISSION):
                raise Conflict("本单位没有其他有“通知公告发布”权限的干部，无人可以审核", code="no_reviewer")
            step = await self._engine.start(conn, MODULE_CODE, org_id=row["org_id"],
                                            title=row["title"][:200], data={},
                                            submitter_cadre_id=actor.id)
            await store.submitted(conn, notice_id, step.item["id"], now)
            await self._audited(conn, actor, "notice.submit", notice_id,
                                {"item": step.item["id"], "audience": audience})
        return await self.notice(actor, notice_id)

    # --- the review desk -------------------------------------------------------------------------
    async def review(self, actor: Actor, notice_id: int, body: dict) -> dict:
        """审核: ``approve`` publishes the notice, ``return`` sends it back to its author with
        the reviewer's opinion. Nobody reviews their own notice."""
        decision = body.get("decision")
        if decision not in ("approve", "return"):
            raise InvalidInput("审核意见应为 approve（同意发布）或 return（退回修改）",
                               code="invalid_decision")
        opinion = clean_opinion(body.get("opinion"), required=decision == "return")
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            row = await store.get(conn, notice_id)
        if row is None or not self._manages(actor, row):
            raise NotFound(NOT_FOUND, code="notice_not_found")
        if row["status"] != "reviewing":
            raise Conflict(f"通知{STATUS_NAMES[row['status']]}，不在审核中", code="not_reviewing")

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            notice = await store.get(conn, notice_id, lock=True)
            if notice["status"] != "reviewing" or notice["item_id"] != step.item["id"]:
                raise Conflict("该通知已审核", code="item_moved")
            task_id = body.get("task_id") or next(
                (t["id"] for t in await item_store.tasks_of(conn, step.item["id"])
                 if t["status"] == "open" and t["node"] == "review"), None)
            task = await self._ops.task_at(conn, step, task_id, {"review"}, "该通知不在审核环节")
            _, acted_for = await self._ops.my_task(conn, step, actor, task["id"])
            if notice["created_by"] in (actor.id, acted_for):
                raise Forbidden("不能审核自己起草的通知，请由本单位其他同志审核", code="own_notice")
            if actor.org_id != notice["org_id"]:
                raise Forbidden("通知由本单位有发布权限的干部审核", code="not_same_union")
            if decision == "return":
                await self._ops.complete(conn, step, actor, task["id"], "reject", opinion)
                await store.returned(conn, notice_id, actor.id, opinion or "", step.now)
                await self._tell_author(conn, notice, "审核退回，请修改后再提交")
                return {"audit": {"notice": notice_id}}
            if notice["receipt_due_at"] is not None and notice["receipt_due_at"] <= step.now:
                raise Conflict("回执截止时间已过，请退回起草人修改", code="receipt_due_passed")
            await self._ops.complete(conn, step, actor, task["id"], "pass", opinion)
            sent = await self._publish(conn, notice, actor, step.now)
            await self._engine.event(conn, step, "published", detail=sent)
            return {"audit": {"notice": notice_id, **sent}, **sent}

        return await self._engine.run(actor, row["item_id"], body.get("version"), operation,
                                      action=f"notice.{decision}", module=MODULE_CODE)

    async def _publish(self, conn: asyncpg.Connection, notice: asyncpg.Record, reviewer: Actor,
                       now: datetime) -> dict:
        """Recipients written in one statement, then the bound ones' messages queued."""
        count = await store.write_recipients(conn, notice["id"], now,
                                             await self._audience(conn, notice))
        if count == 0:
            raise Conflict("所选范围内已没有可接收通知的干部，请退回调整接收范围", code="no_recipients")
        await store.published(conn, notice["id"], reviewer.id, count, now)
        bound = await store.bound_recipients(conn, notice["id"])
        ask = "请查阅通知并按时回执" if notice["receipt_form"] else "请查阅通知"
        queued = await self._queue(conn, notice, [(r["cadre_id"], r["oa_openid"]) for r in bound],
                                   ask, f"notice:{notice['id']}:new")
        return {"recipients": count, "queued": queued}

    async def _queue(self, conn: asyncpg.Connection, notice: asyncpg.Record,
                     people: list[tuple[int, str]], ask: str, key: str) -> int:
        """Template messages to cadres: the notice, its issuer, the receipt deadline (or now)."""
        return await self._engine.reminders.announce(
            conn, people, thing=notice["title"], source=f"{notice['org_name']}通知",
            when=notice["receipt_due_at"] or self._now(), ask=ask, view="notices", key=key)

    async def _tell_author(self, conn: asyncpg.Connection, notice: asyncpg.Record, ask: str) -> None:
        bound = [(r["cadre_id"], r["oa_openid"])
                 for r in await store.bound_cadres(conn, [notice["created_by"]])]
        await self._queue(conn, notice, bound, ask, f"notice:{notice['id']}:returned:{notice['item_id']}")

    # --- reading ---------------------------------------------------------------------------------
    @staticmethod
    def _manages(actor: Actor, row: asyncpg.Record) -> bool:
        """The sender side: publishers of the issuing union and above; a draft only its author."""
        return PERMISSION in actor.permissions and actor.covers(row["org_path"]) \
            and (row["status"] != "draft" or row["created_by"] == actor.id)

    async def notice(self, actor: Actor, notice_id: int) -> dict:
        """A notice as the actor may see it. A recipient's first opening marks it read."""
        now = self._now()
        async with self._pool.acquire() as conn:
            row = await store.get(conn, notice_id)
            mine = await store.recipient(conn, notice_id, actor.id) if row else None
            manages = row is not None and self._manages(actor, row)
            if row is None or (mine is None and not manages):
                raise NotFound(NOT_FOUND, code="notice_not_found")
            if mine is not None and row["status"] == "published" and mine["read_at"] is None:
                await store.mark_read(conn, notice_id, actor.id, now)
                mine = await store.recipient(conn, notice_id, actor.id)
            files = await store.attachments(conn, list(row["attachments"]))
            view = self._view(row, files, shown=manages or row["status"] == "published")
            if mine is not None:
                view["mine"] = self._mine(row, mine, now)
            if manages:
                view["manage"] = await self._manage(conn, actor, row, now)
        return view

    def _view(self, row: asyncpg.Record, files: list[asyncpg.Record], *, shown: bool) -> dict:
        view = {"id": row["id"], "title": row["title"], "org_id": row["org_id"],
                "org_name": row["org_name"], "author_name": row["author_name"],
                "status": row["status"], "status_name": STATUS_NAMES[row["status"]],
                "published_at": iso(row["published_at"]), "recalled_at": iso(row["recalled_at"]),
                "recall_reason": row["recall_reason"],
                "has_receipt": row["receipt_form"] is not None,
                "receipt_due_at": iso(row["receipt_due_at"]),
                "body": None, "attachments": [], "receipt_form": None}
        if shown:
            view.update(body=row["body"], attachments=[media_view(f) for f in files],
                        receipt_form=row["receipt_form"])
        return view

    def _mine(self, row: asyncpg.Record, mine: asyncpg.Record, now: datetime) -> dict:
        open_ = row["status"] == "published" and row["receipt_form"] is not None \
            and now < row["receipt_due_at"]
        return {"delivered_at": iso(mine["delivered_at"]), "read_at": iso(mine["read_at"]),
                "receipt_at": iso(mine["receipt_at"]),
                "receipt": mine["receipt"] if row["status"] == "published" else None,
                "can_answer": open_, "urged_at": iso(mine["urged_at"])}

    async def _manage(self, conn: asyncpg.Connection, actor: Actor, row: asyncpg.Record,
                      now: datetime) -> dict:
        names = await self._target_names(conn, row["targets"])
        review = None
        if row["status"] == "reviewing":
            item = await item_store.get_item(conn, row["item_id"])
            identities = await item_store.identities(conn, actor.id, now)
            tasks = [t for t in await item_store.tasks_of(conn, row["item_id"])
                     if t["status"] == "open" and t["node"] == "review"]
            mine = [t["id"] for t in tasks if holder(t, identities) is not None]
            review = {"item_id": row["item_id"], "version": item["version"],
                      "task_id": mine[0] if mine else None,
                      "can_review": bool(mine) and actor.id != row["created_by"]
                      and actor.org_id == row["org_id"]}
        author = row["created_by"] == actor.id
        return {"targets": row["targets"], "targets_text": describe(row["targets"], names),
                "author_id": row["created_by"], "reviewer_name": row["reviewer_name"],
                "item_id": row["item_id"], "return_opinion": row["return_opinion"],
                "created_at": iso(row["created_at"]), "submitted_at": iso(row["submitted_at"]),
                "recipients": row["recipients"], "review": review,
                "can_edit": author and row["status"] == "draft",
                "can_recall": author and row["status"] == "published",
                "can_urge": row["status"] == "published"}

    async def _target_names(self, conn: asyncpg.Connection, targets: dict) -> dict[int, str]:
        ids = targets.get("unions") or ([targets["city_id"]] if "city_id" in targets else [])
        return {r["id"]: r["name"] for r in await store.orgs(conn, ids)}

    async def notices(self, actor: Actor, *, status: str | None = None, limit: int = 50,
                      offset: int = 0) -> dict:
        """The notices of the actor's union (its drafts only the actor's own), newest first."""
        actor.require(PERMISSION)
        if status is not None and status not in STATUS_NAMES:
            raise InvalidInput("status 应为 draft、reviewing、published 或 recalled", code="invalid_filter")
        async with self._pool.acquire() as conn:
            rows = await store.of_union(conn, actor.org_id, actor.id, status,
                                        max(1, min(limit, 200)), max(0, offset))
        return {"notices": [{
            "id": r["id"], "title": r["title"], "status": r["status"],
            "status_name": STATUS_NAMES[r["status"]], "author_name": r["author_name"],
            "mine": r["created_by"] == actor.id, "item_id": r["item_id"],
            "created_at": iso(r["created_at"]), "published_at": iso(r["published_at"]),
            "receipt_due_at": iso(r["receipt_due_at"]), "has_receipt": r["receipt_form"] is not None,
            "recipients": r["recipients"], "read": r["read"], "answered": r["answered"],
            "return_opinion": r["return_opinion"]} for r in rows]}

    async def inbox(self, actor: Actor, *, unread: bool = False, limit: int = 50,
                    offset: int = 0) -> dict:
        """Every cadre's notices, unread first; no permission needed."""
        async with self._pool.acquire() as conn:
            rows = await store.inbox(conn, actor.id, unread, max(1, min(limit, 200)), max(0, offset))
            now = self._now()
            counts = await store.inbox_counts(conn, actor.id, now)
        return {"counts": dict(counts), "notices": [{
            "id": r["id"], "title": r["title"], "org_name": r["org_name"], "status": r["status"],
            "status_name": STATUS_NAMES[r["status"]], "unread": r["unread"],
            "delivered_at": iso(r["delivered_at"]), "read_at": iso(r["read_at"]),
            "has_receipt": r["has_receipt"], "receipt_due_at": iso(r["receipt_due_at"]),
            "receipt_at": iso(r["receipt_at"]),
            "receipt_open": r["has_receipt"] and r["status"] == "published" and now < r["receipt_due_at"],
            "urged": r["urged_at"] is not None and r["receipt_at"] is None} for r in rows]}

    # --- receipts ---------------------------------------------------------------------------------
    async def answer(self, actor: Actor, notice_id: int, body: dict) -> dict:
        """回执: the recipient's answers to the notice's form, until its deadline (and again,
        amended, until then)."""
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.get(conn, notice_id)
            mine = await store.recipient(conn, notice_id, actor.id, lock=True) if row else None
            if mine is None:
                if row is not None and self._manages(actor, row):
                    raise Forbidden("您不在该通知的接收范围内，无需回执", code="not_recipient")
                raise NotFound(NOT_FOUND, code="notice_not_found")
            if row["status"] != "published":
                raise Conflict("该通知已撤回，无需回执", code="notice_recalled")
            if row["receipt_form"] is None:
                raise Conflict("该通知不需要回执", code="no_receipt")
            if now >= row["receipt_due_at"]:
                due = row["receipt_due_at"].astimezone(CHINA)
                raise Conflict(f"回执已于 {due:%Y-%m-%d %H:%M} 截止，不能再提交", code="receipt_closed")
            answers = clean_answers(row["receipt_form"], body.get("answers"),
                                    today=now.astimezone(CHINA).date())
            await store.answer(conn, notice_id, actor.id, answers, now)
            await self._audited(conn, actor, "notice.receipt", notice_id,
                                {"amended": mine["receipt_at"] is not None})
        return await self.notice(actor, notice_id)

    # --- the sender: 撤回 --------------------------------------------------------------------------
    async def recall(self, actor: Actor, notice_id: int, body: dict) -> dict:
        """撤回 by its author: the recipients keep the title and their rows, not the body."""
        reason = clean_opinion(body.get("reason"), required=True)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._managed(conn, actor, notice_id, lock=True)
            if row["created_by"] != actor.id:
                raise Forbidden("只有起草人可以撤回通知", code="not_author")
            if row["status"] != "published":
                raise Conflict(f"通知{STATUS_NAMES[row['status']]}，只能撤回已发布的通知",
                               code="not_published")
            now = self._now()
            await store.recalled(conn, notice_id, reason or "", now)
            step = await self._engine.load(conn, row["item_id"], actor_id=actor.id, module=MODULE_CODE)
            await self._engine.event(conn, step, "recalled", opinion=reason)
            await self._audited(conn, actor, "notice.recall", notice_id)
        return await self.notice(actor, notice_id)
