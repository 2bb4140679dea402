"""Meetings over HTTP: the organiser books a room (a second booking of the slot is a 409 naming
the first), invites a colleague who answers in the console and binds their WeChat; at the venue
the colleague scans the rotating code in WeChat and is signed in once; the organiser files the
minutes with an attachment and an action item; an external meeting is registered. Every answer
matches the OpenAPI document."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.api.test_admin import sign_in
from tests.api.test_openapi import ADMIN_DOC, Contract
from tests.services.activities.conftest import make_workers
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
async def browsers(server, rt, db):
    """The Chengdu union's meeting organiser and a colleague, both signed in to the console."""
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                          ip="10.0.0.1", user_agent="test")).actor
    chengdu = await org_id(db, "SC-510100")
    head = await rt.cadres.create_account(
        office_actor, username="huiwu", display_name="会务", org_id=chengdu, role="super_admin",
        duty="system", password=PASSWORD, permissions={"meeting.manage", "account.manage"})
    organiser, csrf = await sign_in(server, "huiwu", otp(head.totp_uri))
    organiser.headers["X-CSRF-Token"] = csrf
    made = await organiser.post(f"{server}/admin/v1/cadres", json={
        "username": "liban", "display_name": "李办", "org_id": chengdu, "role": "cadre",
        "duty": "business", "permissions": [], "password": PASSWORD})
    assert made.status_code == 201, made.text
    totp = made.json()["totp_uri"]
    colleague, csrf = await sign_in(server, "liban", otp(totp) if totp else "")
    colleague.headers["X-CSRF-Token"] = csrf
    yield organiser, colleague, made.json()["id"]
    for browser in (organiser, colleague):
        await browser.aclose()


async def phone_of(rt, db) -> httpx.AsyncClient:
    """A worker account signed in on the H5 pages through the Official Account."""
    [account] = await make_workers(db, 1, None)
    await db.execute("""INSERT INTO account_identities (account_id, kind, issuer, subject)
                        VALUES ($1, 'oa_openid', $2, 'o-liban')""", account, rt.settings.wechat.appid)
    token = await rt.login.h5_sessions.create(account, {"csrf": "phone-csrf"})
    return httpx.AsyncClient(trust_env=False, timeout=10, cookies={"wx_h5": token},
                             headers={"X-CSRF-Token": "phone-csrf"})


