"""Putting a department's business online by configuration (流程改造后上网), no code change:

1. A cadre holding ``business.configure`` drafts the module (form, process, where it is open,
   who may apply) — checked whole on every save;
2. asks the leading group to approve it: an item of module ``business_request`` on the engine,
   at the province, decided by the cadres holding ``business.approve``; from then on that version
   is frozen (a trigger refuses any edit);
3. approved, the version goes live in the same transaction: its process is published on the
   engine (the previous live version is superseded; its running applications finish on it);
   refused, it stays as the record of what was asked;
4. a live module can be retired: no new applications; running ones finish.

A change is a new version, requested and approved again.
"""

from __future__ import annotations

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.definitions import digest
from wxbackend.services.casework.engine import Engine, Step, clean_opinion
from wxbackend.services.casework.operations import Operations
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.office.business.definitions import (
    APPLICANTS,
    ENTRANCES,
    REQUEST_CODE,
    as_module,
    check_module,
    example,
    module_code,
)
from wxbackend.store.casework import definitions as definition_store
from wxbackend.store.office import business as store

CONFIGURE, APPROVE = "business.configure", "business.approve"
STATUS_NAMES = {"draft": "草稿", "requested": "待领导小组审批", "live": "已上线", "refused": "未获批准",
                "superseded": "已由新版本替代", "retired": "已停用"}


