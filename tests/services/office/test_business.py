"""New business online by configuration: the hardship-assistance example defined as data,
requested, approved by the leading group (an item on the engine), applied for by a member, run
through grassroots verification, the union above's review and the payment record; its personal
fields sealed and masked; versions, retirement, and bad definitions refused with nothing written."""

from __future__ import annotations

import copy
import json

import pytest

from tests.services.activities.conftest import make_workers
from tests.services.cadres.test_cadres import org_id
from tests.services.casework.conftest import make_cadre
from tests.services.casework.test_appeals import phone_photo
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.membership.idnumbers import id_check_char
from wxbackend.services.office import forms
from wxbackend.services.office.business.definitions import example

ID_NUMBER = "51010019900307123" + id_check_char("51010019900307123")
ANSWERS = {"name": "王小明", "id_number": ID_NUMBER, "phone": "13912345678", "reason": "因病",
           "family_size": 3, "monthly_income": 800, "amount": 3000,
           "situation": "爱人患病住院，家中两个孩子上学，收入难以维持日常开支。",
           "bank_account": "6222020200112233445"}


@pytest.fixture
async def people(rt, db, cadres, tianfu):
    """The platform office, the leading group's office, the handlers at the grassroots union and
    the city above it, and a member of the grassroots union."""
    sc, chengdu = await org_id(db, "SC"), await org_id(db, "SC-510100")
    return {
        "designer": await make_cadre(db, sc, "shejiban", {"business.configure"}),
        "approver": await make_cadre(db, sc, "lingdao", {"business.approve"}),
        "verifier": await make_cadre(db, tianfu, "hexiban", {"business.handle"}),
        "county": await make_cadre(db, chengdu, "shenheban", {"business.handle"}),
        "member": (await make_workers(db, 1, tianfu, pii=rt.pii))[0],
        "outsider": (await make_workers(db, 1, None, pii=rt.pii))[0],
        "root": sc,
    }


def task_at(view: dict, node: str) -> int:
    """The open task of ``node`` on an item page."""
    return next(t["id"] for s in view["steps"] if s["node"] == node and s["status"] == "open"
                for t in s["tasks"] if t["status"] == "open")


async def live_hardship(rt, people) -> dict:
    body = example("hardship", [people["root"]])
    draft = await rt.business.create(people["designer"], body)
    await rt.business.request(people["designer"], draft["id"], {"opinion": "请领导小组审批"})
    return await rt.business.decide(people["approver"], draft["id"], {"approve": True, "opinion": "同意上线"})


async def test_the_example_goes_live_only_after_the_leading_group_approves(rt, db, people):
    designer, approver = people["designer"], people["approver"]
    draft = await rt.business.create(designer, example("hardship", [people["root"]]))
    assert (draft["code"], draft["version"], draft["status"]) == ("biz_hardship", 1, "draft")
    # A draft is not live: a member finds nothing to apply for, and nothing is published.
    assert (await rt.business_apps.offered_to_worker(people["member"], "h5"))["modules"] == []
    assert await db.fetchval("SELECT count(*) FROM process_definitions WHERE module = 'biz_hardship'") == 0

    requested = await rt.business.request(designer, draft["id"], {})
    item = await db.fetchrow("SELECT module, org_id, status FROM work_items WHERE id = $1",
                             requested["request_item_id"])
    assert dict(item) == {"module": "business_request", "org_id": people["root"], "status": "open"}
    # Once asked for, what the leading group reads is what runs: the version is frozen.
    with pytest.raises(Conflict) as frozen:
        await rt.business.update(designer, draft["id"], example("hardship", [people["root"]]))
    assert frozen.value.code == "business_frozen"
    # The one who defined it does not approve it.
    both = await make_cadre(db, people["root"], "shuangzhi", {"business.configure", "business.approve"})
    own = await rt.business.create(both, {**example("hardship", [people["root"]]), "code": "hardship2"})
    await rt.business.request(both, own["id"], {})
    with pytest.raises(Forbidden):
        await rt.business.decide(both, own["id"], {"approve": True})

    live = await rt.business.decide(approver, draft["id"], {"approve": True, "opinion": "同意"})
    assert live["status"] == "live"
    request = live["request_item_id"]
    assert await db.fetchval("SELECT status FROM work_items WHERE id = $1", request) == "closed"
    assert rt.engine.modules["biz_hardship"].name == "困难职工帮扶申请"
    offered = (await rt.business_apps.offered_to_worker(people["member"], "mp"))["modules"]
    assert [m["code"] for m in offered] == ["biz_hardship"]


