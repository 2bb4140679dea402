"""First-come drops against real PostgreSQL and Redis, with concurrent attempts: no unit is given
twice, nobody gets more than the caps allow, no hold is lost — also when Redis is flushed, when a
process dies between Redis and PostgreSQL, and when holds lapse."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from tests.services.activities.conftest import make_workers, published
from wxbackend.services.activities.admission import Admission, Gate
from wxbackend.services.errors import Conflict, Forbidden


async def attempt(rt, account_id: int, offering_id: int) -> str:
    try:
        await rt.signups.sign_up(account_id, offering_id)
        return "won"
    except (Conflict, Forbidden) as exc:
        return exc.code


async def record(db, offering_id: int) -> tuple[int, list[int]]:
    taken = await db.fetchval("SELECT taken FROM offerings WHERE id = $1", offering_id)
    holders = [r["account_id"] for r in await db.fetch(
        "SELECT account_id FROM offering_claims WHERE offering_id = $1 AND status = 'held'", offering_id)]
    return taken, holders


async def gate_stock(rt, item: dict) -> int | None:
    value = await rt.redis.get(Gate.of(item["id"], item["campaign_id"], rt.clock().date()).stock)
    return None if value is None else int(value)


async def test_a_burst_gives_every_unit_once_and_answers_the_rest_plainly(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=20)
    workers = await make_workers(db, 120, unions["tianfu"])
    tries = [w for w in workers for _ in range(2)]  # everyone tries twice, all at once
    answers = Counter(await asyncio.gather(*(attempt(rt, w, item["id"]) for w in tries)))
    assert answers["won"] == 20
    assert set(answers) <= {"won", "sold_out", "over_cap"}
    taken, holders = await record(db, item["id"])
    assert taken == 20 and len(holders) == 20 and len(set(holders)) == 20
    assert await gate_stock(rt, item) == 0


async def test_one_worker_hammering_gets_one_unit(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=5)
    [worker] = await make_workers(db, 1, unions["tianfu"])
    answers = Counter(await asyncio.gather(*(attempt(rt, worker, item["id"]) for _ in range(30))))
    assert answers == {"won": 1, "over_cap": 29}
    assert await record(db, item["id"]) == (1, [worker])
    # The very first attempt of a worker is admitted (a Lua test on 0 would say "already taken").
    [other] = await make_workers(db, 1, unions["tianfu"])
    assert await attempt(rt, other, item["id"]) == "won"


async def test_the_record_holds_even_when_the_gate_is_wrong_or_gone(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=10)
    workers = await make_workers(db, 60, unions["tianfu"])
    first = await asyncio.gather(*(attempt(rt, w, item["id"]) for w in workers[:20]))
    assert first.count("won") == 10
    await rt.redis.flushdb()  # the gate is lost mid-drop: rebuilt from PostgreSQL, not unlimited
    again = await asyncio.gather(*(attempt(rt, w, item["id"]) for w in workers))
    assert again.count("won") == 0
    taken, holders = await record(db, item["id"])
    assert taken == 10 and len(set(holders)) == 10
    assert await gate_stock(rt, item) == 0
    # A gate that says there is stock when there is none only sends workers to PostgreSQL's
    # refusal: nobody gets an eleventh unit, and each refusal puts the gate right.
    gate = Gate.of(item["id"], None, rt.clock().date())
    await rt.redis.set(gate.stock, 5)
    late = await asyncio.gather(*(attempt(rt, w, item["id"]) for w in workers[20:40]))
    assert late.count("won") == 0 and await record(db, item["id"]) == (taken, holders)


async def test_an_admission_whose_process_died_is_given_back(rt, db, unions, organiser) -> None:
    """Admitted in Redis, never recorded (the process was killed in between): after the grace
    period the reconciliation returns the unit and the worker's count."""
    item = await published(rt, organiser, stock=3)
    a, b, c = await make_workers(db, 3, unions["tianfu"])
    assert await attempt(rt, a, item["id"]) == "won"
    cat_item = rt.catalogue.admission_item(await rt.catalogue.published(item["id"]))
    gate = Gate.of(item["id"], None, rt.clock().date())
    admission = Admission(rt.pool, rt.redis, now=rt.clock, grace_seconds=0)
    left = await admission._admit(keys=gate.keys, args=[b, 1, 0, 0, uuid.uuid4().hex, 0])
    assert left == 1  # b's admission, as a dying process left it
    report = await admission.reconcile(cat_item)
    assert report["returned"] == 1 and report["stock"] == 2
    assert await gate_stock(rt, item) == 2 == item["stock"] - (await record(db, item["id"]))[0]
    assert await attempt(rt, b, item["id"]) == "won"  # b was not counted as having one
    assert await attempt(rt, c, item["id"]) == "won"


async def test_reconciliation_corrects_a_drifted_gate_only_when_quiet(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=8)
    workers = await make_workers(db, 3, unions["tianfu"])
    for w in workers:
        assert await attempt(rt, w, item["id"]) == "won"
    gate = Gate.of(item["id"], None, rt.clock().date())
    await rt.redis.set(gate.stock, 1)  # drifted (a lost give-back, say)
    [report] = await rt.signups.reconcile()
    assert report["stock"] == 5 and await gate_stock(rt, item) == 5


