"""The rates as things stand (from each item's latest facts, kept by a trigger) and the rates
recounted from the events alone agree, for random histories and random periods."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wxbackend.services.clock import CHINA

BASE = datetime(2026, 1, 1, tzinfo=CHINA)
KINDS = ("due", "closed", "reopened", "cancelled")

# A history: per item, events in order: (kind, day of the event, day of the time limit)
event = st.tuples(st.sampled_from(KINDS), st.integers(0, 120), st.integers(0, 150))
history = st.lists(st.lists(event, min_size=1, max_size=6), min_size=1, max_size=25)
period = st.tuples(st.integers(0, 150), st.integers(1, 60))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=history, window=period, unions=st.lists(st.booleans(), min_size=25, max_size=25))
async def test_facts_and_a_full_recount_agree(rt, db, items, window, unions) -> None:
    await db.execute("TRUNCATE work_item_facts")
    await db.execute("SET session_replication_role = replica")   # the append-only trigger
    await db.execute("DELETE FROM work_events")
    await db.execute("SET session_replication_role = DEFAULT")
    paths = [r["path"] for r in await db.fetch(
        "SELECT path::text AS path FROM orgs WHERE code IN ('SC-510100', 'SC-511700') ORDER BY code")]
    rows = []
    for n, events in enumerate(items):
        clock = BASE
        for kind, day, due in events:
            clock = max(clock, BASE + timedelta(days=day))   # events of an item in time order
            rows.append((f"item:{n}", "appeal", paths[unions[n]], kind, clock,
                         BASE + timedelta(days=due) if kind == "due" else None))
    await db.executemany(
        """INSERT INTO work_events (ref, module, org_path, kind, at, due_at)
           VALUES ($1, $2, $3::ltree, $4, $5, $6)""", rows)
    start = BASE + timedelta(days=window[0])
    end = start + timedelta(days=window[1])
    now = await rt.rates.compute("1", start, end, None)
    recount = await rt.rates.compute("1", start, end, datetime(2030, 1, 1, tzinfo=CHINA))
    assert now["total"] == recount["total"]
    assert now["unions"] == recount["unions"]
