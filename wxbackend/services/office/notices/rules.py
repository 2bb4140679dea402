"""What a notice is made of, checked before anything is written: its text, its targets, its
receipt form, and the review process it runs through on the work-item engine.

Targets stay inside the sender's subtree. Three scopes:

- ``levels``: every union of the chosen levels strictly below the sender (the province choosing
  ``city`` and ``county`` reaches the cadres of every city and county union of Sichuan);
- ``city``: the county unions of one city in the subtree (一个市州的县级工会);
- ``unions``: named unions of the subtree (the sender's own union among them if named).

Two optional filters narrow the cadres of those unions: ``roles`` (the account roles of
``cadres.role``: 超级管理员, 工会干部, 平台管理员) and ``departments`` (``cadres.department`` as
entered for each cadre, 办公室, 组织部 …). A cadre passes when each filter given names theirs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from wxbackend.services.casework.engine import clean_text
from wxbackend.services.casework.modules import Module
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office.forms import check_form

MODULE_CODE = "notice"
PERMISSION = "notice.publish"

# The levels of the union tree a notice may address, as the orgs table's kinds: the provincial
# industry unions and the holder of the other provincial industry unions are one level.
LEVELS: dict[str, tuple[str, ...]] = {
    "city": ("city",), "industry": ("industry", "industry_holder"), "county": ("county",),
    "enterprise_group": ("enterprise_group",), "grassroots": ("grassroots",)}
LEVEL_NAMES = {"city": "市州总工会", "industry": "省产业工会", "county": "县（市、区）总工会",
               "enterprise_group": "企业集团工会", "grassroots": "基层工会"}
ROLES = {"super_admin": "超级管理员", "cadre": "工会干部", "operator": "平台管理员"}
STATUS_NAMES = {"draft": "草稿", "reviewing": "审核中", "published": "已发布", "recalled": "已撤回"}
MAX_UNIONS = 500
MAX_DEPARTMENTS = 20
MAX_ATTACHMENTS = 10
MAX_RECEIPT_DAYS = 366

# 审核 by another cadre of the issuing union holding notice.publish. The review carries the
# notice itself (approval publishes it), so it is decided at the notice's desk, never as a
# bare 通过. Three working days, as a union office answers a colleague's draft: the item's own
# time limit, so the review counts in the completion rates like any handled item.
GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "review",
     "item_deadline": {"count": 3, "unit": "working", "warn": 1, "escalate": 1}},
    {"id": "review", "type": "task", "name": "通知审核", "assign": [{"role": "office"}],
     "next": "decided"},
    {"id": "decided", "type": "exclusive", "branches": [
        {"when": "decision == 'reject'", "next": "returned"},
        {"next": "published"}]},
    {"id": "published", "type": "end", "outcome": "published"},
    {"id": "returned", "type": "end", "outcome": "returned"},
]}

NOTICE = Module(code=MODULE_CODE, name="通知公告审核", permission=PERMISSION, graph=GRAPH,
                extension_days=3, extensions=1, desk_nodes=frozenset({"review"}))


def _targets_bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_targets")


def _names(value: object, allowed: dict[str, str] | None, what: str, limit: int) -> list[str] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list) or len(value) > limit or not all(
            isinstance(v, str) and 1 <= len(v.strip()) <= 40 for v in value):
        raise _targets_bad(f"{what}应为不超过 {limit} 项的列表")
    cleaned = sorted({v.strip() for v in value})
    if allowed is not None:
        unknown = [v for v in cleaned if v not in allowed]
        if unknown:
            raise _targets_bad(f"未知的{what}：{'、'.join(unknown)}（可选：{'、'.join(allowed)}）")
    return cleaned


def clean_targets(value: object) -> dict:
    """The targets' shape; whether the unions exist and lie in the subtree is checked with the
    database (:meth:`OfficeNotices._resolve`)."""
    if not isinstance(value, dict):
        raise _targets_bad("请选择通知的接收范围")
    scope = value.get("scope")
    out: dict = {"scope": scope}
    if scope == "levels":
        levels = _names(value.get("levels"), LEVEL_NAMES, "工会层级", len(LEVELS))
        if not levels:
            raise _targets_bad("请选择至少一个工会层级")
        out["levels"] = levels
    elif scope == "city":
        city = row_id(value.get("city_id"))
        if city is None:
            raise _targets_bad("请选择市州")
        out["city_id"] = city
    elif scope == "unions":
        unions = value.get("unions")
        if not isinstance(unions, list) or not 1 <= len(unions) <= MAX_UNIONS:
            raise _targets_bad(f"请选择 1 至 {MAX_UNIONS} 个工会")
        ids = [row_id(u) for u in unions]
        if any(i is None for i in ids):
            raise _targets_bad("工会编号无效")
        out["unions"] = sorted(set(ids))  # type: ignore[type-var]
    else:
        raise _targets_bad("接收范围应为 levels（下级各层级）、city（某市州的县级工会）或 unions（指定工会）")
    roles = _names(value.get("roles"), ROLES, "角色", len(ROLES))
    departments = _names(value.get("departments"), None, "部门", MAX_DEPARTMENTS)
    if roles:
        out["roles"] = roles
    if departments:
        out["departments"] = departments
    return out


def kinds_of(targets: dict) -> list[str]:
    return [k for level in targets.get("levels", []) for k in LEVELS[level]]


def clean_receipt(value: object, now: datetime) -> tuple[dict | None, datetime | None]:
    """A receipt form and its deadline, or (None, None) when no receipt is asked. A receipt
    asks no personal data (the cadre is known) and takes no files."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise InvalidInput("回执应包含表单 form 和截止时间 due_at", code="invalid_receipt")
    form = check_form(value.get("form"))
    for field in form["fields"]:
        if field.get("sensitive") or field["type"] == "attachments":
            raise InvalidInput(f"回执字段“{field['label']}”：回执不收集身份证号、手机号等个人信息，"
                               "也不收附件", code="invalid_form")
    return form, receipt_due(value.get("due_at"), now)


