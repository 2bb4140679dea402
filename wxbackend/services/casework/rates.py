"""The completion rates (办结率, 按时办结率, 满意率, 回访率), computed from the events alone for
any past period, for a union's subtree and each union below it. Definitions: docs/casework.md.

办结率 = items closed ÷ items that fell due in the period (their latest time limit, extensions
included, falls in it) plus items closed in the period before a limit that falls later (closed
early). 按时办结率 counts, on the same denominator, the items closed by their limit. 满意率 =
(满意 + 基本满意) ÷ ratings given in the period; 回访率 = call-backs ÷ closings in the period.
``as_of`` fixes what was known: a report for March run in May with ``as_of`` reads only events
up to that moment, so it can be reproduced exactly. Without it the figures are as things stand
now, read from each item's latest facts (``work_item_facts``, kept by a trigger as events are
appended) rather than from the events; a property test holds the two to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime

import asyncpg

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.modules import Module
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Forbidden, InvalidInput
from wxbackend.store.casework import events as store
from wxbackend.store.casework import items as item_store

_PERIOD = re.compile(r"^(\d{4})(?:-(?:(\d{2})|Q([1-4])))?$")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """'2027-03' (a month), '2027-Q1' (a quarter) or '2027' (a year), in China time."""
    match = _PERIOD.match(period or "")
    if not match or not 2000 <= int(match.group(1)) <= 2100:
        raise InvalidInput("期间应写作 2027-03、2027-Q1 或 2027", code="invalid_period")
    year = int(match.group(1))
    if match.group(2):
        month = int(match.group(2))
        if not 1 <= month <= 12:
            raise InvalidInput("月份应为 01 至 12", code="invalid_period")
        first, months = month, 1
    elif match.group(3):
        first, months = (int(match.group(3)) - 1) * 3 + 1, 3
    else:
        first, months = 1, 12
    start = date(year, first, 1)
    end_month = first + months
    end = date(year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)
    return (datetime.combine(start, datetime.min.time(), CHINA),
            datetime.combine(end, datetime.min.time(), CHINA))


PLATFORM_FIRST_DAY = date(2020, 1, 1)   # the usage arrangement's first year: nothing is counted before


def begun_period(period: str, now: datetime) -> tuple[datetime, datetime]:
    """:func:`period_bounds` of a period that has begun and is not before the platform's first
    day: the usage figures' periods."""
    start, end = period_bounds(period)
    if start.date() < PLATFORM_FIRST_DAY:
        raise InvalidInput(f"期间不能早于平台启用（{PLATFORM_FIRST_DAY.year} 年）", code="invalid_period")
    if start > now:
        raise InvalidInput("期间尚未开始", code="invalid_period")
    return start, end


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class CompletionRates:
    def __init__(self, pool: asyncpg.Pool, modules: Mapping[str, Module], *,
                 now: Clock = china_now) -> None:
        self._pool = pool
        self._modules = modules   # the engine's: configured modules appear as they go live
        self._now = now

    async def rates(self, actor: Actor, period: str, *, module: str | None = None,
                    as_of: datetime | None = None, by_union: bool = True) -> dict:
        if "kpi.read" not in actor.permissions and not any(
                m.permission in actor.permissions for m in self._modules.values()):
            raise Forbidden("您没有查看办结率的权限", code="permission_missing")
        if module is not None and module not in self._modules:
            raise InvalidInput("未知的业务模块", code="invalid_filter")
        start, end = period_bounds(period)
        return await self.compute(actor.org_path, start, end, as_of, module=module,
                                  by_union=by_union) | {"period": period}

    async def compute(self, subtree: str, start: datetime, end: datetime, as_of: datetime | None, *,
                      module: str | None = None, by_union: bool = True) -> dict:
        """``as_of`` None: as things stand now; a moment: exactly as they stood then."""
        depth = subtree.count(".") + 1 if by_union else None
        async with self._pool.acquire() as conn:
            # One pass, grouped by the union below the subtree's root; the total is their sum
            # (items of the root union itself come in the group without a union).
            child_counted, child_ratings = await store.rates(conn, start, end, as_of, subtree, module,
                                                             depth)
            ids = {int(r["grp"].rsplit(".", 1)[-1]) for r in [*child_counted, *child_ratings] if r["grp"]}
            names = await item_store.org_names(conn, list(ids)) if ids else {}
        total = self._combine(child_counted, child_ratings)
        unions: dict[str, dict] = {}
        for row in child_counted:
            if row["grp"]:
                unions.setdefault(row["grp"], {"counted": [], "ratings": []})["counted"].append(row)
        for row in child_ratings:
            if row["grp"]:
                unions.setdefault(row["grp"], {"counted": [], "ratings": []})["ratings"].append(row)
        return {"from": start.isoformat(), "to": end.isoformat(),
                "as_of": (as_of or self._now()).isoformat(),
                "total": total,
                "unions": sorted(
                    ({"org_id": int(grp.rsplit(".", 1)[-1]),
                      "org_name": names.get(int(grp.rsplit(".", 1)[-1]), ""),
                      **self._combine(v["counted"], v["ratings"])} for grp, v in unions.items()),
                    key=lambda u: (u["all"]["completion_rate"] is None,
                                   -(u["all"]["completion_rate"] or 0), u["org_id"]))}

    def _combine(self, counted: list, ratings: list) -> dict:
        by_module: dict[str, dict] = {}
        for row in counted:
            m = by_module.setdefault(row["module"], self._empty())
            m["due"] += row["counted"]
            m["closed"] += row["closed"]
            m["on_time"] += row["on_time"]
        for row in ratings:
            m = by_module.setdefault(row["module"], self._empty())
            m["rated"] += row["rated"]
            m["satisfied"] += row["satisfied"]
            m["revisited"] += row["revisited"]
            m["closings"] += row["closings"]
        overall = self._empty()
        for m in by_module.values():
            for key in overall:
                overall[key] += m[key]
        return {"all": self._finish(overall),
                "modules": {code: self._finish(m) | {"name": self._name(code)}
                            for code, m in sorted(by_module.items())}}

    def _name(self, code: str) -> str:
        module = self._modules.get(code)
        return module.name if module else code

    @staticmethod
    def _empty() -> dict:
        return {"due": 0, "closed": 0, "on_time": 0, "rated": 0, "satisfied": 0, "revisited": 0,
                "closings": 0}

    @staticmethod
    def _finish(m: dict) -> dict:
        return {**m, "completion_rate": _rate(m["closed"], m["due"]),
                "on_time_rate": _rate(m["on_time"], m["due"]),
                "satisfaction_rate": _rate(m["satisfied"], m["rated"]),
                "revisit_rate": _rate(m["revisited"], m["closings"])}
