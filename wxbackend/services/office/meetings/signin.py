"""Sign-in at an internal meeting (会议签到).

The venue's screen shows a QR code that changes every ``meeting_code_seconds``: a short-lived
signed token for the meeting (the same construction as the activities' venue check-in), good
for ``meeting_code_max_age`` seconds, so a photo of the screen sent to someone outside stops
working within a minute. The attendee scans it with WeChat; the H5 page signs them in through
the Official Account's web authorisation, and the cadre is the one who bound that WeChat in the
console. A sign-in is one conditional statement, so it is recorded exactly once however often
or however concurrently the same person scans. After the start it counts as late (迟到). The
organiser may also sign someone in by hand (audited).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from wxbackend.services import signed_tokens
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import CHINA, Clock, china_now, unix_time
from wxbackend.services.drawing import qr_png
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office.meetings.common import visible_meeting
from wxbackend.store.identity import accounts as account_store
from wxbackend.store.office import meetings as store

OPENS_BEFORE = timedelta(hours=1)   # sign-in opens an hour before the start
MEETING_CODE = signed_tokens.TokenKind(
    domain=b"meeting-venue\x00",
    invalid=("签到码无效，请扫描会场屏幕上的签到码", "meeting_code_invalid"),
    expired=("签到码已过期，请扫描会场屏幕上最新的签到码", "meeting_code_expired"))


def meeting_code_key(index_key: bytes) -> bytes:
    return signed_tokens.derived_key(index_key, b"meeting-codes-v1")



class SignIn:
    def __init__(self, pool: asyncpg.Pool, key: bytes, *, oa_appid: str, public_url: str,
                 code_seconds: int, max_age: int, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._key = key
        self._appid = oa_appid
        self._page = f"{public_url.rstrip('/')}/h5/meeting.html"
        self._every = code_seconds
        self._max_age = max_age
        self._audit = audit
        self._now = now

    # --- the venue's screen -------------------------------------------------------------------
    async def _internal(self, conn: asyncpg.Connection, actor: Actor, meeting_id: int) -> asyncpg.Record:
        row = await visible_meeting(conn, actor, meeting_id)
        if row["kind"] != "internal":
            raise InvalidInput("外部会议无需在本平台签到", code="not_internal")
        if row["status"] != "scheduled":
            raise Conflict("会议已取消或已办结", code="meeting_closed")
        return row

    async def venue_code(self, actor: Actor, meeting_id: int) -> dict:
        async with self._pool.acquire() as conn:
            row = await self._internal(conn, actor, meeting_id)
        code = signed_tokens.issue(self._key, MEETING_CODE, meeting_id, unix_time(self._now))
        return {"meeting_id": meeting_id, "title": row["title"], "code": code,
                "url": f"{self._page}#m={meeting_id}&code={code}",
                "refresh_in": self._every, "expires_in": self._max_age}

    async def venue_png(self, actor: Actor, meeting_id: int) -> bytes:
        """The code as a large QR image, drawn on a worker thread."""
        shown = await self.venue_code(actor, meeting_id)
        return await asyncio.get_running_loop().run_in_executor(None, qr_png, shown["url"], 720)

    # --- signing in ----------------------------------------------------------------------------
    def _window(self, meeting: asyncpg.Record) -> None:
        now = self._now()
        if meeting["kind"] != "internal":
            raise InvalidInput("外部会议无需在本平台签到", code="not_internal")
        if meeting["status"] != "scheduled":
            raise Conflict("会议已取消或已办结，不能签到", code="meeting_closed")
        if now < meeting["starts_at"] - OPENS_BEFORE:
            raise Conflict("签到尚未开始（会前一小时开放）", code="signin_not_open")
        if now >= meeting["ends_at"]:
            raise Conflict("会议已结束，签到已关闭", code="signin_closed")

    async def _record(self, conn: asyncpg.Connection, meeting: asyncpg.Record, cadre_id: int,
                      name: str, signed_by: int | None) -> dict:
        done = await store.sign_in(conn, meeting["id"], cadre_id, self._now(), meeting["starts_at"],
                                   signed_by)
        if done is None:
            earlier = await store.invitee(conn, meeting["id"], cadre_id)
            if earlier is None:
                raise Forbidden(f"{name}不在“{meeting['title']}”的参会名单中", code="not_invited")
            at = earlier["signed_in_at"].astimezone(CHINA).strftime("%H:%M")
            raise Conflict(f"{name}已于 {at} 签到，无需重复签到", code="already_signed")
        return {"meeting_id": meeting["id"], "title": meeting["title"], "cadre_id": cadre_id,
                "name": name, "signed_in_at": done["signed_in_at"].isoformat(), "late": done["late"]}

    async def by_scan(self, account_id: int, body: dict) -> dict:
        """From the attendee's phone: the page opened by the venue's QR, signed in through WeChat."""
        meeting_id = row_id(body.get("meeting_id"))
        if meeting_id is None:
            raise InvalidInput("请扫描会场屏幕上的签到码", code="meeting_code_invalid")
        subject, _ = signed_tokens.read(self._key, MEETING_CODE, body.get("code"), unix_time(self._now),
                                        self._max_age)
        if subject != meeting_id:
            raise InvalidInput("该签到码不属于本次会议，请扫描本会场屏幕上的签到码",
                               code="meeting_code_other")
        async with self._pool.acquire() as conn:
            openid = await account_store.oa_openid(conn, account_id, self._appid)
            cadre = await store.cadre_by_openid(conn, openid) if openid else None
            if cadre is None:
                raise Forbidden("您的微信尚未绑定工会干部账号：请先在工会干部控制台“我的待办”中绑定微信，"
                                "再扫码签到", code="cadre_not_bound")
            meeting = await store.meeting(conn, meeting_id)
            if meeting is None:
                raise NotFound("会议不存在", code="meeting_not_found")
            self._window(meeting)
            return await self._record(conn, meeting, cadre["id"], "您", None)

    async def by_hand(self, actor: Actor, meeting_id: int, body: dict) -> dict:
        """The organiser signs in someone present who could not scan (audited)."""
        cadre_id = row_id(body.get("cadre_id"))
        if cadre_id is None:
            raise InvalidInput("请指明签到的干部 cadre_id", code="signin_invalid")
        async with self._pool.acquire() as conn, conn.transaction():
            meeting = await self._internal(conn, actor, meeting_id)
            if self._now() < meeting["starts_at"] - OPENS_BEFORE:
                raise Conflict("签到尚未开始（会前一小时开放）", code="signin_not_open")
            person = next(iter(await store.cadres(conn, [cadre_id])), None)
            name = person["display_name"] if person else "该干部"
            done = await self._record(conn, meeting, cadre_id, name, actor.id)
            await self._audit.acted(conn, actor, "meeting.sign_in_by_hand", f"meeting:{meeting_id}",
                                    {"cadre_id": cadre_id, "late": done["late"]})
        return done
