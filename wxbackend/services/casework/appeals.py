"""Workers' appeals (信访、职工诉求) through WeChat, and the union's desk that answers them.

A worker files an appeal from the H5 pages or the Mini Program: its category, the union that
should act, what happened, photos and documents (re-encoded through the image pipeline, so
EXIF and location are gone, then sealed), and how to be reached. Suggestions may be anonymous;
anything that asks for a decision is real-name, carrying the account's verified phone.

Each appeal is a work item of module ``appeal`` running the desk's process: 登记受理 (the union
accepts or declines, with a reason, within 15 days), 办理答复 (a written reply within 60 days of
acceptance; one approved extension of at most 30 days, whose reason the worker is told), and
复查 (a review by the union above, requested within 30 days of the reply and answered within
30). These defaults follow the 信访工作条例 of 2022 (articles 25/26, 34 and 35; docs/casework.md);
the platform office changes them by publishing a new version of the process.

The worker follows progress on a page and through WeChat, and rates the reply; 不满意 sends the
item back for handling once. What the worker wrote and the reply are sealed per column; only the
cadres handling the appeal and the unions above them see it, and every view is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from wxbackend.infra.pii import PersonalData, mask_phone
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step, clean_opinion, clean_text
from wxbackend.services.casework.files import seal_upload
from wxbackend.services.casework.modules import Module
from wxbackend.services.casework.operations import Operations
from wxbackend.services.casework.worklists import EVENT_NAMES, STATUS_NAMES, WorkLists
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from wxbackend.services.membership.membership import row_id
from wxbackend.store.casework import appeals as store
from wxbackend.store.casework import events as event_store
from wxbackend.store.casework import items as item_store

MODULE_CODE = "appeal"
PERMISSION = "appeal.handle"
RATINGS = {"satisfied": "满意", "basically": "基本满意", "dissatisfied": "不满意"}
MAX_DESCRIPTION = 2000
MIN_DESCRIPTION = 10
MAX_FILES = 9
MAX_UNFILED = 20
APPEALS_PER_DAY = 5
REVIEW_REQUEST_DAYS = 30     # 复查 may be asked within 30 days of the reply (条例 art. 35)
COLUMNS = ("description", "employer", "contact", "phone", "reply", "review_reply", "revisit_note")

GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "accept",
     "item_deadline": {"count": 15, "unit": "calendar", "warn": 3, "escalate": 2}},
    {"id": "accept", "type": "task", "name": "登记受理", "assign": [{"role": "office"}],
     "deadline": {"count": 15, "unit": "calendar", "warn": 3, "escalate": 2}, "next": "accepted"},
    {"id": "accepted", "type": "exclusive",
     "branches": [{"when": "decision == 'reject'", "next": "declined"}, {"next": "handle"}]},
    {"id": "handle", "type": "task", "name": "办理答复", "assign": [{"role": "office"}],
     "deadline": {"count": 60, "unit": "calendar", "warn": 7, "escalate": 3},
     "item_deadline": {"count": 60, "unit": "calendar", "warn": 7, "escalate": 3}, "next": "replied"},
    {"id": "replied", "type": "end", "outcome": "replied"},
    {"id": "declined", "type": "end", "outcome": "declined"},
    {"id": "review", "type": "task", "name": "复查", "assign": [{"role": "upper"}], "entry": True,
     "deadline": {"count": 30, "unit": "calendar", "warn": 5, "escalate": 2},
     "item_deadline": {"count": 30, "unit": "calendar", "warn": 5, "escalate": 2}, "next": "reviewed"},
    {"id": "reviewed", "type": "end", "outcome": "reviewed"},
]}

APPEAL = Module(code=MODULE_CODE, name="职工诉求（信访）", permission=PERMISSION, graph=GRAPH,
                fields=frozenset({"category"}), extension_days=30, extensions=1, sensitive=True,
                desk_nodes=frozenset({"accept", "handle", "review"}))

# What the worker sees of the timeline (cadres' internal steps stay internal).
WORKER_EVENTS = {"opened", "accepted", "declined", "routed", "extended", "replied", "reopened",
                 "review_requested", "rated"}
OUTCOME_NAMES = {"replied": "已答复", "declined": "不予受理", "reviewed": "复查已答复",
                 "withdrawn": "已撤销"}


def _text(value: object, what: str, *, low: int = 0, high: int = 200,
          required: bool = True) -> str | None:
    return clean_text(value, what, low=low, high=high, code="appeal_invalid", required=required)


class Appeals:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, engine: Engine, ops: Operations,
                 lists: WorkLists, media: MediaLibrary, *, categories: tuple[str, ...],
                 anonymous: tuple[str, ...], audit: AuditTrail, now: Clock = china_now) -> None:
        # category -> may it be filed anonymously (it asks for no decision)
        self.categories = {name: name in anonymous for name in categories}
        self._pool = pool
        self._pii = pii
        self._engine = engine
        self._ops = ops
        self._lists = lists
        self._media = media
        self._audit = audit
        self._now = now
        engine.listeners[MODULE_CODE] = self._on_event

    def _seal(self, value: str | None, column: str) -> bytes | None:
        return self._pii.encrypt(value, f"appeals.{column}") if value else None

    def _open(self, blob: bytes | None, column: str) -> str | None:
        return self._pii.decrypt(blob, f"appeals.{column}") if blob else None

    def _written(self, row: asyncpg.Record) -> dict:
        """What the worker wrote and what they were answered, opened."""
        return {column: self._open(row[f"{column}_enc"], column)
                for column in ("description", "employer", "contact", "reply", "review_reply")}

    # --- files --------------------------------------------------------------------------------
    async def upload(self, account_id: int, data: bytes, filename: str, kind: str) -> dict:
        """A photo or document for an appeal not yet filed (checked, cleaned, sealed)."""
        upload = await seal_upload(self._media, self._pii, data, filename, kind, "appeal_files.data",
                                   code="appeal_file_kind")
        async with self._pool.acquire() as conn:
            if await store.unfiled_count(conn, account_id) >= MAX_UNFILED:
                raise TooManyRequests("待提交的附件过多，请先提交诉求或稍后再试", code="appeal_files_full")
            file_id = await store.insert_file(conn, account_id, kind, upload.filename, upload.content_type,
                                              upload.size, upload.sealed, self._now())
        return {"id": file_id, "kind": kind, "filename": upload.filename, "size": upload.size}

    async def worker_file(self, account_id: int, file_id: int) -> tuple[bytes, str, str]:
        async with self._pool.acquire() as conn:
            row = await store.file(conn, file_id)
        if row is None or row["account_id"] != account_id:
            raise NotFound("文件不存在", code="file_not_found")
        return self._file_body(row)

    def _file_body(self, row: asyncpg.Record) -> tuple[bytes, str, str]:
        return (self._pii.decrypt_bytes(row["data_enc"], "appeal_files.data"), row["content_type"],
                row["filename"])

    async def cadre_file(self, actor: Actor, file_id: int) -> tuple[bytes, str, str]:
        async with self._pool.acquire() as conn:
            row = await store.file(conn, file_id)
            if row is None or row["item_id"] is None:
                raise NotFound("文件不存在", code="file_not_found")
            item = await item_store.get_item(conn, row["item_id"])
            await self._lists.visible(conn, actor, item, await item_store.tasks_of(conn, item["id"]))
            async with conn.transaction():
                await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                         org_id=actor.org_id, action="appeal.file_view",
                                         target=f"item:{item['id']}", detail={"file": file_id},
                                         ip=actor.ip)
        return self._file_body(row)

    async def drop_unfiled(self) -> int:
        """Files uploaded a day ago for an appeal never filed go (the worker's own, sealed)."""
        async with self._pool.acquire() as conn:
            return await store.drop_unfiled(conn, self._now() - timedelta(days=1))

    # --- filing -------------------------------------------------------------------------------
    async def submit(self, account_id: int, body: dict) -> dict:
        if not isinstance(body, dict):
            raise InvalidInput("请求格式有误", code="appeal_invalid")
        category = body.get("category")
        if not isinstance(category, str) or category not in self.categories:
            raise InvalidInput(f"诉求类别应为：{'、'.join(self.categories)}", code="appeal_category")
        anonymous = body.get("anonymous", False) is True
        if anonymous and not self.categories[category]:
            raise InvalidInput("只有意见建议可以匿名；需要答复处理的诉求请实名提交",
                               code="anonymous_not_allowed")
        org_id = row_id(body.get("org_id"))
        if org_id is None:
            raise InvalidInput("请选择受理的工会", code="appeal_org")
        description = _text(body.get("description"), "诉求内容", low=MIN_DESCRIPTION, high=MAX_DESCRIPTION)
        employer = _text(body.get("employer"), "工作单位", high=100, required=False)
        contact = _text(body.get("contact"), "联系方式", high=100, required=False)
        files = body.get("files", [])
        if not isinstance(files, list) or len(files) > MAX_FILES \
                or any(row_id(f) is None for f in files) or len(set(files)) != len(files):
            raise InvalidInput(f"附件最多 {MAX_FILES} 个", code="appeal_files")
        grants = body.get("subscribed") or []
        grants = [g for g in grants if isinstance(g, str) and len(g) <= 64][:3] \
            if isinstance(grants, list) else []
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            account = await store.account(conn, account_id)
            if account is None:
                raise Forbidden("账号不可用", code="account_inactive")
            phone = None
            if not anonymous:
                if account["phone_enc"] is None:
                    raise Forbidden("实名提交需要先验证手机号", code="phone_required")
                phone = self._pii.decrypt(account["phone_enc"], "accounts.phone")
            org = await store.union(conn, org_id)
            if org is None:
                raise NotFound("所选工会不存在", code="appeal_org")
            day_start = now.astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
            if await store.filed_since(conn, account_id, day_start) >= APPEALS_PER_DAY:
                raise TooManyRequests(f"每天最多提交 {APPEALS_PER_DAY} 件诉求", code="appeals_per_day")
            owned = await store.unfiled_files(conn, account_id, [int(f) for f in files])
            if len(owned) != len(files):
                raise InvalidInput("附件不存在或已用于其他诉求，请重新上传", code="appeal_files")
            title = f"{category}·{now.astimezone(CHINA):%m月%d日}提交"
            step = await self._engine.start(
                conn, MODULE_CODE, org_id=org_id, title=title, data={"category": category},
                submitter_account_id=account_id, notice_grants=grants)
            await store.insert(conn, item_id=step.item["id"], account_id=account_id,
                               category=category, anonymous=anonymous,
                               description=self._seal(description, "description"),
                               employer=self._seal(employer, "employer"),
                               contact=self._seal(contact, "contact"),
                               phone=self._seal(phone, "phone"))
            await store.attach_files(conn, step.item["id"], [int(f) for f in files])
        return await self.worker_view(account_id, step.item["id"])

    # --- the worker's pages -------------------------------------------------------------------
    async def mine(self, account_id: int) -> dict:
        async with self._pool.acquire() as conn:
            rows = await store.of_account(conn, account_id)
        return {"appeals": [self._worker_summary(r) for r in rows]}

    def _worker_summary(self, row: asyncpg.Record) -> dict:
        return {"id": row["item_id"], "category": row["category"], "title": row["title"],
                "status": row["status"], "status_name": self._status_name(row),
                "org_name": row["org_name"], "submitted_at": row["opened_at"].isoformat(),
                "due_at": row["due_at"].isoformat() if row["due_at"] and row["status"] != "closed" else None,
                "due_provisional": row["due_provisional"], "replied": row["replied_at"] is not None,
                "rating": row["rating"]}

    @staticmethod
    def _status_name(row: asyncpg.Record) -> str:
        if row["status"] == "closed":
            return OUTCOME_NAMES.get(row["outcome"], "已办结")
        if row["accepted_at"] is None:
            return "待受理"
        return STATUS_NAMES[row["status"]] if row["status"] != "open" else "办理中"

    async def worker_view(self, account_id: int, item_id: int) -> dict:
        async with self._pool.acquire() as conn:
            row = await store.get(conn, item_id)
            if row is None or row["account_id"] != account_id:
                raise NotFound("诉求不存在", code="appeal_not_found")
            events = await store.worker_events(conn, item_id, sorted(WORKER_EVENTS))
            files = await store.files_of(conn, item_id)
        return {**self._worker_summary(row), **self._written(row),
                "anonymous": row["anonymous"],
                "replied_at": row["replied_at"].isoformat() if row["replied_at"] else None,
                "files": [{"id": f["id"], "kind": f["kind"], "filename": f["filename"]} for f in files],
                "progress": [{"kind": e["kind"], "name": EVENT_NAMES.get(e["kind"], e["kind"]),
                              "at": e["at"].isoformat(), "note": self._worker_note(e)}
                             for e in events],
                "can_rate": self._can_rate(row),
                "can_request_review": self._can_review(row, self._now())}

    @staticmethod
    def _worker_note(event: asyncpg.Record) -> str | None:
        detail = event["detail"]
        if event["kind"] == "routed":
            return f"转至{detail.get('to_name', '')}办理"
        if event["kind"] == "extended":
            return f"办理期限延长 {detail.get('days')} 天：{detail.get('reason', '')}"
        if event["kind"] == "declined":
            return event["opinion"]
        if event["kind"] == "rated":
            return RATINGS.get(detail.get("rating"), None)
        return None

    @staticmethod
    def _can_rate(row: asyncpg.Record) -> bool:
        return row["status"] == "closed" and row["outcome"] in {"replied", "reviewed"} \
            and row["ratings"] < row["replies"]

    @staticmethod
    def _can_review(row: asyncpg.Record, now: datetime) -> bool:
        return row["status"] == "closed" and row["outcome"] == "replied" \
            and row["review_requested_at"] is None and row["replied_at"] is not None \
            and now - row["replied_at"] <= timedelta(days=REVIEW_REQUEST_DAYS)

    async def rate(self, account_id: int, item_id: int, body: dict) -> dict:
        rating = body.get("rating") if isinstance(body, dict) else None
        if not isinstance(rating, str) or rating not in RATINGS:
            raise InvalidInput("评价应为满意、基本满意或不满意", code="invalid_rating")
        comment = _text(body.get("comment"), "评价意见", high=500, required=False)
        async with self._pool.acquire() as conn, conn.transaction():
            step = await self._engine.load(conn, item_id, account_id=account_id, module=MODULE_CODE)
            row = await store.get(conn, item_id)
            if row["account_id"] != account_id:
                raise Forbidden("只有提交人可以评价", code="not_submitter")
            if not self._can_rate(row):
                raise Conflict("答复后才能评价，每次答复评价一次", code="cannot_rate")
            await store.rated(conn, item_id, rating, self._now())
            await self._engine.event(conn, step, "rated", opinion=comment, detail={"rating": rating})
            if rating == "dissatisfied" and not row["reopened"] and row["outcome"] == "replied":
                await store.mark_reopened(conn, item_id)
                await self._engine.reopen(conn, step, "handle", opinion=comment)
            await self._engine.save(conn, step)
        return await self.worker_view(account_id, item_id)

    async def request_review(self, account_id: int, item_id: int, body: dict) -> dict:
        reason = _text(body.get("reason") if isinstance(body, dict) else None, "复查理由", low=5, high=1000)
        async with self._pool.acquire() as conn, conn.transaction():
            step = await self._engine.load(conn, item_id, account_id=account_id, module=MODULE_CODE)
            row = await store.get(conn, item_id)
            if row["account_id"] != account_id:
                raise Forbidden("只有提交人可以申请复查", code="not_submitter")
            if row["review_requested_at"] is not None:
                raise Conflict("复查只能申请一次", code="review_used")
            if not self._can_review(row, self._now()):
                raise Conflict(f"复查应在收到答复后 {REVIEW_REQUEST_DAYS} 日内申请", code="review_closed")
            await store.review_requested(conn, item_id, self._now())
            await self._engine.event(conn, step, "review_requested", opinion=reason)
            await self._engine.reopen(conn, step, "review", opinion=reason, kind="reopened")
            await self._engine.save(conn, step)
        return await self.worker_view(account_id, item_id)

    # --- the desk -------------------------------------------------------------------------------
    async def desk_view(self, actor: Actor, item_id: int) -> dict:
        """The item page plus what the worker wrote, for those who may see it (audited)."""
        view = await self._lists.item(actor, item_id)
        if view["module"] != MODULE_CODE:
            raise NotFound("诉求不存在", code="appeal_not_found")
        async with self._pool.acquire() as conn:
            row = await store.get(conn, item_id)
            files = await store.files_of(conn, item_id)
        phone = self._open(row["phone_enc"], "phone")
        view["appeal"] = {
            "category": row["category"], "anonymous": row["anonymous"], **self._written(row),
            "phone": phone, "phone_masked": mask_phone(phone),
            "rating": row["rating"], "rating_name": RATINGS.get(row["rating"]),
            "revisited_at": row["revisited_at"].isoformat() if row["revisited_at"] else None,
            "revisit_note": self._open(row["revisit_note_enc"], "revisit_note"),
            "erased": row["erased_at"] is not None,
            "files": [{"id": f["id"], "kind": f["kind"], "filename": f["filename"], "size": f["size"]}
                      for f in files]}
        return view

    async def decide(self, actor: Actor, item_id: int, body: dict) -> dict:
        """受理 or 不予受理 (with a reason), on the 登记受理 task."""
        accept = body.get("accept")
        if not isinstance(accept, bool):
            raise InvalidInput("请选择受理或不予受理", code="appeal_invalid")
        opinion = clean_opinion(body.get("opinion"), required=not accept)

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            # Anything refused below (not theirs, moved on) rolls back what was written here.
            task = await self._ops.task_at(conn, step, body.get("task_id"), {"accept"},
                                           "该诉求不在受理环节")
            if accept:
                await store.accepted(conn, item_id, step.now)
            await self._engine.event(conn, step, "accepted" if accept else "declined", opinion=opinion)
            await self._ops.complete(conn, step, actor, task["id"], "pass" if accept else "reject", opinion)
            return {"audit": {"accept": accept}}

        return await self._engine.run(actor, item_id, body.get("version"), operation,
                                      action="appeal.decide", module=MODULE_CODE)

    async def reply(self, actor: Actor, item_id: int, body: dict) -> dict:
        """The written reply (答复), on 办理答复 or 复查; the item closes."""
        text = _text(body.get("reply"), "答复内容", low=10, high=5000)

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            task = await self._ops.task_at(conn, step, body.get("task_id"), {"handle", "review"},
                                           "该诉求尚未受理，不能答复")
            column = "reply" if task["node"] == "handle" else "review_reply"
            await store.replied(conn, item_id, column, self._seal(text, column), step.now)
            await self._engine.event(conn, step, "replied", detail={"review": task["node"] == "review"})
            await self._ops.complete(conn, step, actor, task["id"], "pass",
                                     clean_opinion(body.get("opinion")))
            return {}

        return await self._engine.run(actor, item_id, body.get("version"), operation,
                                      action="appeal.reply", module=MODULE_CODE)

    async def revisit(self, actor: Actor, item_id: int, body: dict) -> dict:
        """回访: the desk called the worker back after closing."""
        note = _text(body.get("note"), "回访情况", low=2, high=1000)

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            self._ops.require_handler(actor, step)
            if step.item["status"] != "closed":
                raise Conflict("办结后才能回访", code="not_closed")
            await store.revisited(conn, item_id, self._seal(note, "revisit_note"), step.now)
            await self._engine.event(conn, step, "revisited")
            return {}

        return await self._engine.run(actor, item_id, body.get("version"), operation,
                                      action="appeal.revisit", module=MODULE_CODE)

    # --- telling the worker ---------------------------------------------------------------------
    async def _on_event(self, conn: asyncpg.Connection, step: Step, kind: str, detail: dict) -> None:
        messages = {"accepted": ("已受理", "我们将尽快办理并答复"),
                    "declined": ("不予受理", "详情请查看诉求进度"),
                    "routed": ("已转送", f"已转至{detail.get('to_name', '')}办理"),
                    "extended": ("已延期", f"延期原因：{detail.get('reason', '')}"),
                    "replied": ("已答复", "请查看答复并评价")}
        if kind not in messages or step.item["submitter_account_id"] is None:
            return
        progress, next_step = messages[kind]
        await self._engine.reminders.submitter(
            conn, step.item["id"], progress, next_step,
            f"appeal:{step.item['id']}:{kind}:{step.item['version']}",
            f"appeals.html?id={step.item['id']}")

    # --- the worker's own data ------------------------------------------------------------------
    async def export(self, conn: asyncpg.Connection, account_id: int) -> list[dict]:
        """Every appeal the account filed, with its text and reply (PIPL art. 45)."""
        out = []
        for row in await store.of_account(conn, account_id):
            out.append({**self._worker_summary(row), **self._written(row),
                        "files": [f["filename"] for f in await store.files_of(conn, row["item_id"])]})
        return out

    async def forget(self, conn: asyncpg.Connection, account_id: int) -> None:
        """Cancellation: what the worker wrote, their files and contact go; an open appeal is
        closed as withdrawn (no one is left to answer). The item and its events stay, without
        the person, for the statistics."""
        for row in await store.of_account(conn, account_id):
            if row["status"] != "closed":
                await self._engine.withdraw_for_cancellation(conn, row["item_id"], account_id)
        await store.erase_account(conn, account_id, self._now())
        await item_store.forget_submitter(conn, account_id)
        await event_store.forget_account(conn, account_id)
