"""目标设定: the yearly registered-user targets (注册用户年度工作安排) and each union's go-live year.

The usage arrangement's annexes give each city and provincial industry union a number of new
registered users for 2020, 2021 and 2022 (seeded); later years are set by the platform office
(领导小组办公室), one figure at a time in the console or a whole table as an XLSX import. "Year 1"
of the ratio standards (30 % / 60 % / 90 %) is the union's go-live year, 2020 unless the office
sets another. ``registered_user_targets`` holds the current figures; every change, and every
change of a go-live year, is appended to ``kpi_target_changes`` with who, when, from what to what
and through which door, so a past briefing's target can always be explained.

An import is all or nothing: every row is checked first and every fault reported with its row
number, and only a clean file is written, in one transaction. The workbook is parsed in an
executor with no database connection held. Definitions in docs/kpi.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from wxbackend.infra.xlsx import Watermark, watermarked_xlsx
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound
from wxbackend.store.kpi import targets as store

READ = "kpi.read"
MANAGE = "kpi.manage"
ARRANGEMENT_FIRST_YEAR = 2020   # the usage arrangement's year 1, for a union without its own
MIN_YEAR = 2020                 # the platform began then: no target or go-live year before it
YEARS_AHEAD = 10                # how far ahead the office may plan
MAX_TARGET = 100_000_000        # persons; more than the province's population is a typo
IMPORT_LIMIT = 2 << 20          # bytes: the whole table is a few dozen rows
MAX_ROWS = 2000
MAX_SHEET_ROWS = 100_000    # filled or merely formatted
MAX_COLUMNS = 60
MAX_UNZIPPED = 32 << 20         # a workbook that inflates beyond this is not a targets table
MAX_FAULTS_SHOWN = 40
HISTORY_LIMIT = 500

CODE_HEADER, NAME_HEADER, FIRST_HEADER = "工会代码", "工会名称", "上线年份"
_YEAR_HEADER = re.compile(r"(\d{4})\s*年?\s*(?:[（(]\s*人\s*[）)])?")
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?\d*\.\d+")


def _column(index: int) -> str:
    """0 → A, 26 → AA: the column as the cadre sees it in Excel."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)       # a code typed as a number (510100) reads back as 510100.0
    return str(value).strip()


def _figure(value: Any) -> tuple[int | None, str | None]:
    """A cell's figure: (None, None) when blank (left unchanged), (n, None), or (None, fault)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    shown = _text(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, f"“{shown}”不是数字"
    if isinstance(value, str):
        plain = re.sub(r"[,，\s]", "", value)   # thousands separators as people type them
        if _INTEGER.fullmatch(plain):
            value = int(plain)
        elif _DECIMAL.fullmatch(plain):
            value = float(plain)
        else:
            return None, f"“{shown}”不是数字"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, f"“{shown}”不是数字"
        if not value.is_integer():
            return None, f"“{shown}”应为整数（单位：人）"
        value = int(value)
    if value < 0:
        return None, f"“{shown}”为负数"
    if value > MAX_TARGET:
        return None, f"“{shown}”超出合理范围（单位是人，不是万人）"
    return value, None


@dataclass
class ImportRow:
    row: int                           # the sheet's row number, as Excel shows it
    code: str
    name: str
    first_year: int | None
    figures: dict[int, int]            # year → new users; blank cells are absent


@dataclass
class ParsedImport:
    rows: list[ImportRow] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)


def _sheet_rows(data: bytes) -> Iterable[tuple]:
    """The first sheet's rows (values only), or an InvalidInput the cadre can act on."""
    unreadable = InvalidInput("文件无法读取，请上传用 Excel 保存的 .xlsx 文件（可先下载模板）",
                              code="import_unreadable")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidInput("这是旧版 .xls 文件，请在 Excel 中另存为 .xlsx 后上传", code="import_unreadable")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            # openpyxl inflates the shared strings whole: refuse a small file that explodes.
            if sum(i.file_size for i in archive.infolist()) > MAX_UNZIPPED:
                raise unreadable
    except zipfile.BadZipFile:
        raise unreadable from None
    from openpyxl import load_workbook  # imported here: most processes never read a workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:   # openpyxl raises a zoo of types for a damaged workbook
        raise unreadable from exc
    try:
        sheets = [ws for ws in [wb.active, *wb.worksheets] if hasattr(ws, "iter_rows")]
        if not sheets:
            raise unreadable
        sheet = sheets[0]
        sheet.reset_dimensions()   # writers other than Excel often record a wrong sheet size
        filled = 0
        try:
            for number, row in enumerate(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS), 1):
                # Rows Excel merely formatted come back empty; only filled ones count to the limit.
                filled += any(v is not None for v in row)
                if filled > MAX_ROWS + 20 or number > MAX_SHEET_ROWS:
                    raise InvalidInput(f"表格超过 {MAX_ROWS} 行，请分批导入", code="import_invalid")
                yield row
        except InvalidInput:
            raise
        except Exception as exc:   # a damaged sheet shows only as its rows are read
            raise unreadable from exc
    finally:
        wb.close()


