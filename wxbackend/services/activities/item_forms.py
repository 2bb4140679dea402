"""The item form a cadre fills in: its fields checked, times read as China time."""

from __future__ import annotations

from datetime import datetime

from wxbackend.services.clock import CHINA
from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership.membership import row_id

KINDS = {"activity": ("offline", "quiz", "vote", "lottery"),
         "service": ("ticket", "coupon", "checkup", "discount")}
MODES = ("first_come", "lottery", "review")
KIND_NAMES = {"activity": "活动", "service": "普惠服务"}
_TEXTS = {"title": ("标题", 60, True), "summary": ("简介", 2000, False), "place": ("地点", 100, False)}
_TIMES = {"starts_at": "开始时间", "ends_at": "结束时间", "opens_at": "报名开始时间",
          "closes_at": "报名截止时间", "cancel_until": "取消截止时间"}
_NUMBERS = {"stock": ("名额/数量", 1, 10_000_000), "per_person": ("每人限领", 1, 100),
            "per_day": ("每人每日限领", 1, 100), "hold_minutes": ("确认时限（分钟）", 1, 10_080),
            "no_show_ban_days": ("爽约限制天数", 0, 365)}


def invalid(message: str) -> InvalidInput:
    return InvalidInput(message, code="item_invalid")


def whole_number(value: object, label: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid(f"{label}应为 {low}–{high} 之间的整数")
    return value


def text_field(value: object, label: str, limit: int, *, required: bool = True) -> str:
    text = str(value if value is not None else "").strip()
    if required and not text:
        raise invalid(f"请填写{label}")
    if len(text) > limit:
        raise invalid(f"{label}不能超过 {limit} 个字")
    return text


def _time(raw: object, label: str) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        raise invalid(f"{label}格式有误（如 2027-05-01T09:00+08:00）") from None
    return value if value.tzinfo else value.replace(tzinfo=CHINA)


def clean_item(body: dict, *, current: dict | None = None) -> dict:
    """The fields of a new item (``current`` is None) or the changed fields of an existing one,
    checked together with the fields they do not change."""
    if not isinstance(body, dict):
        raise invalid("提交的内容格式有误")
    out: dict = {}
    for name, (label, limit, required) in _TEXTS.items():
        if name in body or (current is None and required):
            out[name] = text_field(body.get(name) or "", label, limit, required=required)
    for name, label in _TIMES.items():
        if name in body:
            out[name] = _time(body[name], label)
    for name, (label, low, high) in _NUMBERS.items():
        if name in body and not (name == "per_day" and body[name] in (None, "")):
            out[name] = whole_number(body[name], label, low, high)
        elif name == "per_day" and name in body:
            out[name] = None
    for name in ("kind", "form", "mode"):
        if name in body:
            out[name] = str(body[name] or "")
    if "campaign_id" in body:
        value = body["campaign_id"]
        if value is not None and not row_id(value):
            raise invalid("所属专项活动有误")
        out["campaign_id"] = value
    merged = {**(current or {}), **out}
    if merged.get("kind") not in KINDS:
        raise invalid("类型只能是活动或普惠服务")
    if merged.get("form") not in KINDS[merged["kind"]]:
        raise invalid(f"{KIND_NAMES[merged['kind']]}的形式有误")
    if merged.get("mode") not in MODES:
        raise invalid("参与方式只能是先到先得、抽签或报名审核")
    for name in ("opens_at", "closes_at"):
        if merged.get(name) is None:
            raise invalid(f"请填写{_TIMES[name]}")
    if merged["opens_at"] >= merged["closes_at"]:
        raise invalid("报名截止时间应晚于报名开始时间")
    if merged.get("starts_at") and merged.get("ends_at") and merged["starts_at"] > merged["ends_at"]:
        raise invalid("结束时间应晚于开始时间")
    if merged.get("cancel_until") and merged["cancel_until"] < merged["opens_at"]:
        raise invalid("取消截止时间应晚于报名开始时间")
    if "stock" not in merged:
        raise invalid("请填写名额/数量")
    if merged.get("per_day") and merged["per_day"] > merged.get("per_person", 1):
        raise invalid("每人每日限领不能多于每人限领")
    return out
