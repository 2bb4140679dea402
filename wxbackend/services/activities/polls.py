"""Online votes (线上投票): a cadre sets the options and how many votes a worker has each day; a
worker votes for up to that many options a day, at most once per option per day; having voted
is what lets the worker sign up for the item (a vote-gated claim, see
:mod:`wxbackend.services.activities.gates`).

Each vote is a row; each option's count moves in the same transaction (split over a few rows,
so a popular option's ballots do not queue on one row lock), so the count shown is always the
number of rows. Counts are shown to workers live or only after the vote closes, as
the organiser chose; the organiser always sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from wxbackend.services.activities.catalogue import Catalogue, fixed_once_open, window_refusal
from wxbackend.services.activities.item_forms import invalid, text_field, whole_number
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, DomainError, InvalidInput, NotFound
from wxbackend.store.activities import polls as store

MAX_OPTIONS = 200
SHOW_COUNTS = {"live": "实时显示票数", "after_close": "投票结束后显示票数"}


def clean_poll(body: dict) -> tuple[dict, list[dict]]:
    rules = {"votes_per_day": whole_number(body.get("votes_per_day", 1), "每人每日票数", 1, 50)}
    total = body.get("votes_total")
    rules["votes_total"] = None if total is None else whole_number(total, "每人总票数", 1, 1000)
    if rules["votes_total"] is not None and rules["votes_total"] < rules["votes_per_day"]:
        raise invalid("每人总票数不能少于每日票数")
    rules["show_counts"] = body.get("show_counts", "live")
    if not isinstance(rules["show_counts"], str) or rules["show_counts"] not in SHOW_COUNTS:
        raise invalid("票数显示方式只能是 live 或 after_close")
    raw = body.get("options")
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_OPTIONS:
        raise invalid(f"投票应有 2–{MAX_OPTIONS} 个选项")
    options = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise invalid(f"第 {n} 个选项格式有误")
        options.append({"label": text_field(item.get("label"), f"第 {n} 个选项的名称", 40),
                        "summary": text_field(item.get("summary"), f"第 {n} 个选项的介绍", 200,
                                              required=False)})
    if len({o["label"] for o in options}) != len(options):
        raise invalid("选项名称有重复")
    return rules, options


class Polls:
    def __init__(self, pool: asyncpg.Pool, catalogue: Catalogue, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._catalogue = catalogue
        self._audit = audit
        self._now = now

    # --- cadres ------------------------------------------------------------------------------
    async def save(self, actor: Actor, offering_id: int, body: dict) -> dict:
        """Sets a vote item's rules and options (until its window opens)."""
        if not isinstance(body, dict):
            raise invalid("提交的内容格式有误")
        rules, options = clean_poll(body)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._catalogue.owned_content(conn, actor, offering_id, "vote")
            await store.replace(conn, offering_id, rules, options)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=row["org_id"], action="activity.vote",
                                     target=f"offering:{offering_id}",
                                     detail={"options": len(options), **rules}, ip=actor.ip)
        return await self.manage_get(actor, offering_id)

    async def manage_get(self, actor: Actor, offering_id: int) -> dict:
        """The poll with every count, as its organiser sees it."""
        async with self._pool.acquire() as conn:
            row = await self._catalogue.owned(conn, actor, offering_id)
            rules = await store.rules(conn, offering_id)
            options = await store.options(conn, offering_id)
            voters = await store.voters(conn, offering_id) if rules else 0
        return {"offering_id": offering_id, "editable": fixed_once_open(row, self._now()) is None,
                "rules": dict(rules) if rules else None, "voters": voters,
                "options": [_option(o, True) for o in options]}

    # --- workers -----------------------------------------------------------------------------
    async def view(self, account_id: int, offering_id: int) -> dict:
        """The options (with counts, when they are shown), the worker's votes and what is left."""
        item = await self._catalogue.published_of_form(offering_id, "vote")
        async with self._pool.acquire() as conn:
            return await self._view(conn, item, account_id)

    async def cast(self, account_id: int, offering_id: int, option_ids: object) -> dict:
        """Votes for the options named (one vote each). Either all are counted or none."""
        if not isinstance(option_ids, list) or not option_ids or any(
                not isinstance(o, int) or isinstance(o, bool) for o in option_ids):
            raise InvalidInput("请选择要投票的选项", code="invalid_votes")
        if len(set(option_ids)) != len(option_ids):
            raise InvalidInput("同一选项一次只能投一票", code="invalid_votes")
        item = await self._catalogue.published_of_form(offering_id, "vote")
        now = self._now()
        refused = window_refusal(item, now, "投票已结束")
        if refused is not None:
            raise refused
        await self._catalogue.require_eligible(item, account_id)
        today = now.date()
        async with self._pool.acquire() as conn:
            outcome = await store.cast(conn, offering_id=offering_id, account_id=account_id,
                                       day=today, option_ids=option_ids, now=now)
            if outcome != "ok":
                rules = await store.rules(conn, offering_id)
                raise _refusal(outcome, rules)
            return await self._view(conn, item, account_id)

    async def _view(self, conn: asyncpg.Connection, item: dict, account_id: int) -> dict:
        rules = await store.rules(conn, item["id"])
        if rules is None:
            raise NotFound("未找到该投票活动", code="item_not_found")
        options = await store.options(conn, item["id"])
        mine = await store.votes_of(conn, item["id"], account_id)
        now = self._now()
        today = {v["option_id"] for v in mine if v["china_day"] == now.date()}
        ended = item["status"] == "closed" or now >= item["closes_at"]
        shown = rules["show_counts"] == "live" or ended
        left = rules["votes_per_day"] - len(today)
        if rules["votes_total"] is not None:
            left = min(left, rules["votes_total"] - len(mine))
        return {"offering_id": item["id"], "rules": dict(rules),
                "show_counts_name": SHOW_COUNTS[rules["show_counts"]], "counts_shown": shown,
                "votes_left_today": max(0, left), "votes_cast": len(mine),
                "options": [{**_option(o, shown), "voted_today": o["id"] in today} for o in options]}


def _refusal(outcome: str, rules: asyncpg.Record | None) -> DomainError:
    if outcome == "invalid_votes":
        return InvalidInput("所选选项不属于本次投票", code="invalid_votes")
    if outcome == "already_voted":
        return Conflict("今天已经给该选项投过票了", code="already_voted")
    if outcome == "votes_used_today":
        return Conflict(f"今日票数不足（每人每日 {rules['votes_per_day']} 票）", code="votes_used_today")
    if outcome == "votes_used":
        return Conflict(f"票数已用完（每人共 {rules['votes_total']} 票）", code="votes_used")
    return NotFound("未找到该投票活动", code="item_not_found")


def _option(row: asyncpg.Record, with_count: bool) -> dict:
    return {"id": row["id"], "label": row["label"], "summary": row["summary"],
            "votes": row["votes"] if with_count else None}
