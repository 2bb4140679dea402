"""The demo province's casework and office items: workers' appeals at the grassroots tour's union
over the last months (answered on time, answered late, still open past their limit, waiting),
and a notice of the 成都 union to its grassroots unions.

Appeals of the past go through the real services (engine, work lists, appeals) built on a clock
the generator moves along each appeal's story, so their limits, events and facts are what
production would have written then; the deadline sweep then marks the overdue ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from wxbackend.runtime import Runtime
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.appeals import Appeals
from wxbackend.services.casework.calendar import WorkdayCalendar
from wxbackend.services.casework.engine import Engine
from wxbackend.services.casework.operations import Operations
from wxbackend.services.casework.registry import MODULES
from wxbackend.services.casework.reminders import Reminders
from wxbackend.services.casework.worklists import WorkLists

# (category, story, opened days ago, accepted after days, replied after days; None: not yet)
STORIES = (
    ("法律援助", "公司拖欠两个月工资，多次协商无果，请求工会帮助协调。", 75, 1, 6),
    ("服务帮扶", "家中老人生病住院，生活暂时困难，希望申请困难职工帮扶。", 60, 1, 35),
    ("信访投诉", "单位未按规定缴纳社会保险，向工会反映并请求督促整改。", 45, 2, None),
    ("法律援助", "加班费计算有争议，请工会提供法律咨询和帮助。", 40, None, None),
    ("咨询", "想了解一下会员可以享受哪些普惠服务，以及如何申领。", 8, 1, 2),
    ("服务帮扶", "孩子今年考上大学，家庭经济困难，想了解金秋助学的申请条件。", 6, 1, None),
    ("意见建议", "建议在职工之家增设母婴室，方便哺乳期的女职工。", 1, None, None),
)
REPLY = "已与单位沟通协调，问题已妥善解决，感谢您的反映。"


class _Clock:
    """A clock the generator sets: the moment each step of a story happened."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _desk(rt: Runtime, clock: _Clock) -> tuple[Appeals, WorkLists]:
    """The appeal services of the runtime, on ``clock``."""
    s = rt.settings
    calendar = WorkdayCalendar(rt.pool, audit=rt.audit, now=clock)
    reminders = Reminders(s.casework, oa_appid=s.wechat.appid, mp_appid=s.miniprogram.appid,
                          console_url=s.server.public_url.rstrip("/") + "/admin/", h5_base=rt.h5_base,
                          now=clock)
    engine = Engine(rt.pool, calendar, reminders, MODULES, audit=rt.audit, now=clock)
    work = Operations(engine, s.casework)
    lists = WorkLists(rt.pool, engine, rt.pii, audit=rt.audit, now=clock)
    appeals = Appeals(rt.pool, rt.pii, engine, work, lists, rt.media, categories=s.casework.appeal_categories,
                      anonymous=s.casework.anonymous_categories, audit=rt.audit, now=clock)
    return appeals, lists


async def _task(lists: WorkLists, desk: Actor, item: int) -> dict:
    return next(t for t in (await lists.todo(desk))["tasks"] if t["item_id"] == item)


async def appeals(rt: Runtime, now: datetime, desk: Actor, accounts: list[int]) -> dict[str, int]:
    clock = _Clock(now)
    service, lists = _desk(rt, clock)
    closed = 0
    for k, (category, story, ago, accepted, replied) in enumerate(STORIES):
        opened = (now - timedelta(days=ago)).replace(hour=10, minute=0, second=0, microsecond=0)
        clock.at = min(opened, now)
        appeal = await service.submit(accounts[k * 7 % len(accounts)], {
            "category": category, "org_id": desk.org_id, "description": story,
            "anonymous": category == "意见建议"})
        if accepted is None:
            continue
        clock.at = min(opened + timedelta(days=accepted), now)
        task = await _task(lists, desk, appeal["id"])
        await service.decide(desk, appeal["id"], {"task_id": task["task_id"], "accept": True,
                                                  "version": task["version"]})
        if replied is None:
            continue
        clock.at = min(opened + timedelta(days=replied), now)
        task = await _task(lists, desk, appeal["id"])
        await service.reply(desk, appeal["id"], {"task_id": task["task_id"], "reply": REPLY})
        closed += 1
    swept = await rt.deadlines.sweep()   # the overdue ones reach their stage, as the worker would
    return {"appeals": len(STORIES), "appeals_closed": closed, "deadline_steps": swept}


async def notice(rt: Runtime, author: Actor, reviewer: Actor) -> dict[str, int]:
    """A notice of the 成都 union to its grassroots unions, drafted by one cadre and approved
    (so published) by another, as the review rule asks."""
    made = await rt.office_notices.create(author, {
        "title": "关于开展2027年职工春季健步走活动的通知（演示）",
        "body": "请各基层工会组织职工报名参加，并于活动前报送参加人数。本通知为培训演示数据。",
        "targets": {"scope": "levels", "levels": ["grassroots"]}})
    await rt.office_notices.submit(author, made["id"])
    await rt.office_notices.review(reviewer, made["id"], {"decision": "approve", "opinion": "同意"})
    return {"notices": 1}
