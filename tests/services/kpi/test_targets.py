"""Registered-user targets and go-live years: the seeded annex, the platform office's changes
(console and XLSX import) with their history, every bad import refused whole, and who may see or
set what."""

from __future__ import annotations

import io
from datetime import datetime

import asyncpg
import pytest

from tests.services.cadres.test_cadres import org_id
from tests.services.casework.conftest import make_cadre
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Forbidden, InvalidInput
from wxbackend.services.kpi.targets import parse_import

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)


def workbook(*rows: list) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    for row in rows:
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.fixture
async def people(rt, db, clock) -> dict:
    clock.set(T0, frozen=True)
    return {
        "office": await make_cadre(db, await org_id(db, "SC"), "pingtai", {"kpi.manage", "kpi.read"}),
        "reader": await make_cadre(db, await org_id(db, "SC"), "shengban", {"kpi.read"}),
        "city": await make_cadre(db, await org_id(db, "SC-510100"), "chengdu", {"kpi.read", "kpi.manage"}),
    }


async def written(db: asyncpg.Connection) -> tuple:
    """Everything an import may write, to show that a refused one wrote nothing."""
    return (await db.fetch("SELECT org_id, year, new_users FROM registered_user_targets ORDER BY 1, 2"),
            await db.fetchval("SELECT count(*) FROM kpi_target_changes"),
            await db.fetchval("SELECT count(*) FROM kpi_first_years"),
            await db.fetchval("SELECT count(*) FROM kpi_target_imports"),
            await db.fetchval("SELECT count(*) FROM audit_log"))


async def test_the_annex_is_the_first_history_and_a_second_seed_adds_none(rt, db, people) -> None:
    from wxbackend.services.seed import seed

    chengdu = await org_id(db, "SC-510100")
    history = await rt.kpi_targets.history(people["reader"], chengdu)
    assert [(c["year"], c["from"], c["to"], c["source"], c["by"]) for c in history["changes"]] == [
        (2022, None, 200_000, "seed", None), (2021, None, 400_000, "seed", None),
        (2020, None, 600_000, "seed", None)]
    before = await db.fetchval("SELECT count(*) FROM kpi_target_changes")
    assert before == 75
    await seed(db, T0)
    assert await db.fetchval("SELECT count(*) FROM kpi_target_changes") == before
    assert history["first_year"] == 2020


