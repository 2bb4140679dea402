"""Online quizzes: the organiser's bank, rounds drawn from it against a time limit and a number of
rounds per day, scoring against the order the options were shown in, the quiz gate on sign-up,
and what the organiser reads back."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from tests.services.activities.conftest import T0, item_body, make_workers
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound

BANK = [{"prompt": f"第{n}题：工会法规定的会费比例是？",
         "options": [f"{n}-甲", f"{n}-乙", f"{n}-丙", f"{n}-丁"], "answer": [n % 4],
         "explanation": f"解析{n}"} for n in range(10)]
BANK[9] = {"prompt": "以下哪些属于普惠服务？", "options": ["观影", "体检", "罚款"], "answer": [0, 1]}
RULES = {"per_round": 5, "pass_mark": 4, "round_seconds": 600, "rounds_per_day": 2}


def quiz_item(**overrides) -> dict:
    return item_body(kind="activity", form="quiz", mode="lottery", title="安康杯知识竞赛",
                     closes_at=(T0 + timedelta(days=3)).isoformat(), stock=3, **overrides)


async def quiz(rt, organiser, *, publish: bool = True, questions=None, item=None, **rules) -> dict:
    item = await rt.catalogue.create(organiser, quiz_item(**(item or {})))
    await rt.quizzes.save(organiser, item["id"], {**RULES, **rules, "questions": questions or BANK})
    if publish:
        item = await rt.catalogue.set_status(organiser, item["id"], "published")
    return item


def right_answers(shown: dict) -> list[list[int]]:
    """The right choices for a round as shown, found from the bank by the options' text."""
    out = []
    for q in shown["questions"]:
        source = next(b for b in BANK if sorted(b["options"]) == sorted(q["options"]))
        out.append(sorted(q["options"].index(source["options"][a]) for a in source["answer"]))
    return out


async def test_a_quiz_cannot_be_published_without_its_bank(rt, db, organiser) -> None:
    item = await rt.catalogue.create(organiser, quiz_item())
    with pytest.raises(Conflict) as empty:
        await rt.catalogue.set_status(organiser, item["id"], "published")
    assert empty.value.code == "item_not_ready" and "题库" in empty.value.message
    bad = [({**RULES, "pass_mark": 6, "questions": BANK}, "及格题数"),
           ({**RULES, "questions": BANK[:4]}, "少于每轮题数"),
           ({**RULES, "questions": [*BANK[:8], {**BANK[0], "answer": [0, 1], "multiple": False}]}, "单选题"),
           ({**RULES, "questions": [*BANK[:8], {**BANK[0], "answer": [7]}]}, "正确答案"),
           ({**RULES, "questions": [*BANK[:8], {**BANK[0], "options": ["同", "同"]}]}, "重复"),
           ({**RULES, "round_seconds": 5, "questions": BANK}, "每轮限时")]
    for body, words in bad:
        with pytest.raises(InvalidInput) as refused:
            await rt.quizzes.save(organiser, item["id"], body)
        assert words in refused.value.message
    assert await db.fetchval("SELECT count(*) FROM quizzes") == 0
    saved = await rt.quizzes.save(organiser, item["id"], {**RULES, "questions": BANK})
    assert len(saved["questions"]) == 10 and saved["questions"][9]["multiple"] is True
    assert saved["rules"]["pass_mark"] == 4 and saved["editable"] is True
    published = await rt.catalogue.set_status(organiser, item["id"], "published")
    assert published["status"] == "published"
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'activity.quiz'") == 1


async def test_a_round_hides_the_answers_and_is_scored_as_it_was_shown(rt, db, unions, organiser) -> None:
    item = await quiz(rt, organiser)
    [worker] = await make_workers(db, 1, unions["tianfu"])
    shown = await rt.quizzes.start(worker, item["id"])
    assert shown["state"] == "answering" and shown["seconds_left"] == 600
    assert len(shown["questions"]) == 5
    assert "解析" not in json.dumps(shown, ensure_ascii=False)
    assert all(set(q) == {"prompt", "multiple", "options"} for q in shown["questions"])
    for q in shown["questions"]:
        source = next(b for b in BANK if b["prompt"] == q["prompt"])
        assert sorted(q["options"]) == sorted(source["options"])
    stored = await db.fetchval("SELECT shown FROM quiz_rounds WHERE id = $1", shown["id"])
    assert [len(s["order"]) for s in stored] == [len(q["options"]) for q in shown["questions"]]

    right = right_answers(shown)
    wrong = [(right[4][0] + 1) % len(shown["questions"][4]["options"])]
    given = [*right[:4], wrong]
    done = await rt.quizzes.submit(worker, shown["id"], given)
    assert (done["state"], done["score"], done["passed"]) == ("passed", 4, True)
    assert [q["right"] for q in done["questions"]] == [True, True, True, True, False]
    assert [q["answer"] for q in done["questions"]] == right  # shown once handed in
    again = await rt.quizzes.submit(worker, shown["id"], right)
    assert again["score"] == 4  # a round is scored once
    view = await rt.quizzes.view(worker, item["id"])
    assert view["passed"] is True and view["best_score"] == 4 and view["rounds_left_today"] == 1


