"""What a worker's answers may not tell: whether somebody else's name or ID number is on a
roster. Every unsuccessful certification is answered alike, a join with a member's ID number is
accepted and flagged for the reviewer, filings are limited per day, and a roster record without
a phone is certified only once the union confirms."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from tests.services.membership.test_membership import (
    LI_ID,
    ZHANG_ID,
    id_number,
    join_form,
    roster_member,
    worker,
)
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Conflict, InvalidInput, TooManyRequests
from wxbackend.services.membership.membership import NO_MATCH_MESSAGE, MembershipService

WANG_ID = id_number(born="19880808", seq="353")
ZHAO_ID = id_number(born="19920202", seq="464")


def service(rt, now=None, **settings) -> MembershipService:
    """The runtime's membership service with other [membership] settings (and clock)."""
    extra = {"now": now} if now else {}
    return MembershipService(rt.pool, rt.redis, rt.pii,
                             dataclasses.replace(rt.settings.membership, **settings),
                             accounts=rt.accounts, card_key=b"k" * 32,
                             card_url="https://example.invalid/card.html", **extra)


def dispute_form(union_id: int, name: str, number: str) -> dict:
    return {"union_id": union_id, "name": name, "id_number": number, "note": "名册信息有误",
            "privacy_version": "2026-11"}


async def test_every_unsuccessful_certification_gets_the_same_answer(rt, db, unions) -> None:
    await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13700000009")
    linked = await roster_member(rt, db, unions["tianfu"], "李四", LI_ID, "13900000004")
    phoneless = await roster_member(rt, db, unions["jinjiang"], "王五", WANG_ID, None)
    li = await worker(rt, "oLi", "13900000004")
    await rt.membership.certify(li, {"name": "李四", "id_number": LI_ID}, "10.2.0.1")
    probe = await worker(rt, "oProbe", "13900000009")
    attempts = [({"name": "张三", "id_number": ZHANG_ID}, "phone_differs"),
                ({"name": "李四", "id_number": LI_ID}, "linked_elsewhere"),
                ({"name": "王五", "id_number": WANG_ID}, "roster_without_phone"),
                ({"name": "张四", "id_number": ZHANG_ID}, "name_differs"),
                ({"name": "赵六", "id_number": ZHAO_ID}, "no_record")]
    answers = []
    for body, _ in attempts:
        with pytest.raises(InvalidInput) as miss:
            await rt.membership.certify(probe, body, "10.2.0.2")
        answers.append((miss.value.status, miss.value.code, miss.value.message))
    assert set(answers) == {(400, "certify_no_match", NO_MATCH_MESSAGE)}
    assert await db.fetchval("SELECT count(*) FROM members WHERE account_id = $1", probe) == 0
    assert await db.fetchval("SELECT account_id FROM members WHERE id = $1", linked) == li
    # The reason is kept for the union of the record compared with.
    rows = await db.fetch("SELECT * FROM certification_misses ORDER BY id")
    assert [r["reason"] for r in rows] == [check for _, check in attempts]
    assert {r["account_id"] for r in rows} == {probe}
    assert (rows[2]["org_id"], rows[2]["member_id"]) == (unions["jinjiang"], phoneless)
    assert (rows[4]["org_id"], rows[4]["member_id"]) == (None, None)


async def test_an_account_holding_a_record_is_told_so_whatever_it_types(rt, db, unions) -> None:
    await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13800000001")
    zhang = await worker(rt, "oZhang")
    await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.2.1.1")
    await roster_member(rt, db, unions["jinjiang"], "李四", LI_ID, "13800000001")
    for number in (LI_ID, ZHAO_ID):     # on a roster or not: the same answer
        with pytest.raises(Conflict) as held:
            await rt.membership.certify(zhang, {"name": "李四", "id_number": number}, "10.2.1.1")
        assert held.value.code == "already_certified"


async def test_a_record_without_a_phone_is_certified_once_the_union_confirms(
        rt, db, unions, reviewer) -> None:
    member_id = await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, None)
    zhang = await worker(rt, "oZhang")
    assert rt.settings.membership.certify_without_phone == "review"
    with pytest.raises(InvalidInput) as pending:
        await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.2.2.1")
    assert pending.value.code == "certify_no_match"
    assert await db.fetchval("SELECT account_id FROM members") is None
    dispute = await rt.membership.dispute(zhang, dispute_form(unions["tianfu"], "张三", ZHANG_ID))
    assert "roster_check" not in dispute                       # the worker is not told
    assert "roster_check" not in (await rt.membership.overview(zhang))["applications"][0]
    [queued] = (await rt.reviews.queue(reviewer, status="pending"))["applications"]
    assert queued["roster_check"]["code"] == "roster_without_phone"
    assert "核实" in queued["roster_check"]["label"]
    await rt.reviews.approve(reviewer, dispute["id"])
    assert await db.fetchval("SELECT account_id FROM members WHERE id = $1", member_id) == zhang