async def test_a_refusal_needs_a_reason_and_leaves_nothing_live(rt, db, people):
    draft = await rt.business.create(people["designer"], example("hardship", [people["root"]]))
    await rt.business.request(people["designer"], draft["id"], {})
    with pytest.raises(InvalidInput):
        await rt.business.decide(people["approver"], draft["id"], {"approve": False})
    refused = await rt.business.decide(people["approver"], draft["id"],
                                       {"approve": False, "opinion": "请先明确资金来源"})
    assert refused["status"] == "refused"
    assert await db.fetchval("SELECT count(*) FROM process_definitions WHERE module = 'biz_hardship'") == 0


async def test_a_member_applies_and_the_application_runs_to_the_payment_record(rt, db, people):
    module = await live_hardship(rt, people)
    apps = rt.business_apps
    filed = await apps.apply_as_worker(people["member"], "h5", module["id"], {"answers": ANSWERS})
    item_id = filed["item_id"]
    # The applicant's own page shows the personal fields masked.
    assert filed["answers"]["id_number"] == ID_NUMBER[:4] + "**********" + ID_NUMBER[-4:]
    assert filed["answers"]["phone"] == "139****5678"
    assert filed["answers"]["bank_account"] == "******"
    assert filed["answers"]["amount"] == 3000
    # The engine's item holds no personal data; the sealed column holds it, not in clear.
    data = await db.fetchval("SELECT data FROM work_items WHERE id = $1", item_id)
    assert set(data) == {"reason", "family_size", "monthly_income", "amount"}
    sealed = await db.fetchval("SELECT sealed FROM business_applications WHERE item_id = $1", item_id)
    assert ID_NUMBER.encode() not in sealed and "王小明".encode() not in sealed

    # The grassroots union verifies; the handler sees everything, and the view is audited.
    desk = await apps.desk_view(people["verifier"], item_id)
    assert desk["application"]["answers"]["id_number"] == ID_NUMBER
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'business.view_personal'") == 1
    await apps.act(people["verifier"], item_id, {"task_id": task_at(desk, "verify"), "decision": "pass",
                                                 "opinion": "已入户核实", "version": desk["version"]})
    # The union above reviews; the grassroots handler cannot act for it.
    desk = await apps.desk_view(people["county"], item_id)
    review = task_at(desk, "review")
    with pytest.raises(Forbidden):
        await apps.act(people["verifier"], item_id, {"task_id": review, "decision": "pass"})
    await apps.act(people["county"], item_id, {"task_id": review, "decision": "pass"})

    # The payment record is a desk step: its form is required, and a bare 通过 is refused.
    desk = await apps.desk_view(people["county"], item_id)
    pay = task_at(desk, "pay")
    assert desk["desk_steps"] == ["pay"] and "pass" not in [a["action"] for a in desk["actions"]]
    with pytest.raises(Conflict) as bare:
        await rt.work.act(people["county"], item_id, {"action": "pass", "task_id": pay})
    assert bare.value.code == "desk_step"
    with pytest.raises(InvalidInput) as missing:
        await apps.act(people["county"], item_id, {"task_id": pay, "decision": "pass",
                                                   "answers": {"paid_amount": 3000}})
    assert missing.value.code == "invalid_answer"
    done = await apps.act(people["county"], item_id, {
        "task_id": pay, "decision": "pass",
        "answers": {"paid_amount": 3000, "paid_on": "2026-03-20", "voucher": "CD2026-0042"}})
    assert done["status"] == "closed"
    mine = await apps.worker_view(people["member"], item_id)
    assert (mine["status"], mine["outcome"]) == ("closed", "paid")
    assert mine["steps"]["pay"] == {"paid_amount": 3000, "paid_on": "2026-03-20", "voucher": "CD2026-0042"}


