"""Proposals of a congress session: the roster by registered phone, submission within the window,
seconders (附议), filing to a lead and helping units, merging and suggestions, the reply with its
class, the proposer's rating (不满意 sends it back once), and the session's report."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from tests.services.activities.conftest import make_workers
from tests.services.casework.conftest import T0, make_cadre
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.identity.accounts import PHONE_COLUMN
from wxbackend.store.membership import orgs as org_store

PROPOSAL = {"title": "关于改善职工食堂就餐条件的提案", "reasons": "食堂座位不足，午餐高峰排队超过二十分钟。",
            "measures": "增设就餐区座位，错峰安排各部门就餐时间。"}


@pytest.fixture
async def congress(rt, db, cadres, tianfu):
    """A Chengdu committee cadre, two units under Chengdu with their cadres, four registered
    representatives and an open session needing two seconders."""
    jinjiang = (await org_store.create_grassroots(
        db, parent_id=cadres["desk"].org_id, name="锦江宾馆工会", credit_code=None,
        employer_name="锦江宾馆", region_code=None, founded_via_platform=False))["id"]
    committee = await make_cadre(db, cadres["desk"].org_id, "tiwei", {"proposal.handle"})
    lead = await make_cadre(db, tianfu, "tianfuti", {"proposal.handle"})
    helper = await make_cadre(db, jinjiang, "jinjiangti", {"proposal.handle"})
    people = await make_workers(db, 5, None, pii=rt.pii)
    for account in people:
        await db.execute("UPDATE accounts SET phone_bidx = $2 WHERE id = $1", account,
                         rt.pii.blind_index(f"139{account:08d}", PHONE_COLUMN))
    session = await rt.proposals.create_session(committee, {
        "kind": "workers", "name": "成都市总工会第五届职工代表大会第三次会议",
        "opens_at": (T0 - timedelta(days=1)).isoformat(), "closes_at": (T0 + timedelta(days=10)).isoformat(),
        "seconders": 2, "reply_days": 20})
    reps = people[:4]
    session = await rt.proposals.add_representatives(committee, session["id"], {"representatives": [
        {"name": name, "phone": f"139{account:08d}", "delegation": "机关代表团"}
        for name, account in zip(("王代表", "李代表", "赵代表", "钱代表"), reps, strict=True)]})
    return {"session": session["id"], "committee": committee, "lead": lead, "helper": helper,
            "reps": reps, "outsider": people[4], "tianfu": tianfu, "jinjiang": jinjiang}


async def task_of(rt, actor, item_id: int) -> dict:
    return next(t for t in (await rt.work_lists.todo(actor))["tasks"] if t["item_id"] == item_id)


async def seconded(rt, c, proposal_id: int, *seconders: int) -> dict:
    view = None
    for account in seconders:
        view = await rt.proposals.second(account, proposal_id)
    return view


async def test_a_proposal_from_submission_to_a_rated_reply(rt, db, cadres, congress, clock) -> None:
    c = congress
    a, b, d, _e = c["reps"]
    with pytest.raises(InvalidInput, match="尚未在川工之家注册"):
        await rt.proposals.add_representatives(c["committee"], c["session"], {"representatives": [
            {"name": "孙代表", "phone": "13900000000"}]})
    with pytest.raises(NotFound):
        await rt.proposals.submit(c["outsider"], c["session"], PROPOSAL)
    proposal = await rt.proposals.submit(a, c["session"], PROPOSAL)
    assert proposal["status"] == "seconding" and proposal["item_id"] is None
    with pytest.raises(Conflict, match="自己"):
        await rt.proposals.second(a, proposal["id"])
    await rt.proposals.second(b, proposal["id"])
    with pytest.raises(Conflict, match="已附议"):
        await rt.proposals.second(b, proposal["id"])
    view = await rt.proposals.second(d, proposal["id"])
    assert view["status"] == "reviewing" and view["seconders"] == ["李代表", "赵代表"]
    item = view["item_id"]
    assert (await task_of(rt, c["committee"], item))["step"] == "立案审查"

    with pytest.raises(Forbidden):   # a unit outside the session's union
        await rt.proposals.file(c["committee"], proposal["id"], {
            "action": "file", "lead_unit": cadres["dazhou"].org_id})
    await rt.proposals.file(c["committee"], proposal["id"], {
        "action": "file", "lead_unit": c["tianfu"], "help_units": [c["jinjiang"]], "opinion": "同意立案"})
    filed = await rt.proposals.worker_view(a, proposal["id"])
    assert filed["status"] == "filed" and filed["number"] == 1 and filed["due_at"]

    # The helping unit gives its opinion first; the lead unit then replies with a class.
    assist = await task_of(rt, c["helper"], item)
    assert assist["step"] == "协办意见"
    assert [t for t in (await rt.work_lists.todo(c["lead"]))["tasks"]] == []
    await rt.work.act(c["helper"], item, {"action": "pass", "task_id": assist["task_id"],
                                          "opinion": "同意增设座位，本单位可提供场地"})
    reply = await task_of(rt, c["lead"], item)
    page = await rt.proposals.desk_view(c["lead"], item)   # the lead unit's page of it
    assert page["proposal"]["number"] == 1 and page["desk_steps"] == ["reply"]
    assert "pass" not in {a["action"] for a in page["actions"]}
    with pytest.raises(Forbidden):
        await rt.proposals.reply(c["helper"], proposal["id"], {"task_id": reply["task_id"], "class": "A",
                                                               "reply": "协办单位无权代替主办单位答复。"})
    with pytest.raises(InvalidInput):
        await rt.proposals.reply(c["lead"], proposal["id"], {"task_id": reply["task_id"], "class": "D",
                                                             "reply": "类别无效的答复内容。"})
    await rt.proposals.reply(c["lead"], proposal["id"], {"task_id": reply["task_id"], "class": "B",
                                                         "reply": "已列入明年食堂改造计划，分两期实施。"})
    with pytest.raises(Forbidden):
        await rt.proposals.rate(b, proposal["id"], {"rating": "satisfied"})
    view = await rt.proposals.rate(a, proposal["id"], {"rating": "dissatisfied"})
    assert view["status"] == "filed"   # sent back once
    again = await task_of(rt, c["lead"], item)
    assert again["step"] == "重新办理"
    await rt.proposals.reply(c["lead"], proposal["id"], {"task_id": again["task_id"], "class": "A",
                                                         "reply": "已于本月增设座位八十个并实行错峰就餐。"})
    view = await rt.proposals.rate(a, proposal["id"], {"rating": "satisfied"})
    assert view["status"] == "closed" and view["class"] == "A"
    with pytest.raises(Conflict):
        await rt.proposals.rate(a, proposal["id"], {"rating": "satisfied"})


async def test_merging_suggestions_lapses_and_the_report(rt, db, cadres, congress, clock) -> None:
    c = congress
    a, b, d, e = c["reps"]
    first = await rt.proposals.submit(a, c["session"], PROPOSAL)
    await seconded(rt, c, first["id"], b, d)
    twin = await rt.proposals.submit(e, c["session"], {**PROPOSAL, "title": "关于食堂增加座位的提案"})
    await seconded(rt, c, twin["id"], a, b)
    idea = await rt.proposals.submit(b, c["session"], {**PROPOSAL, "title": "关于组织春游活动的提案"})
    await seconded(rt, c, idea["id"], a, e)
    lonely = await rt.proposals.submit(d, c["session"], {**PROPOSAL, "title": "关于延长午休时间的提案"})
    await rt.proposals.file(c["committee"], first["id"], {"action": "file", "lead_unit": c["tianfu"]})
    with pytest.raises(InvalidInput, match="意见"):
        await rt.proposals.file(c["committee"], twin["id"], {"action": "merge", "into": first["id"]})
    with pytest.raises(InvalidInput):
        await rt.proposals.file(c["committee"], twin["id"], {"action": "merge", "into": idea["id"],
                                                             "reason": "内容相同"})
    await rt.proposals.file(c["committee"], twin["id"], {"action": "merge", "into": first["id"],
                                                         "reason": "与第1号提案内容相同，并案办理"})
    await rt.proposals.file(c["committee"], idea["id"], {"action": "suggest",
                                                         "reason": "属于工会日常工作，转为意见建议"})
    with pytest.raises(Conflict):
        await rt.proposals.file(c["committee"], idea["id"], {"action": "suggest", "reason": "再次处理"})
    # The window closes: the proposal short of seconders lapses, and nothing more comes in.
    clock.set(T0 + timedelta(days=11), frozen=True)
    with pytest.raises(Conflict, match="已截止"):
        await rt.proposals.submit(a, c["session"], PROPOSAL)
    with pytest.raises(Conflict, match="已截止"):
        await rt.proposals.second(a, lonely["id"])
    assert await rt.proposals.lapse() == 1
    reply = await task_of(rt, c["lead"], first["item_id"] if first["item_id"] else
                          (await rt.proposals.worker_view(a, first["id"]))["item_id"])
    await rt.proposals.reply(c["lead"], first["id"], {"task_id": reply["task_id"], "class": "C",
                                                      "reply": "受场地所限暂不能解决，明年统筹考虑。"})
    await rt.proposals.rate(a, first["id"], {"rating": "basically"})
    report = (await rt.proposals.session(c["committee"], c["session"]))["report"]
    assert report == {"submitted": 4, "lapsed": 1, "filed": 1, "merged": 1, "suggestions": 1,
                      "by_class": {"A": 0, "B": 0, "C": 1}, "replied": 1, "on_time": 1,
                      "on_time_rate": 1.0, "rated": 1, "satisfaction_rate": 1.0}
    data, name = await rt.proposals.report_xlsx(c["committee"], c["session"])
    sheet = load_workbook(io.BytesIO(data)).active
    cells = [cell for row in sheet.iter_rows(values_only=True) for cell in row if cell is not None]
    assert "关于改善职工食堂就餐条件的提案" in cells and "满意率" in cells and "导出人" in str(cells[1])
    assert name.endswith(".xlsx") and "职工代表大会" in name
    with pytest.raises(NotFound):   # another city's cadre
        await rt.proposals.session(await make_cadre(db, cadres["dazhou"].org_id, "dzti", {"proposal.handle"}),
                                   c["session"])
