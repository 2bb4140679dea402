"""Applications to a configured business module: a worker from WeChat (H5 or the Mini Program),
or a cadre from the console, fills the module's form; the application is a work item of the
module's code, run on the approved process. Personal fields (ID number, phone, and whatever the
definition marks ``sensitive``) are sealed in ``business_applications`` and never reach the item's
data, which branch conditions read; handlers see them in full (audited), everyone else masked.

Steps with a form of their own (a payment record: amount, date, voucher) are desk steps: the
handler records the form with the decision, never a bare 通过.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import asyncpg

from wxbackend.infra.pii import PersonalData
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step, clean_opinion
from wxbackend.services.casework.files import seal_upload
from wxbackend.services.casework.operations import Operations
from wxbackend.services.casework.worklists import WorkLists
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound, TooManyRequests
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office import forms
from wxbackend.store.casework import items as item_store
from wxbackend.store.office import business as store

SEALED = "business_applications.sealed"
FILES = "business_files.data"
PER_DAY = 3            # applications to one module by one person a day
MAX_UNFILED = 20       # files uploaded and not yet part of an application
STATUS_NAMES = {"open": "办理中", "suspended": "已中止", "closed": "已办结"}


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r + ".") for r in roots)


class BusinessApplications:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, engine: Engine, ops: Operations,
                 lists: WorkLists, media: MediaLibrary, *, audit: AuditTrail,
                 now: Clock = china_now) -> None:
        self._media = media
        self._pool = pool
        self._pii = pii
        self._engine = engine
        self._ops = ops
        self._lists = lists
        self._audit = audit
        self._now = now

    def _today(self):
        return self._now().astimezone(CHINA).date()

    async def _roots(self, conn: asyncpg.Connection, row: asyncpg.Record) -> list[str]:
        return [u["path"] for u in await store.unions(conn, list(row["open_to"]))]

    async def _live(self, conn: asyncpg.Connection, module_id: int) -> asyncpg.Record:
        row = await store.module(conn, module_id)
        if row is None or row["status"] != "live":
            raise NotFound("该业务不存在或已停办", code="business_module_not_found")
        return row

    # --- what may be applied for ------------------------------------------------------------------
    async def offered_to_worker(self, account_id: int, entrance: str) -> dict:
        async with self._pool.acquire() as conn:
            union = await store.member_union(conn, account_id)
            out = []
            for row in await store.live(conn):
                if entrance not in row["entrances"] or row["applicants"] == "cadres":
                    continue
                roots = await self._roots(conn, row)
                if row["applicants"] == "members" and (union is None or not _covered(union["path"], roots)):
                    continue
                out.append(self._offer(row))
        return {"modules": out, "union": dict(union) if union else None}

    async def offered_to_cadre(self, actor: Actor) -> dict:
        async with self._pool.acquire() as conn:
            out = [self._offer(row) for row in await store.live(conn) if row["applicants"] == "cadres"
                   and _covered(actor.org_path, await self._roots(conn, row))]
        return {"modules": out}

    @staticmethod
    def _offer(row: asyncpg.Record) -> dict:
        return {"id": row["id"], "code": row["code"], "name": row["name"], "version": row["version"],
                "department": row["department"], "purpose": row["purpose"], "form": row["form"],
                "applicants": row["applicants"], "open_to": list(row["open_to"])}

    # --- applying -----------------------------------------------------------------------------------
    def _split(self, form: dict, body: object) -> tuple[dict, bytes | None, dict, object]:
        """(plain answers, the sealed personal ones, attached file ids by field, the subscribe
        grants): all checked before any connection is taken."""
        if not isinstance(body, dict):
            raise InvalidInput("请求格式有误", code="invalid_answer")
        answers = forms.clean_answers(form, body.get("answers"), today=self._today())
        sensitive, attached = forms.sensitive_keys(form), forms.attachment_keys(form)
        personal = {k: v for k, v in answers.items() if k in sensitive}
        files = {k: v for k, v in answers.items() if k in attached}
        plain = {k: v for k, v in answers.items() if k not in sensitive and k not in attached}
        sealed = self._pii.encrypt(json.dumps(personal, ensure_ascii=False), SEALED) if personal else None
        return plain, sealed, files, body.get("subscribed")

    async def apply_as_worker(self, account_id: int, entrance: str, module_id: int, body: dict) -> dict:
        async with self._pool.acquire() as conn:
            row = await self._live(conn, module_id)
        if entrance not in row["entrances"] or row["applicants"] == "cadres":
            raise Forbidden("该业务不在此入口办理", code="entrance_closed")
        plain, sealed, files, grants = self._split(row["form"], body)
        async with self._pool.acquire() as conn, conn.transaction():
            roots = await self._roots(conn, row)
            if row["applicants"] == "members":
                union = await store.member_union(conn, account_id)
                if union is None:
                    raise Forbidden("该业务仅限本工会会员申请，请先入会或完成会员认证", code="members_only")
            else:
                wanted = row_id(body.get("org_id"))
                found = await store.unions(conn, [wanted]) if wanted else []
                if not found:
                    raise InvalidInput("请选择受理的工会", code="union_required")
                union = found[0]
            if not _covered(union["path"], roots):
                raise Forbidden("您所在的工会尚未开办该业务", code="union_not_open")
            step = await self._start(conn, row, union["id"], plain, sealed, entrance, account_id=account_id,
                                     grants=grants)
            for field, ids in files.items():
                if await store.claim_files(conn, account_id, step.item["id"], field, ids) != len(ids):
                    raise InvalidInput("附件不存在或已用于其他申请，请重新上传", code="invalid_answer")
        return await self.worker_view(account_id, step.item["id"])

    async def apply_as_cadre(self, actor: Actor, module_id: int, body: dict) -> dict:
        async with self._pool.acquire() as conn:
            row = await self._live(conn, module_id)
        if row["applicants"] != "cadres":
            raise Forbidden("该业务由职工通过微信申请", code="entrance_closed")
        plain, sealed, _, _ = self._split(row["form"], body)
        async with self._pool.acquire() as conn, conn.transaction():
            if not _covered(actor.org_path, await self._roots(conn, row)):
                raise Forbidden("本单位尚未开办该业务", code="union_not_open")
            step = await self._start(conn, row, actor.org_id, plain, sealed, "console", cadre_id=actor.id)
            await self._audit.acted(conn, actor, "business.apply", f"item:{step.item['id']}",
                                    {"module": row["code"]})
        return await self.desk_view(actor, step.item["id"])

    async def _start(self, conn: asyncpg.Connection, row: asyncpg.Record, org_id: int, plain: dict,
                     sealed: bytes | None, entrance: str, *, account_id: int | None = None,
                     cadre_id: int | None = None, grants: object = None) -> Step:
        now = self._now()
        if account_id is not None:
            day_start = now.astimezone(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
            if await store.filed_since(conn, account_id, row["id"], day_start) >= PER_DAY:
                raise TooManyRequests(f"同一业务每天最多申请 {PER_DAY} 次", code="applications_per_day")
        grants = [g for g in grants if isinstance(g, str) and len(g) <= 64][:3] \
            if isinstance(grants, list) else []
        step = await self._engine.start(
            conn, row["code"], org_id=org_id, title=f"{row['name']}·{now.astimezone(CHINA):%m月%d日}申请",
            data=plain, submitter_account_id=account_id, submitter_cadre_id=cadre_id,
            notice_grants=grants)
        await store.insert_application(conn, item_id=step.item["id"], module_id=row["id"],
                                       account_id=account_id, cadre_id=cadre_id, entrance=entrance,
                                       sealed=sealed, now=now)
        return step

    # --- attached files ------------------------------------------------------------------------------
    async def upload(self, account_id: int, data: bytes, filename: str, kind: str) -> dict:
        """A photo or document for an application not yet filed (checked, cleaned, sealed)."""
        upload = await seal_upload(self._media, self._pii, data, filename, kind, FILES,
                                   code="invalid_file_kind")
        async with self._pool.acquire() as conn:
            if await store.unfiled_count(conn, account_id) >= MAX_UNFILED:
                raise TooManyRequests("待提交的附件过多，请先提交申请或稍后再试", code="files_full")
            file_id = await store.insert_file(conn, account_id, kind, upload.filename, upload.content_type,
                                              upload.size, upload.sealed, self._now())
        return {"id": file_id, "kind": kind, "filename": upload.filename, "size": upload.size}

    def _file_body(self, row: asyncpg.Record) -> tuple[bytes, str, str]:
        return self._pii.decrypt_bytes(row["data_enc"], FILES), row["content_type"], row["filename"]

    async def worker_file(self, account_id: int, file_id: int) -> tuple[bytes, str, str]:
        async with self._pool.acquire() as conn:
            row = await store.file(conn, file_id)
        if row is None or row["account_id"] != account_id:
            raise NotFound("文件不存在", code="file_not_found")
        return self._file_body(row)

    async def cadre_file(self, actor: Actor, file_id: int) -> tuple[bytes, str, str]:
        """A handler opens an attachment: only of an item they may see, and audited."""
        async with self._pool.acquire() as conn:
            row = await store.file(conn, file_id)
            if row is None or row["item_id"] is None:
                raise NotFound("文件不存在", code="file_not_found")
            item = await item_store.get_item(conn, row["item_id"])
            await self._lists.visible(conn, actor, item, await item_store.tasks_of(conn, item["id"]))
            async with conn.transaction():
                await self._audit.acted(conn, actor, "business.file_view", f"item:{item['id']}",
                                        {"file": file_id})
        return self._file_body(row)

    async def drop_unfiled(self) -> int:
        """Files uploaded a day ago for an application never filed go."""
        async with self._pool.acquire() as conn:
            return await store.drop_unfiled(conn, self._now() - timedelta(days=1))

    # --- the applicant's view ---------------------------------------------------------------------
    def _personal(self, row: asyncpg.Record) -> dict:
        return json.loads(self._pii.decrypt(row["sealed"], SEALED)) if row["sealed"] else {}

    def _summary(self, row: asyncpg.Record) -> dict:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"item_id": row["item_id"], "module": row["module"], "module_name": row["module_name"],
                "title": row["title"], "status": row["status"], "status_name": STATUS_NAMES[row["status"]],
                "outcome": row["outcome"], "org_name": row["org_name"], "filed_at": iso(row["filed_at"]),
                "closed_at": iso(row["closed_at"]), "due_at": iso(row["due_at"]),
                "due_provisional": row["due_provisional"]}

    async def mine(self, account_id: int) -> dict:
        async with self._pool.acquire() as conn:
            rows = await store.applications_of(conn, account_id)
        return {"applications": [self._summary(r) for r in rows]}

    @staticmethod
    def _attached(files: list[asyncpg.Record]) -> dict:
        out: dict[str, list] = {}
        for f in files:
            out.setdefault(f["field"], []).append(
                {"id": f["id"], "kind": f["kind"], "filename": f["filename"], "size": f["size"]})
        return out

    async def worker_view(self, account_id: int, item_id: int) -> dict:
        async with self._pool.acquire() as conn:
            row = await store.application(conn, item_id)
            files = await store.files_of(conn, item_id) if row is not None else []
        if row is None or row["account_id"] != account_id:
            raise NotFound("申请不存在", code="application_not_found")
        # The applicant sees their own answers masked too: a phone left on a desk shows no ID number.
        answers = forms.masked(row["form"], {**row["data"], **self._personal(row)})
        answers.update(self._attached(files))
        return {**self._summary(row), "form": row["form"], "answers": answers, "steps": row["steps"]}

    # --- handlers -----------------------------------------------------------------------------------
    async def desk_view(self, actor: Actor, item_id: int) -> dict:
        """The item page with the application in full, for its handlers (every view audited)."""
        view = await self._lists.item(actor, item_id)
        async with self._pool.acquire() as conn:
            row = await store.application(conn, item_id)
            if row is None:
                raise NotFound("申请不存在", code="application_not_found")
            files = await store.files_of(conn, item_id)
            async with conn.transaction():
                await self._audit.acted(conn, actor, "business.view_personal", f"item:{item_id}",
                                        {"module": row["module"]})
        answers = {k: row["data"][k] for k in forms.keys(row["form"]) if k in row["data"]}
        answers.update(self._personal(row))
        answers.update(self._attached(files))
        view["application"] = {**self._summary(row), "form": row["form"], "answers": answers,
                               "step_forms": row["step_forms"], "steps": row["steps"],
                               "entrance": row["entrance"], "erased": row["erased_at"] is not None}
        return view

    async def act(self, actor: Actor, item_id: int, body: dict) -> dict:
        """通过 or 不通过 on a step, with the step's own form when it has one."""
        if not isinstance(body, dict):
            raise InvalidInput("请求格式有误", code="invalid_answer")
        decision = body.get("decision")
        if decision not in ("pass", "reject"):
            raise InvalidInput("办理结果应为 pass（通过）或 reject（不通过）", code="decision_invalid")
        opinion = clean_opinion(body.get("opinion"), required=decision == "reject")
        async with self._pool.acquire() as conn:
            row = await store.application(conn, item_id)
        if row is None:
            raise NotFound("申请不存在", code="application_not_found")
        today = self._today()

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            task, _ = await self._ops.my_task(conn, step, actor, body.get("task_id"))
            form = row["step_forms"].get(task["node"])
            values = forms.clean_answers(form, body.get("answers"), today=today) \
                if form and decision == "pass" else {}
            await self._ops.complete(conn, step, actor, task["id"], decision, opinion, fields=values)
            if values:
                await store.record_step(conn, item_id, task["node"], values)
            return {"audit": {"node": task["node"], "decision": decision}}

        return await self._engine.run(actor, item_id, body.get("version"), operation,
                                      action="business.act", module=row["module"])

    # --- the applicant's rights (PIPL) ----------------------------------------------------------
    async def export(self, conn: asyncpg.Connection, account_id: int) -> list[dict]:
        return [{**self._summary(r), "answers": {**r["data"], **self._personal(r)}}
                for r in await store.applications_of(conn, account_id, None)]

    async def forget(self, conn: asyncpg.Connection, account_id: int) -> None:
        """Cancellation: the personal fields and files go; an open application is withdrawn."""
        for row in await store.applications_of(conn, account_id, None):
            if row["status"] != "closed":
                await self._engine.withdraw_for_cancellation(conn, row["item_id"], account_id)
        await store.erase(conn, account_id, self._now())
        await store.drop_files_of(conn, account_id)

