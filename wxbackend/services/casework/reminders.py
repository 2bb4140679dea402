"""Reminders about handled items, written to the outbox in the transaction that causes them.

Cadres get an Official Account template message when they have bound their WeChat in the console
(without it, 我的待办 still shows everything); workers get the Mini Program's subscribe message
when they allowed it at the tap, else the Official Account's template when they follow it.
Reminders that fall in the quiet hours (China time) wait until the morning. Each has an
idempotency key: a step repeated after a crash never sends twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from wxbackend.config import CaseworkSettings
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.store.casework import reminders as store
from wxbackend.store.messaging import outbox as outbox_store
from wxbackend.wechat import template_fields

# what a cadre is asked, by reminder kind (thing4)
ASKS = {
    "new": "请及时办理", "warn": "即将到期，请抓紧办理", "due": "已逾期，请尽快办理",
    "escalate": "下级工会逾期未办，请督办", "urge": "上级催办，请尽快办理",
    "circulate": "请阅知", "copy": "抄送知悉", "extension": "延期申请待审批",
}


ANNOUNCE_BATCH = 5000   # outbox rows a statement


class Reminders:
    def __init__(self, settings: CaseworkSettings, *, oa_appid: str, mp_appid: str,
                 console_url: str, h5_base: str, now: Clock = china_now) -> None:
        self._s = settings
        self._oa_appid = oa_appid
        self._mp_appid = mp_appid
        self._console = console_url
        self._h5 = h5_base.rstrip("/")
        self._now = now

    @property
    def enabled(self) -> bool:
        """Are cadres reminded through WeChat at all (a template is configured)?"""
        return bool(self._s.cadre_template_id)

    def send_at(self, at: datetime | None = None) -> datetime | None:
        """The end of the quiet hours ``at`` (default now) falls in; None outside them (send
        at once)."""
        at = (at or self._now()).astimezone(CHINA)
        start, end = self._s.quiet_start, self._s.quiet_end
        if start == end:
            return None
        hour = at.hour
        quiet = (start <= hour or hour < end) if start > end else (start <= hour < end)
        if not quiet:
            return None
        morning = at.replace(hour=end, minute=0, second=0, microsecond=0)
        return morning + timedelta(days=1) if hour >= end else morning

    async def _to_cadres(self, conn: asyncpg.Connection, rows: list[asyncpg.Record], kind: str,
                         key: str | Callable[[asyncpg.Record], str]) -> int:
        """``key``: the idempotency key's stem, or what gives it for a row."""
        template = self._s.cadre_template_id
        if not template or not rows:
            return 0
        at = self.send_at()
        messages = []
        for row in rows:
            # The template's time keyword takes only a time: an item without a limit shows when
            # it was asked of the cadre.
            due = row["due_at"] or at or self._now()
            payload = {
                "touser": row["oa_openid"], "template_id": template,
                "url": f"{self._console}#work",   # the console opens on 我的待办
                "data": template_fields.data({
                    "thing1": row["title"], "thing2": row["step_name"] or "事项办理",
                    "time3": due.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
                    "thing4": ASKS[kind]}, official_account=True)}
            stem = key(row) if callable(key) else key
            messages.append(("template", payload, f"{stem}:{row['cadre_id']}"))
        return await outbox_store.enqueue_many(conn, messages, not_before=at)

    async def announce(self, conn: asyncpg.Connection, people: list[tuple[int, str]], *, thing: str,
                       source: str, when: datetime, ask: str, view: str, key: str) -> int:
        """A message to cadres about something other than a task of theirs (a notice, a
        briefing): the cadre template with thing1 what, thing2 from whom, time3 when, thing4 what
        is asked, opening the console's ``view``. ``people``: (cadre id, bound openid); each
        message's idempotency key is ``key`` and the cadre."""
        template = self._s.cadre_template_id
        if not template or not people:
            return 0
        data = template_fields.data({"thing1": thing, "thing2": source,
                                     "time3": when.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
                                     "thing4": ask}, official_account=True)
        url = f"{self._console}#{view}"
        at = self.send_at()
        queued = 0
        for start in range(0, len(people), ANNOUNCE_BATCH):
            queued += await outbox_store.enqueue_many(conn, [
                ("template", {"touser": openid, "template_id": template, "url": url, "data": data},
                 f"{key}:{cadre_id}") for cadre_id, openid in people[start:start + ANNOUNCE_BATCH]],
                not_before=at)
        return queued

    async def items(self, conn: asyncpg.Connection, asks: dict[int, tuple[str, str]]) -> int:
        """For each item, its reminder (kind, idempotency key) to everyone who may act on its
        open tasks: the deadline sweep's batch, in one query."""
        rows = await store.item_recipients(conn, list(asks), self._now())
        queued = 0
        for kind in {k for k, _ in asks.values()}:
            mine = [r for r in rows if asks[r["item_id"]][0] == kind]
            queued += await self._to_cadres(conn, mine, kind, lambda r: asks[r["item_id"]][1])
        return queued

    async def upper_many(self, conn: asyncpg.Connection, escalated: list[tuple[int, str]],
                         permission: str) -> int:
        keys = dict(escalated)
        rows = await store.upper_recipients_many(conn, list(keys), permission)
        return await self._to_cadres(conn, rows, "escalate", lambda r: keys[r["item_id"]])

    async def tasks(self, conn: asyncpg.Connection, task_ids: list[int], kind: str, key: str) -> int:
        """Everyone who may act on these tasks (and their proxies) with a bound WeChat."""
        if not task_ids or not self._s.cadre_template_id:
            return 0
        return await self._to_cadres(conn, await store.task_recipients(conn, task_ids, self._now()),
                                     kind, key)

    async def cadres(self, conn: asyncpg.Connection, item_id: int, cadre_ids: list[int], kind: str,
                     key: str) -> int:
        if not cadre_ids or not self._s.cadre_template_id:
            return 0
        return await self._to_cadres(conn, await store.cadre_recipients(conn, item_id, cadre_ids),
                                     kind, key)

    async def upper(self, conn: asyncpg.Connection, item_id: int, permission: str, key: str, *,
                    kind: str = "escalate") -> int:
        """The union above the item's: escalation, extension requests."""
        if not self._s.cadre_template_id:
            return 0
        return await self._to_cadres(
            conn, await store.upper_recipients_many(conn, [item_id], permission), kind, key)

    async def submitter(self, conn: asyncpg.Connection, item_id: int, progress: str, next_step: str,
                        key: str, page: str) -> int:
        """The worker who filed the item: ``progress`` at most five Chinese characters."""
        row = await store.submitter(conn, item_id, self._oa_appid, self._mp_appid)
        if row is None:
            return 0
        values = {"thing1": row["title"], "phrase2": progress,
                  "time3": self._now().astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
                  "thing4": next_step}
        mp_template = self._s.mp_worker_template_id
        at = self.send_at()
        if mp_template and mp_template in (row["notice_grants"] or []) and row["mp_openid"]:
            payload = {"touser": row["mp_openid"], "template_id": mp_template,
                       "page": f"pages/appeals/appeals?id={item_id}",
                       "data": template_fields.data(values)}
            queued = await outbox_store.enqueue(conn, "mp_subscribe", payload, key, not_before=at)
            if queued is not None:
                await store.use_grant(conn, item_id, mp_template)
            return queued is not None
        if self._s.worker_template_id and row["oa_openid"]:
            payload = {"touser": row["oa_openid"], "template_id": self._s.worker_template_id,
                       "url": f"{self._h5}/{page}", "client_msg_id": key.replace(":", "-"),
                       "data": template_fields.data(values, official_account=True)}
            return await outbox_store.enqueue(conn, "template", payload, key, not_before=at) \
                is not None
        return 0
