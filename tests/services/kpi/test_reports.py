"""The usage report: each indicator for a union's subtree and the unions below it, from the daily
counters, against its standard (targets, the 30/60/90 % tiers, monthly and yearly minimums), the
unions ranked and those below standard named; trends by month; bad periods and unions refused."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.services.cadres.test_cadres import org_id
from tests.services.casework.conftest import make_cadre
from tests.services.kpi.test_rollups import tree, write
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=CHINA)


@pytest.fixture
async def march(rt, db, clock):
    """Three registrations under Chengdu and one in Dazhou this month, one of them certified, and
    Chengdu's new members: two through the platform, one by roster; counted."""
    clock.set(NOW, frozen=True)
    unions = await tree(db)
    # unions: province, Chengdu, its county, a grassroots union, Dazhou; days from 1 March
    await write(db, unions, [("registered", 3, 2, 10), ("registered", 3, 5, 10), ("registered", 2, 6, 9),
                             ("registered", 4, 7, 8), ("certified", 3, 8, 11),
                             ("joined_platform", 3, 9, 9), ("joined_platform", 2, 9, 9),
                             ("joined_roster", 3, 10, 9), ("cadres", 1, 3, 9)])
    await rt.kpi_rollups.backfill(date(2026, 1, 1))
    reader = await make_cadre(db, unions[0]["id"], "shengkpi", {"kpi.read"})
    return unions, reader


def indicator(report: dict, code: str) -> dict:
    return next(i for i in report["indicators"] if i["code"] == code)


async def test_the_province_reads_each_indicator_against_its_standard(rt, march) -> None:
    unions, reader = march
    report = await rt.kpi_reports.report(reader, "2026-03")
    chengdu, dazhou = unions[1]["id"], unions[4]["id"]
    registered = indicator(report, "registered")
    assert registered["value"] == 4
    by_union = {u["org_id"]: u for u in registered["units"]}
    assert (by_union[chengdu]["value"], by_union[chengdu]["rank"]) == (3, 1)
    assert (by_union[dazhou]["value"], by_union[dazhou]["rank"]) == (1, 2)
    # Chengdu's annex targets (600,000 + 400,000 + 200,000 new users) are far ahead of three.
    assert by_union[chengdu]["standard"] == 1_200_000 and by_union[chengdu]["meets"] is False
    # Year 7 on the platform: shares must reach 90 %.
    share = {u["org_id"]: u for u in indicator(report, "members_via_platform")["units"]}[chengdu]
    assert (share["value"], share["standard"], share["meets"]) == (0.6667, 0.9, False)
    certified = {u["org_id"]: u for u in indicator(report, "certified_share")["units"]}[chengdu]
    assert certified["value"] == round(1 / 3, 4)
    # Fifty articles a month; ten activities a year, judged by March on three of them.
    assert indicator(report, "articles")["standard"] == 50
    assert indicator(report, "activities")["standard"] == 3
    assert indicator(report, "completion")["value"] is None      # nothing fell due: no rate
    named = {u["org_id"]: u["indicators"] for u in report["below_standard"]}
    assert "通过平台新入会会员占比" in named[chengdu] and "注册用户" in named[dazhou]
    assert report["counted_at"] is not None


async def test_a_city_reads_its_own_subtree_and_drills_down(rt, db, march) -> None:
    unions, _ = march
    chengdu = await make_cadre(db, unions[1]["id"], "chengdukpi", {"kpi.read"})
    own = await rt.kpi_reports.report(chengdu, "2026-Q1")
    assert indicator(own, "registered")["value"] == 3
    assert [u["org_id"] for u in indicator(own, "registered")["units"]] == [unions[2]["id"]]
    county = await rt.kpi_reports.report(chengdu, "2026", org_id=unions[2]["id"])
    assert indicator(county, "registered")["value"] == 3
    assert indicator(county, "articles")["standard"] == 600      # a year: twelve months of fifty
    with pytest.raises(NotFound):
        await rt.kpi_reports.report(chengdu, "2026-03", org_id=unions[4]["id"])   # Dazhou


