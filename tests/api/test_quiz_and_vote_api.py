"""Quizzes and votes over HTTP: the organiser sets the bank and the options in the console API,
workers answer and vote from the Mini Program and then sign up; every answer matches the
documents."""

from __future__ import annotations

from datetime import timedelta

from tests.api.test_activities_api import console, grassroots, worker_client  # noqa: F401
from tests.api.test_openapi import ADMIN_DOC, MP_DOC, Contract
from tests.services.activities.conftest import make_workers
from tests.services.activities.test_quizzes import BANK, right_answers


def window(rt) -> dict:
    now = rt.clock()
    return {"opens_at": (now - timedelta(minutes=1)).isoformat(),
            "closes_at": (now + timedelta(days=1)).isoformat()}


async def test_a_quiz_gated_lottery_end_to_end(server, rt, db, console) -> None:  # noqa: F811
    admin, mp = Contract(ADMIN_DOC), Contract(MP_DOC)
    union = await grassroots(db, "SC-510100", "天府软件工会")
    body = {"kind": "activity", "form": "quiz", "mode": "lottery", "title": "安康杯知识竞赛", "stock": 2,
            "audience": {"level": "certified", "orgs": [union]}, **window(rt)}
    item = (await console.post(f"{server}/admin/v1/offerings", json=body)).json()["offering"]
    early = await console.post(f"{server}/admin/v1/offerings/{item['id']}/publish")
    assert early.status_code == 409 and early.json()["error"]["code"] == "item_not_ready"
    bad = await console.put(f"{server}/admin/v1/offerings/{item['id']}/quiz",
                            json={"per_round": 20, "questions": BANK})
    assert bad.status_code == 400 and "少于每轮题数" in bad.json()["error"]["message"]
    saved = await console.put(f"{server}/admin/v1/offerings/{item['id']}/quiz",
                              json={"per_round": 5, "pass_mark": 4, "questions": BANK})
    bank = admin.check("/admin/v1/offerings/{offering_id}/quiz", "put", saved)["quiz"]
    assert len(bank["questions"]) == 10 and bank["rules"]["rounds_per_day"] == 3
    assert (await console.post(f"{server}/admin/v1/offerings/{item['id']}/publish")).status_code == 200

    [worker] = await make_workers(db, 1, union)
    client = await worker_client(rt, worker)
    try:
        refused = await client.post(f"{server}/mp/v1/offerings/{item['id']}/signup")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "quiz_not_passed"
        started = await client.post(f"{server}/mp/v1/offerings/{item['id']}/quiz/rounds")
        shown = mp.check("/mp/v1/offerings/{offering_id}/quiz/rounds", "post", started)["round"]
        assert started.status_code == 201 and "answer" not in shown["questions"][0]
        view = await client.get(f"{server}/mp/v1/offerings/{item['id']}/quiz")
        current = mp.check("/mp/v1/offerings/{offering_id}/quiz", "get", view)["quiz"]["current"]
        assert current["id"] == shown["id"]
        handed = await client.post(f"{server}/mp/v1/quiz-rounds/{shown['id']}/answers",
                                   json={"answers": right_answers(shown)})
        result = mp.check("/mp/v1/quiz-rounds/{round_id}/answers", "post", handed)["round"]
        assert result["passed"] is True and result["score"] == 5
        wrong = await client.post(f"{server}/mp/v1/quiz-rounds/{shown['id'] + 1}/answers",
                                  json={"answers": []})
        assert wrong.status_code == 404
        signed = await client.post(f"{server}/mp/v1/offerings/{item['id']}/signup")
        assert signed.status_code == 201 and signed.json()["signup"]["status"] == "entered"
    finally:
        await client.aclose()
    stats = await console.get(f"{server}/admin/v1/offerings/{item['id']}/quiz/stats")
    counted = admin.check("/admin/v1/offerings/{offering_id}/quiz/stats", "get", stats)["stats"]
    assert (counted["participants"], counted["passed_workers"]) == (1, 1)
    assert [u["name"] for u in counted["by_union"]] == ["天府软件工会"]
    fixed = await console.put(f"{server}/admin/v1/offerings/{item['id']}/quiz", json={"questions": BANK})
    assert fixed.status_code == 409 and fixed.json()["error"]["code"] == "quiz_fixed"


async def test_a_vote_end_to_end(server, rt, db, console) -> None:  # noqa: F811
    admin, mp = Contract(ADMIN_DOC), Contract(MP_DOC)
    union = await grassroots(db, "SC-510100", "锦江宾馆工会")
    body = {"kind": "activity", "form": "vote", "mode": "first_come", "title": "最美职工评选", "stock": 1,
            "audience": {"level": "member"}, **window(rt)}
    item = (await console.post(f"{server}/admin/v1/offerings", json=body)).json()["offering"]
    saved = await console.put(f"{server}/admin/v1/offerings/{item['id']}/poll",
                              json={"votes_per_day": 2, "show_counts": "after_close",
                                    "options": [{"label": "张师傅"},
                                                {"label": "李护士", "summary": "急诊科"}]})
    options = admin.check("/admin/v1/offerings/{offering_id}/poll", "put", saved)["poll"]["options"]
    assert (await console.post(f"{server}/admin/v1/offerings/{item['id']}/publish")).status_code == 200
    [worker] = await make_workers(db, 1, union)
    client = await worker_client(rt, worker)
    try:
        cast = await client.post(f"{server}/mp/v1/offerings/{item['id']}/poll/votes",
                                 json={"option_ids": [o["id"] for o in options]})
        poll = mp.check("/mp/v1/offerings/{offering_id}/poll/votes", "post", cast)["poll"]
        assert cast.status_code == 201 and poll["votes_left_today"] == 0
        assert [o["votes"] for o in poll["options"]] == [None, None]  # shown after the close
        again = await client.post(f"{server}/mp/v1/offerings/{item['id']}/poll/votes",
                                  json={"option_ids": [options[0]["id"]]})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_voted"
        seen = await client.get(f"{server}/mp/v1/offerings/{item['id']}/poll")
        assert mp.check("/mp/v1/offerings/{offering_id}/poll", "get", seen)["poll"]["votes_cast"] == 2
        signed = await client.post(f"{server}/mp/v1/offerings/{item['id']}/signup")
        assert signed.status_code == 201 and signed.json()["signup"]["status"] == "held"
    finally:
        await client.aclose()
    counts = await console.get(f"{server}/admin/v1/offerings/{item['id']}/poll")
    managed = admin.check("/admin/v1/offerings/{offering_id}/poll", "get", counts)["poll"]
    assert [o["votes"] for o in managed["options"]] == [1, 1] and managed["voters"] == 1
