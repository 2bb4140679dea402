"""External meetings (外部会议): called by a higher or an outside body.

The union's meeting desk registers the notice (who calls it, when, where, the subject, the
notice's files); the item, module ``meeting_external``, then runs 批示 (the leader's
instruction, recorded with the leader's name) → 指派 (who attends: cadres of the subtree, told
through WeChat) → 回执 (what the caller was answered) → 传达 (after the meeting: what was relayed,
to whom) → end. Each step is the desk's, done with its own fields, never a bare 通过. The item
is due five working days after the meeting's day.
"""

from __future__ import annotations

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step, clean_opinion, clean_text
from wxbackend.services.casework.modules import Module
from wxbackend.services.casework.operations import Operations
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, InvalidInput, NotFound
from wxbackend.services.office.meetings.common import (
    PERMISSION,
    id_list,
    period,
    subtree_cadres,
    visible_meeting,
)
from wxbackend.services.office.meetings.internal import MINUTES_DUE, InternalMeetings
from wxbackend.store.office import meetings as store

EXTERNAL_CODE = "meeting_external"
STEPS = {"instruct": "领导批示", "assign": "指派参会", "answer": "回执", "relay": "传达"}
GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "instruct"},
    {"id": "instruct", "type": "task", "name": "领导批示", "assign": [{"role": "office"}], "next": "assign"},
    {"id": "assign", "type": "task", "name": "指派参会", "assign": [{"role": "office"}], "next": "answer"},
    {"id": "answer", "type": "task", "name": "回执", "assign": [{"role": "office"}], "next": "relay"},
    {"id": "relay", "type": "task", "name": "传达", "assign": [{"role": "office"}], "next": "relayed"},
    {"id": "relayed", "type": "end", "outcome": "relayed"},
]}
MEETING_EXTERNAL = Module(code=EXTERNAL_CODE, name="外部会议", permission=PERMISSION, graph=GRAPH,
                          desk_nodes=frozenset(STEPS))


def _text(value: object, what: str, low: int, high: int, *, required: bool = True) -> str | None:
    return clean_text(value, what, low=low, high=high, code="meeting_invalid", required=required)


class ExternalMeetings:
    def __init__(self, pool: asyncpg.Pool, engine: Engine, ops: Operations, internal: InternalMeetings,
                 *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._engine = engine
        self._ops = ops
        self._internal = internal   # shares the files, the invitations and the meeting's page
        self._audit = audit
        self._now = now

    async def register(self, actor: Actor, body: dict) -> dict:
        """来文登记: the notice as received."""
        actor.require(PERMISSION)
        now = self._now()
        title = _text(body.get("title"), "会议名称", 2, 80)
        caller = _text(body.get("caller"), "召集单位", 2, 80)
        place = _text(body.get("place"), "会议地点", 1, 100)
        notice = _text(body.get("notice"), "通知内容", 1, 3000, required=False)
        starts, ends = period(body, now)
        async with self._pool.acquire() as conn, conn.transaction():
            meeting_id = await store.insert_meeting(
                conn, kind="external", org_id=actor.org_id, title=title, agenda=notice,
                starts_at=starts, ends_at=ends, room_id=None, place=place, organiser_id=actor.id,
                caller=caller, now=now)
            files = await self._internal.attach(conn, actor, meeting_id, body.get("files"))
            step = await self._engine.start(conn, EXTERNAL_CODE, org_id=actor.org_id, title=title,
                                            data={}, submitter_cadre_id=actor.id)
            await self._engine.set_item_deadline(conn, step, MINUTES_DUE,
                                                 start=starts.astimezone(CHINA).date())
            await self._engine.save(conn, step)
            await store.set_item(conn, meeting_id, step.item["id"])
            await self._audit.acted(conn, actor, "meeting.external_register", f"meeting:{meeting_id}",
                                    {"caller": caller, "files": files})
        return await self._internal.detail(actor, meeting_id)

    async def step(self, actor: Actor, meeting_id: int, body: dict) -> dict:
        """One desk step of the external meeting, named in ``step``, with its own fields."""
        name = body.get("step")
        if not isinstance(name, str) or name not in STEPS:
            raise InvalidInput("step 应为 instruct（批示）、assign（指派）、answer（回执）或 relay（传达）",
                               code="step_invalid")
        fields: dict = {}
        attendees: list[int] = []
        if name == "instruct":
            fields = {"leader": _text(body.get("leader"), "批示领导", 1, 40),
                      "instruction": _text(body.get("instruction"), "批示意见", 2, 2000)}
        elif name == "assign":
            attendees = id_list(body.get("attendees"), "参会人员", high=50)
        elif name == "answer":
            fields = {"reply": _text(body.get("reply"), "回执内容", 2, 2000)}
        else:
            fields = {"relay": _text(body.get("relay"), "传达内容", 2, 5000),
                      "relayed_to": _text(body.get("relayed_to"), "传达对象", 1, 500)}
        async with self._pool.acquire() as conn:
            row = await visible_meeting(conn, actor, meeting_id)
        if row["kind"] != "external":
            raise NotFound("外部会议不存在", code="meeting_not_found")

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            task = await self._ops.task_at(conn, step, body.get("task_id"), {name},
                                           f"该会议不在“{STEPS[name]}”环节")
            meeting = await store.meeting(conn, meeting_id)
            if name == "relay" and step.now < meeting["starts_at"]:
                raise Conflict("会议尚未召开，不能登记传达情况", code="meeting_not_held")
            if attendees:
                cadres = await subtree_cadres(conn, meeting["org_path"], attendees)
                added = await store.add_invitees(conn, meeting_id, [c["id"] for c in cadres], step.now,
                                                 answer="attend")
                await self._internal.remind.send(conn, meeting, added, "invite",
                                                  f"请代表本单位参加（{meeting['caller']}召集）", step.now)
                await self._internal.remind.send(conn, meeting, added, "start", "会议将于一小时后开始",
                                                  step.now)
            if fields:
                await store.record_external(conn, meeting_id, fields)
            await self._ops.complete(conn, step, actor, task["id"], "pass",
                                     clean_opinion(body.get("opinion")))
            if step.item["status"] == "closed":
                await store.set_status(conn, meeting_id, "closed")
            return {"audit": {"meeting_id": meeting_id, "step": name,
                              **({"attendees": attendees} if attendees else {})}}

        await self._engine.run(actor, row["item_id"], body.get("version"), operation,
                               action=f"meeting.external_{name}", module=EXTERNAL_CODE)
        return await self._internal.detail(actor, meeting_id)
