"""The document desk (公文流转): a union's document settings, drafting and registering
documents, the steps that carry a document's own record, and what cadres read — a document with
its progress, the registry of a year, their drafts and steps.

Every read and write is scoped to the cadre's subtree and needs ``document.handle``; the principal
named in a union's settings signs what is waiting on them. The generic steps (核稿, 会签, 复核,
签收, 拟办, 承办, 传阅, 办结, 归档) are the engine's 通过 / 不通过
(``/admin/v1/casework/items/{id}/actions``).
"""

from __future__ import annotations

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step, clean_text
from wxbackend.services.casework.operations import Operations
from wxbackend.services.casework.worklists import WorkLists
from wxbackend.services.channels.media import MediaLibrary, media_view
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, InvalidInput, NotFound
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office.documents import elements, incoming, outgoing
from wxbackend.services.office.documents.steps import PERMISSION
from wxbackend.store.casework import items as item_store
from wxbackend.store.office import documents as store

OUT_ACTIONS = {"submit": "送审", "sign": "签发", "number": "编号", "seal": "用印", "distribute": "分发"}
IN_ACTIONS = {"register": "登记", "instruct": "批办"}
DIRECTIONS = {"out": "发文", "in": "收文"}


def _iso(value: object) -> str | None:
    return value.isoformat() if value is not None else None  # type: ignore[attr-defined]


def summary(row: asyncpg.Record) -> dict:
    """A document as a registry line."""
    return {"id": row["id"], "direction": row["direction"], "item_id": row["item_id"],
            "org_id": row["org_id"], "org_name": row["org_name"], "year": row["year"],
            "title": row["title"], "urgency": row["urgency"], "doc_number": row["doc_number"],
            "received_no": row["received_no"], "sender": row["sender"], "issuer": row["issuer"],
            "signer": row["signer"], "status": row["item_status"], "outcome": row["outcome"],
            "steps": row["open_steps"], "due_at": _iso(row["due_at"]),
            "created_at": _iso(row["created_at"]), "closed_at": _iso(row["closed_at"])}


def document_view(row: asyncpg.Record, files: list[dict]) -> dict:
    """A document with every GB/T 9704 element, for its page and the printable layout."""
    return {**summary(row), "copy_no": row["copy_no"], "issuer_mark": row["issuer_mark"],
            "main_to": row["main_to"], "body": row["body"], "attachment_note": row["attachment_note"],
            "attachments": files, "written_on": _iso(row["written_on"]), "note": row["note"],
            "copy_to": row["copy_to"], "printer": row["printer"], "printed_on": _iso(row["printed_on"]),
            "flow": row["flow"], "flow_name": elements.FLOWS[row["flow"]], "important": row["important"],
            "principal_required": outgoing.principal_required(row) and row["direction"] == "out",
            "countersign": list(row["countersign"]), "drafted_by": row["drafted_by_name"],
            "signed_at": _iso(row["signed_at"]), "numbered_at": _iso(row["numbered_at"]),
            "sealed": row["sealed_at"] is not None, "sealed_at": _iso(row["sealed_at"]),
            "distributed_at": _iso(row["distributed_at"]), "instruction": row["instruction"],
            "handlers": list(row["handlers"]), "source_id": row["source_id"],
            "version": row["item_version"]}


