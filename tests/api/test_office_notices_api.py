"""Notices over HTTP: 李四 of the province drafts a notice to the city unions with a receipt,
王五 reviews and publishes it, 张三 of Chengdu finds it in the inbox, opens it and answers; the
sender reads the figures, cannot urge those who already read, and recalls it. Every answer
matches the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.test_admin import sign_in
from tests.api.test_openapi import ADMIN_DOC, Contract
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp

ONE = "/admin/v1/notices/{notice_id}"
RECEIPT = {"fields": [{"key": "contact", "label": "联系人", "type": "text", "required": True}]}


@pytest.fixture
async def people(server, rt, db):
    """李四 (province super admin, publishes), 王五 (province cadre, publishes), 张三 (the Chengdu
    union's super admin, no permission for notices), each signed in."""
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                          ip="10.0.0.1", user_agent="test")).actor
    lisi = await rt.cadres.create_account(
        office_actor, username="lisi", display_name="李四", org_id=await org_id(db, "SC"),
        role="super_admin", duty="system", password=PASSWORD,
        permissions={"notice.publish", "account.manage"})
    zhangsan = await rt.cadres.create_account(
        office_actor, username="zhangsan", display_name="张三", org_id=await org_id(db, "SC-510100"),
        role="super_admin", duty="system", password=PASSWORD, permissions={"kpi.read"})
    browsers = {}
    for name, made in (("lisi", lisi), ("zhangsan", zhangsan)):
        browser, csrf = await sign_in(server, name, otp(made.totp_uri))
        browser.headers["X-CSRF-Token"] = csrf
        browsers[name] = browser
    made = await browsers["lisi"].post(f"{server}/admin/v1/cadres", json={
        "username": "wangwu", "display_name": "王五", "org_id": await org_id(db, "SC"), "role": "cadre",
        "duty": "business", "permissions": ["notice.publish"], "password": PASSWORD})
    assert made.status_code == 201, made.text
    totp = made.json()["totp_uri"]
    browsers["wangwu"], csrf = await sign_in(server, "wangwu", otp(totp) if totp else "")
    browsers["wangwu"].headers["X-CSRF-Token"] = csrf
    yield browsers
    for browser in browsers.values():
        await browser.aclose()


