"""Workers' appeals: filing (real name or, for suggestions, anonymous; photos cleaned and sealed),
the desk's acceptance, extension and reply, the worker's rating and review request, who may see
it, and what the worker's export and cancellation do with it."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image

from tests.services.activities.conftest import make_workers
from tests.services.casework.conftest import T0
from wxbackend.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
    UnsupportedType,
)

STORY = "公司拖欠三个月工资，多次协商无果，请求工会帮助。"


def phone_photo() -> bytes:
    """A JPEG with a GPS position in its EXIF, as a phone takes it."""
    image = Image.new("RGB", (400, 300), "blue")
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (30.0, 39.0, 0.0), 3: "E", 4: (104.0, 4.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def accept(rt, actor, item: int) -> None:
    task = next(t for t in (await rt.work_lists.todo(actor))["tasks"] if t["item_id"] == item)
    await rt.appeals.decide(actor, item, {"task_id": task["task_id"], "accept": True,
                                          "version": task["version"]})


async def reply(rt, actor, item: int, text: str = "已协调公司于本月补发拖欠工资。") -> None:
    task = next(t for t in (await rt.work_lists.todo(actor))["tasks"] if t["item_id"] == item)
    await rt.appeals.reply(actor, item, {"task_id": task["task_id"], "reply": text})


async def test_a_real_name_appeal_with_a_photo_is_sealed_and_seen_only_by_its_desk(
        rt, db, cadres, worker) -> None:
    photo = await rt.appeals.upload(worker, phone_photo(), "IMG_0001.jpg", "image")
    appeal = await rt.appeals.submit(worker, {
        "category": "法律援助", "org_id": cadres["desk"].org_id, "description": STORY,
        "employer": "成都某建筑公司", "contact": "工作日晚上联系", "files": [photo["id"]]})
    item = appeal["id"]
    assert appeal["status_name"] == "待受理" and appeal["files"][0]["kind"] == "image"
    # Sealed at rest: neither the story nor the photo is in the database in clear.
    row = await db.fetchrow("SELECT * FROM appeals WHERE item_id = $1", item)
    assert "拖欠".encode() not in row["description_enc"] and row["phone_enc"] is not None
    sealed = await db.fetchval("SELECT data_enc FROM appeal_files WHERE id = $1", photo["id"])
    assert not sealed.startswith(b"\xff\xd8")
    body, content_type, _ = await rt.appeals.worker_file(worker, photo["id"])
    assert content_type == "image/jpeg"
    assert 0x8825 not in Image.open(io.BytesIO(body)).getexif()   # the location is gone
    # The desk sees it all (the phone to call back), and the view is audited.
    view = await rt.appeals.desk_view(cadres["desk"], item)
    assert view["appeal"]["description"] == STORY and view["appeal"]["phone"].startswith("139")
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'work.view'") == 1
    assert (await rt.appeals.desk_view(cadres["province"], item))["appeal"]["employer"] == "成都某建筑公司"
    for outsider in ("clerk", "dazhou", "grassroots"):
        with pytest.raises(NotFound):
            await rt.appeals.desk_view(cadres[outsider], item)
        with pytest.raises(NotFound):
            await rt.appeals.cadre_file(cadres[outsider], photo["id"])
    other = (await make_workers(db, 1, None, pii=rt.pii))[0]
    with pytest.raises(NotFound):
        await rt.appeals.worker_view(other, item)
    with pytest.raises(NotFound):
        await rt.appeals.worker_file(other, photo["id"])


@pytest.mark.parametrize(("body", "code"), [
    ({"category": "加薪"}, "appeal_category"),
    ({"category": "法律援助", "anonymous": True}, "anonymous_not_allowed"),
    ({"description": "太短"}, "appeal_invalid"),
    ({"org_id": None}, "appeal_org"),
    ({"files": [999_999]}, "appeal_files"),
    ({"files": list(range(1, 12))}, "appeal_files"),
])
async def test_bad_appeals_are_refused_and_nothing_is_written(rt, db, cadres, worker, body, code) -> None:
    good = {"category": "法律援助", "org_id": cadres["desk"].org_id, "description": STORY}
    with pytest.raises(InvalidInput) as caught:
        await rt.appeals.submit(worker, good | body)
    assert caught.value.code == code
    assert await db.fetchval("SELECT count(*) FROM work_items") == 0


async def test_suggestions_may_be_anonymous_but_a_decision_needs_a_verified_phone(
        rt, db, cadres, worker) -> None:
    await db.execute("UPDATE accounts SET phone_enc = NULL, phone_bidx = NULL WHERE id = $1", worker)
    with pytest.raises(Forbidden, match="手机号"):
        await rt.appeals.submit(worker, {"category": "信访投诉", "org_id": cadres["desk"].org_id,
                                         "description": STORY})
    appeal = await rt.appeals.submit(worker, {"category": "意见建议", "anonymous": True,
                                              "org_id": cadres["desk"].org_id,
                                              "description": "建议在园区增设职工书屋和母婴室。"})
    view = await rt.appeals.desk_view(cadres["desk"], appeal["id"])
    assert view["appeal"]["anonymous"] and view["appeal"]["phone"] is None


async def test_files_that_are_not_what_they_claim_and_too_many_appeals_are_refused(
        rt, db, cadres, worker) -> None:
    with pytest.raises(UnsupportedType):
        await rt.appeals.upload(worker, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "a.jpg", "image")
    with pytest.raises(UnsupportedType):
        await rt.appeals.upload(worker, b"MZ\x90\x00 not a pdf", "合同.pdf", "document")
    assert await db.fetchval("SELECT count(*) FROM appeal_files") == 0
    for _ in range(5):
        await rt.appeals.submit(worker, {"category": "咨询", "org_id": cadres["desk"].org_id,
                                         "description": STORY})
    with pytest.raises(TooManyRequests):
        await rt.appeals.submit(worker, {"category": "咨询", "org_id": cadres["desk"].org_id,
                                         "description": STORY})


async def test_the_worker_follows_progress_and_is_told_of_each_step(rt, db, cadres, worker, clock) -> None:
    await db.execute(
        """INSERT INTO account_identities (account_id, kind, issuer, subject)
           VALUES ($1, 'oa_openid', $2, 'o-worker')""", worker, rt.settings.wechat.appid)
    item = (await rt.appeals.submit(worker, {"category": "法律援助", "org_id": cadres["desk"].org_id,
                                             "description": STORY}))["id"]
    await accept(rt, cadres["desk"], item)
    task = next(t for t in (await rt.work_lists.todo(cadres["desk"]))["tasks"] if t["item_id"] == item)
    with pytest.raises(InvalidInput):   # at most 30 days
        await rt.work.act(cadres["desk"], item, {"action": "request_extension", "task_id": task["task_id"],
                                                  "days": 31, "opinion": "案情复杂"})
    await rt.work.act(cadres["desk"], item, {"action": "request_extension", "task_id": task["task_id"],
                                              "days": 30, "opinion": "需等待劳动仲裁结果"})
    await rt.work.act(cadres["province"], item, {"action": "approve_extension"})
    await reply(rt, cadres["desk"], item)
    view = await rt.appeals.worker_view(worker, item)
    assert view["status_name"] == "已答复" and view["reply"].startswith("已协调")
    notes = [p["note"] for p in view["progress"] if p["kind"] == "extended"]
    assert notes == ["办理期限延长 30 天：需等待劳动仲裁结果"]
    sent = [r["payload"]["data"]["phrase2"]["value"] for r in await db.fetch(
        "SELECT payload FROM outbox WHERE payload->>'touser' = 'o-worker' ORDER BY id")]
    assert sent == ["已受理", "已延期", "已答复"]
    # The internal steps stay internal.
    assert {p["kind"] for p in view["progress"]} <= {"opened", "accepted", "extended", "replied"}


async def test_dissatisfied_reopens_once_then_a_review_may_be_asked_once_within_30_days(
        rt, db, cadres, worker, clock) -> None:
    item = (await rt.appeals.submit(worker, {"category": "信访投诉", "org_id": cadres["desk"].org_id,
                                             "description": STORY}))["id"]
    with pytest.raises(Conflict):   # nothing to rate before a reply
        await rt.appeals.rate(worker, item, {"rating": "satisfied"})
    await accept(rt, cadres["desk"], item)
    await reply(rt, cadres["desk"], item)
    stranger = (await make_workers(db, 1, None, pii=rt.pii))[0]
    with pytest.raises(Forbidden):
        await rt.appeals.rate(stranger, item, {"rating": "dissatisfied"})
    view = await rt.appeals.rate(worker, item, {"rating": "dissatisfied", "comment": "工资仍未到账"})
    assert view["status"] == "open" and not view["can_rate"]
    await reply(rt, cadres["desk"], item, "公司已承诺月底前全部补发，工会将跟踪落实。")
    view = await rt.appeals.rate(worker, item, {"rating": "dissatisfied"})
    assert view["status"] == "closed"          # the second 不满意 does not reopen it …
    assert view["can_request_review"]          # … the review is the way on
    clock.set(T0 + timedelta(days=10), frozen=True)
    view = await rt.appeals.request_review(worker, item, {"reason": "承诺未兑现，申请复查"})
    assert view["status"] == "open"
    with pytest.raises(Conflict, match="一次"):
        await rt.appeals.request_review(worker, item, {"reason": "再次申请复查"})
    # The review is the union above's.
    task = next(t for t in (await rt.work_lists.todo(cadres["province"]))["tasks"] if t["item_id"] == item)
    assert task["step"] == "复查"
    await rt.appeals.reply(cadres["province"], item, {"task_id": task["task_id"],
                                                      "reply": "经复查，督促公司已全部补发。"})
    view = await rt.appeals.worker_view(worker, item)
    assert view["status_name"] == "复查已答复" and view["review_reply"].startswith("经复查")
    assert view["can_rate"]


async def test_a_review_after_30_days_and_a_reply_by_someone_not_assigned_are_refused(
        rt, db, cadres, worker, clock) -> None:
    item = (await rt.appeals.submit(worker, {"category": "信访投诉", "org_id": cadres["desk"].org_id,
                                             "description": STORY}))["id"]
    await accept(rt, cadres["desk"], item)
    task = next(t for t in (await rt.work_lists.todo(cadres["desk"]))["tasks"] if t["item_id"] == item)
    for cadre in ("dazhou", "clerk", "grassroots"):
        with pytest.raises(Forbidden):
            await rt.appeals.reply(cadres[cadre], item, {"task_id": task["task_id"],
                                                          "reply": "不该由我答复的答复内容。"})
    await reply(rt, cadres["desk"], item)
    clock.set(T0 + timedelta(days=31), frozen=True)
    with pytest.raises(Conflict, match="30 日"):
        await rt.appeals.request_review(worker, item, {"reason": "逾期申请复查"})


async def test_revisits_count_in_the_rates_and_route_stays_in_the_subtree(
        rt, db, cadres, worker, tianfu) -> None:
    item = (await rt.appeals.submit(worker, {"category": "服务帮扶", "org_id": cadres["desk"].org_id,
                                             "description": STORY}))["id"]
    with pytest.raises(Forbidden):
        await rt.work.act(cadres["desk"], item, {"action": "route", "org_id": cadres["dazhou"].org_id})
    await rt.work.act(cadres["desk"], item, {"action": "route", "org_id": tianfu})
    await accept(rt, cadres["grassroots"], item)
    await reply(rt, cadres["grassroots"], item)
    with pytest.raises(Forbidden):
        await rt.appeals.revisit(cadres["clerk"], item, {"note": "电话回访，职工表示满意"})
    await rt.appeals.revisit(cadres["desk"], item, {"note": "电话回访，职工表示满意"})
    rates = (await rt.rates.rates(cadres["province"], "2026"))["total"]["all"]
    assert rates["revisit_rate"] == 1.0 and rates["closed"] == 1


async def test_export_holds_the_appeals_and_cancellation_erases_the_person(rt, db, cadres, worker) -> None:
    photo = await rt.appeals.upload(worker, phone_photo(), "x.jpg", "image")
    open_item = (await rt.appeals.submit(worker, {"category": "法律援助", "org_id": cadres["desk"].org_id,
                                                  "description": STORY, "files": [photo["id"]]}))["id"]
    done = (await rt.appeals.submit(worker, {"category": "咨询", "org_id": cadres["desk"].org_id,
                                             "description": "请问工会会员有哪些普惠服务？"}))["id"]
    await accept(rt, cadres["desk"], done)
    await reply(rt, cadres["desk"], done)
    export = await rt.accounts.export_data(worker)
    assert {a["description"] for a in export["appeals"]} == {STORY, "请问工会会员有哪些普惠服务？"}
    await rt.accounts.cancel(worker)
    rows = await db.fetch("SELECT * FROM appeals ORDER BY item_id")
    assert all(r["description_enc"] is None and r["phone_enc"] is None and r["erased_at"] for r in rows)
    assert await db.fetchval("SELECT count(*) FROM appeal_files") == 0
    assert await db.fetchval("SELECT count(*) FROM work_items WHERE submitter_account_id IS NOT NULL") == 0
    assert await db.fetchval("SELECT count(*) FROM work_events WHERE actor_account_id IS NOT NULL") == 0
    view = await rt.appeals.desk_view(cadres["desk"], open_item)
    assert view["status"] == "closed" and view["outcome"] == "withdrawn" and view["appeal"]["erased"]
    assert (await rt.work_lists.todo(cadres["desk"]))["tasks"] == []


async def test_an_appeal_step_cannot_be_passed_around_its_desk(rt, cadres, worker) -> None:
    """A bare 通过 on 登记受理 would skip the acceptance notice: the desk's own steps refuse it."""
    item = (await rt.appeals.submit(worker, {"category": "咨询", "org_id": cadres["desk"].org_id,
                                             "description": STORY}))["id"]
    task = next(t for t in (await rt.work_lists.todo(cadres["desk"]))["tasks"] if t["item_id"] == item)
    with pytest.raises(Conflict) as caught:
        await rt.work.act(cadres["desk"], item, {"action": "pass", "task_id": task["task_id"]})
    assert caught.value.code == "desk_step"
    view = await rt.work_lists.item(cadres["desk"], item)
    assert view["desk_steps"] == ["accept"] and "pass" not in {a["action"] for a in view["actions"]}