async def test_a_reload_answers_the_same_round_and_rounds_count_per_day(rt, db, unions, organiser) -> None:
    item = await quiz(rt, organiser, rounds_total=3)
    [worker] = await make_workers(db, 1, unions["tianfu"])
    first = await rt.quizzes.start(worker, item["id"])
    assert (await rt.quizzes.start(worker, item["id"]))["id"] == first["id"]
    await rt.quizzes.submit(worker, first["id"], [[] for _ in range(5)])
    second = await rt.quizzes.start(worker, item["id"])
    assert second["id"] != first["id"]
    await rt.quizzes.submit(worker, second["id"], [[] for _ in range(5)])
    with pytest.raises(Conflict) as today:
        await rt.quizzes.start(worker, item["id"])
    assert today.value.code == "rounds_used_today" and "明天" in today.value.message
    rt.clock.set(T0.replace(hour=0, minute=5) + timedelta(days=1))  # the next China day
    third = await rt.quizzes.start(worker, item["id"])
    await rt.quizzes.submit(worker, third["id"], [[] for _ in range(5)])
    with pytest.raises(Conflict) as total:
        await rt.quizzes.start(worker, item["id"])
    assert total.value.code == "rounds_used"
    assert await db.fetchval("SELECT count(*) FROM quiz_rounds") == 3


async def test_concurrent_starts_open_one_round(rt, db, unions, organiser) -> None:
    item = await quiz(rt, organiser)
    [worker] = await make_workers(db, 1, unions["tianfu"])
    rounds = await asyncio.gather(*(rt.quizzes.start(worker, item["id"]) for _ in range(10)))
    assert len({r["id"] for r in rounds}) == 1
    assert await db.fetchval("SELECT count(*) FROM quiz_rounds") == 1


async def test_a_late_hand_in_is_not_scored(rt, db, unions, organiser) -> None:
    item = await quiz(rt, organiser, round_seconds=60)
    a, b = await make_workers(db, 2, unions["tianfu"])
    slow = await rt.quizzes.start(a, item["id"])
    rt.clock.advance(timedelta(seconds=65))  # within the grace: the last tap was on time
    assert (await rt.quizzes.submit(a, slow["id"], right_answers(slow)))["passed"] is True
    late = await rt.quizzes.start(b, item["id"])
    rt.clock.advance(timedelta(seconds=90))
    with pytest.raises(Conflict) as expired:
        await rt.quizzes.submit(b, late["id"], right_answers(late))
    assert expired.value.code == "round_expired"
    assert await db.fetchval("SELECT submitted_at FROM quiz_rounds WHERE id = $1", late["id"]) is None
    view = await rt.quizzes.view(b, item["id"])
    assert view["current"] is None and view["history"][0]["state"] == "expired" and not view["passed"]


async def test_bad_answers_and_other_workers_rounds_are_refused(rt, db, unions, organiser) -> None:
    item = await quiz(rt, organiser)
    a, b = await make_workers(db, 2, unions["tianfu"])
    shown = await rt.quizzes.start(a, item["id"])
    with pytest.raises(NotFound):
        await rt.quizzes.submit(b, shown["id"], right_answers(shown))
    single = next(i for i, q in enumerate(shown["questions"]) if not q["multiple"])
    two = [[] for _ in range(5)]
    two[single] = [0, 1]
    for answers in ([[0]] * 4, "A", [[9]] * 5, [[True]] * 5, two):
        with pytest.raises(InvalidInput):
            await rt.quizzes.submit(a, shown["id"], answers)
    assert await db.fetchval("SELECT count(*) FROM quiz_rounds WHERE submitted_at IS NOT NULL") == 0


async def test_only_workers_it_is_open_to_answer_inside_the_window(rt, db, unions, organiser) -> None:
    item = await rt.catalogue.create(organiser, quiz_item(opens_at=(T0 + timedelta(hours=1)).isoformat(),
                                                          audience={"level": "certified",
                                                                    "orgs": [unions["tianfu"]]}))
    await rt.quizzes.save(organiser, item["id"], {**RULES, "questions": BANK})
    await rt.catalogue.set_status(organiser, item["id"], "published")
    [member] = await make_workers(db, 1, unions["tianfu"])
    [other] = await make_workers(db, 1, unions["jinjiang"])
    with pytest.raises(Conflict) as early:
        await rt.quizzes.start(member, item["id"])
    assert early.value.code == "not_open"
    rt.clock.advance(timedelta(hours=1))
    with pytest.raises(Forbidden) as outsider:
        await rt.quizzes.start(other, item["id"])
    assert outsider.value.code == "not_eligible"
    rt.clock.advance(timedelta(days=3))
    with pytest.raises(Conflict) as late:
        await rt.quizzes.start(member, item["id"])
    assert late.value.code == "closed"
    assert await db.fetchval("SELECT count(*) FROM quiz_rounds") == 0


