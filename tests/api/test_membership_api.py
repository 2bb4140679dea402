"""Membership over HTTP: a worker joins through the H5 pages' API, a cadre decides in
``/admin/v1``, the worker is told through WeChat (the outbox reaches the fake WeChat), and the
member card's QR code checks out in the console."""

from __future__ import annotations

import base64
from io import BytesIO

import pytest
import segno
from PIL import Image

from tests.api.test_admin import sign_in
from tests.api.test_identity import h5_sign_in
from tests.conftest import INDEX_KEY, PUBLIC_URL
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from tests.services.membership.test_membership import LI_ID, ZHANG_ID, join_form
from wxbackend.services.clock import unix_time
from wxbackend.services.membership import member_card
from wxbackend.services.membership.membership import card_key
from wxbackend.store.membership import orgs as org_store


@pytest.fixture
async def tianfu(db) -> int:
    row = await org_store.create_grassroots(db, parent_id=await org_id(db, "SC-510100"),
                                            name="成都天府软件有限公司工会", credit_code=None,
                                            employer_name="成都天府软件有限公司", region_code=None,
                                            founded_via_platform=False)
    return row["id"]


async def h5_worker(server, fake_wechat, openid: str, phone: str, rt):
    browser = await h5_sign_in(server, fake_wechat, openid)
    me = (await browser.get(f"{server}/h5/api/v1/me")).json()
    account_id = await rt.accounts.resolve_id(
        (await rt.accounts.resolve(kind="oa_openid", issuer=rt.settings.wechat.appid, subject=openid)).id)
    await rt.accounts.verify_phone(account_id, phone, "sms")
    return browser, {"X-CSRF-Token": me["csrf_token"]}


async def reviewer_console(server, rt, db):
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_browser, office_csrf = await sign_in(server, "office", otp(office.totp_uri))
    created = await office_browser.post(f"{server}/admin/v1/cadres",
                                        headers={"X-CSRF-Token": office_csrf}, json={
        "username": "wangwu", "display_name": "王五", "org_id": await org_id(db, "SC-510100"),
        "role": "super_admin", "duty": "system", "password": PASSWORD,
        "permissions": ["member.review", "org.manage"]})
    assert created.status_code == 201, created.text
    await office_browser.aclose()
    return await sign_in(server, "wangwu", otp(created.json()["totp_uri"]))


async def test_join_decide_and_notify_end_to_end(server, rt, db, fake_wechat, tianfu) -> None:
    zhang, zhang_csrf = await h5_worker(server, fake_wechat, "oZhang", "13800000001", rt)
    found = await zhang.get(f"{server}/h5/api/v1/unions", params={"q": "天府"})
    assert [u["id"] for u in found.json()["unions"]] == [tianfu]
    no_csrf = await zhang.post(f"{server}/h5/api/v1/membership/join", json=join_form(tianfu))
    assert no_csrf.status_code == 403
    wrong_check = ZHANG_ID[:-1] + ("1" if ZHANG_ID[-1] != "1" else "2")
    bad = await zhang.post(f"{server}/h5/api/v1/membership/join", headers=zhang_csrf,
                           json=join_form(tianfu, number=wrong_check))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "id_number_checksum"
    assert "校验位" in bad.json()["error"]["message"]
    assert await db.fetchval("SELECT count(*) FROM applications") == 0
    join = f"{server}/h5/api/v1/membership/join"
    filed = await zhang.post(join, headers=zhang_csrf, json=join_form(tianfu))
    assert filed.status_code == 201, filed.text
    application = filed.json()["application"]
    assert ZHANG_ID not in filed.text and application["status_label"] == "待审核"
    twice = await zhang.post(join, headers=zhang_csrf, json=join_form(tianfu))
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "application_pending"

    cadre, csrf = await reviewer_console(server, rt, db)
    queue = await cadre.get(f"{server}/admin/v1/applications", params={"status": "pending"})
    assert queue.status_code == 200 and [a["id"] for a in queue.json()["applications"]] == [application["id"]]
    assert ZHANG_ID not in queue.text          # masked for the reviewer too
    refused = await cadre.post(f"{server}/admin/v1/applications/{application['id']}/approve")
    assert refused.status_code == 403          # the console's CSRF token is required
    approved = await cadre.post(f"{server}/admin/v1/applications/{application['id']}/approve",
                                headers={"X-CSRF-Token": csrf})
    assert approved.status_code == 200 and approved.json()["application"]["status"] == "approved"

    assert await rt.outbox.run_once() == 1     # one pass of the worker that serve runs
    [told] = fake_wechat.delivered("/cgi-bin/message/custom/send")
    assert told["touser"] == "oZhang" and "入会申请已通过" in told["text"]["content"]

    overview = (await zhang.get(f"{server}/h5/api/v1/membership")).json()
    assert overview["member"]["member_no"] == approved.json()["application"]["member_no"]
    card = await zhang.get(f"{server}/h5/api/v1/membership/card.png")
    assert card.status_code == 200 and card.headers["Content-Type"] == "image/png"
    assert card.headers["Cache-Control"] == "no-store"
    await zhang.aclose()
    await cadre.aclose()


