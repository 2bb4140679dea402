"""Activities and inclusive services over HTTP: a cadre creates and publishes an item in the
console API, workers sign up from the Mini Program; every answer matches the documents, and bad
requests get a clear 4xx with nothing written."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.api.test_admin import sign_in
from tests.api.test_openapi import ADMIN_DOC, MP_DOC, Contract
from tests.services.activities.conftest import make_workers
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from wxbackend.store.membership import orgs as org_store


@pytest.fixture
async def console(server, rt, db):
    """A Chengdu cadre with activity.manage and service.manage, signed in over HTTP."""
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                          ip="10.0.0.1", user_agent="test")).actor
    cadre = await rt.cadres.create_account(
        office_actor, username="zhaoliu", display_name="赵六", org_id=await org_id(db, "SC-510100"),
        role="super_admin", duty="business", password=PASSWORD,
        permissions={"activity.manage", "service.manage"})
    browser, csrf = await sign_in(server, "zhaoliu", otp(cadre.totp_uri))
    browser.headers["X-CSRF-Token"] = csrf
    yield browser
    await browser.aclose()


async def grassroots(db, parent_code: str, name: str) -> int:
    row = await org_store.create_grassroots(db, parent_id=await org_id(db, parent_code), name=name,
                                            credit_code=None, employer_name=name.removesuffix("工会"),
                                            region_code=None, founded_via_platform=False)
    return row["id"]


async def worker_client(rt, account_id: int) -> httpx.AsyncClient:
    token = await rt.login.mp_sessions.create(account_id)
    return httpx.AsyncClient(trust_env=False, timeout=10, headers={"Authorization": f"Bearer {token}"})


async def test_a_cadre_publishes_and_workers_claim_end_to_end(server, rt, db, console) -> None:
    admin, mp = Contract(ADMIN_DOC), Contract(MP_DOC)
    union = await grassroots(db, "SC-510100", "天府软件工会")
    now = rt.clock()
    body = {"kind": "service", "form": "ticket", "mode": "first_come", "title": "一元观影",
            "opens_at": (now - timedelta(minutes=1)).isoformat(),
            "closes_at": (now + timedelta(days=1)).isoformat(), "stock": 2, "hold_minutes": 60,
            "audience": {"level": "certified", "orgs": [union]}}
    created = await console.post(f"{server}/admin/v1/offerings", json=body)
    item = admin.check("/admin/v1/offerings", "post", created)["offering"]
    assert created.status_code == 201 and item["status"] == "draft"
    published = await console.post(f"{server}/admin/v1/offerings/{item['id']}/publish")
    published = admin.check("/admin/v1/offerings/{offering_id}/publish", "post", published)
    assert published["offering"]["state"] == "open"
    listing = await console.get(f"{server}/admin/v1/offerings", params={"kind": "service"})
    assert [o["id"] for o in admin.check("/admin/v1/offerings", "get", listing)["offerings"]] == [item["id"]]
    audited = await db.fetch("SELECT action FROM audit_log WHERE target = $1 ORDER BY id",
                             f"offering:{item['id']}")
    assert [r["action"] for r in audited] == ["service.create", "service.publish"]

    members = await make_workers(db, 3, union)
    [outsider] = await make_workers(db, 1, None)
    clients = [await worker_client(rt, a) for a in [*members, outsider]]
    try:
        seen = await clients[0].get(f"{server}/mp/v1/offerings")
        offer = mp.check("/mp/v1/offerings", "get", seen)["offerings"]
        assert [(o["id"], o["eligible"]) for o in offer] == [(item["id"], True)]
        outsider_view = mp.check("/mp/v1/offerings/{offering_id}", "get",
                                 await clients[3].get(f"{server}/mp/v1/offerings/{item['id']}"))
        assert outsider_view["offering"]["eligible"] is False and outsider_view["offering"]["reason"]

        won = await clients[0].post(f"{server}/mp/v1/offerings/{item['id']}/signup")
        signup = mp.check("/mp/v1/offerings/{offering_id}/signup", "post", won)["signup"]
        assert won.status_code == 201 and signup["status"] == "held" and signup["hold_until"]
        twice = await clients[0].post(f"{server}/mp/v1/offerings/{item['id']}/signup")
        assert twice.status_code == 409
        assert mp.check("/mp/v1/offerings/{offering_id}/signup", "post", twice)["error"] == {
            "code": "over_cap", "message": "已达领取上限"}
        refused = await clients[3].post(f"{server}/mp/v1/offerings/{item['id']}/signup")
        assert refused.status_code == 403
        assert mp.check("/mp/v1/offerings/{offering_id}/signup", "post",
                        refused)["error"]["code"] == "not_eligible"
        assert (await clients[1].post(f"{server}/mp/v1/offerings/{item['id']}/signup")).status_code == 201
        sold_out = await clients[2].post(f"{server}/mp/v1/offerings/{item['id']}/signup")
        assert sold_out.status_code == 409
        assert sold_out.json()["error"] == {"code": "sold_out", "message": "已抢完"}

        confirmed = await clients[0].post(f"{server}/mp/v1/signups/{signup['id']}/confirm")
        confirmed = mp.check("/mp/v1/signups/{signup_id}/confirm", "post", confirmed)
        assert confirmed["signup"]["status"] == "confirmed"
        other = await clients[1].post(f"{server}/mp/v1/signups/{signup['id']}/cancel")  # not theirs
        assert other.status_code == 404
        cancelled = await clients[0].post(f"{server}/mp/v1/signups/{signup['id']}/cancel")
        cancelled = mp.check("/mp/v1/signups/{signup_id}/cancel", "post", cancelled)
        assert cancelled["signup"]["status"] == "cancelled"
        assert (await clients[2].post(f"{server}/mp/v1/offerings/{item['id']}/signup")).status_code == 201
        mine = mp.check("/mp/v1/signups", "get", await clients[0].get(f"{server}/mp/v1/signups"))
        assert [s["status"] for s in mine["signups"]] == ["cancelled"]
    finally:
        for client in clients:
            await client.aclose()
    assert await db.fetchval("SELECT taken FROM offerings WHERE id = $1", item["id"]) == 2


async def test_bad_item_requests_are_refused_and_change_nothing(server, rt, db, console) -> None:
    admin = Contract(ADMIN_DOC)
    dazhou = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-511700'")
    now = rt.clock()
    good = {"kind": "activity", "form": "offline", "mode": "review", "title": "职工运动会",
            "opens_at": now.isoformat(), "closes_at": (now + timedelta(days=3)).isoformat(), "stock": 100}
    for change, code in (({"closes_at": now.isoformat()}, "item_invalid"),
                         ({"form": "coupon"}, "item_invalid"),
                         ({"stock": 0}, "item_invalid"),
                         ({"opens_at": "明天"}, "item_invalid"),
                         ({"audience": {"level": "certified", "orgs": [dazhou]}}, "outside_subtree"),
                         ({"audience": {"level": "vip"}}, "invalid_audience")):
        answer = await console.post(f"{server}/admin/v1/offerings", json={**good, **change})
        assert answer.status_code == 400, (change, answer.text)
        assert admin.check("/admin/v1/offerings", "post", answer)["error"]["code"] == code
    assert await db.fetchval("SELECT count(*) FROM offerings") == 0
    # an item of another city's union is not found for this cadre
    other = await rt.pool.fetchval(
        """INSERT INTO offerings (kind, form, org_id, org_path, title, opens_at, closes_at, mode,
                                  stock, audience)
           SELECT 'activity', 'offline', id, path, '达州活动', now(), now() + interval '1 day',
                  'review', 5, '{}'
           FROM orgs WHERE id = $1 RETURNING id""", dazhou)
    for call in (console.get(f"{server}/admin/v1/offerings/{other}"),
                 console.patch(f"{server}/admin/v1/offerings/{other}", json={"title": "改"}),
                 console.post(f"{server}/admin/v1/offerings/{other}/publish")):
        answer = await call
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "item_not_found"
    assert await db.fetchval("SELECT title || status FROM offerings WHERE id = $1", other) == "达州活动draft"


async def test_a_verifier_signs_in_and_redeems_over_http(server, rt, db, console) -> None:
    union = await grassroots(db, "SC-510100", "锦江宾馆工会")
    now = rt.clock()
    created = await console.post(f"{server}/admin/v1/offerings", json={
        "kind": "service", "form": "coupon", "mode": "first_come", "title": "洗衣券",
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(days=1)).isoformat(), "stock": 3})
    item = created.json()["offering"]
    await console.post(f"{server}/admin/v1/offerings/{item['id']}/publish")
    staff = await console.post(f"{server}/admin/v1/verifiers", json={
        "username": "laundry01", "display_name": "洗衣店", "offering_ids": [item["id"]]})
    made = Contract(ADMIN_DOC).check("/admin/v1/verifiers", "post", staff)
    assert made["verifier"]["username"] == "laundry01"
    [member] = await make_workers(db, 1, union)
    worker = await worker_client(rt, member)
    phone = httpx.AsyncClient(trust_env=False, timeout=10)
    try:
        signup = (await worker.post(f"{server}/mp/v1/offerings/{item['id']}/signup")).json()["signup"]
        await worker.post(f"{server}/mp/v1/signups/{signup['id']}/confirm")
        shown = await worker.get(f"{server}/mp/v1/signups/{signup['id']}/code")
        code = Contract(MP_DOC).check("/mp/v1/signups/{signup_id}/code", "get", shown)["code"]
        refused = await phone.post(f"{server}/verify/v1/redeem", json={"code": code, "request_id": "r" * 10})
        assert refused.status_code == 401
        login = await phone.post(f"{server}/verify/v1/login",
                                 json={"username": "laundry01", "password": staff.json()["password"]})
        assert login.status_code == 200
        phone.headers["Authorization"] = f"Bearer {login.json()['token']}"
        first = await phone.post(f"{server}/verify/v1/redeem", json={"code": code, "request_id": "scan-0001"})
        assert first.status_code == 200 and first.json()["redeemed"] is True
        retry = await phone.post(f"{server}/verify/v1/redeem", json={"code": code, "request_id": "scan-0001"})
        assert (retry.status_code, retry.json()) == (200, first.json())
        again = await phone.post(f"{server}/verify/v1/redeem", json={"code": code, "request_id": "scan-0002"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_used"
        assert "已于" in again.json()["error"]["message"]
    finally:
        await worker.aclose()
        await phone.aclose()
