"""The membership reviews report into the casework events: one completion rate covers joins,
disputes, transfers and foundings alongside the appeals; a withdrawn application leaves the count."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.services.membership.test_membership import join_form, worker
from wxbackend.services.clock import CHINA
from wxbackend.services.membership.idnumbers import id_check_char

LI_ID = "51010419880512003" + id_check_char("51010419880512003")


async def test_applications_count_in_the_rates_and_a_withdrawal_leaves_them(rt, db, unions, reviewer) -> None:
    zhang, li = await worker(rt, "oZhang"), await worker(rt, "oLi", "13800000002")
    approved = await rt.membership.apply_join(zhang, join_form(unions["tianfu"]))
    withdrawn = await rt.membership.apply_join(li, join_form(unions["jinjiang"], name="李四",
                                                             number=LI_ID))
    await rt.membership.withdraw(li, withdrawn["id"])
    await rt.reviews.approve(reviewer, approved["id"])
    events = [(r["ref"], r["kind"]) for r in await db.fetch("SELECT ref, kind FROM work_events ORDER BY id")]
    a, w = f"application:{approved['id']}", f"application:{withdrawn['id']}"
    assert events == [(a, "opened"), (a, "due"), (w, "opened"), (w, "due"), (w, "cancelled"),
                      (a, "closed")]
    # The applications carry the database's own times: a window around them, whatever the hour.
    now = datetime.now(CHINA)
    start, end = now - timedelta(days=1), now + timedelta(days=30)
    rates = await rt.rates.compute(reviewer.org_path, start, end, end, module="membership")
    total = rates["total"]["all"]
    assert (total["due"], total["closed"], total["on_time"]) == (1, 1, 1)
    assert rates["total"]["modules"]["membership"]["name"] == "入会、认证、建会与转会审核"
