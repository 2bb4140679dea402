"""A union's meeting rooms and their bookings.

A booking is a time range of a room. No two held bookings of one room overlap: the database
refuses it (an exclusion constraint over the room and the range, ``btree_gist``), so two
organisers booking the same slot at the same moment get one booking and one clear refusal
naming the meeting that holds the room — never two meetings in one room.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import clean_text
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.errors import Conflict, InvalidInput, NotFound
from wxbackend.services.office.meetings.common import PERMISSION, clock_text, iso, list_window
from wxbackend.store.office import meetings as store


async def usable_room(conn: asyncpg.Connection, actor: Actor, room_id: int) -> asyncpg.Record:
    """A room of the actor's subtree."""
    room = await store.room(conn, room_id)
    if room is None or not actor.covers(room["org_path"]):
        raise NotFound("会议室不存在", code="room_not_found")
    return room


async def book(conn: asyncpg.Connection, actor: Actor, room_id: int, meeting_id: int,
               starts: datetime, ends: datetime, now: datetime) -> None:
    """Book the room for the meeting inside the caller's transaction; Conflict (409) naming the
    meeting already holding the room when the times overlap."""
    room = await usable_room(conn, actor, room_id)
    if await store.insert_booking(conn, room_id, meeting_id, starts, ends, now) is None:
        other = await store.clash(conn, room_id, starts, ends)
        when = f"{clock_text(other['starts_at'])}–{clock_text(other['ends_at'])[-5:]}" if other else ""
        title = other["title"] if other else "其他会议"
        raise Conflict(f"{room['name']}在该时段已被“{title}”（{when}）预订，请换一个时间或会议室",
                       code="room_booked")


class Rooms:
    def __init__(self, pool: asyncpg.Pool, *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._audit = audit
        self._now = now

    async def create(self, actor: Actor, body: dict) -> dict:
        actor.require(PERMISSION)
        name = clean_text(body.get("name"), "会议室名称", low=1, high=40, code="room_invalid")
        place = clean_text(body.get("place"), "会议室位置", low=1, high=100, code="room_invalid")
        capacity = body.get("capacity")
        if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 5000:
            raise InvalidInput("容纳人数应为 1 至 5000", code="room_invalid")
        async with self._pool.acquire() as conn, conn.transaction():
            room_id = await store.insert_room(conn, org_id=actor.org_id, name=name, capacity=capacity,
                                              place=place, created_by=actor.id, now=self._now())
            if room_id is None:
                raise Conflict(f"本单位已有名为“{name}”的会议室", code="room_exists")
            await self._audit.acted(conn, actor, "meeting.room_create", f"meeting_room:{room_id}",
                                    {"name": name, "capacity": capacity})
        return {"id": room_id, "org_id": actor.org_id, "name": name, "capacity": capacity, "place": place}

    async def rooms(self, actor: Actor) -> dict:
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            rows = await store.rooms_in(conn, actor.org_path)
        return {"rooms": [dict(r) for r in rows]}

    async def bookings(self, actor: Actor, day: str | None, days: int) -> dict:
        """The bookings of the rooms of the actor's subtree from ``day`` (China time; default
        today) for ``days`` days: the console's day and week lists."""
        actor.require(PERMISSION)
        first, start, end = list_window(day, days, self._now())
        async with self._pool.acquire() as conn:
            rows = await store.bookings_in(conn, actor.org_path, start, end)
        return {"from": first.isoformat(), "days": days,
                "bookings": [{"id": r["id"], "room_id": r["room_id"], "room_name": r["room_name"],
                              "org_name": r["org_name"], "meeting_id": r["meeting_id"],
                              "title": r["title"], "organiser": r["organiser"],
                              "starts_at": iso(r["starts_at"]), "ends_at": iso(r["ends_at"])}
                             for r in rows]}
