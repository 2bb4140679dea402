"""使用率: items handled online ÷ (online + the offline ledger), per module, union and period,
judged against the module's standard for the union's year on the platform."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from tests.services.cadres.test_cadres import org_id
from tests.services.casework.conftest import T0, make_cadre
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound


@pytest.fixture
async def clerks(rt, db, cadres, tianfu):
    chengdu = await org_id(db, "SC-510100")
    return {"chengdu": await make_cadre(db, chengdu, "taizhang", {"ledger.record", "kpi.read"}),
            "tianfu": await make_cadre(db, tianfu, "tianfutz", {"ledger.record"}),
            "dazhou": await make_cadre(db, await org_id(db, "SC-511700"), "dazhoutz", {"ledger.record"}),
            "chengdu_id": chengdu, "tianfu_id": tianfu}


async def open_items(rt, org: int, n: int, module: str = "appeal") -> None:
    for k in range(n):
        async with rt.pool.acquire() as conn, conn.transaction():
            await rt.engine.start(conn, module, org_id=org, title=f"线上事项{k}", data={"category": "咨询"})


async def test_the_rate_divides_online_items_by_all_items(rt, db, cadres, clerks, clock):
    chengdu, tianfu = clerks["chengdu_id"], clerks["tianfu_id"]
    await open_items(rt, tianfu, 3)
    await open_items(rt, chengdu, 1)
    await rt.usage.record(clerks["tianfu"], {"module": "appeal", "handled_on": "2026-03-01", "items": 4,
                                             "title": "来访登记"})
    await rt.usage.record(clerks["chengdu"], {"module": "appeal", "handled_on": "2026-03-02", "items": 2,
                                              "title": "电话诉求", "org_id": chengdu})
    # A February entry and a voided one count for nothing in March.
    await rt.usage.record(clerks["chengdu"], {"module": "appeal", "handled_on": "2026-02-27", "items": 9,
                                              "title": "二月来访"})
    wrong = await rt.usage.record(clerks["chengdu"], {"module": "appeal", "handled_on": "2026-03-02",
                                                      "items": 50, "title": "录错"})
    await rt.usage.void(clerks["chengdu"], wrong["id"], {"reason": "件数录入错误"})

    usage = await rt.usage.rates(clerks["chengdu"], period="2026-03")
    appeal = next(m for m in usage["modules"] if m["module"] == "appeal")
    assert (appeal["online"], appeal["offline"], appeal["usage_rate"]) == (4, 6, 0.4)
    below = {u["org_id"]: u for u in appeal["units"]}
    assert (below[tianfu]["online"], below[tianfu]["offline"], below[tianfu]["usage_rate"]) == (3, 4, 0.4286)
    assert appeal["standard"] is None and appeal["meets"] is None   # no standard set for appeals
    # The modules the arrangement sets standards for are listed even before any item: the gap shows.
    assert {"notice", "meeting", "document_out", "info_report"} <= {m["module"] for m in usage["modules"]}

    # The platform office sets a standard; the period is judged by the tier of its year.
    await rt.usage.set_standard(cadres["office"], {"module": "appeal", "tiers": [0.3, 0.5, 0.6]})
    judged = next(m for m in (await rt.usage.rates(clerks["chengdu"], period="2026-03"))["modules"]
                  if m["module"] == "appeal")
    assert judged["standard"] == 0.6 and judged["meets"] is False
    assert {u["org_id"]: u["meets"] for u in judged["units"]}[tianfu] is False


async def test_the_standard_in_force_then_judges_a_past_period(rt, db, cadres, clerks, clock):
    first = await rt.usage.set_standard(cadres["office"], {"module": "appeal", "tiers": [0.2]})
    clock.set(T0 + timedelta(days=40), frozen=True)
    later = await rt.usage.set_standard(cadres["office"], {"module": "appeal", "tiers": [0.9]})
    assert [h["tiers"] for h in later["history"]] == [[0.9], [0.2]] and len(first["history"]) == 1
    march = next(m for m in (await rt.usage.rates(clerks["chengdu"], period="2026-03"))["modules"]
                 if m["module"] == "appeal")
    assert march["standard"] == 0.2


async def test_bad_ledger_entries_and_periods_are_refused_with_nothing_written(rt, db, cadres, clerks):
    good = {"module": "appeal", "handled_on": "2026-03-01", "items": 1, "title": "来访"}
    for body, code in (({**good, "module": "telepathy"}, "ledger_invalid"),
                       ({**good, "handled_on": "2026-03-03"}, "ledger_invalid"),   # tomorrow
                       ({**good, "handled_on": "2019-12-31"}, "ledger_invalid"),
                       ({**good, "items": -3}, "ledger_invalid"), ({**good, "items": "十"}, "ledger_invalid"),
                       ({**good, "title": ""}, "ledger_invalid")):
        with pytest.raises(InvalidInput) as refused:
            await rt.usage.record(clerks["chengdu"], body)
        assert refused.value.code == code
    with pytest.raises(NotFound):   # Dazhou's clerk cannot write Chengdu's ledger
        await rt.usage.record(clerks["dazhou"], {**good, "org_id": clerks["chengdu_id"]})
    with pytest.raises(Forbidden):
        await rt.usage.record(cadres["desk"], good)   # no ledger.record
    assert await db.fetchval("SELECT count(*) FROM offline_ledger") == 0
    for period in ("2026-04", "2019-12", "2026-13", "上个月"):
        with pytest.raises(InvalidInput):
            await rt.usage.rates(clerks["chengdu"], period=period)
    with pytest.raises(NotFound):
        await rt.usage.rates(clerks["dazhou"], period="2026-03", org_id=clerks["chengdu_id"])
    for body in ({"module": "appeal", "tiers": [0.9, 0.5]}, {"module": "appeal", "tiers": [1.5]},
                 {"module": "appeal", "tiers": []}):
        with pytest.raises(InvalidInput):
            await rt.usage.set_standard(cadres["office"], body)
    with pytest.raises(Forbidden):   # only the platform office sets standards
        await rt.usage.set_standard(clerks["chengdu"], {"module": "appeal", "tiers": [0.5]})
    assert await db.fetchval("SELECT count(*) FROM usage_standards") == 0


async def test_an_entry_is_kept_as_entered(rt, db, clerks):
    entry = await rt.usage.record(clerks["chengdu"], {"module": "appeal", "handled_on": "2026-03-01",
                                                      "items": 2, "title": "来访"})
    with pytest.raises(asyncpg.RaiseError):
        await db.execute("UPDATE offline_ledger SET items = 1 WHERE id = $1", entry["id"])
    with pytest.raises(asyncpg.RaiseError):
        await db.execute("DELETE FROM offline_ledger WHERE id = $1", entry["id"])
    await rt.usage.void(clerks["chengdu"], entry["id"], {"reason": "重复登记"})
    with pytest.raises(Conflict):
        await rt.usage.void(clerks["chengdu"], entry["id"], {"reason": "重复登记"})
    listed = (await rt.usage.entries(clerks["chengdu"], period="2026-03"))["entries"]
    assert [(e["items"], e["void_reason"]) for e in listed] == [(2, "重复登记")]
