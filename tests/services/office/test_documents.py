"""Documents (公文流转): an outgoing document from draft to archive, numbered in the seeds' form and
arriving in the lower union's incoming queue, handled there to the archive; the principal's
signature; the registry; and each bad input refused with nothing written."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from tests.services.cadres.test_cadres import org_id
from tests.services.casework.conftest import T0, make_cadre
from wxbackend.services.casework.definitions import check_graph
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput

DOC = {"title": "关于做好2026年职工春训工作的通知", "main_to": "各区（市）县总工会，各产业工会",
       "body": "为深入贯彻落实……现就有关事项通知如下。", "copy_to": "省总工会办公室",
       "attachment_note": "1．春训工作安排表"}


@pytest.fixture
async def office(rt, db, clock, tianfu):
    """Chengdu's document office: a drafter and a checker of 办公室, a principal, a cadre of
    组织部, and document cadres of a grassroots union below and of Dazhou beside it."""
    chengdu, dazhou = await org_id(db, "SC-510100"), await org_id(db, "SC-511700")
    perm = {"document.handle"}
    people = {
        "drafter": await make_cadre(db, chengdu, "wangni", perm, "办公室"),
        "checker": await make_cadre(db, chengdu, "libiao", perm, "办公室"),
        "principal": await make_cadre(db, chengdu, "zhuxi", perm),
        "organisation": await make_cadre(db, chengdu, "zuzhi", perm, "组织部"),
        "clerk": await make_cadre(db, chengdu, "xiaowang", set()),
        "tianfu": await make_cadre(db, tianfu, "tianfuwen", perm),
        "dazhou": await make_cadre(db, dazhou, "dazhouwen", perm),
        "province": await make_cadre(db, await org_id(db, "SC"), "shengwen", perm),
    }
    clock.set(T0, frozen=True)
    await rt.documents.set_office(people["checker"], {
        "issuer_code": "成工办字", "issuer_mark": "成都市总工会文件", "issuer_name": "成都市总工会",
        "principal_id": people["principal"].id})
    return people


async def step_on(rt, actor, item_id: int, decision: str = "pass", opinion: str | None = None) -> None:
    """A generic step (核稿, 会签, 复核, 签收 …) through the engine's 通过 / 不通过."""
    tasks = [t for t in (await rt.work_lists.todo(actor, limit=200))["tasks"] if t["item_id"] == item_id]
    assert tasks, f"{actor.username} has no task on item {item_id}"
    await rt.work.act(actor, item_id, {"action": decision, "task_id": tasks[0]["task_id"],
                                       **({"opinion": opinion} if opinion else {})})


async def to_step(rt, people, node: str, **doc) -> dict:
    """A new outgoing document of Chengdu taken to ``node``."""
    d = rt.documents
    view = await d.draft(people["drafter"], {**DOC, **doc})
    doc_id, item = view["document"]["id"], view["document"]["item_id"]
    path = ["check", "sign", "recheck", "number", "seal", "distribute", "archive"]
    if node == "draft":
        return view
    await d.act(people["drafter"], doc_id, {"action": "submit"})
    for at in path:
        if at == node:
            break
        if at == "sign":
            signer = "principal" if doc.get("important") or doc.get("flow") == "up" else "checker"
            await d.act(people[signer], doc_id, {"action": "sign"})
        elif at in {"number", "seal"}:
            await d.act(people["checker"], doc_id, {"action": at})
        elif at == "distribute":
            await d.act(people["checker"], doc_id, {"action": "distribute", "org_ids": []})
        else:
            await step_on(rt, people["checker"], item)
    return await d.view(people["checker"], doc_id)


