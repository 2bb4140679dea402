"""使用率: how much of each module's work a union does on the platform.

使用率 = items handled online ÷ (items handled online + items handled offline), per module, union
subtree and period. Online: items opened on the platform in the period (every module on the
engine, configured modules included). Offline: what the union entered in its ledger (台账) of
items handled off the platform, dated the day they were handled, plus any item registered on the
platform as handled offline. A ledger entry is never edited: a wrong one is voided with a reason.

The standard a period is judged by is the module's tier for the union's year on the platform
(year 1 from ``[office] usage_first_year``); the platform office sets the tiers per module, and
every change is kept, so a past period is judged by the standard then in force. Defaults follow
the usage arrangement (article 8): meetings 50/70/90 %, document circulation, notices and
information reports 70/80/90 %. Definitions in docs/casework.md, next to the completion rates.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, clean_text
from wxbackend.services.casework.rates import PLATFORM_FIRST_DAY, begun_period
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.membership.membership import row_id
from wxbackend.store.office import usage as store

RECORD = "ledger.record"
READERS = {RECORD, "kpi.read"}
# Modules whose items are not a union's business (a request to the leading group).
NOT_COUNTED = ["business_request"]
DEFAULT_TIERS: dict[str, tuple[float, ...]] = {
    "meeting": (0.5, 0.7, 0.9), "meeting_external": (0.5, 0.7, 0.9),
    "document_out": (0.7, 0.8, 0.9), "document_in": (0.7, 0.8, 0.9),
    "notice": (0.7, 0.8, 0.9), "info_report": (0.7, 0.8, 0.9),
}


def _rate(online: int, offline: int) -> float | None:
    return round(online / (online + offline), 4) if online + offline else None


def _err(message: str) -> InvalidInput:
    return InvalidInput(message, code="ledger_invalid")


class UsageRates:
    def __init__(self, pool: asyncpg.Pool, engine: Engine, *, first_year: int, audit: AuditTrail,
                 now: Clock = china_now) -> None:
        self._pool = pool
        self._engine = engine
        self._first_year = first_year
        self._audit = audit
        self._now = now

    def _module(self, code: object) -> str:
        module = self._engine.modules.get(code) if isinstance(code, str) else None
        if module is None or code in NOT_COUNTED:
            names = "、".join(f"{m.code}（{m.name}）" for m in self._engine.modules.values()
                             if m.code not in NOT_COUNTED)
            raise _err(f"未知的业务模块；可选：{names}")
        return code

    def _reader(self, actor: Actor) -> None:
        if not READERS & actor.permissions:
            actor.require(RECORD)

    # --- the ledger ---------------------------------------------------------------------------------
    async def record(self, actor: Actor, body: dict) -> dict:
        """An entry of items handled offline, for the actor's union or one below it."""
        actor.require(RECORD)
        if not isinstance(body, dict):
            raise _err("请求格式有误")
        module = self._module(body.get("module"))
        try:
            handled_on = date.fromisoformat(str(body.get("handled_on")))
        except ValueError:
            raise _err("请填写办理日期（如 2026-03-02）") from None
        today = self._now().astimezone(CHINA).date()
        if not PLATFORM_FIRST_DAY <= handled_on <= today:
            raise _err(f"办理日期应在 {PLATFORM_FIRST_DAY} 至今天之间")
        items = body.get("items", 1)
        if not isinstance(items, int) or isinstance(items, bool) or not 1 <= items <= 100_000:
            raise _err("件数应为 1 至 100000 的整数")
        title = clean_text(body.get("title"), "事项名称", low=1, high=200, code="ledger_invalid")
        note = clean_text(body.get("note"), "备注", low=0, high=500, code="ledger_invalid", required=False)
        org_id = row_id(body.get("org_id")) if body.get("org_id") is not None else actor.org_id
        if org_id is None:
            raise _err("工会 id 有误")
        async with self._pool.acquire() as conn, conn.transaction():
            unit = await store.units_by_id(conn, org_id)
            if unit is None or not actor.covers(unit["path"]):
                raise NotFound("工会不存在或不在本单位管辖范围内", code="org_not_found")
            entry_id = await store.insert_entry(conn, org_id=org_id, module=module, handled_on=handled_on,
                                                items=items, title=title, note=note,
                                                recorded_by=actor.id, now=self._now())
            row = await store.entry(conn, entry_id)
            await self._audit.acted(conn, actor, "ledger.record", f"ledger:{entry_id}",
                                    {"module": module, "items": items, "org_id": org_id})
        return _entry_view(row)

    async def void(self, actor: Actor, entry_id: int, body: dict) -> dict:
        actor.require(RECORD)
        reason = clean_text(body.get("reason") if isinstance(body, dict) else None, "作废原因",
                            low=2, high=200, code="ledger_invalid")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.entry(conn, entry_id)
            if row is None or not actor.covers(row["org_path"]):
                raise NotFound("台账记录不存在", code="ledger_not_found")
            if not await store.void_entry(conn, entry_id, actor.id, reason, self._now()):
                raise Conflict("该记录已作废", code="ledger_voided")
            await self._audit.acted(conn, actor, "ledger.void", f"ledger:{entry_id}", {"reason": reason})
            row = await store.entry(conn, entry_id)
        return _entry_view(row)

    async def entries(self, actor: Actor, *, period: str, module: str | None = None) -> dict:
        self._reader(actor)
        start, end = self._period(period)
        if module is not None:
            self._module(module)
        async with self._pool.acquire() as conn:
            rows = await store.entries(conn, actor.org_path, start.date(), end.date(), module)
        return {"entries": [_entry_view(r) for r in rows]}

    def _period(self, period: str) -> tuple[datetime, datetime]:
        return begun_period(period, self._now())

    # --- the rates ----------------------------------------------------------------------------------
    async def rates(self, actor: Actor, *, period: str, org_id: int | None = None) -> dict:
        """Each module's usage rate for a union's subtree (the actor's, or one below it) and for
        each union directly below, against the module's standard for the year."""
        self._reader(actor)
        start, end = self._period(period)
        async with self._pool.acquire() as conn:
            path = actor.org_path
            if org_id is not None:
                found = await store.units_by_id(conn, org_id)
                if found is None or not actor.covers(found["path"]):
                    raise NotFound("工会不存在", code="org_not_found")
                path = found["path"]
            counts = await self.counts(conn, path, start, end)
            units = await store.children(conn, path)
            own = await store.units(conn, [path])
            standards = await self.tiers(conn, end)
        year_index = start.year - self._first_year + 1
        modules = sorted(set(counts) | set(DEFAULT_TIERS) | set(standards))
        out = []
        for code in modules:
            tiers = standards.get(code, DEFAULT_TIERS.get(code))
            standard = tiers[min(year_index, len(tiers)) - 1] if tiers and year_index >= 1 else None
            by_unit = counts.get(code, {})
            total = [sum(v[0] for v in by_unit.values()), sum(v[1] for v in by_unit.values())]

            def figures(pair: list[int], standard: float | None = standard) -> dict:
                rate = _rate(*pair)
                return {"online": pair[0], "offline": pair[1], "usage_rate": rate,
                        "meets": None if rate is None or standard is None else rate >= standard}

            out.append({"module": code, "name": self._name(code), "standard": standard,
                        **figures(total),
                        "units": [{"org_id": u["id"], "org_name": u["name"],
                                   **figures(by_unit.get(u["path"], [0, 0]))} for u in units]})
        return {"period": period, "org_id": own[0]["id"] if own else None,
                "org_name": own[0]["name"] if own else None, "year_on_platform": year_index,
                "modules": out}

    @staticmethod
    async def counts(conn: asyncpg.Connection, path: str, start: datetime,
                     end: datetime) -> dict[str, dict[str, list[int]]]:
        """module → the union at ``path`` or the one directly below it an item falls under (its
        path) → [online, offline] items in the period."""
        online = await store.online_counts(conn, path, start, end, NOT_COUNTED)
        offline = await store.offline_counts(conn, path, start.date(), end.date())
        counts: dict[str, dict[str, list[int]]] = {}
        for rows, slot in ((online, 0), (offline, 1)):
            for r in rows:
                counts.setdefault(r["module"], {}).setdefault(r["unit"], [0, 0])[slot] += r["items"]
        return counts

    @staticmethod
    async def tiers(conn: asyncpg.Connection, at: datetime) -> dict[str, tuple[float, ...]]:
        """Each module's yearly tiers in force at ``at`` (the arrangement's defaults where the
        platform office set none)."""
        set_by_office = {r["module"]: tuple(float(t) for t in r["tiers"])
                         for r in await store.standards(conn, at)}
        return {**DEFAULT_TIERS, **set_by_office}

    # --- standards ----------------------------------------------------------------------------------
    def _office(self, actor: Actor) -> None:
        actor.require("org.manage")
        if "." in actor.org_path:
            raise Forbidden("使用率标准由平台办公室（省总工会）设定", code="platform_office_only")

    async def standards(self, actor: Actor) -> dict:
        self._reader(actor)
        async with self._pool.acquire() as conn:
            rows = {r["module"]: r for r in await store.standards(conn)}
        codes = sorted(set(DEFAULT_TIERS) | set(rows))
        return {"first_year": self._first_year, "standards": [
            {"module": code, "name": self._name(code),
             "tiers": [float(t) for t in rows[code]["tiers"]] if code in rows else list(DEFAULT_TIERS[code]),
             "set_at": rows[code]["set_at"].isoformat() if code in rows else None}
            for code in codes]}

    def _name(self, code: str) -> str:
        module = self._engine.modules.get(code)
        return module.name if module else code

    async def set_standard(self, actor: Actor, body: dict) -> dict:
        self._office(actor)
        if not isinstance(body, dict):
            raise _err("请求格式有误")
        module = self._module(body.get("module"))
        tiers = body.get("tiers")
        if not isinstance(tiers, list) or not 1 <= len(tiers) <= 10 or not all(
                isinstance(t, int | float) and not isinstance(t, bool) and 0 < t <= 1 for t in tiers):
            raise _err("各年度标准应为 1 至 10 个 0 到 1 之间的比例（如 [0.5, 0.7, 0.9]）")
        if any(b < a for a, b in itertools.pairwise(tiers)):
            raise _err("后一年度的标准不应低于前一年度")
        async with self._pool.acquire() as conn, conn.transaction():
            await store.insert_standard(conn, module, [round(float(t), 3) for t in tiers], actor.id,
                                        self._now())
            await self._audit.acted(conn, actor, "usage.standard", f"module:{module}", {"tiers": tiers})
            history = await store.standard_history(conn, module)
        return {"module": module, "history": [
            {"tiers": [float(t) for t in h["tiers"]], "set_at": h["set_at"].isoformat(),
             "set_by": h["set_by_name"]} for h in history]}


def _entry_view(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "org_id": row["org_id"], "org_name": row["org_name"],
            "module": row["module"], "handled_on": row["handled_on"].isoformat(), "items": row["items"],
            "title": row["title"], "note": row["note"], "recorded_by": row["recorded_by_name"],
            "recorded_at": row["recorded_at"].isoformat(),
            "voided_at": row["voided_at"].isoformat() if row["voided_at"] else None,
            "void_reason": row["void_reason"]}