def parse_import(data: bytes, min_year: int, max_year: int) -> ParsedImport:
    """Read and check a targets workbook (CPU work: run in an executor). Unions are only named
    here; whether they exist is checked against the database afterwards."""
    out = ParsedImport()
    header_at = 0
    columns: dict[str, int] = {}
    years: list[tuple[int, int]] = []         # (column, year), left to right
    rows = iter(_sheet_rows(data))
    for number, row in enumerate(rows, 1):
        cells = [_text(v) for v in row]
        if not header_at:
            if CODE_HEADER in cells or NAME_HEADER in cells:
                header_at = number
                _read_header(number, row, columns, years, min_year, max_year, out.faults)
            elif number >= 20:
                break
            continue
        if not any(cells):
            continue
        out.rows.append(_read_row(number, row, columns, years, min_year, max_year, out.faults))
    if not header_at:
        out.faults.append(f"找不到表头：应有“{CODE_HEADER}”或“{NAME_HEADER}”列（请使用下载的模板）")
    elif not out.rows:
        out.faults.append("表中没有数据行")
    elif not years and FIRST_HEADER not in columns:
        out.faults.append(f"没有年份列（如“2023年”）或“{FIRST_HEADER}”列，无可导入的内容")
    return out


def _read_header(number: int, row: tuple, columns: dict[str, int], years: list[tuple[int, int]],
                 min_year: int, max_year: int, faults: list[str]) -> None:
    for index, value in enumerate(row):
        text = _text(value)
        where = f"第 {number} 行 {_column(index)} 列"
        key = next((k for k in (CODE_HEADER, NAME_HEADER) if text == k), None) \
            or (FIRST_HEADER if text.startswith(FIRST_HEADER) else None)
        if key is not None:
            if key in columns:
                faults.append(f"{where}：“{key}”列重复")
            columns[key] = index
            continue
        match = _YEAR_HEADER.fullmatch(text)
        if match is None:
            if re.search(r"\d", text):
                faults.append(f"{where}：无法识别的列名“{text}”（年份列应写作“2023年”）")
            continue   # a column of the cadre's own (备注, 合计): not imported
        year = int(match.group(1))
        if not min_year <= year <= max_year:
            faults.append(f"{where}：年份 {year} 不在 {min_year}–{max_year} 年之间")
        elif years and year == years[-1][1]:
            faults.append(f"{where}：年份 {year} 重复")
        elif years and year < years[-1][1]:
            faults.append(f"{where}：年份顺序有误，{year} 年排在 {years[-1][1]} 年之后（应从左到右递增）")
        years.append((index, year))


def _read_row(number: int, row: tuple, columns: dict[str, int], years: list[tuple[int, int]],
              min_year: int, max_year: int, faults: list[str]) -> ImportRow:
    def cell(index: int | None) -> Any:
        return row[index] if index is not None and index < len(row) else None

    code, name = _text(cell(columns.get(CODE_HEADER))), _text(cell(columns.get(NAME_HEADER)))
    if not code and not name:
        faults.append(f"第 {number} 行：未填写工会代码或名称")
    parsed = ImportRow(number, code, name, None, {})
    first, fault = _figure(cell(columns.get(FIRST_HEADER)))
    if fault:
        faults.append(f"第 {number} 行 上线年份：{fault}")
    elif first is not None and not min_year <= first <= max_year:
        faults.append(f"第 {number} 行 上线年份：{first} 不在 {min_year}–{max_year} 年之间")
    else:
        parsed.first_year = first
    for index, year in years:
        value, fault = _figure(cell(index))
        if fault:
            faults.append(f"第 {number} 行 {year} 年：{fault}")
        elif value is not None:
            parsed.figures[year] = value
    return parsed