async def test_an_outgoing_document_is_numbered_distributed_and_handled_below(rt, db, office, tianfu) -> None:
    d, p = rt.documents, office
    view = await d.draft(p["drafter"], {**DOC, "urgency": "特急", "countersign": ["组织部"],
                                        "copy_no": "000012"})
    doc = view["document"]
    doc_id, item = doc["id"], doc["item_id"]
    assert (doc["issuer_mark"], doc["issuer"], doc["copy_no"]) == \
        ("成都市总工会文件", "成都市总工会", "000012")
    assert [s["name"] for s in view["item"]["steps"]] == ["拟稿"]
    mine = await d.mine(p["drafter"])
    assert [t["document_id"] for t in mine["drafts"]] == [doc_id] and mine["tasks"] == []
    edited = await d.edit(p["drafter"], doc_id, {"title": "关于做好2026年职工春训工作的通知（修改）"})
    assert edited["document"]["title"].endswith("（修改）") and edited["item"]["title"].endswith("（修改）")

    await d.act(p["drafter"], doc_id, {"action": "submit"})
    # The checker sends it back once; the drafter submits again.
    await step_on(rt, p["checker"], item, "reject", "请补充经费安排")
    assert [t["document_id"] for t in (await d.mine(p["drafter"]))["drafts"]] == [doc_id]
    await d.act(p["drafter"], doc_id, {"action": "submit"})
    await step_on(rt, p["checker"], item)
    # 会签 by 组织部: its cadre holds the step, the office does not.
    assert [t["step"] for t in (await d.mine(p["organisation"]))["tasks"]] == ["会签"]
    await step_on(rt, p["organisation"], item)
    await d.act(p["checker"], doc_id, {"action": "sign", "opinion": "同意"})
    signed = (await d.view(p["checker"], doc_id))["document"]
    assert signed["signer"] == "libiao" and signed["written_on"] == "2026-03-02"
    await step_on(rt, p["checker"], item)          # 复核
    result = await d.act(p["checker"], doc_id, {"action": "number"})
    assert result["doc_number"] == "成工办字〔2026〕1号"
    await d.act(p["checker"], doc_id, {"action": "seal"})
    sent = await d.act(p["checker"], doc_id, {"action": "distribute", "org_ids": [tianfu]})
    assert sent["recipients"] == 1

    page = await d.view(p["checker"], doc_id)
    assert page["document"]["sealed"] and page["document"]["printed_on"] == "2026-03-02"
    [copy] = page["copies"]
    assert (copy["org_id"], copy["steps"]) == (tianfu, "签收")

    # Below: the grassroots union's queue has it; signed for, registered, instructed, handled.
    queue = await d.mine(p["tianfu"])
    [task] = queue["tasks"]
    assert (task["step"], task["direction"], task["doc_number"], task["urgency"]) == \
        ("签收", "in", "成工办字〔2026〕1号", "特急")
    incoming = await d.view(p["tianfu"], task["document_id"])
    assert incoming["document"]["sender"] == "成都市总工会" and incoming["source"]["id"] == doc_id
    in_item = task["item_id"]
    await step_on(rt, p["tianfu"], in_item)         # 签收
    registered = await d.act(p["tianfu"], task["document_id"], {"action": "register"})
    assert registered["received_no"] == "收文〔2026〕1号"
    await step_on(rt, p["tianfu"], in_item, opinion="拟请工会主席阅示")   # 拟办
    too_long = {"action": "instruct", "instruction": "请办公室抓紧落实", "limit_days": 10}
    with pytest.raises(InvalidInput, match="1 至 3 个工作日"):
        await d.act(p["tianfu"], task["document_id"], too_long)
    await d.act(p["tianfu"], task["document_id"], {"action": "instruct", "instruction": "请办公室抓紧落实"})
    handled = await d.view(p["tianfu"], task["document_id"])
    # 特急: three working days from Monday 2 March 2026, due by the end of Thursday.
    assert datetime.fromisoformat(handled["item"]["due_at"]) == datetime(2026, 3, 6, tzinfo=CHINA)
    assert handled["document"]["instruction"] == "请办公室抓紧落实"
    for _ in ("承办", "传阅", "办结", "归档"):
        await step_on(rt, p["tianfu"], in_item)
    done = await d.view(p["tianfu"], task["document_id"])
    assert (done["item"]["status"], done["item"]["outcome"]) == ("closed", "archived")

    await step_on(rt, p["checker"], item)           # 归档
    out = await d.registry(p["checker"], direction="out", year=2026, org_id=None, search=None)
    assert [(r["doc_number"], r["status"]) for r in out["documents"]] == [("成工办字〔2026〕1号", "closed")]
    below = await d.registry(p["checker"], direction="in", year=2026, org_id=tianfu, search=None)
    assert [r["received_no"] for r in below["documents"]] == ["收文〔2026〕1号"]
    with pytest.raises(Exception, match="管辖范围"):
        await d.registry(p["tianfu"], direction="out", year=2026, org_id=await org_id(db, "SC-510100"),
                         search=None)
    actions = {r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'work.document%'")}
    assert {"work.document.submit", "work.document.number", "work.document.distribute"} <= actions


async def test_important_and_upward_documents_wait_for_the_principal(rt, db, office) -> None:
    d, p = rt.documents, office
    view = await to_step(rt, p, "sign", important=True)
    doc_id = view["document"]["id"]
    assert [s["name"] for s in view["item"]["steps"] if s["status"] == "open"] == ["签发"]
    with pytest.raises(Forbidden, match="主要负责人签发") as refused:
        await d.act(p["checker"], doc_id, {"action": "sign"})
    assert refused.value.code == "principal_only"
    row = await db.fetchrow("SELECT signer, signed_at FROM documents WHERE id = $1", doc_id)
    assert (row["signer"], row["signed_at"]) == (None, None)
    await d.act(p["principal"], doc_id, {"action": "sign"})
    assert (await d.view(p["principal"], doc_id))["document"]["signer"] == "zhuxi"

    # An upward document goes to the union above; a union beside is outside.
    up = await to_step(rt, p, "distribute", flow="up")
    up_id = up["document"]["id"]
    with pytest.raises(Forbidden) as outside:
        await d.act(p["checker"], up_id, {"action": "distribute", "org_ids": [p["dazhou"].org_id]})
    assert outside.value.code == "outside_subtree"
    assert await db.fetchval("SELECT count(*) FROM documents WHERE source_id = $1", up_id) == 0
    await d.act(p["checker"], up_id, {"action": "distribute", "org_ids": [p["province"].org_id]})
    assert [t["title"] for t in (await d.mine(p["province"]))["tasks"]] == [DOC["title"]]


async def test_without_a_principal_an_important_draft_cannot_be_submitted(rt, db, office) -> None:
    d, p = rt.documents, office
    await d.set_office(p["checker"], {"issuer_code": "成工办字", "issuer_mark": "成都市总工会文件",
                                      "issuer_name": "成都市总工会", "principal_id": None})
    view = await d.draft(p["drafter"], {**DOC, "flow": "up"})
    with pytest.raises(Conflict) as missing:
        await d.act(p["drafter"], view["document"]["id"], {"action": "submit"})
    assert missing.value.code == "principal_missing"
    assert [t["document_id"] for t in (await d.mine(p["drafter"]))["drafts"]] == [view["document"]["id"]]


# --- bad input: a clear message, the right status, nothing written ------------------------------
async def test_a_classified_document_is_refused_and_nothing_is_written(rt, db, office) -> None:
    for marked in ({"classification": "机密"}, {"classification": "秘密★1年"},
                   {"title": "秘密★6个月 关于某事项的请示"}):
        with pytest.raises(InvalidInput) as refused:
            await rt.documents.draft(office["drafter"], {**DOC, **marked})
        assert refused.value.code == "classified_document"
        assert refused.value.message.startswith("涉密公文不得在互联网平台处理")
        with pytest.raises(InvalidInput, match="涉密公文"):
            await rt.documents.receive(office["tianfu"], {**DOC, "sender": "某单位", **marked})
    assert await db.fetchval("SELECT count(*) FROM documents") == 0
    assert await db.fetchval("SELECT count(*) FROM work_items") == 0
    view = await to_step(rt, office, "draft")
    with pytest.raises(InvalidInput, match="涉密公文"):
        await rt.documents.edit(office["drafter"], view["document"]["id"], {"classification": "绝密"})
    unclassified = await rt.documents.draft(office["drafter"], {**DOC, "classification": "非密"})
    assert unclassified["document"]["title"] == DOC["title"]


async def test_a_number_requested_twice_keeps_the_first(rt, db, office) -> None:
    view = await to_step(rt, office, "number")
    doc_id = view["document"]["id"]
    first = await rt.documents.act(office["checker"], doc_id, {"action": "number"})
    with pytest.raises(Conflict) as again:
        await rt.documents.act(office["checker"], doc_id, {"action": "number"})
    assert again.value.code == "already_numbered" and first["doc_number"] in again.value.message
    row = await db.fetchrow("SELECT doc_number, number_serial FROM documents WHERE id = $1", doc_id)
    assert (row["doc_number"], row["number_serial"]) == ("成工办字〔2026〕1号", 1)
    assert await db.fetchval("SELECT last FROM document_sequences") == 1


async def test_numbering_before_signing_is_refused(rt, db, office) -> None:
    view = await to_step(rt, office, "sign")
    with pytest.raises(Conflict) as early:
        await rt.documents.act(office["checker"], view["document"]["id"], {"action": "number"})
    assert early.value.code == "not_at_step" and "尚未签发" in early.value.message
    assert await db.fetchval("SELECT count(*) FROM document_sequences") == 0
    assert await db.fetchval("SELECT doc_number FROM documents") is None


async def test_distributing_outside_the_subtree_writes_nothing(rt, db, office, tianfu) -> None:
    view = await to_step(rt, office, "distribute")
    doc_id = view["document"]["id"]
    items = await db.fetchval("SELECT count(*) FROM work_items")
    with pytest.raises(Forbidden) as outside:
        await rt.documents.act(office["checker"], doc_id,
                               {"action": "distribute", "org_ids": [tianfu, office["dazhou"].org_id]})
    assert outside.value.code == "outside_subtree" and "下级工会" in outside.value.message
    assert await db.fetchval("SELECT count(*) FROM work_items") == items
    assert await db.fetchval("SELECT count(*) FROM documents WHERE direction = 'in'") == 0
    assert await db.fetchval("SELECT distributed_at FROM documents WHERE id = $1", doc_id) is None
    # Every union directly below, at once.
    sent = await rt.documents.act(office["checker"], doc_id, {"action": "distribute", "children": True})
    below = await db.fetchval("SELECT count(*) FROM orgs WHERE parent_id = $1", office["checker"].org_id)
    assert sent["recipients"] == below >= 1
    assert await db.fetchval(
        """SELECT count(*) FROM work_tasks t JOIN work_steps s ON s.id = t.step_id
           WHERE s.node = 'receive' AND t.status = 'open'""") == below


async def test_concurrent_numbers_are_distinct_and_gap_free(rt, db, office) -> None:
    ids = [(await to_step(rt, office, "number"))["document"]["id"] for _ in range(6)]
    results = await asyncio.gather(*(rt.documents.act(office["checker"], i, {"action": "number"})
                                     for i in ids))
    assert sorted(r["doc_number"] for r in results) == sorted(f"成工办字〔2026〕{n}号" for n in range(1, 7))
    same = (await to_step(rt, office, "number"))["document"]["id"]
    answers = await asyncio.gather(*(rt.documents.act(office["checker"], same, {"action": "number"})
                                     for _ in range(5)), return_exceptions=True)
    assert [a["doc_number"] for a in answers if isinstance(a, dict)] == ["成工办字〔2026〕7号"]
    assert all(isinstance(a, Conflict) for a in answers if not isinstance(a, dict))
    assert await db.fetchval("SELECT last FROM document_sequences WHERE kind = 'out'") == 7


async def test_settings_and_reads_are_for_document_cadres_of_the_subtree(rt, db, office) -> None:
    with pytest.raises(Forbidden):
        await rt.documents.draft(office["clerk"], DOC)
    names = {"issuer_mark": "成都市总工会文件", "issuer_name": "成都市总工会"}
    with pytest.raises(InvalidInput, match="发文代字只写机关代字"):
        await rt.documents.set_office(office["checker"], {"issuer_code": "成工办字〔2026〕", **names})
    with pytest.raises(InvalidInput, match="主要负责人应为本单位"):
        await rt.documents.set_office(office["checker"], {"issuer_code": "成工办字", **names,
                                                          "principal_id": office["dazhou"].id})
    settings = await rt.documents.office(office["checker"])
    assert settings["office"]["principal_name"] == "zhuxi" and settings["office"]["issuer_code"] == "成工办字"
    view = await to_step(rt, office, "draft")
    with pytest.raises(Exception, match="不存在"):
        await rt.documents.view(office["dazhou"], view["document"]["id"])


def test_the_field_roles_read_a_field_the_module_declares() -> None:
    graph = {"nodes": [
        {"id": "start", "type": "start", "next": "sign"},
        {"id": "sign", "type": "task", "name": "签发", "assign": [{"role": "principal", "field": "boss"}],
         "next": "end"},
        {"id": "end", "type": "end"}]}
    with pytest.raises(InvalidInput, match="应取自事项的字段"):
        check_graph(graph, frozenset({"principal"}))
    graph["nodes"][1]["assign"] = [{"role": "departments", "field": "countersign"}]
    assert check_graph(graph, frozenset({"countersign"}))["nodes"][1]["assign"] == \
        [{"role": "departments", "field": "countersign"}]