def receipt_due(value: object, now: datetime) -> datetime:
    try:
        due = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput("回执截止时间应为带时区的时间", code="invalid_receipt") from None
    if due.tzinfo is None:
        raise InvalidInput("回执截止时间应为带时区的时间", code="invalid_receipt")
    try:
        due.astimezone(CHINA)   # a moment beyond year 1 or 9999 once in China time
    except OverflowError:
        raise InvalidInput("回执截止时间无效", code="invalid_receipt") from None
    if due <= now:
        raise InvalidInput("回执截止时间应晚于现在", code="invalid_receipt")
    if due > now + timedelta(days=MAX_RECEIPT_DAYS):
        raise InvalidInput(f"回执截止时间不超过 {MAX_RECEIPT_DAYS} 天后", code="invalid_receipt")
    return due


def clean_draft(body: object) -> dict:
    """Title, text and attachment ids of a draft (targets and receipt apart)."""
    if not isinstance(body, dict):
        raise InvalidInput("请求体应为对象", code="notice_invalid")
    attachments = body.get("attachments") or []
    if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
        raise InvalidInput(f"附件不超过 {MAX_ATTACHMENTS} 个", code="notice_invalid")
    ids = [row_id(a) for a in attachments]
    if any(i is None for i in ids):
        raise InvalidInput("附件编号无效", code="invalid_media")
    return {"title": clean_text(body.get("title"), "通知标题", low=2, high=100, code="notice_invalid"),
            "body": clean_text(body.get("body"), "通知正文", low=1, high=20000, code="notice_invalid"),
            "attachments": list(dict.fromkeys(ids))}


def describe(targets: dict, names: dict[int, str]) -> str:
    """The targets in a sentence, as the console shows them."""
    scope = targets["scope"]
    if scope == "levels":
        text = "下级" + "、".join(LEVEL_NAMES[v] for v in targets["levels"])
    elif scope == "city":
        text = f"{names.get(targets['city_id'], '（已撤销的工会）')}所属县（市、区）总工会"
    else:
        shown = [names.get(u, "（已撤销的工会）") for u in targets["unions"][:5]]
        more = len(targets["unions"]) > 5
        text = "、".join(shown) + (f" 等 {len(targets['unions'])} 个工会" if more else "")
    filters = []
    if targets.get("roles"):
        filters.append("、".join(ROLES[r] for r in targets["roles"]))
    if targets.get("departments"):
        filters.append("、".join(targets["departments"]))
    return text + (f"（{'；'.join(filters)}）" if filters else "的全体干部")
