"""The work-item engine on a process of its own: branches, parallel paths, 会签/或签/票签,
the operations cadres know, one winner when two act at once, and frozen definitions."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import pytest

from tests.services.casework.conftest import T0, bind, make_cadre, sent_to
from wxbackend.services.casework.definitions import check_graph
from wxbackend.services.casework.engine import step_result
from wxbackend.services.casework.modules import Module
from wxbackend.services.casework.worklists import seed_definitions
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests


async def my_task(lists, actor, item_id: int) -> dict:
    tasks = [t for t in (await lists.todo(actor))["tasks"] if t["item_id"] == item_id]
    assert tasks, f"{actor.username} has no task on item {item_id}"
    return tasks[0]


@pytest.mark.parametrize(("sign", "ratio", "decisions", "result"), [
    ("single", None, [None], None), ("single", None, ["reject"], "reject"),
    ("all", None, ["pass", None], None), ("all", None, ["pass", "pass"], "pass"),
    ("all", None, ["pass", "reject"], "reject"),
    ("any", None, [None, "pass"], "pass"), ("any", None, ["reject", None], None),
    ("any", None, ["reject", "reject"], "reject"),
    ("ratio", 0.6, ["pass", None, None], None), ("ratio", 0.6, ["pass", "pass", None], "pass"),
    ("ratio", 0.6, ["reject", "reject", None], "reject"), ("ratio", 0.6, ["pass", "reject", None], None),
])
def test_a_step_settles_by_its_sign(sign, ratio, decisions, result) -> None:
    assert step_result(sign, ratio, decisions) == result


@pytest.mark.parametrize(("graph", "fault"), [
    ({"nodes": [{"id": "s", "type": "start", "next": "x"}, {"id": "e", "type": "end"}]}, "不存在"),
    ({"nodes": [{"id": "s", "type": "start", "next": "e"}, {"id": "e", "type": "end"},
                {"id": "lost", "type": "task", "name": "孤立", "assign": [{"role": "office"}],
                 "next": "e"}]}, "无法到达"),
    ({"nodes": [{"id": "s", "type": "start", "next": "t"}, {"id": "e", "type": "end"},
                {"id": "t", "type": "task", "name": "指定个人", "assign": [{"role": "cadre", "id": 7}],
                 "next": "e"}]}, "不能指定个人"),
    ({"nodes": [{"id": "s", "type": "start", "next": "t"}, {"id": "e", "type": "end"},
                {"id": "t", "type": "task", "name": "两人", "assign": [{"role": "office"}, {"role": "upper"}],
                 "next": "e"}]}, "会签"),
    ({"nodes": [{"id": "s", "type": "start", "next": "x"}, {"id": "e", "type": "end"},
                {"id": "x", "type": "exclusive", "branches": [
                    {"when": "().__class__.__bases__", "next": "e"}, {"next": "e"}]}]}, "条件"),
    ({"nodes": [{"id": "s", "type": "start", "next": "x"}, {"id": "e", "type": "end"},
                {"id": "x", "type": "exclusive", "branches": [
                    {"when": "__import__('os')", "next": "e"}, {"next": "e"}]}]}, "条件"),
])
def test_a_malformed_process_is_refused_naming_the_fault(graph, fault) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_graph(graph, frozenset({"amount"}))
    assert fault in caught.value.message


async def test_a_published_definition_is_frozen(flow, db) -> None:
    with pytest.raises(asyncpg.RaiseError, match="frozen"):
        await db.execute("""UPDATE process_definitions SET graph = '{"nodes": []}'
                            WHERE module = 'testflow'""")


async def test_an_item_runs_through_branches_parallel_paths_and_a_vote(flow, cadres, db) -> None:
    _engine, ops, lists, start = flow
    item = await start(amount=100)
    # 初审 is the Chengdu union's: its cadres holding the permission see it, no one else does.
    task = await my_task(lists, cadres["desk"], item)
    assert task["step"] == "初审" and task["module_name"] == "测试审批"
    for outsider in ("clerk", "dazhou", "province"):
        assert (await lists.todo(cadres[outsider]))["tasks"] == []
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": task["task_id"],
                                         "version": task["version"], "opinion": "同意"})
    # The small amount goes to the two departments in parallel, each to its own cadre.
    legal = await my_task(lists, cadres["desk2"], item)
    rights = await my_task(lists, cadres["desk"], item)
    assert (legal["step"], rights["step"]) == ("法律审核", "权益审核")
    await ops.act(cadres["desk2"], item, {"action": "pass", "task_id": legal["task_id"]})
    view = await lists.item(cadres["desk"], item)
    assert [s["name"] for s in view["steps"] if s["status"] == "open"] == ["权益审核"]  # the join waits
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": rights["task_id"]})
    # 票决: three seats (two for Chengdu, one for the province); 0.6 needs two passes.
    vote = (await lists.item(cadres["desk"], item))["steps"][-1]
    assert vote["name"] == "票决" and len(vote["tasks"]) == 3
    first = await my_task(lists, cadres["desk"], item)
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": first["task_id"]})
    assert (await lists.item(cadres["desk"], item))["status"] == "open"
    assert (await lists.todo(cadres["desk"]))["tasks"] == []   # one vote per cadre
    seat = next(t for t in (await lists.item(cadres["desk"], item))["steps"][-1]["tasks"]
            if t["status"] == "open" and t["role"] == "office")
    with pytest.raises(Conflict, match="已在本环节签署"):
        await ops.act(cadres["desk"], item, {"action": "pass", "task_id": seat["id"]})
    upper = await my_task(lists, cadres["province"], item)
    result = await ops.act(cadres["province"], item, {"action": "pass", "task_id": upper["task_id"]})
    assert result["status"] == "closed"
    view = await lists.item(cadres["desk"], item)
    assert view["outcome"] == "approved"
    # The second Chengdu seat was not needed; the one who voted could not take it as well.
    assert [t["status"] for t in view["steps"][-1]["tasks"]] == ["done", "cancelled", "done"]
    kinds = [e["kind"] for e in view["timeline"]]
    assert kinds[:2] == ["opened", "due"] and kinds[-1] == "closed" and kinds.count("approved") == 5
    assert view["timeline"][2]["opinion"] == "同意" and view["timeline"][2]["actor"] == "zhangban"


async def test_a_large_amount_needs_every_countersigner_and_a_refusal_ends_it(flow, cadres) -> None:
    _engine, ops, lists, start = flow
    big, refused = await start(amount=9000), await start(amount=50)
    task = await my_task(lists, cadres["desk"], big)
    await ops.act(cadres["desk"], big, {"action": "pass", "task_id": task["task_id"]})
    sign = await my_task(lists, cadres["desk"], big)
    assert sign["step"] == "会签"
    await ops.act(cadres["desk"], big, {"action": "pass", "task_id": sign["task_id"]})
    assert (await lists.item(cadres["desk"], big))["status"] == "open"   # the province has not signed
    upper = await my_task(lists, cadres["province"], big)
    await ops.act(cadres["province"], big, {"action": "pass", "task_id": upper["task_id"]})
    assert (await lists.item(cadres["desk"], big))["outcome"] == "approved"

    task = await my_task(lists, cadres["desk"], refused)
    with pytest.raises(InvalidInput, match="意见"):   # no refusal without a reason
        await ops.act(cadres["desk"], refused, {"action": "reject", "task_id": task["task_id"]})
    await ops.act(cadres["desk"], refused, {"action": "reject", "task_id": task["task_id"],
                                            "opinion": "材料不全"})
    assert (await lists.item(cadres["desk"], refused))["outcome"] == "refused"


async def test_two_cadres_acting_at_once_one_wins_and_the_other_is_told(flow, cadres, rt, db) -> None:
    _engine, ops, lists, start = flow
    other = await make_cadre(db, cadres["desk"].org_id, "wangban", {"appeal.handle"})
    item = await start()
    task = await my_task(lists, cadres["desk"], item)
    body = {"action": "pass", "task_id": task["task_id"], "version": task["version"]}
    results = await asyncio.gather(ops.act(cadres["desk"], item, dict(body)),
                                   ops.act(other, item, dict(body)), return_exceptions=True)
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, Conflict)]
    assert len(wins) == 1 and len(losses) == 1
    assert losses[0].code == "item_moved" and "新的进展" in losses[0].message
    assert await db.fetchval("SELECT count(*) FROM work_events WHERE item_id = $1 AND kind = 'approved'",
                             item) == 1
    # A stale version is refused even when the task is still open.
    legal = await my_task(lists, cadres["desk2"], item)
    with pytest.raises(Conflict):
        await ops.act(cadres["desk2"], item, {"action": "pass", "task_id": legal["task_id"],
                                              "version": task["version"]})


async def test_return_withdraw_transfer_and_delegate(flow, cadres, db) -> None:
    _engine, ops, lists, start = flow
    other = await make_cadre(db, cadres["desk"].org_id, "wangban", {"appeal.handle"}, "法律部")
    item = await start()
    task = await my_task(lists, cadres["desk"], item)
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": task["task_id"]})
    # 撤回: nobody acted on the next steps yet, so the one who passed may take it back.
    await ops.act(cadres["desk"], item, {"action": "withdraw", "opinion": "漏看材料"})
    back = await my_task(lists, cadres["desk"], item)
    assert back["step"] == "初审"
    assert (await lists.todo(cadres["desk2"]))["tasks"] == []
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": back["task_id"]})
    legal = await my_task(lists, cadres["desk2"], item)
    # 转办 to a cadre without the permission is refused; to one with it, the task is theirs.
    with pytest.raises(InvalidInput):
        await ops.act(cadres["desk2"], item, {"action": "transfer", "task_id": legal["task_id"],
                                              "to": cadres["clerk"].id})
    await ops.act(cadres["desk2"], item, {"action": "transfer", "task_id": legal["task_id"],
                                          "to": other.id})
    assert (await my_task(lists, other, item))["task_id"] == legal["task_id"]
    # 委派: the clerk prepares it and hands it back; only then can it be passed.
    await ops.act(other, item, {"action": "delegate", "task_id": legal["task_id"], "to": cadres["clerk"].id})
    delegated = await my_task(lists, cadres["clerk"], item)
    assert delegated["delegated"]
    with pytest.raises(Conflict, match="交回"):
        await ops.act(cadres["clerk"], item, {"action": "pass", "task_id": legal["task_id"]})
    await ops.act(cadres["clerk"], item, {"action": "resolve", "task_id": legal["task_id"],
                                          "opinion": "已核实合同"})
    assert (await my_task(lists, other, item))["task_id"] == legal["task_id"]
    # 退回 to 初审 cancels both parallel paths.
    with pytest.raises(InvalidInput):
        await ops.act(other, item, {"action": "return", "task_id": legal["task_id"], "node": "vote",
                                    "opinion": "重审"})
    await ops.act(other, item, {"action": "return", "task_id": legal["task_id"], "node": "check",
                                "opinion": "金额有误，请重新初审"})
    view = await lists.item(cadres["desk"], item)
    assert [s["name"] for s in view["steps"] if s["status"] == "open"] == ["初审"]
    names = [e["name"] for e in view["timeline"]]
    for name in ("撤回", "转办", "委派", "交回", "退回"):
        assert name in names
    # 撤回 is gone once the next step has acted.
    again = await my_task(lists, cadres["desk"], item)
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": again["task_id"]})
    rights = await my_task(lists, cadres["desk"], item)
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": rights["task_id"]})
    with pytest.raises(Conflict):
        await ops.act(cadres["desk"], item, {"action": "withdraw"})


async def test_signers_added_and_a_proxy_acts_while_its_cadre_is_away(flow, cadres, clock) -> None:
    _engine, ops, lists, start = flow
    item = await start()
    task = await my_task(lists, cadres["desk"], item)
    added = await ops.act(cadres["desk"], item, {"action": "add_signer", "task_id": task["task_id"],
                                                 "to": cadres["desk2"].id})
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": task["task_id"]})
    assert (await lists.item(cadres["desk"], item))["steps"][0]["status"] == "open"  # 加签 must sign too
    await ops.act(cadres["desk2"], item, {"action": "pass", "task_id": added["task_id"]})
    assert (await lists.item(cadres["desk"], item))["steps"][0]["status"] == "passed"

    # 委托: the legal cadre goes on leave; the clerk stands in, and it is recorded for whom.
    await lists.add_proxy(cadres["desk2"], {"proxy_id": cadres["clerk"].id,
                                            "starts_at": (T0 - timedelta(hours=1)).isoformat(),
                                            "ends_at": (T0 + timedelta(days=3)).isoformat()})
    legal = await my_task(lists, cadres["clerk"], item)
    assert legal["for"] == "liban"
    await ops.act(cadres["clerk"], item, {"action": "pass", "task_id": legal["task_id"]})
    view = await lists.item(cadres["desk"], item)
    done = next(t for s in view["steps"] for t in s["tasks"] if t["id"] == legal["task_id"])
    assert (done["acted_by"], done["acted_for"]) == ("zhaoyuan", "liban")
    # After the period the proxy sees nothing of theirs.
    clock.set(T0 + timedelta(days=4), frozen=True)
    assert (await lists.todo(cadres["clerk"]))["tasks"] == []


async def test_urge_circulate_and_reads(flow, cadres, db, rt) -> None:
    _engine, ops, lists, start = flow
    openid = await bind(db, cadres["desk"])
    item = await start()
    assert [r["payload"]["data"]["thing4"]["value"] for r in await sent_to(db, openid)] == ["请及时办理"]
    with pytest.raises(Forbidden):
        await ops.act(cadres["dazhou"], item, {"action": "urge"})
    await ops.act(cadres["province"], item, {"action": "urge", "opinion": "请本周内办结"})
    with pytest.raises(TooManyRequests):
        await ops.act(cadres["province"], item, {"action": "urge"})
    asks = [r["payload"]["data"]["thing4"]["value"] for r in await sent_to(db, openid)]
    assert asks[-1] == "上级催办，请尽快办理"
    # 传阅 lets someone outside the handling roles read the item; opening it marks it read.
    with pytest.raises(NotFound):
        await lists.item(cadres["clerk"], item)
    await ops.act(cadres["desk"], item, {"action": "circulate", "cadres": [cadres["clerk"].id]})
    view = await lists.item(cadres["clerk"], item)
    assert view["readers"][0]["name"] == "zhaoyuan"
    reread = await lists.item(cadres["desk"], item)
    assert reread["readers"][0]["read_at"] is not None and reread["timeline"][-1]["name"] == "已阅"
    with pytest.raises(Forbidden):   # only within one's own subtree
        await ops.act(cadres["desk"], item, {"action": "circulate", "cadres": [cadres["dazhou"].id]})


async def test_suspension_pauses_the_limit_and_extension_needs_the_union_above(flow, cadres, clock) -> None:
    _engine, ops, lists, start = flow
    item = await start()
    due = (await lists.item(cadres["desk"], item))["due_at"]
    task = await my_task(lists, cadres["desk"], item)
    await ops.act(cadres["desk"], item, {"action": "suspend", "task_id": task["task_id"],
                                         "opinion": "等待司法鉴定"})
    with pytest.raises(Conflict, match="中止"):
        await ops.act(cadres["desk"], item, {"action": "pass", "task_id": task["task_id"]})
    clock.set(T0 + timedelta(days=5), frozen=True)
    await ops.act(cadres["desk"], item, {"action": "resume"})
    view = await lists.item(cadres["desk"], item)
    assert view["due_at"] > due
    assert datetime.fromisoformat(view["due_at"]) - datetime.fromisoformat(due) == timedelta(days=5)
    assert {d["reason"] for d in view["deadlines"]} >= {"set", "resumed"}
    # 延期: asked by the handler, at most the module's days, approved only above.
    with pytest.raises(InvalidInput):
        await ops.act(cadres["desk"], item, {"action": "request_extension", "task_id": task["task_id"],
                                             "days": 11, "opinion": "需补充材料"})
    await ops.act(cadres["desk"], item, {"action": "request_extension", "task_id": task["task_id"],
                                         "days": 5, "opinion": "需补充材料"})
    with pytest.raises(Forbidden):
        await ops.act(cadres["desk2"], item, {"action": "approve_extension"})
    before = (await lists.item(cadres["desk"], item))["due_at"]
    await ops.act(cadres["province"], item, {"action": "approve_extension", "opinion": "同意延期"})
    view = await lists.item(cadres["desk"], item)
    assert view["due_at"] > before and view["extension_pending"] is None
    superseded = [d for d in view["deadlines"] if d["status"] == "superseded" and d["step_id"] is None]
    assert any(d["due_at"] == before for d in superseded)   # the old limit is kept, not edited
    with pytest.raises(Conflict, match="延期 1 次"):
        await ops.act(cadres["desk"], item, {"action": "request_extension", "task_id": task["task_id"],
                                             "days": 1, "opinion": "再延"})


async def test_routing_moves_the_item_within_the_subtree_and_its_history_stays(flow, cadres, tianfu) -> None:
    _engine, ops, lists, start = flow
    item = await start()
    with pytest.raises(Forbidden):
        await ops.act(cadres["desk"], item, {"action": "route", "org_id": cadres["dazhou"].org_id})
    await ops.act(cadres["desk"], item, {"action": "route", "org_id": tianfu, "opinion": "由企业工会办理"})
    task = await my_task(lists, cadres["grassroots"], item)
    assert task["step"] == "初审"
    assert (await lists.todo(cadres["desk"]))["tasks"] == []
    view = await lists.item(cadres["desk"], item)   # the union above still sees it
    assert view["org_name"] == "成都天府软件有限公司工会"
    assert [e["kind"] for e in view["timeline"]][-1] == "routed"


async def test_a_signer_removed_before_acting_lets_the_step_settle(flow, cadres, db) -> None:
    _engine, ops, lists, start = flow
    third = await make_cadre(db, cadres["desk"].org_id, "sunban", {"appeal.handle"})
    item = await start()
    task = await my_task(lists, cadres["desk"], item)
    added = await ops.act(cadres["desk"], item, {"action": "add_signer", "task_id": task["task_id"],
                                                 "to": cadres["desk2"].id})
    await ops.act(cadres["desk"], item, {"action": "pass", "task_id": task["task_id"]})
    with pytest.raises(Conflict):   # the one who removes must hold an open task of the step
        await ops.act(cadres["desk"], item, {"action": "remove_signer", "task_id": task["task_id"],
                                             "remove": added["task_id"]})
    other = await ops.act(cadres["desk2"], item, {"action": "add_signer", "task_id": added["task_id"],
                                                  "to": third.id})
    await ops.act(cadres["desk2"], item, {"action": "remove_signer", "task_id": added["task_id"],
                                          "remove": other["task_id"], "opinion": "无需再会签"})
    assert (await lists.item(cadres["desk"], item))["steps"][0]["status"] == "open"
    await ops.act(cadres["desk2"], item, {"action": "pass", "task_id": added["task_id"]})
    view = await lists.item(cadres["desk"], item)
    assert view["steps"][0]["status"] == "passed" and "减签" in [e["name"] for e in view["timeline"]]


async def test_a_step_without_any_time_limit_still_reminds_its_handlers(rt, db, cadres, clock) -> None:
    """A template's time keyword takes only a time: an item with no limit sends when it was asked."""
    plain = Module(code="nolimit", name="无时限事项", permission="appeal.handle", graph={"nodes": [
        {"id": "start", "type": "start", "next": "do"},
        {"id": "do", "type": "task", "name": "办理", "assign": [{"role": "office"}], "next": "end"},
        {"id": "end", "type": "end", "outcome": "done"}]})
    rt.engine.modules[plain.code] = plain
    await seed_definitions(db, [plain], clock())
    openid = await bind(db, cadres["desk"])
    async with rt.pool.acquire() as conn, conn.transaction():
        await rt.engine.start(conn, "nolimit", org_id=cadres["desk"].org_id, title="没有时限的事项", data={})
    [sent] = await sent_to(db, openid)
    assert sent["payload"]["data"]["time3"]["value"] == "2026-03-02 09:00"