async def test_a_refusal_at_verification_ends_the_application(rt, people):
    module = await live_hardship(rt, people)
    filed = await rt.business_apps.apply_as_worker(people["member"], "mp", module["id"], {"answers": ANSWERS})
    desk = await rt.business_apps.desk_view(people["verifier"], filed["item_id"])
    task = task_at(desk, "verify")
    with pytest.raises(InvalidInput):   # 不通过 needs its reason
        await rt.business_apps.act(people["verifier"], filed["item_id"],
                                   {"task_id": task, "decision": "reject"})
    await rt.business_apps.act(people["verifier"], filed["item_id"],
                               {"task_id": task, "decision": "reject", "opinion": "家庭收入高于当地标准"})
    mine = await rt.business_apps.worker_view(people["member"], filed["item_id"])
    assert mine["outcome"] == "refused"


async def test_who_may_apply_and_what_they_must_give(rt, db, people):
    module = await live_hardship(rt, people)
    apps = rt.business_apps
    with pytest.raises(Forbidden) as not_member:
        await apps.apply_as_worker(people["outsider"], "h5", module["id"], {"answers": ANSWERS})
    assert not_member.value.code == "members_only"
    with pytest.raises(Forbidden):   # a module for workers is not applied for from the console
        await apps.apply_as_cadre(people["verifier"], module["id"], {"answers": ANSWERS})
    bad_id = {**ANSWERS, "id_number": ID_NUMBER[:17] + ("0" if ID_NUMBER[17] != "0" else "1")}
    for answers, fragment in ((bad_id, "身份证号码"), ({**ANSWERS, "amount": 50000}, "申请帮扶金额"),
                              ({**ANSWERS, "reason": "其他"}, "其他困难说明"),
                              ({k: v for k, v in ANSWERS.items() if k != "phone"}, "联系电话")):
        with pytest.raises(InvalidInput) as refused:
            await apps.apply_as_worker(people["member"], "h5", module["id"], {"answers": answers})
        assert fragment in refused.value.message
    assert await db.fetchval("SELECT count(*) FROM business_applications") == 0
    # A field shown only for 其他 is kept then, and dropped when hidden.
    other = await apps.apply_as_worker(people["member"], "h5", module["id"], {
        "answers": {**ANSWERS, "reason": "其他", "reason_detail": "房屋漏雨需修缮"}})
    assert other["answers"]["reason_detail"] == "房屋漏雨需修缮"
    plain = await apps.apply_as_worker(people["member"], "h5", module["id"], {
        "answers": {**ANSWERS, "reason_detail": "不该保存"}})
    assert "reason_detail" not in plain["answers"]


async def test_a_new_version_replaces_the_live_one_and_running_items_keep_theirs(rt, db, people):
    first = await live_hardship(rt, people)
    filed = await rt.business_apps.apply_as_worker(people["member"], "h5", first["id"], {"answers": ANSWERS})
    changed = example("hardship", [people["root"]])
    changed["graph"]["nodes"][0]["item_deadline"]["count"] = 20
    second = await rt.business.create(people["designer"], changed)
    assert second["version"] == 2
    with pytest.raises(Conflict):   # one pending version at a time
        await rt.business.create(people["designer"], changed)
    await rt.business.request(people["designer"], second["id"], {})
    await rt.business.decide(people["approver"], second["id"], {"approve": True})
    assert (await rt.business.get(people["designer"], first["id"]))["status"] == "superseded"
    versions = await db.fetch(
        """SELECT d.version, d.status FROM process_definitions d WHERE module = 'biz_hardship'
           ORDER BY version""")
    assert [(v["version"], v["status"]) for v in versions] == [(1, "retired"), (2, "published")]
    running = await db.fetchval(
        """SELECT d.version FROM work_items i JOIN process_definitions d ON d.id = i.definition_id
           WHERE i.id = $1""", filed["item_id"])
    assert running == 1
    # Retired: nothing new is accepted; the running application stays with its handlers.
    retired = await rt.business.retire(people["designer"], second["id"], {"reason": "并入其他帮扶业务"})
    assert retired["status"] == "retired"
    with pytest.raises(NotFound):
        await rt.business_apps.apply_as_worker(people["member"], "h5", second["id"], {"answers": ANSWERS})
    assert (await rt.business_apps.desk_view(people["verifier"], filed["item_id"]))["status"] == "open"


