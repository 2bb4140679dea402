"""Information reports over HTTP: a grassroots cadre uploads a picture and reports to the city, the
city returns the report, adopts the resubmission and passes it up; rankings and their workbook;
refusals with their status and code; every answer matches the OpenAPI document."""

from __future__ import annotations

import pytest

from tests.api.test_admin import sign_in
from tests.api.test_channels_api import declare_upload
from tests.api.test_openapi import ADMIN_DOC, Contract
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from tests.services.casework.test_appeals import phone_photo
from wxbackend.store.membership import orgs as org_store

BASE = "/admin/v1/info-reports"
TEXT = "3月1日，天府软件公司工会组织职工开展春季健步走活动，200余名职工参加，倡导健康生活方式。"


@pytest.fixture
async def people(server, rt, db):
    """Signed-in cadres holding info.report at a grassroots union and at Chengdu above it."""
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                   ip="10.0.0.1", user_agent="test")).actor
    chengdu = await org_id(db, "SC-510100")
    tianfu = (await org_store.create_grassroots(
        db, parent_id=chengdu, name="成都天府软件有限公司工会", credit_code=None,
        employer_name="成都天府软件有限公司", region_code=None, founded_via_platform=False))["id"]
    browsers = []
    for username, union in (("tianfuxin", tianfu), ("chengduxin", chengdu)):
        made = await rt.cadres.create_account(actor, username=username, display_name=username, org_id=union,
                                              role="super_admin", duty="system", password=PASSWORD,
                                              permissions={"info.report"})
        browser, csrf = await sign_in(server, username, otp(made.totp_uri))
        browser.headers["X-CSRF-Token"] = csrf
        browsers.append(browser)
    yield {"reporter": browsers[0], "city": browsers[1], "chengdu": chengdu, "tianfu": tianfu}
    for browser in browsers:
        await browser.aclose()


async def test_report_review_and_rank_over_http(server, rt, db, people) -> None:
    admin = Contract(ADMIN_DOC)
    reporter, city = people["reporter"], people["city"]
    today = rt.clock().date().isoformat()

    async def call(browser, method: str, path: str, status: int, template: str | None = None, **kwargs):
        response = await browser.request(method, server + path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return admin.check(template or path, method.lower(), response)

    picture = (await call(reporter, "POST", f"{BASE}/pictures", 201, content=phone_photo(),
                          headers={"Content-Type": "image/jpeg"}))["picture"]
    status, answer = await declare_upload(server, f"{BASE}/pictures", (20 << 20) + 1, {
        "Cookie": "; ".join(f"{k}={v}" for k, v in reporter.cookies.items()),
        "X-CSRF-Token": reporter.headers["X-CSRF-Token"]})
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert answer["error"]["code"] == "upload_too_large"

    form = {"title": "天府软件公司工会开展春季健步走活动", "body": TEXT, "event_date": today,
            "pictures": [picture["id"]]}
    wrong = await call(reporter, "POST", BASE, 400, json={**form, "to": await org_id(db, "SC")})
    assert wrong["error"]["code"] == "not_upper_union"
    assert await db.fetchval("SELECT count(*) FROM info_reports") == 0
    report = (await call(reporter, "POST", BASE, 201, json=form))["report"]
    one = f"{BASE}/{{report_id}}"
    path = f"{BASE}/{report['id']}"
    assert report["pictures"][0]["id"] == picture["id"] and report["levels"][0]["org_id"] == people["chengdu"]

    desk = await call(city, "GET", BASE, 200, params={"box": "desk", "open": "1"})
    assert [r["id"] for r in desk["reports"]] == [report["id"]]
    bad = await call(city, "POST", f"{path}/review", 400, one + "/review", json={"action": "return"})
    assert bad["error"]["code"] == "opinion_required"
    returned = (await call(city, "POST", f"{path}/review", 200, one + "/review",
                           json={"action": "return", "reason": "请补充活动成效"}))["report"]
    assert returned["levels"][0]["status"] == "returned"
    again = (await call(reporter, "POST", f"{path}/resubmission", 200, one + "/resubmission",
                        json={**form, "body": TEXT + "参与率达九成。"}))["report"]
    assert again["round"] == 2
    not_returned = await call(reporter, "POST", f"{path}/resubmission", 409, one + "/resubmission", json=form)
    assert not_returned["error"]["code"] == "not_returned"
    version = again["levels"][0]["version"]
    adopted = (await call(city, "POST", f"{path}/review", 200, one + "/review",
                          json={"action": "adopt", "version": version}))["report"]
    assert adopted["points"] == 10 and adopted["can"]["pass_up"]
    twice = await call(city, "POST", f"{path}/review", 409, one + "/review", json={"action": "adopt"})
    assert twice["error"]["code"] == "already_reviewed"
    foreign = await call(reporter, "POST", f"{path}/review", 403, one + "/review", json={"action": "adopt"})
    assert foreign["error"]["code"] == "not_addressee"
    up = (await call(city, "POST", f"{path}/pass-up", 200, one + "/pass-up"))["report"]
    assert [lv["level"] for lv in up["levels"]] == ["city", "province"]
    national = await call(city, "POST", f"{path}/national-adoption", 403, one + "/national-adoption", json={})
    assert national["error"]["code"] == "province_only"
    page = (await call(reporter, "GET", path, 200, one))["report"]
    assert page["body"].endswith("九成。") and page["status_name"] == "四川省总工会：待审核"
    missing = await call(reporter, "GET", f"{BASE}/999999", 404, one)
    assert missing["error"]["code"] == "report_not_found"

    period = f"{rt.clock():%Y-%m}"
    ranking = await call(city, "GET", f"{BASE}/rankings", 200, params={"period": period})
    assert [(u["org_id"], u["points"], u["rank"]) for u in ranking["unions"]] == [(people["tianfu"], 10, 1)]
    future = await call(city, "GET", f"{BASE}/rankings", 400, params={"period": f"{rt.clock().year + 1}"})
    assert future["error"]["code"] == "period_future"
    workbook = await city.get(f"{server}{BASE}/rankings.xlsx", params={"period": period})
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"
    admin.check(f"{BASE}/rankings.xlsx", "get", workbook)
