"""The sender's figures on a published notice: recipients, read and receipts by union, who is
behind, and 催办 (urging them, at most every ``urge_every_hours`` per recipient; the bound ones
get a WeChat message).

Mixed into :class:`~wxbackend.services.office.notices.service.OfficeNotices`, which provides
what is declared on the class here: its pool, settings and clock, who manages a notice, the
audit record and the template messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg

from wxbackend.config import CaseworkSettings
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import Clock
from wxbackend.services.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office.notices.rules import PERMISSION, STATUS_NAMES
from wxbackend.store.office import notices as store

RECIPIENT_STATES = {"unread", "unanswered", "answered", "all"}
NOT_FOUND = "通知不存在"


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class NoticeFigures:
    _pool: asyncpg.Pool
    _s: CaseworkSettings
    _now: Clock
    _manages: Callable[[Actor, asyncpg.Record], bool]
    _audited: Callable[..., Awaitable[None]]
    _queue: Callable[..., Awaitable[int]]

    async def _managed(self, conn: asyncpg.Connection, actor: Actor, notice_id: int, *,
                       lock: bool = False) -> asyncpg.Record:
        actor.require(PERMISSION)
        row = await store.get(conn, notice_id, lock=lock)
        if row is None or not self._manages(actor, row):
            raise NotFound(NOT_FOUND, code="notice_not_found")
        return row

    async def _under(self, conn: asyncpg.Connection, row: asyncpg.Record,
                     org_id: int | None) -> asyncpg.Record | dict:
        if org_id is None:
            return {"id": row["org_id"], "name": row["org_name"], "path": row["org_path"]}
        found = await store.orgs(conn, [org_id])
        path = row["org_path"]
        if not found or not (found[0]["path"] == path or found[0]["path"].startswith(path + ".")):
            raise NotFound("该工会不在通知的发送范围内", code="org_not_found")
        return found[0]

    async def stats(self, actor: Actor, notice_id: int, org_id: int | None = None) -> dict:
        """Recipients, read and receipts for each union directly below ``org_id`` (default: the
        issuing union), each with its whole subtree, and for that union's own cadres."""
        async with self._pool.acquire() as conn:
            row = await self._managed(conn, actor, notice_id)
            under = await self._under(conn, row, org_id)
            rows = await store.stats_by_branch(conn, notice_id, under["path"])
        receipt = row["receipt_form"] is not None
        unions = [{"org_id": r["org_id"], "org_name": r["org_name"], "own": r["branch"] == under["path"],
                   "recipients": r["recipients"], "read": r["read"], "unread": r["recipients"] - r["read"],
                   "answered": r["answered"] if receipt else None,
                   "unanswered": r["recipients"] - r["answered"] if receipt else None} for r in rows]
        keys = ("recipients", "read", "unread") + (("answered", "unanswered") if receipt else ())
        total = {"answered": None, "unanswered": None} | {k: sum(u[k] for u in unions) for k in keys}
        return {"notice_id": notice_id, "under": {"org_id": under["id"], "org_name": under["name"]},
                "has_receipt": receipt, "total": total, "unions": unions}

    async def recipients(self, actor: Actor, notice_id: int, *, org_id: int | None = None,
                         state: str = "unread", limit: int = 200, offset: int = 0) -> dict:
        """Who in a union's subtree has not read (``unread``), not answered (``unanswered``),
        answered (with the answers) — or everyone."""
        if state not in RECIPIENT_STATES:
            raise InvalidInput("state 应为 unread、unanswered、answered 或 all", code="invalid_filter")
        async with self._pool.acquire() as conn:
            row = await self._managed(conn, actor, notice_id)
            under = await self._under(conn, row, org_id)
            rows = await store.recipients(conn, notice_id, under["path"], state,
                                          max(1, min(limit, 500)), max(0, offset))
        return {"recipients": [{
            "cadre_id": r["cadre_id"], "name": r["display_name"], "department": r["department"],
            "org_name": r["org_name"], "bound": r["bound"], "delivered_at": iso(r["delivered_at"]),
            "read_at": iso(r["read_at"]), "receipt_at": iso(r["receipt_at"]),
            "receipt": r["receipt"], "urged_at": iso(r["urged_at"])} for r in rows]}

    async def urge(self, actor: Actor, notice_id: int, body: dict) -> dict:
        """催办 those of a union's subtree who have not read (or not answered): each recipient
        at most every ``urge_every_hours``; the bound ones get a WeChat message."""
        what = body.get("what", "unread")
        if what not in ("unread", "unanswered"):
            raise InvalidInput("催办对象应为 unread（未阅）或 unanswered（未回执）", code="invalid_urge")
        org_id = body.get("org_id")
        if org_id is not None and row_id(org_id) is None:
            raise InvalidInput("工会编号无效", code="invalid_urge")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._managed(conn, actor, notice_id, lock=True)
            if row["status"] != "published":
                raise Conflict(f"通知{STATUS_NAMES[row['status']]}，不能催办", code="not_published")
            if what == "unanswered":
                if row["receipt_form"] is None:
                    raise Conflict("该通知不需要回执", code="no_receipt")
                if now >= row["receipt_due_at"]:
                    raise Conflict("回执已截止，不能再催办回执", code="receipt_closed")
            under = await self._under(conn, row, org_id)
            hours = self._s.urge_every_hours
            result = await store.urge(conn, notice_id, under["path"], what, now,
                                      now - timedelta(hours=hours))
            if result["behind"] == 0:
                raise Conflict("该范围内的干部都已" + ("阅读" if what == "unread" else "回执"),
                               code="nothing_to_urge")
            if result["urged"] == 0:
                raise TooManyRequests(f"这些干部在 {hours:g} 小时内已催办过，请稍后再催",
                                      code="urged_recently")
            round_no = await store.next_urge(conn, notice_id)
            queued = await self._queue(
                conn, row, list(zip(result["cadre_ids"], result["openids"], strict=True)),
                "请尽快查阅通知" if what == "unread" else "请尽快填写回执",
                f"notice:{notice_id}:urge:{round_no}")
            figures = {"behind": result["behind"], "urged": result["urged"], "queued": queued}
            await self._audited(conn, actor, "notice.urge", notice_id,
                                {"under": under["id"], "what": what, **figures})
        return figures