async def test_bad_definitions_are_refused_and_nothing_is_written(rt, db, people):
    good = example("hardship", [people["root"]])
    broken = []
    unparsable = copy.deepcopy(good)
    unparsable["graph"]["nodes"][2]["branches"][0]["when"] = "decision == == 'reject'"
    broken.append((unparsable, "invalid_condition"))
    personal = copy.deepcopy(good)   # a branch may not read personal data
    personal["graph"]["nodes"][2]["branches"][0]["when"] = "id_number == '1'"
    broken.append((personal, "invalid_condition"))
    unknown_type = copy.deepcopy(good)
    unknown_type["form"]["fields"][0]["type"] = "signature"
    broken.append((unknown_type, "invalid_form"))
    hidden_by_later = copy.deepcopy(good)
    hidden_by_later["form"]["fields"][3]["when"] = "amount > 1"   # amount comes later
    broken.append((hidden_by_later, "invalid_condition"))
    stray_step = copy.deepcopy(good)
    stray_step["step_forms"] = {"nowhere": good["step_forms"]["pay"]}
    broken.append((stray_step, "invalid_module"))
    no_entrance = {**good, "entrances": ["fax"]}
    broken.append((no_entrance, "invalid_module"))
    for body, code in broken:
        with pytest.raises(InvalidInput) as refused:
            await rt.business.create(people["designer"], body)
        assert refused.value.code == code, json.dumps(body, ensure_ascii=False)[:200]
    outside = await make_cadre(db, await org_id(db, "SC-511700"), "dazhoushe", {"business.configure"})
    with pytest.raises(Forbidden):   # open only within the definer's subtree
        await rt.business.create(outside, {**good, "open_to": [await org_id(db, "SC-510100")]})
    assert await db.fetchval("SELECT count(*) FROM business_modules") == 0
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action LIKE 'business.%'") == 0


def test_forms_check_types_and_answers():
    form = forms.check_form({"fields": [
        {"key": "kind", "label": "类别", "type": "choice", "choices": ["甲", "乙"], "required": True},
        {"key": "count", "label": "人数", "type": "number", "integer": True, "min": 1, "max": 9},
        {"key": "why", "label": "说明", "type": "text", "when": "kind == '乙'", "required": True},
        {"key": "days", "label": "日期", "type": "multichoice", "choices": ["周一", "周二", "周三"]}]})
    from datetime import date

    today = date(2026, 3, 2)
    assert forms.clean_answers(form, {"kind": "甲", "count": "3", "why": "x"}, today=today) == \
        {"kind": "甲", "count": 3}
    answers = {"kind": "乙", "why": " 原因 ", "days": ["周三", "周一"]}
    assert forms.clean_answers(form, answers, today=today) == \
        {"kind": "乙", "why": "原因", "days": ["周一", "周三"]}
    for answers in ({"kind": "丙"}, {"kind": "甲", "count": 2.5}, {"kind": "甲", "count": 10},
                    {"kind": "乙"}, {"kind": "甲", "days": ["周日"]}, {"kind": "甲", "count": float("nan")}):
        with pytest.raises(InvalidInput):
            forms.clean_answers(form, answers, today=today)
    for spec in ({"fields": []}, {"fields": [{"key": "A", "label": "x", "type": "text"}]},
                 {"fields": [{"key": "a", "label": "x", "type": "text", "colour": "red"}]},
                 {"fields": [{"key": "decision", "label": "x", "type": "text"}]},
                 {"fields": [{"key": "a", "label": "x", "type": "choice", "choices": ["一"]}]},
                 {"fields": [{"key": "a", "label": "x", "type": "number", "min": 5, "max": 1}]},
                 {"fields": [{"key": "a", "label": "x", "type": "text", "when": "().__class__"}]}):
        with pytest.raises(InvalidInput):
            forms.check_form(spec)
    # ID numbers and phones are personal data whatever the definition says.
    personal = forms.check_form({"fields": [{"key": "idn", "label": "证件", "type": "idnumber"}]})
    assert forms.sensitive_keys(personal) == {"idn"}