async def test_an_unconfirmed_hold_lapses_in_postgresql_and_its_unit_returns(rt, db, unions,
                                                                             organiser) -> None:
    item = await published(rt, organiser, stock=2, hold_minutes=30)
    a, b, c = await make_workers(db, 3, unions["tianfu"])
    won_a = await rt.signups.sign_up(a, item["id"])
    won_b = await rt.signups.sign_up(b, item["id"])
    assert won_a["status"] == "held" and await attempt(rt, c, item["id"]) == "sold_out"
    await rt.signups.confirm(b, won_b["id"])
    rt.clock.advance(timedelta(minutes=29))
    assert await rt.signups.lapse_holds() == 0
    rt.clock.advance(timedelta(minutes=2))
    with pytest.raises(Conflict) as late:
        await rt.signups.confirm(a, won_a["id"])
    assert late.value.code == "hold_lapsed"
    assert await rt.signups.lapse_holds() == 1
    assert await record(db, item["id"]) == (1, [])
    assert await gate_stock(rt, item) == 1
    assert await attempt(rt, a, item["id"]) == "over_cap"  # a lapsed hold was a's chance
    assert await attempt(rt, c, item["id"]) == "won"
    statuses = dict(await db.fetch("SELECT account_id, status FROM offering_claims"))
    assert statuses == {a: "lapsed", b: "confirmed", c: "held"}


async def test_a_place_given_back_goes_to_the_next_worker(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=1)
    a, b = await make_workers(db, 2, unions["tianfu"])
    won = await rt.signups.sign_up(a, item["id"])
    assert await attempt(rt, b, item["id"]) == "sold_out"
    assert (await rt.signups.cancel(a, won["id"]))["status"] == "cancelled"
    assert await attempt(rt, b, item["id"]) == "won"
    assert await attempt(rt, a, item["id"]) == "sold_out"


async def test_caps_per_day_and_per_campaign_hold_under_concurrency(rt, db, unions, organiser) -> None:
    campaign = await rt.catalogue.create_campaign(organiser, {"title": "夏日送清凉", "per_person": 2})
    items = [await published(rt, organiser, stock=50, per_person=3, per_day=2,
                             campaign_id=campaign["id"], title=f"券{i}") for i in range(2)]
    [worker] = await make_workers(db, 1, unions["tianfu"])
    answers = await asyncio.gather(*(attempt(rt, worker, it["id"]) for it in items for _ in range(6)))
    assert answers.count("won") == 2  # the campaign's cap, across both items
    assert await db.fetchval("SELECT count(*) FROM offering_claims WHERE account_id = $1", worker) == 2


async def test_losers_are_refused_with_reasons_and_nothing_is_written(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=5,
                           audience={"level": "certified", "orgs": [unions["tianfu"]]})
    [outsider] = await make_workers(db, 1, unions["jinjiang"])
    [retained] = await make_workers(db, 1, unions["tianfu"], level="member")
    [unregistered] = await make_workers(db, 1, None)
    await db.execute("UPDATE accounts SET registered_at = NULL WHERE id = $1", unregistered)
    for worker, words in ((outsider, "指定工会"), (retained, "认证会员"), (unregistered, "注册")):
        with pytest.raises(Forbidden) as refused:
            await rt.signups.sign_up(worker, item["id"])
        assert refused.value.code == "not_eligible" and words in refused.value.message
    assert await db.fetchval("SELECT count(*) FROM offering_claims") == 0
    rt.clock.advance(timedelta(days=2))
    [member] = await make_workers(db, 1, unions["tianfu"])
    assert await attempt(rt, member, item["id"]) == "closed"


async def test_a_process_remembers_a_sold_out_item_until_a_unit_comes_back(rt, db, unions,
                                                                          organiser) -> None:
    item = await published(rt, organiser, stock=1)
    a, b = await make_workers(db, 2, unions["tianfu"])
    cat_item = rt.catalogue.admission_item(await rt.catalogue.published(item["id"]))
    admission = Admission(rt.pool, rt.redis, now=rt.clock, sold_out_memo=3600)
    await admission.take(cat_item, a)
    with pytest.raises(Conflict) as lost:
        await admission.take(cat_item, b)
    assert lost.value.code == "sold_out"
    await rt.redis.flushdb()
    assert await admission.sold_out(cat_item)  # from memory: no Redis round trip
    await admission.returned(cat_item, 1)      # a unit given back in this process ends it
    assert not await admission.sold_out(cat_item)


async def test_a_cancelled_account_gives_its_places_back(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=1)
    leaver, next_one = await make_workers(db, 2, unions["tianfu"])
    won = await rt.signups.sign_up(leaver, item["id"])
    await rt.signups.confirm(leaver, won["id"])
    assert await attempt(rt, next_one, item["id"]) == "sold_out"
    await db.execute("UPDATE accounts SET status = 'cancelled', cancelled_at = now() WHERE id = $1", leaver)
    assert await rt.signups.release_cancelled_accounts() == 1
    assert await rt.signups.release_cancelled_accounts() == 0
    assert await db.fetchval("SELECT status FROM offering_claims WHERE id = $1", won["id"]) == "cancelled"
    assert await attempt(rt, next_one, item["id"]) == "won"
