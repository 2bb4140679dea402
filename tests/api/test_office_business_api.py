"""Configured business and usage over HTTP: the platform office defines the hardship example from
the console, the leading group approves it, a member applies from the Mini Program, the
grassroots union verifies; a city clerk enters offline items and reads the usage rates. Every
answer matches its OpenAPI document."""

from __future__ import annotations

import pytest

from tests.api.test_activities_api import grassroots, worker_client
from tests.api.test_admin import sign_in
from tests.api.test_openapi import ADMIN_DOC, MP_DOC, Contract
from tests.services.activities.conftest import make_workers
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from tests.services.office.test_business import ANSWERS, task_at

MODULES = "/admin/v1/business-modules"
ONE = MODULES + "/{module_id}"
DESK = "/admin/v1/business-applications/{item_id}"
STANDARDS = "/admin/v1/usage-standards"
SERVICES = "/mp/v1/business-services"
APPLY = SERVICES + "/{module_id}/applications"
MINE = "/mp/v1/business-applications"


@pytest.fixture
async def office(server, rt, db):
    """Signed-in cadres: the designer and the leading group at the province, the grassroots
    handler, the city clerk; and the grassroots union's id."""
    operator = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(operator.totp_uri),
                                   ip="10.0.0.1", user_agent="test")).actor
    union = await grassroots(db, "SC-510100", "成都天府软件有限公司工会")
    people = {"designer": ("SC", {"business.configure"}), "approver": ("SC", {"business.approve"}),
              "handler": (union, {"business.handle"}), "clerk": ("SC-510100", {"ledger.record", "kpi.read"})}
    out: dict = {"union": union}
    heads = {}
    for name, (org, permissions) in people.items():
        org = org if isinstance(org, int) else await org_id(db, org)
        if org not in heads:   # each union's super administrator creates its cadres
            head = await rt.cadres.create_account(
                actor, username=f"head{org}", display_name="超级管理员", org_id=org, role="super_admin",
                duty="system", password=PASSWORD,
                permissions={"account.manage", "business.configure", "business.approve", "business.handle",
                             "ledger.record", "kpi.read"})
            signed = await rt.cadres.login(username=f"head{org}", password=PASSWORD, totp=otp(head.totp_uri),
                                           ip="10.0.0.1", user_agent="test")
            heads[org] = signed.actor
        made = await rt.cadres.create_account(heads[org], username=name, display_name=name, org_id=org,
                                              role="cadre", duty="business", password=PASSWORD,
                                              permissions=permissions)
        browser, csrf = await sign_in(server, name, otp(made.totp_uri) if made.totp_uri else "")
        browser.headers["X-CSRF-Token"] = csrf
        out[name] = browser
    yield out
    for value in out.values():
        if not isinstance(value, int):
            await value.aclose()


