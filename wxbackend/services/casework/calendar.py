"""Working days, as the State Council's holiday notice sets them, and deadlines counted in them.

Petition rules count calendar days (日); proposal and hotline rules mostly count working days
(工作日), which a Saturday worked in lieu (调休) or a weekday holiday changes. Known years come
from the ``chinesecalendar`` package at ``wxbackend seed`` (its 1.11.0 release ends with 2026) and
from the platform office's import of each new notice (published every November). A deadline that
runs into a year not yet known is counted with weekends only and marked provisional (暂定) — never
silently final — and :meth:`WorkdayCalendar.missing_years` tells the office what to import.

:func:`add_days` is a pure function of a :class:`Calendar`; the service keeps one per process,
read again after an import.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Forbidden, InvalidInput
from wxbackend.store.casework import calendar as store

PERMISSION = "org.manage"
# Another process's import reaches this one's cached calendar within this many seconds.
RELOAD_SECONDS = 60.0
MAX_HOLIDAY_NAME = 40
# The package's holiday names, as the notice writes them.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节", "Dragon Boat Festival": "端午节", "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节", "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}


@dataclass(frozen=True)
class Calendar:
    years: frozenset[int]
    exceptions: dict[date, bool] = field(default_factory=dict)  # day -> is a working day

    def is_workday(self, day: date) -> bool:
        """Monday to Friday unless the notice says otherwise (in a known year)."""
        if day in self.exceptions:
            return self.exceptions[day]
        return day.weekday() < 5

    def known(self, day: date) -> bool:
        return day.year in self.years


@dataclass(frozen=True)
class Deadline:
    day: date
    provisional: bool   # counted through a year the calendar does not know yet (暂定)


def add_days(calendar: Calendar, start: date, count: int, unit: str) -> Deadline:
    """The day ``count`` days after ``start``: ``calendar`` days (日), or ``working`` days
    (工作日: the first working day after ``start`` is day 1)."""
    if count < 0:
        raise ValueError("count must not be negative")
    if unit == "calendar":
        return Deadline(start + timedelta(days=count), False)
    if unit != "working":
        raise ValueError(f"unknown unit {unit!r}")
    day, left, provisional = start, count, not calendar.known(start)
    while left:
        day += timedelta(days=1)
        provisional = provisional or not calendar.known(day)
        if calendar.is_workday(day):
            left -= 1
    return Deadline(day, provisional)


def package_years() -> dict[int, list[tuple[date, bool, str]]]:
    """Every year the ``chinesecalendar`` package knows, as our exceptions."""
    import chinese_calendar

    years: dict[int, list[tuple[date, bool, str]]] = {}
    for day, name in chinese_calendar.holidays.items():
        years.setdefault(day.year, [])
        if day.weekday() < 5:
            years[day.year].append((day, False, HOLIDAY_NAMES.get(name, name)))
    for day, name in chinese_calendar.workdays.items():
        if day.weekday() >= 5:
            years.setdefault(day.year, []).append((day, True, f"{HOLIDAY_NAMES.get(name, name)}调休"))
    return {year: sorted(days) for year, days in years.items()}


def package_source() -> str:
    from importlib.metadata import version

    return f"chinesecalendar {version('chinesecalendar')}"


def _day(value: object, where: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{where}：日期应为 2027-01-01 格式", code="invalid_calendar") from None


def clean_import(year: object, body: dict) -> list[tuple[date, bool, str]]:
    """A year of the notice: ``holidays`` as ranges ``{"from", "to", "name"}`` (weekends inside
    them may be included), ``workdays`` as the weekend days worked in lieu."""
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise InvalidInput("年份无效", code="invalid_calendar")
    if not isinstance(body, dict) or set(body) - {"holidays", "workdays"}:
        raise InvalidInput("应提供 holidays（放假安排）和 workdays（调休上班日）", code="invalid_calendar")
    holidays, workdays = body.get("holidays"), body.get("workdays", [])
    if not isinstance(holidays, list) or not holidays or not isinstance(workdays, list):
        raise InvalidInput("放假安排不能为空", code="invalid_calendar")
    taken: dict[date, str] = {}
    days: list[tuple[date, bool, str]] = []
    for n, item in enumerate(holidays, 1):
        if not isinstance(item, dict):
            raise InvalidInput(f"第 {n} 项放假安排格式有误", code="invalid_calendar")
        first, last = _day(item.get("from"), f"第 {n} 项"), _day(item.get("to"), f"第 {n} 项")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_HOLIDAY_NAME:
            raise InvalidInput(f"第 {n} 项放假安排须有名称", code="invalid_calendar")
        if last < first or first.year != year or (last.year != year and not (
                last.year == year + 1 and last.month == 1)):
            raise InvalidInput(f"第 {n} 项（{name}）的日期不在 {year} 年或起止颠倒", code="invalid_calendar")
        day = first
        while day <= last:
            if day in taken:
                raise InvalidInput(f"{day.isoformat()} 同时出现在“{taken[day]}”和“{name}”中",
                                   code="calendar_overlap")
            taken[day] = name
            if day.weekday() < 5:
                days.append((day, False, name.strip()))
            day += timedelta(days=1)
    for value in workdays:
        day = _day(value, "调休上班日")
        if day.year != year or day.weekday() < 5:
            raise InvalidInput(f"{day.isoformat()} 不是 {year} 年的周末，不需要列为调休上班日",
                               code="invalid_calendar")
        if day in taken:
            raise InvalidInput(f"{day.isoformat()} 既在放假安排中又列为上班日", code="calendar_overlap")
        taken[day] = "调休"
        days.append((day, True, "调休上班"))
    return sorted(days)


class WorkdayCalendar:
    def __init__(self, pool: asyncpg.Pool, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._audit = audit
        self._now = now
        self._calendar: Calendar | None = None
        self._loaded = 0.0
        # called with the year after an import commits (provisional deadlines are recomputed)
        self.on_import: list[Callable[[int], Awaitable[object]]] = []

    async def calendar(self, conn: asyncpg.Connection | None = None) -> Calendar:
        """The calendar, read again after an import here or a minute after one elsewhere.
        ``conn``: a connection the caller holds (never a second one from the pool)."""
        if self._calendar is None or time.monotonic() - self._loaded > RELOAD_SECONDS:
            if conn is None:
                async with self._pool.acquire() as own:
                    years, days = await store.load(own)
            else:
                years, days = await store.load(conn)
            self._calendar = Calendar(frozenset(years), {r["day"]: r["workday"] for r in days})
            self._loaded = time.monotonic()
        return self._calendar

    async def deadline(self, start: date, count: int, unit: str) -> Deadline:
        return add_days(await self.calendar(), start, count, unit)

    async def missing_years(self, ahead_days: int = 400) -> list[int]:
        """Years a deadline set today could reach that the calendar does not know."""
        today = self._now().date()
        calendar = await self.calendar()
        return [y for y in range(today.year, (today + timedelta(days=ahead_days)).year + 1)
                if y not in calendar.years]

    async def year(self, actor: Actor, year: int) -> dict:
        if not 2000 <= year <= 2100:
            raise InvalidInput("年份应在 2000 至 2100 之间", code="invalid_calendar")
        async with self._pool.acquire() as conn:
            info = await store.year_info(conn, year)
            days = await store.days_of(conn, year)
        return {"year": year, "known": info is not None,
                "source": info["source"] if info else None,
                "imported_by": info["imported_by"] if info else None,
                "imported_at": info["imported_at"].isoformat() if info else None,
                "days": [{"day": d["day"].isoformat(), "workday": d["workday"], "name": d["name"]}
                         for d in days]}

    async def import_year(self, actor: Actor, year: int, body: dict) -> dict:
        """The platform office enters the State Council's notice for ``year``."""
        actor.require(PERMISSION)
        if "." in actor.org_path:
            raise Forbidden("工作日历由平台办公室（省总工会）维护", code="platform_office_only")
        days = clean_import(year, body)
        async with self._pool.acquire() as conn, conn.transaction():
            await store.replace_year(conn, year, days, source="import", imported_by=actor.id,
                                     now=self._now())
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=actor.org_id, action="calendar.import",
                                     target=f"calendar:{year}",
                                     detail={"days": len(days)}, ip=actor.ip)
        self._calendar = None
        for hook in self.on_import:
            await hook(year)
        return await self.year(actor, year)


async def seed_calendar(conn: asyncpg.Connection, now: datetime,
                        years: Iterable[int] | None = None) -> int:
    """The package's years that the database does not have yet (an imported year is kept)."""
    known = await store.years_known(conn)
    added = 0
    for year, days in package_years().items():
        if year in known or (years is not None and year not in years):
            continue
        await store.replace_year(conn, year, days, source=package_source(), imported_by=None, now=now)
        added += 1
    return added
