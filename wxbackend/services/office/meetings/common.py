"""What the meeting services share: reading times and cadre lists from a form, the meeting as
the console shows it, its attendance figures, and the reminders to invited cadres."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import asyncpg

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.reminders import Reminders
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound
from wxbackend.services.membership.membership import row_id
from wxbackend.store.messaging import outbox as outbox_store
from wxbackend.store.office import meetings as store
from wxbackend.wechat import template_fields

PERMISSION = "meeting.manage"
MAX_INVITEES = 2000         # a congress of representatives, a province-wide conference
MAX_DAYS = 7                 # a meeting (or a congress) lasts at most a week
MAX_AHEAD = timedelta(days=366)   # meetings are arranged at most a year ahead
MAX_LIST_DAYS = 31
REMIND_BEFORE = timedelta(hours=1)
ANSWERS = {"pending": "未回复", "attend": "参会", "leave": "请假"}
LEAVE = {"pending": "待审批", "approved": "已批准", "refused": "未批准"}
STATUS = {"scheduled": "未结束", "cancelled": "已取消", "closed": "已办结"}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def clock_text(value: datetime) -> str:
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def moment(value: object, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidInput(f"{what}应为带时区的时间，如 2026-03-05T09:00:00+08:00", code="meeting_invalid")
    return parsed


def period(body: dict, now: datetime) -> tuple[datetime, datetime]:
    starts, ends = moment(body.get("starts_at"), "开始时间"), moment(body.get("ends_at"), "结束时间")
    if ends <= starts:
        raise InvalidInput("结束时间应晚于开始时间", code="meeting_invalid")
    if ends - starts > timedelta(days=MAX_DAYS):
        raise InvalidInput(f"会议时长不超过 {MAX_DAYS} 天", code="meeting_invalid")
    if ends <= now:
        raise InvalidInput("会议的结束时间已过", code="meeting_invalid")
    if starts - now > MAX_AHEAD:
        raise InvalidInput("会议最多提前一年安排", code="meeting_invalid")
    return starts, ends


def list_window(day: str | None, days: int, now: datetime) -> tuple[date, datetime, datetime]:
    """The lists' period: ``days`` days from ``day`` (China time; default today)."""
    try:
        first = date.fromisoformat(day) if day else now.astimezone(CHINA).date()
    except ValueError:
        raise InvalidInput("日期应为 YYYY-MM-DD", code="invalid_filter") from None
    if abs(first.year - now.year) > 5:
        raise InvalidInput("只能查看前后五年内的安排", code="invalid_filter")
    if not 1 <= days <= MAX_LIST_DAYS:
        raise InvalidInput(f"天数应为 1 至 {MAX_LIST_DAYS}", code="invalid_filter")
    start = datetime.combine(first, time(0), CHINA)
    return first, start, start + timedelta(days=days)


def id_list(value: object, what: str, *, high: int = MAX_INVITEES, low: int = 1) -> list[int]:
    if value is None:
        value = []
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise InvalidInput(f"{what}应为 {low} 至 {high} 个编号的列表", code="meeting_invalid")
    ids = [row_id(v) for v in value]
    if any(i is None for i in ids):
        raise InvalidInput(f"{what}中有无效的编号", code="meeting_invalid")
    return list(dict.fromkeys(ids))  # type: ignore[arg-type]


async def subtree_cadres(conn: asyncpg.Connection, org_path: str,
                         cadre_ids: list[int]) -> list[asyncpg.Record]:
    """The cadres, each active and of the union at ``org_path`` or below it."""
    rows = {r["id"]: r for r in await store.cadres(conn, cadre_ids)}
    for cadre_id in cadre_ids:
        row = rows.get(cadre_id)
        if row is None or row["status"] != "active":
            raise NotFound(f"找不到干部 {cadre_id}（或账号已停用）", code="cadre_not_found")
        if not (row["org_path"] == org_path or row["org_path"].startswith(org_path + ".")):
            raise Forbidden(f"{row['display_name']} 不是本会议所属工会及其下级工会的干部",
                            code="outside_subtree")
    return [rows[i] for i in cadre_ids]


async def visible_meeting(conn: asyncpg.Connection, actor: Actor, meeting_id: int) -> asyncpg.Record:
    """A meeting the actor manages (``meeting.manage`` over its union); NotFound otherwise."""
    row = await store.meeting(conn, meeting_id)
    if row is None or PERMISSION not in actor.permissions or not actor.covers(row["org_path"]):
        raise NotFound("会议不存在", code="meeting_not_found")
    return row