async def test_a_union_may_allow_certifying_records_without_a_phone(rt, db, unions) -> None:
    member_id = await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, None)
    zhang = await worker(rt, "oZhang")
    member = await service(rt, certify_without_phone="allow").certify(
        zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.2.3.1")
    assert member["id"] == member_id and member["certified"]


async def test_a_dispute_shows_the_reviewer_why_the_roster_did_not_match(rt, db, unions, reviewer) -> None:
    await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13700000009")
    zhang = await worker(rt, "oZhang")
    await rt.membership.dispute(zhang, dispute_form(unions["tianfu"], "张三", ZHANG_ID))
    li = await worker(rt, "oLi", "13900000002")
    await rt.membership.dispute(li, dispute_form(unions["tianfu"], "李四", LI_ID))
    queue = (await rt.reviews.queue(reviewer, status="pending"))["applications"]
    assert {a["name"]: a["roster_check"]["code"] for a in queue} == {"张三": "phone_differs",
                                                                     "李四": "no_record"}


async def test_a_join_with_a_members_id_number_is_accepted_and_flagged_for_the_reviewer(
        rt, db, unions, reviewer) -> None:
    await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13800000001")
    probe = await worker(rt, "oProbe", "13900000009")
    filed = await rt.membership.apply_join(probe, join_form(unions["tianfu"], name="某某", number=ZHANG_ID))
    assert filed["status"] == "pending" and "roster_check" not in filed
    wang = await worker(rt, "oWang", "13900000003")
    await rt.membership.apply_join(wang, join_form(unions["jinjiang"], name="王五", number=WANG_ID))
    zhao = await worker(rt, "oZhao", "13900000004")
    second = await rt.membership.apply_join(zhao, join_form(unions["jinjiang"], name="王五", number=WANG_ID))
    assert second["status"] == "pending"
    queue = (await rt.reviews.queue(reviewer, status="pending"))["applications"]
    checks = {a["id"]: (a["roster_check"] or {}).get("code") for a in queue}
    assert checks[filed["id"]] == "already_member" and checks[second["id"]] == "pending_elsewhere"
    with pytest.raises(Conflict) as refused:     # the reviewer cannot make a second record
        await rt.reviews.approve(reviewer, filed["id"])
    assert refused.value.code == "already_member"
    # the worker's own membership is theirs to know
    zhang = await worker(rt, "oZhang")
    await rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID}, "10.2.4.1")
    with pytest.raises(Conflict) as own:
        await rt.membership.apply_join(zhang, join_form(unions["jinjiang"], number=ZHAO_ID))
    assert own.value.code == "already_member"


async def test_filings_are_limited_per_worker_per_china_day(rt, db, unions) -> None:
    now = [datetime(rt.clock().year + 1, 6, 1, 23, 50, tzinfo=CHINA)]   # 23:50 Beijing time
    limited = service(rt, lambda: now[0], applications_per_account_day=2)
    probe = await worker(rt, "oProbe", "13900000009")
    for number in (ZHANG_ID, LI_ID):
        filed = await limited.apply_join(probe, join_form(unions["tianfu"], number=number))
        await limited.withdraw(probe, filed["id"])
    with pytest.raises(TooManyRequests) as stopped:
        await limited.apply_join(probe, join_form(unions["tianfu"], number=WANG_ID))
    assert stopped.value.code == "application_limit"
    assert stopped.value.headers["Retry-After"] == "600"          # midnight, Beijing
    with pytest.raises(TooManyRequests):                           # a dispute is a filing too
        await limited.dispute(probe, dispute_form(unions["tianfu"], "张三", ZHANG_ID))
    assert await db.fetchval("SELECT count(*) FROM applications") == 2
    other = await worker(rt, "oOther", "13900000008")              # per worker
    await limited.apply_join(other, join_form(unions["tianfu"], number=WANG_ID))
    now[0] += timedelta(minutes=10)                                # a new day
    tomorrow = await limited.apply_join(probe, join_form(unions["tianfu"], number=ZHAO_ID))
    assert tomorrow["status"] == "pending"
