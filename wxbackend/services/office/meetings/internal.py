"""Internal meetings (内部会议): the union's own, organised by cadres holding ``meeting.manage``.

Creating one books its room (no double booking), invites cadres of the union's subtree and opens
a work item of module ``meeting`` at the organiser's union; the item closes when the minutes
(纪要) are filed at its desk step, due five working days after the meeting's day. Invitees answer
attend, or leave (请假) naming a substitute, which the organiser approves (the substitute joins
the list in their place) or refuses. Invited cadres with a bound WeChat get the invitation at
once and a reminder an hour before the start, both through the outbox. The minutes' action items
(督办事项) become work items of module ``meeting_action`` at the named union (its office handles
it) or for the named cadre, each due on the date given.
"""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step, clean_opinion, clean_text
from wxbackend.services.casework.modules import Module
from wxbackend.services.casework.operations import Operations
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office.meetings.common import (
    PERMISSION,
    MeetingReminders,
    attendance,
    id_list,
    invitee_view,
    iso,
    list_window,
    meeting_view,
    period,
    reminder_key,
    subtree_cadres,
    visible_meeting,
)
from wxbackend.services.office.meetings.rooms import book, usable_room
from wxbackend.store.casework import items as item_store
from wxbackend.store.office import meetings as store

MEETING_CODE, ACTION_CODE = "meeting", "meeting_action"
MINUTES_DUE = {"count": 5, "unit": "working", "warn": 2, "escalate": 2}
MAX_ACTIONS = 30
MAX_FILES = 10
MAX_ACTION_DAYS = 366

GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "minutes"},
    {"id": "minutes", "type": "task", "name": "会议纪要", "assign": [{"role": "office"}], "next": "filed"},
    {"id": "filed", "type": "end", "outcome": "minutes_filed"},
]}
MEETING = Module(code=MEETING_CODE, name="内部会议", permission=PERMISSION, graph=GRAPH,
                 desk_nodes=frozenset({"minutes"}))

ACTION_GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "handle"},
    {"id": "handle", "type": "task", "name": "督办事项办理", "assign": [{"role": "office"}], "next": "done"},
    {"id": "done", "type": "end", "outcome": "done"},
]}
MEETING_ACTION = Module(code=ACTION_CODE, name="会议督办事项", permission=PERMISSION, graph=ACTION_GRAPH)


def _text(value: object, what: str, low: int, high: int, *, required: bool = True) -> str | None:
    return clean_text(value, what, low=low, high=high, code="meeting_invalid", required=required)


