"""Meetings: rooms booked once per slot (also when two organisers book at the same moment),
invitations and answers with leave and substitutes, reminders through the outbox, QR sign-in
(expired, replayed, another meeting's code), attendance figures, minutes with action items on
the engine, and external meetings step by step. Each refusal writes nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from tests.services.activities.conftest import make_workers
from tests.services.casework.conftest import T0, bind, make_cadre, sent_to
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound

START = T0 + timedelta(days=1)            # Tuesday 09:00
END = START + timedelta(hours=2)


def slot(starts: datetime = START, ends: datetime = END) -> dict:
    return {"starts_at": starts.isoformat(), "ends_at": ends.isoformat()}


@pytest.fixture
async def organiser(db, cadres):
    return await make_cadre(db, cadres["desk"].org_id, "huiwu", {"meeting.manage"})


@pytest.fixture
async def room(rt, organiser) -> int:
    made = await rt.meetings.rooms.create(organiser, {"name": "第一会议室", "capacity": 30,
                                                      "place": "工会大楼三楼"})
    return made["id"]


async def counts(db) -> tuple:
    return tuple([await db.fetchval(f"SELECT count(*) FROM {t}") for t in (  # noqa: S608
        "meetings", "meeting_bookings", "meeting_invitees", "meeting_actions", "work_items",
        "audit_log", "outbox")])


async def meeting(rt, organiser, cadres, room=None, *, title="季度工作例会", when=None, invitees=None):
    body = {"title": title, **(when or slot()),
            "invitees": invitees or [cadres["desk"].id, cadres["desk2"].id]}
    body.update({"room_id": room} if room else {"place": "工会大楼二楼"})
    return await rt.meetings.internal.create(organiser, body)


async def test_a_room_is_booked_once_per_slot(rt, db, cadres, organiser, room) -> None:
    first = await meeting(rt, organiser, cadres, room)
    assert first["place"] == "工会大楼三楼 第一会议室" and first["status"] == "scheduled"
    before = await counts(db)
    with pytest.raises(Conflict) as clash:
        await meeting(rt, organiser, cadres, room, title="专题会",
                      when=slot(START + timedelta(hours=1), END + timedelta(hours=1)))
    assert clash.value.code == "room_booked" and clash.value.status == 409
    assert "季度工作例会" in clash.value.message and "2026-03-03 09:00–11:00" in clash.value.message
    assert await counts(db) == before
    # Back to back is no clash: a range ends where the next one begins.
    await meeting(rt, organiser, cadres, room, title="专题会", when=slot(END, END + timedelta(hours=1)))
    listed = await rt.meetings.rooms.bookings(organiser, START.date().isoformat(), 7)
    assert [b["title"] for b in listed["bookings"]] == ["季度工作例会", "专题会"]
    # Cancelled, the room is free again and the item leaves the rates as cancelled.
    await rt.meetings.internal.cancel(organiser, first["id"], {"reason": "与上级会议冲突"})
    item = await db.fetchrow("SELECT status, outcome FROM work_items WHERE id = $1", first["item_id"])
    assert (item["status"], item["outcome"]) == ("closed", "cancelled")
    again = await meeting(rt, organiser, cadres, room, title="改期例会")
    assert again["room_id"] == room


async def test_concurrent_bookings_of_one_slot_exactly_one_wins(rt, db, cadres, organiser, room) -> None:
    results = await asyncio.gather(*(meeting(rt, organiser, cadres, room, title=f"会议{n}")
                                     for n in range(8)), return_exceptions=True)
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 7
    assert all(won[0]["title"] in e.message for e in lost)
    assert await db.fetchval("SELECT count(*) FROM meetings") == 1
    assert await db.fetchval("SELECT count(*) FROM meeting_bookings") == 1
    assert await db.fetchval("SELECT count(*) FROM work_items WHERE module = 'meeting'") == 1


async def test_invitations_answers_leave_and_reminders(rt, db, cadres, organiser) -> None:
    desk, desk2, grassroots = cadres["desk"], cadres["desk2"], cadres["grassroots"]
    openid = await bind(db, desk)
    made = await meeting(rt, organiser, cadres)
    invite, start = await sent_to(db, openid)
    assert invite["idempotency_key"] == f"meeting:{made['id']}:invite:{desk.id}"
    assert invite["payload"]["data"]["thing1"]["value"] == "季度工作例会"
    assert start["next_attempt_at"] == START - timedelta(hours=1)
    todo = await rt.work_lists.todo(organiser)
    assert [(t["module"], t["step"]) for t in todo["tasks"]] == [("meeting", "会议纪要")]

    mine = await rt.meetings.internal.invitations(desk)
    assert [m["answer"] for m in mine["meetings"]] == ["pending"]
    await rt.meetings.internal.answer(desk, made["id"], {"answer": "attend"})

    # Leave with a substitute outside the meeting's subtree: refused, nothing written.
    before = await counts(db)
    with pytest.raises(Forbidden) as outside:
        await rt.meetings.internal.answer(desk2, made["id"], {"answer": "leave", "reason": "出差",
                                                              "substitute_id": cadres["dazhou"].id})
    assert outside.value.code == "outside_subtree"
    assert await counts(db) == before
    # Answering for a meeting one is not invited to: not found, nothing written.
    with pytest.raises(NotFound) as stranger:
        await rt.meetings.internal.answer(grassroots, made["id"], {"answer": "attend"})
    assert stranger.value.code == "not_invited" and stranger.value.status == 404
    assert await counts(db) == before

    await rt.meetings.internal.answer(desk2, made["id"], {"answer": "leave", "reason": "到基层调研",
                                                          "substitute_id": grassroots.id})
    sub_openid = await bind(db, grassroots)
    detail = await rt.meetings.internal.decide_leave(organiser, made["id"],
                                                     {"cadre_id": desk2.id, "approve": True})
    people = {v["cadre_id"]: v for v in detail["invitees"]}
    assert people[desk2.id]["leave_status"] == "approved"
    assert people[grassroots.id]["substitute_for"] == desk2.id and people[grassroots.id]["answer"] == "attend"
    assert [m["idempotency_key"] for m in await sent_to(db, sub_openid)] == [
        f"meeting:{made['id']}:invite:{grassroots.id}", f"meeting:{made['id']}:start:{grassroots.id}"]
    assert detail["attendance"] == {"expected": 2, "present": 0, "late": 0, "leave": 1, "absent": 2,
                                    "leave_pending": 0, "rate": 0.0}
    with pytest.raises(Conflict):
        await rt.meetings.internal.decide_leave(organiser, made["id"],
                                                {"cadre_id": desk2.id, "approve": False})
    actions = [r["action"] for r in await db.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-4:] == ["meeting.create", "meeting.attend", "meeting.leave", "meeting.leave_approve"]


async def test_the_reminder_before_an_early_meeting_leaves_before_the_quiet_hours(rt, db, cadres,
                                                                                  organiser) -> None:
    openid = await bind(db, cadres["desk"])
    early = datetime(2026, 3, 4, 7, 30, tzinfo=CHINA)
    await meeting(rt, organiser, cadres, when=slot(early, early + timedelta(hours=1)))
    _, start = await sent_to(db, openid)
    assert start["next_attempt_at"] == datetime(2026, 3, 3, 21, 30, tzinfo=CHINA)


@pytest.fixture
async def phones(rt, db, cadres):
    """Each invited cadre's own WeChat: an account signed in through the Official Account whose
    openid the cadre bound in the console."""
    out = {}
    for key in ("desk", "desk2", "grassroots"):
        [account] = await make_workers(db, 1, None)
        openid = await bind(db, cadres[key])
        await db.execute("""INSERT INTO account_identities (account_id, kind, issuer, subject)
                            VALUES ($1, 'oa_openid', $2, $3)""", account, rt.settings.wechat.appid, openid)
        out[key] = account
    return out


async def signed_at(db, cadre_id: int, meeting_id: int) -> datetime | None:
    return await db.fetchval(
        "SELECT signed_in_at FROM meeting_invitees WHERE cadre_id = $1 AND meeting_id = $2",
        cadre_id, meeting_id)


async def test_sign_in_by_the_venue_code(rt, db, clock, cadres, organiser, phones) -> None:
    signin = rt.meetings.signin
    made = await meeting(rt, organiser, cadres)
    other = await meeting(rt, organiser, cadres, title="另一场会议")
    clock.set(START - timedelta(minutes=10), frozen=True)
    shown = await signin.venue_code(organiser, made["id"])
    assert shown["refresh_in"] == rt.settings.office.meeting_code_seconds
    assert shown["url"].endswith(f"/h5/meeting.html#m={made['id']}&code={shown['code']}")
    done = await signin.by_scan(phones["desk"], {"meeting_id": made["id"], "code": shown["code"]})
    assert done["late"] is False and done["title"] == "季度工作例会"

    before = await counts(db)
    signed = await signed_at(db, cadres["desk"].id, made["id"])
    with pytest.raises(Conflict) as replay:
        await signin.by_scan(phones["desk"], {"meeting_id": made["id"], "code": shown["code"]})
    assert replay.value.code == "already_signed" and "已于 08:50 签到" in replay.value.message
    elsewhere = await signin.venue_code(organiser, other["id"])
    with pytest.raises(InvalidInput) as wrong:
        await signin.by_scan(phones["desk2"], {"meeting_id": made["id"], "code": elsewhere["code"]})
    assert wrong.value.code == "meeting_code_other" and "不属于本次会议" in wrong.value.message
    with pytest.raises(Forbidden) as stranger:
        await signin.by_scan(phones["grassroots"], {"meeting_id": made["id"], "code": shown["code"]})
    assert stranger.value.code == "not_invited"
    [unbound] = await make_workers(db, 1, None)
    with pytest.raises(Forbidden) as nobody:
        await signin.by_scan(unbound, {"meeting_id": made["id"], "code": shown["code"]})
    assert nobody.value.code == "cadre_not_bound" and "绑定" in nobody.value.message
    clock.advance(rt.settings.office.meeting_code_max_age + 1)
    with pytest.raises(InvalidInput) as stale:
        await signin.by_scan(phones["desk2"], {"meeting_id": made["id"], "code": shown["code"]})
    assert stale.value.code == "meeting_code_expired" and stale.value.status == 400
    assert await counts(db) == before
    assert await db.fetchval("SELECT count(*) FROM meeting_invitees WHERE signed_in_at IS NOT NULL") == 1
    assert await signed_at(db, cadres["desk"].id, made["id"]) == signed

    clock.set(START + timedelta(minutes=5), frozen=True)
    fresh = await signin.venue_code(organiser, made["id"])
    late = await signin.by_scan(phones["desk2"], {"meeting_id": made["id"], "code": fresh["code"]})
    assert late["late"] is True
    detail = await rt.meetings.internal.detail(organiser, made["id"])
    assert detail["attendance"] == {"expected": 2, "present": 2, "late": 1, "leave": 0, "absent": 0,
                                    "leave_pending": 0, "rate": 1.0}


async def test_one_person_scanning_at_once_is_recorded_once_and_the_organiser_signs_by_hand(
        rt, db, clock, cadres, organiser, phones) -> None:
    made = await meeting(rt, organiser, cadres)
    clock.set(START, frozen=True)
    code = (await rt.meetings.signin.venue_code(organiser, made["id"]))["code"]
    results = await asyncio.gather(*(rt.meetings.signin.by_scan(
        phones["desk"], {"meeting_id": made["id"], "code": code}) for _ in range(6)), return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, dict) or r.code == "already_signed" for r in results)
    done = await rt.meetings.signin.by_hand(organiser, made["id"], {"cadre_id": cadres["desk2"].id})
    assert done["late"] is False   # at the start exactly is on time
    audit = await db.fetchrow("SELECT action, detail FROM audit_log ORDER BY id DESC LIMIT 1")
    assert audit["action"] == "meeting.sign_in_by_hand" and audit["detail"]["cadre_id"] == cadres["desk2"].id
    with pytest.raises(Conflict):
        await rt.meetings.signin.by_hand(organiser, made["id"], {"cadre_id": cadres["desk2"].id})


async def test_minutes_close_the_meeting_and_action_items_become_work_items(rt, db, clock, cadres,
                                                                          organiser, tianfu) -> None:
    made = await meeting(rt, organiser, cadres)
    body = {"task_id": made["task_id"], "minutes": "会议研究了第二季度工作安排，形成以下意见。",
            "actions": [{"what": "起草职工疗休养方案", "org_id": tianfu, "deadline": "2026-03-20"}]}
    with pytest.raises(Conflict) as early:
        await rt.meetings.internal.file_minutes(organiser, made["id"], body)
    assert early.value.code == "meeting_not_held"
    clock.set(END + timedelta(hours=1), frozen=True)
    before = await counts(db)
    without = {**body, "actions": [*body["actions"], {"what": "落实慰问资金", "cadre_id": cadres["desk"].id}]}
    with pytest.raises(InvalidInput) as missing:
        await rt.meetings.internal.file_minutes(organiser, made["id"], without)
    assert missing.value.code == "action_deadline_required" and "第 2 项" in missing.value.message
    assert await counts(db) == before
    assert await db.fetchval("SELECT minutes FROM meetings WHERE id = $1", made["id"]) is None

    body["actions"].append({"what": "落实慰问资金", "cadre_id": cadres["desk"].id, "deadline": "2026-03-10"})
    detail = await rt.meetings.internal.file_minutes(organiser, made["id"], body)
    assert detail["status"] == "closed" and detail["minutes"].startswith("会议研究")
    assert await db.fetchval("SELECT status FROM work_items WHERE id = $1", made["item_id"]) == "closed"
    union_item, cadre_item = detail["actions"]
    rows = {r["id"]: r for r in await db.fetch(
        "SELECT id, module, org_id, due_at, status FROM work_items WHERE id = ANY($1::bigint[])",
        [union_item["item_id"], cadre_item["item_id"]])}
    assert rows[union_item["item_id"]]["module"] == "meeting_action"
    assert rows[union_item["item_id"]]["org_id"] == tianfu
    assert rows[union_item["item_id"]]["due_at"] == datetime(2026, 3, 21, tzinfo=CHINA)
    assert rows[cadre_item["item_id"]]["due_at"] == datetime(2026, 3, 11, tzinfo=CHINA)
    [task] = (await rt.work_lists.todo(cadres["desk"], module="meeting_action"))["tasks"]
    assert task["item_id"] == cadre_item["item_id"]
    # The named cadre finishes it with a plain 通过: an action item has no desk of its own.
    await rt.work.act(cadres["desk"], task["item_id"], {"action": "pass", "task_id": task["task_id"],
                                                        "opinion": "资金已拨付"})
    assert await db.fetchval("SELECT status FROM work_items WHERE id = $1", task["item_id"]) == "closed"


async def test_an_external_meeting_from_notice_to_relay(rt, db, clock, cadres, organiser) -> None:
    external = rt.meetings.external
    made = await external.register(organiser, {
        "title": "全省工会网上工作平台推进会", "caller": "四川省总工会", "place": "成都市锦江宾馆",
        "notice": "请各市州总工会分管领导参会", **slot()})
    assert made["kind"] == "external" and made["caller"] == "四川省总工会"

    async def step(name: str, **fields):
        current = await rt.meetings.internal.detail(organiser, made["id"])
        return await external.step(organiser, made["id"], {"step": name, "task_id": current["task_id"],
                                                           "version": current["version"], **fields})

    with pytest.raises(Conflict) as skipped:
        await step("answer", reply="我单位由张办参会")
    assert skipped.value.code == "not_at_step"
    await step("instruct", leader="王主席", instruction="请张办参会并做好传达")
    assigned = await step("assign", attendees=[cadres["desk"].id])
    assert [v["name"] for v in assigned["invitees"]] == ["zhangban"]
    await step("answer", reply="我单位由张办参会")
    with pytest.raises(Conflict) as early:
        await step("relay", relay="传达会议精神", relayed_to="机关全体干部")
    assert early.value.code == "meeting_not_held"
    clock.set(END + timedelta(days=1), frozen=True)
    done = await step("relay", relay="传达会议精神，部署本市推进工作", relayed_to="机关全体干部")
    assert done["status"] == "closed" and done["relayed_to"] == "机关全体干部"
    assert (done["leader"], done["reply"]) == ("王主席", "我单位由张办参会")
    assert await db.fetchval("SELECT status FROM work_items WHERE id = $1", made["item_id"]) == "closed"
    with pytest.raises(InvalidInput):
        await rt.meetings.signin.venue_code(organiser, made["id"])
