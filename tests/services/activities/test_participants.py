"""The organiser's list of who signed up: masked on screen and in the ordinary workbook; full
names and phones only with member.export and a purpose; every workbook watermarked and audited."""

from __future__ import annotations

import dataclasses
import io

import openpyxl
import pytest

from tests.services.activities.conftest import make_workers, published
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound
from wxbackend.services.identity.accounts import PHONE_COLUMN


async def test_lists_are_masked_and_full_exports_need_a_purpose(rt, db, unions, organiser) -> None:
    item = await published(rt, organiser, stock=5)
    a, b = await make_workers(db, 2, unions["tianfu"])
    await db.execute("UPDATE members SET name = '张三丰' WHERE account_id = $1", a)
    await db.execute("UPDATE accounts SET phone_enc = $2 WHERE id = $1", a,
                     rt.pii.encrypt("13812345678", PHONE_COLUMN))
    await db.execute("UPDATE accounts SET phone_enc = NULL, phone_bidx = NULL WHERE id = $1", b)
    await rt.signups.sign_up(a, item["id"])
    await rt.signups.sign_up(b, item["id"])
    listed = await rt.participants.list(organiser, item["id"], status=None, before_id=None)
    assert [(p["name"], p["phone"], p["status"]) for p in listed] == [
        ("测*", None, "held"), ("张**", "138****5678", "held")]
    masked, _ = await rt.participants.workbook(organiser, item["id"], status="held", purpose=None)
    sheet = openpyxl.load_workbook(io.BytesIO(masked)).active
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert "张**" in cells and "138****5678" in cells and "13812345678" not in cells
    assert any("导出人：zhaoliu" in str(c) for c in cells)  # the watermark
    with pytest.raises(Forbidden):
        await rt.participants.workbook(organiser, item["id"], status=None, purpose="通知中签职工领取")
    exporter = dataclasses.replace(organiser, permissions=organiser.permissions | {"member.export"})
    with pytest.raises(InvalidInput):
        await rt.participants.workbook(exporter, item["id"], status=None, purpose="用")
    full, _ = await rt.participants.workbook(exporter, item["id"], status=None, purpose="通知中签职工领取")
    cells = [c for row in openpyxl.load_workbook(io.BytesIO(full)).active.iter_rows(values_only=True)
             for c in row if c]
    assert "张三丰" in cells and "13812345678" in cells
    audited = await db.fetch("SELECT detail FROM audit_log WHERE action = 'service.export' ORDER BY id")
    assert [(r["detail"]["full"], r["detail"]["rows"]) for r in audited] == [(False, 2), (True, 2)]


async def test_another_subtrees_list_is_not_found(rt, db, unions, organiser) -> None:
    other = await db.fetchval(
        """INSERT INTO offerings (kind, form, org_id, org_path, title, opens_at, closes_at, mode,
                                  stock, audience, status)
           SELECT 'service', 'coupon', id, path, '达州券', now(), now() + interval '1 day',
                  'first_come', 5, '{}', 'published' FROM orgs WHERE id = $1 RETURNING id""",
        unions["dazhou_city"])
    with pytest.raises(NotFound):
        await rt.participants.list(organiser, other, status=None, before_id=None)
    with pytest.raises(NotFound):
        await rt.participants.workbook(organiser, other, status=None, purpose=None)