class InternalMeetings:
    def __init__(self, pool: asyncpg.Pool, engine: Engine, ops: Operations, reminders: MeetingReminders,
                 media: MediaLibrary, *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._engine = engine
        self._ops = ops
        self.remind = reminders
        self._media = media
        self._audit = audit
        self._now = now

    # --- organising ---------------------------------------------------------------------------
    async def create(self, actor: Actor, body: dict) -> dict:
        actor.require(PERMISSION)
        now = self._now()
        title = _text(body.get("title"), "会议名称", 2, 80)
        agenda = _text(body.get("agenda"), "会议议程", 1, 3000, required=False)
        starts, ends = period(body, now)
        room_id = row_id(body.get("room_id")) if body.get("room_id") is not None else None
        if body.get("room_id") is not None and room_id is None:
            raise InvalidInput("会议室编号无效", code="meeting_invalid")
        place = _text(body.get("place"), "会议地点", 1, 100, required=room_id is None)
        invited = id_list(body.get("invitees"), "参会人员")
        async with self._pool.acquire() as conn, conn.transaction():
            cadres = await subtree_cadres(conn, actor.org_path, invited)
            if room_id is not None:
                room = await usable_room(conn, actor, room_id)
                place = f"{room['place']} {room['name']}"
            meeting_id = await store.insert_meeting(
                conn, kind="internal", org_id=actor.org_id, title=title, agenda=agenda,
                starts_at=starts, ends_at=ends, room_id=room_id, place=place or "",
                organiser_id=actor.id, caller=None, now=now)
            if room_id is not None:
                await book(conn, actor, room_id, meeting_id, starts, ends, now)
            step = await self._engine.start(conn, MEETING_CODE, org_id=actor.org_id, title=title,
                                            data={}, submitter_cadre_id=actor.id)
            await self._engine.set_item_deadline(conn, step, MINUTES_DUE,
                                                 start=starts.astimezone(CHINA).date())
            await self._engine.save(conn, step)
            await store.set_item(conn, meeting_id, step.item["id"])
            await self._invite(conn, meeting_id, [c["id"] for c in cadres], now)
            await self._audit.acted(conn, actor, "meeting.create", f"meeting:{meeting_id}",
                                {"room_id": room_id, "invitees": len(cadres)})
        return await self.detail(actor, meeting_id)

    async def _invite(self, conn: asyncpg.Connection, meeting_id: int, cadre_ids: list[int],
                      now: datetime, *, substitute_for: int | None = None) -> list[int]:
        answer = "attend" if substitute_for else "pending"
        added = await store.add_invitees(conn, meeting_id, cadre_ids, now, answer=answer,
                                         substitute_for=substitute_for)
        meeting = await store.meeting(conn, meeting_id)
        ask = "代请假同志参会，请准时参加" if substitute_for else "请在工作台回复是否参会"
        await self.remind.send(conn, meeting, added, "invite", ask, now)
        await self.remind.send(conn, meeting, added, "start", "会议将于一小时后开始", now)
        return added

    async def _scheduled(self, conn: asyncpg.Connection, actor: Actor, meeting_id: int) -> asyncpg.Record:
        row = await visible_meeting(conn, actor, meeting_id)
        if row["kind"] != "internal":
            raise NotFound("会议不存在", code="meeting_not_found")
        if row["status"] != "scheduled":
            raise Conflict("会议已取消或已办结", code="meeting_closed")
        return row

    async def invite(self, actor: Actor, meeting_id: int, body: dict) -> dict:
        invited = id_list(body.get("invitees"), "参会人员")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._scheduled(conn, actor, meeting_id)
            if row["ends_at"] <= now:
                raise Conflict("会议已结束，不能再邀请", code="meeting_over")
            cadres = await subtree_cadres(conn, row["org_path"], invited)
            added = await self._invite(conn, meeting_id, [c["id"] for c in cadres], now)
            await self._audit.acted(conn, actor, "meeting.invite", f"meeting:{meeting_id}", {"added": added})
        return await self.detail(actor, meeting_id)

    async def cancel(self, actor: Actor, meeting_id: int, body: dict) -> dict:
        """取消: the room is free again, the reminders not yet sent are withdrawn and the item
        closes as cancelled (it leaves the completion rates)."""
        reason = clean_opinion(body.get("reason"), required=True)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._scheduled(conn, actor, meeting_id)
            await store.release_bookings(conn, meeting_id)
            await store.set_status(conn, meeting_id, "cancelled")
            people = [v["cadre_id"] for v in await store.invitees(conn, meeting_id)]
            await store.withdraw_reminders(conn, [reminder_key(meeting_id, k, c)
                                                  for c in people for k in ("invite", "start")])
            await self.remind.send(conn, row, people, "cancel", "会议已取消", self._now())
            step = await self._engine.load(conn, row["item_id"], actor_id=actor.id)
            for s in await item_store.steps_of(conn, row["item_id"]):
                if s["status"] == "open":
                    await item_store.close_step(conn, s["id"], "cancelled", step.now)
            await self._engine.close(conn, step, "cancelled", cancelled=True)
            await self._engine.save(conn, step)
            await self._audit.acted(conn, actor, "meeting.cancel", f"meeting:{meeting_id}",
                                    {"reason": reason})
        return await self.detail(actor, meeting_id)

    # --- reading --------------------------------------------------------------------------------
    async def meetings(self, actor: Actor, *, kind: str, day: str | None, days: int) -> dict:
        actor.require(PERMISSION)
        if kind not in {"internal", "external"}:
            raise InvalidInput("kind 应为 internal 或 external", code="invalid_filter")
        _, start, end = list_window(day, days, self._now())
        async with self._pool.acquire() as conn:
            rows = await store.meetings_in(conn, actor.org_path, kind, start, end)
        return {"meetings": [meeting_view(r) | {"invited": r["invited"], "present": r["present"]}
                             for r in rows]}

    async def detail(self, actor: Actor, meeting_id: int) -> dict:
        async with self._pool.acquire() as conn:
            row = await visible_meeting(conn, actor, meeting_id)
            people = await store.invitees(conn, meeting_id)
            files = await store.files_of(conn, meeting_id)
            actions = await store.actions_of(conn, meeting_id)
            task = None
            if row["item_id"] is not None and row["item_status"] == "open":
                task = next((t for t in await item_store.tasks_of(conn, row["item_id"])
                             if t["status"] == "open"), None)
        return {**meeting_view(row), "minutes": row["minutes"], "minutes_at": iso(row["minutes_at"]),
                "leader": row["leader"], "instruction": row["instruction"], "reply": row["reply"],
                "relay": row["relay"], "relayed_to": row["relayed_to"],
                "task_id": task["id"] if task else None, "step": task["node"] if task else None,
                "invitees": [invitee_view(v) for v in people], "attendance": attendance(people),
                "files": [dict(f) for f in files],
                "actions": [{"id": a["id"], "what": a["what"], "org_id": a["org_id"],
                             "org_name": a["org_name"], "cadre_id": a["cadre_id"],
                             "cadre_name": a["cadre_name"], "deadline": a["deadline"].isoformat(),
                             "item_id": a["item_id"], "status": a["item_status"],
                             "closed_at": iso(a["closed_at"])} for a in actions]}

    # --- invitees -------------------------------------------------------------------------------
    async def invitations(self, actor: Actor) -> dict:
        """The meetings the actor is expected at (any cadre: no permission needed to be invited)."""
        async with self._pool.acquire() as conn:
            rows = await store.invitations_of(conn, actor.id, self._now())
        return {"meetings": [meeting_view(r) | {
            "answer": r["answer"], "leave_status": r["leave_status"],
            "signed_in_at": iso(r["signed_in_at"]), "substitute": r["substitute_for"] is not None}
            for r in rows]}

    async def answer(self, actor: Actor, meeting_id: int, body: dict) -> dict:
        """参会, or 请假 with a reason and (optionally) a substitute of the meeting's subtree."""
        choice = body.get("answer")
        if choice not in ("attend", "leave"):
            raise InvalidInput("请选择参会（attend）或请假（leave）", code="answer_invalid")
        reason = _text(body.get("reason"), "请假事由", 2, 500) if choice == "leave" else None
        substitute_id = None
        if choice == "leave" and body.get("substitute_id") is not None:
            substitute_id = row_id(body.get("substitute_id"))
            if substitute_id is None:
                raise InvalidInput("代会人编号无效", code="answer_invalid")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.meeting(conn, meeting_id)
            mine = await store.invitee(conn, meeting_id, actor.id, lock=True) if row else None
            if row is None or mine is None or row["kind"] != "internal":
                raise NotFound("您不在该会议的参会名单中", code="not_invited")
            if row["status"] != "scheduled" or now >= row["starts_at"]:
                raise Conflict("会议已开始、已取消或已办结，不能再回复", code="answer_closed")
            if mine["leave_status"] == "approved":
                raise Conflict("您的请假已获批准；如需参会，请联系会议组织者", code="leave_approved")
            if substitute_id is not None:
                if substitute_id == actor.id:
                    raise InvalidInput("代会人不能是自己", code="answer_invalid")
                [substitute] = await subtree_cadres(conn, row["org_path"], [substitute_id])
                if await store.invitee(conn, meeting_id, substitute_id) is not None:
                    raise Conflict(f"{substitute['display_name']} 已在参会名单中", code="substitute_invited")
            await store.answer(conn, meeting_id, actor.id, answer=choice, reason=reason,
                               substitute_id=substitute_id, now=now)
            await self._audit.acted(conn, actor, f"meeting.{choice}", f"meeting:{meeting_id}",
                                {"substitute_id": substitute_id} if substitute_id else {})
            if choice == "leave":
                await self.remind.send(conn, row, [row["organiser_id"]], f"leave:{actor.id}",
                                        "有参会人员请假，待审批", now)
        return {"meeting_id": meeting_id, "answer": choice,
                "leave_status": "pending" if choice == "leave" else None}

    async def decide_leave(self, actor: Actor, meeting_id: int, body: dict) -> dict:
        """The organiser's office approves a leave (its substitute joins the list) or refuses it
        (the invitee is still expected)."""
        cadre_id = row_id(body.get("cadre_id"))
        approve = body.get("approve")
        if cadre_id is None or not isinstance(approve, bool):
            raise InvalidInput("请指明请假人 cadre_id 和是否批准 approve", code="leave_invalid")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._scheduled(conn, actor, meeting_id)
            leave = await store.invitee(conn, meeting_id, cadre_id, lock=True)
            if leave is None or leave["leave_status"] != "pending":
                raise Conflict("没有待审批的请假", code="no_pending_leave")
            await store.decide_leave(conn, meeting_id, cadre_id, "approved" if approve else "refused",
                                     actor.id)
            if approve:
                await store.withdraw_reminders(conn, [reminder_key(meeting_id, "start", cadre_id)])
                if leave["substitute_id"] is not None:
                    await self._invite(conn, meeting_id, [leave["substitute_id"]], now,
                                       substitute_for=cadre_id)
            else:
                await self.remind.send(conn, row, [cadre_id], "refused", "请假未获批准，请按时参会", now)
            action = "meeting.leave_approve" if approve else "meeting.leave_refuse"
            await self._audit.acted(conn, actor, action, f"meeting:{meeting_id}", {"cadre_id": cadre_id})
        return await self.detail(actor, meeting_id)

    # --- minutes and action items ---------------------------------------------------------------
    async def upload_file(self, actor: Actor, data: bytes, filename: str) -> dict:
        """An attachment for minutes or an external notice: checked (PDF, Word, Excel) with no
        connection held, then kept in the database, shown only to the union's meeting desk."""
        actor.require(PERMISSION)
        checked = await self._media.clean_attachment(data, filename)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.insert_file(conn, org_id=actor.org_id, filename=checked.filename,
                                          content_type=checked.content_type, data=data,
                                          uploaded_by=actor.id, now=self._now())
            await self._audit.acted(conn, actor, "meeting.file_upload", f"meeting_file:{row['id']}",
                                {"bytes": len(data)})
        return dict(row)

    async def file(self, actor: Actor, file_id: int) -> asyncpg.Record:
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            row = await store.file(conn, file_id)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("附件不存在", code="file_not_found")
        return row

    async def attach(self, conn: asyncpg.Connection, actor: Actor, meeting_id: int,
                     value: object) -> list[int]:
        """Attach uploaded files of the actor's subtree that belong to no meeting yet."""
        ids = id_list(value, "附件", high=MAX_FILES, low=0)
        rows = {r["id"]: r for r in await store.files_meta(conn, ids)}
        for file_id in ids:
            row = rows.get(file_id)
            if row is None or not actor.covers(row["org_path"]) \
                    or row["meeting_id"] not in (None, meeting_id):
                raise NotFound(f"附件 {file_id} 不存在或不属于本单位", code="file_not_found")
        await store.attach_files(conn, meeting_id, ids)
        return ids

    async def _actions(self, conn: asyncpg.Connection, actor: Actor, meeting: asyncpg.Record,
                       value: object, today: date) -> list[dict]:
        if value is None:
            value = []
        if not isinstance(value, list) or len(value) > MAX_ACTIONS:
            raise InvalidInput(f"督办事项最多 {MAX_ACTIONS} 项", code="action_invalid")
        out = []
        for n, raw in enumerate(value, 1):
            if not isinstance(raw, dict):
                raise InvalidInput(f"第 {n} 项督办事项的格式有误", code="action_invalid")
            what = clean_text(raw.get("what"), f"第 {n} 项督办事项的内容", low=2, high=500,
                              code="action_invalid")
            if not raw.get("deadline"):
                raise InvalidInput(f"第 {n} 项督办事项请填写办结期限", code="action_deadline_required")
            try:
                deadline = date.fromisoformat(str(raw["deadline"]))
            except ValueError:
                raise InvalidInput(f"第 {n} 项督办事项的办结期限应为 YYYY-MM-DD",
                                   code="action_invalid") from None
            if not 0 <= (deadline - today).days <= MAX_ACTION_DAYS:
                raise InvalidInput(f"第 {n} 项督办事项的办结期限应在今天至一年以内", code="action_invalid")
            cadre_id, org_id = row_id(raw.get("cadre_id")), row_id(raw.get("org_id"))
            if (cadre_id is None) == (org_id is None):
                raise InvalidInput(f"第 {n} 项督办事项请指定一个承办工会或承办干部",
                                   code="action_invalid")
            if cadre_id is not None:
                [cadre] = await subtree_cadres(conn, actor.org_path, [cadre_id])
                org_id = cadre["org_id"]
            else:
                org = await item_store.org(conn, org_id)
                if org is None:
                    raise NotFound("承办工会不存在", code="org_not_found")
                if not actor.covers(org["path"]):
                    raise Forbidden("督办事项只能交给本单位及下级工会", code="outside_subtree")
            out.append({"what": what, "org_id": org_id, "cadre_id": cadre_id, "deadline": deadline})
        return out

    async def _open_action(self, conn: asyncpg.Connection, actor: Actor, meeting_id: int,
                           action: dict, today: date) -> int:
        """The action item on the engine: at its union, due on its date; for a named cadre, the
        office's task is handed to them (转办) at once."""
        step = await self._engine.start(conn, ACTION_CODE, org_id=action["org_id"],
                                        title=action["what"][:200], data={}, submitter_cadre_id=actor.id)
        await self._engine.set_item_deadline(conn, step, {
            "count": (action["deadline"] - today).days, "unit": "calendar", "warn": 2, "escalate": 2},
            start=today)
        if action["cadre_id"] is not None:
            [task] = await self._engine.open_tasks(conn, step)
            await item_store.reassign_task(conn, task["id"], action["cadre_id"], None)
            await self._engine.event(conn, step, "transferred", task_id=task["id"],
                                     detail={"to": action["cadre_id"]})
            await self._engine.reminders.tasks(conn, [task["id"]], "new",
                                               f"work:{task['id']}:to:{action['cadre_id']}")
        await self._engine.save(conn, step)
        await store.insert_action(conn, meeting_id=meeting_id, what=action["what"],
                                  org_id=action["org_id"], cadre_id=action["cadre_id"],
                                  deadline=action["deadline"], item_id=step.item["id"], now=step.now)
        return step.item["id"]

    async def file_minutes(self, actor: Actor, meeting_id: int, body: dict) -> dict:
        """纪要 with attachments and 督办事项: the meeting's item closes, each action item opens."""
        minutes = _text(body.get("minutes"), "会议纪要", 10, 20000)
        async with self._pool.acquire() as conn:
            row = await self._scheduled(conn, actor, meeting_id)

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            task = await self._ops.task_at(conn, step, body.get("task_id"), {"minutes"},
                                           "该会议不在纪要环节")
            meeting = await store.meeting(conn, meeting_id)
            if meeting["status"] != "scheduled":
                raise Conflict("会议已取消或已办结", code="meeting_closed")
            if step.now < meeting["starts_at"]:
                raise Conflict("会议尚未召开，不能提交纪要", code="meeting_not_held")
            today = step.now.astimezone(CHINA).date()
            actions = await self._actions(conn, actor, meeting, body.get("actions"), today)
            files = await self.attach(conn, actor, meeting_id, body.get("files"))
            await store.file_minutes(conn, meeting_id, minutes, step.now)
            items = [await self._open_action(conn, actor, meeting_id, a, today) for a in actions]
            await self._ops.complete(conn, step, actor, task["id"], "pass",
                                     clean_opinion(body.get("opinion")))
            return {"audit": {"meeting_id": meeting_id, "files": files, "action_items": items},
                    "action_items": items}

        await self._engine.run(actor, row["item_id"], body.get("version"), operation,
                               action="meeting.minutes", module=MEETING_CODE)
        return await self.detail(actor, meeting_id)
