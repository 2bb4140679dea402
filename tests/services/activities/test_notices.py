"""Results and reminders: queued with the change that causes them, as a Mini Program subscribe
message when the worker allowed it at the tap, else as the Official Account's template message,
else not at all (the pages show everything)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import APPID, MP_APPID, make_settings
from tests.services.activities.conftest import T0, make_workers, published

OA_TEMPLATE, MP_RESULT, MP_REMINDER = "TPL-OA-RESULT", "TPL-MP-RESULT", "TPL-MP-REMIND"


@pytest.fixture
def settings(fake_wechat):
    return make_settings(fake_wechat.base_url, activities={
        "notice_template_id": OA_TEMPLATE, "mp_result_template_id": MP_RESULT,
        "mp_reminder_template_id": MP_REMINDER})


async def identities(db, account: int, *, oa: bool = False, mp: bool = False) -> None:
    if oa:
        await db.execute("INSERT INTO account_identities (account_id, kind, issuer, subject) "
                         "VALUES ($1, 'oa_openid', $2, $3)", account, APPID, f"oa-{account}")
    if mp:
        await db.execute("INSERT INTO account_identities (account_id, kind, issuer, subject) "
                         "VALUES ($1, 'mp_openid', $2, $3)", account, MP_APPID, f"mp-{account}")


async def outbox(db) -> list[tuple[str, str, str]]:
    rows = await db.fetch("SELECT kind, payload, idempotency_key FROM outbox ORDER BY id")
    return [(r["kind"], r["payload"]["touser"], r["payload"]["data"]["phrase2"]["value"]) for r in rows]


async def test_draw_results_go_the_way_each_worker_can_receive(rt, db, unions, organiser,
                                                               fake_wechat) -> None:
    item = await published(rt, organiser, mode="lottery", form="ticket", stock=1, title="一元观影")
    tapped, follower, unreachable = await make_workers(db, 3, unions["tianfu"])
    await identities(db, tapped, oa=True, mp=True)
    await identities(db, follower, oa=True)
    await rt.signups.sign_up(tapped, item["id"], subscribed=[MP_RESULT, "TPL-SOMEONE-ELSES"])
    await rt.signups.sign_up(follower, item["id"])
    await rt.signups.sign_up(unreachable, item["id"])
    grants = await db.fetchval("SELECT notice_grants FROM offering_claims WHERE account_id = $1", tapped)
    assert grants == [MP_RESULT]
    rt.clock.advance(timedelta(days=1, minutes=1))
    drawn = await rt.lottery.draw(organiser, item["id"])
    winner = await db.fetchval("SELECT account_id FROM offering_claims WHERE id = $1", drawn["winners"][0])
    queued = await outbox(db)
    assert len(queued) == 2  # the third worker can be reached by neither way
    expected = {("mp_subscribe", f"mp-{tapped}", "已中签" if winner == tapped else "未中签"),
                ("template", f"oa-{follower}", "已中签" if winner == follower else "未中签")}
    assert set(queued) == expected
    payload = await db.fetchval("SELECT payload FROM outbox WHERE kind = 'template'")
    assert payload["template_id"] == OA_TEMPLATE and payload["data"]["thing1"] == {"value": "一元观影"}
    # The worker delivers them, each with its own app's token; one tap, one send.
    fake_wechat.grant_subscribe(f"mp-{tapped}", MP_RESULT)
    await rt.outbox.run_once()
    sent = {path: [b["touser"] for b in fake_wechat.delivered(path)]
            for path in ("/cgi-bin/message/subscribe/send", "/cgi-bin/message/template/send")}
    assert sent == {"/cgi-bin/message/subscribe/send": [f"mp-{tapped}"],
                    "/cgi-bin/message/template/send": [f"oa-{follower}"]}


async def test_review_results_and_the_waitlist_are_told(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, kind="activity", form="offline", mode="review", stock=1)
    first, second = await make_workers(db, 2, unions["tianfu"])
    for w in (first, second):
        await identities(db, w, oa=True)
    claims = [(await rt.signups.sign_up(w, item["id"]))["id"] for w in (first, second)]
    await rt.registrations.approve(organiser, claims[0])
    await rt.registrations.approve(organiser, claims[1])
    await rt.signups.confirm(first, claims[0])
    await rt.signups.cancel(first, claims[0])
    assert await outbox(db) == [("template", f"oa-{first}", "审核通过"),
                                ("template", f"oa-{second}", "进入候补"),
                                ("template", f"oa-{second}", "候补成功")]


async def test_the_day_before_each_confirmed_place_is_reminded_once(rt, db, unions, organiser) -> None:
    tomorrow = T0 + timedelta(days=1)
    item = await published(rt, organiser, kind="activity", form="offline", stock=5,
                           starts_at=tomorrow.replace(hour=14).isoformat(),
                           ends_at=tomorrow.replace(hour=17).isoformat(), cancel_until=T0.isoformat())
    later = await published(rt, organiser, kind="activity", form="offline", stock=5,
                            starts_at=(T0 + timedelta(days=5)).isoformat(),
                            ends_at=(T0 + timedelta(days=5, hours=2)).isoformat())
    going, other = await make_workers(db, 2, unions["tianfu"])
    await identities(db, going, oa=True)
    await identities(db, other, oa=True)
    for w, it in ((going, item), (other, later)):
        claim = await rt.signups.sign_up(w, it["id"])
        await rt.signups.confirm(w, claim["id"])
    assert await rt.notices.remind_tomorrow(rt.pool) == 1
    assert await rt.notices.remind_tomorrow(rt.pool) == 0
    assert await outbox(db) == [("template", f"oa-{going}", "明日开始")]
