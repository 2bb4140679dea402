"""Casework over HTTP: a worker files an appeal with a photo from the Mini Program, the union's
desk finds it in 我的待办, accepts and replies, the worker rates it; two cadres acting on the
same task at once get one 200 and one 409; every answer matches its OpenAPI document."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.test_activities_api import worker_client
from tests.api.test_admin import sign_in
from tests.api.test_channels_api import declare_upload
from tests.api.test_openapi import ADMIN_DOC, MP_DOC, Contract
from tests.services.activities.conftest import make_workers
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from tests.services.casework.test_appeals import STORY, phone_photo


@pytest.fixture
async def desks(server, rt, db):
    """Two signed-in cadres of the Chengdu union's appeal desk."""
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                          ip="10.0.0.1", user_agent="test")).actor
    chengdu = await org_id(db, "SC-510100")
    head = await rt.cadres.create_account(
        office_actor, username="zhangban", display_name="张办", org_id=chengdu, role="super_admin",
        duty="system", password=PASSWORD, permissions={"appeal.handle", "kpi.read", "account.manage"})
    desk, csrf = await sign_in(server, "zhangban", otp(head.totp_uri))
    desk.headers["X-CSRF-Token"] = csrf
    made = await desk.post(f"{server}/admin/v1/cadres", json={
        "username": "liban", "display_name": "李办", "org_id": chengdu, "role": "cadre",
        "duty": "business", "permissions": ["appeal.handle"], "password": PASSWORD})
    assert made.status_code == 201, made.text
    totp = made.json()["totp_uri"]
    other, csrf = await sign_in(server, "liban", otp(totp) if totp else "")
    other.headers["X-CSRF-Token"] = csrf
    browsers = [desk, other]
    yield browsers
    for browser in browsers:
        await browser.aclose()