class BusinessModules:
    def __init__(self, pool: asyncpg.Pool, engine: Engine, ops: Operations, *, audit: AuditTrail,
                 now: Clock = china_now) -> None:
        self._pool = pool
        self._engine = engine
        self._ops = ops
        self._audit = audit
        self._now = now

    async def _audited(self, conn: asyncpg.Connection, actor: Actor, action: str, module_id: int,
                       detail: dict | None = None) -> None:
        await self._audit.acted(conn, actor, action, f"business_module:{module_id}", detail or {})

    async def refresh(self, conn: asyncpg.Connection) -> int:
        """Tell the engine of every live module (at start, and whenever one goes live here)."""
        rows = await store.live(conn)
        for row in rows:
            self._engine.modules[row["code"]] = as_module(row)
        return len(rows)

    async def reload(self) -> int:
        """:meth:`refresh` on a connection of its own (the worker's periodic job)."""
        async with self._pool.acquire() as conn:
            return await self.refresh(conn)

    async def _own(self, conn: asyncpg.Connection, actor: Actor, module_id: int,
                   *, lock: bool = False) -> asyncpg.Record:
        row = await store.module(conn, module_id, lock=lock)
        if row is None or not (actor.covers(row["org_path"]) or APPROVE in actor.permissions):
            raise NotFound("业务模块不存在", code="business_module_not_found")
        return row

    async def _check_unions(self, conn: asyncpg.Connection, actor: Actor, spec: dict) -> None:
        found = await store.unions(conn, spec["open_to"])
        if len(found) != len(spec["open_to"]):
            raise InvalidInput("开放的工会中有不存在的单位", code="invalid_module")
        outside = [u["name"] for u in found if not actor.covers(u["path"])]
        if outside:
            raise Forbidden(f"只能向本单位及下级工会开放：{'、'.join(outside)}", code="outside_subtree")

    # --- drafting -------------------------------------------------------------------------------
    async def create(self, actor: Actor, body: dict) -> dict:
        """A new module, or (``code`` of an existing one) its next version, as a draft."""
        actor.require(CONFIGURE)
        code = module_code(body.get("code") if isinstance(body, dict) else None)
        spec = check_module(body)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._check_unions(conn, actor, spec)
            existing = await store.live(conn, code)
            if existing and not actor.covers(existing[0]["org_path"]):
                raise Conflict("该模块代码已被其他单位使用", code="business_code_taken")
            try:
                module_id = await store.insert_module(conn, code=code, org_id=actor.org_id, spec=spec,
                                                      created_by=actor.id, now=self._now())
            except asyncpg.UniqueViolationError:
                raise Conflict("该模块已有待审批或编辑中的版本，请先完成它",
                               code="business_pending") from None
            await self._audited(conn, actor, "business.define", module_id, {"code": code})
        return await self.get(actor, module_id)

    async def update(self, actor: Actor, module_id: int, body: dict) -> dict:
        actor.require(CONFIGURE)
        spec = check_module(body)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._own(conn, actor, module_id, lock=True)
            if row["status"] != "draft":
                raise Conflict("已提交审批的版本不能修改；如需调整请新建版本", code="business_frozen")
            await self._check_unions(conn, actor, spec)
            await store.update_draft(conn, module_id, spec)
            await self._audited(conn, actor, "business.edit", module_id, {"code": row["code"]})
        return await self.get(actor, module_id)

    async def request(self, actor: Actor, module_id: int, body: dict) -> dict:
        """Ask the leading group: the request is an item on the engine at the province."""
        actor.require(CONFIGURE)
        opinion = clean_opinion(body.get("opinion") if isinstance(body, dict) else None)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._own(conn, actor, module_id, lock=True)
            if row["status"] != "draft":
                raise Conflict("该版本已提交审批", code="business_requested")
            step = await self._engine.start(
                conn, REQUEST_CODE, org_id=await store.root_union(conn),
                title=f"{row['name']}（第 {row['version']} 版）上线申请", data={"module": row["code"]},
                submitter_cadre_id=actor.id, opinion=opinion)
            await store.set_status(conn, module_id, "requested", self._now(),
                                   request_item_id=step.item["id"])
            await self._audited(conn, actor, "business.request", module_id,
                                {"code": row["code"], "item": step.item["id"]})
        return await self.get(actor, module_id)

    # --- the leading group ----------------------------------------------------------------------
    async def decide(self, actor: Actor, module_id: int, body: dict) -> dict:
        """批准 puts the version live at once; 不批准 needs the reason."""
        actor.require(APPROVE)
        approve = body.get("approve") if isinstance(body, dict) else None
        if not isinstance(approve, bool):
            raise InvalidInput("请选择批准（approve: true）或不批准（approve: false）",
                               code="decision_invalid")
        opinion = clean_opinion(body.get("opinion"), required=not approve)
        async with self._pool.acquire() as conn:
            row = await self._own(conn, actor, module_id)
        if row["status"] != "requested" or row["request_item_id"] is None:
            raise Conflict("该版本不在待审批状态", code="business_not_requested")

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            # The request has one step: the leading group's task, unless the caller names it.
            open_tasks = await self._engine.open_tasks(conn, step)
            task_id = body.get("task_id") or (open_tasks[0]["id"] if open_tasks else None)
            task = await self._ops.task_at(conn, step, task_id, {"approve"}, "该申请已审批")
            if row["created_by"] == actor.id:
                raise Forbidden("不能审批自己提交的业务", code="self_review")
            await self._ops.complete(conn, step, actor, task["id"], "pass" if approve else "reject", opinion)
            now = step.now
            if approve:
                definition_id = await self._go_live(conn, row, actor, now)
                await store.set_status(conn, module_id, "live", now, definition_id=definition_id)
            else:
                await store.set_status(conn, module_id, "refused", now)
            return {"audit": {"code": row["code"], "approved": approve}}

        await self._engine.run(actor, row["request_item_id"], body.get("version"), operation,
                               action="business.decide", module=REQUEST_CODE)
        async with self._pool.acquire() as conn:
            await self.refresh(conn)
        return await self.get(actor, module_id)

    async def _go_live(self, conn: asyncpg.Connection, row: asyncpg.Record, actor: Actor, now) -> int:
        await store.supersede_live(conn, row["code"], now)
        graph = row["graph"]
        return await definition_store.publish(conn, row["code"], f"{row['name']}（第 {row['version']} 版）",
                                              graph, digest(graph), actor.id, now)

    async def retire(self, actor: Actor, module_id: int, body: dict) -> dict:
        actor.require(CONFIGURE)
        reason = clean_opinion(body.get("reason") if isinstance(body, dict) else None, required=True)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._own(conn, actor, module_id, lock=True)
            if row["status"] != "live":
                raise Conflict("只有已上线的版本可以停用", code="business_not_live")
            await store.set_status(conn, module_id, "retired", self._now())
            await store.retire_definition(conn, row["definition_id"])
            await self._audited(conn, actor, "business.retire", module_id,
                                {"code": row["code"], "reason": reason,
                                 "running": await store.running(conn, row["code"])})
        self._engine.modules.pop(row["code"], None)
        return await self.get(actor, module_id)

    async def example(self, actor: Actor, name: str) -> dict:
        """A shipped definition to start a draft from, open to the actor's union."""
        actor.require(CONFIGURE)
        return {"module": example(name, [actor.org_id])}

    # --- reading --------------------------------------------------------------------------------
    async def get(self, actor: Actor, module_id: int) -> dict:
        if not {CONFIGURE, APPROVE} & actor.permissions:
            actor.require(CONFIGURE)
        async with self._pool.acquire() as conn:
            row = await self._own(conn, actor, module_id)
            running = await store.running(conn, row["code"])
        return {**view(row), "running": running}

    async def list(self, actor: Actor) -> dict:
        if not {CONFIGURE, APPROVE} & actor.permissions:
            actor.require(CONFIGURE)
        async with self._pool.acquire() as conn:
            # The leading group sees every request in the province; a department, its own subtree's.
            path = actor.org_path.split(".")[0] if APPROVE in actor.permissions else actor.org_path
            rows = await store.modules_within(conn, path)
        return {"modules": [view(r) for r in rows], "entrances": ENTRANCES, "applicants": APPLICANTS}


def view(row: asyncpg.Record) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {"id": row["id"], "code": row["code"], "version": row["version"], "name": row["name"],
            "department": row["department"], "purpose": row["purpose"], "org_id": row["org_id"],
            "org_name": row["org_name"], "form": row["form"], "step_forms": row["step_forms"],
            "graph": row["graph"], "open_to": list(row["open_to"]), "entrances": list(row["entrances"]),
            "applicants": row["applicants"], "status": row["status"],
            "status_name": STATUS_NAMES[row["status"]], "request_item_id": row["request_item_id"],
            "created_at": iso(row["created_at"]), "requested_at": iso(row["requested_at"]),
            "decided_at": iso(row["decided_at"]), "retired_at": iso(row["retired_at"])}