async def test_a_trend_gives_each_month(rt, march) -> None:
    _unions, reader = march
    trend = await rt.kpi_reports.trend(reader, "registered", months=3)
    assert trend["points"] == [{"month": "2026-01", "value": 0}, {"month": "2026-02", "value": 0},
                               {"month": "2026-03", "value": 4}]
    with pytest.raises(InvalidInput):
        await rt.kpi_reports.trend(reader, "completion")


async def test_bad_periods_and_readers_are_refused(rt, db, march) -> None:
    _unions, reader = march
    for period in ("2026-04", "2027", "2019-12", "2026-13", "本月", ""):
        with pytest.raises(InvalidInput):
            await rt.kpi_reports.report(reader, period)
    clerk = await make_cadre(db, await org_id(db, "SC-510100"), "nokpi", set())
    with pytest.raises(Forbidden):
        await rt.kpi_reports.report(clerk, "2026-03")
    # Registered users are counted from the beginning: none before March.
    assert indicator(await rt.kpi_reports.report(reader, "2026-02"), "registered")["value"] == 0


async def test_a_union_that_went_live_later_is_judged_by_its_own_year(rt, db, march) -> None:
    unions, reader = march
    chengdu = unions[1]["id"]
    await db.execute("INSERT INTO kpi_first_years (org_id, first_year, set_at) VALUES ($1, 2025, now())",
                     chengdu)
    report = await rt.kpi_reports.report(reader, "2026-03")
    shares = {u["org_id"]: u for u in indicator(report, "members_via_platform")["units"]}
    assert shares[chengdu]["standard"] == 0.6              # its year 2
    assert shares[unions[4]["id"]]["standard"] == 0.9      # Dazhou: year 7 of the arrangement
    # Article 8's modules are on the platform now: each is reported, none "not connected".
    usage = indicator(report, "usage_meetings")
    assert usage["connected"] is True and usage["standard"] == 0.9


async def test_a_module_not_on_the_platform_shows_as_not_connected(rt, march) -> None:
    _unions, reader = march
    meeting = rt.engine.modules.pop("meeting")
    try:
        report = await rt.kpi_reports.report(reader, "2026-03")
    finally:
        rt.engine.modules["meeting"] = meeting
    usage = indicator(report, "usage_meetings")
    assert (usage["connected"], usage["value"], usage["standard"]) == (False, None, None)
    assert indicator(report, "usage_notices")["connected"] is True


async def test_the_completion_rate_is_read_from_the_counters_after_a_refresh(rt, db, march) -> None:
    unions, reader = march
    chengdu, dazhou = unions[1], unions[4]

    def at(day: int) -> datetime:
        return datetime(2026, 3, day, 10, tzinfo=CHINA)

    # Chengdu: one appeal due on the 10th and closed on time, one due on the 25th (later this
    # month) still open; Dazhou: one proposal due on the 12th, closed late.
    await db.executemany(
        """INSERT INTO work_events (ref, module, org_path, kind, at, due_at)
           VALUES ($1, $2, $3::ltree, $4, $5, $6)""",
        [("a:1", "appeal", unions[3]["path"], "due", at(1), at(10)),
         ("a:1", "appeal", unions[3]["path"], "closed", at(9), None),
         ("a:2", "appeal", chengdu["path"], "due", at(2), at(25)),
         ("p:1", "proposal", dazhou["path"], "due", at(1), at(12)),
         ("p:1", "proposal", dazhou["path"], "closed", at(15), None)])
    stale = await rt.kpi_reports.report(reader, "2026-03")
    assert indicator(stale, "completion")["value"] is None      # not counted until the refresh
    await rt.kpi_rollups.refresh()
    report = await rt.kpi_reports.report(reader, "2026-03")
    assert indicator(report, "completion")["value"] == round(2 / 3, 4)
    units = {u["org_id"]: u for u in indicator(report, "completion")["units"]}
    assert (units[chengdu["id"]]["value"], units[chengdu["id"]]["meets"]) == (0.5, False)
    assert units[dazhou["id"]]["value"] == 1.0
    assert indicator(report, "completion_appeals")["value"] == 0.5
    assert indicator(report, "completion_proposals")["value"] == 1.0
