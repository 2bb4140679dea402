"""Information reports: a grassroots union reports to its city, which returns it for changes,
adopts it after the resubmission and passes it up to the province, which sends it to the national
federation; points per adopting level, none for a late report or a county's adoption; rankings
per period; and the bad input the desk must refuse without writing anything."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from tests.services.cadres.test_cadres import org_id
from tests.services.casework.conftest import T0, bind, make_cadre, sent_to
from tests.services.casework.test_appeals import phone_photo
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from wxbackend.services.office.info_reports.process import MAX_PICTURES
from wxbackend.store.membership import orgs as org_store

TEXT = "3月1日，天府软件公司工会组织职工开展春季健步走活动，200余名职工参加，倡导健康生活方式。"


def content(**changes) -> dict:
    return {"title": "天府软件公司工会开展春季健步走活动", "body": TEXT,
            "event_date": (T0.date() - timedelta(days=1)).isoformat(), "category": "工作动态", **changes}


@pytest.fixture
async def desks(rt, db, cadres, tianfu):
    """Cadres holding info.report at the grassroots union, Chengdu, the province and Dazhou."""
    chengdu, province = await org_id(db, "SC-510100"), await org_id(db, "SC")
    return {"tianfu": await make_cadre(db, tianfu, "tianfuxin", {"info.report"}),
            "chengdu": await make_cadre(db, chengdu, "chengduxin", {"info.report"}),
            "province": await make_cadre(db, province, "shengxin", {"info.report"}),
            "dazhou": await make_cadre(db, await org_id(db, "SC-511700"), "dazhouxin", {"info.report"}),
            "chengdu_id": chengdu, "province_id": province, "tianfu_id": tianfu}


async def counts(db) -> tuple:
    """What a refused request must leave as it was."""
    return (await db.fetchval("SELECT count(*) FROM info_reports"),
            await db.fetchval("SELECT count(*) FROM info_report_reviews"),
            await db.fetchval("SELECT count(*) FROM work_items"),
            await db.fetchval("SELECT count(*) FROM work_events"),
            await db.fetchval("SELECT count(*) FROM info_report_pictures"),
            await db.fetchval("SELECT coalesce(sum(version), 0) FROM work_items"),
            await db.fetchval("SELECT coalesce(sum(points), 0) FROM info_report_reviews"),
            await db.fetchval("SELECT count(*) FROM audit_log"))


async def test_a_report_goes_up_level_by_level_earning_points(rt, db, desks, clock) -> None:
    d, reports = desks, rt.info_reports
    reviewer_wechat, reporter_wechat = await bind(db, d["chengdu"]), await bind(db, d["tianfu"])
    picture = await reports.upload_picture(d["tianfu"], phone_photo())
    assert picture["url"].startswith("/media/") and picture["width"] == 400
    report = await reports.submit(d["tianfu"], content(pictures=[picture["id"]]))
    assert report["late"] is False and report["late_note"] is None and report["round"] == 1
    [city] = report["levels"]
    assert (city["org_id"], city["level"], city["status"]) == (d["chengdu_id"], "city", "pending")
    assert report["pictures"][0]["thumb_url"].startswith("/media/")
    assert report["status_name"] == "成都市总工会：待审核"

    # The review is a work item at Chengdu: in its 我的待办, not in Dazhou's.
    todo = (await rt.work_lists.todo(d["chengdu"]))["tasks"]
    assert [(t["item_id"], t["step"], t["module_name"]) for t in todo] == [
        (city["item_id"], "审核采用", "信息报送")]
    assert (await rt.work_lists.todo(d["dazhou"]))["tasks"] == []
    [reminder] = await sent_to(db, reviewer_wechat)   # through the outbox, once bound
    assert reminder["payload"]["data"]["thing2"]["value"] == "审核采用"
    desk = await reports.listing(d["chengdu"], "desk", open_only=True)
    assert [r["id"] for r in desk["reports"]] == [report["id"]] and desk["reports"][0]["can"]["review"]

    # 退回修改: back to the grassroots union, which edits and resubmits the same report.
    with pytest.raises(InvalidInput, match="意见"):
        await reports.review(d["chengdu"], report["id"], {"action": "return"})
    returned = await reports.review(d["chengdu"], report["id"],
                                    {"action": "return", "reason": "请补充活动成效"})
    assert returned["levels"][0]["status"] == "returned" and returned["can"]["resubmit"] is False
    mine = (await reports.listing(d["tianfu"], "mine"))["reports"][0]
    assert mine["can"]["resubmit"] and mine["levels"][0]["status_name"] == "退回修改"
    assert [t["step"] for t in (await rt.work_lists.todo(d["tianfu"]))["tasks"]] == ["修改后重新报送"]
    assert len(await sent_to(db, reporter_wechat)) == 1
    clock.set(T0 + timedelta(days=1), frozen=True)
    again = await reports.resubmit(d["tianfu"], report["id"], content(
        title="天府软件公司工会开展春季健步走活动 职工参与率达九成", pictures=[picture["id"]]))
    assert again["round"] == 2 and again["levels"][0]["status"] == "pending"
    assert again["filed_at"] == report["filed_at"]   # lateness counts from the first filing
    assert (await rt.work_lists.todo(d["chengdu"]))["tasks"][0]["title"].endswith("参与率达九成")

    adopted = await reports.review(d["chengdu"], report["id"], {"action": "adopt"})
    assert adopted["levels"][0]["status"] == "adopted" and adopted["points"] == 10
    assert adopted["can"]["pass_up"]
    up = await reports.pass_up(d["chengdu"], report["id"])
    assert [(lv["level"], lv["status"]) for lv in up["levels"]] == [
        ("city", "adopted"), ("province", "pending")]
    assert (await rt.work_lists.todo(d["province"]))["tasks"][0]["step"] == "审核采用"
    at_province = await reports.review(d["province"], report["id"], {"action": "adopt"})
    assert at_province["points"] == 35
    sent = await reports.pass_up(d["province"], report["id"])
    assert sent["national"]["status"] == "pending" and sent["can"]["national_adoption"]
    with pytest.raises(Forbidden, match="省总工会登记"):
        await reports.national_adoption(d["chengdu"], report["id"], {})
    final = await reports.national_adoption(d["province"], report["id"], {"note": "全总《工会信息》第12期"})
    assert final["national"]["status"] == "adopted" and final["points"] == 75
    assert final["status_name"] == "四川省总工会：已采用"

    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE action LIKE '%info_report%' ORDER BY id")]
    assert actions == ["info_report.picture_upload", "info_report.submit", "work.info_report.return",
                       "work.info_report.resubmit", "work.info_report.adopt", "info_report.pass_up",
                       "work.info_report.adopt", "info_report.pass_up", "info_report.national_adoption"]
    kinds = [r["kind"] for r in await db.fetch(
        "SELECT kind FROM work_events WHERE item_id = $1 ORDER BY id", city["item_id"])]
    assert "returned" in kinds and kinds[-1] == "closed"

    ranking = await reports.rankings(d["province"], "2026-03")
    chengdu = next(u for u in ranking["unions"] if u["org_id"] == d["chengdu_id"])
    assert (chengdu["rank"], chengdu["points"], chengdu["submitted"]) == (1, 75, 1)
    assert chengdu["adopted"] == {"county": 0, "city": 1, "province": 1, "national": 1}
    assert ranking["total"]["points"] == 75 and ranking["own"]["submitted"] == 0
    assert all(u["points"] == 0 for u in ranking["unions"] if u["org_id"] != d["chengdu_id"])
    in_city = await reports.rankings(d["chengdu"], "2026-Q1")
    assert [(u["org_id"], u["points"]) for u in in_city["unions"]] == [(d["tianfu_id"], 75)]
    assert (await reports.rankings(d["chengdu"], "2026-02"))["total"]["points"] == 0
    data, name = await reports.rankings_xlsx(d["province"], "2026")
    sheet = load_workbook(io.BytesIO(data)).active
    assert name == "信息报送排名-2026.xlsx"
    assert any(row[1] == "成都市总工会" and row[7] == 75 for row in sheet.iter_rows(values_only=True))


async def test_late_reports_and_county_adoptions_earn_no_points(rt, db, desks, clock) -> None:
    d, reports = desks, rt.info_reports
    county = (await org_store.create_grassroots(
        db, parent_id=d["chengdu_id"], name="成都市锦江区总工会", credit_code=None, employer_name=None,
        region_code=None, founded_via_platform=False))["id"]
    await db.execute("UPDATE orgs SET kind = 'county' WHERE id = $1", county)
    grassroots = (await org_store.create_grassroots(
        db, parent_id=county, name="锦江宾馆工会", credit_code=None, employer_name=None, region_code=None,
        founded_via_platform=False))["id"]
    reporter = await make_cadre(db, grassroots, "jinjiangxin", {"info.report"})
    reviewer = await make_cadre(db, county, "jinjiangqu", {"info.report"})

    # Seven days after the event is in time; eight is late (逾期报送，不计分) at every level.
    timely = await reports.submit(reporter, content(event_date=(T0.date() - timedelta(days=7)).isoformat()))
    late = await reports.submit(reporter, content(event_date=(T0.date() - timedelta(days=8)).isoformat()))
    assert (timely["late"], late["late"], late["late_note"]) == (False, True, "逾期报送，不计分")
    assert timely["levels"][0]["level"] == "county"
    for report in (timely, late):
        county_view = await reports.review(reviewer, report["id"], {"action": "adopt"})
        assert county_view["levels"][0]["status"] == "adopted" and county_view["points"] == 0
        await reports.pass_up(reviewer, report["id"])
        city = await reports.review(desks["chengdu"], report["id"], {"action": "adopt"})
        assert city["levels"][1]["level"] == "city"
    assert (await reports.report(reporter, timely["id"]))["points"] == 10
    assert (await reports.report(reporter, late["id"]))["points"] == 0
    ranking = await reports.rankings(desks["chengdu"], "2026-03")
    [row] = [u for u in ranking["unions"] if u["org_id"] == county]
    assert (row["points"], row["submitted"], row["late"]) == (10, 2, 1)
    assert row["adopted"] == {"county": 2, "city": 2, "province": 0, "national": 0}


async def test_refused_reports_and_reviews_write_nothing(rt, db, desks, clock) -> None:
    d, reports = desks, rt.info_reports
    before = await counts(db)
    # Only to the union directly above: not to the province over Chengdu, not to another city.
    for to in (d["province_id"], await org_id(db, "SC-511700")):
        with pytest.raises(InvalidInput, match="上一级工会（成都市总工会）") as refused:
            await reports.submit(d["tianfu"], content(to=to))
        assert refused.value.code == "not_upper_union"
    with pytest.raises(InvalidInput, match="没有上一级工会"):
        await reports.submit(d["province"], content())
    with pytest.raises(InvalidInput, match="不能晚于今天"):
        await reports.submit(d["tianfu"], content(event_date=(T0.date() + timedelta(days=1)).isoformat()))
    with pytest.raises(Forbidden):
        await reports.submit(await make_cadre(db, d["tianfu_id"], "wuquan", set()), content())
    assert await counts(db) == before

    # Pictures: more than nine in a report, another union's picture, a file over the limit.
    photo = phone_photo()
    pictures = [(await reports.upload_picture(d["tianfu"], photo))["id"] for _ in range(MAX_PICTURES + 1)]
    theirs = await reports.upload_picture(d["dazhou"], phone_photo())
    before = await counts(db)
    with pytest.raises(InvalidInput, match=f"最多 {MAX_PICTURES} 张") as too_many:
        await reports.submit(d["tianfu"], content(pictures=pictures))
    assert too_many.value.code == "too_many_pictures"
    with pytest.raises(InvalidInput, match="已用于其他信息"):
        await reports.submit(d["tianfu"], content(pictures=[theirs["id"]]))
    with pytest.raises(TooLarge):
        await reports.upload_picture(d["tianfu"], b"\xff\xd8" + bytes(20 << 20))
    assert await counts(db) == before
    assert await db.fetchval("SELECT count(*) FROM info_report_pictures WHERE report_id IS NOT NULL") == 0

    report = await reports.submit(d["tianfu"], content(pictures=pictures[:2]))
    before = await counts(db)
    # Reviewed only by the union it was sent to: the province sees it (its subtree) but may not
    # decide for Chengdu; Dazhou does not see it at all.
    with pytest.raises(Forbidden, match="不是报送给本单位") as not_addressee:
        await reports.review(d["province"], report["id"], {"action": "adopt"})
    assert not_addressee.value.code == "not_addressee"
    with pytest.raises(NotFound):
        await reports.review(d["dazhou"], report["id"], {"action": "adopt"})
    with pytest.raises(NotFound):
        await reports.report(d["dazhou"], report["id"])
    with pytest.raises(Conflict, match="本级采用后才能上报"):
        await reports.pass_up(d["chengdu"], report["id"])
    with pytest.raises(Conflict, match="未被退回修改") as not_returned:
        await reports.resubmit(d["tianfu"], report["id"], content(title="改过的标题改过的标题"))
    assert not_returned.value.code == "not_returned"
    with pytest.raises(Conflict, match="尚未报送全国总工会"):
        await reports.national_adoption(d["province"], report["id"], {})
    assert await counts(db) == before
    assert (await reports.report(d["tianfu"], report["id"]))["title"] == content()["title"]

    # Adopted once: a second adoption (or a 不采用 after it) is 409 and changes nothing.
    await reports.review(d["chengdu"], report["id"], {"action": "adopt"})
    before = await counts(db)
    for body in ({"action": "adopt"}, {"action": "reject", "reason": "重复"}):
        with pytest.raises(Conflict, match="不能重复审核") as twice:
            await reports.review(d["chengdu"], report["id"], body)
        assert twice.value.code == "already_reviewed"
    with pytest.raises(Conflict) as stale:
        await reports.review(d["chengdu"], report["id"], {"action": "adopt", "version": 1})
    assert stale.value.code == "item_moved"
    assert await counts(db) == before

    # Rankings of a period that has not begun.
    with pytest.raises(InvalidInput, match="尚未开始") as future:
        await reports.rankings(d["province"], "2026-04")
    assert future.value.code == "period_future"
    with pytest.raises(InvalidInput):
        await reports.rankings(d["province"], "2026-13")