class Documents:
    def __init__(self, pool: asyncpg.Pool, engine: Engine, ops: Operations, lists: WorkLists,
                 media: MediaLibrary, *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._engine = engine
        self._lists = lists
        self._media = media
        self._audit = audit
        self._now = now
        self.outgoing = outgoing.OutgoingDesk(engine, ops)
        self.incoming = incoming.IncomingDesk(engine, ops)

    # --- the union's settings ---------------------------------------------------------------
    async def office(self, actor: Actor) -> dict:
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            row = await store.office(conn, actor.org_id)
            org = await store.org(conn, actor.org_id)
            candidates = await store.handlers_of(conn, actor.org_id, PERMISSION)
        return {"office": None if row is None else {
                    "issuer_code": row["issuer_code"], "issuer_mark": row["issuer_mark"],
                    "issuer_name": row["issuer_name"], "principal_id": row["principal_id"],
                    "principal_name": row["principal_name"], "updated_at": _iso(row["updated_at"])},
                "defaults": {"issuer_mark": f"{org['name']}文件"[:40], "issuer_name": org["name"][:60]},
                "candidates": [{"id": c["id"], "name": c["display_name"], "department": c["department"]}
                               for c in candidates]}

    async def set_office(self, actor: Actor, body: dict) -> dict:
        """The issuer code (发文代字), issuer mark, the name the union signs with, and its
        principal (主要负责人, a cadre of the union who handles documents)."""
        actor.require(PERMISSION)
        code = clean_text(body.get("issuer_code"), "发文代字", low=2, high=20, code="office_invalid")
        if any(c in code for c in "〔〕[]()（）0123456789号"):
            raise InvalidInput("发文代字只写机关代字（如“川工办字”），年份和序号由平台生成",
                               code="office_invalid")
        mark = clean_text(body.get("issuer_mark"), "发文机关标志", low=2, high=40, code="office_invalid")
        name = clean_text(body.get("issuer_name"), "署名（发文机关名称）", low=2, high=60,
                          code="office_invalid")
        principal = body.get("principal_id")
        if principal is not None and row_id(principal) is None:
            raise InvalidInput("主要负责人无效", code="office_invalid")
        async with self._pool.acquire() as conn, conn.transaction():
            if principal is not None and principal not in {
                    c["id"] for c in await store.handlers_of(conn, actor.org_id, PERMISSION)}:
                raise InvalidInput("主要负责人应为本单位持有“公文流转”权限的在岗干部",
                                   code="office_invalid")
            await store.save_office(conn, actor.org_id, issuer_code=code, issuer_mark=mark,
                                    issuer_name=name, principal_id=principal, by=actor.id,
                                    now=self._now())
            await self._audit.acted(conn, actor, "document.office", f"org:{actor.org_id}",
                                {"issuer_code": code, "principal_id": principal})
        return await self.office(actor)

    # --- drafting and registering -------------------------------------------------------------
    async def _files(self, conn: asyncpg.Connection, actor: Actor, ids: list) -> list[int]:
        if any(row_id(i) is None for i in ids):
            raise InvalidInput("附件编号无效", code="invalid_media")
        await self._media.owned(conn, actor.org_path, ids, "attachment")
        return ids

    async def draft(self, actor: Actor, body: dict) -> dict:
        """A new outgoing document, at 拟稿 with its drafter."""
        actor.require(PERMISSION)
        fields = elements.clean(body, outgoing=True)
        fields["countersign"] = elements.departments(body.get("countersign"), "会签部门")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            fields["attachments"] = await self._files(conn, actor, fields["attachments"])
            office = await store.office(conn, actor.org_id)
            org = await store.org(conn, actor.org_id)
            fields["issuer_mark"] = fields["issuer_mark"] or (
                office["issuer_mark"] if office else f"{org['name']}文件"[:40])
            fields["issuer"] = fields["issuer"] or (office["issuer_name"] if office else org["name"][:60])
            fields["year"] = now.astimezone(CHINA).year
            step = await self._engine.start(
                conn, outgoing.MODULE_CODE, org_id=actor.org_id, title=fields["title"],
                data={"countersign": fields["countersign"], "principal_required": False,
                      "principal": None}, submitter_cadre_id=actor.id)
            doc_id = await store.insert(conn, direction="out", item_id=step.item["id"],
                                        org_id=actor.org_id, fields=fields, drafted_by=actor.id, now=now)
            await self._audit.acted(conn, actor, "document.draft", f"document:{doc_id}")
        return await self.view(actor, doc_id)

    async def receive(self, actor: Actor, body: dict) -> dict:
        """An incoming document registered by hand (from paper, or a body off the platform)."""
        actor.require(PERMISSION)
        fields = elements.clean(body, outgoing=False)
        if not fields["sender"]:
            raise InvalidInput("请填写来文机关", code="document_invalid")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            fields["attachments"] = await self._files(conn, actor, fields["attachments"])
            fields.update(issuer=fields["sender"], issuer_mark=fields["sender"][:40],
                          year=now.astimezone(CHINA).year)
            step = await self._engine.start(conn, incoming.MODULE_CODE, org_id=actor.org_id,
                                            title=fields["title"], data={"handlers": []},
                                            submitter_cadre_id=actor.id)
            doc_id = await store.insert(conn, direction="in", item_id=step.item["id"],
                                        org_id=actor.org_id, fields=fields, drafted_by=actor.id, now=now)
            await self._audit.acted(conn, actor, "document.receive", f"document:{doc_id}")
        return await self.view(actor, doc_id)

    async def _item_of(self, actor: Actor, doc_id: int) -> int:
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            row = await store.document(conn, doc_id)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("公文不存在", code="document_not_found")
        return row["item_id"]

    async def edit(self, actor: Actor, doc_id: int, body: dict) -> dict:
        """The drafter revises a draft (also after it was sent back)."""
        fields = elements.clean(body, outgoing=True, partial=True)
        for key in ("issuer_mark", "issuer"):   # cleared: the one it has stays
            if fields.get(key, "") is None:
                del fields[key]
        if "countersign" in body:
            fields["countersign"] = elements.departments(body.get("countersign"), "会签部门")
        item_id = await self._item_of(actor, doc_id)

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            doc = await store.by_item(conn, step.item["id"])
            if doc["direction"] != "out":
                raise Conflict("收文不能修改", code="not_a_draft")
            await self.outgoing.task(conn, step, actor, {"draft"}, body, "只有拟稿环节的公文可以修改")
            if "attachments" in fields:
                fields["attachments"] = await self._files(conn, actor, fields["attachments"])
            await store.update(conn, doc["id"], fields, step.now)
            if "title" in fields:
                await item_store.set_title(conn, step.item["id"], fields["title"])
            return {"audit": {"fields": sorted(fields)}}

        await self._engine.run(actor, item_id, body.get("version"), operation, action="document.edit")
        return await self.view(actor, doc_id)

    async def act(self, actor: Actor, doc_id: int, body: dict) -> dict:
        """A step that carries the document's own record: 送审, 签发, 编号, 用印, 分发 of an
        outgoing document; 登记, 批办 of an incoming one."""
        action = body.get("action")
        item_id = await self._item_of(actor, doc_id)

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            doc = await store.by_item(conn, step.item["id"])
            names = OUT_ACTIONS if doc["direction"] == "out" else IN_ACTIONS
            if not isinstance(action, str) or action not in names:
                raise InvalidInput(f"{DIRECTIONS[doc['direction']]}的操作应为 {'、'.join(names)} 之一",
                                   code="unknown_action")
            if action == "distribute":
                return await self.outgoing.distribute(conn, step, actor, doc, body, incoming.MODULE_CODE)
            desk = self.outgoing if doc["direction"] == "out" else self.incoming
            return await getattr(desk, action)(conn, step, actor, doc, body)

        return await self._engine.run(actor, item_id, body.get("version"), operation,
                                      action=f"document.{action}" if isinstance(action, str)
                                      and action in OUT_ACTIONS | IN_ACTIONS else "document.step")

    # --- reads ------------------------------------------------------------------------------
    async def view(self, actor: Actor, doc_id: int) -> dict:
        """A document, its progress (steps, timeline, the actions open to the cadre) and, for a
        distributed one, where it arrived; for a copy, where it came from."""
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            row = await store.document(conn, doc_id)
            if row is None:
                raise NotFound("公文不存在", code="document_not_found")
            source = await store.document(conn, row["source_id"]) if row["source_id"] else None
            owner = source["org_path"] if source else row["org_path"]
            files = [media_view(m) for m in await self._media.owned(
                conn, owner, list(row["attachments"]), "attachment")] if row["attachments"] else []
            copies = await store.copies_of(conn, doc_id) if row["direction"] == "out" else []
        item = await self._lists.item(actor, row["item_id"])   # NotFound outside who may see it
        return {"document": document_view(row, files), "item": item,
                "source": summary(source) if source else None,
                "copies": [{"document_id": c["id"], "org_id": c["org_id"], "org_name": c["org_name"],
                            "received_no": c["received_no"], "status": c["item_status"],
                            "steps": c["open_steps"], "received_at": _iso(c["received_at"])}
                           for c in copies]}

    async def registry(self, actor: Actor, *, direction: str, year: int | None, org_id: int | None,
                       search: str | None, limit: int = 50, offset: int = 0) -> dict:
        """发文登记簿 / 收文登记簿 of a union of the subtree (the cadre's own by default) and year."""
        actor.require(PERMISSION)
        if direction not in DIRECTIONS:
            raise InvalidInput("direction 应为 out（发文）或 in（收文）", code="invalid_filter")
        year = year or self._now().astimezone(CHINA).year
        if not 2000 <= year <= 2200:
            raise InvalidInput("年份无效", code="invalid_filter")
        if search is not None and len(search) > 50:
            raise InvalidInput("搜索词不超过 50 个字", code="invalid_filter")
        async with self._pool.acquire() as conn:
            union = await store.org(conn, org_id or actor.org_id)
            if union is None or not actor.covers(union["path"]):
                raise NotFound("工会组织不存在或不在本单位管辖范围", code="org_not_found")
            rows, total = await store.registry(conn, union["id"], direction, year, search,
                                               max(1, min(limit, 200)), max(0, offset))
        return {"org_id": union["id"], "org_name": union["name"], "direction": direction, "year": year,
                "total": total, "documents": [summary(r) for r in rows]}

    async def mine(self, actor: Actor) -> dict:
        """The cadre's drafts and the document steps waiting on them (我的待办, documents only)."""
        actor.require(PERMISSION)
        tasks = []
        for module in (outgoing.MODULE_CODE, incoming.MODULE_CODE):
            tasks += (await self._lists.todo(actor, module=module, limit=200))["tasks"]
        async with self._pool.acquire() as conn:
            docs = await store.by_items(conn, [t["item_id"] for t in tasks])
        lines = [{"document_id": docs[t["item_id"]]["id"], "item_id": t["item_id"],
                  "task_id": t["task_id"], "version": t["version"], "title": t["title"],
                  "direction": docs[t["item_id"]]["direction"], "step": t["step"],
                  "doc_number": docs[t["item_id"]]["doc_number"],
                  "received_no": docs[t["item_id"]]["received_no"],
                  "urgency": docs[t["item_id"]]["urgency"], "org_name": t["org_name"],
                  "due_at": t["due_at"], "due_state": t["urgency"], "for": t["for"]}
                 for t in tasks if t["item_id"] in docs]
        return {"drafts": [t for t in lines if t["direction"] == "out" and t["step"] == "拟稿"],
                "tasks": [t for t in lines if not (t["direction"] == "out" and t["step"] == "拟稿")]}
