"""``/admin/v1/rosters`` over HTTP: upload → 202 → the report, the template, the export's round
trip, and the refusals (permission, CSRF, session, a file too large or not a spreadsheet)."""

from __future__ import annotations

import asyncio
import io
import json
from urllib.parse import quote, urlsplit

import httpx
import pytest
from openpyxl import load_workbook

from tests.api.test_admin import sign_in
from tests.services.cadres.test_cadres import PASSWORD
from tests.services.membership.test_rosters import idn, make_tree, make_wangwu, row, xlsx
from wxbackend.infra.xlsx import XLSX_TYPE
from wxbackend.services.membership.roster_rows import HEADER


@pytest.fixture
async def tree(db) -> dict:
    return await make_tree(db)


@pytest.fixture
async def wangwu(rt, tree):
    return await make_wangwu(rt, tree["chengdu_id"])


async def console(server: str, rt, wangwu, username: str, permissions: set[str]):
    """A Chengdu cadre signed in to the console: (browser, headers with the CSRF token)."""
    await rt.cadres.create_account(wangwu, username=username, display_name="李四", org_id=wangwu.org_id,
                                   role="cadre", duty="business", password=PASSWORD, permissions=permissions)
    browser, csrf = await sign_in(server, username)
    return browser, {"X-CSRF-Token": csrf}


@pytest.fixture
async def lisi(server, rt, wangwu):
    browser, headers = await console(server, rt, wangwu, "lisi", {"member.import", "member.export"})
    yield browser, headers
    await browser.aclose()


async def upload(browser, server: str, headers: dict, content: bytes, filename: str):
    return await browser.post(f"{server}/admin/v1/rosters/imports?filename={quote(filename)}",
                              content=content, headers=headers)


async def finished(browser, server: str, import_id: int) -> dict:
    for _ in range(200):
        report = (await browser.get(f"{server}/admin/v1/rosters/imports/{import_id}")).json()["import"]
        if report["status"] != "running":
            return report
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not finish")


async def nothing_written(db) -> bool:
    return (await db.fetchval("SELECT count(*) FROM members") == 0
            and await db.fetchval("SELECT count(*) FROM roster_imports") == 0
            and await db.fetchval("SELECT count(*) FROM base_data_changes WHERE entity = 'member'") == 0)


async def test_an_upload_is_accepted_at_once_and_its_report_polled(server, rt, db, tree, lisi,
                                                                    tmp_path) -> None:
    browser, headers = lisi
    rows = [row(tree["a"], "张三", idn(1), "13800000001"), row(tree["a"], "赵六", idn(2)),
            row(tree["a"], "钱七", idn(3)[:17] + ("1" if idn(3)[17] != "1" else "2"))]
    # Larger than the server's general 1 MB body limit: an unknown padding column.
    content = open(xlsx(tmp_path / "r.xlsx", rows), "rb").read()
    padded = tmp_path / "padded.csv"
    lines = [f'{r["工会编码"]},{r["姓名"]},{r["身份证号码"]},"{"x" * 100_000}"\n' for r in rows * 4]
    padded.write_text("工会编码,姓名,身份证号码,备注\n" + "".join(lines), encoding="utf-8")
    assert padded.stat().st_size > rt.settings.server.max_body_bytes

    response = await upload(browser, server, headers, content, "名册.xlsx")
    assert response.status_code == 202, response.text
    started = response.json()["import"]
    assert started["filename"] == "名册.xlsx" and started["cadre"] == "lisi"
    report = await finished(browser, server, started["id"])
    assert report["status"] == "done"
    assert report["counts"] == {"total": 3, "created": 2, "updated": 0, "unchanged": 0, "error": 1}
    assert report["errors"] == [{"row": 4, "code": "id_number_checksum",
                                 "message": "身份证号码校验位不正确，请核对后重新输入"}]

    big = await upload(browser, server, headers, padded.read_bytes(), "padded.csv")
    assert big.status_code == 202, big.text
    again = await finished(browser, server, big.json()["import"]["id"])
    assert again["counts"] == {"total": 12, "created": 0, "updated": 0, "unchanged": 2, "error": 10}
    assert {e["code"] for e in again["errors"]} == {"duplicate_in_file", "id_number_checksum"}

    listing = (await browser.get(f"{server}/admin/v1/rosters/imports")).json()["imports"]
    assert [i["id"] for i in listing] == [again["id"], report["id"]] and "errors" not in listing[0]


