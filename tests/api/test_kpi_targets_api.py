"""Targets over HTTP: the platform office reads the table, sets a figure, downloads the workbook,
uploads it edited and reads a union's history; a city's reader sees its own union only and may
set nothing; a bad upload is refused whole. Every answer matches the OpenAPI document."""

from __future__ import annotations

import io
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from tests.api.test_admin import sign_in
from tests.api.test_channels_api import declare_upload
from tests.api.test_openapi import ADMIN_DOC, Contract
from tests.services.cadres.test_cadres import PASSWORD, org_id
from tests.services.kpi.test_targets import workbook
from wxbackend.infra.xlsx import XLSX_TYPE
from wxbackend.services.clock import CHINA

TABLE = "/admin/v1/kpi/targets"
HISTORY = TABLE + "/history"
XLSX = TABLE + ".xlsx"
IMPORT = TABLE + "/import"


def otp(uri: str | None, clock) -> str:
    """The second factor at the services' clock (set to a day of 2026), not the wall clock's."""
    if not uri:
        return ""
    return pyotp.TOTP(parse_qs(urlsplit(uri).query)["secret"][0]).at(int(clock().timestamp()))


@pytest.fixture
async def signed(server, rt, db, clock):
    """The platform office (kpi.manage) and a Chengdu reader, signed in through the console."""
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=CHINA))
    operator = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    root = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(operator.totp_uri, clock),
                                  ip="10.0.0.1", user_agent="test")).actor
    out = {}
    # Each union's super administrator, made by the operator, holds the permissions itself.
    for name, code, permissions in (("pingtai", "SC", {"account.manage", "kpi.manage", "kpi.read"}),
                                    ("chengdu", "SC-510100", {"account.manage", "kpi.read"})):
        made = await rt.cadres.create_account(root, username=name, display_name=name,
                                              org_id=await org_id(db, code), role="super_admin",
                                              duty="system", password=PASSWORD, permissions=permissions)
        browser, csrf = await sign_in(server, name, otp(made.totp_uri, clock))
        browser.headers["X-CSRF-Token"] = csrf
        out[name] = browser
    yield out
    for browser in out.values():
        await browser.aclose()


async def test_the_office_sets_downloads_imports_and_reads_history(server, rt, db, signed) -> None:
    from openpyxl import load_workbook

    doc, office = Contract(ADMIN_DOC), signed["pingtai"]
    chengdu = await org_id(db, "SC-510100")
    table = doc.check(TABLE, "get", await office.get(f"{server}{TABLE}?year=2021"))
    assert table["editable"] and table["year"] == 2021
    row = next(t for t in table["targets"] if t["org_id"] == chengdu)
    assert (row["target"], row["cumulative"], row["first_year"]) == (400_000, 1_000_000, 2020)

    put = await office.put(f"{server}{TABLE}", json={"org_id": chengdu, "year": 2026, "new_users": 150_000})
    assert doc.check(TABLE, "put", put)["target"]["target"] == 150_000
    bad = await office.put(f"{server}{TABLE}", json={"org_id": chengdu, "year": 2026, "new_users": -1})
    assert doc.check(TABLE, "put", bad)["error"]["code"] == "invalid_target"
    broken = await office.put(f"{server}{TABLE}", content=b"{not json")
    assert doc.check(TABLE, "put", broken)["error"]["code"] == "invalid_json"
    missing = await office.put(f"{server}{TABLE}", json={"org_id": 10**9, "first_year": 2021})
    assert doc.check(TABLE, "put", missing)["error"]["code"] == "org_not_found"

    download = await office.get(f"{server}{XLSX}")
    data = doc.check(XLSX, "get", download)
    assert download.headers["Content-Type"] == XLSX_TYPE
    book = load_workbook(io.BytesIO(data))
    sheet = book.active
    chengdu_row = next(r for r in sheet.iter_rows(min_row=5) if r[0].value == "SC-510100")
    assert chengdu_row[9].value == 150_000          # 2026, as just set
    chengdu_row[10].value = 100_000                 # 2027, new
    edited = io.BytesIO()
    book.save(edited)
    uploaded = await office.post(f"{server}{IMPORT}", content=edited.getvalue(),
                                 headers={"Content-Type": XLSX_TYPE})
    result = doc.check(IMPORT, "post", uploaded)
    assert result["import"]["changes"] == 1 and result["changes"][0]["to"] == 100_000

    history = doc.check(HISTORY, "get", await office.get(f"{server}{HISTORY}?org_id={chengdu}"))
    assert [(c["year"], c["source"]) for c in history["changes"][:2]] == [(2027, "import"), (2026, "console")]
    assert history["changes"][0]["import_id"] == result["import"]["id"]


async def test_a_bad_upload_is_refused_whole(server, rt, db, signed) -> None:
    doc, office = Contract(ADMIN_DOC), signed["pingtai"]
    before = await db.fetchval("SELECT count(*) FROM kpi_target_changes")
    bad = await office.post(f"{server}{IMPORT}", content=workbook(
        ["工会代码", "2022年", "2021年"], ["SC-510100", 1, 2], ["SC-NOPE", -1, "x"]))
    error = doc.check(IMPORT, "post", bad)["error"]
    assert error["code"] == "import_invalid"
    for fault in ("年份顺序有误", "第 3 行：未知的工会代码“SC-NOPE”", "第 3 行 2022 年：“-1”为负数",
                  "第 3 行 2021 年：“x”不是数字"):
        assert fault in error["message"]
    junk = await office.post(f"{server}{IMPORT}", content=b"hello")
    assert doc.check(IMPORT, "post", junk)["error"]["code"] == "import_unreadable"
    empty = await office.post(f"{server}{IMPORT}", content=b"")
    assert doc.check(IMPORT, "post", empty)["error"]["code"] == "upload_empty"
    status, answer = await declare_upload(server, IMPORT, (2 << 20) + 1, {
        "Cookie": "; ".join(f"{k}={v}" for k, v in office.cookies.items()),
        "X-CSRF-Token": office.headers["X-CSRF-Token"]})
    assert b"413" in status and answer["error"]["code"] == "upload_too_large"
    assert await db.fetchval("SELECT count(*) FROM kpi_target_changes") == before
    assert await db.fetchval("SELECT count(*) FROM kpi_target_imports") == 0


async def test_a_city_reader_sees_its_own_union_and_sets_nothing(server, rt, db, signed) -> None:
    doc, reader = Contract(ADMIN_DOC), signed["chengdu"]
    table = doc.check(TABLE, "get", await reader.get(f"{server}{TABLE}"))
    assert [t["code"] for t in table["targets"]] == ["SC-510100"] and not table["editable"]
    assert table["year"] == 2026 and table["targets"][0]["target"] is None
    dazhou = await org_id(db, "SC-511700")
    outside = await reader.get(f"{server}{HISTORY}?org_id={dazhou}")
    assert doc.check(HISTORY, "get", outside)["error"]["code"] == "outside_subtree"
    refused = await reader.put(f"{server}{TABLE}", json={"org_id": dazhou, "year": 2026, "new_users": 1})
    assert doc.check(TABLE, "put", refused)["error"]["code"] == "permission_missing"
    upload = await reader.post(f"{server}{IMPORT}",
                               content=workbook(["工会代码", "2026年"], ["SC-510100", 1]))
    assert doc.check(IMPORT, "post", upload)["error"]["code"] == "permission_missing"
    bad_year = await reader.get(f"{server}{TABLE}?year=1999")
    assert doc.check(TABLE, "get", bad_year)["error"]["code"] == "invalid_year"
