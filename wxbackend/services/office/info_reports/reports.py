"""The information-report service (信息报送): pictures, submitting to the union above,
resubmitting after 退回修改, the reviewing union's verdict, passing up (上报), the province's
record of national adoption, and the views and listings of reports.

The flow, its vocabulary and the points rules live in :mod:`.process`; rankings, mixed in, in
:mod:`.rankings`.
"""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from wxbackend.config import OfficeSettings
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step, clean_opinion, clean_text, holder
from wxbackend.services.casework.operations import Operations
from wxbackend.services.channels.media import MediaLibrary, media_url
from wxbackend.services.channels.media_store import key_for
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office.info_reports.process import (
    ACTIONS,
    FIRST_DAY,
    LATE_NOTE,
    LEVEL_NAMES,
    MAX_LOOSE_PICTURES,
    MAX_PICTURES,
    MODULE_CODE,
    PERMISSION,
    REVISE_STEP,
    STATUS_NAMES,
    is_late,
    level_of,
    points_for,
)
from wxbackend.services.office.info_reports.rankings import Rankings
from wxbackend.store.casework import items as item_store
from wxbackend.store.office import info_reports as store


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value else None


class InfoReports(Rankings):
    def __init__(self, pool: asyncpg.Pool, engine: Engine, ops: Operations, media: MediaLibrary,
                 settings: OfficeSettings, *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._engine = engine
        self._ops = ops
        self._media = media
        self._s = settings
        self._audit = audit
        self._now = now

    # --- pictures ---------------------------------------------------------------------------------
    async def upload_picture(self, actor: Actor, data: bytes) -> dict:
        """A picture for a report not yet submitted: cleaned on the image threads with no
        connection held, kept in the media store by content, tied to the union until used."""
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            if await store.loose_pictures(conn, actor.id) >= MAX_LOOSE_PICTURES:
                raise TooManyRequests(f"已上传但未报送的图片已有 {MAX_LOOSE_PICTURES} 张，请先报送信息",
                                      code="pictures_full")
        processed = await self._media.clean_image(data)
        keys = {}
        for name in ("page", "thumb"):
            variant = processed.variants[name]
            keys[name] = key_for(variant.data, variant.ext)
            await self._media.files.put(keys[name], variant.data)
        page = processed.variants["page"]
        async with self._pool.acquire() as conn, conn.transaction():
            picture_id = await store.insert_picture(
                conn, org_id=actor.org_id, cadre_id=actor.id, page_key=keys["page"],
                thumb_key=keys["thumb"], width=page.width, height=page.height, size=len(page.data),
                now=self._now())
            await self._audit.acted(conn, actor, "info_report.picture_upload", f"picture:{picture_id}",
                                {"bytes": len(page.data)})
        return {"id": picture_id, "url": media_url(keys["page"]), "thumb_url": media_url(keys["thumb"]),
                "width": page.width, "height": page.height, "bytes": len(page.data)}

    async def _attach(self, conn: asyncpg.Connection, actor: Actor, report_id: int,
                      picture_ids: list[int]) -> None:
        rows = {r["id"]: r for r in await store.pictures(conn, picture_ids)}
        for picture_id in picture_ids:
            row = rows.get(picture_id)
            if row is None or row["org_id"] != actor.org_id \
                    or row["report_id"] not in (None, report_id):
                raise InvalidInput(f"图片 {picture_id} 不存在或已用于其他信息", code="picture_invalid")
        await store.attach_pictures(conn, report_id, picture_ids)

    # --- the submitting union ---------------------------------------------------------------------
    def _content(self, body: object) -> dict:
        if not isinstance(body, dict):
            raise InvalidInput("请求格式有误", code="report_invalid")
        title = clean_text(body.get("title"), "标题", low=5, high=100, code="report_invalid")
        text = clean_text(body.get("body"), "正文", low=20, high=10000, code="report_invalid")
        category = clean_text(body.get("category"), "类别", low=1, high=20, code="report_invalid",
                              required=False)
        try:
            event_date = date.fromisoformat(body.get("event_date"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInput("请填写事件发生日期（如 2026-03-02）", code="event_date_invalid") from None
        today = self._now().astimezone(CHINA).date()
        if not FIRST_DAY <= event_date <= today:
            raise InvalidInput("事件发生日期不能晚于今天", code="event_date_invalid")
        pictures = body.get("pictures", [])
        if not isinstance(pictures, list) or any(row_id(p) is None for p in pictures) \
                or len(set(pictures)) != len(pictures):
            raise InvalidInput("图片应为不重复的图片编号列表", code="picture_invalid")
        if len(pictures) > MAX_PICTURES:
            raise InvalidInput(f"每条信息最多 {MAX_PICTURES} 张图片", code="too_many_pictures")
        return {"title": title, "body": text, "category": category, "event_date": event_date,
                "pictures": pictures}

    async def _addressee(self, conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
        """The union a union reports to: the one directly above it (the holder of the other
        provincial industry unions is a grouping, not a desk: its unions report to the province)."""
        org = await store.org(conn, org_id)
        if org is None or org["parent_id"] is None:
            return None
        upper = await store.org(conn, org["parent_id"])
        if upper["kind"] == "industry_holder" and upper["parent_id"] is not None:
            upper = await store.org(conn, upper["parent_id"])
        return upper

    async def _open_level(self, conn: asyncpg.Connection, report_id: int, reviewer: asyncpg.Record,
                          *, from_org: int, title: str, by: int) -> Step:
        step = await self._engine.start(conn, MODULE_CODE, org_id=reviewer["id"], title=title,
                                        data={"from_org": from_org, "verdict": None},
                                        submitter_cadre_id=by)
        await store.insert_review(conn, report_id=report_id, org_id=reviewer["id"],
                                  level=level_of(reviewer["kind"]), item_id=step.item["id"],
                                  now=self._now())
        return step

    async def submit(self, actor: Actor, body: dict) -> dict:
        actor.require(PERMISSION)
        content = self._content(body)
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            upper = await self._addressee(conn, actor.org_id)
            if upper is None:
                raise InvalidInput("省总工会没有上一级工会：采用的信息请在审核后“报送全总”",
                                   code="not_upper_union")
            if body.get("to") is not None and row_id(body.get("to")) != upper["id"]:
                raise InvalidInput(f"信息逐级报送，只能报送给上一级工会（{upper['name']}）",
                                   code="not_upper_union")
            report_id = await store.insert_report(
                conn, org_id=actor.org_id, submitted_by=actor.id, title=content["title"],
                body=content["body"], category=content["category"],
                event_date=content["event_date"], late=is_late(self._s, now, content["event_date"]),
                now=now)
            await self._attach(conn, actor, report_id, content["pictures"])
            await self._open_level(conn, report_id, upper, from_org=actor.org_id,
                                   title=content["title"], by=actor.id)
            await self._audit.acted(conn, actor, "info_report.submit", f"info_report:{report_id}",
                                {"to": upper["id"], "pictures": len(content["pictures"])})
        return await self.report(actor, report_id)

    async def _visible(self, conn: asyncpg.Connection, actor: Actor, report_id: int, *,
                       lock: bool = False) -> asyncpg.Record:
        """A report of the actor's subtree: its own union's, or one sent up through it."""
        actor.require(PERMISSION)
        row = await store.report(conn, report_id, lock=lock)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("信息不存在", code="report_not_found")
        return row

    async def resubmit(self, actor: Actor, report_id: int, body: dict) -> dict:
        """退回修改 answered: the same report, edited, goes back to the level that returned it."""
        actor.require(PERMISSION)
        content = self._content(body)
        async with self._pool.acquire() as conn:
            row = await self._visible(conn, actor, report_id)
            if row["org_id"] != actor.org_id:
                raise Forbidden("只有报送单位可以修改后重新报送", code="not_submitter")
            level = await store.undecided(conn, report_id)
        if level is None or level["status"] != "returned":
            raise Conflict("该信息未被退回修改，不能重新报送", code="not_returned")

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            task = next((t for t in await item_store.tasks_of(conn, step.item["id"])
                         if t["status"] == "open" and t["node"] == "revise"), None)
            if task is None:
                raise Conflict("该信息未被退回修改，不能重新报送", code="not_returned")
            report = await store.report(conn, report_id, lock=True)
            await store.revise(conn, report_id, title=content["title"], body=content["body"],
                               category=content["category"], event_date=content["event_date"],
                               late=is_late(self._s, report["filed_at"], content["event_date"]),
                               now=step.now)
            await self._attach(conn, actor, report_id, content["pictures"])
            await self._ops.complete(conn, step, actor, task["id"], "pass",
                                     clean_opinion(body.get("note")), {"verdict": None})
            return {"audit": {"report": report_id, "round": report["round"] + 1}}

        await self._engine.run(actor, level["item_id"], body.get("version"), operation,
                               action="info_report.resubmit", module=MODULE_CODE)
        return await self.report(actor, report_id)

    # --- the reviewing union ----------------------------------------------------------------------
    async def _my_level(self, conn: asyncpg.Connection, actor: Actor, report_id: int) -> asyncpg.Record:
        await self._visible(conn, actor, report_id)
        level = await store.review_at(conn, report_id, actor.org_id)
        if level is None:
            raise Forbidden("该信息不是报送给本单位的，由受理报送的工会审核", code="not_addressee")
        return level

    async def review(self, actor: Actor, report_id: int, body: dict) -> dict:
        """采用, 退回修改 or 不采用 (these two with a reason) at the actor's union's level."""
        if not isinstance(body, dict):
            raise InvalidInput("请求格式有误", code="review_invalid")
        action = body.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            raise InvalidInput("审核结果应为 adopt（采用）、return（退回修改）或 reject（不采用）",
                               code="review_invalid")
        reason = clean_opinion(body.get("reason"), required=action != "adopt")
        async with self._pool.acquire() as conn:
            level = await self._my_level(conn, actor, report_id)

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            current = await store.review_at(conn, report_id, actor.org_id)
            if current["verdict"] is not None:
                raise Conflict(f"本级已审核过该信息（{STATUS_NAMES[current['verdict']]}），不能重复审核",
                               code="already_reviewed")
            open_review = [t for t in await item_store.tasks_of(conn, step.item["id"])
                           if t["status"] == "open" and t["node"] == "review"]
            if not open_review:
                raise Conflict("该信息已退回修改，等待报送单位重新报送", code="not_at_review")
            identities = await item_store.identities(conn, actor.id, step.now)
            task = next((t for t in open_review if holder(t, identities)), open_review[0])
            await self._ops.complete(conn, step, actor, task["id"],
                                     "pass" if action == "adopt" else "reject",
                                     None if action == "return" else reason, {"verdict": action})
            points = 0
            if action == "return":
                await self._engine.event(conn, step, "returned", opinion=reason,
                                         detail={"node": "revise", "step": REVISE_STEP})
            elif step.item["status"] == "closed":   # a 会签 (加签) settles with its last signer
                report = await store.report(conn, report_id)
                adopted = step.item["outcome"] == "adopted"
                points = points_for(self._s, current["level"], report["late"]) if adopted else 0
                await store.decide(conn, current["id"], verdict="adopted" if adopted else "not_adopted",
                                   reason=reason, points=points, cadre_id=actor.id, now=step.now)
            return {"audit": {"report": report_id, "points": points}}

        await self._engine.run(actor, level["item_id"], body.get("version"), operation,
                               action=f"info_report.{action}", module=MODULE_CODE)
        return await self.report(actor, report_id)

    async def pass_up(self, actor: Actor, report_id: int) -> dict:
        """上报: an adopted report goes to the union above the adopting one (a new review linked
        to the same report); from the province, it is recorded as sent to the national federation."""
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            report = await self._visible(conn, actor, report_id, lock=True)
            level = await store.review_at(conn, report_id, actor.org_id)
            if level is None:
                raise Forbidden("该信息不是报送给本单位的，由受理报送的工会上报", code="not_addressee")
            if level["verdict"] != "adopted":
                raise Conflict("本级采用后才能上报", code="not_adopted")
            if level["passed_up_at"] is not None:
                raise Conflict("该信息已上报", code="already_passed_up")
            upper = await self._addressee(conn, actor.org_id)
            if upper is None:
                await store.national_passed(conn, report_id, actor.id, now)
                to = "national"
            else:
                await self._open_level(conn, report_id, upper, from_org=report["org_id"],
                                       title=report["title"], by=actor.id)
                to = upper["id"]
            await store.passed_up(conn, level["id"], actor.id, now)
            await self._audit.acted(conn, actor, "info_report.pass_up", f"info_report:{report_id}",
                                    {"to": to})
        return await self.report(actor, report_id)

    async def national_adoption(self, actor: Actor, report_id: int, body: dict) -> dict:
        """The national federation adopted a report the province sent it: the province records it."""
        if "." in actor.org_path:
            raise Forbidden("全国总工会的采用情况由省总工会登记", code="province_only")
        note = clean_opinion(body.get("note") if isinstance(body, dict) else None)
        async with self._pool.acquire() as conn, conn.transaction():
            report = await self._visible(conn, actor, report_id, lock=True)
            if report["national_passed_at"] is None:
                raise Conflict("该信息尚未报送全国总工会", code="not_sent_national")
            if report["national_adopted_at"] is not None:
                raise Conflict("已登记过全国总工会采用", code="already_recorded")
            points = points_for(self._s, "national", report["late"])
            await store.national_adopted(conn, report_id, actor.id, points, note, self._now())
            await self._audit.acted(conn, actor, "info_report.national_adoption", f"info_report:{report_id}",
                                {"points": points})
        return await self.report(actor, report_id)

    # --- reading ----------------------------------------------------------------------------------
    @staticmethod
    def _level_view(row: asyncpg.Record) -> dict:
        return {"id": row["id"], "org_id": row["org_id"], "org_name": row["org_name"],
                "level": row["level"], "level_name": LEVEL_NAMES[row["level"]],
                "item_id": row["item_id"], "version": row["version"], "status": row["status"],
                "status_name": STATUS_NAMES[row["status"]], "reason": row["reason"],
                "points": row["points"], "opened_at": _iso(row["opened_at"]),
                "decided_at": _iso(row["decided_at"]), "decided_by": row["decided_by_name"],
                "passed_up_at": _iso(row["passed_up_at"])}

    def _view(self, actor: Actor, row: asyncpg.Record, levels: list[asyncpg.Record],
              pictures: list[asyncpg.Record], *, full: bool) -> dict:
        mine = next((lv for lv in levels if lv["org_id"] == actor.org_id), None)
        province = "." not in actor.org_path
        national = None
        if row["national_passed_at"] is not None:
            adopted = row["national_adopted_at"] is not None
            national = {"status": "adopted" if adopted else "pending",
                        "status_name": "已采用" if adopted else "已报送",
                        "passed_at": _iso(row["national_passed_at"]),
                        "adopted_at": _iso(row["national_adopted_at"]),
                        "points": row["national_points"], "note": row["national_note"]}
        last = levels[-1] if levels else None
        view = {
            "id": row["id"], "title": row["title"], "category": row["category"],
            "event_date": row["event_date"].isoformat(), "filed_at": _iso(row["filed_at"]),
            "updated_at": _iso(row["updated_at"]), "round": row["round"],
            "org_id": row["org_id"], "org_name": row["org_name"],
            "submitted_by": row["submitted_by_name"], "late": row["late"],
            "late_note": LATE_NOTE if row["late"] else None,
            "status": last["status"] if last else "pending",
            "status_name": (f"{last['org_name']}：{STATUS_NAMES[last['status']]}" if last else "待审核"),
            "points": sum(lv["points"] for lv in levels) + row["national_points"],
            "levels": [self._level_view(lv) for lv in levels], "national": national,
            "picture_count": len(pictures),
            "can": {
                "review": bool(mine and mine["status"] == "pending"),
                "resubmit": row["org_id"] == actor.org_id
                and any(lv["status"] == "returned" for lv in levels),
                "pass_up": bool(mine and mine["verdict"] == "adopted" and mine["passed_up_at"] is None),
                "national_adoption": province and national is not None and national["status"] == "pending"},
        }
        if full:
            view["body"] = row["body"]
            view["pictures"] = [{"id": p["id"], "url": media_url(p["page_key"]),
                                 "thumb_url": media_url(p["thumb_key"]), "width": p["width"],
                                 "height": p["height"]} for p in pictures]
        return view

    async def report(self, actor: Actor, report_id: int) -> dict:
        async with self._pool.acquire() as conn:
            row = await self._visible(conn, actor, report_id)
            levels = await store.reviews_of(conn, [report_id])
            pictures = await store.pictures_of(conn, [report_id])
        return self._view(actor, row, levels, pictures, full=True)

    async def listing(self, actor: Actor, box: str, *, open_only: bool = False, limit: int = 50,
                      offset: int = 0) -> dict:
        """``mine``: the union's own reports; ``desk``: reports sent to it for review."""
        actor.require(PERMISSION)
        if box not in {"mine", "desk"}:
            raise InvalidInput("box 应为 mine（本单位报送）或 desk（报送给本单位）", code="invalid_filter")
        limit, offset = max(1, min(limit, 200)), max(0, min(offset, 100_000))
        async with self._pool.acquire() as conn:
            rows = await (store.reports_of(conn, actor.org_id, limit, offset) if box == "mine"
                          else store.addressed_to(conn, actor.org_id, open_only, limit, offset))
            ids = [r["id"] for r in rows]
            levels = await store.reviews_of(conn, ids)
            pictures = await store.pictures_of(conn, ids)
        by_report: dict[int, list] = {}
        for lv in levels:
            by_report.setdefault(lv["report_id"], []).append(lv)
        shots: dict[int, list] = {}
        for p in pictures:
            shots.setdefault(p["report_id"], []).append(p)
        return {"box": box, "reports": [self._view(actor, r, by_report.get(r["id"], []),
                                                   shots.get(r["id"], []), full=False) for r in rows]}
