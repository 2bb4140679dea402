"""Workbooks that leave the platform with account or personal data carry a watermark naming
who exported them, when and (where asked) why: on screen in the title rows above the table, on
paper in the printed header and footer, and in the file's properties, so a copy found where it
should not be can be traced to its export and audit record.

Rows stream through openpyxl's write-only mode to a temporary file rather than living in memory,
so a city's roster costs what a small one does. Building a workbook is CPU work: callers run it
in an executor.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER_ROW = 4   # title, watermark, a blank row, then the table's header


@dataclass(frozen=True)
class Watermark:
    exporter: str
    stamp: str                  # when, as the reader should see it
    purpose: str | None = None

    @property
    def text(self) -> str:
        purpose = f"　用途：{self.purpose}" if self.purpose else ""
        return f"导出人：{self.exporter}　导出时间：{self.stamp}{purpose}　仅限工作使用，不得外传"


class WatermarkedWorkbook:
    """One sheet: title, watermark, a blank row, the header, then the rows appended."""

    def __init__(self, *, title: str, sheet: str, header: Sequence[str], watermark: Watermark) -> None:
        # openpyxl is imported here, not at start-up: most processes never build a workbook.
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        self._illegal = ILLEGAL_CHARACTERS_RE
        self._text_cell = WriteOnlyCell
        self._wb = Workbook(write_only=True)
        ws = self._wb.create_sheet(sheet)
        # "&" starts a control code in Excel's header and footer; a purpose may contain one.
        printed = watermark.text.replace("&", "&&")
        ws.oddHeader.center.text = printed
        ws.oddFooter.center.text = printed
        ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
        ws.freeze_panes = f"A{HEADER_ROW + 1}"
        self._wb.properties.creator = watermark.exporter
        self._wb.properties.title = title
        self._wb.properties.description = watermark.text
        self._ws = ws
        for row in ([title], [watermark.text], [], list(header)):
            ws.append(row)

    def append(self, row: Iterable[Any]) -> None:
        self._ws.append([self._literal(v) for v in row])

    def _literal(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        # Control characters are not allowed in the file format (openpyxl refuses the cell),
        # and data from a worker's form may hold one: drop them rather than fail the export.
        value = self._illegal.sub("", value)
        # openpyxl writes any string starting with "=" as a formula: data a worker typed (an
        # employer's name, say) must never become a formula on a cadre's machine.
        if value.startswith("="):
            cell = self._text_cell(self._ws, value)
            cell.data_type = "s"
            return cell
        return value

    def save(self, target: str | IO[bytes]) -> None:
        self._wb.save(target)


def watermarked_xlsx(*, title: str, sheet: str, header: Sequence[str], rows: Iterable[Iterable[Any]],
                     watermark: Watermark) -> bytes:
    """A small watermarked workbook as bytes (run in an executor)."""
    book = WatermarkedWorkbook(title=title, sheet=sheet, header=header, watermark=watermark)
    for row in rows:
        book.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