async def test_proof_is_attached_sealed_and_seen_only_by_handlers(rt, db, people):
    module = await live_hardship(rt, people)
    apps = rt.business_apps
    photo = await apps.upload(people["member"], phone_photo(), "病历.jpg", "image")
    theirs = await apps.upload(people["outsider"], phone_photo(), "x.jpg", "image")
    # Someone else's upload cannot be attached: refused, and no application is written.
    with pytest.raises(InvalidInput):
        await apps.apply_as_worker(people["member"], "h5", module["id"],
                                   {"answers": {**ANSWERS, "proof": [photo["id"], theirs["id"]]}})
    assert await db.fetchval("SELECT count(*) FROM business_applications") == 0
    filed = await apps.apply_as_worker(people["member"], "h5", module["id"],
                                       {"answers": {**ANSWERS, "proof": [photo["id"]]}})
    assert [f["id"] for f in filed["answers"]["proof"]] == [photo["id"]]
    assert "proof" not in await db.fetchval("SELECT data FROM work_items WHERE id = $1", filed["item_id"])
    stored = await db.fetchval("SELECT data_enc FROM business_files WHERE id = $1", photo["id"])
    assert b"JFIF" not in stored and b"\xff\xd8" != stored[:2]     # sealed, not a JPEG at rest
    body, content_type, _ = await apps.cadre_file(people["verifier"], photo["id"])
    assert content_type == "image/jpeg" and body[:2] == b"\xff\xd8"
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'business.file_view'") == 1
    stranger = await make_cadre(db, await org_id(db, "SC-511700"), "dazhoujing", {"business.handle"})
    with pytest.raises(NotFound):
        await apps.cadre_file(stranger, photo["id"])
    with pytest.raises(NotFound):
        await apps.worker_file(people["outsider"], photo["id"])


async def test_the_applicant_takes_their_data_and_cancellation_removes_it(rt, db, people):
    module = await live_hardship(rt, people)
    apps = rt.business_apps
    photo = await apps.upload(people["member"], phone_photo(), "病历.jpg", "image")
    filed = await apps.apply_as_worker(people["member"], "h5", module["id"],
                                       {"answers": {**ANSWERS, "proof": [photo["id"]]}})
    async with rt.pool.acquire() as conn:
        exported = await apps.export(conn, people["member"])
        assert exported[0]["answers"]["id_number"] == ID_NUMBER     # their own data, in full
        async with conn.transaction():
            await apps.forget(conn, people["member"])
    row = await db.fetchrow("SELECT sealed, erased_at FROM business_applications WHERE item_id = $1",
                            filed["item_id"])
    assert row["sealed"] is None and row["erased_at"] is not None
    assert await db.fetchval("SELECT count(*) FROM business_files") == 0
    item = await db.fetchrow("SELECT status, outcome FROM work_items WHERE id = $1", filed["item_id"])
    assert dict(item) == {"status": "closed", "outcome": "withdrawn"}
    desk = await apps.desk_view(people["verifier"], filed["item_id"])
    assert desk["application"]["erased"] and "id_number" not in desk["application"]["answers"]
