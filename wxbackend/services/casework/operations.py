"""The operations cadres take on an item, each one step of :class:`Engine` (one transaction,
one winner). Modules (the petition and proposal desks) call :meth:`Operations.complete` with
their own fields; everything else is shared."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from wxbackend.config import CaseworkSettings
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import (
    MOVED_ON,
    Engine,
    Limit,
    Step,
    clean_opinion,
    holder,
    step_result,
)
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from wxbackend.services.membership.membership import row_id
from wxbackend.store.casework import deadlines as deadline_store
from wxbackend.store.casework import events as event_store
from wxbackend.store.casework import items as store

MAX_READERS = 50
ACTIONS = {
    "pass": "通过", "reject": "不通过", "return": "退回", "withdraw": "撤回", "transfer": "转办",
    "delegate": "委派", "resolve": "交回", "add_signer": "加签", "remove_signer": "减签",
    "urge": "催办", "circulate": "传阅", "copy": "抄送", "suspend": "中止", "resume": "恢复",
    "request_extension": "申请延期", "approve_extension": "批准延期",
    "refuse_extension": "不批准延期", "route": "转送",
}


class Operations:
    def __init__(self, engine: Engine, settings: CaseworkSettings) -> None:
        self.engine = engine
        self._s = settings

    # --- tasks ------------------------------------------------------------------------------
    async def open_task(self, conn: asyncpg.Connection, step: Step, task_id: object) -> asyncpg.Record:
        tid = row_id(task_id)
        if tid is None:
            raise InvalidInput("请指明待办 task_id", code="task_required")
        task = next((t for t in await store.tasks_of(conn, step.item["id"]) if t["id"] == tid), None)
        if task is None:
            raise NotFound("待办不存在", code="task_not_found")
        if task["status"] != "open":
            raise Conflict(MOVED_ON, code="item_moved")
        return task

    async def task_at(self, conn: asyncpg.Connection, step: Step, task_id: object, nodes: set[str],
                      refusal: str) -> asyncpg.Record:
        """An open task of one of ``nodes`` (a desk's own steps); Conflict ``refusal`` if not."""
        task = await self.open_task(conn, step, task_id)
        if task["node"] not in nodes:
            raise Conflict(refusal, code="not_at_step")
        return task

    async def my_task(self, conn: asyncpg.Connection, step: Step, actor: Actor,
                      task_id: object) -> tuple[asyncpg.Record, int | None]:
        """An open task the actor may act on, and whom they act for (委托)."""
        task = await self.open_task(conn, step, task_id)
        if step.item["status"] == "suspended":
            raise Conflict("事项已中止，恢复后才能办理", code="item_suspended")
        return task, await self.engine.acting_as(conn, actor, task, step.now)

    async def complete(self, conn: asyncpg.Connection, step: Step, actor: Actor, task_id: object,
                       decision: str, opinion: str | None, fields: dict | None = None) -> int:
        """通过 or 不通过 on a task; the step settles by its sign (会签/或签/票签) and the item
        moves on. ``fields``: the module's item data set with the decision."""
        task, acted_for = await self.my_task(conn, step, actor, task_id)
        if task["delegated_by"] is not None:
            raise Conflict("这是委派给您的待办，办理后请“交回”委派人", code="delegated_task")
        if any(t["step_id"] == task["step_id"] and t["acted_by"] == actor.id
               for t in await store.tasks_of(conn, step.item["id"])):
            raise Conflict("您已在本环节签署过", code="already_signed")
        await store.finish_task(conn, task["id"], decision, actor.id, acted_for, step.now)
        await self.engine.event(conn, step, "approved" if decision == "pass" else "rejected",
                                task_id=task["id"], opinion=opinion, acted_for=acted_for,
                                detail={"step": task["step_id"]})
        if fields:
            step.item["data"].update(fields)
        await self.settle(conn, step, task["step_id"])
        return task["step_id"]

    async def settle(self, conn: asyncpg.Connection, step: Step, step_id: int) -> None:
        """Close the step if its tasks decide it, and follow the graph from it."""
        tasks = [t for t in await store.tasks_of(conn, step.item["id"])
                 if t["step_id"] == step_id and t["status"] != "cancelled"]
        row = next(s for s in await store.steps_of(conn, step.item["id"]) if s["id"] == step_id)
        if row["status"] != "open":
            return
        result = step_result(row["sign"], float(row["ratio"]) if row["ratio"] else None,
                             [t["decision"] for t in tasks])
        if result is None:
            return
        await store.close_step(conn, step_id, "passed" if result == "pass" else "rejected", step.now)
        await deadline_store.close_for_steps(conn, [step_id], "met")
        step.item["data"]["decision"] = result
        await self.engine.advance(conn, step, [step.graph[row["node"]]["next"]], opened_by=step_id)

    async def _cancel_open_steps(self, conn: asyncpg.Connection, step: Step) -> None:
        open_steps = [s["id"] for s in await store.steps_of(conn, step.item["id"])
                      if s["status"] == "open"]
        for step_id in open_steps:
            await store.close_step(conn, step_id, "cancelled", step.now)
        await deadline_store.close_for_steps(conn, open_steps, "cancelled")

    async def _cadre(self, conn: asyncpg.Connection, actor: Actor, cadre_id: object, *,
                     permission: str | None = None) -> asyncpg.Record:
        target_id = row_id(cadre_id)
        target = await store.cadre(conn, target_id) if target_id is not None else None
        if target is None or target["status"] != "active":
            raise NotFound("找不到该干部（或账号已停用）", code="cadre_not_found")
        if not actor.covers(target["org_path"]):
            raise Forbidden("只能交给本单位及下级工会的干部", code="outside_subtree")
        if target["id"] == actor.id:
            raise InvalidInput("不能交给自己", code="self_target")
        if permission and permission not in target["permissions"]:
            raise InvalidInput(f"{target['display_name']} 没有办理该类事项的权限",
                               code="target_lacks_permission")
        return target

    def require_handler(self, actor: Actor, step: Step) -> None:
        """A cadre of the item's union or above who handles the module."""
        actor.require(step.module.permission)
        actor.require_within(step.item["org_path"])

    # --- the generic actions -------------------------------------------------------------------
    async def act(self, actor: Actor, item_id: int, body: dict) -> dict:
        action = body.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            raise InvalidInput("未知的操作", code="unknown_action")
        handler = getattr(self, f"_{action}")

        async def operation(conn: asyncpg.Connection, step: Step) -> dict | None:
            return await handler(conn, step, actor, body)

        return await self.engine.run(actor, item_id, body.get("version"), operation, action=action)

    async def _not_a_desk_step(self, conn: asyncpg.Connection, step: Step, task_id: object) -> None:
        task = await self.open_task(conn, step, task_id)
        if task["node"] in step.module.desk_nodes:
            raise Conflict(f"该环节请在{step.module.name}的办理页面中办理", code="desk_step")

    async def _pass(self, conn, step, actor, body) -> dict:
        await self._not_a_desk_step(conn, step, body.get("task_id"))
        await self.complete(conn, step, actor, body.get("task_id"), "pass",
                            clean_opinion(body.get("opinion")))
        return {}

    async def _reject(self, conn, step, actor, body) -> dict:
        await self._not_a_desk_step(conn, step, body.get("task_id"))
        await self.complete(conn, step, actor, body.get("task_id"), "reject",
                            clean_opinion(body.get("opinion"), required=True))
        return {}

    async def _return(self, conn, step, actor, body) -> dict:
        task, acted_for = await self.my_task(conn, step, actor, body.get("task_id"))
        opinion = clean_opinion(body.get("opinion"), required=True)
        node_id = body.get("node")
        earlier = {s["node"] for s in await store.steps_of(conn, step.item["id"])
                   if s["status"] in {"passed", "rejected"}}
        if not isinstance(node_id, str) or node_id not in earlier:
            raise InvalidInput("只能退回到已办理过的环节", code="invalid_return_target")
        await self._cancel_open_steps(conn, step)
        step.item["state"]["joins"] = {}
        await self.engine.event(conn, step, "returned", task_id=task["id"], opinion=opinion,
                                acted_for=acted_for, detail={"node": node_id,
                                                             "step": step.graph[node_id]["name"]})
        await self.engine.open_step(conn, step, step.graph[node_id], opened_by=None)
        return {"audit": {"to": node_id}}

    async def _withdraw(self, conn, step, actor, body) -> dict:
        if step.item["status"] != "open":
            raise Conflict("事项已办结或中止，不能撤回", code="cannot_withdraw")
        steps = await store.steps_of(conn, step.item["id"])
        tasks = await store.tasks_of(conn, step.item["id"])
        mine = [t for t in tasks if t["acted_by"] == actor.id and t["status"] == "done"]
        if not mine:
            raise Conflict("您没有可撤回的办理", code="cannot_withdraw")
        last = max(mine, key=lambda t: t["acted_at"])
        following = [s for s in steps if s["opened_by"] == last["step_id"]]
        if not following or any(s["status"] != "open" for s in following) \
                or await store.acted_since(conn, [s["id"] for s in following]):
            raise Conflict("下一环节已经办理，不能撤回", code="cannot_withdraw")
        origin = next(s for s in steps if s["id"] == last["step_id"])
        for s in following:
            await store.close_step(conn, s["id"], "cancelled", step.now)
        await deadline_store.close_for_steps(conn, [s["id"] for s in following], "cancelled")
        await self.engine.event(conn, step, "withdrawn", task_id=last["id"],
                                opinion=clean_opinion(body.get("opinion")),
                                detail={"node": origin["node"], "step": origin["name"]})
        await self.engine.open_step(conn, step, step.graph[origin["node"]], opened_by=None,
                                    named=[last["acted_for"] or actor.id])
        return {}

    async def _transfer(self, conn, step, actor, body) -> dict:
        task, acted_for = await self.my_task(conn, step, actor, body.get("task_id"))
        target = await self._cadre(conn, actor, body.get("to"), permission=step.module.permission)
        await store.reassign_task(conn, task["id"], target["id"], None)
        await self.engine.event(conn, step, "transferred", task_id=task["id"], acted_for=acted_for,
                                opinion=clean_opinion(body.get("opinion")),
                                detail={"to": target["id"], "to_name": target["display_name"]})
        await self.engine.reminders.tasks(conn, [task["id"]], "new",
                                          f"work:{task['id']}:to:{target['id']}")
        return {"audit": {"to": target["id"]}}

    async def _delegate(self, conn, step, actor, body) -> dict:
        task, acted_for = await self.my_task(conn, step, actor, body.get("task_id"))
        if task["delegated_by"] is not None:
            raise Conflict("委派的待办不能再次委派", code="delegated_task")
        target = await self._cadre(conn, actor, body.get("to"))
        await store.reassign_task(conn, task["id"], target["id"], actor.id)
        await self.engine.event(conn, step, "delegated", task_id=task["id"], acted_for=acted_for,
                                opinion=clean_opinion(body.get("opinion")),
                                detail={"to": target["id"], "to_name": target["display_name"]})
        await self.engine.reminders.tasks(conn, [task["id"]], "new",
                                          f"work:{task['id']}:to:{target['id']}")
        return {"audit": {"to": target["id"]}}

    async def _resolve(self, conn, step, actor, body) -> dict:
        task = await self.open_task(conn, step, body.get("task_id"))
        if task["delegated_by"] is None or task["cadre_id"] != actor.id:
            raise Forbidden("只有受委派的同志可以交回", code="not_delegate")
        await store.reassign_task(conn, task["id"], task["delegated_by"], None)
        await self.engine.event(conn, step, "delegate_returned", task_id=task["id"],
                                opinion=clean_opinion(body.get("opinion"), required=True),
                                detail={"to": task["delegated_by"]})
        return {}

    async def _add_signer(self, conn, step, actor, body) -> dict:
        task, acted_for = await self.my_task(conn, step, actor, body.get("task_id"))
        target = await self._cadre(conn, actor, body.get("to"))
        same_step = [t for t in await store.tasks_of(conn, step.item["id"])
                     if t["step_id"] == task["step_id"] and t["status"] == "open"]
        if any(t["cadre_id"] == target["id"] for t in same_step):
            raise Conflict(f"{target['display_name']} 已是本环节的签署人", code="already_signer")
        await store.require_all_signers(conn, task["step_id"])
        ids = await store.insert_tasks(conn, task["step_id"], step.item["id"],
                                       [{"role": "cadre", "cadre_id": target["id"]}], step.now)
        await self.engine.event(conn, step, "signer_added", task_id=ids[0], acted_for=acted_for,
                                opinion=clean_opinion(body.get("opinion")),
                                detail={"to": target["id"], "to_name": target["display_name"]})
        await self.engine.reminders.tasks(conn, ids, "new", f"work:{ids[0]}:new")
        return {"task_id": ids[0]}

    async def _remove_signer(self, conn, step, actor, body) -> dict:
        task, acted_for = await self.my_task(conn, step, actor, body.get("task_id"))
        removed = await self.open_task(conn, step, body.get("remove"))
        # The actor's own task stays, so the step keeps at least one signer.
        if removed["step_id"] != task["step_id"] or removed["id"] == task["id"]:
            raise InvalidInput("只能减去本环节其他尚未办理的签署人", code="invalid_signer")
        await store.cancel_task(conn, removed["id"])
        await self.engine.event(conn, step, "signer_removed", task_id=removed["id"],
                                acted_for=acted_for, opinion=clean_opinion(body.get("opinion")),
                                detail={"removed": removed["cadre_name"] or removed["org_name"]})
        await self.settle(conn, step, task["step_id"])
        return {}

    async def _urge(self, conn, step, actor, body) -> dict:
        self.require_handler(actor, step)
        if step.item["status"] != "open":
            raise Conflict("只能催办办理中的事项", code="not_open")
        last = await event_store.last_of(conn, step.item["id"], "urged")
        if last is not None and step.now - last["at"] < timedelta(hours=self._s.urge_every_hours):
            raise TooManyRequests(f"该事项已于 {last['at']:%H:%M} 催办过，请稍后再催", code="urged_recently")
        open_tasks = [t["id"] for t in await store.tasks_of(conn, step.item["id"]) if t["status"] == "open"]
        await self.engine.event(conn, step, "urged", opinion=clean_opinion(body.get("opinion")))
        await self.engine.reminders.tasks(conn, open_tasks, "urge",
                                          f"work:{step.item['id']}:urge:{step.item['version']}")
        return {}

    async def _circulate(self, conn, step, actor, body, kind: str = "circulate") -> dict:
        if not (actor.covers(step.item["org_path"]) or await self._involved(conn, step, actor)):
            raise Forbidden("只有办理人及上级可以传阅、抄送", code="not_involved")
        targets = body.get("cadres")
        if not isinstance(targets, list) or not 1 <= len(targets) <= MAX_READERS:
            raise InvalidInput(f"请选择 1 至 {MAX_READERS} 位干部", code="invalid_readers")
        cadres = [await self._cadre(conn, actor, c) for c in targets]
        for c in cadres:
            await store.add_read(conn, step.item["id"], c["id"], kind, actor.id, step.now)
        await self.engine.event(conn, step, "circulated" if kind == "circulate" else "copied",
                                opinion=clean_opinion(body.get("opinion")),
                                detail={"to": [c["id"] for c in cadres],
                                        "to_names": [c["display_name"] for c in cadres]})
        await self.engine.reminders.cadres(conn, step.item["id"], [c["id"] for c in cadres], kind,
                                           f"work:{step.item['id']}:{kind}:{step.item['version']}")
        return {"audit": {"to": [c["id"] for c in cadres]}}

    async def _copy(self, conn, step, actor, body) -> dict:
        return await self._circulate(conn, step, actor, body, kind="copy")

    async def _involved(self, conn: asyncpg.Connection, step: Step, actor: Actor) -> bool:
        tasks = await store.tasks_of(conn, step.item["id"])
        if any(actor.id in (t["cadre_id"], t["acted_by"], t["delegated_by"]) for t in tasks):
            return True
        identities = await store.identities(conn, actor.id, step.now)
        return any(t["status"] == "open" and holder(t, identities) is not None for t in tasks)

    async def _suspend(self, conn, step, actor, body) -> dict:
        if step.item["status"] != "open":
            raise Conflict("只能中止办理中的事项", code="not_open")
        if not await self._involved(conn, step, actor):
            self.require_handler(actor, step)
        opinion = clean_opinion(body.get("opinion"), required=True)
        paused = await deadline_store.open_of_item(conn, step.item["id"])
        await deadline_store.set_status(conn, [d["id"] for d in paused], "superseded")
        step.item["state"]["paused"] = [d["id"] for d in paused]
        step.item.update(status="suspended", suspended_at=step.now)
        await self.engine.event(conn, step, "suspended", opinion=opinion)
        return {}

    async def _resume(self, conn, step, actor, body) -> dict:
        if step.item["status"] != "suspended":
            raise Conflict("事项未中止", code="not_suspended")
        if not await self._involved(conn, step, actor):
            self.require_handler(actor, step)
        gap = step.now - step.item["suspended_at"]
        paused = set(step.item["state"].pop("paused", []))
        for old in await deadline_store.all_of_item(conn, step.item["id"]):
            if old["id"] not in paused:
                continue
            # The time spent suspended does not count: the same limit, moved by the gap.
            limit = Limit(old["starts_on"], old["count"], old["unit"], old["due_at"] + gap,
                          old["warn_at"] + gap, old["escalate_at"] + gap, old["provisional"])
            await self.engine.insert_deadline(conn, step, limit, step_id=old["step_id"],
                                               reason="resumed", supersedes=old["id"])
        step.item.update(status="open", suspended_at=None)
        await self.engine.event(conn, step, "resumed", opinion=clean_opinion(body.get("opinion")),
                                detail={"suspended_days": round(gap.total_seconds() / 86400, 1)})
        return {}

    async def _request_extension(self, conn, step, actor, body) -> dict:
        task, acted_for = await self.my_task(conn, step, actor, body.get("task_id"))
        module = step.module
        days = body.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= module.extension_days:
            raise InvalidInput(f"延期天数应为 1 至 {module.extension_days} 天", code="extension_too_long")
        if await event_store.count_of(conn, step.item["id"], "extended") >= module.extensions:
            raise Conflict(f"该事项已延期 {module.extensions} 次，不能再延期", code="extension_used")
        if step.item["state"].get("extension"):
            raise Conflict("已有延期申请等待审批", code="extension_pending")
        opinion = clean_opinion(body.get("opinion"), required=True)
        step.item["state"]["extension"] = {"days": days, "reason": opinion, "by": actor.id}
        await self.engine.event(conn, step, "extension_requested", task_id=task["id"],
                                acted_for=acted_for, opinion=opinion, detail={"days": days})
        await self.engine.reminders.upper(conn, step.item["id"], module.permission,
                                          f"work:{step.item['id']}:extension:{step.item['version']}",
                                          kind="extension")
        return {}

    def _approver(self, actor: Actor, step: Step) -> None:
        """延期 is approved by the union above the item's (the province approves its own)."""
        actor.require(step.module.permission)
        path = step.item["org_path"]
        upper = path.rsplit(".", 1)[0] if "." in path else path
        if not actor.covers(upper) or (actor.org_path == path and "." in path):
            raise Forbidden("延期须由上级工会批准", code="upper_union_only")

    async def _approve_extension(self, conn, step, actor, body) -> dict:
        self._approver(actor, step)
        pending = step.item["state"].pop("extension", None)
        if not pending:
            raise Conflict("没有等待审批的延期申请", code="no_extension")
        await self.engine.extend_item_deadline(conn, step, pending["days"])
        await self.engine.event(conn, step, "extended", opinion=clean_opinion(body.get("opinion")),
                                due_at=step.item["due_at"],
                                detail={"days": pending["days"], "reason": pending["reason"]})
        return {"audit": {"days": pending["days"]}}

    async def _refuse_extension(self, conn, step, actor, body) -> dict:
        self._approver(actor, step)
        if not step.item["state"].pop("extension", None):
            raise Conflict("没有等待审批的延期申请", code="no_extension")
        await self.engine.event(conn, step, "extension_refused",
                                opinion=clean_opinion(body.get("opinion"), required=True))
        return {}

    async def _route(self, conn, step, actor, body) -> dict:
        self.require_handler(actor, step)
        if step.item["status"] == "closed":
            raise Conflict("事项已办结，不能转送", code="item_closed")
        org_id = row_id(body.get("org_id"))
        target = await store.org(conn, org_id) if org_id is not None else None
        if target is None:
            raise NotFound("工会组织不存在", code="org_not_found")
        actor.require_within(target["path"])
        if target["id"] == step.item["org_id"]:
            raise InvalidInput("事项已在该工会", code="same_org")
        item = step.item
        old_org, old_parent, old_name = item["org_id"], item["org_parent_id"], item["org_name"]
        item["org_path"] = await store.move_item(conn, item["id"], target["id"])
        await store.retarget_role_tasks(conn, item["id"], old_org, target["id"])
        if old_parent and target["parent_id"]:
            await store.retarget_role_tasks(conn, item["id"], old_parent, target["parent_id"])
        item.update(org_id=target["id"], org_parent_id=target["parent_id"], org_name=target["name"])
        await self.engine.event(conn, step, "routed", opinion=clean_opinion(body.get("opinion")),
                                detail={"from": old_org, "from_name": old_name,
                                        "to": target["id"], "to_name": target["name"]})
        open_tasks = [t["id"] for t in await store.tasks_of(conn, item["id"]) if t["status"] == "open"]
        await self.engine.reminders.tasks(conn, open_tasks, "new",
                                          f"work:{item['id']}:routed:{item['version']}")
        return {"audit": {"to": target["id"]}}
