"""Lottery draws anyone can re-check, registration with review and its waitlist, no-show bans."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import timedelta

import pytest

from tests.services.activities.conftest import T0, make_workers, published
from wxbackend.services.activities.lottery import rank, verify
from wxbackend.services.errors import Conflict, Forbidden, NotFound


async def test_a_draw_is_committed_before_and_checkable_after(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, mode="lottery", form="ticket", stock=3)
    assert item["seed_hash"] and len(item["seed_hash"]) == 64
    workers = await make_workers(db, 10, unions["tianfu"])
    entries = [(await rt.signups.sign_up(w, item["id"]))["id"] for w in workers]
    before = await rt.lottery.record(item["id"])
    assert before["seed"] is None and before["seed_hash"] == item["seed_hash"]
    with pytest.raises(Conflict) as early:
        await rt.lottery.draw(organiser, item["id"])
    assert early.value.code == "draw_too_early"
    withdrawn = await rt.signups.cancel(workers[0], entries[0])  # out of the draw
    assert withdrawn["status"] == "cancelled"
    rt.clock.advance(timedelta(days=1, minutes=1))
    drawn = await rt.lottery.draw(organiser, item["id"])
    seed = bytes.fromhex(drawn["seed"])
    assert hashlib.sha256(seed).hexdigest() == item["seed_hash"]
    assert sorted(drawn["entries"]) == entries[1:]
    assert drawn["winners"] == verify(bytes.fromhex(item["seed_hash"]), seed, entries[1:], 3)
    statuses = dict(await db.fetch("SELECT id, status FROM offering_claims"))
    assert {i for i, s in statuses.items() if s == "held"} == set(drawn["winners"])
    assert sum(s == "lost" for s in statuses.values()) == 6
    assert await db.fetchval("SELECT taken FROM offerings WHERE id = $1", item["id"]) == 3
    assert await rt.lottery.draw(organiser, item["id"]) == drawn  # drawing again changes nothing
    with pytest.raises(ValueError):
        verify(bytes.fromhex(item["seed_hash"]), b"\0" * 32, entries, 3)
    assert rank(b"\1" * 32, entries) != rank(seed, entries)


async def test_the_worker_sweep_draws_closed_lotteries(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, mode="lottery", form="ticket", stock=5)
    workers = await make_workers(db, 4, unions["tianfu"])
    for w in workers:
        await rt.signups.sign_up(w, item["id"])
    assert await rt.lottery.draw_due() == 0
    rt.clock.advance(timedelta(days=2))
    assert await rt.lottery.draw_due() == 1
    assert await db.fetchval("SELECT count(*) FROM offering_claims WHERE status = 'held'") == 4
    assert await db.fetchval("SELECT actor FROM audit_log WHERE action = 'service.draw'") == "system"


async def test_review_takes_places_then_waitlists_and_the_list_moves_up(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, kind="activity", form="offline", mode="review", stock=2,
                           title="职工运动会")
    workers = await make_workers(db, 4, unions["tianfu"])
    claims = [(await rt.signups.sign_up(w, item["id"]))["id"] for w in workers]
    assert {(await rt.signups.mine(w))[0]["status"] for w in workers} == {"pending"}
    decided = await asyncio.gather(*(rt.registrations.approve(organiser, c) for c in claims[:3]))
    assert sorted(d["status"] for d in decided) == ["held", "held", "waitlisted"]
    assert await db.fetchval("SELECT taken FROM offerings WHERE id = $1", item["id"]) == 2
    with pytest.raises(Conflict):
        await rt.registrations.approve(organiser, claims[0])
    rejected = await rt.registrations.reject(organiser, claims[3], "名额已满，欢迎参加下次活动")
    assert rejected["status"] == "rejected"
    held = next(d for d in decided if d["status"] == "held")
    waiting = next(d for d in decided if d["status"] == "waitlisted")
    holder = await db.fetchval("SELECT account_id FROM offering_claims WHERE id = $1", held["id"])
    await rt.signups.confirm(holder, held["id"])
    await rt.signups.cancel(holder, held["id"])  # a place frees: the waitlist moves up
    moved = await db.fetchrow("SELECT status, hold_until FROM offering_claims WHERE id = $1", waiting["id"])
    assert moved["status"] == "held" and moved["hold_until"] > rt.clock()
    assert await db.fetchval("SELECT taken FROM offerings WHERE id = $1", item["id"]) == 2
    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'activity.%' ORDER BY id")]
    assert actions.count("activity.approve") == 3 and actions.count("activity.reject") == 1


async def test_review_stays_in_the_organisers_subtree_and_permission(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, kind="activity", form="offline", mode="review", stock=2)
    [worker] = await make_workers(db, 1, unions["tianfu"])
    claim = (await rt.signups.sign_up(worker, item["id"]))["id"]
    dazhou = await db.fetchval("SELECT path::text FROM orgs WHERE id = $1", unions["dazhou_city"])
    outsider = dataclasses.replace(organiser, org_path=dazhou)
    with pytest.raises(NotFound):
        await rt.registrations.approve(outsider, claim)
    services_only = dataclasses.replace(organiser, permissions=frozenset({"service.manage"}))
    with pytest.raises(Forbidden):
        await rt.registrations.approve(services_only, claim)
    assert await db.fetchval("SELECT status FROM offering_claims WHERE id = $1", claim) == "pending"


async def test_a_no_show_is_banned_from_the_organisers_sign_ups(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, kind="activity", form="offline", stock=5,
                           starts_at=(T0 + timedelta(days=2)).isoformat(),
                           ends_at=(T0 + timedelta(days=2, hours=3)).isoformat(), no_show_ban_days=30)
    [worker] = await make_workers(db, 1, unions["tianfu"])
    claim = await rt.signups.sign_up(worker, item["id"])
    await rt.signups.confirm(worker, claim["id"])
    later = await published(rt, organiser, kind="activity", form="offline", stock=5,
                            opens_at=(T0 + timedelta(days=3)).isoformat(),
                            closes_at=(T0 + timedelta(days=10)).isoformat())
    assert await rt.registrations.ban_no_shows() == 0  # not over yet
    rt.clock.advance(timedelta(days=3, hours=1))
    assert await rt.registrations.ban_no_shows() == 1
    assert (await rt.signups.mine(worker))[0]["status"] == "missed"
    with pytest.raises(Conflict) as banned:
        await rt.signups.sign_up(worker, later["id"])
    assert banned.value.code == "banned"
    assert await rt.registrations.ban_no_shows() == 0  # once per no-show
