"""Roster import and export, called on the service with real PostgreSQL: formats, every row
error, idempotence, updates that spare certification, the subtree rule, files that are not
spreadsheets, the export's round trip, and imports abandoned by a dead process."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import io
import json
import os
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from tests.services.cadres.test_cadres import PASSWORD, otp
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound
from wxbackend.services.membership.idnumbers import id_check_char, parse_id_number
from wxbackend.services.membership.member_forms import clean_name
from wxbackend.services.membership.membership import ID_COLUMN, PHONE_COLUMN
from wxbackend.services.membership.roster_files import Upload, UploadTooLarge
from wxbackend.services.membership.roster_rows import HEADER
from wxbackend.services.membership.rosters import RosterService
from wxbackend.store.membership import orgs as org_store
from wxbackend.store.membership import rosters as rosters_store
from wxbackend.store.membership.rosters import IMPORT_LOCK

EVERYONE_ELSE = {"account.manage", "member.import", "member.export"}


def idn(seq: int, birth: str = "19900101", region: str = "510104") -> str:
    first17 = f"{region}{birth}{seq:03d}"
    return first17 + id_check_char(first17)


def person(seq: int) -> str:
    """人员一, 人员二, … (a roster name has no digits)."""
    return "人员" + "".join("零一二三四五六七八九"[int(d)] for d in str(seq))


def row(org: str, name: str, number: str, phone: str = "", *, job: str = "", joined: object = "",
        member_no: str = "", household: str = "", migrant: str = "") -> dict:
    return {"工会编码": org, "姓名": name, "身份证号码": number, "手机号码": phone, "民族": "汉族",
            "学历": "本科", "政治面貌": "群众", "户籍类型": household, "是否农民工": migrant,
            "工作单位": "成都某某公司", "职务": job, "入会日期": joined, "会员编号": member_no}


def xlsx(path, rows: list[dict], header: list[str] | None = None, *, title_rows: int = 0) -> str:
    header = header or HEADER
    wb = Workbook()
    ws = wb.active
    for i in range(title_rows):
        ws.append([f"标题 {i}"])
    ws.append(header)
    for r in rows:
        ws.append([r.get(h) for h in header])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"   # typed text that looks like a formula, as Excel keeps it
    wb.save(path)
    return str(path)


def csv_file(path, rows: list[dict], encoding: str, header: list[str] | None = None) -> str:
    header = header or HEADER
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for r in rows:
        writer.writerow([r.get(h, "") for h in header])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return str(path)


async def make_tree(db) -> dict:
    """Two grassroots unions under the Chengdu union, one under Zigong (outside it)."""
    chengdu = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
    zigong = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510300'")
    unions = {}
    for key, parent, name in (("a", chengdu, "成都甲公司工会"), ("b", chengdu, "成都乙公司工会"),
                              ("z", zigong, "自贡丙公司工会")):
        org = await org_store.create_grassroots(db, parent_id=parent, name=name, credit_code=None,
                                                employer_name=name[:-2], region_code=None,
                                                founded_via_platform=False)
        unions[key] = org["code"]
        unions[f"{key}_id"] = org["id"]
    unions["chengdu_id"] = chengdu
    return unions


@pytest.fixture
async def tree(db) -> dict:
    return await make_tree(db)


async def make_wangwu(rt, chengdu_id: int):
    """超级管理员 王五 of the Chengdu union, made by the platform office, signed in."""
    account = await rt.cadres.create_operator(username="office", display_name="平台办公室", password=PASSWORD)
    office = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(account.totp_uri),
                                    ip="", user_agent="")).actor
    wangwu = await rt.cadres.create_account(office, username="wangwu", display_name="王五",
                                            org_id=chengdu_id, role="super_admin", duty="system",
                                            password=PASSWORD, permissions=EVERYONE_ELSE)
    return (await rt.cadres.login(username="wangwu", password=PASSWORD, totp=otp(wangwu.totp_uri),
                                  ip="", user_agent="")).actor


@pytest.fixture
async def wangwu(rt, tree):
    return await make_wangwu(rt, tree["chengdu_id"])


async def cadre(rt, wangwu, username: str, permissions: set[str]):
    """A cadre of the Chengdu union (李四 and colleagues), signed in."""
    await rt.cadres.create_account(wangwu, username=username, display_name="李四", org_id=wangwu.org_id,
                                   role="cadre", duty="business", password=PASSWORD, permissions=permissions)
    return (await rt.cadres.login(username=username, password=PASSWORD, totp="", ip="10.0.0.9",
                                  user_agent="")).actor


@pytest.fixture
async def lisi(rt, wangwu):
    return await cadre(rt, wangwu, "lisi", {"member.import", "member.export"})


def batches_of(rt, rows: int, *, child_reader_bytes: int = 1 << 30) -> RosterService:
    """The service with small batches, so a short file crosses batch boundaries."""
    return RosterService(rt.pool, rt.pii, dataclasses.replace(rt.settings.membership, import_batch_rows=rows),
                         audit=rt.audit, now=rt.clock, child_reader_bytes=child_reader_bytes)


async def run(rt, actor, path: str, filename: str | None = None, *, service=None) -> dict:
    return await (service or rt.rosters).import_roster(actor, await Upload.of_file(path), filename or path)


async def written(db) -> dict:
    return {"members": await db.fetchval("SELECT count(*) FROM members"),
            "changes": await db.fetchval("SELECT count(*) FROM base_data_changes WHERE entity = 'member'"),
            "imports": await db.fetchval("SELECT count(*) FROM roster_imports"),
            "audit": await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'roster.import'")}


async def test_an_xlsx_roster_is_imported_and_its_reimport_changes_nothing(rt, db, tree, lisi,
                                                                           tmp_path) -> None:
    rows = [row(tree["a"], "张三", idn(1), "138 0000 0001", joined=datetime(2020, 3, 1)),
            row(tree["a"], "赵六", idn(2, birth="19851231"), household="农村", migrant="是"),
            row(tree["b"], "钱七", idn(3), member_no="CD-0001", joined="2019/7/1")]
    # Columns in another order, an unknown column, and title rows above the header.
    header = [*reversed(HEADER), "备注"]
    path = xlsx(tmp_path / "名册.xlsx", rows, header, title_rows=2)
    report = await run(rt, lisi, path, "名册.xlsx")
    assert report["status"] == "done", report
    assert report["counts"] == {"total": 3, "created": 3, "updated": 0, "unchanged": 0, "error": 0}
    assert report["errors"] == []

    members = {r["name"]: r for r in await db.fetch("SELECT * FROM members")}
    zhang = members["张三"]
    assert rt.pii.decrypt(zhang["id_number_enc"], ID_COLUMN) == idn(1)
    assert rt.pii.decrypt(zhang["phone_enc"], PHONE_COLUMN) == "13800000001"
    assert zhang["id_number_bidx"] == rt.pii.blind_index(idn(1), ID_COLUMN)
    assert (zhang["gender"], zhang["birth_date"]) == (1, date(1990, 1, 1))  # from the ID number
    assert zhang["joined_on"] == date(2020, 3, 1)
    assert zhang["source"] == "roster" and zhang["member_no"].startswith("SC")
    assert zhang["account_id"] is None and zhang["roster_digest"] is not None
    zhao = members["赵六"]
    assert (zhao["household_type"], zhao["migrant_worker"], zhao["phone_enc"]) == ("农村", True, None)
    assert zhao["joined_on"] == rt.clock().date()   # no join date: today
    assert members["钱七"]["member_no"] == "CD-0001" and members["钱七"]["joined_on"] == date(2019, 7, 1)
    assert members["钱七"]["org_id"] == tree["b_id"]

    changes = await db.fetch("SELECT action, data, actor FROM base_data_changes WHERE entity = 'member'")
    assert [c["action"] for c in changes] == ["created"] * 3
    assert {c["actor"] for c in changes} == {f"cadre:{lisi.id}"}
    logged = json.dumps([c["data"] for c in changes], ensure_ascii=False)
    assert "CD-0001" in logged
    assert idn(1) not in logged and "13800000001" not in logged and "张三" not in logged

    [record] = await db.fetch("SELECT * FROM audit_log WHERE action = 'roster.import'")
    with open(path, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    assert record["detail"]["sha256"] == sha == report["sha256"]
    assert record["detail"]["created"] == 3 and record["detail"]["filename"] == "名册.xlsx"

    again = await run(rt, lisi, path, "名册.xlsx")
    assert again["counts"] == {"total": 3, "created": 0, "updated": 0, "unchanged": 3, "error": 0}
    assert await db.fetchval("SELECT count(*) FROM base_data_changes WHERE entity = 'member'") == 3
    assert await db.fetch("SELECT * FROM members ORDER BY id") == \
        sorted(members.values(), key=lambda r: r["id"])


async def test_a_changed_row_updates_the_member_and_spares_the_certification(rt, db, tree, lisi,
                                                                             tmp_path) -> None:
    rows = [row(tree["a"], "张三", idn(1), "13800000001", job="职员"), row(tree["a"], "赵六", idn(2))]
    await run(rt, lisi, xlsx(tmp_path / "v1.xlsx", rows))
    account = await db.fetchval("INSERT INTO accounts DEFAULT VALUES RETURNING id")
    await db.execute("UPDATE members SET account_id = $1, certified_at = now() WHERE name = '张三'", account)
    before = await db.fetchrow("SELECT * FROM members WHERE name = '张三'")

    rows[0] = row(tree["a"], "张三", idn(1), "13900000002", job="班组长")
    report = await run(rt, lisi, xlsx(tmp_path / "v2.xlsx", rows))
    assert report["counts"] == {"total": 2, "created": 0, "updated": 1, "unchanged": 1, "error": 0}
    after = await db.fetchrow("SELECT * FROM members WHERE name = '张三'")
    assert rt.pii.decrypt(after["phone_enc"], PHONE_COLUMN) == "13900000002" and after["job"] == "班组长"
    assert (after["account_id"], after["certified_at"]) == (account, before["certified_at"])
    assert (after["member_no"], after["joined_on"], after["source"]) == \
        (before["member_no"], before["joined_on"], "roster")
    [change] = await db.fetch("SELECT data FROM base_data_changes WHERE action = 'updated'")
    assert change["data"]["fields"] == ["phone", "job"] and change["data"]["member_no"] == after["member_no"]


async def test_equal_data_under_a_missing_digest_is_unchanged_and_a_new_number_an_update(rt, db, tree, lisi,
                                                                                        tmp_path) -> None:
    rows = [row(tree["a"], "张三", idn(1), "13800000001")]
    await run(rt, lisi, xlsx(tmp_path / "r.xlsx", rows))
    # As for a member who joined on the platform: a record the roster never described.
    await db.execute("UPDATE members SET roster_digest = NULL")
    report = await run(rt, lisi, xlsx(tmp_path / "r.xlsx", rows))
    assert report["counts"] == {"total": 1, "created": 0, "updated": 0, "unchanged": 1, "error": 0}
    assert await db.fetchval("SELECT roster_digest FROM members") is not None
    assert await db.fetchval("SELECT count(*) FROM base_data_changes WHERE action = 'updated'") == 0

    rows[0]["会员编号"] = "CD-0042"
    renumbered = await run(rt, lisi, xlsx(tmp_path / "r2.xlsx", rows))
    assert renumbered["counts"]["updated"] == 1
    assert await db.fetchval("SELECT member_no FROM members") == "CD-0042"
    [change] = await db.fetch("SELECT data FROM base_data_changes WHERE action = 'updated'")
    assert change["data"]["fields"] == ["member_no"] and change["data"]["member_no"] == "CD-0042"


async def test_a_column_the_file_lacks_keeps_what_is_stored(rt, db, tree, lisi, tmp_path) -> None:
    rows = [row(tree["a"], "张三", idn(1), "13800000001", job="职员")]
    await run(rt, lisi, xlsx(tmp_path / "full.xlsx", rows))
    narrow = ["工会编码", "姓名", "身份证号码"]
    report = await run(rt, lisi, xlsx(tmp_path / "narrow.xlsx", rows, narrow))
    assert report["counts"]["unchanged"] == 1
    kept = await db.fetchrow("SELECT phone_enc, job FROM members")
    assert rt.pii.decrypt(kept["phone_enc"], PHONE_COLUMN) == "13800000001" and kept["job"] == "职员"
    # An empty cell in a column the file has does clear the value.
    rows[0]["手机号码"] = ""
    cleared = await run(rt, lisi, xlsx(tmp_path / "cleared.xlsx", rows))
    assert cleared["counts"]["updated"] == 1
    assert await db.fetchval("SELECT phone_enc FROM members") is None


async def test_each_bad_row_is_reported_and_the_rest_imported(rt, db, tree, lisi, tmp_path) -> None:
    # 钱七 is already a member of union b; 孙八's member number is taken by 钱七.
    await run(rt, lisi, xlsx(tmp_path / "b.xlsx", [row(tree["b"], "钱七", idn(50), member_no="CD-0001")]))
    bad_check = idn(2)[:17] + ("0" if idn(2)[17] != "0" else "1")
    rows = [
        row(tree["a"], "张三", idn(1)),                                  # 2: fine
        row(tree["a"], "某甲", bad_check),                               # 3
        row(tree["a"], "某乙", idn(3), "1380000"),                       # 4
        row(tree["a"], "", idn(4)),                                      # 5
        row("SC-G-NOPE", "某丙", idn(5)),                                # 6
        row("SC-510100", "某丁", idn(6)),                                # 7: a city union
        row(tree["z"], "某戊", idn(7)),                                  # 8: Zigong's
        row(tree["a"], "张三", idn(1)),                                  # 9: 张三 again
        row(tree["a"], "钱七", idn(50)),                                 # 10
        row(tree["a"], "孙八", idn(9), member_no="CD-0001"),              # 11
        row(tree["a"], "某己", idn(10), joined="2020-13-45"),             # 12
        row(tree["a"], "某庚", idn(11), household="城市"),                # 13
        row(tree["a"], "某辛", idn(12), migrant="不是"),                  # 14
        row(tree["a"], "某壬", idn(13, birth="20200101")),               # 15: a child
        row(tree["a"], "某癸", idn(14), joined="2999-01-01"),             # 16
    ]
    report = await run(rt, lisi, xlsx(tmp_path / "mixed.xlsx", rows))
    assert report["status"] == "done"
    codes = {e["row"]: e["code"] for e in report["errors"]}
    assert codes == {3: "id_number_checksum", 4: "phone_invalid", 5: "name_missing", 6: "org_unknown",
                     7: "org_not_grassroots", 8: "org_outside_subtree", 9: "duplicate_in_file",
                     10: "member_elsewhere", 11: "member_no_taken", 12: "joined_on_invalid",
                     13: "household_type_invalid", 14: "migrant_worker_invalid", 15: "id_number_under_age",
                     16: "joined_on_invalid"}
    messages = {e["row"]: e["message"] for e in report["errors"]}
    assert messages[10] == "已是其他工会会员，请办理会员关系接转"
    assert messages[9] == "与第 2 行的身份证号码重复"
    assert report["counts"] == {"total": 15, "created": 1, "updated": 0, "unchanged": 0, "error": 14}
    assert sorted(await db.fetch("SELECT name, org_id FROM members ORDER BY name")) == \
        sorted([("张三", tree["a_id"]), ("钱七", tree["b_id"])])


async def test_the_vocabularies_are_the_worker_forms(rt, db, tree, lisi, tmp_path) -> None:
    """Ethnicity, education and political status are held to the lists a joining worker picks
    from: anything else is a row error saying what to write."""
    rows = [row(tree["a"], "张三", idn(1)),                                          # 2: fine
            row(tree["a"], "某甲", idn(2)) | {"民族": "汉"},                          # 3
            row(tree["a"], "某乙", idn(3)) | {"学历": "大学"},                        # 4
            row(tree["a"], "某丙", idn(4)) | {"政治面貌": "党员"},                    # 5
            row(tree["a"], "某丁", idn(5)) | {"民族": "", "学历": "", "政治面貌": ""}]  # 6: blank is fine
    report = await run(rt, lisi, xlsx(tmp_path / "vocab.xlsx", rows))
    errors = {e["row"]: (e["code"], e["message"]) for e in report["errors"]}
    assert errors == {
        3: ("ethnicity_invalid", "民族应填写全称，如“汉族”"),
        4: ("education_invalid",
            "学历应填“小学及以下”、“初中”、“高中”、“中专”、“大专”、“本科”、“硕士研究生”或“博士研究生”"),
        5: ("political_status_invalid",
            "政治面貌应填“中共党员”、“中共预备党员”、“共青团员”、“民主党派”、“无党派人士”或“群众”"),
    }
    assert report["counts"] == {"total": 5, "created": 2, "updated": 0, "unchanged": 0, "error": 3}
    assert await db.fetchval("SELECT ethnicity FROM members WHERE name = '某丁'") is None


async def test_names_are_stored_as_certification_compares_them(rt, db, tree, lisi, tmp_path) -> None:
    """Certification compares the stored name with the worker's input after ``clean_name``: the
    import stores names the same way, and a name clean_name refuses is a row error."""
    rows = [row(tree["a"], " 张  三 ", idn(1)),                     # 2: spaces collapse
            row(tree["a"], "阿依古丽•买买提", idn(2)),                 # 3: "•" is the middle dot
            row(tree["a"], "X", idn(3)),                             # 4: one letter
            row(tree["a"], "王五5", idn(4))]                          # 5: a digit
    path = xlsx(tmp_path / "names.xlsx", rows)
    report = await run(rt, lisi, path)
    message = "请填写与身份证一致的姓名（2–30 个字）"
    assert report["errors"] == [{"row": 4, "code": "name_invalid", "message": message},
                                {"row": 5, "code": "name_invalid", "message": message}]
    assert report["counts"] == {"total": 4, "created": 2, "updated": 0, "unchanged": 0, "error": 2}
    stored = {r["name"] for r in await db.fetch("SELECT name FROM members")}
    assert stored == {"张 三", "阿依古丽·买买提"}
    assert {clean_name("张　三"), clean_name("阿依古丽·买买提")} == stored   # as a worker types them
    assert (await run(rt, lisi, path))["counts"]["unchanged"] == 2


async def test_a_repeat_across_batches_is_caught(rt, db, tree, lisi, tmp_path) -> None:
    rows = [row(tree["a"], person(i), idn(i)) for i in range(1, 6)] + [row(tree["a"], person(1), idn(1))]
    report = await run(rt, lisi, xlsx(tmp_path / "batches.xlsx", rows), service=batches_of(rt, 2))
    assert report["counts"] == {"total": 6, "created": 5, "updated": 0, "unchanged": 0, "error": 1}
    assert report["errors"] == [{"row": 7, "code": "duplicate_in_file",
                                 "message": "与第 2 行的身份证号码重复"}]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
async def test_csv_in_utf8_with_or_without_bom_and_in_gb18030(rt, db, tree, lisi, tmp_path, encoding) -> None:
    rows = [row(tree["a"], "欧阳娜娜", idn(1), "13800000001", household="城镇", migrant="否"),
            row(tree["a"], "阿依古丽·买买提", idn(2), joined="2021-05-04")]
    path = csv_file(tmp_path / "名册.csv", rows, encoding)
    report = await run(rt, lisi, path, "名册.csv")
    assert report["counts"]["created"] == 2, report
    assert {r["name"] for r in await db.fetch("SELECT name FROM members")} == {"欧阳娜娜", "阿依古丽·买买提"}
    # The same roster as a workbook is the same roster.
    again = await run(rt, lisi, xlsx(tmp_path / "名册.xlsx", rows))
    assert again["counts"]["unchanged"] == 2


def _png() -> bytes:
    return bytes.fromhex("89504e470d0a1a0a0000000d49484452") + bytes(64)


def _zip_of_photos() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("photo.jpg", b"\xff\xd8\xff" + bytes(100))
    return buffer.getvalue()


NOT_ROSTERS = [
    ("名册.xlsx", _png(), "file_format"),
    ("名册.xlsx", "工会编码,姓名,身份证号码\n".encode(), "file_format"),
    ("名册.xlsx", _zip_of_photos(), "file_format"),
    ("名册.csv", "工会编码,姓名\n".encode() + b"\xff\x80\xff\n", "file_format"),
    ("名册.csv", _png(), "file_format"),
    ("名册.csv", "工会编码,姓名\n".encode("utf-16"), "file_format"),
    ("名册.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "file_format"),
    ("名册.xlsx", b"", "file_empty"),
]


async def test_a_file_that_is_not_a_roster_spreadsheet_writes_nothing(rt, db, tree, lisi, tmp_path) -> None:
    for n, (filename, content, code) in enumerate(NOT_ROSTERS):
        path = tmp_path / f"{n}-{filename}"
        path.write_bytes(content)
        with pytest.raises(InvalidInput) as refused:
            await run(rt, lisi, str(path), filename)
        assert refused.value.code == code, filename
        assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.message)  # told in Chinese
    assert await written(db) == {"members": 0, "changes": 0, "imports": 0, "audit": 0}


async def test_a_workbook_that_breaks_while_read_fails_whole(rt, db, tree, lisi, tmp_path) -> None:
    """A workbook with a sound zip directory whose sheet is cut off: found only while rows are
    read, after earlier batches were already written in the import's transaction."""
    rows = [row(tree["a"], person(i), idn(i)) for i in range(400)]
    good = xlsx(tmp_path / "good.xlsx", rows)
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(damaged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) * 3 // 4]   # cut off mid-row
            dst.writestr(info, data)
    readable = 0
    with pytest.raises(Exception):  # noqa: B017 - the premise: rows come out before the damage shows
        for _ in load_workbook(damaged, read_only=True).active.iter_rows(values_only=True):
            readable += 1
    assert readable > 100

    report = await run(rt, lisi, str(damaged), "damaged.xlsx", service=batches_of(rt, 50))
    assert report["status"] == "failed" and "Excel" in report["message"], report
    assert report["counts"]["created"] == 0
    assert (await written(db))["members"] == 0 and (await written(db))["changes"] == 0
    status = await db.fetchval("SELECT detail->>'status' FROM audit_log WHERE action = 'roster.import'")
    assert status == "failed"


