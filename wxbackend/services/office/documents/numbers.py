"""Document numbers: 发文字号 in the seeds' own form (``川工办字〔2020〕16号``: the union's issuer
code, the year in 六角括号, the number without padding and without 第) and 收文编号, each from
the union's sequence of the year.

A number is drawn inside the transaction of the step that records it, from a sequence row that
stays locked until that step commits: concurrent numberings of one union and year queue on the
row and get consecutive numbers, and a step that fails gives its number back, so the year's
numbers are distinct and without gaps (a unique index backs this up).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from wxbackend.services.clock import CHINA
from wxbackend.store.office import documents as store


def number_text(code: str, year: int, serial: int) -> str:
    return f"{code}〔{year}〕{serial}号"


def received_text(year: int, serial: int) -> str:
    return f"收文〔{year}〕{serial}号"


async def issue(conn: asyncpg.Connection, org_id: int, code: str,
                now: datetime) -> tuple[int, int, str]:
    """The next 发文字号 of the union's year (China time): (year, serial, text)."""
    year = now.astimezone(CHINA).year
    serial = await store.next_serial(conn, org_id, "out", year)
    return year, serial, number_text(code, year, serial)


async def register(conn: asyncpg.Connection, org_id: int, now: datetime) -> tuple[int, int, str]:
    """The next 收文编号 of the union's year: (year, serial, text)."""
    year = now.astimezone(CHINA).year
    serial = await store.next_serial(conn, org_id, "in", year)
    return year, serial, received_text(year, serial)
