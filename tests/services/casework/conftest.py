"""Cadres of the province, Chengdu and a grassroots union under it, and workers, for the casework
tests: made straight in SQL, acting without a signed-in session (signing in is the cadre tests'
subject; the API tests sign in for real)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.services.activities.conftest import make_workers
from tests.services.cadres.test_cadres import org_id
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.modules import Module
from wxbackend.services.casework.worklists import seed_definitions
from wxbackend.services.clock import CHINA
from wxbackend.store.membership import orgs as org_store

# A Monday in a year the seeded calendar knows (2026; chinesecalendar 1.11 ends there).
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)

# key: (union, username, permissions, department)
CADRES = {
    "desk": ("SC-510100", "zhangban", {"appeal.handle"}, "权益保障部"),
    "desk2": ("SC-510100", "liban", {"appeal.handle"}, "法律部"),
    "clerk": ("SC-510100", "zhaoyuan", set(), None),
    "province": ("SC", "shengban", {"appeal.handle", "kpi.read"}, None),
    "office": ("SC", "pingtai", {"org.manage"}, None),
    "dazhou": ("SC-511700", "dazhouban", {"appeal.handle"}, None),
    "grassroots": ("tianfu", "tianfuban", {"appeal.handle"}, None),
}


async def make_cadre(db, union: int, username: str, permissions: set[str],
                     department: str | None = None) -> Actor:
    cadre_id = await db.fetchval(
        """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash, department)
           VALUES ($1, $1, $2, 'cadre', 'business', 'unused', $3) RETURNING id""",
        username, union, department)
    await db.executemany("INSERT INTO cadre_grants (cadre_id, permission) VALUES ($1, $2)",
                         [(cadre_id, p) for p in permissions])
    path = await db.fetchval("SELECT path::text FROM orgs WHERE id = $1", union)
    return Actor(id=cadre_id, username=username, org_id=union, org_path=path, role="cadre",
                 duty="business", permissions=frozenset(permissions), ip="10.0.0.9")


@pytest.fixture
async def tianfu(db) -> int:
    row = await org_store.create_grassroots(
        db, parent_id=await org_id(db, "SC-510100"), name="成都天府软件有限公司工会",
        credit_code=None, employer_name="成都天府软件有限公司", region_code=None,
        founded_via_platform=False)
    return row["id"]


@pytest.fixture
async def cadres(rt, db, clock, tianfu) -> dict[str, Actor]:
    out = {}
    for key, (code, username, permissions, dept) in CADRES.items():
        union = tianfu if code == "tianfu" else await org_id(db, code)
        out[key] = await make_cadre(db, union, username, permissions, dept)
    clock.set(T0, frozen=True)
    return out


@pytest.fixture
async def worker(rt, db) -> int:
    return (await make_workers(db, 1, None, pii=rt.pii))[0]


@pytest.fixture
def settings(fake_wechat):
    """Reminders on: a cadre template, the workers' templates, quiet hours 22:00-08:00."""
    from tests.conftest import make_settings

    return make_settings(fake_wechat.base_url, casework={
        "cadre_template_id": "TPL-CADRE", "worker_template_id": "TPL-WORKER",
        "mp_worker_template_id": "MP-WORKER"})


async def bind(db, actor: Actor, openid: str | None = None) -> str:
    openid = openid or f"o-{actor.username}"
    await db.execute("INSERT INTO cadre_wechat (cadre_id, oa_openid, bound_at) VALUES ($1, $2, now())",
                     actor.id, openid)
    return openid


async def sent_to(db, openid: str) -> list[dict]:
    """The outbox rows addressed to ``openid``, oldest first."""
    return [dict(r) for r in await db.fetch(
        """SELECT kind, payload, idempotency_key, next_attempt_at FROM outbox
           WHERE payload->>'touser' = $1 ORDER BY id""", openid)]


# A process of the tests' own: a branch on the amount, a 会签, parallel departments and a 票决.
GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "check",
     "item_deadline": {"count": 10, "unit": "working"}},
    {"id": "check", "type": "task", "name": "初审", "assign": [{"role": "office"}],
     "deadline": {"count": 3, "unit": "working", "warn": 1, "escalate": 1}, "next": "route"},
    {"id": "route", "type": "exclusive", "branches": [
        {"when": "decision == 'reject'", "next": "refused"},
        {"when": "amount > 5000", "next": "countersign"},
        {"next": "split"}]},
    {"id": "countersign", "type": "task", "name": "会签", "sign": "all",
     "assign": [{"role": "office"}, {"role": "upper"}], "next": "done"},
    {"id": "split", "type": "parallel", "next": ["legal", "rights"]},
    {"id": "legal", "type": "task", "name": "法律审核",
     "assign": [{"role": "department", "department": "法律部"}], "next": "join"},
    {"id": "rights", "type": "task", "name": "权益审核",
     "assign": [{"role": "department", "department": "权益保障部"}], "next": "join"},
    {"id": "join", "type": "join", "next": "vote"},
    {"id": "vote", "type": "task", "name": "票决", "sign": "ratio", "ratio": 0.6,
     "assign": [{"role": "office"}, {"role": "office"}, {"role": "upper"}], "next": "done"},
    {"id": "done", "type": "end", "outcome": "approved"},
    {"id": "refused", "type": "end", "outcome": "refused"},
]}
FLOW = Module(code="testflow", name="测试审批", permission="appeal.handle", graph=GRAPH,
              fields=frozenset({"amount"}), extension_days=10, extensions=1)


@pytest.fixture
async def flow(rt, db, cadres, clock):
    engine = rt.engine   # the runtime's, so its sweep and calendar hooks see this module too
    engine.modules[FLOW.code] = FLOW
    await seed_definitions(db, [FLOW], clock())
    ops, lists = rt.work, rt.work_lists

    async def start(amount: int = 100, org: str = "desk") -> int:
        async with rt.pool.acquire() as conn, conn.transaction():
            step = await engine.start(conn, "testflow", org_id=cadres[org].org_id, title=f"申请{amount}元",
                                      data={"amount": amount}, submitter_cadre_id=cadres["clerk"].id)
        return step.item["id"]

    return engine, ops, lists, start