async def test_a_large_workbook_is_read_by_a_child_process_with_the_same_outcome(rt, db, tree, lisi,
                                                                                tmp_path) -> None:
    in_child = batches_of(rt, 3, child_reader_bytes=0)
    rows = [row(tree["a"], person(i), idn(i), joined=datetime(2021, 1, i)) for i in range(1, 8)]
    rows.append(row(tree["a"], person(1), idn(1)))
    path = xlsx(tmp_path / "big.xlsx", rows, title_rows=1)
    report = await run(rt, lisi, path, service=in_child)
    assert report["counts"] == {"total": 8, "created": 7, "updated": 0, "unchanged": 0, "error": 1}
    assert report["errors"] == [{"row": 10, "code": "duplicate_in_file",
                                 "message": "与第 3 行的身份证号码重复"}]
    assert await db.fetchval("SELECT joined_on FROM members WHERE name = '人员七'") == date(2021, 1, 7)
    assert (await run(rt, lisi, path))["counts"]["unchanged"] == 7   # read in a thread: the same rows

    no_id = xlsx(tmp_path / "no-id.xlsx", rows, [h for h in HEADER if h != "身份证号码"])
    failed = await run(rt, lisi, no_id, service=in_child)
    assert failed["status"] == "failed" and failed["message"].startswith("缺少必填列：身份证号码")


