"""Join, certify, transfer and found a union, and the cadres' decisions — on the real database."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from datetime import date, datetime

import pytest

from tests.conftest import INDEX_KEY, NEW_YEAR, make_settings
from tests.services.cadres.test_cadres import PASSWORD, UA, org_id, otp
from wxbackend.runtime import open_runtime
from wxbackend.services.clock import CHINA, unix_time
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from wxbackend.services.identity.accounts import WeChatIdentity
from wxbackend.services.membership import member_card
from wxbackend.services.membership.idnumbers import id_check_char, uscc_check_char
from wxbackend.services.membership.membership import MembershipService, card_key


def id_number(region: str = "510104", born: str = "19900307", seq: str = "123") -> str:
    head = region + born + seq
    return head + id_check_char(head)


ZHANG_ID = id_number(seq="131")     # odd 17th digit: male
LI_ID = id_number(born="19951120", seq="242")


def join_form(union_id: int, *, name: str = "张三", number: str = ZHANG_ID, **extra) -> dict:
    return {"union_id": union_id, "name": name, "id_number": number, "ethnicity": "汉族",
            "education": "本科", "political_status": "群众", "household_type": "农村",
            "migrant_worker": True, "employer": "成都天府软件有限公司", "job": "工程师",
            "privacy_version": "2026-11", **extra}


async def worker(rt, openid: str, phone: str | None = "13800000001") -> int:
    account = await rt.accounts.sign_in_wechat(WeChatIdentity("oa_openid", rt.settings.wechat.appid, openid))
    if phone:
        await rt.accounts.verify_phone(account.id, phone, "sms")
    return account.id


# --- 入会 ----------------------------------------------------------------------------------------
async def test_join_is_reviewed_and_creates_a_linked_member(rt, db, unions, reviewer, clock) -> None:
    clock.set(NEW_YEAR)   # already 2027 in China, still 2026 in UTC
    zhang = await worker(rt, "oZhang")
    application = await rt.membership.apply_join(zhang, join_form(unions["tianfu"]))
    assert application["status"] == "pending" and application["id_number"] == "5101**********" + ZHANG_ID[-4:]
    stored = await db.fetchrow("SELECT * FROM applications WHERE id = $1", application["id"])
    assert ZHANG_ID.encode() not in stored["id_number_enc"] and "138" not in json.dumps(dict(stored["form"]))
    assert stored["form"]["gender"] == 1 and stored["form"]["birth_date"] == "1990-03-07"

    queue = await rt.reviews.queue(reviewer, status="pending")
    assert [a["id"] for a in queue["applications"]] == [application["id"]]
    assert queue["applications"][0]["decidable"] and queue["counts"]["pending"] == 1

    decided = await rt.reviews.approve(reviewer, application["id"])
    assert decided["status"] == "approved" and decided["member_no"].startswith("SC2027")
    member = await db.fetchrow("SELECT * FROM members")
    assert (member["account_id"], member["source"], member["org_id"]) == (zhang, "platform", unions["tianfu"])
    assert member["joined_on"] == date(2027, 1, 1)
    assert rt.pii.decrypt(member["id_number_enc"], "members.id_number") == ZHANG_ID
    assert rt.pii.decrypt(member["phone_enc"], "members.phone") == "13800000001"
    change = await db.fetchrow("SELECT * FROM base_data_changes WHERE entity = 'member'")
    assert change["action"] == "joined" and ZHANG_ID not in json.dumps(dict(change["data"]))
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'application.approve'") == 1
    message = await db.fetchrow("SELECT kind, payload FROM outbox")
    assert message["kind"] == "custom" and message["payload"]["touser"] == "oZhang"
    assert "入会申请已通过" in message["payload"]["text"]["content"]
    overview = await rt.membership.overview(zhang)
    assert overview["member"]["member_no"] == decided["member_no"]
    assert overview["member"]["id_number"].startswith("5101**")
    assert overview["member"]["phone"] == "138****0001"
    with pytest.raises(Conflict) as again:
        await rt.reviews.approve(reviewer, application["id"])
    assert again.value.code == "application_decided"


async def test_bad_join_input_writes_nothing(rt, db, unions, clock) -> None:
    clock.set(NEW_YEAR)   # born on 1 January of the China year: not yet 16, whatever UTC says
    zhang = await worker(rt, "oZhang")
    bad = [({"id_number": ZHANG_ID[:-1] + ("0" if ZHANG_ID[-1] != "0" else "1")}, "id_number_checksum"),
           ({"id_number": id_number(born="19900230")}, "id_number_birth_date"),
           ({"id_number": id_number(born="20270101")}, "id_number_under_age"),
           ({"id_number": id_number(born="20991231")}, "id_number_birth_date"),
           ({"name": "Z"}, "name_invalid"), ({"ethnicity": "火星族"}, "form_invalid"),
           ({"union_id": unions["tianfu"] + 999}, "union_not_joinable"),
           ({"union_id": await org_id(db, "SC-510100")}, "union_not_joinable"),
           ({"privacy_version": "2020-01"}, "privacy_required"), ({"migrant_worker": "yes"}, "form_invalid")]
    for change, code in bad:
        with pytest.raises(InvalidInput) as failed:
            await rt.membership.apply_join(zhang, {**join_form(unions["tianfu"]), **change})
        assert failed.value.code == code, change
    no_phone = await worker(rt, "oNoPhone", phone=None)
    with pytest.raises(InvalidInput) as failed:
        await rt.membership.apply_join(no_phone, join_form(unions["tianfu"]))
    assert failed.value.code == "phone_required"
    assert await db.fetchval("SELECT count(*) FROM applications") == 0


async def test_one_pending_application_then_withdraw(rt, db, unions) -> None:
    zhang = await worker(rt, "oZhang")
    first = await rt.membership.apply_join(zhang, join_form(unions["tianfu"]))
    with pytest.raises(Conflict) as twice:
        await rt.membership.apply_join(zhang, join_form(unions["jinjiang"]))
    assert twice.value.code == "application_pending"
    li = await worker(rt, "oLi", "13900000002")
    with pytest.raises(NotFound):
        await rt.membership.withdraw(li, first["id"])
    withdrawn = await rt.membership.withdraw(zhang, first["id"])
    assert withdrawn["status"] == "withdrawn" and withdrawn["reviewed_at"] is None   # nobody reviewed it
    again = await rt.membership.apply_join(zhang, join_form(unions["jinjiang"]))
    assert again["union"]["id"] == unions["jinjiang"]
    assert await db.fetchval("SELECT count(*) FROM applications") == 2


async def test_reject_needs_a_reason_and_tells_the_worker(rt, db, unions, reviewer) -> None:
    zhang = await worker(rt, "oZhang")
    application = await rt.membership.apply_join(zhang, join_form(unions["tianfu"]))
    with pytest.raises(InvalidInput):
        await rt.reviews.reject(reviewer, application["id"], " ")
    decided = await rt.reviews.reject(reviewer, application["id"], "工作单位与本工会不符")
    assert decided["status"] == "rejected" and decided["reason"] == "工作单位与本工会不符"
    assert "工作单位与本工会不符" in (await db.fetchval("SELECT payload FROM outbox"))["text"]["content"]
    assert await db.fetchval("SELECT count(*) FROM members") == 0


async def test_cadres_decide_only_inside_their_subtree_and_with_permission(rt, db, unions, reviewer) -> None:
    li = await worker(rt, "oLi", "13900000002")
    outside = await rt.membership.apply_join(li, join_form(unions["dazhou"], name="李四", number=LI_ID))
    assert (await rt.reviews.queue(reviewer))["applications"] == []
    with pytest.raises(NotFound):
        await rt.reviews.approve(reviewer, outside["id"])
    with pytest.raises(NotFound):
        await rt.reviews.get(reviewer, outside["id"])
    clerk = await rt.cadres.create_account(
        reviewer, username="clerk", display_name="办事员", org_id=await org_id(db, "SC-510100"),
        role="cadre", duty="business", password=PASSWORD, permissions={"member.import"})
    clerk_actor = (await rt.cadres.login(username="clerk", password=PASSWORD, totp="", ip="10.0.0.3",
                                         user_agent=UA)).actor
    assert clerk.id == clerk_actor.id
    with pytest.raises(Forbidden):
        await rt.reviews.queue(clerk_actor)
    assert await db.fetchval("SELECT status FROM applications") == "pending"


async def test_overdue_applications_are_visible_and_counted(rt, db, unions, reviewer) -> None:
    zhang = await worker(rt, "oZhang")
    application = await rt.membership.apply_join(zhang, join_form(unions["tianfu"]))
    await db.execute("UPDATE applications SET due_at = now() - interval '1 day'")
    overdue = await rt.reviews.queue(reviewer, overdue=True)
    assert [a["id"] for a in overdue["applications"]] == [application["id"]]
    assert overdue["applications"][0]["overdue"] and overdue["counts"]["overdue"] == 1
    await rt.reviews.approve(reviewer, application["id"])
    counts = (await rt.reviews.queue(reviewer))["counts"]
    assert counts == {"pending": 0, "overdue": 0, "decided": 1, "decided_on_time": 0}


# --- 会员认证 ------------------------------------------------------------------------------------
async def roster_member(rt, db, union_id: int, name: str, number: str, phone: str | None) -> int:
    pii = rt.pii
    return await db.fetchval(
        """INSERT INTO members (org_id, member_no, name, id_number_enc, id_number_bidx, phone_enc,
                                phone_bidx, gender, birth_date, source, joined_on)
           VALUES ($1, next_member_no('2019-05-01'), $2, $3, $4, $5, $6, 1, '1990-03-07', 'roster',
                   '2019-05-01')
           RETURNING id""",
        union_id, name, pii.encrypt(number, "members.id_number"),
        pii.blind_index(number, "members.id_number"),
        pii.encrypt(phone, "members.phone") if phone else None,
        pii.blind_index(phone, "members.phone") if phone else None)


async def test_certification_links_a_roster_record(rt, db, unions) -> None:
    member_id = await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13800000001")
    zhang = await worker(rt, "oZhang")
    member = await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID.lower()}, "10.1.1.1")
    assert member["id"] == member_id and member["certified"] and member["union"]["id"] == unions["tianfu"]
    assert await db.fetchval("SELECT account_id FROM members") == zhang
    assert await db.fetchval("SELECT action FROM base_data_changes WHERE entity = 'member'") == "certified"
    # certifying again is harmless; another account cannot take the record
    again = await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.1.1.1")
    assert again["id"] == member_id
    li = await worker(rt, "oLi", "13900000002")
    with pytest.raises(InvalidInput) as taken:
        await rt.membership.certify(li, {"name": "张三", "id_number": ZHANG_ID}, "10.1.1.1")
    assert taken.value.code == "certify_no_match"


async def test_a_certified_record_is_not_taken_by_another_account(rt, db, unions) -> None:
    await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13800000001")
    zhang = await worker(rt, "oZhang")
    await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.1.1.1")
    # the same phone on another account (a second WeChat) still cannot take a linked record
    await db.execute("UPDATE members SET phone_bidx = $1", rt.pii.blind_index("13900000002", "members.phone"))
    li = await worker(rt, "oLi", "13900000002")
    with pytest.raises(InvalidInput) as taken:
        await rt.membership.certify(li, {"name": "张三", "id_number": ZHANG_ID}, "10.1.1.1")
    assert taken.value.code == "certify_no_match"
    assert await db.fetchval("SELECT account_id FROM members") == zhang


async def test_certification_misses_say_nothing_about_the_id_number(rt, db, unions) -> None:
    await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, None)
    li = await worker(rt, "oLi", "13900000002")
    with pytest.raises(InvalidInput) as by_name:
        await rt.membership.certify(li, {"name": "张四", "id_number": ZHANG_ID}, "10.1.1.2")
    with pytest.raises(InvalidInput) as unknown:
        await rt.membership.certify(li, {"name": "李四", "id_number": LI_ID}, "10.1.1.2")
    assert by_name.value.code == unknown.value.code == "certify_no_match"
    assert by_name.value.message == unknown.value.message
    assert await db.fetchval("SELECT count(*) FROM members WHERE account_id IS NOT NULL") == 0


async def test_certification_checks_the_rostered_phone(rt, db, unions) -> None:
    await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13700000009")
    zhang = await worker(rt, "oZhang")
    with pytest.raises(InvalidInput) as mismatch:
        await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.1.1.3")
    assert mismatch.value.code == "certify_no_match"
    assert await db.fetchval("SELECT account_id FROM members") is None


async def test_certification_attempts_are_limited(rt, db, unions) -> None:
    li = await worker(rt, "oLi", "13900000002")
    limit = rt.settings.membership.certify_per_account_day
    for i in range(limit):
        with pytest.raises(InvalidInput):
            await rt.membership.certify(li, {"name": "李四", "id_number": id_number(seq=f"{i:03d}")},
                                        "10.1.1.4")
    with pytest.raises(TooManyRequests) as limited:
        await rt.membership.certify(li, {"name": "李四", "id_number": LI_ID}, "10.1.1.4")
    assert limited.value.code == "certify_limit"
    assert 0 < int(limited.value.headers["Retry-After"]) <= 86_400     # what is left of the day
    # the same network address is limited across accounts too
    per_ip = rt.settings.membership.certify_per_ip_hour
    for n in range(per_ip - limit - 1):
        other = await worker(rt, f"oIp{n}", f"1350000{n:04d}")
        with pytest.raises(InvalidInput):
            await rt.membership.certify(other, {"name": "王五", "id_number": LI_ID}, "10.1.1.4")
    late = await worker(rt, "oLate", "13600000000")
    with pytest.raises(TooManyRequests):
        await rt.membership.certify(late, {"name": "王五", "id_number": LI_ID}, "10.1.1.4")



async def test_a_limited_client_waits_until_its_china_time_window_ends(rt, db, unions) -> None:
    now = [datetime(rt.clock().year + 1, 3, 5, 10, 50, tzinfo=CHINA)]   # 10:50 Beijing time
    limits = dataclasses.replace(rt.settings.membership, certify_per_ip_hour=2, certify_per_account_day=1)
    service = MembershipService(rt.pool, rt.redis, rt.pii, limits, accounts=rt.accounts, card_key=b"k" * 32,
                                card_url="https://example.invalid/card.html", now=lambda: now[0])
    li, wang = await worker(rt, "oLi", "13900000002"), await worker(rt, "oWang", "13900000003")
    zhao = await worker(rt, "oZhao", "13900000004")
    attempt = {"name": "李四", "id_number": LI_ID}
    with pytest.raises(InvalidInput):
        await service.certify(li, attempt, "10.1.1.7")       # the hour's first attempt at 10:50
    now[0] = now[0].replace(minute=55)
    with pytest.raises(InvalidInput):
        await service.certify(wang, attempt, "10.1.1.7")
    with pytest.raises(TooManyRequests) as per_ip:
        await service.certify(wang, attempt, "10.1.1.7")
    assert per_ip.value.headers["Retry-After"] == "300"            # the hour ends at 11:00
    hour_ends = now[0].replace(hour=11, minute=0).timestamp()     # the counter expires with its window
    assert abs(await rt.redis.ttl(f"certify:ip:10.1.1.7:{now[0]:%Y%m%d%H}") - (hour_ends - time.time())) <= 2
    with pytest.raises(TooManyRequests) as per_account:            # li's second today, another network
        await service.certify(li, attempt, "10.1.1.8")
    assert per_account.value.headers["Retry-After"] == str(13 * 3600 + 5 * 60)   # midnight, Beijing
    now[0] = now[0].replace(hour=11, minute=0)
    with pytest.raises(InvalidInput):                               # a new hour: the network may try again
        await service.certify(zhao, attempt, "10.1.1.7")


async def test_a_dispute_is_decided_by_the_union(rt, db, unions, reviewer) -> None:
    member_id = await roster_member(rt, db, unions["tianfu"], "张叁", ZHANG_ID, "13700000009")
    zhang = await worker(rt, "oZhang")
    with pytest.raises(InvalidInput):
        await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.1.1.5")
    dispute = await rt.membership.dispute(zhang, {"union_id": unions["tianfu"], "name": "张三",
                                                  "id_number": ZHANG_ID, "note": "名册姓名录入有误",
                                                  "privacy_version": "2026-11"})
    assert dispute["kind"] == "certify"
    await rt.reviews.approve(reviewer, dispute["id"])
    row = await db.fetchrow("SELECT account_id, name FROM members WHERE id = $1", member_id)
    assert row["account_id"] == zhang and row["name"] == "张三"


# --- 会员关系接转 -------------------------------------------------------------------------------
async def test_transfer_moves_the_record_once_approved(rt, db, unions, reviewer) -> None:
    member_id = await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13800000001")
    zhang = await worker(rt, "oZhang")
    await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.1.1.6")
    with pytest.raises(InvalidInput):
        await rt.membership.request_transfer(zhang, {"union_id": unions["tianfu"], "reason": "调动"})
    transfer = await rt.membership.request_transfer(zhang, {"union_id": unions["jinjiang"],
                                                             "reason": "调动到锦江宾馆工作"})
    assert transfer["from_union"]["id"] == unions["tianfu"]
    await rt.reviews.approve(reviewer, transfer["id"])
    assert await db.fetchval("SELECT org_id FROM members WHERE id = $1", member_id) == unions["jinjiang"]
    change = await db.fetchrow("SELECT data FROM base_data_changes WHERE action = 'transferred'")
    moved = (change["data"]["from_org_id"], change["data"]["to_org_id"])
    assert moved == (unions["tianfu"], unions["jinjiang"])
    stranger = await worker(rt, "oLi", "13900000002")
    with pytest.raises(Forbidden):
        await rt.membership.request_transfer(stranger, {"union_id": unions["jinjiang"], "reason": "调动工作"})


# --- 建会 ----------------------------------------------------------------------------------------
def credit_code(head: str = "91510104MA6CXKQ41") -> str:
    return head + uscc_check_char(head)


async def test_founding_adds_a_union_marked_as_from_the_platform(rt, db, reviewer) -> None:
    zhang = await worker(rt, "oZhang")
    body = {"union_name": "成都锦城科技有限公司工会", "credit_code": credit_code(),
            "employer_name": "成都锦城科技有限公司", "region_code": "510104", "organiser_name": "张三",
            "headcount": 30, "upper_union_id": await org_id(db, "SC-510100"), "privacy_version": "2026-11"}
    last = body["credit_code"][-1]
    bad_code = {**body, "credit_code": body["credit_code"][:-1] + ("0" if last != "0" else "1")}
    with pytest.raises(InvalidInput) as failed:
        await rt.membership.apply_found(zhang, bad_code)
    assert failed.value.code == "credit_code_checksum"
    with pytest.raises(InvalidInput) as wrong_upper:     # 达州 does not approve a union in 成都
        await rt.membership.apply_found(zhang, {**body, "upper_union_id": await org_id(db, "SC-511700")})
    assert wrong_upper.value.code == "upper_union_invalid"
    application = await rt.membership.apply_found(zhang, body)
    assert application["form"]["form_of_union"] == "工会委员会"
    other = await worker(rt, "oLi", "13900000002")
    with pytest.raises(Conflict):
        await rt.membership.apply_found(other, body)
    decided = await rt.reviews.approve(reviewer, application["id"])
    union = await db.fetchrow("SELECT * FROM orgs WHERE id = $1", decided["result_union_id"])
    assert union["founded_via_platform"] and union["kind"] == "grassroots"
    assert union["credit_code"] == body["credit_code"] and union["parent_id"] == await org_id(db, "SC-510100")
    assert str(union["path"]).endswith(f".{union['id']}")
    found = await rt.membership.search_unions(credit_code=body["credit_code"])
    assert [u["id"] for u in found] == [union["id"]]
    with pytest.raises(Conflict):
        await rt.membership.apply_found(other, body)
    assert await db.fetchval("SELECT count(*) FROM base_data_changes WHERE entity = 'org'") == 1


async def test_search_finds_unions_by_name_employer_or_region(rt, db, unions) -> None:
    by_name = await rt.membership.search_unions(text="锦江")
    assert [u["name"] for u in by_name] == ["锦江宾馆工会"]
    assert by_name[0]["parent_name"] == "成都市总工会"
    await db.execute("UPDATE orgs SET region_code = '511702' WHERE id = $1", unions["dazhou"])
    by_city = await rt.membership.search_unions(region_code="511700")
    assert [u["id"] for u in by_city] == [unions["dazhou"]]
    with pytest.raises(InvalidInput):
        await rt.membership.search_unions()
    assert await rt.membership.search_unions(text="%%") == []          # wildcards match literally
    assert await rt.membership.search_unions(text="宾_") == []


async def test_upper_unions_of_a_region(rt, db) -> None:
    upper = await rt.membership.upper_unions("510104")
    assert upper[0]["name"] == "成都市总工会"
    assert {u["kind"] for u in upper[1:]} == {"industry", "industry_holder"}
    assert "达州市总工会" not in {u["name"] for u in upper}
    with pytest.raises(InvalidInput):
        await rt.membership.upper_unions("110101")


async def test_card_verification_is_audited_and_masks_the_name(rt, db, unions, reviewer) -> None:
    member_id = await roster_member(rt, db, unions["tianfu"], "张三丰", ZHANG_ID, "13800000001")
    zhang = await worker(rt, "oZhang")
    await rt.membership.certify(zhang, {"name": "张三丰", "id_number": ZHANG_ID}, "10.1.1.7")
    png = await rt.membership.member_card(zhang)
    assert png.startswith(b"\x89PNG")
    token = member_card.issue_token(card_key(base64.b64decode(INDEX_KEY)), member_id, unix_time(rt.clock))
    card = await rt.reviews.verify_card(reviewer, token)
    assert card["valid"] and card["name"] == "张**" and card["union"]["id"] == unions["tianfu"]
    count, breaks = await rt.audit.verify(db)
    assert breaks == []
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'card.verify'") == 1
    with pytest.raises(InvalidInput):
        await rt.reviews.verify_card(reviewer, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert count >= 1


async def test_a_configured_template_message_carries_the_decision(db, unions, backing, fake_wechat) -> None:
    settings = make_settings(fake_wechat.base_url, membership={"notify_template_id": "TPL-review-result"})
    async with open_runtime(settings, backing.dsn, backing.redis_url) as rt:
        await rt.redis.flushdb()
        zhang = await worker(rt, "oZhang")
        application = await rt.membership.apply_join(zhang, join_form(unions["tianfu"]))
        office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
        actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                       ip="10.0.0.1", user_agent=UA)).actor
        long_reason = "申请表中的工作单位与本工会所在单位不一致，请核实后重新申请"
        await rt.reviews.reject(actor, application["id"], long_reason)
        assert await rt.outbox.run_once() == 1
    [sent] = fake_wechat.delivered("/cgi-bin/message/template/send")
    assert sent["template_id"] == "TPL-review-result" and sent["touser"] == "oZhang"
    assert sent["client_msg_id"] == f"application-{application['id']}"
    assert sent["data"]["thing1"]["value"] == "入会申请" and sent["data"]["phrase2"]["value"] == "未通过"
    assert sent["data"]["thing4"]["value"] == long_reason[:20]      # WeChat's 20-character limit
    assert sent["url"].endswith("/h5/membership.html")


async def test_concurrent_certifications_link_one_record_per_account(rt, db, unions) -> None:
    import asyncio

    await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13800000001")
    await roster_member(rt, db, unions["jinjiang"], "张三", id_number(seq="351"), "13800000001")
    zhang = await worker(rt, "oZhang")
    results = await asyncio.gather(
        rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.3.3.3"),
        rt.membership.certify(zhang, {"name": "张三", "id_number": id_number(seq="351")}, "10.3.3.3"),
        return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "dict"]
    assert await db.fetchval("SELECT count(*) FROM members WHERE account_id = $1", zhang) == 1


async def test_consent_given_with_an_application_completes_registration(rt, db, unions) -> None:
    zhang = await worker(rt, "oZhang")
    await rt.accounts.set_region(zhang, "510104")
    assert (await rt.accounts.get_account(zhang)).registered is False    # no privacy consent yet
    await rt.membership.apply_join(zhang, join_form(unions["tianfu"]))
    account = await rt.accounts.get_account(zhang)
    assert account.registered and account.privacy_version == "2026-11"
    assert await db.fetchval("SELECT action FROM base_data_changes WHERE entity = 'registered_user' "
                             "ORDER BY id DESC LIMIT 1") == "registered"
    accepted_at = await db.fetchval("SELECT privacy_accepted_at FROM accounts WHERE id = $1", zhang)
    withdrawn = await db.fetchval("SELECT id FROM applications WHERE account_id = $1", zhang)
    await rt.membership.withdraw(zhang, withdrawn)
    await rt.membership.apply_join(zhang, join_form(unions["jinjiang"]))    # consent already recorded
    assert await db.fetchval("SELECT privacy_accepted_at FROM accounts WHERE id = $1", zhang) == accepted_at
    with pytest.raises(InvalidInput) as failed:                             # but still asked for
        await rt.membership.apply_join(zhang, {**join_form(unions["jinjiang"]), "privacy_version": None})
    assert failed.value.code == "privacy_required"