async def test_the_office_sets_targets_and_go_live_years_and_history_is_kept(rt, db, people) -> None:
    office, targets = people["office"], rt.kpi_targets
    chengdu = await org_id(db, "SC-510100")
    first = await targets.set(office, {"org_id": chengdu, "year": 2026, "new_users": 150_000})
    assert first["changed"] and first["target"]["target"] == 150_000
    assert first["target"]["cumulative"] == 600_000 + 400_000 + 200_000 + 150_000
    await targets.set(office, {"org_id": chengdu, "year": 2026, "new_users": 160_000})
    same = await targets.set(office, {"org_id": chengdu, "year": 2026, "new_users": 160_000})
    assert not same["changed"]
    moved = await targets.set(office, {"org_id": chengdu, "first_year": 2024})
    assert moved["target"]["first_year"] == 2024 and moved["target"]["year_index"] == 3

    history = (await targets.history(people["reader"], chengdu))["changes"]
    assert [(c["kind"], c["year"], c["from"], c["to"], c["source"], c["by"]) for c in history[:3]] == [
        ("first_year", None, 2020, 2024, "console", "pingtai"),
        ("target", 2026, 150_000, 160_000, "console", "pingtai"),
        ("target", 2026, None, 150_000, "console", "pingtai")]
    assert history[0]["at"].startswith("2026-03-02T09:00:00")
    actions = [r["action"] for r in await db.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["kpi.target_set", "kpi.target_set", "kpi.first_year_set"]

    table = await targets.table(people["reader"], 2026)
    row = next(t for t in table["targets"] if t["org_id"] == chengdu)
    assert (row["target"], row["first_year"], row["first_year_set"]) == (160_000, 2024, True)
    assert table["targets"][0]["code"] == "SC" and not table["editable"]
    assert (await targets.first_years([chengdu, await org_id(db, "SC-511700")])) == {
        chengdu: 2024, await org_id(db, "SC-511700"): 2020}

    # The history is evidence: no row of it can be edited or removed.
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("UPDATE kpi_target_changes SET new_value = 1")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db.execute("DELETE FROM kpi_target_changes")


@pytest.mark.parametrize(("body", "code"), [
    ({"org_id": 1, "year": 2026, "new_users": -5}, "invalid_target"),
    ({"org_id": 1, "year": 2026, "new_users": "many"}, "invalid_target"),
    ({"org_id": 1, "year": 2019, "new_users": 5}, "invalid_year"),
    ({"org_id": 1, "year": 2037, "new_users": 5}, "invalid_year"),
    ({"org_id": 1, "first_year": 1999}, "invalid_year"),
    ({"org_id": 1, "first_year": 2021, "year": 2021}, "invalid_target"),
    ({"year": 2026, "new_users": 5}, "invalid_target"),
])
async def test_a_bad_change_writes_nothing(rt, db, people, body, code) -> None:
    before = await written(db)
    with pytest.raises(InvalidInput) as refused:
        await rt.kpi_targets.set(people["office"], body)
    assert refused.value.code == code
    assert await written(db) == before


async def test_only_the_platform_office_sets_and_readers_see_their_subtree(rt, db, people) -> None:
    targets = rt.kpi_targets
    chengdu, dazhou = await org_id(db, "SC-510100"), await org_id(db, "SC-511700")
    before = await written(db)
    with pytest.raises(Forbidden) as city:
        await targets.set(people["city"], {"org_id": chengdu, "year": 2026, "new_users": 1})
    assert city.value.code == "platform_office_only"
    with pytest.raises(Forbidden) as reader:
        await targets.set(people["reader"], {"org_id": chengdu, "year": 2026, "new_users": 1})
    assert reader.value.code == "permission_missing"
    with pytest.raises(Forbidden):
        await targets.import_xlsx(people["city"], workbook(["工会代码", "2026年"], ["SC-510100", 1]))
    assert await written(db) == before

    seen = await targets.table(people["city"], 2021)
    assert [t["org_id"] for t in seen["targets"]] == [chengdu]
    assert seen["targets"][0]["target"] == 400_000
    with pytest.raises(Forbidden) as outside:
        await targets.history(people["city"], dazhou)
    assert outside.value.code == "outside_subtree"
    nobody = await make_cadre(db, chengdu, "wuquan", set())
    with pytest.raises(Forbidden):
        await targets.table(nobody)


async def test_an_import_of_the_downloaded_table_writes_only_what_changed(rt, db, people) -> None:
    from openpyxl import load_workbook

    office = people["office"]
    data, name = await rt.kpi_targets.template(office)
    assert name == "注册用户年度目标-20260302.xlsx"
    sheet = load_workbook(io.BytesIO(data)).active
    header = [c.value for c in sheet[4]]
    assert header == ["工会代码", "工会名称", "上线年份", *(f"{y}年" for y in range(2020, 2028))]
    rows = {r[0].value: r for r in sheet.iter_rows(min_row=5)}
    assert rows["SC-510100"][3].value == 600_000 and rows["SC-510100"][9].value is None
    rows["SC-510100"][9].value = 120_000          # 2026, new
    rows["SC-510300"][2].value = 2021             # 自贡's go-live year
    rows["SC-510300"][4].value = "110,000"        # 2021 revised, typed with a separator
    edited = io.BytesIO()
    sheet.parent.save(edited)

    result = await rt.kpi_targets.import_xlsx(office, edited.getvalue())
    zigong = await org_id(db, "SC-510300")
    assert result["import"]["changes"] == 3 and result["import"]["rows"] == len(rows)
    assert {(c["kind"], c["year"], c["from"], c["to"]) for c in result["changes"]} == {
        ("target", 2026, None, 120_000), ("first_year", None, 2020, 2021), ("target", 2021, 100_000, 110_000)}
    history = (await rt.kpi_targets.history(office, zigong))["changes"]
    assert {(c["source"], c["import_id"]) for c in history[:2]} == {("import", result["import"]["id"])}
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'kpi.targets_import'") == 1

    # By exact name, without a code; blank cells leave the figures alone.
    again = await rt.kpi_targets.import_xlsx(office, workbook(
        ["工会名称", "上线年份", "2026年", "2027年"], ["自贡", None, None, 90_000],
        ["四川省教科文卫工会", 2022, "", 30_000]))
    assert again["import"]["changes"] == 3
    assert await db.fetchval(
        "SELECT new_users FROM registered_user_targets WHERE org_id = $1 AND year = 2026",
        await org_id(db, "SC-510100")) == 120_000


async def test_every_fault_of_an_import_is_named_with_its_row_and_nothing_is_written(rt, db, people) -> None:
    before = await written(db)
    with pytest.raises(InvalidInput) as refused:
        await rt.kpi_targets.import_xlsx(people["office"], workbook(
            ["注册用户年度目标"], [],
            ["工会代码", "工会名称", "2025年", "2026年"],
            ["SC-510100", "成都", 100, 200],
            ["SC-999999", "", 1, 2],
            ["", "不存在工会", 1, 2],
            ["SC-510300", "", -5, "很多"],
            ["SC-511700", "", 1.5, 3],
            ["SC-510100", "", 1, 2],
            ["SC-510400", "德阳", 1, 2],
            ["", "", 7, None]))
    assert refused.value.code == "import_invalid"
    message = refused.value.message
    assert message.startswith("导入未写入任何数据")
    assert message.index("第 5 行") < message.index("第 7 行") < message.index("第 11 行")
    for fault in ("第 5 行：未知的工会代码“SC-999999”", "第 6 行：未知的工会“不存在工会”",
                  "第 7 行 2025 年：“-5”为负数", "第 7 行 2026 年：“很多”不是数字",
                  "第 8 行 2025 年：“1.5”应为整数", "第 9 行：“成都市总工会”与第 4 行重复",
                  "第 10 行：工会代码“SC-510400”是“攀枝花市总工会”，与名称“德阳”不符",
                  "第 11 行：未填写工会代码或名称"):
        assert fault in message, fault
    assert await written(db) == before


@pytest.mark.parametrize(("rows", "fault"), [
    ([["工会代码", "2022年", "2021年"], ["SC-510100", 1, 2]],
     "第 1 行 C 列：年份顺序有误，2021 年排在 2022 年之后"),
    ([["工会代码", "2021年", "2021年"], ["SC-510100", 1, 2]], "第 1 行 C 列：年份 2021 重复"),
    ([["工会代码", "2019年"], ["SC-510100", 1]], "年份 2019 不在 2020–2036 年之间"),
    ([["工会代码", "2O23年"], ["SC-510100", 1]], "无法识别的列名“2O23年”"),
    ([["工会代码", "上线年份"], ["SC-510100", 2050]], "第 2 行 上线年份：2050 不在 2020–2036 年之间"),
    ([["单位", "2021年"], ["成都", 1]], "找不到表头"),
    ([["工会代码", "2021年"]], "表中没有数据行"),
])
async def test_a_malformed_table_is_refused_whole(rt, db, people, rows, fault) -> None:
    before = await written(db)
    with pytest.raises(InvalidInput) as refused:
        await rt.kpi_targets.import_xlsx(people["office"], workbook(*rows))
    assert fault in refused.value.message
    assert await written(db) == before


@pytest.mark.parametrize(("data", "fault"), [
    (b"not a workbook at all", "文件无法读取"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "另存为 .xlsx"),
])
async def test_a_file_that_is_no_workbook_is_refused(rt, db, people, data, fault) -> None:
    before = await written(db)
    with pytest.raises(InvalidInput) as refused:
        await rt.kpi_targets.import_xlsx(people["office"], data)
    assert refused.value.code == "import_unreadable" and fault in refused.value.message
    assert await written(db) == before


def test_the_parser_ignores_columns_of_the_cadres_own_and_blank_rows() -> None:
    parsed = parse_import(workbook(["工会代码", "备注", "2021年（人）", "合计"], [],
                                   ["SC-510100", "见文件", "1,000", 5], [None, None, None]), 2020, 2030)
    assert parsed.faults == []
    assert [(r.row, r.code, r.figures) for r in parsed.rows] == [(3, "SC-510100", {2021: 1000})]