async def test_a_missing_required_column_fails_the_import(rt, db, tree, lisi, tmp_path) -> None:
    header = [h for h in HEADER if h != "身份证号码"]
    report = await run(rt, lisi, xlsx(tmp_path / "no-id.xlsx", [row(tree["a"], "张三", idn(1))], header))
    assert report["status"] == "failed"
    assert report["message"].startswith("缺少必填列：身份证号码")
    assert (await written(db))["members"] == 0


async def test_importing_needs_the_permission(rt, db, tree, wangwu, tmp_path) -> None:
    zhaoliu = await cadre(rt, wangwu, "zhaoliu", set())
    with pytest.raises(Forbidden) as refused:
        await rt.rosters.receive(zhaoliu)
    assert refused.value.code == "permission_missing"
    path = xlsx(tmp_path / "r.xlsx", [row(tree["a"], "张三", idn(1))])
    with pytest.raises(Forbidden):
        await run(rt, zhaoliu, path)
    with pytest.raises(Forbidden):
        await rt.rosters.list_imports(zhaoliu)
    assert await written(db) == {"members": 0, "changes": 0, "imports": 0, "audit": 0}


async def test_an_upload_declared_over_the_limit_is_refused_before_it_is_received(rt, lisi) -> None:
    limit = rt.settings.membership.import_max_bytes
    with pytest.raises(UploadTooLarge) as refused:
        await rt.rosters.receive(lisi, limit + 1)
    assert refused.value.status == 413 and refused.value.code == "file_too_large"
    assert refused.value.message == f"文件超过 {limit // 1_048_576} MB，请分批导入"
    upload = await rt.rosters.receive(lisi, limit)
    upload.discard()


