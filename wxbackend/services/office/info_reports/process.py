"""The information-report process: its vocabulary, its review flow on the work-item engine and
the points an adoption earns.

A cadre holding ``info.report`` submits 工作信息 (title, text, pictures, the date of the event,
an optional category) to the union directly above their own. Each level's review is a work item
of module ``info_report`` at the reviewing union, so its desk is that union's cadres holding
``info.report``: it adopts the report (采用), returns it for changes (退回修改: the submitting
union edits and resubmits the same report, a new round) or does not adopt it (不采用) with a
reason. An adopting union may pass the report up (上报) to the union above it, a new item linked
to the same report; the province records what it sent to the national federation (全国总工会,
outside our tree) and, later, the national adoption.

Each adoption earns the submitting union the points of its level from ``[office]`` (city,
province, national; a county's adoption counts but earns none), fixed when it is given. A report
filed more than ``report_late_days`` after its event earns no points (逾期报送，不计分).
"""

from __future__ import annotations

from datetime import date, datetime

from wxbackend.config import OfficeSettings
from wxbackend.services.casework.modules import Module
from wxbackend.services.clock import CHINA

MODULE_CODE = "info_report"
PERMISSION = "info.report"
MAX_PICTURES = 9
MAX_LOOSE_PICTURES = 30     # uploaded but not yet in a report, per cadre
LEVEL_NAMES = {"county": "县级", "city": "市级", "province": "省级", "national": "全国总工会"}
STATUS_NAMES = {"pending": "待审核", "returned": "退回修改", "adopted": "已采用",
                "not_adopted": "不采用"}
LATE_NOTE = "逾期报送，不计分"
ACTIONS = {"adopt": "采用", "return": "退回修改", "reject": "不采用"}
FIRST_DAY = date(2000, 1, 1)
REVISE_STEP = "修改后重新报送"

# Time limits: five working days to review, five to make the changes asked for. The item's own
# limit restarts at each step, so a union is not counted late for the time the submitter took.
_LIMIT = {"count": 5, "unit": "working", "warn": 1, "escalate": 2}
GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "review"},
    {"id": "review", "type": "task", "name": "审核采用", "assign": [{"role": "office"}],
     "deadline": _LIMIT, "item_deadline": _LIMIT, "next": "reviewed"},
    {"id": "reviewed", "type": "exclusive", "branches": [
        {"when": "verdict == 'return'", "next": "revise"},
        {"when": "verdict == 'adopt'", "next": "adopted"},
        {"next": "not_adopted"}]},
    {"id": "revise", "type": "task", "name": REVISE_STEP,
     "assign": [{"role": "union", "field": "from_org"}],
     "deadline": _LIMIT, "item_deadline": _LIMIT, "next": "review"},
    {"id": "adopted", "type": "end", "outcome": "adopted"},
    {"id": "not_adopted", "type": "end", "outcome": "not_adopted"},
]}

INFO_REPORT = Module(code=MODULE_CODE, name="信息报送", permission=PERMISSION, graph=GRAPH,
                     fields=frozenset({"verdict", "from_org"}), extension_days=5, extensions=1,
                     desk_nodes=frozenset({"review", "revise"}))


def level_of(kind: str) -> str:
    """The level a reviewing union adopts at, from ``orgs.kind``: the provincial industry unions
    stand with the cities; enterprise groups and anything else below a city, with the counties."""
    if kind == "province":
        return "province"
    return "city" if kind in {"city", "industry", "industry_holder"} else "county"


def points_for(settings: OfficeSettings, level: str, late: bool) -> int:
    """The points an adoption at ``level`` earns: none for a late report or a county's adoption."""
    if late:
        return 0
    return {"city": settings.points_city, "province": settings.points_province,
            "national": settings.points_national}.get(level, 0)


def is_late(settings: OfficeSettings, filed: datetime, event_date: date) -> bool:
    """Filed more than ``report_late_days`` (China days) after the event."""
    return (filed.astimezone(CHINA).date() - event_date).days > settings.report_late_days
