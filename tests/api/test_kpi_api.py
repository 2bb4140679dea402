"""The usage report and trend over HTTP: a city cadre reads its own subtree in the console, and an
entrance of the shared platform API with the ``kpi.read`` scope reads its union's; every answer
matches its OpenAPI document."""

from __future__ import annotations

from datetime import date

import pytest

from tests.api.test_admin import sign_in
from tests.api.test_identity import make_app, signed
from tests.api.test_openapi import ADMIN_DOC, API_DOC, Contract
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from tests.services.kpi.test_rollups import tree, write


async def signed_get(http, server: str, path: str, query: str, app_id: str, secret: str):
    headers = signed("GET", path, b"", app_id, secret, query=query)
    return await http.get(f"{server}{path}?{query}", headers=headers)


@pytest.fixture
async def march(rt, db) -> list[dict]:
    """A registration in Chengdu's subtree and one in Dazhou's in March 2026, counted."""
    unions = await tree(db)
    await write(db, unions, [("registered", 3, 2, 10), ("registered", 4, 3, 10)])
    await rt.kpi_rollups.backfill(date(2026, 3, 1), date(2026, 3, 31))
    return unions


async def test_a_city_reads_its_report_and_trend(server, rt, db, march) -> None:
    admin = Contract(ADMIN_DOC)
    operator = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(operator.totp_uri),
                                   ip="10.0.0.1", user_agent="test")).actor
    made = await rt.cadres.create_account(actor, username="chengdu", display_name="成都", role="super_admin",
                                          org_id=await org_id(db, "SC-510100"), duty="business",
                                          password=PASSWORD, permissions={"kpi.read"})
    browser, csrf = await sign_in(server, "chengdu", otp(made.totp_uri))
    base = f"{server}/admin/v1/kpi"
    report = admin.check("/admin/v1/kpi/report", "get",
                         await browser.get(f"{base}/report", params={"period": "2026-03"}))["report"]
    registered = next(i for i in report["indicators"] if i["code"] == "registered")
    assert report["org_name"] == "成都市总工会" and registered["value"] == 1
    future = await browser.get(f"{base}/report", params={"period": "2099-01"})
    assert admin.check("/admin/v1/kpi/report", "get", future)["error"]["code"] == "invalid_period"
    outside = await browser.get(f"{base}/report", params={"period": "2026-03", "org_id": march[4]["id"]})
    assert admin.check("/admin/v1/kpi/report", "get", outside)["error"]["code"] == "org_not_found"
    trend = admin.check("/admin/v1/kpi/trend", "get",
                        await browser.get(f"{base}/trend", params={"indicator": "registered", "months": 24}))
    points = {p["month"]: p["value"] for p in trend["trend"]["points"]}
    assert (points["2026-02"], points["2026-03"]) == (0, 1)

    browser.headers["X-CSRF-Token"] = csrf
    issued = await browser.post(f"{base}/briefings", json={"period": "2026-03"})
    briefing = admin.check("/admin/v1/kpi/briefings", "post", issued)["briefing"]
    assert issued.status_code == 201 and briefing["kind"] == "on_demand"
    listed = admin.check("/admin/v1/kpi/briefings", "get", await browser.get(f"{base}/briefings"))
    assert [b["id"] for b in listed["briefings"]] == [briefing["id"]]
    one = await browser.get(f"{base}/briefings/{briefing['id']}")
    assert admin.check("/admin/v1/kpi/briefings/{briefing_id}", "get", one)["briefing"]["period"] == "2026-03"
    workbook = await browser.get(f"{base}/briefings/{briefing['id']}/briefing.xlsx")
    admin.check("/admin/v1/kpi/briefings/{briefing_id}/briefing.xlsx", "get", workbook)
    assert workbook.content[:2] == b"PK"
    await browser.aclose()


async def test_an_entrance_reads_its_unions_figures_with_the_scope(server, rt, http, march) -> None:
    contract = Contract(API_DOC)
    app_id, secret = await make_app(rt, "chengdu-kpi", ("kpi.read",))
    path = "/api/v1/kpi/report"
    answer = await signed_get(http, server, path, "period=2026-03", app_id, secret)
    report = contract.check(path, "get", answer)["report"]
    assert report["org_name"] == "成都市总工会"
    assert next(i for i in report["indicators"] if i["code"] == "registered")["value"] == 1
    outside = await signed_get(http, server, path, f"period=2026-03&org_id={march[4]['id']}", app_id, secret)
    assert contract.check(path, "get", outside)["error"]["code"] == "org_not_found"
    other_id, other_secret = await make_app(rt, "chengdu-sso", ("sso",))
    refused = await signed_get(http, server, path, "period=2026-03", other_id, other_secret)
    assert contract.check(path, "get", refused)["error"]["code"] == "scope_missing"
