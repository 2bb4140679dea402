"""Deadlines as rows: the sweep's reminders before due, at due and the escalation to the union
above (quiet hours respected, never twice), provisional limits in a year the calendar does not
know and their recomputation when the year is imported, and the completion rates from events."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest

from tests.services.casework.conftest import T0, bind, sent_to
from tests.services.casework.test_calendar import NOTICE_2027, office  # noqa: F401 (fixture)
from wxbackend.services.casework.rates import period_bounds
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Conflict


async def file_appeal(rt, worker: int, org_id: int) -> int:
    appeal = await rt.appeals.submit(worker, {"category": "法律援助", "org_id": org_id,
                                              "description": "公司拖欠三个月工资，请求帮助。"})
    return appeal["id"]


async def first_task(rt, actor, item_id: int) -> dict:
    return next(t for t in (await rt.work_lists.todo(actor))["tasks"] if t["item_id"] == item_id)


async def test_the_sweep_warns_then_marks_overdue_then_escalates_once_each(
        rt, db, cadres, worker, clock) -> None:
    desk, upper = await bind(db, cadres["desk"]), await bind(db, cadres["province"])
    item = await file_appeal(rt, worker, cadres["desk"].org_id)
    view = await rt.work_lists.item(cadres["desk"], item)
    # Acceptance within 15 days: due at the end of 17 March, warned 3 days before.
    assert datetime.fromisoformat(view["due_at"]) == datetime(2026, 3, 18, tzinfo=CHINA)
    assert await rt.deadlines.sweep() == 0
    clock.set(datetime(2026, 3, 15, 10, 0, tzinfo=CHINA), frozen=True)
    assert await rt.deadlines.sweep() == 2       # the step's limit and the item's
    asks = [r["payload"]["data"]["thing4"]["value"] for r in await sent_to(db, desk)]
    assert "即将到期，请抓紧办理" in asks
    assert await rt.deadlines.sweep() == 0       # nothing twice
    clock.set(datetime(2026, 3, 18, 10, 0, tzinfo=CHINA), frozen=True)
    await rt.deadlines.sweep()
    board = await rt.work_lists.overdue(cadres["province"])
    assert [i["item_id"] for i in board["items"]] == [item]
    todo = await rt.work_lists.todo(cadres["desk"])
    assert todo["counts"]["overdue"] == 1 and todo["tasks"][0]["urgency"] == "overdue"
    clock.set(datetime(2026, 3, 20, 10, 0, tzinfo=CHINA), frozen=True)
    await rt.deadlines.sweep()
    asks = [r["payload"]["data"]["thing4"]["value"] for r in await sent_to(db, upper)]
    assert asks == ["下级工会逾期未办，请督办"]
    kinds = [r["kind"] for r in await db.fetch(
        "SELECT kind FROM work_events WHERE item_id = $1 ORDER BY id", item)]
    assert kinds.count("overdue") == 2 and kinds.count("escalated") == 2
    await rt.deadlines.sweep()
    assert len(await sent_to(db, upper)) == 1


async def test_a_sweep_that_was_down_sends_only_the_latest_news(rt, db, cadres, worker, clock) -> None:
    upper = await bind(db, cadres["province"])
    desk = await bind(db, cadres["desk"])
    item = await file_appeal(rt, worker, cadres["desk"].org_id)
    clock.set(datetime(2026, 4, 1, 10, 0, tzinfo=CHINA), frozen=True)   # long past everything
    await rt.deadlines.sweep()
    assert [r["payload"]["data"]["thing4"]["value"] for r in await sent_to(db, desk)] == ["请及时办理"]
    assert len(await sent_to(db, upper)) == 1
    kinds = [r["kind"] for r in await db.fetch("SELECT kind FROM work_events WHERE item_id = $1", item)]
    assert kinds.count("overdue") == 2   # the overdue is still on record


async def test_reminders_in_quiet_hours_wait_for_the_morning(rt, db, cadres, worker, clock) -> None:
    desk = await bind(db, cadres["desk"])
    clock.set(datetime(2026, 3, 2, 23, 30, tzinfo=CHINA), frozen=True)
    await file_appeal(rt, worker, cadres["desk"].org_id)
    [row] = await sent_to(db, desk)
    assert row["next_attempt_at"] == datetime(2026, 3, 3, 8, 0, tzinfo=CHINA)


async def test_a_deadline_in_a_year_without_calendar_is_provisional_until_it_is_imported(
        rt, db, cadres, clock, flow) -> None:
    """10 working days from Thursday 24 December 2026 reach into 2027, which the package does not
    know: counted with weekends only (1 January a working day) and marked; the import of the
    2027 notice (1-3 January off) recomputes it, keeping the old row."""
    _engine, _ops, lists, start = flow
    clock.set(datetime(2026, 12, 24, 9, 0, tzinfo=CHINA), frozen=True)
    item = await start()
    view = await lists.item(cadres["desk"], item)
    assert view["due_provisional"] is True
    assert datetime.fromisoformat(view["due_at"]) == datetime(2027, 1, 8, tzinfo=CHINA)
    task = next(t for t in (await lists.todo(cadres["desk"]))["tasks"] if t["item_id"] == item)
    assert task["provisional"] is True
    old_id = await db.fetchval(
        "SELECT id FROM work_deadlines WHERE item_id = $1 AND step_id IS NULL AND status = 'open'", item)
    with pytest.raises(asyncpg.RaiseError, match="never edited"):
        await db.execute("UPDATE work_deadlines SET due_at = due_at + interval '1 day' WHERE id = $1",
                         old_id)
    assert 2027 in await rt.calendar.missing_years()
    await rt.calendar.import_year(cadres["office"], 2027, NOTICE_2027)
    old = await db.fetchrow("SELECT * FROM work_deadlines WHERE id = $1", old_id)
    new = await db.fetchrow("SELECT * FROM work_deadlines WHERE supersedes = $1", old_id)
    assert old["status"] == "superseded" and old["due_at"] == datetime(2027, 1, 8, tzinfo=CHINA)
    assert new["reason"] == "recomputed" and not new["provisional"]
    assert new["due_at"] == datetime(2027, 1, 9, tzinfo=CHINA)
    view = await lists.item(cadres["desk"], item)
    assert view["due_provisional"] is False and view["timeline"][-1]["name"] == "时限重算"
    assert view["timeline"][-1]["detail"]["previous"].startswith("2027-01-07T16:00")
    assert [e["kind"] for e in view["timeline"]].count("due") == 2


async def test_completion_rates_count_what_fell_due_and_what_closed_early(
        rt, db, cadres, worker, clock) -> None:
    """Four appeals filed in March: one replied on time, one replied late, one declined at once
    (closed early, before its limit in March), one still open past its limit."""
    items = [await file_appeal(rt, worker, cadres["desk"].org_id) for _ in range(4)]
    desk = cadres["desk"]
    for item in items[:3]:
        task = await first_task(rt, desk, item)
        accept = item != items[2]
        await rt.appeals.decide(desk, item, {"task_id": task["task_id"], "accept": accept,
                                             **({} if accept else {"opinion": "不属于工会受理范围"})})
    task = await first_task(rt, desk, items[0])
    await rt.appeals.reply(desk, items[0], {"task_id": task["task_id"],
                                            "reply": "已协调公司补发工资，请查收。"})
    clock.set(T0 + timedelta(days=75), frozen=True)    # past the 60 days of the second one
    task = await first_task(rt, desk, items[1])
    await rt.appeals.reply(desk, items[1], {"task_id": task["task_id"],
                                            "reply": "已协调公司补发工资，请查收。"})
    await rt.appeals.rate(worker, items[0], {"rating": "satisfied"})
    await rt.appeals.rate(worker, items[1], {"rating": "basically"})

    # March: due then, the unaccepted one (15 days) and the declined one; closed early in
    # March, the first (its 60 days end in May).
    march = (await rt.rates.rates(cadres["province"], "2026-03"))["total"]["all"]
    assert (march["due"], march["closed"], march["on_time"]) == (3, 2, 2)
    # May: the second (accepted 2 March, 60 days), replied late; the first is not counted again.
    may = (await rt.rates.rates(cadres["province"], "2026-05"))["total"]["all"]
    assert (may["due"], may["closed"], may["on_time"]) == (1, 1, 0)
    assert may["satisfaction_rate"] == 1.0 and may["rated"] == 2
    year = (await rt.rates.rates(cadres["province"], "2026"))["total"]["all"]
    assert (year["due"], year["closed"], year["on_time"]) == (4, 3, 2)
    assert year["completion_rate"] == 0.75 and year["on_time_rate"] == 0.5
    chengdu = next(u for u in (await rt.rates.rates(cadres["province"], "2026"))["unions"]
                   if u["org_id"] == desk.org_id)
    assert chengdu["all"]["due"] == 4 and chengdu["org_name"] == "成都市总工会"
    assert chengdu["modules"]["appeal"]["name"] == "职工诉求（信访）"
    # Reproducible: May as it stood on 10 May, before the late reply.
    start, end = period_bounds("2026-05")
    then = await rt.rates.compute(cadres["province"].org_path, start, end,
                                  datetime(2026, 5, 10, tzinfo=CHINA))
    assert (then["total"]["all"]["due"], then["total"]["all"]["closed"]) == (1, 0)
    outside = (await rt.rates.rates(cadres["dazhou"], "2026"))["total"]["all"]
    assert outside["due"] == 0


async def test_beijing_12351s_published_rates_come_out_on_this_denominator(rt, db, cadres) -> None:
    """Beijing 12351, January-February 2021: 4,190 dispatched, 3,993 closed "99.13 %", 3,952 on
    time "98.11 %" — both over the 4,028 items that fell due, the definition the rates use."""
    path = cadres["desk"].org_path
    start, end = datetime(2021, 1, 1, tzinfo=CHINA), datetime(2021, 3, 1, tzinfo=CHINA)
    await db.execute(
        """INSERT INTO work_events (ref, module, org_path, kind, at, due_at)
           SELECT 'hotline:' || g, 'appeal', $1::ltree, 'due', $2::timestamptz,
                  CASE WHEN g <= 4028 THEN $2::timestamptz + (1 + g % 50) * interval '1 day'
                       ELSE $3::timestamptz + interval '5 days' END
           FROM generate_series(1, 4190) g""", path, start, end)
    # 3,952 closed on time, 41 late (3,993 in all); 35 of those due still open.
    await db.execute(
        """INSERT INTO work_events (ref, module, org_path, kind, at)
           SELECT 'hotline:' || g, 'appeal', $1::ltree, 'closed',
                  $2::timestamptz + (1 + g % 50) * interval '1 day'
                  + CASE WHEN g <= 3952 THEN interval '-1 hour' ELSE interval '1 hour' END
           FROM generate_series(1, 3993) g""", path, start)
    rates = (await rt.rates.compute(path, start, end, end))["total"]["all"]
    assert (rates["due"], rates["closed"], rates["on_time"]) == (4028, 3993, 3952)
    assert (rates["completion_rate"], rates["on_time_rate"]) == (0.9913, 0.9811)


async def test_a_step_that_fails_midway_leaves_nothing_and_sends_once_when_repeated(
        rt, db, cadres, worker) -> None:
    """A process dying inside a step (here: the worker's notice fails after the acceptance was
    written) rolls the whole step back; repeated, it happens once and tells the worker once."""
    await db.execute(
        """INSERT INTO account_identities (account_id, kind, issuer, subject)
           VALUES ($1, 'oa_openid', $2, 'o-worker')""", worker, rt.settings.wechat.appid)
    item = await file_appeal(rt, worker, cadres["desk"].org_id)
    task = await first_task(rt, cadres["desk"], item)
    before = await db.fetchval("SELECT count(*) FROM work_events WHERE item_id = $1", item)
    listener = rt.engine.listeners["appeal"]

    async def dying(conn, step, kind, detail):
        await listener(conn, step, kind, detail)
        if kind == "accepted":
            raise ConnectionResetError("the process died here")

    rt.engine.listeners["appeal"] = dying
    with pytest.raises(ConnectionResetError):
        await rt.appeals.decide(cadres["desk"], item, {"task_id": task["task_id"], "accept": True})
    assert await db.fetchval("SELECT count(*) FROM work_events WHERE item_id = $1", item) == before
    assert await db.fetchval("SELECT accepted_at FROM appeals WHERE item_id = $1", item) is None
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE payload->>'touser' = 'o-worker'") == 0
    assert (await first_task(rt, cadres["desk"], item))["task_id"] == task["task_id"]
    rt.engine.listeners["appeal"] = listener
    await rt.appeals.decide(cadres["desk"], item, {"task_id": task["task_id"], "accept": True})
    with pytest.raises(Conflict):   # repeated by an impatient client: the task has moved on
        await rt.appeals.decide(cadres["desk"], item, {"task_id": task["task_id"], "accept": True})
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE payload->>'touser' = 'o-worker'") == 1
