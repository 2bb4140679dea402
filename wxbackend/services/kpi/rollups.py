"""The daily counters behind every usage figure (``kpi_daily``): per union and China day, each
union's row the total of its subtree, recounted from the source tables rather than incremented,
so a recount is idempotent and a report never scans the millions of rows underneath.

Counters: ``registered`` (accounts by home union), ``certified`` (members certified),
``joined_platform`` / ``joined_roster`` (new members by how they joined, dated by joining),
``founded_platform`` / ``founded_other`` (grassroots unions created), ``articles`` (first
published in the union's channel), ``visits`` (channel page views), ``activities``,
``services`` (first published), ``cadres`` (accounts entered) and ``opened:<module>`` (items
opened on the platform, by engine module).

The worker recounts today and yesterday every few minutes, plus any day a back-dated source
touched since it last looked (a roster import of members who joined years ago); ``wxbackend kpi
backfill`` recounts any range. Days are counted a week at a time, each week its own transaction.
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

    async def recount(self, first: date, last: date) -> int:
        """Count the days ``first`` … ``last`` again (rows written)."""
        if last < first:
            raise InvalidInput("结束日期不能早于开始日期", code="invalid_range")
        written = 0
        day = first
        while day <= last:
            after = min(day + timedelta(days=CHUNK_DAYS), last + timedelta(days=1))
            async with self._pool.acquire() as conn, conn.transaction():
                await store.lock(conn)
                written += await store.recount(conn, day, after, _moment(day), _moment(after), self._now())
            day = after
        return written

    async def backfill(self, first: date | None = None, last: date | None = None) -> int:
        """Every day from ``first`` (the arrangement's first day) to ``last`` (today)."""
        first, last = first or FIRST_DAY, last or self.today()
        if first < FIRST_DAY or last > self.today():
            raise InvalidInput(f"回填的日期应在 {FIRST_DAY} 至今天之间", code="invalid_range")
        return await self.recount(first, last)

    async def refresh(self) -> int:
        """The worker's job: today and yesterday, and the days back-dated members touched."""
        today = self.today()
        async with self._pool.acquire() as conn:
            touched, latest = await store.members_changed(conn, await store.watermark(conn, MEMBERS))
        days = [today - timedelta(days=1), today, *(d for d in touched if FIRST_DAY <= d <= today)]
        written = 0
        for first, last in ranges(days):
            written += await self.recount(first, last)
        async with self._pool.acquire() as conn:
            # No member yet: every member to come is new to the next look.
            await store.set_watermark(conn, MEMBERS, latest or _moment(FIRST_DAY))
        return written

    async def freshness(self, conn: asyncpg.Connection) -> datetime | None:
        """When the counters were last recounted (a report shows it)."""
        return await store.last_refresh(conn)
