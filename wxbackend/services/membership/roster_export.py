"""The roster as a workbook (会员名册导出) and the import template.

Why it is built the way it is:

* An export hands out full ID numbers and phones, so it needs its own permission and a stated
  purpose, is audited, and is watermarked with who, when and why (``RosterService.export_roster``
  checks and audits; the workbook here carries the watermark).
* The export has the import's columns in the import's order, so an exported roster imports back
  as unchanged; the template is the same header with one example row.
* A large export is written to a temporary file off the event loop, chunk by chunk, and streamed
  from disk; the file removes itself once streamed or discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg

from wxbackend.infra.pii import PersonalData
from wxbackend.infra.xlsx import Watermark, WatermarkedWorkbook
from wxbackend.services.membership.idnumbers import id_check_char
from wxbackend.services.membership.member_forms import EDUCATION, HOUSEHOLD_TYPES, POLITICAL_STATUS
from wxbackend.services.membership.membership import ID_COLUMN, PHONE_COLUMN
from wxbackend.services.membership.roster_rows import COLUMNS, HEADER

# How to fill each column, for the template's notes sheet.
_NOTES = {
    "org_code": "会员所在基层工会的编码（在“工会组织”中查看）",
    "name": "与身份证一致，2–30 个字，少数民族姓名的间隔号用“·”",
    "id_number": "18 位居民身份证号码，性别和出生日期由此得出",
    "phone": "11 位手机号",
    "ethnicity": "民族全称，如：汉族",
    "education": "、".join(EDUCATION),
    "political_status": "、".join(POLITICAL_STATUS),
    "household_type": " 或 ".join(HOUSEHOLD_TYPES),
    "migrant_worker": "是 或 否，不填为否",
    "joined_on": "YYYY-MM-DD，不填为导入当天",
    "member_no": "不填由平台编号",
}


@dataclass
class RosterExport:
    """A finished export on local disk, streamed to the cadre and removed."""
    path: str
    filename: str
    rows: int

    async def chunks(self, size: int = 262_144) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        fh = await loop.run_in_executor(None, open, self.path, "rb")
        try:
            while chunk := await loop.run_in_executor(None, fh.read, size):
                yield chunk
        finally:
            fh.close()
            self.discard()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class ExportBook:
    """The workbook being written; every method runs in an executor."""

    def __init__(self, pii: PersonalData, watermark: Watermark) -> None:
        self._pii = pii
        self._book = WatermarkedWorkbook(title="川工之家 会员名册", sheet="会员名册", header=HEADER,
                                         watermark=watermark)
        self.rows = 0

    def add(self, records: Sequence[asyncpg.Record]) -> None:
        decrypt = self._pii.decrypt
        for r in records:
            self._book.append([
                r["org_code"], r["name"], decrypt(r["id_number_enc"], ID_COLUMN),
                decrypt(r["phone_enc"], PHONE_COLUMN) if r["phone_enc"] else None, r["ethnicity"],
                r["education"], r["political_status"], r["household_type"],
                "是" if r["migrant_worker"] else "否", r["employer"], r["job"], r["joined_on"],
                r["member_no"]])
        self.rows += len(records)

    def save(self) -> str:
        fd, path = tempfile.mkstemp(prefix="wx-roster-export-", suffix=".xlsx")
        try:
            with os.fdopen(fd, "wb") as fh:
                self._book.save(fh)
        except BaseException:
            os.unlink(path)
            raise
        return path


@functools.cache   # the same bytes every time: built once per process, on first download
def template() -> bytes:
    """The import template: the header, one example row, and how to fill each column."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "会员名册"
    ws.append(HEADER)
    first17 = "51010419900307123"
    ws.append(["SC-G-示例", "张三", first17 + id_check_char(first17), "13800000000", "汉族", "本科",
               "群众", "城镇", "否", "某某有限公司", "职员", "2024-05-01", ""])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for idx, col in enumerate(COLUMNS, 1):
        letter = ws.cell(row=1, column=idx).column_letter
        ws.column_dimensions[letter].width = 22 if col.field in ("id_number", "employer") else 14
        if col.field in ("id_number", "phone", "member_no", "org_code"):
            # As text: Excel would otherwise turn an 18-digit ID number into 5.10104E+17.
            ws.column_dimensions[letter].number_format = "@"
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("填写说明")
    notes.append(["列名", "是否必填", "填写说明"])
    for col in COLUMNS:
        how = _NOTES.get(col.field) or f"不超过 {col.limit} 个字"
        notes.append([col.header, "必填" if col.required else "选填", how])
    notes.append(["说明", "", "第一行为列名，列的顺序可以调整；同一文件可以重复导入，未变化的行不会重复写入；"
                              "示例行请删除后再导入"])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
