"""A briefing's workbook: the figures, the ranking of the unions below with native Excel charts
(drawn by Excel or WPS when opened: no image is rendered here, no font or browser needed), the
units below standard by name, and the changes since the last briefing. Union-level figures
only: no personal data, so no export watermark. CPU work: callers run it in an executor.
"""

from __future__ import annotations

import io
from typing import Any

# Indicators drawn as a bar chart of the unions below (the counts people compare at a glance).
CHARTED = ("registered", "certified_share", "articles")


def shown(value: Any, unit: str) -> Any:
    if value is None:
        return "—"
    if unit == "%":
        return round(value * 100, 1)
    return value


def build(report: dict, changes: dict, *, title: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font, PatternFill

    red = Font(color="C00000", bold=True)
    bold = Font(bold=True)
    wb = Workbook()
    ws = wb.active
    ws.title = "概况"
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=14)
    counted = report["counted_at"] or "—"
    ws.append([f"单位：{report['org_name']}　期间：{report['period']}　数据截至：{counted}"])
    ws.append([])
    ws.append(["指标", "数值", "标准", "是否达标", "较上期"])
    for cell in ws[4]:
        cell.font = bold
    for ind in report["indicators"]:
        unit = ind["unit"]
        label = f"{ind['name']}（{unit}）"
        met = {True: "达标", False: "未达标", None: "—"}[ind["meets"]]
        delta = changes.get("indicators", {}).get(ind["code"])
        ws.append([label, shown(ind["value"], unit), shown(ind["standard"], unit), met,
                   shown(delta, unit) if delta is not None else "—"])
        if ind["meets"] is False:
            ws.cell(ws.max_row, 4).font = red
    ws.column_dimensions["A"].width = 34

    rank = wb.create_sheet("下级单位排名")
    indicators = report["indicators"]
    rank.append(["单位", *(f"{i['name']}（{i['unit']}）" for i in indicators)])
    for cell in rank[1]:
        cell.font = bold
    units = indicators[0]["units"] if indicators else []
    below_fill = PatternFill("solid", fgColor="FCE4E4")
    for n, unit in enumerate(units):
        row = [unit["org_name"]]
        for ind in indicators:
            row.append(shown(ind["units"][n]["value"], ind["unit"]))
        rank.append(row)
        for col, ind in enumerate(indicators, start=2):
            if ind["units"][n]["meets"] is False:
                rank.cell(rank.max_row, col).fill = below_fill
    rank.column_dimensions["A"].width = 28
    anchor_row = 2
    for code in CHARTED:
        col = next((c for c, i in enumerate(indicators, start=2) if i["code"] == code), None)
        if col is None or not units:
            continue
        chart = BarChart()
        chart.type = "bar"
        chart.title = indicators[col - 2]["name"]
        chart.legend = None
        chart.height, chart.width = max(6, 0.5 * len(units)), 16
        chart.add_data(Reference(rank, min_col=col, min_row=1, max_row=len(units) + 1),
                       titles_from_data=True)
        chart.set_categories(Reference(rank, min_col=1, min_row=2, max_row=len(units) + 1))
        rank.add_chart(chart, f"{_column(len(indicators) + 3)}{anchor_row}")
        anchor_row += int(chart.height * 2) + 2

    below = wb.create_sheet("未达标单位")
    below.append(["单位", "未达标的指标"])
    for cell in below[1]:
        cell.font = bold
    for unit in report["below_standard"]:
        below.append([unit["org_name"], "、".join(unit["indicators"])])
    below.column_dimensions["A"].width = 28
    below.column_dimensions["B"].width = 60

    moved = wb.create_sheet("较上期变化")
    moved.append(["单位", "变化"])
    for cell in moved[1]:
        cell.font = bold
    if not changes.get("previous"):
        moved.append(["—", "这是本单位的第一份通报"])
    for line in changes.get("units", []):
        moved.append([line["org_name"], line["text"]])
    moved.column_dimensions["A"].width = 28
    moved.column_dimensions["B"].width = 80

    wb.properties.title = title
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _column(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out
