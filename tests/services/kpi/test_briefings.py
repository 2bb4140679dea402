"""Briefings: the province's monthly briefing is issued once on the 1st for the month before and
announced through WeChat; it keeps the figures as they stood (a later correction does not alter
it); the next one names what changed; its workbook carries native charts; on-demand briefings
for a cadre's own union; visibility up and down the tree."""

from __future__ import annotations

import io
from datetime import date, datetime

import asyncpg
import pytest
from openpyxl import load_workbook

from tests.services.casework.conftest import bind, make_cadre, sent_to
from tests.services.kpi.test_rollups import tree, write
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound


@pytest.fixture
def settings(fake_wechat):
    """Reminders on: the cadres' template."""
    from tests.conftest import make_settings

    return make_settings(fake_wechat.base_url, casework={"cadre_template_id": "TPL-CADRE"})


async def test_the_monthly_briefing_is_issued_once_kept_and_compared(rt, db, clock) -> None:
    unions = await tree(db)
    chengdu = unions[1]["id"]
    reader = await make_cadre(db, chengdu, "chengdukpi", {"kpi.read"})
    openid = await bind(db, reader)
    await write(db, unions, [("registered", 3, 2, 10), ("registered", 4, 3, 10),
                             ("joined_platform", 3, 4, 10), ("joined_roster", 4, 4, 10)])
    clock.set(datetime(2026, 4, 1, 9, 0, tzinfo=CHINA), frozen=True)
    await rt.kpi_rollups.backfill(date(2026, 3, 1))
    first = await rt.kpi_briefings.monthly()
    assert first is not None and await rt.kpi_briefings.monthly() is None     # once a month
    [message] = await sent_to(db, openid)
    assert message["payload"]["data"]["thing1"]["value"] == "2026-03使用情况通报"

    # A correction after issue changes the counters, never the issued briefing.
    await write(db, unions, [("registered", 3, 20, 10)])
    await rt.kpi_rollups.backfill(date(2026, 3, 1))
    issued = await rt.kpi_briefings.briefing(reader, first)
    registered = next(i for i in issued["report"]["indicators"] if i["code"] == "registered")
    assert registered["value"] == 2
    with pytest.raises(asyncpg.RaiseError):
        await db.execute("UPDATE kpi_briefings SET period = '2026-02' WHERE id = $1", first)

    # May: Dazhou's new members all came by roster, Chengdu's through the platform again.
    await write(db, unions, [("joined_platform", 1, 65, 10), ("joined_roster", 4, 66, 10)])
    clock.set(datetime(2026, 6, 1, 9, 0, tzinfo=CHINA), frozen=True)
    await rt.kpi_rollups.backfill(date(2026, 5, 1))
    second = await rt.kpi_briefings.briefing(reader, await rt.kpi_briefings.monthly())
    assert second["period"] == "2026-05" and second["previous_id"] == first
    assert second["changes"]["previous"] == "2026-03"
    assert second["changes"]["indicators"]["registered"] == 1
    workbook = load_workbook(io.BytesIO((await rt.kpi_briefings.workbook(reader, first))[0]))
    assert workbook.sheetnames == ["概况", "下级单位排名", "未达标单位", "较上期变化"]
    assert workbook["下级单位排名"]._charts            # native charts, drawn by Excel itself
    named = [row[0].value for row in workbook["未达标单位"].iter_rows(min_row=2)]
    assert "达州市总工会" in named and "成都市总工会" in named


async def test_on_demand_briefings_and_who_sees_them(rt, db, clock) -> None:
    unions = await tree(db)
    clock.set(datetime(2026, 4, 10, 9, 0, tzinfo=CHINA), frozen=True)
    chengdu = await make_cadre(db, unions[1]["id"], "chengdukpi", {"kpi.read"})
    dazhou = await make_cadre(db, unions[4]["id"], "dazhoukpi", {"kpi.read"})
    county = await make_cadre(db, unions[2]["id"], "countykpi", {"kpi.read"})
    made = await rt.kpi_briefings.issue(chengdu, {"period": "2026-Q1"})
    assert (made["org_name"], made["kind"], made["issued_by"]) == ("成都市总工会", "on_demand", "chengdukpi")
    assert [b["id"] for b in (await rt.kpi_briefings.briefings(county))["briefings"]] == [made["id"]]
    assert (await rt.kpi_briefings.briefings(dazhou))["briefings"] == []
    with pytest.raises(NotFound):
        await rt.kpi_briefings.briefing(dazhou, made["id"])
    for body in ({"period": "2026-05"}, {"period": "2019"}, {}):
        with pytest.raises(InvalidInput):
            await rt.kpi_briefings.issue(chengdu, body)
    stranger = await make_cadre(db, unions[1]["id"], "nokpi", set())
    with pytest.raises(Forbidden):
        await rt.kpi_briefings.issue(stranger, {"period": "2026-03"})
    assert await db.fetchval("SELECT count(*) FROM kpi_briefings") == 1


async def test_a_worker_starting_mid_month_issues_nothing_late(rt, db, clock) -> None:
    await tree(db)
    clock.set(datetime(2026, 4, 4, 9, 0, tzinfo=CHINA), frozen=True)
    assert await rt.kpi_briefings.monthly() is None
    clock.set(datetime(2026, 4, 3, 23, 0, tzinfo=CHINA), frozen=True)
    assert await rt.kpi_briefings.monthly() is not None      # down on the 1st, caught up by the 3rd
