"""SQL for the working-day calendar (rules in :mod:`wxbackend.services.casework.calendar`)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg


async def load(conn: asyncpg.Connection) -> tuple[list[int], list[asyncpg.Record]]:
    years = [r["year"] for r in await conn.fetch("SELECT year FROM calendar_years ORDER BY year")]
    days = await conn.fetch("SELECT day, workday, name FROM calendar_days ORDER BY day")
    return years, days


async def replace_year(conn: asyncpg.Connection, year: int, days: list[tuple[date, bool, str]], *,
                       source: str, imported_by: int | None, now: datetime) -> None:
    """The year's exceptions, all at once (a year is imported whole)."""
    await conn.execute("DELETE FROM calendar_days WHERE day >= $1 AND day <= $2",
                       date(year, 1, 1), date(year, 12, 31))
    await conn.executemany("INSERT INTO calendar_days (day, workday, name) VALUES ($1, $2, $3)", days)
    await conn.execute(
        """INSERT INTO calendar_years (year, source, imported_by, imported_at)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (year) DO UPDATE SET source = EXCLUDED.source,
                 imported_by = EXCLUDED.imported_by, imported_at = EXCLUDED.imported_at""",
        year, source, imported_by, now)


async def years_known(conn: asyncpg.Connection) -> set[int]:
    return {r["year"] for r in await conn.fetch("SELECT year FROM calendar_years")}


async def year_info(conn: asyncpg.Connection, year: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT y.year, y.source, y.imported_at, k.username AS imported_by
           FROM calendar_years y LEFT JOIN cadres k ON k.id = y.imported_by WHERE y.year = $1""", year)


async def days_of(conn: asyncpg.Connection, year: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT day, workday, name FROM calendar_days WHERE day >= $1 AND day <= $2 ORDER BY day",
        date(year, 1, 1), date(year, 12, 31))
