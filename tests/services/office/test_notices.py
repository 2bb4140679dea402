"""Notices (通知公告): a province cadre (李四) drafts a notice, another (王五) reviews it on the
work-item engine, publication writes a row per recipient and queues the bound cadres' WeChat
messages; recipients read it and answer the receipt; the sender follows the figures by union,
urges (催办) and recalls. Every bad input is refused with a clear message and writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.services.cadres.test_cadres import org_id
from tests.services.casework.conftest import T0, bind, make_cadre, sent_to
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from wxbackend.store.membership import orgs as org_store

RECEIPT = {"fields": [
    {"key": "attend", "label": "是否参加", "type": "choice", "required": True, "choices": ["参加", "不参加"]},
    {"key": "who", "label": "参会人员", "type": "text", "when": "attend == '参加'", "required": True}]}
DUE = (T0 + timedelta(days=3)).isoformat()


@pytest.fixture
async def office(rt, db, cadres):
    """李四 drafts, 王五 reviews (both of the province, holding notice.publish); 成都办 publishes
    for Chengdu; a county union under Chengdu with one cadre."""
    province = await org_id(db, "SC")
    chengdu = await org_id(db, "SC-510100")
    county = await org_store.upsert(db, code="SC-510104", name="锦江区总工会", short_name="锦江区",
                                    kind="county", parent_id=chengdu, division_code="510104")
    return {
        "lisi": await make_cadre(db, province, "lisi", {"notice.publish"}),
        "wangwu": await make_cadre(db, province, "wangwu", {"notice.publish"}),
        "chengdu": await make_cadre(db, chengdu, "chengduban", {"notice.publish"}),
        "county": await make_cadre(db, county, "jinjiang", set()),
        "county_id": county, **cadres}


def draft(**changes) -> dict:
    body = {"title": "关于报送2026年一季度工作信息的通知", "body": "请各市州总工会于3月5日前报送。",
            "targets": {"scope": "levels", "levels": ["city"]}}
    return body | changes


async def published(rt, office, **changes) -> dict:
    """A notice drafted by 李四, approved by 王五."""
    notices = rt.office_notices
    notice = await notices.create(office["lisi"], draft(**changes))
    await notices.submit(office["lisi"], notice["id"])
    await notices.review(office["wangwu"], notice["id"], {"decision": "approve"})
    return notice


async def counts(db) -> tuple:
    return (await db.fetchval("SELECT count(*) FROM notices"),
            await db.fetchval("SELECT count(*) FROM notice_recipients"),
            await db.fetchval("SELECT count(*) FROM outbox"),
            await db.fetchval("SELECT count(*) FROM work_items"))


async def test_a_notice_is_reviewed_published_read_and_answered(rt, db, office) -> None:
    notices = rt.office_notices
    lisi, wangwu, desk = office["lisi"], office["wangwu"], office["desk"]
    await bind(db, desk)
    await bind(db, wangwu)
    notice = await notices.create(lisi, draft(receipt={"form": RECEIPT, "due_at": DUE}))
    assert notice["status"] == "draft" and notice["manage"]["targets_text"] == "下级市州总工会的全体干部"
    submitted = await notices.submit(lisi, notice["id"])
    review = submitted["manage"]["review"]
    assert submitted["status"] == "reviewing" and review["can_review"] is False

    # The review is a work item: in 王五's 我的待办, refused as a bare 通过 (it is a desk step).
    todo = await rt.work_lists.todo(wangwu, module="notice")
    [task] = todo["tasks"]
    assert task["step"] == "通知审核" and task["item_id"] == review["item_id"]
    with pytest.raises(Conflict) as bare:
        await rt.work.act(wangwu, task["item_id"], {"action": "pass", "task_id": task["task_id"]})
    assert bare.value.code == "desk_step"

    # Nobody reviews their own notice: nothing moves.
    before = await counts(db)
    with pytest.raises(Forbidden) as own:
        await notices.review(lisi, notice["id"], {"decision": "approve"})
    assert own.value.code == "own_notice" and "自己" in own.value.message
    assert await counts(db) == before
    assert (await notices.notice(lisi, notice["id"]))["status"] == "reviewing"

    result = await notices.review(wangwu, notice["id"], {"decision": "approve", "opinion": "同意",
                                                          "version": task["version"]})
    city_cadres = {office[k].id for k in ("desk", "desk2", "clerk", "chengdu", "dazhou")}
    assert result["status"] == "closed" and result["recipients"] == len(city_cadres)
    assert result["queued"] == 1     # only 张办 bound a WeChat; 王五 is no recipient
    rows = await db.fetch("SELECT cadre_id, delivered_at, read_at FROM notice_recipients")
    assert {r["cadre_id"] for r in rows} == city_cadres
    assert all(r["delivered_at"] == T0 and r["read_at"] is None for r in rows)
    [message] = await sent_to(db, f"o-{desk.username}")
    assert message["payload"]["template_id"] == "TPL-CADRE"
    assert message["payload"]["data"]["thing4"]["value"] == "请查阅通知并按时回执"
    assert message["payload"]["url"].endswith("/admin/#notices")
    assert message["idempotency_key"] == f"notice:{notice['id']}:new:{desk.id}"
    kinds = await db.fetch("SELECT kind FROM work_events WHERE item_id = $1 ORDER BY id", task["item_id"])
    assert [k["kind"] for k in kinds][-3:] == ["approved", "closed", "published"]

    # The inbox shows it unread; opening it marks it read (once).
    inbox = await notices.inbox(desk)
    assert inbox["counts"]["unread"] == 1 and inbox["notices"][0]["unread"]
    opened = await notices.notice(desk, notice["id"])
    assert opened["body"].startswith("请各市州") and datetime.fromisoformat(opened["mine"]["read_at"]) == T0
    assert opened["mine"]["can_answer"] and "manage" not in opened
    assert (await notices.inbox(desk))["counts"]["unread"] == 0

    answered = await notices.answer(desk, notice["id"], {"answers": {"attend": "参加", "who": "张办"}})
    assert answered["mine"]["receipt"] == {"attend": "参加", "who": "张办"}
    bad = {"answers": {"attend": "参加"}}
    with pytest.raises(InvalidInput) as missing:
        await notices.answer(office["desk2"], notice["id"], bad)
    assert missing.value.code == "invalid_answer" and "参会人员" in missing.value.message
    assert await db.fetchval("SELECT receipt FROM notice_recipients WHERE cadre_id = $1",
                             office["desk2"].id) is None

    stats = await notices.stats(lisi, notice["id"])
    by_union = {u["org_name"]: u for u in stats["unions"]}
    assert (by_union["成都市总工会"]["recipients"], by_union["成都市总工会"]["read"],
            by_union["成都市总工会"]["answered"]) == (4, 1, 1)
    assert (by_union["达州市总工会"]["unread"], by_union["达州市总工会"]["unanswered"]) == (1, 1)
    assert stats["total"] == {"recipients": 5, "read": 1, "unread": 4, "answered": 1, "unanswered": 4}
    chengdu = by_union["成都市总工会"]["org_id"]
    behind = await notices.recipients(lisi, notice["id"], org_id=chengdu, state="unread")
    assert {r["name"] for r in behind["recipients"]} == {"liban", "zhaoyuan", "chengduban"}
    answers = await notices.recipients(lisi, notice["id"], state="answered")
    assert answers["recipients"][0]["receipt"]["who"] == "张办"
    audit = await db.fetch("SELECT action FROM audit_log WHERE target = $1 ORDER BY id",
                           f"notice:{notice['id']}")
    assert [a["action"] for a in audit] == ["notice.create", "notice.submit", "notice.receipt"]
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'work.notice.approve'") == 1


async def test_targets_outside_the_subtree_are_refused(rt, db, office) -> None:
    notices, chengdu = rt.office_notices, office["chengdu"]
    dazhou = await org_id(db, "SC-511700")
    before = await counts(db)
    for targets in ({"scope": "unions", "unions": [office["county_id"], dazhou]},
                    {"scope": "city", "city_id": dazhou}):
        with pytest.raises(Forbidden) as outside:
            await notices.create(chengdu, draft(targets=targets))
        assert outside.value.code == "outside_subtree" and "达州市总工会" in outside.value.message
    for targets, code in (({"scope": "unions", "unions": [999999]}, "invalid_targets"),
                          ({"scope": "levels", "levels": ["village"]}, "invalid_targets"),
                          ({"scope": "levels", "levels": ["city"], "roles": ["boss"]}, "invalid_targets"),
                          ({"scope": "everyone"}, "invalid_targets")):
        with pytest.raises(InvalidInput) as bad:
            await notices.create(chengdu, draft(targets=targets))
        assert bad.value.code == code
    assert await counts(db) == before
    # A draft edited to reach outside is refused as well, and stays as it was.
    notice = await notices.create(chengdu, draft(targets={"scope": "levels", "levels": ["county"]}))
    with pytest.raises(Forbidden):
        await notices.update(chengdu, notice["id"], draft(targets={"scope": "unions", "unions": [dazhou]}))
    assert (await db.fetchval("SELECT targets FROM notices WHERE id = $1", notice["id"]))["scope"] == "levels"


async def test_targets_reach_levels_one_citys_counties_and_filtered_cadres(rt, db, office) -> None:
    notices, lisi = rt.office_notices, office["lisi"]
    menu = await notices.targets_menu(lisi)
    assert {"level": "city", "name": "市州总工会", "unions": 21} in menu["levels"]
    assert {"法律部", "权益保障部"} <= set(menu["departments"]) and len(menu["cities"]) == 21
    chengdu = await org_id(db, "SC-510100")

    async def reach(targets: dict) -> set[int]:
        notice = await published(rt, office, targets=targets)
        return {r["cadre_id"] for r in await db.fetch(
            "SELECT cadre_id FROM notice_recipients WHERE notice_id = $1", notice["id"])}

    assert await reach({"scope": "levels", "levels": ["city", "grassroots"]}) == {
        office[k].id for k in ("desk", "desk2", "clerk", "chengdu", "dazhou", "grassroots")}
    assert await reach({"scope": "city", "city_id": chengdu}) == {office["county"].id}
    lawyers = {"scope": "levels", "levels": ["city"], "departments": ["法律部"]}
    assert await reach(lawyers) == {office["desk2"].id}
    assert await reach({"scope": "unions", "unions": [await org_id(db, "SC")]}) == {office["province"].id,
                                                                                  office["office"].id,
                                                                                  office["wangwu"].id}
    # A city's publisher reaching "every county below me" stays in Chengdu.
    mine = await notices.create(office["chengdu"], draft(targets={"scope": "levels", "levels": ["county"]}))
    assert mine["manage"]["targets_text"] == "下级县（市、区）总工会的全体干部"


async def test_submitting_needs_recipients_and_a_second_publisher(rt, db, office) -> None:
    notices, chengdu = rt.office_notices, office["chengdu"]
    groups = {"scope": "levels", "levels": ["enterprise_group"]}
    nobody = await notices.create(office["lisi"], draft(targets=groups))
    with pytest.raises(Conflict) as empty:
        await notices.submit(office["lisi"], nobody["id"])
    assert empty.value.code == "no_recipients"
    alone = await notices.create(chengdu, draft(targets={"scope": "levels", "levels": ["county"]}))
    with pytest.raises(Conflict) as lonely:
        await notices.submit(chengdu, alone["id"])
    assert lonely.value.code == "no_reviewer"
    with pytest.raises(NotFound):     # a draft is its author's alone
        await notices.submit(office["wangwu"], nobody["id"])
    assert await db.fetchval("SELECT count(*) FROM work_items") == 0
    assert {r["status"] for r in await db.fetch("SELECT status FROM notices")} == {"draft"}


async def test_a_returned_notice_is_edited_and_submitted_again(rt, db, office) -> None:
    notices, lisi, wangwu = rt.office_notices, office["lisi"], office["wangwu"]
    await bind(db, lisi)
    notice = await notices.create(lisi, draft())
    await notices.submit(lisi, notice["id"])
    with pytest.raises(InvalidInput) as silent:
        await notices.review(wangwu, notice["id"], {"decision": "return"})
    assert silent.value.code == "opinion_required"
    await notices.review(wangwu, notice["id"], {"decision": "return", "opinion": "请写明报送邮箱"})
    back = await notices.notice(lisi, notice["id"])
    assert back["status"] == "draft" and back["manage"]["return_opinion"] == "请写明报送邮箱"
    [told] = [m for m in await sent_to(db, "o-lisi") if ":returned:" in m["idempotency_key"]]
    assert told["payload"]["data"]["thing4"]["value"] == "审核退回，请修改后再提交"
    assert await db.fetchval("SELECT count(*) FROM notice_recipients") == 0
    await notices.update(lisi, notice["id"], draft(body="请于3月5日前报送至 xx@scgh.org。"))
    await notices.submit(lisi, notice["id"])
    await notices.review(wangwu, notice["id"], {"decision": "approve"})
    assert (await notices.notice(lisi, notice["id"]))["status"] == "published"
    assert await db.fetchval("SELECT count(*) FROM work_items WHERE module = 'notice'") == 2


async def test_a_receipt_after_its_deadline_or_by_a_non_recipient_is_refused(rt, db, clock, office) -> None:
    notices = rt.office_notices
    notice = await published(rt, office, receipt={"form": RECEIPT, "due_at": DUE})
    answers = {"answers": {"attend": "不参加"}}
    with pytest.raises(Forbidden) as sender:
        await notices.answer(office["wangwu"], notice["id"], answers)
    assert sender.value.code == "not_recipient"
    with pytest.raises(NotFound):
        await notices.answer(office["grassroots"], notice["id"], answers)
    clock.set(T0 + timedelta(days=3), frozen=True)
    with pytest.raises(Conflict) as late:
        await notices.answer(office["desk"], notice["id"], answers)
    assert late.value.code == "receipt_closed" and "截止" in late.value.message
    assert await db.fetchval("SELECT count(*) FROM notice_recipients WHERE receipt_at IS NOT NULL") == 0
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'notice.receipt'") == 0
    # Reading still counts after the deadline.
    assert (await notices.notice(office["desk"], notice["id"]))["mine"]["can_answer"] is False


@pytest.mark.parametrize(("receipt", "code"), [
    ({"form": {"fields": [{"key": "x", "label": "X", "type": "colour"}]}, "due_at": DUE}, "invalid_form"),
    ({"form": {"fields": [{"key": "id_no", "label": "身份证号", "type": "idnumber"}]}, "due_at": DUE},
     "invalid_form"),
    ({"form": RECEIPT, "due_at": "2026-03-01T09:00:00+08:00"}, "invalid_receipt"),
    ({"form": RECEIPT, "due_at": "2026-03-10 18:00"}, "invalid_receipt"),
])
async def test_a_bad_receipt_form_is_refused(rt, db, office, receipt, code) -> None:
    with pytest.raises(InvalidInput) as bad:
        await rt.office_notices.create(office["lisi"], draft(receipt=receipt))
    assert bad.value.code == code
    assert await counts(db) == (0, 0, 0, 0)


async def test_urging_those_behind_is_rate_limited_and_sent_through_wechat(rt, db, clock, office) -> None:
    notices, lisi = rt.office_notices, office["lisi"]
    await bind(db, office["desk"])
    await bind(db, office["dazhou"])
    notice = await published(rt, office, receipt={"form": RECEIPT, "due_at": DUE})
    await notices.notice(office["dazhou"], notice["id"])          # 达州 read it
    urged = await notices.urge(lisi, notice["id"], {"what": "unread"})
    assert urged == {"behind": 4, "urged": 4, "queued": 1}
    [_, urge] = await sent_to(db, "o-zhangban")
    assert urge["payload"]["data"]["thing4"]["value"] == "请尽快查阅通知"
    with pytest.raises(TooManyRequests) as again:
        await notices.urge(lisi, notice["id"], {"what": "unread"})
    assert again.value.code == "urged_recently"
    # 达州 read but did not answer: urged for the receipt, in its own round.
    dazhou = await org_id(db, "SC-511700")
    answered = await notices.urge(lisi, notice["id"], {"what": "unanswered", "org_id": dazhou})
    assert answered == {"behind": 1, "urged": 1, "queued": 1}
    clock.set(T0 + timedelta(hours=5), frozen=True)
    assert (await notices.urge(lisi, notice["id"], {"what": "unread"}))["urged"] == 4
    assert len(await sent_to(db, "o-zhangban")) == 3
    with pytest.raises(NotFound):
        await notices.urge(office["chengdu"], notice["id"], {"what": "unread"})
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'notice.urge'") == 3


async def test_urging_at_night_waits_for_the_morning(rt, db, clock, office) -> None:
    await bind(db, office["desk"])
    clock.set(T0.replace(hour=23), frozen=True)
    await published(rt, office)
    [message] = await sent_to(db, "o-zhangban")
    assert message["next_attempt_at"] == (T0 + timedelta(days=1)).replace(hour=8)


async def test_a_recalled_notice_keeps_its_rows_and_hides_its_body(rt, db, office) -> None:
    notices, lisi = rt.office_notices, office["lisi"]
    notice = await published(rt, office, receipt={"form": RECEIPT, "due_at": DUE})
    await notices.notice(office["desk"], notice["id"])
    with pytest.raises(Forbidden) as other:
        await notices.recall(office["wangwu"], notice["id"], {"reason": "发错了"})
    assert other.value.code == "not_author"
    with pytest.raises(InvalidInput):
        await notices.recall(lisi, notice["id"], {})
    assert await db.fetchval("SELECT status FROM notices") == "published"
    recalled = await notices.recall(lisi, notice["id"], {"reason": "内容有误，另行通知"})
    assert recalled["status"] == "recalled" and recalled["body"] is not None   # the sender still sees it
    seen = await notices.notice(office["desk"], notice["id"])
    assert seen["body"] is None and seen["receipt_form"] is None
    assert seen["recall_reason"] == "内容有误，另行通知"
    assert (await notices.inbox(office["desk2"]))["counts"]["unread"] == 0
    assert await db.fetchval("SELECT count(*) FROM notice_recipients") == 5
    with pytest.raises(Conflict) as gone:
        await notices.answer(office["desk"], notice["id"], {"answers": {"attend": "不参加"}})
    assert gone.value.code == "notice_recalled"
    with pytest.raises(Conflict):
        await notices.urge(lisi, notice["id"], {"what": "unread"})
    assert await db.fetchval("SELECT count(*) FROM work_events WHERE kind = 'recalled'") == 1
