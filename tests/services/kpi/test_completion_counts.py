"""The completion counts (办结率) as daily counters: for random casework histories, applied in two
rounds with the worker's refresh after each (so closings, reopenings, withdrawals and extended
limits move items between days already counted), the counters give for any run of days and any
union's subtree the same counts as the casework rates read from the items' facts."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wxbackend.services.clock import CHINA
from wxbackend.store.kpi import rollups as store
from wxbackend.store.kpi.rollups import COMPLETION

BASE = datetime(2026, 1, 1, tzinfo=CHINA)
TODAY = BASE + timedelta(days=70, hours=15)    # limits after it are counted too
KINDS = ("due", "closed", "reopened", "cancelled")
MODULES = ("appeal", "proposal")

# Per item: its module, its union, and its events in order: (kind, day, day of the time limit, hour).
event = st.tuples(st.sampled_from(KINDS), st.integers(0, 90), st.integers(0, 120), st.integers(0, 23))
item = st.tuples(st.sampled_from(MODULES), st.integers(0, 2), st.lists(event, min_size=1, max_size=5))


async def _paths(db) -> list[dict]:
    """The province, Chengdu and Dazhou."""
    return [dict(r) for r in await db.fetch(
        """SELECT id, path::text AS path FROM orgs WHERE code IN ('SC', 'SC-510100', 'SC-511700')
           ORDER BY code""")]


async def _append(db, rows: list[tuple]) -> None:
    if rows:
        await db.executemany(
            """INSERT INTO work_events (ref, module, org_path, kind, at, due_at)
               VALUES ($1, $2, $3::ltree, $4, $5, $6)""", rows)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(item, min_size=1, max_size=20), split=st.integers(0, 5),
       window=st.tuples(st.integers(0, 120), st.integers(1, 60)), pick=st.integers(0, 2))
async def test_the_counters_and_the_casework_rates_agree(rt, db, clock, items, split, window, pick) -> None:
    await db.execute("TRUNCATE work_item_facts, kpi_daily, kpi_monthly, kpi_days, kpi_dirty_days")
    await db.execute("SET session_replication_role = replica")   # the events' append-only trigger
    await db.execute("DELETE FROM work_events")
    await db.execute("SET session_replication_role = DEFAULT")
    clock.set(TODAY, frozen=True)
    unions = await _paths(db)
    first_round, second_round = [], []
    for n, (module, union, events) in enumerate(items):
        at = BASE
        for k, (kind, day, due, hour) in enumerate(events):
            at = max(at, BASE + timedelta(days=day, hours=hour))   # an item's events in time order
            row = (f"item:{n}", module, unions[union]["path"], kind, at,
                   BASE + timedelta(days=due, hours=hour) if kind == "due" else None)
            (first_round if k < split else second_round).append(row)
    await _append(db, first_round)
    await rt.kpi_rollups.backfill(BASE.date(), TODAY.date())
    await _append(db, second_round)
    await rt.kpi_rollups.refresh()

    union = unions[pick]
    start = BASE + timedelta(days=window[0])
    end = start + timedelta(days=window[1])
    expected = (await rt.rates.compute(union["path"], start, end, None, by_union=False))["total"]["modules"]
    got = {(r["counter"]): r["value"] for r in await store.sums(
        db, [union["id"]], [f"{k}:{m}" for k in COMPLETION for m in MODULES], start.date(), end.date())}
    for module in MODULES:
        want = expected.get(module, {"due": 0, "closed": 0, "on_time": 0})
        assert {k: got.get(f"{k}:{module}", 0) for k in COMPLETION} == {k: want[k] for k in COMPLETION}
    # Nothing is left to count, and the month totals are the days' totals.
    assert await store.dirty_days(db) == []
    assert await db.fetch(
        """SELECT counter, org_id, date_trunc('month', day)::date AS month, sum(value)::bigint AS value
           FROM kpi_daily GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""") == await db.fetch(
        "SELECT counter, org_id, month, value FROM kpi_monthly WHERE value <> 0 ORDER BY 1, 2, 3")


async def test_closing_ahead_of_time_moves_the_item_to_the_day_it_was_closed(rt, db, clock) -> None:
    clock.set(TODAY, frozen=True)
    province, chengdu, _dazhou = await _paths(db)
    limit = BASE + timedelta(days=100)                     # next month
    await _append(db, [("item:early", "appeal", chengdu["path"], "due", BASE, limit)])
    await rt.kpi_rollups.refresh()

    async def counted(day: date) -> dict[str, int]:
        return {r["counter"]: r["value"] for r in await db.fetch(
            "SELECT counter, value FROM kpi_daily WHERE org_id = $1 AND day = $2", province["id"], day)}

    assert await counted(limit.date()) == {"due:appeal": 1}
    await _append(db, [("item:early", "appeal", chengdu["path"], "closed", TODAY, None)])
    assert await store.dirty_days(db) == [TODAY.date(), limit.date()]
    await rt.kpi_rollups.refresh()
    assert await counted(limit.date()) == {}
    assert await counted(TODAY.date()) == {"due:appeal": 1, "closed:appeal": 1, "on_time:appeal": 1}
    # Withdrawn: counted nowhere.
    await _append(db, [("item:early", "appeal", chengdu["path"], "cancelled", TODAY, None)])
    await rt.kpi_rollups.refresh()
    assert await counted(TODAY.date()) == {}
    assert await store.dirty_days(db) == []
