"""Incoming documents (收文), module ``document_in``.

签收 (the union's office; 不通过 returns a document that does not conform, 退文) → 登记 (the
收文编号 is drawn) → 拟办 (the office proposes how to handle it) → 批办 (the leader's
instruction names the departments that handle it and, for an urgent document, the time limit)
→ 承办 (the departments named, every one of them; the office when none is named) → 传阅 →
办结 → 归档. 催办 is the engine's operation on a document being handled (and the deadline sweep
reminds and escalates by itself); 传阅 adds readers with the engine's circulation.

A document arrives either distributed by a union above on the platform (one item per recipient
union, opened together in the distribution's transaction) or registered by hand from paper or
from a body outside the platform.
"""

from __future__ import annotations

import asyncpg

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Step, clean_opinion
from wxbackend.services.casework.modules import Module
from wxbackend.services.errors import Conflict, InvalidInput
from wxbackend.services.office.documents import numbers
from wxbackend.services.office.documents.elements import departments
from wxbackend.services.office.documents.steps import PERMISSION, StepDesk
from wxbackend.store.office import documents as store

MODULE_CODE = "document_in"
# 承办 time limits in working days: the longest a leader may give, and the one given when the
# instruction names none. Urgent documents always get one; others only when the leader sets it.
URGENT_DAYS = {"特急": 3, "加急": 5}
MAX_DAYS = 60

GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "receive"},
    {"id": "receive", "type": "task", "name": "签收", "assign": [{"role": "office"}], "next": "received"},
    {"id": "received", "type": "exclusive", "branches": [
        {"when": "decision == 'reject'", "next": "returned"}, {"next": "register"}]},
    {"id": "register", "type": "task", "name": "登记", "assign": [{"role": "office"}], "next": "propose"},
    {"id": "propose", "type": "task", "name": "拟办", "assign": [{"role": "office"}], "next": "instruct"},
    {"id": "instruct", "type": "task", "name": "批办", "assign": [{"role": "office"}], "next": "to_handle"},
    {"id": "to_handle", "type": "exclusive", "branches": [
        {"when": "len(handlers) > 0", "next": "handle_units"}, {"next": "handle"}]},
    {"id": "handle_units", "type": "task", "name": "承办", "sign": "all",
     "assign": [{"role": "departments", "field": "handlers"}], "next": "circulate"},
    {"id": "handle", "type": "task", "name": "承办", "assign": [{"role": "office"}], "next": "circulate"},
    {"id": "circulate", "type": "task", "name": "传阅", "assign": [{"role": "office"}], "next": "finish"},
    {"id": "finish", "type": "task", "name": "办结", "assign": [{"role": "office"}], "next": "archive"},
    {"id": "archive", "type": "task", "name": "归档", "assign": [{"role": "office"}], "next": "archived"},
    {"id": "archived", "type": "end", "outcome": "archived"},
    {"id": "returned", "type": "end", "outcome": "returned"},
]}

INCOMING = Module(code=MODULE_CODE, name="收文办理", permission=PERMISSION, graph=GRAPH,
                  fields=frozenset({"handlers"}), desk_nodes=frozenset({"register", "instruct"}))


class IncomingDesk(StepDesk):
    async def register(self, conn: asyncpg.Connection, step: Step, actor: Actor,
                       doc: asyncpg.Record, body: dict) -> dict:
        """登记: the 收文编号 of the union's year, once per document."""
        if doc["received_no"]:
            raise Conflict(f"该公文已登记为 {doc['received_no']}", code="already_registered")
        task, _ = await self.task(conn, step, actor, {"register"}, body, "该公文尚未签收，不能登记")
        year, serial, text = await numbers.register(conn, doc["org_id"], step.now)
        await store.update(conn, doc["id"], {"received_no": text, "received_year": year,
                                             "received_serial": serial, "year": year}, step.now)
        await self.ops.complete(conn, step, actor, task["id"], "pass", clean_opinion(body.get("opinion")))
        return {"received_no": text, "audit": {"received_no": text}}

    async def instruct(self, conn: asyncpg.Connection, step: Step, actor: Actor,
                       doc: asyncpg.Record, body: dict) -> dict:
        """批办: the leader's instruction, the departments that handle it and the time limit."""
        instruction = clean_opinion(body.get("instruction"), required=True)
        handlers = departments(body.get("handlers"), "承办部门")
        days = body.get("limit_days")
        longest = URGENT_DAYS.get(doc["urgency"], MAX_DAYS)
        if days is not None and (not isinstance(days, int) or isinstance(days, bool)
                                 or not 1 <= days <= longest):
            raise InvalidInput(f"办理时限应为 1 至 {longest} 个工作日", code="document_invalid")
        if days is None and doc["urgency"]:
            days = longest
        task, _ = await self.task(conn, step, actor, {"instruct"}, body, "该公文尚未到批办环节")
        if handlers:
            staffed = await store.staffed_departments(conn, doc["org_id"], handlers, PERMISSION)
            missing = [d for d in handlers if d not in staffed]
            if missing:
                raise InvalidInput(f"承办部门“{'、'.join(missing)}”没有可办理公文的干部",
                                   code="department_unstaffed")
        await store.update(conn, doc["id"], {"instruction": instruction, "handlers": handlers}, step.now)
        await self.ops.complete(conn, step, actor, task["id"], "pass", instruction, {"handlers": handlers})
        if days:
            await self.engine.set_item_deadline(conn, step, {"count": days, "unit": "working",
                                                             "warn": 1, "escalate": 1})
        return {"audit": {"handlers": handlers, "limit_days": days}}