async def test_a_notice_from_draft_to_receipt_and_recall(server, rt, db, people) -> None:
    api = Contract(ADMIN_DOC)
    lisi, wangwu, zhangsan = people["lisi"], people["wangwu"], people["zhangsan"]
    base = f"{server}/admin/v1"
    menu = api.check("/admin/v1/notice-targets", "get", await lisi.get(f"{base}/notice-targets"))
    assert {"level": "city", "name": "市州总工会", "unions": 21} in menu["levels"]
    due = (rt.clock() + timedelta(days=2)).isoformat()
    body = {"title": "关于做好2026年春节慰问的通知", "body": "请各市州总工会做好慰问工作。",
            "targets": {"scope": "levels", "levels": ["city"]},
            "receipt": {"form": {"fields": [{"key": "x", "label": "X", "type": "colour"}]}, "due_at": due}}
    bad = await lisi.post(f"{base}/notices", json=body)
    assert api.check("/admin/v1/notices", "post", bad)["error"]["code"] == "invalid_form"
    refused = await zhangsan.post(f"{base}/notices", json=body | {"receipt": None})
    assert api.check("/admin/v1/notices", "post", refused)["error"]["code"] == "permission_missing"
    assert await db.fetchval("SELECT count(*) FROM notices") == 0

    # A publisher of notices (not of channels) attaches a file through the media library.
    pdf = await lisi.post(f"{base}/media/attachments?filename=慰问名单.pdf",
                          content=b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF")
    attachment = api.check("/admin/v1/media/attachments", "post", pdf)["media"]
    denied = await zhangsan.post(f"{base}/media/attachments?filename=x.pdf", content=b"%PDF-1.7\n%%EOF")
    assert api.check("/admin/v1/media/attachments", "post", denied)["error"]["code"] == "permission_missing"
    body = body | {"attachments": [attachment["id"]]}
    created = await lisi.post(f"{base}/notices", json=body | {"receipt": {"form": RECEIPT, "due_at": due}})
    notice = api.check("/admin/v1/notices", "post", created)["notice"]
    assert created.status_code == 201 and notice["status"] == "draft"
    nid = notice["id"]
    submitted = await lisi.post(f"{base}/notices/{nid}/submit")
    assert api.check(f"{ONE}/submit", "post", submitted)["notice"]["status"] == "reviewing"
    own = await lisi.post(f"{base}/notices/{nid}/review", json={"decision": "approve"})
    assert api.check(f"{ONE}/review", "post", own)["error"]["code"] == "own_notice"

    listed = api.check("/admin/v1/notices", "get", await wangwu.get(f"{base}/notices",
                                                                  params={"status": "reviewing"}))
    assert [n["id"] for n in listed["notices"]] == [nid]
    desk = api.check(ONE, "get", await wangwu.get(f"{base}/notices/{nid}"))
    review = desk["notice"]["manage"]["review"]
    assert review["can_review"] and review["task_id"]
    approved = await wangwu.post(f"{base}/notices/{nid}/review", json={
        "decision": "approve", "task_id": review["task_id"], "version": review["version"]})
    result = api.check(f"{ONE}/review", "post", approved)["result"]
    assert result["recipients"] == 1 and result["status"] == "closed"

    inbox = api.check("/admin/v1/me/notices", "get", await zhangsan.get(f"{base}/me/notices"))
    assert inbox["counts"] == {"total": 1, "unread": 1, "unanswered": 1} and inbox["notices"][0]["unread"]
    opened = api.check(ONE, "get", await zhangsan.get(f"{base}/notices/{nid}"))
    assert opened["notice"]["mine"]["read_at"] and opened["notice"]["receipt_form"] == RECEIPT | {
        "fields": [RECEIPT["fields"][0] | {"max_length": 200}]}
    empty = await zhangsan.post(f"{base}/notices/{nid}/receipt", json={"answers": {}})
    assert api.check(f"{ONE}/receipt", "post", empty)["error"]["code"] == "invalid_answer"
    answered = await zhangsan.post(f"{base}/notices/{nid}/receipt", json={"answers": {"contact": "张三"}})
    assert api.check(f"{ONE}/receipt", "post", answered)["notice"]["mine"]["receipt"] == {
        "contact": "张三"}

    stats = api.check(f"{ONE}/stats", "get", await lisi.get(f"{base}/notices/{nid}/stats"))
    assert stats["total"] == {"recipients": 1, "read": 1, "unread": 0, "answered": 1, "unanswered": 0}
    chengdu = stats["unions"][0]["org_id"]
    drill = await lisi.get(f"{base}/notices/{nid}/stats", params={"org_id": chengdu})
    assert api.check(f"{ONE}/stats", "get", drill)["unions"][0]["own"] is True
    names = await lisi.get(f"{base}/notices/{nid}/recipients", params={"state": "answered"})
    assert api.check(f"{ONE}/recipients", "get", names)["recipients"][0]["name"] == "张三"
    urged = await lisi.post(f"{base}/notices/{nid}/urge", json={"what": "unread"})
    assert api.check(f"{ONE}/urge", "post", urged)["error"]["code"] == "nothing_to_urge"

    other = await wangwu.post(f"{base}/notices/{nid}/recall", json={"reason": "内容有误"})
    assert api.check(f"{ONE}/recall", "post", other)["error"]["code"] == "not_author"
    recalled = await lisi.post(f"{base}/notices/{nid}/recall", json={"reason": "内容有误"})
    assert api.check(f"{ONE}/recall", "post", recalled)["notice"]["status"] == "recalled"
    seen = api.check(ONE, "get", await zhangsan.get(f"{base}/notices/{nid}"))
    assert seen["notice"]["body"] is None and seen["notice"]["recall_reason"] == "内容有误"
    edit = await lisi.put(f"{base}/notices/{nid}", json=body | {"receipt": None})
    assert api.check(ONE, "put", edit)["error"]["code"] == "not_draft"
