"""Online votes: the options, votes per day and in all, counts that always equal the votes cast
(under concurrent ballots too), counts hidden until the close when the organiser asks, and the
vote gate on a first-come claim."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.services.activities.conftest import T0, item_body, make_workers
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput

OPTIONS = [{"label": f"候选{n}", "summary": f"第{n}号作品"} for n in range(1, 6)]


async def poll(rt, organiser, *, item=None, **rules) -> dict:
    body = item_body(**{"kind": "activity", "form": "vote", "title": "最美职工评选", "stock": 100,
                        "closes_at": (T0 + timedelta(days=3)).isoformat(), **(item or {})})
    created = await rt.catalogue.create(organiser, body)
    await rt.polls.save(organiser, created["id"], {"votes_per_day": 2, **rules, "options": OPTIONS})
    return await rt.catalogue.set_status(organiser, created["id"], "published")


def ids(view: dict) -> list[int]:
    return [o["id"] for o in view["options"]]


async def test_a_vote_needs_two_options_and_sane_rules(rt, db, organiser) -> None:
    created = await rt.catalogue.create(organiser, item_body(kind="activity", form="vote"))
    with pytest.raises(Conflict) as empty:
        await rt.catalogue.set_status(organiser, created["id"], "published")
    assert empty.value.code == "item_not_ready"
    for body, words in (({"options": OPTIONS[:1]}, "2–200"),
                        ({"options": [OPTIONS[0], OPTIONS[0]]}, "重复"),
                        ({"votes_per_day": 3, "votes_total": 2, "options": OPTIONS}, "总票数"),
                        ({"show_counts": "never", "options": OPTIONS}, "显示方式"),
                        ({"show_counts": {"live": 1}, "options": OPTIONS}, "显示方式"),
                        ({"options": [{"label": ""}, OPTIONS[1]]}, "名称")):
        with pytest.raises(InvalidInput) as refused:
            await rt.polls.save(organiser, created["id"], body)
        assert words in refused.value.message
    assert await db.fetchval("SELECT count(*) FROM polls") == 0


async def test_votes_per_day_and_in_all(rt, db, unions, organiser) -> None:
    item = await poll(rt, organiser, votes_total=3)
    [worker] = await make_workers(db, 1, unions["tianfu"])
    a, b, c, *_ = ids(await rt.polls.view(worker, item["id"]))
    after = await rt.polls.cast(worker, item["id"], [a])
    assert after["votes_left_today"] == 1 and after["options"][0]["votes"] == 1
    with pytest.raises(Conflict) as twice:
        await rt.polls.cast(worker, item["id"], [a])
    assert twice.value.code == "already_voted"
    with pytest.raises(Conflict) as over:
        await rt.polls.cast(worker, item["id"], [b, c])  # one vote left: neither is counted
    assert over.value.code == "votes_used_today"
    assert await db.fetchval("SELECT count(*) FROM poll_votes") == 1
    await rt.polls.cast(worker, item["id"], [b])
    rt.clock.set(T0.replace(hour=0, minute=1) + timedelta(days=1))  # the next China day
    with pytest.raises(Conflict) as total:
        await rt.polls.cast(worker, item["id"], [a, b])
    assert total.value.code == "votes_used"
    view = await rt.polls.cast(worker, item["id"], [a])
    assert [o["votes"] for o in view["options"]][:3] == [2, 1, 0] and view["votes_cast"] == 3


async def test_concurrent_ballots_never_exceed_a_workers_votes(rt, db, unions, organiser) -> None:
    item = await poll(rt, organiser, votes_per_day=3)
    [worker] = await make_workers(db, 1, unions["tianfu"])
    options = ids(await rt.polls.view(worker, item["id"]))
    ballots = [[o] for o in options] * 4
    results = await asyncio.gather(*(rt.polls.cast(worker, item["id"], b) for b in ballots),
                                   return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 3
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert await db.fetchval("SELECT count(*) FROM poll_votes") == 3
    assert await db.fetchval("SELECT coalesce(sum(votes), 0) FROM poll_counts") == 3


async def test_counts_equal_the_votes_under_a_crowd(rt, db, unions, organiser) -> None:
    item = await poll(rt, organiser, votes_per_day=2)
    workers = await make_workers(db, 60, unions["tianfu"])
    a, b, *_ = ids(await rt.polls.view(workers[0], item["id"]))
    await asyncio.gather(*(rt.polls.cast(w, item["id"], [b, a] if n % 2 else [a])
                           for n, w in enumerate(workers)))
    counted = dict(await db.fetch("SELECT option_id, count(*) FROM poll_votes GROUP BY option_id"))
    kept = dict(await db.fetch("SELECT option_id, sum(votes) FROM poll_counts GROUP BY option_id"))
    assert counted == kept == {a: 60, b: 30}
    seen = await rt.polls.manage_get(organiser, item["id"])
    assert seen["voters"] == 60 and [o["votes"] for o in seen["options"]][:2] == [60, 30]


async def test_counts_can_wait_for_the_close(rt, db, unions, organiser) -> None:
    item = await poll(rt, organiser, show_counts="after_close")
    [worker] = await make_workers(db, 1, unions["tianfu"])
    first = ids(await rt.polls.view(worker, item["id"]))[0]
    during = await rt.polls.cast(worker, item["id"], [first])
    assert during["counts_shown"] is False and {o["votes"] for o in during["options"]} == {None}
    assert during["options"][0]["voted_today"] is True
    assert (await rt.polls.manage_get(organiser, item["id"]))["options"][0]["votes"] == 1
    rt.clock.advance(timedelta(days=4))
    after = await rt.polls.view(worker, item["id"])
    assert after["counts_shown"] is True and after["options"][0]["votes"] == 1
    with pytest.raises(Conflict) as closed:
        await rt.polls.cast(worker, item["id"], [first])
    assert closed.value.code == "closed"


async def test_bad_ballots_write_nothing(rt, db, unions, organiser) -> None:
    item = await poll(rt, organiser, item={"audience": {"level": "certified", "orgs": [unions["tianfu"]]}})
    other = await poll(rt, organiser)
    [member] = await make_workers(db, 1, unions["tianfu"])
    [outsider] = await make_workers(db, 1, unions["jinjiang"])
    foreign = ids(await rt.polls.view(member, other["id"]))[0]
    mine = ids(await rt.polls.view(member, item["id"]))[0]
    for ballot in ([], [foreign], "1", [mine, mine], [True]):
        with pytest.raises(InvalidInput):
            await rt.polls.cast(member, item["id"], ballot)
    with pytest.raises(Forbidden) as refused:
        await rt.polls.cast(outsider, item["id"], [mine])
    assert refused.value.code == "not_eligible"
    assert await db.fetchval("SELECT count(*) FROM poll_votes") == 0
    assert await db.fetchval("SELECT coalesce(sum(votes), 0) FROM poll_counts") == 0


async def test_a_vote_gated_claim(rt, db, unions, organiser) -> None:
    item = await poll(rt, organiser, item={"mode": "first_come", "stock": 1})
    a, b = await make_workers(db, 2, unions["tianfu"])
    with pytest.raises(Forbidden) as first:
        await rt.signups.sign_up(a, item["id"])
    assert first.value.code == "vote_first"
    await rt.polls.cast(a, item["id"], ids(await rt.polls.view(a, item["id"]))[:1])
    assert (await rt.signups.sign_up(a, item["id"]))["status"] == "held"
    await rt.polls.cast(b, item["id"], ids(await rt.polls.view(b, item["id"]))[:1])
    with pytest.raises(Conflict) as gone:
        await rt.signups.sign_up(b, item["id"])
    assert gone.value.code == "sold_out"


async def test_options_are_fixed_once_the_vote_opens(rt, db, organiser) -> None:
    item = await poll(rt, organiser)
    with pytest.raises(Conflict) as fixed:
        await rt.polls.save(organiser, item["id"], {"options": OPTIONS[:2]})
    assert fixed.value.code == "vote_fixed"
    assert await db.fetchval("SELECT count(*) FROM poll_options") == 5
