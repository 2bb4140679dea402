"""Who may take part in an item: its audience, stored as data with the item.

An audience is a JSON object::

    {"level": "registered" | "member" | "certified",
     "orgs": [org ids],             # within these unions' subtrees (empty: the organiser's)
     "migrant_worker": true,        # optional member attributes
     "household_type": "城镇" | "农村",
     "jobs": ["快递员", ...]}

``registered`` admits any registered user whose home union (the city union the KPIs count the
account under) or member union lies in one of the subtrees; ``member`` needs a linked member
record (joined through the platform and approved, or certified against a roster) that is active
or retained; ``certified`` needs an active linked member record and a verified phone. Member
attributes apply to the member record, so they imply at least ``member``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership.member_forms import HOUSEHOLD_TYPES
from wxbackend.services.membership.membership import row_id

LEVELS = ("registered", "member", "certified")
LEVEL_NAMES = {"registered": "注册用户", "member": "工会会员", "certified": "认证会员"}
MAX_ORGS = 200
MAX_JOBS = 50


@dataclass(frozen=True)
class Profile:
    """What the rules need to know about a worker, read once per request."""
    account_id: int
    registered: bool
    phone_verified: bool
    home_path: str | None            # the home union's ltree path
    member_path: str | None          # the member union's path, when a member record is linked
    member_status: str | None        # active | retained | withdrawn
    migrant_worker: bool = False
    household_type: str | None = None
    job: str | None = None


def normalise(audience: Any, organiser_path: str, org_paths: dict[int, str]) -> dict:
    """A cadre's audience, checked: every union named must lie in the organiser's subtree
    (``org_paths`` maps the ids named to their paths; missing ids are unknown unions)."""
    if not isinstance(audience, dict):
        raise InvalidInput("参与条件格式有误", code="invalid_audience")
    level = audience.get("level", "registered")
    if level not in LEVELS:
        raise InvalidInput("参与身份只能是注册用户、工会会员或认证会员", code="invalid_audience")
    orgs = audience.get("orgs") or []
    if not isinstance(orgs, list) or len(orgs) > MAX_ORGS or not all(row_id(o) for o in orgs):
        raise InvalidInput("参与单位格式有误", code="invalid_audience")
    for org_id in orgs:
        path = org_paths.get(org_id)
        if path is None:
            raise InvalidInput("参与单位不存在", code="invalid_audience")
        if not within(path, organiser_path):
            raise InvalidInput("参与单位只能是本单位及下级工会", code="outside_subtree")
    out: dict = {"level": level, "orgs": sorted(set(orgs))}
    if "migrant_worker" in audience and audience["migrant_worker"] is not None:
        if not isinstance(audience["migrant_worker"], bool):
            raise InvalidInput("农民工条件格式有误", code="invalid_audience")
        out["migrant_worker"] = audience["migrant_worker"]
    if audience.get("household_type") is not None:
        if audience["household_type"] not in HOUSEHOLD_TYPES:
            raise InvalidInput("户籍类型只能是城镇或农村", code="invalid_audience")
        out["household_type"] = audience["household_type"]
    jobs = audience.get("jobs")
    if jobs:
        if not isinstance(jobs, list) or len(jobs) > MAX_JOBS or \
                not all(isinstance(j, str) and 0 < len(j.strip()) <= 30 for j in jobs):
            raise InvalidInput("职业条件格式有误", code="invalid_audience")
        out["jobs"] = sorted({j.strip() for j in jobs})
    if out["level"] == "registered" and _member_attributes(out):
        out["level"] = "member"  # attributes are the member record's: only members have them
    return out


def _member_attributes(audience: dict) -> bool:
    return any(k in audience for k in ("migrant_worker", "household_type", "jobs"))


def within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + ".")


def refusal(audience: dict, organiser_path: str, profile: Profile,
            audience_paths: list[str]) -> str | None:
    """Why ``profile`` may not take part (a sentence for the worker), or None when it may.
    ``audience_paths`` are the paths of ``audience["orgs"]`` (empty: the organiser's subtree)."""
    roots = audience_paths or [organiser_path]
    level = audience.get("level", "registered")
    if not profile.registered:
        return "请先完成注册（绑定手机号并选择所在地区）"
    member = profile.member_path is not None and profile.member_status in ("active", "retained")
    if level in ("member", "certified") and not member:
        return f"仅限{LEVEL_NAMES[level]}参加，请先入会或完成会员认证"
    if level == "certified" and (profile.member_status != "active" or not profile.phone_verified):
        return "仅限认证会员参加，请先完成会员认证并验证手机号"
    places = [p for p in (profile.member_path, profile.home_path if level == "registered" else None) if p]
    if not any(within(p, root) for p in places for root in roots):
        return "本活动仅限指定工会的职工参加"
    if "migrant_worker" in audience and profile.migrant_worker != audience["migrant_worker"]:
        return "仅限农民工会员参加" if audience["migrant_worker"] else "本活动不面向农民工会员"
    if "household_type" in audience and profile.household_type != audience["household_type"]:
        return f"仅限{audience['household_type']}户籍会员参加"
    if "jobs" in audience and (profile.job or "").strip() not in audience["jobs"]:
        return "仅限指定职业的会员参加"
    return None
