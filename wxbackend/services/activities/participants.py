"""Who signed up, won, used or attended an item: the organiser's list, masked, and its workbook.

The list and the ordinary workbook show names and phones masked (张**, 138****1234), enough to
call a winner to the desk. Full names and phones need ``member.export`` and a stated purpose,
like the roster export; every workbook is watermarked with who, when and why, and audited.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime

import asyncpg

from wxbackend.infra.pii import PersonalData, mask_phone
from wxbackend.infra.xlsx import Watermark, watermarked_xlsx
from wxbackend.services.activities.catalogue import Catalogue
from wxbackend.services.activities.signups import STATUS_NAMES
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import InvalidInput
from wxbackend.services.identity.accounts import PHONE_COLUMN
from wxbackend.services.membership.idnumbers import mask_name
from wxbackend.services.membership.roster_rows import CONTROL
from wxbackend.store.activities import claims as store

PAGE = 100
EXPORT_MAX_ROWS = 100_000
_SPACES = re.compile(r"\s+")
HEADER = ["报名号", "姓名", "手机号", "会员编号", "所在工会", "状态", "报名时间", "保留至",
          "使用/签到时间", "核销/签到人"]


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


class Participants:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, catalogue: Catalogue, *,
                 audit: AuditTrail, now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._pii = pii
        self._catalogue = catalogue
        self._audit = audit
        self._now = now

    def _row(self, r: asyncpg.Record, full: bool) -> dict:
        phone = self._pii.decrypt(r["phone_enc"], PHONE_COLUMN) if r["phone_enc"] else None
        name = r["name"] or r["nickname"]
        return {"id": r["id"], "name": name if full else mask_name(name),
                "phone": phone if full else mask_phone(phone), "member_no": r["member_no"],
                "union_name": r["union_name"], "status": r["status"],
                "status_name": STATUS_NAMES[r["status"]], "created_at": r["created_at"].isoformat(),
                "hold_until": r["hold_until"].isoformat() if r["hold_until"] else None,
                "used_at": r["used_at"].isoformat() if r["used_at"] else None, "used_by": r["used_by"]}

    async def _status(self, status: str | None) -> str | None:
        if status and status not in STATUS_NAMES:
            raise InvalidInput("状态有误", code="invalid_status")
        return status or None

    async def list(self, actor: Actor, offering_id: int, *, status: str | None,
                   before_id: int | None) -> list[dict]:
        await self._catalogue.manage_get(actor, offering_id)  # subtree and permission
        async with self._pool.acquire() as conn:
            rows = await store.participants(conn, offering_id, status=await self._status(status),
                                            before_id=before_id, limit=PAGE)
        return [self._row(r, full=False) for r in rows]

    async def workbook(self, actor: Actor, offering_id: int, *, status: str | None,
                       purpose: str | None) -> tuple[bytes, str]:
        """The list as a watermarked XLSX, masked unless a purpose is given (then it needs
        ``member.export``); audited either way."""
        item = await self._catalogue.manage_get(actor, offering_id)
        purpose = _SPACES.sub(" ", CONTROL.sub("", purpose or "")).strip()
        full = bool(purpose)
        if full:
            actor.require("member.export")
            if len(purpose) < 4:
                raise InvalidInput("请填写导出用途（至少 4 个字）", code="purpose_missing")
            if len(purpose) > 200:
                raise InvalidInput("导出用途不能超过 200 个字", code="purpose_too_long")
        status = await self._status(status)
        async with self._pool.acquire() as conn:
            rows = await store.participants(conn, offering_id, status=status, before_id=None,
                                            limit=EXPORT_MAX_ROWS + 1)
        if len(rows) > EXPORT_MAX_ROWS:
            raise InvalidInput(f"名单超过 {EXPORT_MAX_ROWS} 条，请按状态分别导出", code="export_too_large")
        now = self._now()
        watermark = Watermark(exporter=actor.username, stamp=now.strftime("%Y-%m-%d %H:%M:%S"),
                              purpose=purpose or "名单（已脱敏）")
        # Opening tens of thousands of phones and compressing the workbook: off the event loop.
        data = await asyncio.get_running_loop().run_in_executor(
            None, self._workbook, item["title"], rows, full, watermark)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=item["org_id"],
                                     action=f"{item['kind']}.export", target=f"offering:{offering_id}",
                                     detail={"full": full, "purpose": purpose, "rows": len(rows),
                                             "status": status}, ip=actor.ip)
        return data, f"{'名单' if not full else '名单-完整'}-{offering_id}-{now:%Y%m%d%H%M%S}.xlsx"


    def _workbook(self, title: str, rows: list[asyncpg.Record], full: bool,
                  watermark: Watermark) -> bytes:
        people = [self._row(r, full) for r in rows]
        return _workbook(title, people, watermark)


def _workbook(title: str, people: list[dict], watermark: Watermark) -> bytes:
    return watermarked_xlsx(
        title=f"川工之家 {title} 名单", sheet="名单", header=HEADER,
        rows=([p["id"], p["name"], p["phone"], p["member_no"], p["union_name"], p["status_name"],
               p["created_at"][:19].replace("T", " "), (p["hold_until"] or "")[:19].replace("T", " "),
               (p["used_at"] or "")[:19].replace("T", " "), p["used_by"]] for p in people),
        watermark=watermark)