def _faults_message(faults: Sequence[str]) -> str:
    # In the sheet's order, the way the cadre works down it; faults without a row go first.
    faults = sorted(faults, key=lambda f: int(m.group(1)) if (m := re.match(r"第 (\d+) 行", f)) else 0)
    shown = "；".join(faults[:MAX_FAULTS_SHOWN])
    more = f"；……共 {len(faults)} 处" if len(faults) > MAX_FAULTS_SHOWN else ""
    return f"导入未写入任何数据，请改正后重新上传。{shown}{more}"


def _int(body: dict, key: str, what: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"请填写{what}（整数）", code="invalid_target")
    return value


def _iso(value: datetime) -> str:
    return value.astimezone(CHINA).isoformat()


class KpiTargets:
    """Read by anyone with ``kpi.read`` for their own subtree; set by the platform office only
    (``kpi.manage`` at the province), since the targets are the province's to give."""

    def __init__(self, pool: asyncpg.Pool, *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._audit = audit
        self._now = now

    # --- who -----------------------------------------------------------------------------------
    @staticmethod
    def _reader(actor: Actor) -> None:
        if not {READ, MANAGE} & actor.permissions:
            actor.require(READ)

    @staticmethod
    def _office(actor: Actor) -> None:
        actor.require(MANAGE)
        if "." in actor.org_path:
            raise Forbidden("目标由平台办公室（省总工会）设定", code="platform_office_only")

    def _years(self) -> tuple[int, int]:
        """The years a target or a go-live year may name, by China's calendar."""
        return MIN_YEAR, self._now().astimezone(CHINA).year + YEARS_AHEAD

    def _year(self, value: object, what: str = "年份") -> int:
        low, high = self._years()
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"{what}应在 {low}–{high} 年之间", code="invalid_year")
        return value

    # --- reads ---------------------------------------------------------------------------------
    async def first_years(self, org_ids: Sequence[int]) -> dict[int, int]:
        """Each union's year 1 (its go-live year, else the arrangement's), for the other KPI
        reports."""
        async with self._pool.acquire() as conn:
            own = await store.first_years(conn, org_ids)
        return {org_id: own.get(org_id, ARRANGEMENT_FIRST_YEAR) for org_id in org_ids}

    async def table(self, actor: Actor, year: int | None = None) -> dict:
        """The viewer's union and the unions below it that have targets, for one year."""
        self._reader(actor)
        year = self._now().astimezone(CHINA).year if year is None else self._year(year)
        async with self._pool.acquire() as conn:
            rows = await store.table(conn, actor.org_path, actor.org_id)
        return {"year": year, "targets": [self._entry(r, year) for r in rows],
                "editable": MANAGE in actor.permissions and "." not in actor.org_path}

    @staticmethod
    def _entry(r: asyncpg.Record | dict, year: int) -> dict:
        figures = {int(y): n for y, n in r["targets"].items()}
        first = r["first_year"] or ARRANGEMENT_FIRST_YEAR
        return {"org_id": r["id"], "code": r["code"], "name": r["name"], "kind": r["kind"],
                "first_year": first, "first_year_set": r["first_year"] is not None,
                "year_index": year - first + 1 if year >= first else None,
                "target": figures.get(year),
                "cumulative": sum(n for y, n in figures.items() if y <= year) if figures else None,
                "years": {str(y): figures[y] for y in sorted(figures)}}

    async def _one(self, conn: asyncpg.Connection, org_id: int, year: int) -> dict:
        org = await store.org(conn, org_id)
        rows = await store.table(conn, org["path"], org_id)
        return self._entry(next(r for r in rows if r["id"] == org_id), year)

    async def history(self, actor: Actor, org_id: int | None) -> dict:
        self._reader(actor)
        if org_id is None:
            raise InvalidInput("请指定工会（org_id）", code="invalid_target")
        async with self._pool.acquire() as conn:
            org = await store.org(conn, org_id)
            if org is None:
                raise NotFound("未找到该工会", code="org_not_found")
            actor.require_within(org["path"])
            first = (await store.first_years(conn, [org_id])).get(org_id, ARRANGEMENT_FIRST_YEAR)
            rows = await store.history(conn, org_id, HISTORY_LIMIT)
        return {"org": {"id": org["id"], "code": org["code"], "name": org["name"]}, "first_year": first,
                "changes": [{"id": r["id"], "kind": r["kind"], "year": r["year"], "from": r["old_value"],
                             "to": r["new_value"], "source": r["source"], "import_id": r["import_id"],
                             "by": r["changed_by_name"], "at": _iso(r["changed_at"])} for r in rows]}

    async def template(self, actor: Actor) -> tuple[bytes, str]:
        """The current table as a workbook, which is also the import's template: a column per
        year from the first with a target to next year, so the office fills in the next one."""
        self._reader(actor)
        now = self._now().astimezone(CHINA)
        async with self._pool.acquire() as conn:
            rows = await store.table(conn, actor.org_path, actor.org_id)
        known = {int(y) for r in rows for y in r["targets"]}
        years = list(range(min(known | {now.year}), max(known | {now.year + 1}) + 1))
        table = [[r["code"], r["name"], r["first_year"] or ARRANGEMENT_FIRST_YEAR,
                  *(r["targets"].get(str(y)) for y in years)] for r in rows]
        data = await asyncio.get_running_loop().run_in_executor(None, lambda: watermarked_xlsx(
            title="注册用户年度目标（新增注册用户数，单位：人；空格表示不修改）", sheet="目标",
            header=[CODE_HEADER, NAME_HEADER, FIRST_HEADER, *(f"{y}年" for y in years)], rows=table,
            watermark=Watermark(actor.username, now.strftime("%Y-%m-%d %H:%M"))))
        return data, f"注册用户年度目标-{now:%Y%m%d}.xlsx"

    # --- writes --------------------------------------------------------------------------------
    async def set(self, actor: Actor, body: dict) -> dict:
        """One union's target for one year (``year``, ``new_users``), or its go-live year
        (``first_year``). Setting the value it already has changes nothing."""
        self._office(actor)
        org_id = body.get("org_id")
        if isinstance(org_id, bool) or not isinstance(org_id, int) or org_id <= 0:
            raise InvalidInput("请选择工会", code="invalid_target")
        if "first_year" in body:
            if "year" in body or "new_users" in body:
                raise InvalidInput("一次只能设定目标或上线年份之一", code="invalid_target")
            first, year, new_users = self._year(body["first_year"], "上线年份"), None, None
        else:
            year = self._year(body.get("year"))
            new_users, fault = _figure(_int(body, "new_users", "新增注册用户目标数"))
            if fault:
                raise InvalidInput(f"目标{fault}", code="invalid_target")
            first = None
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await store.lock_orgs(conn, [org_id])
            if not locked:
                raise NotFound("未找到该工会", code="org_not_found")
            actor.require_within(locked[0]["path"])
            if first is not None:
                # The default is a value like any other: "from 2020" says what was in force.
                old = (await store.first_years(conn, [org_id])).get(org_id, ARRANGEMENT_FIRST_YEAR)
                change = (org_id, "first_year", None, old, first)
                if old != first:
                    await store.put_first_year(conn, org_id, first, actor.id, now)
            else:
                old = (await store.current(conn, [org_id])).get((org_id, year))
                change = (org_id, "target", year, old, new_users)
                if old != new_users:
                    await store.put_target(conn, org_id, year, new_users)
            if old != change[4]:
                await store.add_changes(conn, [change], source="console", import_id=None,
                                        cadre_id=actor.id, cadre=actor.username, at=now)
                await self._audit.acted(conn, actor, "kpi.first_year_set" if first is not None
                                        else "kpi.target_set", f"org:{org_id}",
                                        {"year": year, "from": old, "to": change[4]})
            entry = await self._one(conn, org_id, year or now.astimezone(CHINA).year)
        return {"target": entry, "changed": old != change[4]}

    async def import_xlsx(self, actor: Actor, data: bytes) -> dict:
        """A whole targets table from a workbook: checked completely, then written at once."""
        self._office(actor)
        low, high = self._years()
        parsed = await asyncio.get_running_loop().run_in_executor(None, parse_import, data, low, high)
        faults = list(parsed.faults)
        resolved: dict[int, int] = {}
        if parsed.rows:   # even with faults already: the cadre hears of every fault at once
            async with self._pool.acquire() as conn:
                found = await store.orgs_by_code_or_name(
                    conn, sorted({r.code for r in parsed.rows if r.code}),
                    sorted({r.name for r in parsed.rows if r.name}))
            resolved = self._resolve(actor, parsed.rows, found, faults)
        if faults:
            raise InvalidInput(_faults_message(faults), code="import_invalid")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            ids = sorted(resolved.values())
            await store.lock_orgs(conn, ids)
            targets = await store.current(conn, ids)
            firsts = await store.first_years(conn, ids)
            changes: list[tuple] = []
            for row in parsed.rows:
                org_id = resolved[row.row]
                # The template shows 2020 for a union without its own year: no change, not a new row.
                first = firsts.get(org_id, ARRANGEMENT_FIRST_YEAR)
                if row.first_year is not None and first != row.first_year:
                    changes.append((org_id, "first_year", None, first, row.first_year))
                for year, value in row.figures.items():
                    if targets.get((org_id, year)) != value:
                        changes.append((org_id, "target", year, targets.get((org_id, year)), value))
            import_id = await store.add_import(conn, cadre_id=actor.id, cadre=actor.username,
                                               sha256=hashlib.sha256(data).digest(), size=len(data),
                                               rows=len(parsed.rows), changes=len(changes), at=now)
            for org_id, kind, year, _old, new in changes:
                if kind == "first_year":
                    await store.put_first_year(conn, org_id, new, actor.id, now)
                else:
                    await store.put_target(conn, org_id, year, new)
            await store.add_changes(conn, changes, source="import", import_id=import_id,
                                    cadre_id=actor.id, cadre=actor.username, at=now)
            await self._audit.acted(conn, actor, "kpi.targets_import", f"import:{import_id}",
                                    {"rows": len(parsed.rows), "changes": len(changes),
                                     "sha256": hashlib.sha256(data).hexdigest()})
        return {"import": {"id": import_id, "rows": len(parsed.rows), "changes": len(changes)},
                "changes": [{"org_id": c[0], "kind": c[1], "year": c[2], "from": c[3], "to": c[4]}
                            for c in changes]}

    @staticmethod
    def _resolve(actor: Actor, rows: Sequence[ImportRow], found: Sequence[asyncpg.Record],
                 faults: list[str]) -> dict[int, int]:
        """Each row's union id (row number → org id); faults for unknown, ambiguous, mismatched,
        out-of-reach and repeated unions."""
        by_code = {r["code"]: r for r in found}
        by_name: dict[str, list[asyncpg.Record]] = {}
        for r in found:
            for name in {r["name"], r["short_name"]} - {None}:
                by_name.setdefault(name, []).append(r)
        out: dict[int, int] = {}
        seen: dict[int, int] = {}
        for row in rows:
            if row.code:
                org = by_code.get(row.code)
                if org is None:
                    faults.append(f"第 {row.row} 行：未知的工会代码“{row.code}”")
                    continue
                if row.name and row.name not in (org["name"], org["short_name"]):
                    faults.append(f"第 {row.row} 行：工会代码“{row.code}”是“{org['name']}”，"
                                  f"与名称“{row.name}”不符")
                    continue
            elif row.name:
                named = by_name.get(row.name, [])
                if len(named) != 1:
                    faults.append(f"第 {row.row} 行：未知的工会“{row.name}”" if not named else
                                  f"第 {row.row} 行：有 {len(named)} 个工会名为“{row.name}”，请填写工会代码")
                    continue
                org = named[0]
            else:
                continue   # already reported: neither code nor name
            if not actor.covers(org["path"]):
                faults.append(f"第 {row.row} 行：“{org['name']}”不在本单位及下级工会范围内")
            elif org["id"] in seen:
                faults.append(f"第 {row.row} 行：“{org['name']}”与第 {seen[org['id']]} 行重复")
            else:
                seen[org["id"]] = row.row
                out[row.row] = org["id"]
        return out


async def seed_target(conn: asyncpg.Connection, org_id: int, year: int, new_users: int,
                      now: datetime) -> bool:
    """The seed's write of one annex figure, kept in the history like any other change;
    True when it changed something (a second seed changes nothing)."""
    old = (await store.current(conn, [org_id])).get((org_id, year))
    if old == new_users:
        return False
    await store.put_target(conn, org_id, year, new_users)
    await store.add_changes(conn, [(org_id, "target", year, old, new_users)], source="seed",
                            import_id=None, cadre_id=None, cadre=None, at=now)
    return True