async def test_a_meeting_from_booking_to_minutes(server, rt, db, clock, browsers) -> None:
    admin = Contract(ADMIN_DOC)
    organiser, colleague, colleague_id = browsers
    now = rt.clock()
    start, end = now + timedelta(minutes=10), now + timedelta(hours=2)
    made = await organiser.post(f"{server}/admin/v1/meeting-rooms",
                                json={"name": "第一会议室", "capacity": 20, "place": "三楼"})
    room = admin.check("/admin/v1/meeting-rooms", "post", made)["room"]
    body = {"title": "周例会", "room_id": room["id"], "starts_at": start.isoformat(),
            "ends_at": end.isoformat(), "invitees": [colleague_id]}
    created = await organiser.post(f"{server}/admin/v1/meetings", json=body)
    meeting = admin.check("/admin/v1/meetings", "post", created)["meeting"]
    assert created.status_code == 201 and meeting["place"] == "三楼 第一会议室"
    clash = await organiser.post(f"{server}/admin/v1/meetings", json={**body, "title": "专题会"})
    refused = admin.check("/admin/v1/meetings", "post", clash)["error"]
    assert clash.status_code == 409 and refused["code"] == "room_booked" and "周例会" in refused["message"]
    assert await db.fetchval("SELECT count(*) FROM meetings") == 1
    listed = admin.check("/admin/v1/meeting-bookings", "get",
                         await organiser.get(f"{server}/admin/v1/meeting-bookings"))
    assert [b["title"] for b in listed["bookings"]] == ["周例会"]

    mine = admin.check("/admin/v1/meeting-invitations", "get",
                       await colleague.get(f"{server}/admin/v1/meeting-invitations"))
    assert [(m["id"], m["answer"]) for m in mine["meetings"]] == [(meeting["id"], "pending")]
    answered = await colleague.post(f"{server}/admin/v1/meetings/{meeting['id']}/answer",
                                    json={"answer": "attend"})
    answer = admin.check("/admin/v1/meetings/{meeting_id}/answer", "post", answered)["answer"]
    assert answer["answer"] == "attend"
    # The colleague binds their WeChat in the console, then scans the venue's code with it.
    bind = (await colleague.post(f"{server}/admin/v1/me/wechat")).json()
    phone = await phone_of(rt, db)
    try:
        bound = await phone.post(f"{server}/h5/api/v1/cadre-binding",
                                 json={"token": bind["url"].split("t=")[1]})
        assert bound.status_code == 200, bound.text
        shown = admin.check("/admin/v1/meetings/{meeting_id}/venue-code", "get",
                            await organiser.get(f"{server}/admin/v1/meetings/{meeting['id']}/venue-code"))
        image = await organiser.get(f"{server}/admin/v1/meetings/{meeting['id']}/venue-code.png")
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
        scan = {"meeting_id": meeting["id"], "code": shown["code"]}
        signed = await phone.post(f"{server}/h5/api/v1/meeting-signins", json=scan)
        assert signed.status_code == 200 and signed.json()["signin"]["late"] is False
        again = await phone.post(f"{server}/h5/api/v1/meeting-signins", json=scan)
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_signed"
        forged = await phone.post(f"{server}/h5/api/v1/meeting-signins", json={**scan, "code": "x" * 38})
        assert forged.status_code == 400 and forged.json()["error"]["code"] == "meeting_code_invalid"
    finally:
        await phone.aclose()

    clock.advance(timedelta(minutes=15))
    upload = await organiser.post(f"{server}/admin/v1/meeting-files", params={"filename": "纪要附件.pdf"},
                                  content=PDF)
    file = admin.check("/admin/v1/meeting-files", "post", upload)["file"]
    detail = admin.check("/admin/v1/meetings/{meeting_id}", "get",
                         await organiser.get(f"{server}/admin/v1/meetings/{meeting['id']}"))["meeting"]
    assert detail["attendance"]["present"] == 1 and detail["attendance"]["rate"] == 1.0
    deadline = (rt.clock() + timedelta(days=10)).date().isoformat()
    minutes = {"task_id": detail["task_id"], "version": detail["version"], "files": [file["id"]],
               "minutes": "会议听取了各部门工作汇报，研究部署下阶段工作。",
               "actions": [{"what": "整理会议材料归档", "cadre_id": colleague_id}]}
    missing = await organiser.post(f"{server}/admin/v1/meetings/{meeting['id']}/minutes", json=minutes)
    assert admin.check("/admin/v1/meetings/{meeting_id}/minutes", "post", missing)["error"]["code"] \
        == "action_deadline_required"
    minutes["actions"][0]["deadline"] = deadline
    filed = await organiser.post(f"{server}/admin/v1/meetings/{meeting['id']}/minutes", json=minutes)
    closed = admin.check("/admin/v1/meetings/{meeting_id}/minutes", "post", filed)["meeting"]
    assert closed["status"] == "closed" and [f["filename"] for f in closed["files"]] == ["纪要附件.pdf"]
    assert closed["actions"][0]["cadre_name"] == "李办"
    download = await organiser.get(f"{server}/admin/v1/meeting-files/{file['id']}")
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["cache-control"] == "private, no-store"
    todo = (await colleague.get(f"{server}/admin/v1/casework/todo")).json()["tasks"]
    assert [t["module"] for t in todo] == ["meeting_action"]


async def test_an_external_meeting_is_registered_and_handled(server, rt, browsers) -> None:
    admin = Contract(ADMIN_DOC)
    organiser, _, colleague_id = browsers
    now = rt.clock()
    registered = await organiser.post(f"{server}/admin/v1/external-meetings", json={
        "title": "全总网上工作平台座谈会", "caller": "中华全国总工会", "place": "北京",
        "starts_at": (now + timedelta(days=3)).isoformat(),
        "ends_at": (now + timedelta(days=3, hours=3)).isoformat()})
    meeting = admin.check("/admin/v1/external-meetings", "post", registered)["meeting"]
    assert registered.status_code == 201 and meeting["kind"] == "external"
    url = f"{server}/admin/v1/external-meetings/{meeting['id']}/steps"
    wrong = await organiser.post(url, json={"step": "assign", "task_id": meeting["task_id"],
                                            "attendees": [colleague_id]})
    assert admin.check("/admin/v1/external-meetings/{meeting_id}/steps", "post", wrong)["error"]["code"] \
        == "not_at_step"
    done = await organiser.post(url, json={"step": "instruct", "task_id": meeting["task_id"],
                                           "leader": "王主席", "instruction": "请李办参会"})
    after = admin.check("/admin/v1/external-meetings/{meeting_id}/steps", "post", done)["meeting"]
    assert after["instruction"] == "请李办参会" and after["task_id"] != meeting["task_id"]
    listed = admin.check("/admin/v1/meetings", "get", await organiser.get(
        f"{server}/admin/v1/meetings", params={"kind": "external"}))
    assert [m["title"] for m in listed["meetings"]] == ["全总网上工作平台座谈会"]
