"""The one clock every service takes, in China Standard Time.

The unions' days, ages, quotas and member-number years are counted in China time, whatever the
server's own time zone. Services never read the wall clock themselves: they take a ``Clock``
(the runtime passes one to all of them), so a test can set the instant — 23:30 on 31 December in
China is still 31 December, and 15:30 the same day in UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")

# A clock answers the current instant as an aware datetime in China time.
Clock = Callable[[], datetime]


def china_now() -> datetime:
    """The system clock, in China time: the default ``Clock``."""
    return datetime.now(CHINA)


def china_today() -> date:
    return china_now().date()


def unix_time(clock: Clock) -> int:
    """The clock's instant as whole seconds since the epoch (tokens, signatures, TTLs)."""
    return int(clock().timestamp())
