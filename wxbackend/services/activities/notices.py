"""Results and reminders to workers (won, lost, off the waitlist, approved, not approved, starts
tomorrow), written to the outbox in the transaction of the change that causes them.

A worker who allowed the Mini Program's template at the sign-up tap gets a subscribe message
(one send per tap, which WeChat enforces with 43101); otherwise a follower of the Official
Account gets its template message; a worker reachable neither way still sees everything on the
pages. Values are fitted to the templates' typed keywords before they are queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from wxbackend.config import ActivitiesSettings
from wxbackend.services.clock import CHINA, china_now
from wxbackend.store.activities import claims as store
from wxbackend.store.messaging import outbox as outbox_store
from wxbackend.wechat import template_fields

log = logging.getLogger(__name__)

# event -> (phrase2: the result, at most five Chinese characters; thing4: what to do next)
EVENTS = {
    "won": ("已中签", "请在确认时限前确认名额"),
    "lost": ("未中签", "感谢参与，欢迎关注其他活动"),
    "promoted": ("候补成功", "请在确认时限前确认名额"),
    "approved": ("审核通过", "请在确认时限前确认名额"),
    "waitlisted": ("进入候补", "有名额空出时将自动为您保留"),
    "rejected": ("未通过", "详情请查看我的报名"),
    "reminder": ("明日开始", "请按时参加"),
}
REMINDER_BATCH = 500


class Notices:
    def __init__(self, settings: ActivitiesSettings, *, oa_appid: str, mp_appid: str,
                 h5_base: str, now: Callable[[], datetime] = china_now) -> None:
        self._s = settings
        self._oa_appid = oa_appid
        self._mp_appid = mp_appid
        self._url = f"{h5_base.rstrip('/')}/signups.html"
        self._now = now

    def allowed(self, templates: object) -> list[str]:
        """Of the templates a worker says they allowed at the tap, the ones we send."""
        ours = {self._s.mp_result_template_id, self._s.mp_reminder_template_id} - {""}
        return sorted(ours & set(templates)) if isinstance(templates, list) else []

    async def tell(self, conn: asyncpg.Connection, claim_ids: list[int], event: str) -> int:
        """Queue ``event``'s message for each claim (once per claim and event)."""
        if not claim_ids:
            return 0
        result, note = EVENTS[event]
        mp_template = self._s.mp_reminder_template_id if event == "reminder" \
            else self._s.mp_result_template_id
        queued = 0
        for row in await store.notice_context(conn, claim_ids, self._oa_appid, self._mp_appid):
            when = row["hold_until"] if event != "reminder" and row["hold_until"] else row["starts_at"]
            data = template_fields.data({
                "thing1": row["title"], "phrase2": result,
                "time3": (when or self._now()).astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
                "thing4": note})
            key = f"claim:{row['id']}:{event}"
            if mp_template and mp_template in row["notice_grants"] and row["mp_openid"]:
                payload = {"touser": row["mp_openid"], "template_id": mp_template,
                           "page": f"pages/signups/signups?id={row['id']}", "data": data}
                queued += await outbox_store.enqueue(conn, "mp_subscribe", payload, key) is not None
            elif self._s.notice_template_id and row["oa_openid"]:
                payload = {"touser": row["oa_openid"], "template_id": self._s.notice_template_id,
                           "url": self._url, "client_msg_id": key.replace(":", "-"), "data": data}
                queued += await outbox_store.enqueue(conn, "template", payload, key) is not None
        return queued

    async def remind_tomorrow(self, pool: asyncpg.Pool) -> int:
        """The day before an item starts (China days), each confirmed place is reminded once."""
        now = self._now().astimezone(CHINA)
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        total = 0
        while True:
            async with pool.acquire() as conn, conn.transaction():
                ids = await store.due_reminders(conn, tomorrow, tomorrow + timedelta(days=1), now,
                                                REMINDER_BATCH)
                total += await self.tell(conn, ids, "reminder")
            if len(ids) < REMINDER_BATCH:
                return total
