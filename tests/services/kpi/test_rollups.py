"""The daily counters: random histories give the same figures from the rollups as from counting
the history itself, for any union's subtree and any run of days; a recount replaces, never adds;
back-dated members are caught by the worker's refresh."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.services.cadres.test_cadres import org_id
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import InvalidInput
from wxbackend.store.kpi import rollups as store
from wxbackend.store.membership import orgs as org_store

BASE = date(2026, 3, 1)
KINDS = ("registered", "certified", "joined_platform", "joined_roster", "cadres", "founded_platform",
         "founded_other")


async def tree(db) -> list[dict]:
    """The province, Chengdu, a county under it, a grassroots union under that, and Dazhou (made
    once per test), each with its path: a test can tell which subtrees an event counts in."""
    chengdu = await org_id(db, "SC-510100")
    county = await org_id(db, "SC-510104")
    if county is None:
        county = await org_store.upsert(db, code="SC-510104", name="锦江区总工会", short_name="锦江",
                                        kind="county", parent_id=chengdu, division_code="510104")
        await org_store.create_grassroots(
            db, parent_id=county, name="锦江宾馆工会", credit_code=None, employer_name="锦江宾馆",
            region_code=None, founded_via_platform=False)
    grassroots = await db.fetchval("SELECT id FROM orgs WHERE parent_id = $1 AND kind = 'grassroots'"
                                   " AND name = '锦江宾馆工会'", county)
    ids = [await org_id(db, "SC"), chengdu, county, grassroots, await org_id(db, "SC-511700")]
    rows = {r["id"]: dict(r) for r in await db.fetch(
        "SELECT id, path::text AS path FROM orgs WHERE id = ANY($1::bigint[])", ids)}
    return [rows[i] for i in ids]


def moment(day: int, hour: int) -> datetime:
    return datetime(BASE.year, BASE.month, BASE.day, hour, 0, tzinfo=CHINA) + timedelta(days=day)


async def write(db, unions: list[dict], events: list[tuple[str, int, int, int]]) -> None:
    """Source rows for the events (kind, union index, day, hour in China time)."""
    for n, (kind, u, day, hour) in enumerate(events):
        at = moment(day, hour)
        union = unions[u]["id"]
        if kind == "registered":
            await db.execute(
                """INSERT INTO accounts (registered_at, home_org_id, phone_enc, phone_bidx, phone_verified_at)
                   VALUES ($1, $2, '\\x00', uuid_send(gen_random_uuid()), $1)""", at, union)
        elif kind in ("certified", "joined_platform", "joined_roster"):
            account = await db.fetchval(
                """INSERT INTO accounts (registered_at, home_org_id, phone_enc, phone_bidx, phone_verified_at)
                   VALUES (NULL, NULL, '\\x00', uuid_send(gen_random_uuid()), NULL) RETURNING id""") \
                if kind == "certified" else None
            await db.execute(
                """INSERT INTO members (org_id, member_no, name, id_number_enc, id_number_bidx, gender,
                       birth_date, source, joined_on, account_id, certified_at)
                   VALUES ($1, $2, '测试', '\\x00', uuid_send(gen_random_uuid()), 1, '1990-01-01',
                           $3, $4, $5, $6)""",
                union, f"P{n}", "platform" if kind == "joined_platform" else "roster",
                (at.date() if kind != "certified" else BASE - timedelta(days=400)),
                account, at if account else None)
        elif kind == "cadres":
            await db.execute(
                """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash, created_at)
                   VALUES ($1, '干部', $2, 'cadre', 'business', 'unused', $3)""", f"pcadre{n}", union, at)
        else:
            await db.execute(
                """WITH n AS (SELECT nextval('orgs_id_seq') AS id)
                   INSERT INTO orgs (id, parent_id, code, name, kind, path, founded_via_platform, created_at)
                   SELECT n.id, $1, $2, '测试工会' || $2, 'grassroots',
                          p.path || n.id::text, $3, $4 FROM n, orgs p WHERE p.id = $1""",
                union, f"PT-{n}", kind == "founded_platform", at)


event = st.tuples(st.sampled_from(KINDS), st.integers(0, 3), st.integers(0, 40), st.integers(0, 23))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, max_size=30), window=st.tuples(st.integers(0, 40), st.integers(0, 40)),
       pick=st.integers(0, 4))
async def test_rollups_and_a_recount_of_the_history_agree(rt, db, events, window, pick) -> None:
    await db.execute("TRUNCATE kpi_daily, kpi_monthly; DELETE FROM members;"
                     "DELETE FROM cadres WHERE username LIKE 'pcadre%';"
                     "DELETE FROM orgs WHERE code LIKE 'PT-%'; DELETE FROM accounts")
    unions = await tree(db)
    await write(db, unions, events)
    await rt.kpi_rollups.recount(BASE, BASE + timedelta(days=40))
    first, last = sorted(window)
    # A second recount of part of the history (as the worker's refresh does) changes nothing.
    await rt.kpi_rollups.recount(BASE + timedelta(days=first), BASE + timedelta(days=last))
    union = unions[pick]
    got = {r["counter"]: r["value"] for r in await store.sums(
        db, [union["id"]], list(KINDS), BASE + timedelta(days=first), BASE + timedelta(days=last + 1))}
    expected: dict[str, int] = {}
    for kind, u, day, _hour in events:
        inside = unions[u]["path"] == union["path"] or unions[u]["path"].startswith(union["path"] + ".")
        if inside and first <= day <= last:
            expected[kind] = expected.get(kind, 0) + 1
    assert {k: v for k, v in got.items() if v} == expected
    # The month totals are the days' totals.
    assert await db.fetch(
        """SELECT counter, org_id, date_trunc('month', day)::date AS month, sum(value)::bigint AS value
           FROM kpi_daily GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""") == await db.fetch(
        "SELECT counter, org_id, month, value FROM kpi_monthly WHERE value <> 0 ORDER BY 1, 2, 3")


async def test_a_recount_replaces_the_days_it_counts(rt, db) -> None:
    unions = await tree(db)
    await write(db, unions, [("registered", 3, 0, 9), ("registered", 3, 0, 23), ("cadres", 1, 1, 0)])
    for _ in range(2):   # counting twice gives the same rows, not twice the figures
        await rt.kpi_rollups.recount(BASE, BASE + timedelta(days=2))
    rows = {(r["counter"], r["org_id"], r["day"]): r["value"] for r in await db.fetch(
        "SELECT counter, org_id, day, value FROM kpi_daily")}
    province, chengdu, county, grassroots = (u["id"] for u in unions[:4])
    for union in (grassroots, county, chengdu, province):     # the subtree's total at each level
        assert rows[("registered", union, BASE)] == 2
    assert ("registered", unions[4]["id"], BASE) not in rows   # Dazhou is not above Jinjiang
    assert rows[("cadres", chengdu, BASE + timedelta(days=1))] == 1
    assert ("cadres", county, BASE + timedelta(days=1)) not in rows
    # 23:00 China time on 1 March is still 1 March (15:00 UTC).
    assert await db.fetchval("SELECT count(*) FROM kpi_days WHERE day BETWEEN $1 AND $2",
                             BASE, BASE + timedelta(days=2)) == 3


async def test_the_worker_catches_members_who_joined_long_ago(rt, db, clock) -> None:
    unions = await tree(db)
    clock.set(datetime(2026, 3, 10, 12, 0, tzinfo=CHINA), frozen=True)
    long_ago = BASE - timedelta(days=700)
    await write(db, unions, [("registered", 3, -700, 9)])
    await rt.kpi_rollups.backfill(long_ago, long_ago)
    await rt.kpi_rollups.refresh()                      # starts watching
    await write(db, unions, [("joined_roster", 3, -700, 10)])   # a roster import: joined in 2024
    await rt.kpi_rollups.refresh()
    counted = {r["counter"]: r["value"] for r in await db.fetch(
        "SELECT counter, value FROM kpi_daily WHERE org_id = $1 AND day = $2", unions[0]["id"], long_ago)}
    # Only the new members' counts of that day were recounted; the day's other counts stand.
    assert counted == {"joined_roster": 1, "registered": 1}


async def test_a_backfill_outside_the_platform_years_is_refused(rt, clock) -> None:
    clock.set(datetime(2026, 3, 10, 12, 0, tzinfo=CHINA), frozen=True)
    for first, last in ((date(2019, 12, 31), None), (None, date(2026, 3, 11))):
        with pytest.raises(InvalidInput):
            await rt.kpi_rollups.backfill(first, last)
