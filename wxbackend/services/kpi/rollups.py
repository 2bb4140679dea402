"""The daily counters behind every usage figure (``kpi_daily``): per union and China day, each
union's row the total of its subtree, recounted from the source tables rather than incremented,
so a recount is idempotent and a report never scans the millions of rows underneath.

Counters: ``registered`` (accounts by home union), ``certified`` (members certified),
``joined_platform`` / ``joined_roster`` (new members by how they joined, dated by joining),
``founded_platform`` / ``founded_other`` (grassroots unions created), ``articles`` (first
published in the union's channel), ``visits`` (channel page views), ``activities``,
``services`` (first published), ``cadres`` (accounts entered), ``opened:<module>`` (items
opened on the platform, by engine module) and the completion counts ``due:<module>``,
``closed:<module>``, ``on_time:<module>`` (items counted on the day, by the casework rule that
puts each item in one period: `docs/casework.md`).

The worker recounts today and yesterday every few minutes, plus the new members' counts of the
joining days a roster import touched since it last looked (members who joined years ago), plus
the completion counts of the days casework changes moved (an item closed today ahead of a limit
next month moves from that day to today; ``kpi_dirty_days``, marked by a trigger). ``wxbackend
kpi backfill`` recounts any range. Days are counted a week at a time, each week its own transaction.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import asyncpg

from wxbackend.services.casework.rates import PLATFORM_FIRST_DAY
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import InvalidInput
from wxbackend.store.kpi import rollups as store

CHUNK_DAYS = 7        # a week per transaction: seconds at the province's scale
FIRST_DAY = PLATFORM_FIRST_DAY     # nothing is counted before the usage arrangement's first year
MEMBERS = "members"


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(0), CHINA)


def ranges(days: list[date]) -> list[tuple[date, date]]:
    """``days`` as runs of consecutive days, each ``(first, last)``."""
    out: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if out and day == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


class Rollups:
    def __init__(self, pool: asyncpg.Pool, *, now: Clock = china_now) -> None:
        self._pool = pool
        self._now = now

    def today(self) -> date:
        return self._now().astimezone(CHINA).date()

    async def recount(self, first: date, last: date, *, part: str | None = None) -> int:
        """Count the days ``first`` … ``last`` again (rows written); ``part``: only that part's
        counters (``members``, ``completion``)."""
        if last < first:
            raise InvalidInput("结束日期不能早于开始日期", code="invalid_range")
        written = 0
        day = first
        while day <= last:
            after = min(day + timedelta(days=CHUNK_DAYS), last + timedelta(days=1))
            async with self._pool.acquire() as conn, conn.transaction():
                await store.lock(conn)
                written += await store.recount(conn, day, after, _moment(day), _moment(after), self._now(),
                                               part=part)
            day = after
        return written

    async def backfill(self, first: date | None = None, last: date | None = None) -> int:
        """Every day from ``first`` (the arrangement's first day) to ``last`` (today), then the
        completion counts of the days casework changes moved (limits after today among them)."""
        first, last = first or FIRST_DAY, last or self.today()
        if first < FIRST_DAY or last > self.today():
            raise InvalidInput(f"回填的日期应在 {FIRST_DAY} 至今天之间", code="invalid_range")
        return await self.recount(first, last) + await self.moved()

    async def refresh(self) -> int:
        """The worker's job: today and yesterday, the days back-dated members touched, and the
        completion counts of the days casework changes moved."""
        today = self.today()
        async with self._pool.acquire() as conn:
            touched, latest = await store.members_changed(conn, await store.watermark(conn, MEMBERS))
        written = await self.recount(today - timedelta(days=1), today)
        # A roster import's joining days span years: only the new members' counts are recounted.
        for first, last in ranges([d for d in touched if FIRST_DAY <= d < today - timedelta(days=1)]):
            written += await self.recount(first, last, part="members")
        async with self._pool.acquire() as conn:
            # No member yet: every member to come is new to the next look.
            await store.set_watermark(conn, MEMBERS, latest or _moment(FIRST_DAY))
        return written + await self.moved()

    async def moved(self) -> int:
        """The completion counts of the days casework changes moved (a limit next month among
        them); read after the full recounts, which took their own days' marks."""
        async with self._pool.acquire() as conn:
            dirty = await store.dirty_days(conn)
        written = 0
        for first, last in ranges(dirty):
            written += await self.recount(first, last, part="completion")
        return written

    async def freshness(self, conn: asyncpg.Connection) -> datetime | None:
        """When the counters were last recounted (a report shows it)."""
        return await store.last_refresh(conn)
