"""What cadres read: 我的待办 across modules, an item's page (steps, timeline, opinions, time
limits), the overdue board of a union's subtree, proxies (委托) and the process definitions."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from wxbackend.infra.pii import PersonalData, mask_phone
from wxbackend.infra.xlsx import Watermark, watermarked_xlsx
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.definitions import check_graph, digest
from wxbackend.services.casework.engine import Engine, holder
from wxbackend.services.casework.operations import ACTIONS
from wxbackend.services.casework.rates import period_bounds
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.membership.membership import row_id
from wxbackend.store.casework import deadlines as deadline_store
from wxbackend.store.casework import definitions as definition_store
from wxbackend.store.casework import events as event_store
from wxbackend.store.casework import items as store
from wxbackend.store.casework import todo as todo_store

MAX_PROXY_DAYS = 92
EVENT_NAMES = {
    "opened": "提交", "due": "办理时限", "approved": "通过", "rejected": "不通过",
    "returned": "退回", "withdrawn": "撤回", "transferred": "转办", "delegated": "委派",
    "delegate_returned": "交回", "signer_added": "加签", "signer_removed": "减签",
    "urged": "催办", "circulated": "传阅", "copied": "抄送", "read": "已阅",
    "suspended": "中止", "resumed": "恢复", "extension_requested": "申请延期",
    "extended": "批准延期", "extension_refused": "不批准延期", "routed": "转送",
    "overdue": "逾期", "escalated": "逾期督办", "closed": "办结", "reopened": "重新办理",
    "cancelled": "撤销",
    "recomputed": "时限重算", "rated": "评价", "revisited": "回访", "review_requested": "申请复查",
    "accepted": "受理", "declined": "不予受理", "replied": "答复",
    "published": "发布", "recalled": "撤回发布",
}
STATUS_NAMES = {"open": "办理中", "suspended": "已中止", "closed": "已办结"}
RATING_NAMES = {"satisfied": "满意", "basically": "基本满意", "dissatisfied": "不满意"}
LEDGER_ROWS = 50_000
UNIT_NAMES = {"calendar": "日", "working": "工作日"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class WorkLists:
    def __init__(self, pool: asyncpg.Pool, engine: Engine, pii: PersonalData, *, audit: AuditTrail,
                 now: Clock = china_now) -> None:
        self._pii = pii
        self._pool = pool
        self._engine = engine
        self._audit = audit
        self._now = now

    def _module_name(self, code: str) -> str:
        module = self._engine.modules.get(code)
        return module.name if module else code

    # --- 我的待办 -----------------------------------------------------------------------------
    async def todo(self, actor: Actor, *, module: str | None = None, state: str | None = None,
                   search: str | None = None, limit: int = 50, offset: int = 0) -> dict:
        if module is not None and module not in self._engine.modules:
            raise InvalidInput("未知的业务模块", code="invalid_filter")
        if state not in {None, "overdue", "soon"}:
            raise InvalidInput("state 应为 overdue 或 soon", code="invalid_filter")
        if search is not None and len(search) > 50:
            raise InvalidInput("搜索词不超过 50 个字", code="invalid_filter")
        now = self._now()
        async with self._pool.acquire() as conn:
            identities = await store.identities(conn, actor.id, now)
            rows, counts = await todo_store.my_tasks(
                conn, identities, now, module=module, state=state, search=search or None,
                limit=max(1, min(limit, 200)), offset=max(0, offset))
        return {"tasks": [self._task_view(r, identities) for r in rows], "counts": counts}

    @staticmethod
    def _acting_for(row: asyncpg.Record, identities: list[asyncpg.Record]) -> str | None:
        """The name of whom the cadre would act for (委托); None when the task is their own."""
        ident = holder(row, identities)
        return None if ident is None or ident["own"] else ident["display_name"]

    def _task_view(self, row: asyncpg.Record, identities: list[asyncpg.Record]) -> dict:
        return {"task_id": row["task_id"], "item_id": row["item_id"], "module": row["module"],
                "module_name": self._module_name(row["module"]), "title": row["title"],
                "step": row["step_name"], "org_name": row["org_name"], "status": row["status"],
                "version": row["version"], "due_at": _iso(row["due_at"]),
                "provisional": row["provisional"], "urgency": row["urgency"],
                "delegated": row["delegated_by"] is not None,
                "for": self._acting_for(row, identities),
                "opened_at": _iso(row["opened_at"])}

    async def overdue(self, actor: Actor, *, module: str | None = None, limit: int = 200) -> dict:
        """The overdue board: open items of the actor's subtree past their time limit."""
        if module is not None and module not in self._engine.modules:
            raise InvalidInput("未知的业务模块", code="invalid_filter")
        if not any(m.permission in actor.permissions for m in self._engine.modules.values()):
            raise Forbidden("您没有办理事项的权限", code="permission_missing")
        async with self._pool.acquire() as conn:
            rows = await todo_store.overdue_board(conn, actor.org_path, self._now(), module=module,
                                                  limit=max(1, min(limit, 500)))
        return {"items": [{"item_id": r["item_id"], "module": r["module"],
                           "module_name": self._module_name(r["module"]), "title": r["title"],
                           "org_id": r["org_id"], "org_name": r["org_name"],
                           "due_at": _iso(r["due_at"]), "provisional": r["provisional"],
                           "steps": r["steps"]} for r in rows]}

    # --- an item's page ------------------------------------------------------------------------
    async def visible(self, conn: asyncpg.Connection, actor: Actor, item: asyncpg.Record,
                      tasks: list[asyncpg.Record]) -> list[int]:
        """The open tasks the actor may act on; NotFound when the item is not theirs to see
        (its handlers, the unions above them holding the module, and those it was sent to)."""
        now = self._now()
        identities = await store.identities(conn, actor.id, now)
        mine = []
        involved = False
        for t in tasks:
            if actor.id in (t["acted_by"], t["delegated_by"]):
                involved = True
            if holder(t, identities) is not None:
                involved = True
                if t["status"] == "open":
                    mine.append(t["id"])
        module = self._engine.modules[item["module"]]
        if not involved and not (actor.covers(item["org_path"]) and module.permission in actor.permissions) \
                and not await store.is_reader(conn, item["id"], actor.id):
            raise NotFound("事项不存在", code="item_not_found")
        return mine

    async def item(self, actor: Actor, item_id: int) -> dict:
        now = self._now()
        async with self._pool.acquire() as conn:
            row = await store.get_item(conn, item_id)
            if row is None:
                raise NotFound("事项不存在", code="item_not_found")
            tasks = await store.tasks_of(conn, item_id)
            mine = await self.visible(conn, actor, row, tasks)
            steps = await store.steps_of(conn, item_id)
            timeline = await event_store.timeline(conn, item_id)
            deadlines = await deadline_store.all_of_item(conn, item_id)
            readers = await store.reads_of(conn, item_id)
            async with conn.transaction():
                if await store.mark_read(conn, item_id, actor.id, now):
                    await event_store.append(
                        conn, ref=f"item:{item_id}", item_id=item_id, module=row["module"],
                        org_path=row["org_path"], kind="read", at=now, actor_cadre_id=actor.id)
                if self._engine.modules[row["module"]].sensitive:
                    await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                             org_id=actor.org_id, action="work.view",
                                             target=f"item:{item_id}", ip=actor.ip)
        return self.item_view(row, steps, tasks, timeline, deadlines, readers, mine, actor)

    def item_view(self, row, steps, tasks, timeline, deadlines, readers, mine: list[int],
                  actor: Actor) -> dict:
        module = self._engine.modules[row["module"]]
        by_step: dict[int, list[dict]] = {}
        for t in tasks:
            by_step.setdefault(t["step_id"], []).append({
                "id": t["id"], "role": t["role"], "status": t["status"], "decision": t["decision"],
                "assignee": "提交人" if t["role"] == "submitter" else (
                    t["cadre_name"] or t["org_name"] + (f"·{t['department']}" if t["department"] else "")),
                "delegated_by": t["delegated_by_name"], "acted_by": t["acted_by_name"],
                "acted_for": t["acted_for_name"], "acted_at": _iso(t["acted_at"]),
                "mine": t["id"] in mine})
        actions = []
        open_nodes = {s["node"] for s in steps if s["status"] == "open"
                      and any(t["id"] in mine for t in tasks if t["step_id"] == s["id"])}
        at_desk = bool(open_nodes & module.desk_nodes)
        if mine and row["status"] == "open":
            actions = ["return", "transfer", "delegate", "add_signer", "remove_signer", "suspend",
                       "request_extension"]
            if not at_desk:
                actions = ["pass", "reject", *actions]
            if any(t["id"] in mine and t["delegated_by"] is not None for t in tasks):
                actions = ["resolve"]
        if row["status"] == "suspended" and (mine or actor.covers(row["org_path"])):
            actions.append("resume")
        if actor.covers(row["org_path"]) and module.permission in actor.permissions:
            if row["status"] == "open":
                actions += ["urge", "route"]
            actions += ["circulate", "copy"]
            if row["state"].get("extension") and actor.org_path != row["org_path"]:
                actions += ["approve_extension", "refuse_extension"]
        if any(t["acted_by"] == actor.id for t in tasks) and row["status"] == "open":
            actions.append("withdraw")
        return {
            "id": row["id"], "module": row["module"], "module_name": module.name,
            "title": row["title"], "org_id": row["org_id"], "org_name": row["org_name"],
            "status": row["status"], "status_name": STATUS_NAMES[row["status"]],
            "outcome": row["outcome"], "version": row["version"], "channel": row["channel"],
            "opened_at": _iso(row["opened_at"]), "closed_at": _iso(row["closed_at"]),
            "due_at": _iso(row["due_at"]), "due_provisional": row["due_provisional"],
            "extension_pending": row["state"].get("extension"),
            "steps": [{"id": s["id"], "node": s["node"], "name": s["name"], "sign": s["sign"],
                       "status": s["status"], "opened_at": _iso(s["opened_at"]),
                       "closed_at": _iso(s["closed_at"]), "tasks": by_step.get(s["id"], [])}
                      for s in steps],
            "timeline": [{"kind": e["kind"], "name": EVENT_NAMES.get(e["kind"], e["kind"]),
                          "at": _iso(e["at"]),
                          "actor": e["actor_name"] or ("提交人" if e["by_submitter"] else None),
                          "actor_org": e["actor_org"], "opinion": e["opinion"],
                          "due_at": _iso(e["due_at"]), "detail": e["detail"]} for e in timeline],
            "deadlines": [{"id": d["id"], "step_id": d["step_id"], "due_at": _iso(d["due_at"]),
                           "provisional": d["provisional"], "reason": d["reason"],
                           "status": d["status"], "starts_on": d["starts_on"].isoformat(),
                           "count": d["count"], "unit": UNIT_NAMES[d["unit"]],
                           "supersedes": d["supersedes"]} for d in deadlines],
            "readers": [{"name": r["display_name"], "kind": r["kind"], "sent_at": _iso(r["sent_at"]),
                         "read_at": _iso(r["read_at"])} for r in readers],
            "my_tasks": mine,
            "desk_steps": sorted(open_nodes & module.desk_nodes),
            "actions": [{"action": a, "name": ACTIONS[a]} for a in dict.fromkeys(actions)],
            "return_to": sorted({s["node"] for s in steps if s["status"] in {"passed", "rejected"}}),
        }

    async def colleagues(self, actor: Actor) -> dict:
        """Cadres of the actor's subtree: the choices for 转办, 委派, 加签, 传阅 and 委托."""
        async with self._pool.acquire() as conn:
            rows = await store.colleagues(conn, actor.org_path, 500)
        return {"cadres": [{"id": r["id"], "name": r["display_name"], "org_name": r["org_name"],
                            "department": r["department"]} for r in rows if r["id"] != actor.id]}

    # --- 台账 ----------------------------------------------------------------------------------
    async def ledger_xlsx(self, actor: Actor, module: str, period: str) -> tuple[bytes, str]:
        """A module's items of a period in the actor's subtree, as a watermarked workbook. Personal
        data stays masked (an appeal's phone as 138****5678; what the worker wrote is not in it)."""
        spec = self._engine.modules.get(module)
        if spec is None or spec.reported_only:
            raise InvalidInput("未知的业务模块", code="invalid_filter")
        actor.require(spec.permission)
        start, end = period_bounds(period)
        now = self._now().astimezone(CHINA)
        async with self._pool.acquire() as conn:
            rows = await todo_store.ledger(conn, actor.org_path, module, start, end, LEDGER_ROWS)
            async with conn.transaction():
                await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                         org_id=actor.org_id, action="work.ledger_export",
                                         target=f"module:{module}",
                                         detail={"period": period, "rows": len(rows)}, ip=actor.ip)
        header = ["编号", "标题", "工会", "状态", "结果", "提交时间", "办理时限", "办结时间", "按时办结",
                  "评价", "备注"]
        table = [self._ledger_row(r, now) for r in rows]
        data = await asyncio.get_running_loop().run_in_executor(None, lambda: watermarked_xlsx(
            title=f"{spec.name}台账（{period}）", sheet="台账", header=header, rows=table,
            watermark=Watermark(actor.username, now.strftime("%Y-%m-%d %H:%M"))))
        return data, f"{spec.name}台账-{period}.xlsx"

    def _ledger_row(self, r: asyncpg.Record, now: datetime) -> list:
        def day(value: datetime | None) -> str:
            return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if value else ""
        on_time = "" if r["closed_at"] is None or r["due_at"] is None else \
            ("是" if r["closed_at"] <= r["due_at"] else "否")
        rating = r["appeal_rating"] or r["proposal_rating"]
        if r["category"] is not None:
            phone = None if r["phone_enc"] is None else self._pii.decrypt(r["phone_enc"], "appeals.phone")
            note = f"{r['category']}；{'匿名' if r['anonymous'] else '实名 ' + (mask_phone(phone) or '')}"
        elif r["number"] is not None or r["proposer"] is not None:
            note = f"案号 {r['number'] or '—'}；提案人 {r['proposer']}；类别 {r['class'] or '—'}"
        else:
            note = ""
        return [r["id"], r["title"], r["org_name"], STATUS_NAMES[r["status"]], r["outcome"] or "",
                day(r["opened_at"]), day(r["due_at"]) + ("（暂定）" if r["due_provisional"] else ""),
                day(r["closed_at"]), on_time, RATING_NAMES.get(rating, ""), note]

    # --- 委托 ----------------------------------------------------------------------------------
    async def proxies(self, actor: Actor) -> dict:
        async with self._pool.acquire() as conn:
            rows = await store.proxies_of(conn, actor.id, self._now())
        return {"proxies": [{"id": r["id"], "cadre_id": r["cadre_id"], "cadre": r["cadre_name"],
                             "proxy_id": r["proxy_id"], "proxy": r["proxy_name"],
                             "starts_at": _iso(r["starts_at"]), "ends_at": _iso(r["ends_at"]),
                             "mine": r["cadre_id"] == actor.id} for r in rows]}

    async def add_proxy(self, actor: Actor, body: dict) -> dict:
        """A cadre on leave names a proxy from their own union for a dated period."""
        proxy_id = row_id(body.get("proxy_id"))
        try:
            starts = datetime.fromisoformat(str(body.get("starts_at")))
            ends = datetime.fromisoformat(str(body.get("ends_at")))
        except ValueError:
            raise InvalidInput("请填写委托的起止时间", code="invalid_period") from None
        if starts.tzinfo is None or ends.tzinfo is None or ends <= starts \
                or ends <= self._now() or (ends - starts).days > MAX_PROXY_DAYS:
            raise InvalidInput(f"委托期限应在将来，且不超过 {MAX_PROXY_DAYS} 天（时间须带时区）",
                               code="invalid_period")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            target = await store.cadre(conn, proxy_id) if proxy_id is not None else None
            if target is None or target["status"] != "active" or target["org_id"] != actor.org_id:
                raise InvalidInput("代理人应为本单位在岗的干部", code="invalid_proxy")
            if target["id"] == actor.id:
                raise InvalidInput("不能委托给自己", code="invalid_proxy")
            new_id = await store.insert_proxy(conn, actor.id, target["id"], starts, ends, now)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=actor.org_id, action="work.proxy",
                                     target=f"cadre:{target['id']}",
                                     detail={"starts_at": starts.isoformat(), "ends_at": ends.isoformat()},
                                     ip=actor.ip)
        return {"id": new_id}

    async def revoke_proxy(self, actor: Actor, proxy_row: int) -> dict:
        async with self._pool.acquire() as conn, conn.transaction():
            if not await store.revoke_proxy(conn, proxy_row, actor.id, self._now()):
                raise NotFound("没有这项委托", code="proxy_not_found")
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=actor.org_id, action="work.proxy_revoke",
                                     target=f"proxy:{proxy_row}", ip=actor.ip)
        return {"revoked": True}

    # --- process definitions ------------------------------------------------------------------
    async def definitions(self, actor: Actor, module: str) -> dict:
        if module not in self._engine.modules or self._engine.modules[module].reported_only:
            raise NotFound("未知的业务模块", code="module_not_found")
        async with self._pool.acquire() as conn:
            current = await definition_store.current(conn, module)
            rows = await definition_store.versions(conn, module)
        return {"module": module, "current": {"version": current["version"], "name": current["name"],
                                               "graph": current["graph"], "digest": current["digest"]}
                if current else None,
                "versions": [{"version": r["version"], "name": r["name"], "status": r["status"],
                              "digest": r["digest"], "published_at": _iso(r["published_at"]),
                              "running": r["running"]} for r in rows]}

    async def publish(self, actor: Actor, module: str, body: dict) -> dict:
        """A new version of a module's process, by the platform office; items already running
        finish on the version they began."""
        actor.require("org.manage")
        if "." in actor.org_path:
            raise Forbidden("流程由平台办公室（省总工会）发布", code="platform_office_only")
        spec = self._engine.modules.get(module)
        if spec is None or spec.reported_only:
            raise NotFound("未知的业务模块", code="module_not_found")
        if spec.configured:
            raise Conflict("配置业务的流程随模块的新版本一并审批发布", code="configured_module")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 60:
            raise InvalidInput("请填写流程名称（不超过 60 个字）", code="invalid_definition")
        graph = check_graph(body.get("graph"), spec.fields)
        required = {n["id"] for n in spec.graph["nodes"] if n["type"] == "task"}
        missing = required - {n["id"] for n in graph["nodes"] if n["type"] == "task"}
        if missing:
            # The desk acts on these steps by name: a version without them would strand items.
            raise InvalidInput(f"{spec.name}流程须保留这些环节：{'、'.join(sorted(missing))}",
                               code="invalid_definition")
        async with self._pool.acquire() as conn, conn.transaction():
            current = await definition_store.current(conn, module)
            if current is not None and current["digest"] == digest(graph):
                raise Conflict("与现行版本相同，无需发布", code="definition_unchanged")
            new_id = await definition_store.publish(conn, module, name.strip(), graph, digest(graph),
                                                    actor.id, self._now())
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=actor.org_id, action="work.definition_publish",
                                     target=f"definition:{new_id}",
                                     detail={"module": module, "digest": digest(graph)}, ip=actor.ip)
        return await self.definitions(actor, module)


async def seed_definitions(conn: asyncpg.Connection, modules: list, now: datetime) -> int:
    """Each module's built-in process, published once (a version the office published stays)."""
    added = 0
    for module in modules:
        if module.reported_only or await definition_store.current(conn, module.code) is not None:
            continue
        graph = check_graph(module.graph, module.fields)
        await definition_store.publish(conn, module.code, f"{module.name}（默认流程）", graph,
                                       digest(graph), None, now)
        added += 1
    return added