async def test_defined_approved_applied_for_and_handled(server, rt, db, office):
    admin, mp = Contract(ADMIN_DOC), Contract(MP_DOC)
    designer, approver = office["designer"], office["approver"]
    example = admin.check("/admin/v1/business-examples/hardship", "get",
                          await designer.get(f"{server}/admin/v1/business-examples/hardship"))["module"]
    broken = {**example, "form": {"fields": [{"key": "sig", "label": "签名", "type": "signature"}]}}
    refused = await designer.post(f"{server}/admin/v1/business-modules", json=broken)
    assert admin.check("/admin/v1/business-modules", "post", refused)["error"]["code"] == "invalid_form"
    assert refused.status_code == 400 and "类型未知" in refused.json()["error"]["message"]
    assert await db.fetchval("SELECT count(*) FROM business_modules") == 0

    made = await designer.post(f"{server}/admin/v1/business-modules", json=example)
    module = admin.check("/admin/v1/business-modules", "post", made)["module"]
    assert made.status_code == 201 and module["status"] == "draft"
    asked = await designer.post(f"{server}/admin/v1/business-modules/{module['id']}/request", json={})
    assert admin.check(f"{ONE}/request", "post", asked)["module"]["status"] == "requested"
    listed = admin.check(MODULES, "get", await approver.get(f"{server}{MODULES}"))
    assert [m["status"] for m in listed["modules"]] == ["requested"]
    decided = await approver.post(f"{server}/admin/v1/business-modules/{module['id']}/decision",
                                  json={"approve": True, "opinion": "同意"})
    assert admin.check(f"{ONE}/decision", "post", decided)["module"]["status"] == "live"

    member = (await make_workers(db, 1, office["union"], pii=rt.pii))[0]
    async with await worker_client(rt, member) as phone:
        offered = mp.check(SERVICES, "get", await phone.get(f"{server}{SERVICES}"))
        assert [m["name"] for m in offered["modules"]] == ["困难职工帮扶申请"]
        bad = await phone.post(f"{server}/mp/v1/business-services/{module['id']}/applications",
                               json={"answers": {**ANSWERS, "amount": "很多"}})
        assert mp.check(APPLY, "post", bad)["error"]["code"] == "invalid_answer"
        filed = await phone.post(f"{server}/mp/v1/business-services/{module['id']}/applications",
                                 json={"answers": ANSWERS})
        application = mp.check(APPLY, "post", filed)["application"]
        assert filed.status_code == 201 and application["answers"]["phone"] == "139****5678"
        mine = mp.check(MINE, "get", await phone.get(f"{server}{MINE}"))
        assert [a["item_id"] for a in mine["applications"]] == [application["item_id"]]
        one = await phone.get(f"{server}/mp/v1/business-applications/{application['item_id']}")
        assert mp.check(f"{MINE}/{{item_id}}", "get", one)["application"]["status"] == "open"

    handler = office["handler"]
    page = f"{server}/admin/v1/business-applications/{application['item_id']}"
    desk = admin.check(DESK, "get", await handler.get(page))["item"]
    assert desk["application"]["answers"]["id_number"] == ANSWERS["id_number"]
    acted = await handler.post(f"{page}/steps", json={"task_id": task_at(desk, "verify"), "decision": "pass",
                                                     "version": desk["version"]})
    assert admin.check(f"{DESK}/steps", "post", acted)["result"]["status"] == "open"
    # The clerk of another subtree's union does not see the application at all.
    assert (await office["clerk"].get(page)).status_code in (403, 404)


async def test_the_ledger_and_the_usage_rates(server, rt, db, office):
    admin = Contract(ADMIN_DOC)
    clerk = office["clerk"]
    entered = await clerk.post(f"{server}/admin/v1/usage-ledger", json={
        "module": "appeal", "handled_on": rt.clock().date().isoformat(), "items": 3, "title": "来访登记"})
    entry = admin.check("/admin/v1/usage-ledger", "post", entered)["entry"]
    assert entered.status_code == 201 and entry["items"] == 3
    future = await clerk.post(f"{server}/admin/v1/usage-ledger", json={
        "module": "appeal", "handled_on": "2099-01-01", "items": 3, "title": "来访登记"})
    assert admin.check("/admin/v1/usage-ledger", "post", future)["error"]["code"] == "ledger_invalid"
    period = rt.clock().strftime("%Y-%m")
    listed = admin.check("/admin/v1/usage-ledger", "get",
                         await clerk.get(f"{server}/admin/v1/usage-ledger", params={"period": period}))
    assert [e["id"] for e in listed["entries"]] == [entry["id"]]
    rates = admin.check("/admin/v1/usage-rates", "get",
                        await clerk.get(f"{server}/admin/v1/usage-rates", params={"period": period}))["usage"]
    appeal = next(m for m in rates["modules"] if m["module"] == "appeal")
    assert (appeal["online"], appeal["offline"], appeal["usage_rate"]) == (0, 3, 0.0)
    later = await clerk.get(f"{server}/admin/v1/usage-rates", params={"period": "2099"})
    assert admin.check("/admin/v1/usage-rates", "get", later)["error"]["code"] == "invalid_period"
    voided = await clerk.post(f"{server}/admin/v1/usage-ledger/{entry['id']}/void", json={"reason": "重复"})
    void = admin.check("/admin/v1/usage-ledger/{entry_id}/void", "post", voided)
    assert void["entry"]["void_reason"] == "重复"
    standards = admin.check(STANDARDS, "get", await clerk.get(f"{server}{STANDARDS}"))
    assert {"module": "meeting", "tiers": [0.5, 0.7, 0.9]}.items() <= \
        next(s for s in standards["standards"] if s["module"] == "meeting").items()
    denied = await clerk.put(f"{server}/admin/v1/usage-standards", json={"module": "appeal", "tiers": [0.5]})
    assert admin.check("/admin/v1/usage-standards", "put", denied).get("error", {}).get("code") in \
        ("permission_missing", "platform_office_only")
