"""Working days as the State Council's notice sets them, deadlines counted in them, provisional
deadlines in a year not yet known, and the platform office's import of a new year."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.calendar import Calendar, add_days
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Forbidden, InvalidInput

NOTICE_2027 = {  # a plausible notice: New Year's Day 2027 falls on a Friday
    "holidays": [{"from": "2027-01-01", "to": "2027-01-03", "name": "元旦"},
                 {"from": "2027-02-06", "to": "2027-02-14", "name": "春节"}],
    "workdays": ["2027-02-20"],
}


@pytest.fixture
async def office(db, clock) -> Actor:
    clock.set(datetime(2026, 12, 5, 10, 0, tzinfo=CHINA), frozen=True)
    province = await db.fetchrow("SELECT id, path::text AS path FROM orgs WHERE code = 'SC'")
    cadre = await db.fetchval(
        """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
           VALUES ('office', '平台办公室', $1, 'operator', 'system', 'unused') RETURNING id""",
        province["id"])
    yield Actor(id=cadre, username="office", org_id=province["id"], org_path=province["path"],
                role="operator", duty="system", permissions=frozenset({"org.manage"}))
    # Years the package does not give are this test's own: the next test starts without them.
    await db.execute("""DELETE FROM calendar_days WHERE extract(year FROM day)::int IN
                          (SELECT year FROM calendar_years WHERE source = 'import')""")
    await db.execute("DELETE FROM calendar_years WHERE source = 'import'")


async def test_the_seed_knows_the_notices_to_2026_with_their_swapped_days(rt, db) -> None:
    calendar = await rt.calendar.calendar()
    assert set(range(2004, 2027)) <= calendar.years and 2027 not in calendar.years
    assert calendar.is_workday(date(2026, 2, 14))      # a Saturday worked for the Spring Festival
    assert not calendar.is_workday(date(2026, 2, 16))  # a Monday of the Spring Festival
    assert not calendar.is_workday(date(2026, 10, 1)) and calendar.is_workday(date(2026, 9, 30))
    names = {r["name"] for r in await db.fetch(
        "SELECT name FROM calendar_days WHERE day BETWEEN '2026-01-01' AND '2026-12-31'")}
    assert {"春节", "国庆节", "春节调休"} <= names


async def test_working_days_skip_holidays_and_count_swapped_saturdays(rt) -> None:
    calendar = await rt.calendar.calendar()
    friday = date(2026, 2, 13)
    assert add_days(calendar, friday, 1, "working").day == date(2026, 2, 14)  # the Saturday worked
    assert add_days(calendar, friday, 2, "working").day == date(2026, 2, 24)  # after the holiday
    assert add_days(calendar, friday, 15, "calendar").day == date(2026, 2, 28)
    assert not add_days(calendar, friday, 2, "working").provisional


def test_a_year_not_known_is_counted_with_weekends_only_and_marked() -> None:
    calendar = Calendar(frozenset({2026}), {date(2026, 12, 31): False})
    due = add_days(calendar, date(2026, 12, 28), 5, "working")
    assert due == add_days(calendar, date(2026, 12, 28), 5, "working")
    assert due.provisional and due.day == date(2027, 1, 5)   # Dec 29, 30, Jan 1, 4, 5
    assert not add_days(calendar, date(2026, 12, 1), 5, "working").provisional
    with pytest.raises(ValueError):
        add_days(calendar, date(2026, 12, 1), 5, "hours")


async def test_the_office_imports_next_years_notice(rt, db, office) -> None:
    assert await rt.calendar.missing_years() == [2027, 2028]
    before = await rt.calendar.deadline(date(2026, 12, 28), 5, "working")
    assert before.provisional and before.day == date(2027, 1, 4)  # Dec 29, 30, 31, Jan 1, 4
    imported = await rt.calendar.import_year(office, 2027, NOTICE_2027)
    assert imported["known"] and imported["source"] == "import" and imported["imported_by"] == "office"
    assert {"day": "2027-02-20", "workday": True, "name": "调休上班"} in imported["days"]
    after = await rt.calendar.deadline(date(2026, 12, 28), 5, "working")
    assert not after.provisional and after.day == date(2027, 1, 5)  # 元旦 on Friday the 1st
    assert await rt.calendar.missing_years() == [2028]
    assert await db.fetchval("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1") == "calendar.import"


@pytest.mark.parametrize(("body", "code"), [
    ({"holidays": [{"from": "2027-01-01", "to": "2027-01-03", "name": "元旦"},
                   {"from": "2027-01-03", "to": "2027-01-05", "name": "别的"}]}, "calendar_overlap"),
    ({"holidays": [{"from": "2027-01-01", "to": "2027-01-03", "name": "元旦"}],
      "workdays": ["2027-01-02"]}, "calendar_overlap"),
    ({"holidays": [{"from": "2027-01-01", "to": "2027-01-03", "name": "元旦"}],
      "workdays": ["2027-01-04"]}, "invalid_calendar"),  # a Monday is a working day anyway
    ({"holidays": [{"from": "2027-01-05", "to": "2027-01-03", "name": "元旦"}]}, "invalid_calendar"),
    ({"holidays": [{"from": "2028-01-01", "to": "2028-01-01", "name": "元旦"}]}, "invalid_calendar"),
    ({"holidays": [{"from": "2027-13-01", "to": "2027-13-02", "name": "元旦"}]}, "invalid_calendar"),
    ({"holidays": []}, "invalid_calendar"),
    ({"holidays": [{"from": "2027-01-01", "to": "2027-01-01"}]}, "invalid_calendar"),
])
async def test_a_malformed_notice_is_refused_and_nothing_is_written(rt, db, office, body, code) -> None:
    with pytest.raises(InvalidInput) as refused:
        await rt.calendar.import_year(office, 2027, body)
    assert refused.value.code == code
    assert await db.fetchval("SELECT count(*) FROM calendar_years WHERE year = 2027") == 0


async def test_only_the_platform_office_imports(rt, db, office) -> None:
    chengdu = await db.fetchrow("SELECT id, path::text AS path FROM orgs WHERE code = 'SC-510100'")
    city = Actor(id=office.id, username="office", org_id=chengdu["id"], org_path=chengdu["path"],
                 role="super_admin", duty="system", permissions=frozenset({"org.manage"}))
    with pytest.raises(Forbidden):
        await rt.calendar.import_year(city, 2027, NOTICE_2027)
    with pytest.raises(Forbidden):
        await rt.calendar.import_year(Actor(**{**office.__dict__, "permissions": frozenset()}),
                                      2027, NOTICE_2027)


async def test_a_year_out_of_range_is_a_clear_400(rt, office) -> None:
    for year in (0, 1999, 2101):   # date(0, 1, 1) would not even exist
        with pytest.raises(InvalidInput) as refused:
            await rt.calendar.year(office, year)
        assert refused.value.code == "invalid_calendar"