async def test_a_received_upload_is_removed_after_its_import(rt, db, tree, lisi, tmp_path) -> None:
    content = open(xlsx(tmp_path / "r.xlsx", [row(tree["a"], "张三", idn(1))]), "rb").read()
    upload = await rt.rosters.receive(lisi)
    await upload.write(content)
    report = await rt.rosters.start_import(lisi, upload, "r.xlsx")
    assert report["status"] in ("running", "done")
    await rt.rosters.drain()
    assert (await rt.rosters.get_import(lisi, report["id"]))["counts"]["created"] == 1
    assert not os.path.exists(upload.path)
    refused = await rt.rosters.receive(lisi)
    await refused.write(b"not a workbook")
    with pytest.raises(InvalidInput):
        await rt.rosters.start_import(lisi, refused, "r.xlsx")
    assert not os.path.exists(refused.path)


async def test_the_export_reimports_as_unchanged_and_is_watermarked_and_audited(rt, db, tree, lisi,
                                                                                tmp_path) -> None:
    rows = [row(tree["a"], "张三", idn(1), "13800000001", job="=1+1", household="农村", migrant="是"),
            row(tree["b"], "赵六", idn(2), joined="2018-08-08", member_no="CD-9"),
            row(tree["a"], "钱七", idn(3))]
    await run(rt, lisi, xlsx(tmp_path / "in.xlsx", rows))
    export = await rt.rosters.export_roster(lisi, org_id=tree["chengdu_id"], purpose="年度会员统计核对")
    assert export.rows == 3 and export.filename.startswith("会员名册-SC-510100-")
    path = tmp_path / "out.xlsx"
    with open(path, "wb") as fh:
        async for chunk in export.chunks():
            fh.write(chunk)
    assert not os.path.exists(export.path)

    book = load_workbook(path)
    sheet = book.active
    assert "导出人：lisi" in sheet["A2"].value and "用途：年度会员统计核对" in sheet["A2"].value
    assert "年度会员统计核对" in sheet.oddHeader.center.text and book.properties.creator == "lisi"
    assert [c.value for c in sheet[4]] == HEADER
    exported = {r[1]: r for r in sheet.iter_rows(min_row=5, values_only=True)}
    assert exported["张三"][2] == idn(1) and exported["张三"][3] == "13800000001"   # in full
    assert exported["张三"][9] == "成都某某公司" and sheet.cell(row=5, column=11).data_type == "s"
    assert exported["张三"][10] == "=1+1"   # text, never a formula

    again = await run(rt, lisi, str(path), "out.xlsx")
    assert again["counts"] == {"total": 3, "created": 0, "updated": 0, "unchanged": 3, "error": 0}
    [record] = await db.fetch("SELECT * FROM audit_log WHERE action = 'roster.export'")
    assert record["detail"] == {"org_code": "SC-510100", "purpose": "年度会员统计核对", "rows": 3}
    assert record["actor"] == "lisi"

    only_b = await rt.rosters.export_roster(lisi, org_id=tree["b_id"], purpose="乙公司工会换届")
    assert only_b.rows == 1
    only_b.discard()


