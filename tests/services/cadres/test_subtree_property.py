"""Property, on the real service and database: over random union trees, super admins and grant
attempts, no cadre sees or changes anything outside its union's subtree, and nobody ends up
holding a permission its grantor did not hold."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings, reset_database
from wxbackend.runtime import open_runtime
from wxbackend.services.cadres.permissions import CATALOGUE, Actor
from wxbackend.services.errors import DomainError

PASSWORD = "Sichuan-Union-2026"
PERMS = sorted(set(CATALOGUE) - {"audit.read", "security.manage"})


@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=2, max_value=7))
    parents = [draw(st.integers(min_value=0, max_value=i)) for i in range(n)]  # node i+1's parent
    admins = draw(st.lists(st.integers(min_value=0, max_value=n), min_size=2, max_size=4, unique=True))
    grants = {a: draw(st.sets(st.sampled_from(PERMS), max_size=5)) | {"account.manage"} for a in admins}
    attempts = draw(st.lists(st.tuples(st.sampled_from(admins), st.sampled_from(admins),
                                       st.sets(st.sampled_from(PERMS), max_size=4)), max_size=6))
    return parents, admins, grants, attempts


async def run_scenario(backing, parents, admins, grants, attempts) -> None:
    await reset_database(backing.dsn)
    async with open_runtime(make_settings("http://127.0.0.1:9"), backing.dsn, backing.redis_url) as rt:
        async with rt.pool.acquire() as conn:
            root = await conn.fetchrow("SELECT id, path::text AS path FROM orgs WHERE code = 'SC-510100'")
            nodes = {0: root["id"]}
            for i, parent in enumerate(parents, start=1):  # a random tree under 成都市总工会
                nodes[i] = await conn.fetchval(
                    """INSERT INTO orgs (code, name, kind, parent_id, path)
                       VALUES ($1, $2, 'grassroots', $3, '0') RETURNING id""",
                    f"T-{i}", f"测试工会{i}", nodes[parent])
                await conn.execute(
                    """UPDATE orgs SET path = (SELECT path FROM orgs WHERE id = $2) || text2ltree(id::text)
                       WHERE id = $1""", nodes[i], nodes[parent])
            paths = {i: await conn.fetchval("SELECT path::text FROM orgs WHERE id = $1", org)
                     for i, org in nodes.items()}
        operator = await rt.cadres.create_operator(username="office", display_name="平台办公室",
                                                   password=PASSWORD)
        async with rt.pool.acquire() as conn:
            province = await conn.fetchrow("SELECT id, path::text AS path FROM orgs WHERE code = 'SC'")
        office = Actor(id=operator.id, username="office", org_id=province["id"],
                       org_path=province["path"], role="operator", duty="system",
                       permissions=frozenset(CATALOGUE))
        ids = {}
        for node in admins:
            account = await rt.cadres.create_account(
                office, username=f"admin{node}", display_name=f"管理员{node}", org_id=nodes[node],
                role="super_admin", duty="system", permissions=grants[node], password=PASSWORD)
            ids[node] = account.id

        def actor(node: int) -> Actor:
            return Actor(id=ids[node], username=f"admin{node}", org_id=nodes[node],
                         org_path=paths[node], role="super_admin", duty="system",
                         permissions=frozenset(held[node]))

        held = {node: set(grants[node]) for node in admins}
        for node in admins:
            visible = {c["username"] for c in await rt.cadres.list_cadres(actor(node))}
            inside = {f"admin{o}" for o in admins if paths[o] == paths[node]
                      or paths[o].startswith(paths[node] + ".")}
            assert visible == inside  # reads: exactly the subtree (never the province's operator)
        for grantor, target, wanted in attempts:
            before = dict(held)
            try:
                given_perms = await rt.cadres.set_permissions(actor(grantor), ids[target], set(wanted))
            except DomainError:
                given_perms = None
            allowed = (target != grantor and paths[target].startswith(paths[grantor] + ".")
                       and set(wanted) <= held[grantor])
            if given_perms is None:
                assert not allowed
                assert held == before
            else:
                assert allowed  # writes: only below oneself, only what one holds
                assert set(given_perms) <= held[grantor]
                held[target] = set(given_perms)
        async with rt.pool.acquire() as conn:
            stored = {r["username"]: set(r["perms"]) for r in await conn.fetch(
                """SELECT c.username, coalesce(array_agg(g.permission) FILTER (WHERE g.permission
                   IS NOT NULL), '{}') AS perms FROM cadres c LEFT JOIN cadre_grants g
                   ON g.cadre_id = c.id GROUP BY c.username""")}
        stored.pop("office")
        assert stored == {f"admin{n}": held[n] for n in admins}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_cadre_acts_outside_its_subtree_or_beyond_its_grants(backing, scenario) -> None:
    asyncio.run(run_scenario(backing, *scenario))