async def test_the_bank_is_fixed_once_the_window_opens(rt, db, organiser) -> None:
    later = quiz_item(opens_at=(T0 + timedelta(hours=2)).isoformat())
    item = await rt.catalogue.create(organiser, later)
    await rt.quizzes.save(organiser, item["id"], {**RULES, "questions": BANK})
    await rt.catalogue.set_status(organiser, item["id"], "published")
    fixed = await rt.quizzes.save(organiser, item["id"], {**RULES, "questions": BANK[:6]})
    assert len(fixed["questions"]) == 6  # published, not yet open: a typo can still be fixed
    rt.clock.advance(timedelta(hours=2))
    with pytest.raises(Conflict) as opened:
        await rt.quizzes.save(organiser, item["id"], {**RULES, "questions": BANK})
    assert opened.value.code == "quiz_fixed"
    assert await db.fetchval("SELECT count(*) FROM quiz_questions") == 6
    offline = await rt.catalogue.create(organiser, item_body(kind="activity", form="offline"))
    with pytest.raises(Conflict) as not_quiz:
        await rt.quizzes.save(organiser, offline["id"], {**RULES, "questions": BANK})
    assert not_quiz.value.code == "not_a_quiz"


async def test_signing_up_needs_a_pass(rt, db, unions, organiser) -> None:
    item = await quiz(rt, organiser)
    a, b = await make_workers(db, 2, unions["tianfu"])
    with pytest.raises(Forbidden) as first:
        await rt.signups.sign_up(a, item["id"])
    assert first.value.code == "quiz_not_passed"
    failed = await rt.quizzes.start(a, item["id"])
    await rt.quizzes.submit(a, failed["id"], [[] for _ in range(5)])
    with pytest.raises(Forbidden):
        await rt.signups.sign_up(a, item["id"])
    passed = await rt.quizzes.start(a, item["id"])
    await rt.quizzes.submit(a, passed["id"], right_answers(passed))
    assert (await rt.signups.sign_up(a, item["id"]))["status"] == "entered"
    with pytest.raises(Forbidden):
        await rt.signups.sign_up(b, item["id"])  # another worker's pass is not theirs
    assert await db.fetchval("SELECT count(*) FROM offering_claims") == 1


async def test_a_daily_pass_is_needed_on_the_day(rt, db, unions, organiser) -> None:
    item = await quiz(rt, organiser, pass_daily=True, item={"per_day": 1, "per_person": 3})
    [worker] = await make_workers(db, 1, unions["tianfu"])
    shown = await rt.quizzes.start(worker, item["id"])
    await rt.quizzes.submit(worker, shown["id"], right_answers(shown))
    await rt.signups.sign_up(worker, item["id"])
    rt.clock.set(T0 + timedelta(days=1))
    with pytest.raises(Forbidden) as stale:
        await rt.signups.sign_up(worker, item["id"])
    assert "当天" in stale.value.message
    shown = await rt.quizzes.start(worker, item["id"])
    await rt.quizzes.submit(worker, shown["id"], right_answers(shown))
    assert (await rt.signups.sign_up(worker, item["id"]))["status"] == "entered"


async def test_the_organiser_reads_pass_rate_accuracy_and_unions(rt, db, unions, organiser) -> None:
    item = await quiz(rt, organiser)
    tianfu = await make_workers(db, 3, unions["tianfu"])
    [jinjiang] = await make_workers(db, 1, unions["jinjiang"])
    for n, worker in enumerate([*tianfu, jinjiang]):
        shown = await rt.quizzes.start(worker, item["id"])
        await rt.quizzes.submit(worker, shown["id"], right_answers(shown) if n % 2 == 0 else [[]] * 5)
    stats = await rt.quizzes.stats(organiser, item["id"])
    assert (stats["participants"], stats["rounds"], stats["passed_workers"]) == (4, 4, 2)
    assert stats["pass_rate"] == 0.5 and stats["average_score"] == 2.5
    assert sum(q["answered"] for q in stats["questions"]) == 20
    assert sum(q["answered_right"] for q in stats["questions"]) == 10
    by_union = {u["name"]: (u["participants"], u["passed"]) for u in stats["by_union"]}
    assert by_union == {"成都天府软件有限公司工会": (3, 2), "锦江宾馆工会": (1, 0)}


async def test_another_subtree_cannot_see_or_set_a_quiz(rt, db, organiser) -> None:
    item = await quiz(rt, organiser, publish=False)
    outsider = Actor(id=organiser.id, username="dz", org_id=1, org_path="1.999",
                     role="super_admin", duty="business", permissions=frozenset({"activity.manage"}),
                     ip="10.0.0.3")
    for call in (rt.quizzes.manage_get(outsider, item["id"]), rt.quizzes.stats(outsider, item["id"]),
                 rt.quizzes.save(outsider, item["id"], {**RULES, "questions": BANK[:5]})):
        with pytest.raises(NotFound):
            await call
    assert await db.fetchval("SELECT count(*) FROM quiz_questions") == 10