async def test_an_export_keeps_the_audit_chain_whole_while_others_write(rt, db, tree, lisi, tmp_path,
                                                                        monkeypatch) -> None:
    """Another cadre's audited action commits while the export reads its snapshot: the export's
    own record must still chain to the newest one."""
    await run(rt, lisi, xlsx(tmp_path / "in.xlsx", [row(tree["a"], "张三", idn(1))]))
    reading = rosters_store.iter_roster

    async def meanwhile(conn, org_path, chunk):
        async for rows in reading(conn, org_path, chunk):
            async with rt.pool.acquire() as other, other.transaction():
                await rt.audit.record(other, actor_id=None, actor="system", org_id=None,
                                      action="cadre.verify")
            yield rows
    monkeypatch.setattr(rosters_store, "iter_roster", meanwhile)
    export = await rt.rosters.export_roster(lisi, org_id=tree["a_id"], purpose="年度会员统计核对")
    export.discard()
    checked, breaks = await rt.audit.verify(db)
    assert checked > 3 and breaks == []
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'roster.export'") == 1


async def test_an_export_needs_permission_purpose_and_subtree(rt, db, tree, wangwu, lisi) -> None:
    importer = await cadre(rt, wangwu, "zhaoliu", {"member.import"})
    with pytest.raises(Forbidden) as no_permission:
        await rt.rosters.export_roster(importer, org_id=tree["a_id"], purpose="年度会员统计核对")
    assert no_permission.value.code == "permission_missing"
    with pytest.raises(InvalidInput) as no_purpose:
        await rt.rosters.export_roster(lisi, org_id=tree["a_id"], purpose=" 核对 ")
    assert no_purpose.value.message.startswith("请填写导出用途")
    with pytest.raises(Forbidden) as outside:
        await rt.rosters.export_roster(lisi, org_id=tree["z_id"], purpose="年度会员统计核对")
    assert outside.value.code == "outside_subtree"
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'roster.export'") == 0


