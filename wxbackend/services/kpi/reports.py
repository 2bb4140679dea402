"""Usage reports: each indicator of :mod:`wxbackend.services.kpi.indicators` for a union's
subtree and each union directly below it, over a month, quarter or year, against its standard,
with the unions below ranked and those below standard named. Every figure but the office
modules' usage comes from the daily counters (``kpi_daily``, ``kpi_monthly``); nothing scans the
sources.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.modules import Module
from wxbackend.services.casework.rates import begun_period
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.services.kpi.indicators import BY_CODE, INDICATORS, SHARE_TIERS, Indicator, counters_of
from wxbackend.services.kpi.rollups import FIRST_DAY, Rollups
from wxbackend.services.office.usage import UsageRates
from wxbackend.store.kpi import reports as store
from wxbackend.store.kpi import rollups as rollup_store
from wxbackend.store.kpi import targets as target_store
from wxbackend.store.kpi.rollups import COMPLETION

READ = "kpi.read"
CUMULATIVE = tuple(i for i in INDICATORS if i.cumulative)
YEARLY = tuple(i for i in INDICATORS if i.standard == "yearly" and not i.cumulative)
PERIOD = tuple(i for i in INDICATORS if i not in CUMULATIVE and i not in YEARLY)
TREND_MONTHS = 24


@dataclass(frozen=True)
class Scope:
    """Whose figures may be read: a union's subtree (a cadre's, or an entrance's owner's)."""
    org_id: int
    org_path: str


def _months(first: date, after: date) -> int:
    return (after.year - first.year) * 12 + after.month - first.month


class KpiReports:
    def __init__(self, pool: asyncpg.Pool, rollups: Rollups, modules: Mapping[str, Module], *,
                 first_year: int, now: Clock = china_now) -> None:
        self._pool = pool
        self._modules = modules     # the engine's: which modules are connected
        self._rollups = rollups
        self._first_year = first_year
        self._now = now

    def _period(self, period: str) -> tuple[datetime, datetime]:
        return begun_period(period, self._now())

    @staticmethod
    async def _union(conn: asyncpg.Connection, scope: Actor | Scope, org_id: int | None) -> asyncpg.Record:
        row = await store.union(conn, org_id if org_id is not None else scope.org_id)
        if row is None or not (row["path"] == scope.org_path or row["path"].startswith(scope.org_path + ".")):
            raise NotFound("工会不存在或不在本单位管辖范围内", code="org_not_found")
        return row

    async def entrance_scope(self, org_id: int) -> Scope:
        """An entrance of the shared platform API reads the subtree of the union that owns it."""
        async with self._pool.acquire() as conn:
            row = await store.union(conn, org_id)
        return Scope(org_id=row["id"], org_path=row["path"])

    # --- the report --------------------------------------------------------------------------------
    async def report(self, actor: Actor | Scope, period: str, *, org_id: int | None = None) -> dict:
        """``actor``: a cadre holding ``kpi.read``, or an entrance's :class:`Scope`."""
        if isinstance(actor, Actor):
            actor.require(READ)
        start, end = self._period(period)
        first, after = start.date(), end.date()
        # The period's figures stop at today: a month under way is counted so far.
        after = min(after, self._now().astimezone(CHINA).date() + timedelta(days=1))
        modules = sorted(self._modules)      # configured modules join the engine as they go live
        async with self._pool.acquire() as conn:
            union = await self._union(conn, actor, org_id)
            below = await store.children(conn, union["id"])
            ids = [union["id"], *(u["id"] for u in below)]
            # Each sum reads only the counters of the indicators counted over its span: the days
            # since 2020 are many, and only the cumulative indicators need them.
            year_start = date(first.year, 1, 1)
            in_period = await rollup_store.sums(conn, ids, counters_of(PERIOD), first, after)
            to_date = await rollup_store.sums(conn, ids, counters_of(CUMULATIVE), FIRST_DAY, after)
            this_year = await rollup_store.sums(conn, ids, counters_of(YEARLY), year_start, after)
            # The casework rule counts a month under way to its end: an item due later this
            # month and still open lowers the rate, as on the casework rates page.
            completion = await rollup_store.sums(
                conn, ids, [f"{k}:{m}" for k in COMPLETION for m in modules], first, end.date())
            targets = await store.cumulative_targets(conn, ids, first.year)
            first_years = await target_store.first_years(conn, ids)
            counted_at = await self._rollups.freshness(conn)
            usage = await UsageRates.counts(conn, union["path"], start, end)
            tiers = await UsageRates.tiers(conn, end)
        sums = {"period": _table(in_period), "to_date": _table(to_date), "year": _table(this_year),
                "completion": _table(completion)}
        path_of = {union["id"]: union["path"], **{u["id"]: u["path"] for u in below}}
        context = {"months": _months(first, end.date()),
                   "year_months": _months(year_start, after - timedelta(days=1)) + 1,
                   "year": first.year, "first_years": first_years, "first_year": self._first_year}
        indicators = []
        sources = {"sums": sums, "modules": modules, "usage": usage, "paths": path_of,
                   "own": union["id"], "targets": targets, "tiers": tiers}
        for indicator in INDICATORS:
            connected = all(m in self._modules for m in indicator.modules)

            def figure(org: int, indicator: Indicator = indicator, connected: bool = connected) -> dict:
                if not connected:
                    return {"value": None, "standard": None, "meets": None}
                return self._figure(indicator, org, sources, context)

            units = [{"org_id": u["id"], "org_name": u["name"], **figure(u["id"])} for u in below]
            ranked = sorted((u for u in units if u["value"] is not None), key=lambda u: -u["value"])
            for rank, u in enumerate(ranked, start=1):
                u["rank"] = rank
            for u in units:
                u.setdefault("rank", None)
            indicators.append({"code": indicator.code, "name": indicator.name, "unit": indicator.unit,
                               "connected": connected, **figure(union["id"]), "units": units})
        below_standard = {}
        for ind in indicators:
            for u in ind["units"]:
                if u["meets"] is False:
                    named = below_standard.setdefault(
                        u["org_id"], {"org_id": u["org_id"], "org_name": u["org_name"], "indicators": []})
                    named["indicators"].append(ind["name"])
        return {"period": period, "from": start.isoformat(), "to": end.isoformat(),
                "org_id": union["id"], "org_name": union["name"],
                "counted_at": counted_at.isoformat() if counted_at else None,
                "indicators": indicators, "below_standard": list(below_standard.values())}

    @staticmethod
    def _figure(indicator: Indicator, org: int, sources: dict, context: dict) -> dict:
        sums = sources["sums"]

        def total(counters: tuple[str, ...], scope: str) -> int:
            return sum(sums[scope].get((org, c), 0) for c in counters)

        scope = "to_date" if indicator.cumulative else (
            "year" if indicator.standard == "yearly" else "period")
        if indicator.source == "completion":
            value = _completion(sums["completion"], org, indicator.modules or sources["modules"])
        elif indicator.source == "usage":
            value = _usage(sources["usage"], sources["paths"][org], org == sources["own"],
                           indicator.modules)
        elif indicator.of:
            whole = total(indicator.of, scope)
            value = round(total(indicator.counters, scope) / whole, 4) if whole else None
        else:
            value = total(indicator.counters, scope)
        # Year 1 is the union's go-live year (the arrangement's, 2020, unless the office set one).
        year_index = context["year"] - context["first_years"].get(org, context["first_year"]) + 1
        standard = None
        if indicator.standard == "target":
            standard = sources["targets"].get(org)
        elif indicator.standard == "tiers" and year_index >= 1:
            standard = SHARE_TIERS[min(year_index, len(SHARE_TIERS)) - 1]
        elif indicator.standard == "minimum":
            standard = indicator.amount
        elif indicator.standard == "monthly":
            standard = indicator.amount * context["months"]
        elif indicator.standard == "yearly":
            standard = math.ceil(indicator.amount * context["year_months"] / 12)
        elif indicator.standard == "usage" and year_index >= 1:
            tiers = sources["tiers"].get(indicator.modules[0])
            standard = tiers[min(year_index, len(tiers)) - 1] if tiers else None
        meets = None if value is None or standard is None else value >= standard
        return {"value": value, "standard": standard, "meets": meets}

    # --- trends --------------------------------------------------------------------------------------
    async def trend(self, actor: Actor | Scope, code: str, *, months: int = 12,
                    org_id: int | None = None) -> dict:
        """An indicator month by month up to this month (counted indicators only)."""
        if isinstance(actor, Actor):
            actor.require(READ)
        indicator = BY_CODE.get(code) if isinstance(code, str) else None
        if indicator is None or indicator.source != "counters":
            counted = "、".join(i.code for i in INDICATORS if i.source == "counters")
            raise InvalidInput(f"趋势可查看的指标：{counted}", code="invalid_indicator")
        if not isinstance(months, int) or not 1 <= months <= TREND_MONTHS:
            raise InvalidInput(f"月数应为 1 至 {TREND_MONTHS}", code="invalid_period")
        today = self._now().astimezone(CHINA).date()
        first = date(today.year, today.month, 1)
        for _ in range(months - 1):
            first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
        first = max(first, FIRST_DAY)
        async with self._pool.acquire() as conn:
            union = await self._union(conn, actor, org_id)
            counters = sorted({*indicator.counters, *indicator.of})
            rows = await rollup_store.monthly(conn, union["id"], counters, first, today + timedelta(days=1))
            before = await rollup_store.sums(conn, [union["id"]], counters, FIRST_DAY, first) \
                if indicator.cumulative else []
        by_month: dict[date, dict[str, int]] = {}
        for r in rows:
            by_month.setdefault(r["month"], {})[r["counter"]] = r["value"]
        running = {r["counter"]: r["value"] for r in before}
        points = []
        month = first
        while month <= today:
            counts = by_month.get(month, {})
            if indicator.cumulative:
                for c in counters:
                    running[c] = running.get(c, 0) + counts.get(c, 0)
                counts = running
            part = sum(counts.get(c, 0) for c in indicator.counters)
            whole = sum(counts.get(c, 0) for c in indicator.of)
            value = (round(part / whole, 4) if whole else None) if indicator.of else part
            points.append({"month": month.strftime("%Y-%m"), "value": value})
            month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        return {"code": indicator.code, "name": indicator.name, "unit": indicator.unit,
                "org_id": union["id"], "org_name": union["name"], "points": points}


def _completion(counts: dict[tuple[int, str], int], org: int, modules: Sequence[str]) -> float | None:
    """办结率 of ``modules`` together: items closed ÷ items counted in the period."""
    due = sum(counts.get((org, f"due:{m}"), 0) for m in modules)
    closed = sum(counts.get((org, f"closed:{m}"), 0) for m in modules)
    return round(closed / due, 4) if due else None


def _usage(counts: dict, path: str, own: bool, modules: tuple[str, ...]) -> float | None:
    """使用率 of ``modules`` together for the union at ``path``: the whole subtree for the union
    reported on, its own share of the counts for a union below it."""
    online = offline = 0
    for module in modules:
        for unit, (on, off) in counts.get(module, {}).items():
            if own or unit == path:
                online, offline = online + on, offline + off
    return round(online / (online + offline), 4) if online + offline else None


def _table(rows: list[asyncpg.Record]) -> dict[tuple[int, str], int]:
    return {(r["org_id"], r["counter"]): r["value"] for r in rows}
