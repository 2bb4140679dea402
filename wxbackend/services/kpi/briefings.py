"""Briefings (情况通报): a union's usage report for a period, issued once and kept as it was.

The worker issues the province's briefing for the month before on the 1st of each month (it
checks every hour; a worker that was down still issues it up to the 3rd, never later); a cadre
holding ``kpi.read`` may issue one for their own union and any period on demand. Each holds the
report as it stood (a later correction of the data does not alter it: the table refuses edits),
the changes since the union's previous monthly briefing, and a workbook with native Excel
charts. A monthly briefing is announced through WeChat to the cadres holding ``kpi.read`` of the
union and the unions directly below it. The printable page (``/static/admin/kpi/briefing.html``)
draws the same snapshot.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.reminders import Reminders
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.services.kpi import briefing_xlsx
from wxbackend.services.kpi.reports import READ, KpiReports, Scope
from wxbackend.store.kpi import briefings as store
from wxbackend.store.kpi import reports as report_store

KINDS = {"monthly": "月度通报", "on_demand": "专项通报"}
CATCH_UP_DAYS = 3      # a worker down on the 1st still issues the month's briefing by the 3rd


def last_month(today: date) -> str:
    first = today.replace(day=1) - timedelta(days=1)
    return f"{first.year}-{first.month:02d}"


def changes(report: dict, previous: dict | None) -> dict:
    """What moved since the previous briefing: each indicator's change for the union, and per
    union below, the figures that changed and the standards newly met or missed."""
    if previous is None:
        return {"previous": None, "indicators": {}, "units": []}
    before = {i["code"]: i for i in previous["indicators"]}
    out: dict = {"previous": previous["period"], "indicators": {}, "units": []}
    lines: dict[int, dict] = {}
    for ind in report["indicators"]:
        old = before.get(ind["code"])
        if old is None:
            continue
        if ind["value"] is not None and old["value"] is not None:
            out["indicators"][ind["code"]] = round(ind["value"] - old["value"], 4)
        old_units = {u["org_id"]: u for u in old["units"]}
        for unit in ind["units"]:
            was = old_units.get(unit["org_id"])
            if was is None:
                continue
            notes = []
            if unit["meets"] is False and was["meets"] is True:
                notes.append(f"{ind['name']}由达标变为未达标")
            elif unit["meets"] is True and was["meets"] is False:
                notes.append(f"{ind['name']}已达标")
            if notes:
                entry = lines.setdefault(unit["org_id"], {"org_id": unit["org_id"],
                                                          "org_name": unit["org_name"], "notes": []})
                entry["notes"].extend(notes)
    out["units"] = [{**entry, "text": "；".join(entry["notes"])} for entry in lines.values()]
    return out


class Briefings:
    def __init__(self, pool: asyncpg.Pool, reports: KpiReports, reminders: Reminders, *,
                 audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._reports = reports
        self._reminders = reminders
        self._audit = audit
        self._now = now

    async def _issue(self, union: dict, period: str, kind: str, actor: Actor | None) -> int | None:
        # The report and the workbook are made before any transaction: reading and drawing
        # hold no lock.
        report = await self._reports.report(Scope(org_id=union["id"], org_path=union["path"]), period)
        async with self._pool.acquire() as conn:
            previous = await store.latest_monthly(conn, union["id"])
        if previous is not None and previous["period"] >= period and kind == "monthly":
            previous = None
        moved = changes(report, previous["report"] if previous else None)
        title = f"{union['name']}网上工作平台使用情况{KINDS[kind]}（{period}）"
        xlsx = await asyncio.get_running_loop().run_in_executor(
            None, lambda: briefing_xlsx.build(report, moved, title=title))
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            briefing_id = await store.insert(
                conn, org_id=union["id"], period=period, kind=kind, now=now,
                issued_by=actor.id if actor else None, report=report, changes=moved,
                previous_id=previous["id"] if previous else None, xlsx=xlsx)
            if briefing_id is None:
                return None
            if actor is not None:
                await self._audit.acted(conn, actor, "kpi.briefing", f"briefing:{briefing_id}",
                                        {"period": period, "kind": kind})
            if kind == "monthly":
                await self._reminders.announce(
                    conn, await store.readers(conn, union["id"]), thing=f"{period}使用情况通报",
                    source=union["name"], when=now, ask="请查阅本月通报", view="kpi",
                    key=f"briefing:{briefing_id}")
        return briefing_id

    async def monthly(self) -> int | None:
        """The worker's job: the province's briefing for last month, once."""
        today = self._now().astimezone(CHINA).date()
        if today.day > CATCH_UP_DAYS:
            # A server that starts mid-month does not issue last month's briefing late.
            return None
        period = last_month(today)
        async with self._pool.acquire() as conn:
            root = dict(await store.root_union(conn))
            if await store.monthly_exists(conn, root["id"], period):
                return None
        return await self._issue(root, period, "monthly", None)

    async def issue(self, actor: Actor, body: dict) -> dict:
        """On demand: the actor's union, a period they choose."""
        actor.require(READ)
        period = body.get("period") if isinstance(body, dict) else None
        if not isinstance(period, str):
            raise InvalidInput("请选择通报的期间（如 2026-03、2026-Q1、2026）", code="invalid_period")
        async with self._pool.acquire() as conn:
            row = await report_store.union(conn, actor.org_id)
        union = {"id": row["id"], "path": row["path"], "name": row["name"]}
        briefing_id = await self._issue(union, period, "on_demand", actor)
        return await self.briefing(actor, briefing_id)

    def _visible(self, actor: Actor, row: asyncpg.Record) -> bool:
        path = row["org_path"]
        return actor.covers(path) or actor.org_path.startswith(path + ".")

    async def briefings(self, actor: Actor) -> dict:
        actor.require(READ)
        async with self._pool.acquire() as conn:
            rows = await store.visible_to(conn, actor.org_path)
        return {"briefings": [_summary(r) for r in rows]}

    async def _row(self, actor: Actor, briefing_id: int) -> asyncpg.Record:
        actor.require(READ)
        async with self._pool.acquire() as conn:
            row = await store.briefing(conn, briefing_id)
        if row is None or not self._visible(actor, row):
            raise NotFound("通报不存在", code="briefing_not_found")
        return row

    async def briefing(self, actor: Actor, briefing_id: int) -> dict:
        row = await self._row(actor, briefing_id)
        return {**_summary(row), "report": row["report"], "changes": row["changes"]}

    async def workbook(self, actor: Actor, briefing_id: int) -> tuple[bytes, str]:
        row = await self._row(actor, briefing_id)
        async with self._pool.acquire() as conn:
            data = await store.xlsx(conn, briefing_id)
        return data, f"{row['org_name']}使用情况通报-{row['period']}.xlsx"


def _summary(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "org_id": row["org_id"], "org_name": row["org_name"], "period": row["period"],
            "kind": row["kind"], "kind_name": KINDS[row["kind"]], "issued_at": row["issued_at"].isoformat(),
            "issued_by": row["issued_by_name"], "previous_id": row["previous_id"]}