async def test_imports_of_other_subtrees_are_not_visible(rt, db, tree, lisi, tmp_path) -> None:
    report = await run(rt, lisi, xlsx(tmp_path / "r.xlsx", [row(tree["a"], "张三", idn(1))]))
    assert [i["id"] for i in await rt.rosters.list_imports(lisi)] == [report["id"]]
    zigong = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510300'")
    await db.execute("UPDATE roster_imports SET org_id = $1", zigong)
    with pytest.raises(NotFound):
        await rt.rosters.get_import(lisi, report["id"])
    assert await rt.rosters.list_imports(lisi) == []


async def test_imports_abandoned_by_a_dead_process_are_failed_and_live_ones_left(rt, db, tree, lisi) -> None:
    ids = [await db.fetchval(
        """INSERT INTO roster_imports (cadre_id, org_id, filename, file_sha256, started_at)
           VALUES ($1, $2, $3, '\\x00', now() - interval '2 hours') RETURNING id""",
        lisi.id, lisi.org_id, name) for name in ("dead.xlsx", "alive.xlsx")]
    recent = await db.fetchval(
        """INSERT INTO roster_imports (cadre_id, org_id, filename, file_sha256)
           VALUES ($1, $2, 'new.xlsx', '\\x00') RETURNING id""", lisi.id, lisi.org_id)
    async with rt.pool.acquire() as alive, alive.transaction():
        await alive.execute("SELECT pg_advisory_xact_lock($1, $2)", IMPORT_LOCK, ids[1])
        assert await rt.rosters.mark_stale_imports_failed(30) == 1
    statuses = dict(await db.fetch("SELECT id, status FROM roster_imports"))
    assert statuses == {ids[0]: "failed", ids[1]: "running", recent: "running"}
    message = await db.fetchval("SELECT message FROM roster_imports WHERE id = $1", ids[0])
    assert message.startswith("导入被中断")
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'roster.import'") == 1