async def test_card_qr_is_checked_in_the_console(server, rt, db, fake_wechat, tianfu) -> None:
    zhang, zhang_csrf = await h5_worker(server, fake_wechat, "oZhang", "13800000001", rt)
    await zhang.post(f"{server}/h5/api/v1/membership/join", headers=zhang_csrf, json=join_form(tianfu))
    cadre, csrf = await reviewer_console(server, rt, db)
    application_id = await db.fetchval("SELECT id FROM applications")
    await cadre.post(f"{server}/admin/v1/applications/{application_id}/approve",
                     headers={"X-CSRF-Token": csrf})
    # the card's QR payload is the console's check page with the token after '#'
    png = (await zhang.get(f"{server}/h5/api/v1/membership/card.png")).content
    token = await _token_from_card(rt, png)
    checked = await cadre.post(f"{server}/admin/v1/cards/verify", headers={"X-CSRF-Token": csrf},
                               json={"token": token})
    assert checked.status_code == 200, checked.text
    assert checked.json()["card"]["valid"] is True and checked.json()["card"]["name"] == "张*"
    forged = await cadre.post(f"{server}/admin/v1/cards/verify", headers={"X-CSRF-Token": csrf},
                              json={"token": token[:-1] + ("A" if token[-1] != "A" else "B")})
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "card_invalid"
    anonymous = await zhang.post(f"{server}/admin/v1/cards/verify", json={"token": token})
    assert anonymous.status_code == 401
    await zhang.aclose()
    await cadre.aclose()


async def _token_from_card(rt, png: bytes) -> str:
    """The token the card's QR code carries. No QR decoder is installed, so: the token is
    determined by the member and the second it was issued; rebuild the QR of each candidate
    second and compare it module by module with the image."""
    image = Image.open(BytesIO(png)).convert("L")
    member_id = await rt.pool.fetchval("SELECT id FROM members")
    key = card_key(base64.b64decode(INDEX_KEY))
    for skew in range(120):
        token = member_card.issue_token(key, member_id, unix_time(rt.clock) - skew)
        payload = f"{PUBLIC_URL}/admin/card.html#{token}"
        place = member_card.qr_placement(payload)
        matrix = segno.make(payload, error="M", micro=False, boost_error=False)\
            .matrix_iter(scale=1, border=member_card.QR_BORDER)

        def dark(x: int, y: int, place=place) -> bool:
            return image.getpixel((place.left + (x + 0.5) * place.module_px,
                                   place.top + (y + 0.5) * place.module_px)) < 128
        if all(dark(x, y) == bool(bit) for y, row in enumerate(matrix) for x, bit in enumerate(row)):
            return token
    raise AssertionError("the card's QR code does not carry a token for this member")


async def test_outside_the_subtree_and_unknown_ids_are_404(server, rt, db, fake_wechat) -> None:
    dazhou = await org_store.create_grassroots(db, parent_id=await org_id(db, "SC-511700"),
                                               name="达州钢铁工会",
                                               credit_code=None, employer_name="达州钢铁", region_code=None,
                                               founded_via_platform=False)
    li, li_csrf = await h5_worker(server, fake_wechat, "oLi", "13900000002", rt)
    filed = await li.post(f"{server}/h5/api/v1/membership/join", headers=li_csrf,
                          json=join_form(dazhou["id"], name="李四", number=LI_ID))
    assert filed.status_code == 201
    cadre, csrf = await reviewer_console(server, rt, db)
    application_id = filed.json()["application"]["id"]
    for path in (f"/admin/v1/applications/{application_id}", "/admin/v1/applications/99999"):
        assert (await cadre.get(f"{server}{path}")).status_code == 404
    decided = await cadre.post(f"{server}/admin/v1/applications/{application_id}/reject",
                               headers={"X-CSRF-Token": csrf}, json={"reason": "不在本工会范围"})
    assert decided.status_code == 404
    assert await db.fetchval("SELECT status FROM applications") == "pending"
    await li.aclose()
    await cadre.aclose()


async def test_answers_say_nothing_of_anothers_membership(server, rt, db, fake_wechat, tianfu) -> None:
    from tests.services.membership.test_membership import roster_member

    await roster_member(rt, db, tianfu, "张三", ZHANG_ID, "13800000001")
    probe, csrf = await h5_worker(server, fake_wechat, "oProbe", "13900000009", rt)
    api = f"{server}/h5/api/v1/membership"
    # certification: the rostered phone differs / no such record — one answer
    misses = [await probe.post(f"{api}/certify", headers=csrf, json={"name": "张三", "id_number": number})
              for number in (ZHANG_ID, LI_ID)]
    assert [m.status_code for m in misses] == [400, 400] and misses[0].json() == misses[1].json()
    assert misses[0].json()["error"]["code"] == "certify_no_match"
    # joining with a member's ID number is accepted; the reviewer sees why it needs a look
    filed = await probe.post(f"{api}/join", headers=csrf, json=join_form(tianfu, name="某某"))
    assert filed.status_code == 201 and "roster_check" not in filed.json()["application"]
    cadre, _ = await reviewer_console(server, rt, db)
    seen = (await cadre.get(f"{server}/admin/v1/applications/{filed.json()['application']['id']}")).json()
    assert seen["application"]["roster_check"]["code"] == "already_member"
    await cadre.aclose()
    # filing and withdrawing is limited per day
    withdrawn = await probe.post(f"{api}/applications/{filed.json()['application']['id']}/withdraw",
                                 headers=csrf)
    assert withdrawn.status_code == 200
    for _ in range(rt.settings.membership.applications_per_account_day - 1):
        again = await probe.post(f"{api}/join", headers=csrf, json=join_form(tianfu, number=LI_ID))
        assert again.status_code == 201, again.text
        await probe.post(f"{api}/applications/{again.json()['application']['id']}/withdraw", headers=csrf)
    limited = await probe.post(f"{api}/join", headers=csrf, json=join_form(tianfu, number=LI_ID))
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "application_limit"
    assert 0 < int(limited.headers["Retry-After"]) <= 86_400
    await probe.aclose()
