"""Meetings (会议): rooms and bookings, internal meetings with QR sign-in, minutes and action
items, and external meetings — each meeting a work item on the casework engine."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from wxbackend.config import Settings
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.casework.engine import Engine
from wxbackend.services.casework.operations import Operations
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.clock import Clock
from wxbackend.services.office.meetings.common import MeetingReminders
from wxbackend.services.office.meetings.external import ExternalMeetings
from wxbackend.services.office.meetings.internal import InternalMeetings
from wxbackend.services.office.meetings.rooms import Rooms
from wxbackend.services.office.meetings.signin import SignIn, meeting_code_key


@dataclass(frozen=True)
class Meetings:
    """The meeting desk's services, held by the runtime as one."""
    rooms: Rooms
    internal: InternalMeetings
    signin: SignIn
    external: ExternalMeetings


def build_meetings(pool: asyncpg.Pool, engine: Engine, ops: Operations, media: MediaLibrary,
                   settings: Settings, index_key: bytes, *, audit: AuditTrail, now: Clock) -> Meetings:
    """The meeting services as the runtime holds them."""
    public_url = settings.server.public_url.rstrip("/")
    remind = MeetingReminders(engine.reminders, template_id=settings.casework.cadre_template_id,
                              console_url=f"{public_url}/admin/")
    internal = InternalMeetings(pool, engine, ops, remind, media, audit=audit, now=now)
    return Meetings(
        rooms=Rooms(pool, audit=audit, now=now), internal=internal,
        signin=SignIn(pool, meeting_code_key(index_key), oa_appid=settings.wechat.appid,
                      public_url=public_url, code_seconds=settings.office.meeting_code_seconds,
                      max_age=settings.office.meeting_code_max_age, audit=audit, now=now),
        external=ExternalMeetings(pool, engine, ops, internal, audit=audit, now=now))
