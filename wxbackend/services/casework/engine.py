"""The work-item engine: items run through a frozen process definition, step by step.

A step is one short transaction: the item row is locked, the caller's expected version checked
(a cadre who acted on what they saw a moment ago is told the item moved on, never silently
overruled), the change written with its events, deadlines and reminders (outbox rows), and the
version bumped. Nothing slow happens inside: attachments are stored and the calendar loaded
before. A process killed mid-step rolls the whole step back; its reminders carry idempotency
keys, so the repeated step sends nothing twice.

The operations keep the names cadres use: 通过/不通过, 退回, 撤回, 转办, 委派 (and 交回),
加签/减签, 会签/或签/票签 (a step's ``sign``), 委托 (dated proxies), 催办, 传阅, 抄送, 中止/恢复,
延期 (requested by the handler, approved by the union above), and 转送 (routing to a union in
the subtree). Each is an event with who, when, for whom and the opinion (意见).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.calendar import Calendar, WorkdayCalendar, add_days
from wxbackend.services.casework.definitions import Graph
from wxbackend.services.casework.modules import Module, ModuleTable
from wxbackend.services.casework.reminders import Reminders
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.store.casework import deadlines as deadline_store
from wxbackend.store.casework import definitions as definition_store
from wxbackend.store.casework import events as event_store
from wxbackend.store.casework import items as store

log = logging.getLogger(__name__)

MAX_OPINION = 2000
MOVED_ON = "该事项已有新的进展（可能已由他人办理），请刷新后查看"


def step_result(sign: str, ratio: float | None, decisions: list[str | None]) -> str | None:
    """A step's outcome from its live tasks' decisions (None: not yet decided): 'pass',
    'reject' or None (still waiting). 会签 (all) needs every signer, 或签 (any) one, 票签 (ratio)
    the share; a step fails as soon as it can no longer pass."""
    n = len(decisions)
    passes = sum(d == "pass" for d in decisions)
    rejects = sum(d == "reject" for d in decisions)
    if n == 0:
        return None
    if sign == "single":
        return decisions[0] if passes + rejects else None
    if sign == "all":
        return "reject" if rejects else ("pass" if passes == n else None)
    if sign == "any":
        return "pass" if passes else ("reject" if rejects == n else None)
    needed = (ratio or 1.0) * n - 1e-9
    if passes >= needed:
        return "pass"
    return "reject" if n - rejects < needed else None


def due_moment(day: date) -> datetime:
    """A deadline day ends at midnight China time: the item is due by the end of that day."""
    return datetime.combine(day + timedelta(days=1), time(0), CHINA)


def holder(task: Mapping, identities: list) -> Mapping | None:
    """Of a cadre's identities (themself first, then those they stand in for: 委托), the one
    that holds ``task``: named on it, or of its union, permission and department."""
    for ident in identities:
        if task["cadre_id"] is not None:
            if task["cadre_id"] == ident["id"]:
                return ident
        elif (task["org_id"] == ident["org_id"] and task["permission"] in ident["permissions"]
              and (task["department"] is None or task["department"] == ident["department"])):
            return ident
    return None


@dataclass
class Limit:
    starts_on: date
    count: int
    unit: str
    due_at: datetime
    warn_at: datetime
    escalate_at: datetime
    provisional: bool


def compute_limit(calendar: Calendar, start: date, rule: dict) -> Limit:
    deadline = add_days(calendar, start, rule["count"], rule["unit"])
    due = due_moment(deadline.day)
    return Limit(start, rule["count"], rule["unit"], due, due - timedelta(days=rule.get("warn", 2)),
                 due + timedelta(days=rule.get("escalate", 2)), deadline.provisional)


@dataclass
class Step:
    """What one step does to an item, gathered while it runs and written at its end."""
    item: dict
    graph: Graph
    module: Module
    calendar: Calendar
    now: datetime
    actor_id: int | None = None
    account_id: int | None = None

    @property
    def ref(self) -> str:
        return f"item:{self.item['id']}"


Listener = Callable[[asyncpg.Connection, Step, str, dict], Awaitable[None]]


class Engine:
    def __init__(self, pool: asyncpg.Pool, calendar: WorkdayCalendar, reminders: Reminders,
                 modules: Iterable[Module], *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._calendar = calendar
        self.reminders = reminders
        self.modules = ModuleTable({m.code: m for m in modules})
        self._audit = audit
        self._now = now
        # module -> called with (conn, step, kind, detail) for events a module answers itself
        # (a petition tells its worker that it was accepted, extended or replied to)
        self.listeners: dict[str, Listener] = {}
        self._graphs: dict[int, Graph] = {}

    async def _graph(self, conn: asyncpg.Connection, definition_id: int) -> Graph:
        """A definition's graph: published definitions never change, so each is read once."""
        graph = self._graphs.get(definition_id)
        if graph is None:
            graph = self._graphs[definition_id] = Graph(
                (await definition_store.by_id(conn, definition_id))["graph"])
        return graph

    def module(self, code: str) -> Module:
        return self.modules[code]

    # --- events ------------------------------------------------------------------------------
    async def event(self, conn: asyncpg.Connection, step: Step, kind: str, *,
                    task_id: int | None = None, opinion: str | None = None,
                    due_at: datetime | None = None, detail: dict | None = None,
                    acted_for: int | None = None) -> None:
        detail = dict(detail or {})
        if acted_for:
            detail["acted_for"] = acted_for
        await event_store.append(
            conn, ref=step.ref, item_id=step.item["id"], module=step.item["module"],
            org_path=step.item["org_path"], kind=kind, at=step.now, channel=step.item["channel"],
            actor_cadre_id=step.actor_id, actor_account_id=step.account_id, task_id=task_id,
            due_at=due_at, opinion=opinion, detail=detail)
        listener = self.listeners.get(step.item["module"])
        if listener is not None:
            await listener(conn, step, kind, detail)

    # --- starting -----------------------------------------------------------------------------
    async def start(self, conn: asyncpg.Connection, module_code: str, *, org_id: int, title: str,
                    data: dict, submitter_account_id: int | None = None,
                    submitter_cadre_id: int | None = None, channel: str = "online",
                    notice_grants: list[str] | None = None,
                    opinion: str | None = None) -> Step:
        """Open an item on the module's published definition, inside the caller's transaction."""
        module = self.modules[module_code]
        definition = await definition_store.current(conn, module_code)
        if definition is None:
            raise RuntimeError(f"no published process for {module_code}: run wxbackend seed")
        calendar = await self._calendar.calendar(conn)
        item_id = await store.insert_item(
            conn, module=module_code, definition_id=definition["id"], org_id=org_id, title=title,
            data=data, submitter_account_id=submitter_account_id,
            submitter_cadre_id=submitter_cadre_id, channel=channel,
            notice_grants=notice_grants or [], now=self._now())
        step = Step(dict(await store.lock_item(conn, item_id)),
                    await self._graph(conn, definition["id"]), module, calendar, self._now(),
                    actor_id=submitter_cadre_id, account_id=submitter_account_id)
        await self.event(conn, step, "opened", opinion=opinion)
        start = step.graph.start
        if start.get("item_deadline"):
            await self.set_item_deadline(conn, step, start["item_deadline"])
        await self.advance(conn, step, [start["next"]], opened_by=None)
        await self.save(conn, step)
        return step

    async def start_many(self, conn: asyncpg.Connection, module_code: str, *, org_ids: list[int],
                         title: str, data: dict, submitter_cadre_id: int | None = None,
                         detail: dict | None = None) -> dict[int, int]:
        """Open the same item at each of ``org_ids`` at once, inside the caller's transaction, in
        a few set-based statements (a document distributed to hundreds of unions arrives in each
        one's queue with its distribution step). The first step must be one task of roles of the
        item's own union, and the start sets no item deadline. The item ids, by union."""
        module = self.modules[module_code]
        definition = await definition_store.current(conn, module_code)
        if definition is None:
            raise RuntimeError(f"no published process for {module_code}: run wxbackend seed")
        graph = await self._graph(conn, definition["id"])
        walk = graph.walk([graph.start["next"]], data, {})
        if graph.start.get("item_deadline") or walk.ends or len(walk.tasks) != 1 \
                or any(r["role"] not in {"office", "upper", "department"} for r in walk.tasks[0]["assign"]):
            raise RuntimeError(f"{module_code}: a batch start needs one first task of the union's roles")
        if not org_ids:
            return {}
        node, now = walk.tasks[0], self._now()
        items = await store.insert_items_many(
            conn, module=module_code, definition_id=definition["id"], org_ids=org_ids, title=title,
            data=data, submitter_cadre_id=submitter_cadre_id, now=now)
        await event_store.append_many(conn, [(f"item:{r['id']}", r["id"], module_code, r["org_path"],
                                              "opened", now, None, None, detail or {}) for r in items])
        steps = await store.insert_steps_many(conn, [r["id"] for r in items], node, now)
        rows = []
        for r in items:
            for role in node["assign"]:
                org = (r["org_parent_id"] or r["org_id"]) if role["role"] == "upper" else r["org_id"]
                rows.append((steps[r["id"]], r["id"], role["role"], org, module.permission,
                             role.get("department")))
        task_ids = await store.insert_tasks_many(conn, rows, now)
        if node.get("deadline"):
            limit = compute_limit(await self._calendar.calendar(conn), now.astimezone(CHINA).date(),
                                  node["deadline"])
            for r in items:
                await deadline_store.insert(
                    conn, item_id=r["id"], step_id=steps[r["id"]], starts_on=limit.starts_on,
                    count=limit.count, unit=limit.unit, due_at=limit.due_at, warn_at=limit.warn_at,
                    escalate_at=limit.escalate_at, provisional=limit.provisional, reason="set",
                    supersedes=None, now=now)
        first, last = min(steps.values()), max(steps.values())
        await self.reminders.tasks(conn, task_ids, "new", f"work:{first}-{last}:new")
        return {r["org_id"]: r["id"] for r in items}

    async def open_tasks(self, conn: asyncpg.Connection, step: Step) -> list[asyncpg.Record]:
        """The item's open tasks, each with its node: a desk finds the task of its step."""
        return [t for t in await store.tasks_of(conn, step.item["id"]) if t["status"] == "open"]

    async def load(self, conn: asyncpg.Connection, item_id: int, *, version: int | None = None,
                   actor_id: int | None = None, account_id: int | None = None,
                   module: str | None = None) -> Step:
        """Lock an item for a step; Conflict if it is no longer at ``version``."""
        row = await store.lock_item(conn, item_id)
        if row is None or (module is not None and row["module"] != module):
            raise NotFound("事项不存在", code="item_not_found")
        if version is not None and row["version"] != version:
            raise Conflict(MOVED_ON, code="item_moved")
        return Step(dict(row), await self._graph(conn, row["definition_id"]), self.modules[row["module"]],
                    await self._calendar.calendar(conn), self._now(), actor_id=actor_id,
                    account_id=account_id)

    async def save(self, conn: asyncpg.Connection, step: Step) -> None:
        item = step.item
        item["version"] = await store.save_item(
            conn, item["id"], status=item["status"], outcome=item["outcome"], data=item["data"],
            state=item["state"], suspended_at=item["suspended_at"], closed_at=item["closed_at"])

    # --- walking the graph ----------------------------------------------------------------------
    async def advance(self, conn: asyncpg.Connection, step: Step, targets: list[str],
                      opened_by: int | None) -> None:
        state = step.item["state"]
        walk = step.graph.walk(targets, step.item["data"], state.get("joins", {}))
        state["joins"] = walk.joins
        for node in walk.tasks:
            await self.open_step(conn, step, node, opened_by=opened_by)
        if walk.ends and not walk.tasks and not await self._open_steps(conn, step):
            await self.close(conn, step, walk.ends[-1]["outcome"])

    async def _open_steps(self, conn: asyncpg.Connection, step: Step) -> list[asyncpg.Record]:
        return [s for s in await store.steps_of(conn, step.item["id"]) if s["status"] == "open"]

    async def open_step(self, conn: asyncpg.Connection, step: Step, node: dict, *,
                        opened_by: int | None, named: list[int] | None = None) -> int:
        """Activate a task node: its tasks for the roles it names (or for ``named`` cadres)."""
        tasks = [{"role": "cadre", "cadre_id": c} for c in named] if named \
            else await self._resolve(conn, step, node)
        sign = node["sign"] if not named or len(named) > 1 else "single"
        step_id = await store.insert_step(conn, step.item["id"], {**node, "sign": sign}, opened_by,
                                          step.now)
        ids = await store.insert_tasks(conn, step_id, step.item["id"], tasks, step.now)
        if node.get("deadline"):
            limit = compute_limit(step.calendar, step.now.astimezone(CHINA).date(), node["deadline"])
            await self.insert_deadline(conn, step, limit, step_id=step_id, reason="set")
        if node.get("item_deadline"):
            await self.set_item_deadline(conn, step, node["item_deadline"])
        await self.reminders.tasks(conn, ids, "new", f"work:{step_id}:new")
        return step_id

    async def _resolve(self, conn: asyncpg.Connection, step: Step, node: dict) -> list[dict]:
        item, permission = step.item, step.module.permission
        tasks: list[dict] = []
        for role in node["assign"]:
            kind = role["role"]
            if kind == "office":
                tasks.append({"role": kind, "org_id": item["org_id"], "permission": permission})
            elif kind == "upper":
                tasks.append({"role": kind, "org_id": item["org_parent_id"] or item["org_id"],
                              "permission": permission})
            elif kind == "department":
                tasks.append({"role": kind, "org_id": item["org_id"], "permission": permission,
                              "department": role["department"]})
            elif kind == "union":
                value = item["data"].get(role["field"])
                for org_id in value if isinstance(value, list) else [value]:
                    if not isinstance(org_id, int):
                        raise InvalidInput("请先指定办理单位", code="unit_missing")
                    tasks.append({"role": kind, "org_id": org_id, "permission": permission})
            elif kind == "departments":
                names = item["data"].get(role["field"])
                if not isinstance(names, list) or not names \
                        or not all(isinstance(n, str) and n for n in names):
                    raise InvalidInput("请先指定办理部门", code="unit_missing")
                tasks.extend({"role": "department", "org_id": item["org_id"], "permission": permission,
                              "department": name} for name in names)
            elif kind == "principal":
                cadre_id = item["data"].get(role["field"])
                if not isinstance(cadre_id, int) or isinstance(cadre_id, bool):
                    raise InvalidInput("本单位尚未指定主要负责人", code="principal_missing")
                tasks.append({"role": kind, "cadre_id": cadre_id})
            elif item["submitter_cadre_id"]:
                tasks.append({"role": kind, "cadre_id": item["submitter_cadre_id"]})
            else:
                tasks.append({"role": kind, "account_id": item["submitter_account_id"]})
        return tasks

    async def close(self, conn: asyncpg.Connection, step: Step, outcome: str, *,
                    cancelled: bool = False) -> None:
        """``cancelled``: withdrawn, not handled (it leaves the completion rates' count)."""
        item = step.item
        open_deadlines = await deadline_store.open_of_item(conn, item["id"])
        await deadline_store.set_status(conn, [d["id"] for d in open_deadlines], "met")
        item.update(status="closed", outcome=outcome, closed_at=step.now)
        on_time = item["due_at"] is None or step.now <= item["due_at"]
        await self.event(conn, step, "cancelled" if cancelled else "closed",
                         detail={"outcome": outcome, "on_time": on_time})

    async def withdraw_for_cancellation(self, conn: asyncpg.Connection, item_id: int,
                                        account_id: int) -> None:
        """The submitter's account is cancelled: no one is left to answer, so an open item is
        closed as withdrawn (it leaves the completion rates); its events stay for the statistics."""
        step = await self.load(conn, item_id, account_id=account_id)
        if step.item["status"] == "closed":
            return
        for s in await store.steps_of(conn, item_id):
            if s["status"] == "open":
                await store.close_step(conn, s["id"], "cancelled", step.now)
        await self.close(conn, step, "withdrawn", cancelled=True)
        await self.save(conn, step)

    async def reopen(self, conn: asyncpg.Connection, step: Step, node_id: str, *,
                     opinion: str | None, kind: str = "reopened", org_id: int | None = None) -> int:
        """A closed item opens again at ``node_id`` (不满意 sent back, a review requested)."""
        item = step.item
        if item["status"] != "closed":
            raise Conflict("事项尚未办结", code="item_not_closed")
        if org_id is not None and org_id != item["org_id"]:
            item["org_path"] = await store.move_item(conn, item["id"], org_id)
            item.update(org_id=org_id, org_parent_id=(await store.org(conn, org_id))["parent_id"])
        item.update(status="open", outcome=None, closed_at=None)
        await self.event(conn, step, kind, opinion=opinion, detail={"node": node_id})
        return await self.open_step(conn, step, step.graph[node_id], opened_by=None)

    # --- deadlines ------------------------------------------------------------------------
    async def insert_deadline(self, conn: asyncpg.Connection, step: Step, limit: Limit, *,
                               step_id: int | None, reason: str,
                               supersedes: int | None = None) -> int:
        deadline_id = await deadline_store.insert(
            conn, item_id=step.item["id"], step_id=step_id, starts_on=limit.starts_on,
            count=limit.count, unit=limit.unit, due_at=limit.due_at, warn_at=limit.warn_at,
            escalate_at=limit.escalate_at, provisional=limit.provisional, reason=reason,
            supersedes=supersedes, now=step.now)
        if limit.provisional:
            log.warning("deadline %d of item %d counted without the calendar of a coming year "
                        "(provisional): import the State Council's notice", deadline_id,
                        step.item["id"])
        if step_id is None:
            step.item.update(due_at=limit.due_at, due_provisional=limit.provisional)
            await store.set_due(conn, step.item["id"], limit.due_at, limit.provisional)
            await self.event(conn, step, "due", due_at=limit.due_at,
                             detail={"reason": reason, "provisional": limit.provisional,
                                     "count": limit.count, "unit": limit.unit})
        return deadline_id

    async def set_item_deadline(self, conn: asyncpg.Connection, step: Step, rule: dict, *,
                                start: date | None = None, reason: str = "set") -> None:
        """The item's own time limit from now (or ``start``); the one before is superseded."""
        current = [d for d in await deadline_store.open_of_item(conn, step.item["id"])
                   if d["step_id"] is None]
        await deadline_store.set_status(conn, [d["id"] for d in current], "superseded")
        limit = compute_limit(step.calendar, start or step.now.astimezone(CHINA).date(), rule)
        await self.insert_deadline(conn, step, limit, step_id=None, reason=reason,
                                    supersedes=current[-1]["id"] if current else None)

    async def extend_item_deadline(self, conn: asyncpg.Connection, step: Step, days: int) -> None:
        """延期: the item's time limit moves ``days`` (in its own unit) past the current one."""
        current = [d for d in await deadline_store.open_of_item(conn, step.item["id"])
                   if d["step_id"] is None]
        if not current:
            raise Conflict("该事项没有办理时限，无需延期", code="no_deadline")
        last = current[-1]
        end_day = (last["due_at"] - timedelta(days=1)).astimezone(CHINA).date()
        rule = {"count": days, "unit": last["unit"]}
        limit = compute_limit(step.calendar, end_day, rule)
        # The extension counts from the end of the current limit; it is a new row, never an edit.
        limit.starts_on, limit.count = last["starts_on"], last["count"] + days
        await deadline_store.set_status(conn, [last["id"]], "superseded")
        await self.insert_deadline(conn, step, limit, step_id=None, reason="extended",
                                    supersedes=last["id"])

    # --- the step transaction for cadres --------------------------------------------------------
    async def run(self, actor: Actor, item_id: int, version: object,
                  operation: Callable[[asyncpg.Connection, Step], Awaitable[dict | None]],
                  *, action: str, module: str | None = None) -> dict:
        """One step: lock, check, ``operation``, save, audit — one short transaction.
        ``version``: the item's version the cadre saw (None: whatever it is now)."""
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise InvalidInput("version 应为整数", code="invalid_version")
        async with self._pool.acquire() as conn, conn.transaction():
            step = await self.load(conn, item_id, version=version, actor_id=actor.id, module=module)
            result = await operation(conn, step) or {}
            await self.save(conn, step)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=actor.org_id, action=f"work.{action}",
                                     target=f"item:{item_id}",
                                     detail={"module": step.item["module"], **result.get("audit", {})},
                                     ip=actor.ip)
        return {"item_id": item_id, "version": step.item["version"],
                "status": step.item["status"], **{k: v for k, v in result.items() if k != "audit"}}

    # --- who may act -----------------------------------------------------------------------
    async def acting_as(self, conn: asyncpg.Connection, actor: Actor, task: asyncpg.Record,
                        now: datetime) -> int | None:
        """Whom the actor acts for on ``task``: None for themself, a cadre's id when acting as
        their proxy (委托); Forbidden when the task is not theirs to act on."""
        ident = holder(task, await store.identities(conn, actor.id, now))
        if ident is None:
            raise Forbidden("该待办不属于您（或您代理的同志）", code="not_assignee")
        return None if ident["own"] else ident["id"]


def clean_text(value: object, what: str, *, low: int, high: int, code: str,
               required: bool = True) -> str | None:
    """A text field of a desk's form, stripped; None when optional and empty."""
    if value is None or value == "":
        if required:
            raise InvalidInput(f"请填写{what}", code=code)
        return None
    if not isinstance(value, str) or not low <= len(value.strip()) <= high:
        raise InvalidInput(f"{what}应为 {low} 至 {high} 个字", code=code)
    return value.strip()


def clean_opinion(value: object, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidInput("请填写意见", code="opinion_required")
        return None
    if not isinstance(value, str) or len(value) > MAX_OPINION:
        raise InvalidInput(f"意见不超过 {MAX_OPINION} 个字", code="invalid_opinion")
    return value.strip() or None
