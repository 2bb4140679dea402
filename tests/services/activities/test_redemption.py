"""Redemption and check-in against real PostgreSQL: a confirmed place is used exactly once, by
staff bound to its item, with a fresh code; a retried request gets its first answer again."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import pytest

from tests.services.activities.conftest import make_workers, published
from wxbackend.services.errors import Conflict, InvalidInput, NotFound, Unauthenticated


async def confirmed(rt, db, union: int, item: dict, n: int) -> list[tuple[int, int]]:
    """(account, claim) for ``n`` workers holding a confirmed place."""
    out = []
    for worker in await make_workers(db, n, union):
        claim = await rt.signups.sign_up(worker, item["id"])
        await rt.signups.confirm(worker, claim["id"])
        out.append((worker, claim["id"]))
    return out


async def verifier_for(rt, organiser, items: list[dict], username: str) -> dict:
    made = await rt.redemption.create_verifier(organiser, {
        "username": username, "display_name": "影院前台", "offering_ids": [i["id"] for i in items]})
    signed_in = await rt.redemption.sign_in(username, made["password"], "10.9.0.1")
    return await rt.redemption.verifier(signed_in["token"])


def rid() -> str:
    return uuid.uuid4().hex


async def test_a_code_is_redeemed_once_by_its_merchant_only(rt, db, unions, organiser) -> None:
    cinema, spa = (await published(rt, organiser, stock=5, title="电影票"),
                   await published(rt, organiser, stock=5, title="疗休养"))
    [(worker, claim)] = await confirmed(rt, db, unions["tianfu"], cinema, 1)
    at_cinema = await verifier_for(rt, organiser, [cinema], "cinema01")
    at_spa = await verifier_for(rt, organiser, [spa], "spa01")
    code = (await rt.redemption.code_for(worker, claim))["code"]
    status, answer = await rt.redemption.redeem(at_spa, code, rid())
    assert (status, answer["error"]["code"]) == (403, "other_item")
    first = rid()
    status, answer = await rt.redemption.redeem(at_cinema, code, first)
    assert status == 200 and answer["redeemed"] and answer["holder"] == "测*"
    assert await rt.redemption.redeem(at_cinema, code, first) == (status, answer)  # a retry
    status, again = await rt.redemption.redeem(at_cinema, code, rid())
    assert (status, again["error"]["code"]) == (409, "already_used")
    row = await db.fetchrow("SELECT status, used_by FROM offering_claims WHERE id = $1", claim)
    assert row["status"] == "used" and "cinema01" in row["used_by"]
    with pytest.raises(Conflict):
        await rt.redemption.code_for(worker, claim)


async def test_forged_expired_and_unconfirmed_codes_change_nothing(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=5)
    [(worker, claim)] = await confirmed(rt, db, unions["tianfu"], item, 1)
    [other] = await make_workers(db, 1, unions["tianfu"])
    held = await rt.signups.sign_up(other, item["id"])
    staff = await verifier_for(rt, organiser, [item], "desk01")
    with pytest.raises(Conflict):
        await rt.redemption.code_for(other, held["id"])   # a hold not yet confirmed
    with pytest.raises(NotFound):
        await rt.redemption.code_for(other, claim)        # someone else's place
    code = (await rt.redemption.code_for(worker, claim))["code"]
    forged = code[:-2] + ("AA" if code[-2:] != "AA" else "BB")
    assert (await rt.redemption.redeem(staff, forged, rid()))[1]["error"]["code"] == "code_invalid"
    rt.clock.advance(timedelta(minutes=3))                # a screenshot from three minutes ago
    assert (await rt.redemption.redeem(staff, code, rid()))[1]["error"]["code"] == "code_expired"
    with pytest.raises(InvalidInput):
        await rt.redemption.redeem(staff, code, "x")      # no proper request id
    assert await db.fetchval("SELECT count(*) FROM offering_claims WHERE status = 'used'") == 0


async def test_a_hundred_codes_each_scanned_by_ten_verifiers_at_once(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=100, per_person=1)
    places = await confirmed(rt, db, unions["tianfu"], item, 100)
    staff = [await verifier_for(rt, organiser, [item], f"desk{i:02d}") for i in range(10)]
    codes = [(await rt.redemption.code_for(w, c))["code"] for w, c in places]
    answers = await asyncio.gather(*(rt.redemption.redeem(s, code, rid()) for code in codes for s in staff))
    assert Counter(status for status, _ in answers) == {200: 100, 409: 900}
    assert await db.fetchval("SELECT count(*) FROM offering_claims WHERE status = 'used'") == 100
    assert await db.fetchval("SELECT count(*) FROM redemptions WHERE status = 200") == 100


async def test_venue_check_in_needs_a_fresh_screen_code_and_happens_once(rt, db, unions, organiser) -> None:
    talk = await published(rt, organiser, kind="activity", form="offline", stock=5, title="职工讲座")
    other = await published(rt, organiser, kind="activity", form="offline", stock=5, title="另一场")
    [(worker, claim)] = await confirmed(rt, db, unions["tianfu"], talk, 1)
    [(stranger, _)] = await confirmed(rt, db, unions["tianfu"], other, 1)
    screen = (await rt.redemption.venue_code(organiser, talk["id"]))["code"]
    elsewhere = (await rt.redemption.venue_code(organiser, other["id"]))["code"]
    with pytest.raises(InvalidInput):
        await rt.redemption.check_in_at_venue(worker, talk["id"], elsewhere)
    with pytest.raises(Conflict) as no_place:
        await rt.redemption.check_in_at_venue(stranger, talk["id"], screen)
    assert no_place.value.code == "no_place"
    rt.clock.advance(timedelta(seconds=50))  # a photo of the screen from a minute ago
    with pytest.raises(InvalidInput) as stale:
        await rt.redemption.check_in_at_venue(worker, talk["id"], screen)
    assert stale.value.code == "venue_code_expired"
    fresh = (await rt.redemption.venue_code(organiser, talk["id"]))["code"]
    done = await rt.redemption.check_in_at_venue(worker, talk["id"], fresh)
    assert done["signup_id"] == claim
    with pytest.raises(Conflict):
        await rt.redemption.check_in_at_venue(worker, talk["id"], fresh)


async def test_staff_check_in_and_disabled_verifiers(rt, db, unions, organiser) -> None:
    talk = await published(rt, organiser, kind="activity", form="offline", stock=5)
    [(worker, claim)] = await confirmed(rt, db, unions["tianfu"], talk, 1)
    code = (await rt.redemption.code_for(worker, claim))["code"]
    done = await rt.redemption.check_in_by_cadre(organiser, talk["id"], code)
    assert done["signup_id"] == claim
    with pytest.raises(Conflict):
        await rt.redemption.check_in_by_cadre(organiser, talk["id"], code)
    made = await rt.redemption.create_verifier(organiser, {
        "username": "door01", "display_name": "门口", "offering_ids": [talk["id"]]})
    token = (await rt.redemption.sign_in("door01", made["password"], "10.9.0.2"))["token"]
    await rt.redemption.disable_verifier(organiser, made["verifier"]["id"])
    with pytest.raises(Unauthenticated):
        await rt.redemption.verifier(token)
    with pytest.raises(Unauthenticated):
        await rt.redemption.sign_in("door01", made["password"], "10.9.0.2")
    actions = [r["action"] for r in
               await db.fetch("SELECT action FROM audit_log WHERE action LIKE 'verifier.%' ORDER BY id")]
    assert actions == ["verifier.create", "verifier.disable"]