def attendance(invitees: list[asyncpg.Record]) -> dict:
    """应到 (everyone on the list but those on approved leave; one who came anyway counts),
    实到, 迟到, 请假 and the attendance rate (实到 ÷ 应到)."""
    on_leave = [v for v in invitees if v["answer"] == "leave" and v["leave_status"] == "approved"]
    expected = [v for v in invitees if v not in on_leave or v["signed_in_at"] is not None]
    present = [v for v in expected if v["signed_in_at"] is not None]
    return {"expected": len(expected), "present": len(present),
            "late": sum(bool(v["late"]) for v in present),
            "leave": len(on_leave), "absent": len(expected) - len(present),
            "leave_pending": sum(v["leave_status"] == "pending" for v in invitees),
            "rate": round(len(present) / len(expected), 4) if expected else None}


def meeting_view(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "kind": row["kind"], "title": row["title"], "agenda": row["agenda"],
            "org_id": row["org_id"], "org_name": row["org_name"],
            "starts_at": iso(row["starts_at"]), "ends_at": iso(row["ends_at"]),
            "room_id": row["room_id"], "room_name": row["room_name"], "place": row["place"],
            "organiser_id": row["organiser_id"], "organiser": row["organiser"],
            "status": row["status"], "status_name": STATUS[row["status"]],
            "item_id": row["item_id"], "version": row["item_version"], "due_at": iso(row["due_at"]),
            "caller": row["caller"]}


def invitee_view(row: asyncpg.Record) -> dict:
    return {"cadre_id": row["cadre_id"], "name": row["name"], "org_name": row["org_name"],
            "answer": row["answer"], "answer_name": ANSWERS[row["answer"]],
            "leave_reason": row["leave_reason"], "substitute_id": row["substitute_id"],
            "substitute_name": row["substitute_name"], "leave_status": row["leave_status"],
            "leave_status_name": LEAVE.get(row["leave_status"]),
            "substitute_for": row["substitute_for"], "substitute_for_name": row["substitute_for_name"],
            "answered_at": iso(row["answered_at"]), "signed_in_at": iso(row["signed_in_at"]),
            "late": row["late"], "signed_by_hand": row["signed_by"] is not None,
            "signed_by_name": row["signed_by_name"]}


class MeetingReminders:
    """Template messages to cadres about a meeting, through the outbox in the caller's
    transaction: the invitation at once (or when the quiet hours end), and a reminder an hour
    before the start — a row the outbox sends no earlier than then (``not_before``)."""

    def __init__(self, reminders: Reminders, *, template_id: str, console_url: str) -> None:
        self._reminders = reminders
        self._template = template_id
        self._url = f"{console_url.rstrip('/')}/#meetings"

    def _before_start(self, starts: datetime, now: datetime) -> datetime | None:
        """When the reminder before ``starts`` goes out: an hour before; if that falls in the
        quiet hours, the evening before they began; None when that is already past."""
        at = starts - REMIND_BEFORE
        if self._reminders.send_at(at) is not None:
            local = at.astimezone(CHINA)
            while self._reminders.send_at(local - timedelta(minutes=30)) is not None:
                local -= timedelta(minutes=30)
            at = local - timedelta(minutes=30)
        return at if at > now else None

    async def send(self, conn: asyncpg.Connection, meeting: asyncpg.Record | dict, cadre_ids: list[int],
                   kind: str, ask: str, now: datetime) -> int:
        """``kind``: the idempotency key's part (invite, start, leave…); ``ask``: thing4."""
        if not self._template or not cadre_ids:
            return 0
        at = self._before_start(meeting["starts_at"], now) if kind == "start" else self._reminders.send_at()
        if kind == "start" and at is None:
            return 0
        step = f"{meeting['place']}"
        messages = [("template", {
            "touser": row["oa_openid"], "template_id": self._template, "url": self._url,
            "data": template_fields.data({"thing1": meeting["title"], "thing2": step,
                                          "time3": clock_text(meeting["starts_at"]), "thing4": ask},
                                         official_account=True)},
            reminder_key(meeting["id"], kind, row["cadre_id"]))
            for row in await store.bound(conn, cadre_ids)]
        return await outbox_store.enqueue_many(conn, messages, not_before=at)


def reminder_key(meeting_id: int, kind: str, cadre_id: int) -> str:
    return f"meeting:{meeting_id}:{kind}:{cadre_id}"