async def test_an_appeal_from_the_mini_program_to_a_rated_reply(server, rt, db, desks) -> None:
    admin, mp = Contract(ADMIN_DOC), Contract(MP_DOC)
    desk, other = desks
    [worker] = await make_workers(db, 1, None, pii=rt.pii)
    phone = await worker_client(rt, worker)
    chengdu = await org_id(db, "SC-510100")
    try:
        listing = mp.check("/mp/v1/appeals", "get", await phone.get(f"{server}/mp/v1/appeals"))
        assert listing["appeals"] == []
        assert {c["name"] for c in listing["categories"]} >= {"法律援助", "意见建议"}
        upload = await phone.post(f"{server}/mp/v1/appeal-files",
                                  params={"kind": "image", "filename": "欠条.jpg"}, content=phone_photo())
        photo = mp.check("/mp/v1/appeal-files", "post", upload)["file"]
        fake = await phone.post(f"{server}/mp/v1/appeal-files", params={"kind": "image"},
                                content=b"<svg xmlns='http://www.w3.org/2000/svg'/>")
        assert mp.check("/mp/v1/appeal-files", "post", fake)["error"]["code"] == "image_format"
        # Declared over the limit: answered from the Content-Length, before a byte of the body.
        status, answer = await declare_upload(server, "/mp/v1/appeal-files?kind=document", (20 << 20) + 1,
                                              {"Authorization": phone.headers["Authorization"]})
        assert status == b"HTTP/1.1 413 Request Entity Too Large"
        assert answer["error"]["code"] == "upload_too_large"
        anonymous = await phone.post(f"{server}/mp/v1/appeals", json={
            "category": "法律援助", "org_id": chengdu, "description": STORY, "anonymous": True})
        assert mp.check("/mp/v1/appeals", "post", anonymous)["error"]["code"] == "anonymous_not_allowed"
        filed = await phone.post(f"{server}/mp/v1/appeals", json={
            "category": "法律援助", "org_id": chengdu, "description": STORY, "files": [photo["id"]]})
        appeal = mp.check("/mp/v1/appeals", "post", filed)["appeal"]
        assert filed.status_code == 201 and appeal["status_name"] == "待受理"
        item = appeal["id"]

        todo = admin.check("/admin/v1/casework/todo", "get",
                           await desk.get(f"{server}/admin/v1/casework/todo"))
        [task] = todo["tasks"]
        assert task["item_id"] == item and task["step"] == "登记受理" and todo["counts"]["total"] == 1
        page = admin.check("/admin/v1/appeals/{item_id}", "get",
                           await desk.get(f"{server}/admin/v1/appeals/{item}"))
        assert page["item"]["appeal"]["description"] == STORY
        file = await desk.get(f"{server}/admin/v1/appeal-files/{page['item']['appeal']['files'][0]['id']}")
        assert file.status_code == 200 and file.headers["content-type"] == "image/jpeg"
        assert file.headers["cache-control"] == "private, no-store"

        # Both desks accept at the same moment: one wins, the other is told it moved on.
        decision = {"task_id": task["task_id"], "version": task["version"], "accept": True}
        url = f"{server}/admin/v1/appeals/{item}/decision"
        answers = await asyncio.gather(desk.post(url, json=decision), other.post(url, json=decision))
        assert sorted(r.status_code for r in answers) == [200, 409]
        for answer in answers:
            admin.check("/admin/v1/appeals/{item_id}/decision", "post", answer)
        loser = next(r for r in answers if r.status_code == 409)
        assert loser.json()["error"]["code"] == "item_moved"

        listed = await desk.get(f"{server}/admin/v1/casework/todo", params={"module": "appeal"})
        [handle] = admin.check("/admin/v1/casework/todo", "get", listed)["tasks"]
        short = await desk.post(f"{server}/admin/v1/appeals/{item}/reply",
                                json={"task_id": handle["task_id"], "reply": "已办"})
        assert admin.check("/admin/v1/appeals/{item_id}/reply", "post", short)["error"]["code"] \
            == "appeal_invalid"
        replied = await desk.post(f"{server}/admin/v1/appeals/{item}/reply",
                                  json={"task_id": handle["task_id"], "reply": "已协调公司补发拖欠工资。"})
        result = admin.check("/admin/v1/appeals/{item_id}/reply", "post", replied)["result"]
        assert result["status"] == "closed"

        rated = await phone.post(f"{server}/mp/v1/appeals/{item}/rating", json={"rating": "satisfied"})
        assert mp.check("/mp/v1/appeals/{item_id}/rating", "post", rated)["appeal"]["rating"] == "satisfied"
        again = await phone.post(f"{server}/mp/v1/appeals/{item}/rating", json={"rating": "satisfied"})
        assert mp.check("/mp/v1/appeals/{item_id}/rating", "post", again)["error"]["code"] == "cannot_rate"
        mine = mp.check("/mp/v1/appeals/{item_id}", "get", await phone.get(f"{server}/mp/v1/appeals/{item}"))
        assert mine["appeal"]["reply"].startswith("已协调")

        timeline = admin.check("/admin/v1/casework/items/{item_id}", "get",
                               await desk.get(f"{server}/admin/v1/casework/items/{item}"))["item"]["timeline"]
        assert [e["name"] for e in timeline][-4:] == ["答复", "通过", "办结", "评价"]
        period = f"{rt.clock():%Y}"
        rates = admin.check("/admin/v1/casework/rates", "get",
                            await desk.get(f"{server}/admin/v1/casework/rates", params={"period": period}))
        assert rates["rates"]["total"]["all"]["satisfaction_rate"] == 1.0
        bad = await desk.get(f"{server}/admin/v1/casework/rates", params={"period": "2027-13"})
        assert admin.check("/admin/v1/casework/rates", "get", bad)["error"]["code"] == "invalid_period"
    finally:
        await phone.aclose()


async def test_another_workers_appeal_and_a_cadre_elsewhere_see_nothing(server, rt, db, desks) -> None:
    admin, mp = Contract(ADMIN_DOC), Contract(MP_DOC)
    owner, stranger = await make_workers(db, 2, None, pii=rt.pii)
    clients = [await worker_client(rt, a) for a in (owner, stranger)]
    try:
        filed = await clients[0].post(f"{server}/mp/v1/appeals", json={
            "category": "咨询", "org_id": await org_id(db, "SC-511700"), "description": STORY})
        item = mp.check("/mp/v1/appeals", "post", filed)["appeal"]["id"]
        peek = await clients[1].get(f"{server}/mp/v1/appeals/{item}")
        assert mp.check("/mp/v1/appeals/{item_id}", "get", peek)["error"]["code"] == "appeal_not_found"
        # Filed with Dazhou: the Chengdu desk can neither list nor open it.
        assert (await desks[0].get(f"{server}/admin/v1/casework/todo")).json()["tasks"] == []
        page = await desks[0].get(f"{server}/admin/v1/appeals/{item}")
        assert admin.check("/admin/v1/appeals/{item_id}", "get", page)["error"]["code"] == "item_not_found"
        act = await desks[0].post(f"{server}/admin/v1/casework/items/{item}/actions", json={"action": "urge"})
        assert admin.check("/admin/v1/casework/items/{item_id}/actions", "post", act).get("error")
        assert act.status_code == 403
    finally:
        for client in clients:
            await client.aclose()