async def test_the_ledger_is_masked_watermarked_and_audited(rt, db, cadres, worker) -> None:
    from openpyxl import load_workbook

    item = (await rt.appeals.submit(worker, {"category": "法律援助", "org_id": cadres["desk"].org_id,
                                             "description": STORY}))["id"]
    await accept(rt, cadres["desk"], item)
    data, name = await rt.work_lists.ledger_xlsx(cadres["province"], "appeal", "2026-03")
    cells = [str(c) for row in load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)
             for c in row if c is not None]
    text = " ".join(cells)
    assert "法律援助" in text and "139****" in text and STORY not in text and "导出人：shengban" in text
    phone = rt.pii.decrypt(await db.fetchval("SELECT phone_enc FROM appeals"), "appeals.phone")
    assert phone not in text and name == "职工诉求（信访）台账-2026-03.xlsx"
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'work.ledger_export'") == 1
    with pytest.raises(Forbidden):
        await rt.work_lists.ledger_xlsx(cadres["clerk"], "appeal", "2026-03")
    empty, _ = await rt.work_lists.ledger_xlsx(cadres["dazhou"], "appeal", "2026-03")
    assert "法律援助" not in " ".join(str(c) for row in load_workbook(io.BytesIO(empty)).active.iter_rows(
        values_only=True) for c in row if c is not None)


async def test_the_categories_come_from_the_settings(rt, db, cadres, worker) -> None:
    from wxbackend.services.casework.appeals import Appeals

    custom = Appeals(rt.pool, rt.pii, rt.engine, rt.work, rt.work_lists, rt.media,
                     categories=("劳动争议", "困难帮扶", "意见建议"), anonymous=("意见建议",),
                     audit=rt.audit, now=rt.clock)
    with pytest.raises(InvalidInput) as caught:
        await custom.submit(worker, {"category": "法律援助", "org_id": cadres["desk"].org_id,
                                     "description": STORY})
    assert "劳动争议、困难帮扶、意见建议" in caught.value.message
    filed = await custom.submit(worker, {"category": "劳动争议", "org_id": cadres["desk"].org_id,
                                         "description": STORY})
    assert filed["category"] == "劳动争议"
    rt.engine.listeners["appeal"] = rt.appeals._on_event   # the runtime's desk tells the workers