async def test_the_template_downloads(server, lisi) -> None:
    browser, _ = lisi
    response = await browser.get(f"{server}/admin/v1/rosters/template.xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX_TYPE
    assert "attachment" in response.headers["content-disposition"]
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert list(rows[0]) == HEADER and len(rows) == 2


async def test_an_export_uploaded_again_is_all_unchanged(server, rt, db, tree, lisi, tmp_path) -> None:
    browser, headers = lisi
    rows = [row(tree["a"], "张三", idn(1), "13800000001", job="组长", household="城镇"),
            row(tree["b"], "赵六", idn(2), member_no="CD-7", migrant="是", joined="2015-06-30")]
    content = open(xlsx(tmp_path / "r.xlsx", rows), "rb").read()
    first = await upload(browser, server, headers, content, "r.xlsx")
    await finished(browser, server, first.json()["import"]["id"])

    exported = await browser.get(f"{server}/admin/v1/rosters/export.xlsx",
                                 params={"org_id": tree["chengdu_id"], "purpose": "工会换届会员核对"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == XLSX_TYPE
    sheet = load_workbook(io.BytesIO(exported.content)).active
    assert "导出人：lisi" in sheet["A2"].value and "工会换届会员核对" in sheet["A2"].value
    assert {r[2] for r in sheet.iter_rows(min_row=5, values_only=True)} == {idn(1), idn(2)}

    back = await upload(browser, server, headers, exported.content, "export.xlsx")
    report = await finished(browser, server, back.json()["import"]["id"])
    assert report["counts"] == {"total": 2, "created": 0, "updated": 0, "unchanged": 2, "error": 0}
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'roster.export'") == 1

    no_purpose = await browser.get(f"{server}/admin/v1/rosters/export.xlsx",
                                   params={"org_id": tree["chengdu_id"], "purpose": "看看"})
    assert no_purpose.status_code == 400
    assert no_purpose.json()["error"]["message"].startswith("请填写导出用途")
    outside = await browser.get(f"{server}/admin/v1/rosters/export.xlsx",
                                params={"org_id": tree["z_id"], "purpose": "工会换届会员核对"})
    assert outside.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'roster.export'") == 1


async def test_without_the_permissions_import_and_export_are_refused(server, rt, db, tree, wangwu,
                                                                     tmp_path) -> None:
    browser, headers = await console(server, rt, wangwu, "zhaoliu", set())
    content = open(xlsx(tmp_path / "r.xlsx", [row(tree["a"], "张三", idn(1))]), "rb").read()
    refused = await upload(browser, server, headers, content, "r.xlsx")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_missing"
    assert (await browser.get(f"{server}/admin/v1/rosters/imports")).status_code == 403
    export = await browser.get(f"{server}/admin/v1/rosters/export.xlsx",
                               params={"org_id": tree["chengdu_id"], "purpose": "工会换届会员核对"})
    assert export.status_code == 403 and export.json()["error"]["code"] == "permission_missing"
    assert await nothing_written(db)
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action LIKE 'roster.%'") == 0
    await browser.aclose()


async def test_an_upload_needs_the_csrf_token_and_a_session(server, rt, db, tree, lisi, tmp_path) -> None:
    browser, _ = lisi
    content = open(xlsx(tmp_path / "r.xlsx", [row(tree["a"], "张三", idn(1))]), "rb").read()
    no_csrf = await upload(browser, server, {}, content, "r.xlsx")
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf_failed"
    wrong = await upload(browser, server, {"X-CSRF-Token": "forged"}, content, "r.xlsx")
    assert wrong.status_code == 403
    async with httpx.AsyncClient(trust_env=False) as stranger:
        anonymous = await stranger.post(f"{server}/admin/v1/rosters/imports?filename=r.xlsx", content=content)
        assert anonymous.status_code == 401
    assert await nothing_written(db)


async def test_a_file_that_is_not_a_spreadsheet_is_refused_with_400(server, db, tree, lisi) -> None:
    browser, headers = lisi
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + bytes(64)
    response = await upload(browser, server, headers, png, "名册.xlsx")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_format"
    assert "Excel" in response.json()["error"]["message"]
    assert await nothing_written(db)


async def test_an_upload_declared_over_the_limit_is_refused_with_413(server, rt, db, lisi) -> None:
    """Refused from its Content-Length, before a byte of the body is read: the client is told
    why in Chinese, not cut off by the HTTP server."""
    browser, headers = lisi
    limit = rt.settings.membership.import_max_bytes
    url = urlsplit(server)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write((f"POST /admin/v1/rosters/imports?filename=big.xlsx HTTP/1.1\r\nHost: {url.netloc}\r\n"
                      f"Cookie: wx_admin={browser.cookies['wx_admin']}\r\n"
                      f"X-CSRF-Token: {headers['X-CSRF-Token']}\r\n"
                      f"Content-Length: {limit + 1}\r\n\r\n").encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)   # answered, then the connection closed
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body)["error"] == {"code": "file_too_large",
                                         "message": f"文件超过 {limit // 1_048_576} MB，请分批导入"}
    assert await nothing_written(db)