async def test_shutting_down_fails_a_running_import_and_writes_none_of_it(rt, db, tree, lisi, tmp_path,
                                                                          monkeypatch) -> None:
    service = batches_of(rt, 2)
    applying = rosters_store.apply_creates
    second_batch = asyncio.Event()
    calls = 0

    async def stall_at_the_second_batch(conn, import_id, actor, today):
        nonlocal calls
        calls += 1
        if calls == 2:
            second_batch.set()
            await asyncio.Event().wait()   # the process is asked to stop here
        return await applying(conn, import_id, actor, today)
    monkeypatch.setattr(rosters_store, "apply_creates", stall_at_the_second_batch)
    path = xlsx(tmp_path / "r.xlsx", [row(tree["a"], person(i), idn(i)) for i in range(1, 6)])
    started = await service.start_import(lisi, await Upload.of_file(path), "r.xlsx")
    await asyncio.wait_for(second_batch.wait(), 10)
    await service.close()
    report = await service.get_import(lisi, started["id"])
    assert report["status"] == "failed" and report["message"].startswith("导入被中断")
    assert await written(db) == {"members": 0, "changes": 0, "imports": 1, "audit": 1}


async def test_the_template_is_the_header_and_one_valid_example(rt) -> None:
    data, filename = await rt.rosters.template_xlsx()
    assert filename.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == HEADER and len(rows) == 2
    assert parse_id_number(rows[1][2], rt.clock().date()).gender == 1


async def test_an_export_holds_no_connection_while_the_workbook_is_written(rt, db, tree, lisi, tmp_path,
                                                                         monkeypatch) -> None:
    from wxbackend.services.membership.roster_export import ExportBook
    await run(rt, lisi, xlsx(tmp_path / "in.xlsx", [row(tree["a"], "张三", idn(1))]))
    held: list[int] = []
    saving = ExportBook.save

    def save(self):
        held.append(sum(h._in_use is not None for h in rt.pool._holders))  # asyncpg's pool slots
        return saving(self)
    monkeypatch.setattr(ExportBook, "save", save)
    export = await rt.rosters.export_roster(lisi, org_id=tree["a_id"], purpose="年度会员统计核对")
    export.discard()
    assert held == [0]
