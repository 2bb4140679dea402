"""Proposals (提案办理) of a union's congress session (职代会 or 工代会).

The proposal committee (cadres of the session's union holding ``proposal.handle``) opens a
session with its window and roster of representatives. A representative submits a proposal
(title, reasons, measures) from WeChat within the window; other representatives second it
(附议). Once it has the session's number of seconders it becomes a work item of module
``proposal``: the committee files it (立案, giving it a number, a lead unit, helping units and
the time limit in working days), merges it into another (并案), or turns it into a suggestion
(转为意见建议) with a reason. Helping units give their opinions, the lead unit replies in writing
with a class (A solved, B planned, C not possible now, with reasons); the proposer rates the
reply, and 不满意 sends it back once for handling again. The session's report counts proposals
by class, the on-time rate and the satisfaction.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg

from wxbackend.infra.pii import PersonalData, normalise_phone
from wxbackend.infra.xlsx import Watermark, watermarked_xlsx
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step, clean_opinion, clean_text
from wxbackend.services.casework.modules import Module
from wxbackend.services.casework.operations import Operations
from wxbackend.services.casework.worklists import WorkLists
from wxbackend.services.clock import CHINA, Clock, china_now
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.identity.accounts import PHONE_COLUMN
from wxbackend.services.membership.membership import row_id
from wxbackend.store.casework import items as item_store
from wxbackend.store.casework import proposals as store

MODULE_CODE = "proposal"
PERMISSION = "proposal.handle"
KINDS = {"workers": "职工代表大会", "union": "工会会员代表大会"}
CLASSES = {"A": "已解决或采纳", "B": "列入计划逐步解决", "C": "因条件限制暂不能解决"}
RATINGS = {"satisfied": "满意", "basically": "基本满意", "dissatisfied": "不满意"}
STATUS_NAMES = {"seconding": "征集附议", "lapsed": "附议不足", "reviewing": "立案审查", "filed": "承办中",
                "merged": "已并案", "suggestion": "转为意见建议", "replied": "已答复", "closed": "已办结"}
MAX_REPRESENTATIVES = 2000

GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "review"},
    {"id": "review", "type": "task", "name": "立案审查", "assign": [{"role": "office"}],
     "deadline": {"count": 10, "unit": "working", "warn": 2, "escalate": 2}, "next": "filed"},
    {"id": "filed", "type": "exclusive", "branches": [
        {"when": "decision == 'reject'", "next": "not_filed"},
        {"when": "len(help_units) > 0", "next": "assist"},
        {"next": "reply"}]},
    {"id": "assist", "type": "task", "name": "协办意见", "sign": "all",
     "assign": [{"role": "union", "field": "help_units"}],
     "deadline": {"count": 15, "unit": "working", "warn": 3, "escalate": 2}, "next": "reply"},
    {"id": "reply", "type": "task", "name": "主办答复", "assign": [{"role": "union", "field": "lead_unit"}],
     "next": "replied"},
    {"id": "reprocess", "type": "task", "name": "重新办理", "entry": True,
     "assign": [{"role": "union", "field": "lead_unit"}],
     "deadline": {"count": 20, "unit": "working", "warn": 3, "escalate": 2},
     "item_deadline": {"count": 20, "unit": "working", "warn": 3, "escalate": 2}, "next": "replied"},
    {"id": "replied", "type": "end", "outcome": "replied"},
    {"id": "not_filed", "type": "end", "outcome": "not_filed"},
]}

PROPOSAL = Module(code=MODULE_CODE, name="提案办理", permission=PERMISSION, graph=GRAPH,
                  fields=frozenset({"help_units", "lead_unit"}), extension_days=20, extensions=1,
                  desk_nodes=frozenset({"review", "reply", "reprocess"}))


def _text(value: object, what: str, low: int, high: int) -> str:
    return clean_text(value, what, low=low, high=high, code="proposal_invalid")


def _moment(value: object, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{what}应为带时区的时间", code="session_invalid") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{what}应为带时区的时间", code="session_invalid")
    return moment


class Proposals:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, engine: Engine, ops: Operations,
                 lists: WorkLists, *, audit: AuditTrail, now: Clock = china_now) -> None:
        self._lists = lists
        self._pool = pool
        self._pii = pii
        self._engine = engine
        self._ops = ops
        self._audit = audit
        self._now = now

    # --- the committee: sessions and rosters ----------------------------------------------------
    async def create_session(self, actor: Actor, body: dict) -> dict:
        actor.require(PERMISSION)
        kind = body.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            raise InvalidInput("会议类别应为 workers（职代会）或 union（工代会）", code="session_invalid")
        name = _text(body.get("name"), "会议名称", 2, 80)
        opens = _moment(body.get("opens_at"), "征集开始时间")
        closes = _moment(body.get("closes_at"), "征集截止时间")
        if closes <= opens:
            raise InvalidInput("征集截止时间应晚于开始时间", code="session_invalid")
        seconders, reply_days = body.get("seconders", 2), body.get("reply_days", 40)
        for value, low, high, what in ((seconders, 0, 50, "附议人数"),
                                       (reply_days, 5, 120, "答复时限（工作日）")):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise InvalidInput(f"{what}应为 {low} 至 {high}", code="session_invalid")
        async with self._pool.acquire() as conn, conn.transaction():
            session_id = await store.insert_session(
                conn, org_id=actor.org_id, kind=kind, name=name, opens_at=opens, closes_at=closes,
                seconders=seconders, reply_days=reply_days, created_by=actor.id, now=self._now())
            await self._audit.acted(conn, actor, "proposal.session_create", f"congress:{session_id}")
        return await self.session(actor, session_id)

    async def _session(self, conn: asyncpg.Connection, actor: Actor, session_id: int) -> asyncpg.Record:
        actor.require(PERMISSION)
        row = await store.session(conn, session_id)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("会议不存在", code="session_not_found")
        return row

    async def sessions(self, actor: Actor) -> dict:
        actor.require(PERMISSION)
        async with self._pool.acquire() as conn:
            rows = await store.sessions_in(conn, actor.org_path)
        return {"sessions": [self._session_view(r) for r in rows]}

    def _session_view(self, row: asyncpg.Record) -> dict:
        now = self._now()
        return {"id": row["id"], "org_id": row["org_id"], "org_name": row["org_name"],
                "kind": row["kind"], "kind_name": KINDS[row["kind"]], "name": row["name"],
                "opens_at": row["opens_at"].isoformat(), "closes_at": row["closes_at"].isoformat(),
                "open": row["opens_at"] <= now < row["closes_at"], "seconders": row["seconders"],
                "reply_days": row["reply_days"], "representatives": row["representatives"],
                "proposals": row["proposals"]}

    async def session(self, actor: Actor, session_id: int) -> dict:
        async with self._pool.acquire() as conn:
            row = await self._session(conn, actor, session_id)
            proposals = await store.proposals_of(conn, session_id)
            roster = await store.representatives(conn, session_id)
        return {**self._session_view(row),
                "roster": [{"account_id": r["account_id"], "name": r["name"], "delegation": r["delegation"]}
                           for r in roster],
                "proposal_list": [self._proposal_view(p) for p in proposals],
                "report": self._report(proposals)}

    async def add_representatives(self, actor: Actor, session_id: int, body: dict) -> dict:
        """The roster, by name and registered phone: a representative follows the session in
        the Mini Program or the H5 pages with the account that phone belongs to."""
        people = body.get("representatives")
        if not isinstance(people, list) or not 1 <= len(people) <= 500:
            raise InvalidInput("请提供 1 至 500 名代表", code="roster_invalid")
        cleaned = []
        for n, person in enumerate(people, 1):
            if not isinstance(person, dict):
                raise InvalidInput(f"第 {n} 名代表的格式有误", code="roster_invalid")
            name = _text(person.get("name"), f"第 {n} 名代表的姓名", 1, 40)
            phone = normalise_phone(str(person.get("phone", "")))
            if phone is None:
                raise InvalidInput(f"第 {n} 名代表（{name}）的手机号无效", code="roster_invalid")
            delegation = person.get("delegation") or ""
            if not isinstance(delegation, str) or len(delegation) > 40:
                raise InvalidInput(f"第 {n} 名代表的代表团名称过长", code="roster_invalid")
            cleaned.append((name, self._pii.blind_index(phone, PHONE_COLUMN), delegation, phone))
        async with self._pool.acquire() as conn, conn.transaction():
            await self._session(conn, actor, session_id)
            if await store.roster_size(conn, session_id) + len(cleaned) > MAX_REPRESENTATIVES:
                raise InvalidInput(f"代表名单不超过 {MAX_REPRESENTATIVES} 人", code="roster_invalid")
            for name, bidx, delegation, phone in cleaned:
                account = await store.account_by_phone(conn, bidx)
                if account is None:
                    raise InvalidInput(f"{name}（{phone[:3]}****{phone[-4:]}）尚未在川工之家注册，请其先注册",
                                       code="representative_unregistered")
                await store.add_representative(conn, session_id, account, name, delegation, self._now())
            await self._audit.acted(conn, actor, "proposal.roster", f"congress:{session_id}",
                                {"added": len(cleaned)})
        return await self.session(actor, session_id)

    # --- representatives -------------------------------------------------------------------------
    async def my_sessions(self, account_id: int) -> dict:
        async with self._pool.acquire() as conn:
            rows = await store.sessions_of_account(conn, account_id)
        return {"sessions": [self._session_view(r) for r in rows]}

    async def _representative(self, conn: asyncpg.Connection, account_id: int,
                              session_id: int) -> tuple[asyncpg.Record, asyncpg.Record]:
        session = await store.session(conn, session_id)
        me = await store.representative(conn, session_id, account_id) if session else None
        if session is None or me is None:
            raise NotFound("您不是该次会议的代表", code="not_representative")
        return session, me

    def _window(self, session: asyncpg.Record) -> None:
        now = self._now()
        if now < session["opens_at"]:
            raise Conflict("提案征集尚未开始", code="window_not_open")
        if now >= session["closes_at"]:
            raise Conflict("提案征集已截止", code="window_closed")

    async def session_proposals(self, account_id: int, session_id: int) -> dict:
        async with self._pool.acquire() as conn:
            session, _ = await self._representative(conn, account_id, session_id)
            rows = await store.proposals_of(conn, session_id)
            seconded = await store.seconded_by(conn, session_id, account_id)
        return {"session": self._session_view(session),
                "proposals": [self._proposal_view(r) | {"mine": r["account_id"] == account_id,
                                                        "seconded": r["id"] in seconded}
                              for r in rows]}

    async def submit(self, account_id: int, session_id: int, body: dict) -> dict:
        title = _text(body.get("title"), "提案标题", 4, 80)
        reasons = _text(body.get("reasons"), "案由", 10, 3000)
        measures = _text(body.get("measures"), "建议措施", 10, 3000)
        async with self._pool.acquire() as conn, conn.transaction():
            session, me = await self._representative(conn, account_id, session_id)
            self._window(session)
            proposal_id = await store.insert_proposal(
                conn, session_id=session_id, account_id=account_id, proposer=me["name"], title=title,
                reasons=reasons, measures=measures, now=self._now())
            if session["seconders"] == 0:
                await self._to_review(conn, session, proposal_id)
        return await self.worker_view(account_id, proposal_id)

    async def second(self, account_id: int, proposal_id: int) -> dict:
        async with self._pool.acquire() as conn, conn.transaction():
            proposal = await store.proposal(conn, proposal_id, lock=True)
            if proposal is None:
                raise NotFound("提案不存在", code="proposal_not_found")
            session, me = await self._representative(conn, account_id, proposal["session_id"])
            self._window(session)
            if proposal["account_id"] == account_id:
                raise Conflict("不能附议自己的提案", code="own_proposal")
            if proposal["status"] != "seconding":
                raise Conflict("该提案已进入立案审查，无需再附议", code="seconding_over")
            if not await store.add_seconder(conn, proposal_id, account_id, me["name"], self._now()):
                raise Conflict("您已附议过该提案", code="already_seconded")
            if await store.seconder_count(conn, proposal_id) >= session["seconders"]:
                await self._to_review(conn, session, proposal_id)
        return await self.worker_view(account_id, proposal_id)

    async def _to_review(self, conn: asyncpg.Connection, session: asyncpg.Record, proposal_id: int) -> None:
        """Enough seconders: the committee's review starts (a work item of the session's union)."""
        proposal = await store.proposal(conn, proposal_id)
        step = await self._engine.start(conn, MODULE_CODE, org_id=session["org_id"],
                                        title=proposal["title"][:200],
                                        data={"help_units": [], "lead_unit": None},
                                        submitter_account_id=proposal["account_id"])
        await store.set_item(conn, proposal_id, step.item["id"])

    async def lapse(self) -> int:
        """Proposals still short of seconders when the window closed lapse (附议不足)."""
        async with self._pool.acquire() as conn:
            return await store.lapse(conn, self._now())

    def _proposal_view(self, row: asyncpg.Record) -> dict:
        return {"id": row["id"], "session_id": row["session_id"], "number": row["number"],
                "title": row["title"], "proposer": row["proposer"], "reasons": row["reasons"],
                "measures": row["measures"], "status": row["status"],
                "status_name": STATUS_NAMES[row["status"]], "item_id": row["item_id"],
                "seconders": row["seconder_names"] or [], "class": row["class"],
                "class_name": CLASSES.get(row["class"]), "reply": row["reply"],
                "replied_at": row["replied_at"].isoformat() if row["replied_at"] else None,
                "rating": row["rating"], "rating_name": RATINGS.get(row["rating"]),
                "reason": row["reason"], "merged_into": row["merged_into"],
                "submitted_at": row["submitted_at"].isoformat(),
                "due_at": row["due_at"].isoformat() if row["due_at"] else None,
                "on_time": row["on_time"]}

    async def worker_view(self, account_id: int, proposal_id: int) -> dict:
        async with self._pool.acquire() as conn:
            row = await store.proposal(conn, proposal_id)
            if row is None or await store.representative(conn, row["session_id"], account_id) is None:
                raise NotFound("提案不存在", code="proposal_not_found")
        return self._proposal_view(row) | {"mine": row["account_id"] == account_id,
                                           "can_rate": row["account_id"] == account_id
                                           and row["status"] == "replied" and row["ratings"] < row["replies"]}

    async def rate(self, account_id: int, proposal_id: int, body: dict) -> dict:
        rating = body.get("rating") if isinstance(body, dict) else None
        if not isinstance(rating, str) or rating not in RATINGS:
            raise InvalidInput("评价应为满意、基本满意或不满意", code="invalid_rating")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.proposal(conn, proposal_id, lock=True)
            if row is None or row["item_id"] is None:
                raise NotFound("提案不存在", code="proposal_not_found")
            if row["account_id"] != account_id:
                raise Forbidden("只有提案人可以评价答复", code="not_proposer")
            if row["status"] != "replied" or row["ratings"] >= row["replies"]:
                raise Conflict("答复后才能评价，每次答复评价一次", code="cannot_rate")
            step = await self._engine.load(conn, row["item_id"], account_id=account_id, module=MODULE_CODE)
            await store.rated(conn, proposal_id, rating)
            await self._engine.event(conn, step, "rated", detail={"rating": rating})
            if rating == "dissatisfied" and not row["reopened"]:
                await store.reopened(conn, proposal_id)
                await self._engine.reopen(conn, step, "reprocess", opinion="提案人对答复不满意，重新办理")
            else:
                await store.set_status(conn, proposal_id, "closed")
            await self._engine.save(conn, step)
        return await self.worker_view(account_id, proposal_id)

    async def desk_view(self, actor: Actor, item_id: int) -> dict:
        """The item page of a proposal, with the proposal itself, for the committee and units."""
        view = await self._lists.item(actor, item_id)
        if view["module"] != MODULE_CODE:
            raise NotFound("提案不存在", code="proposal_not_found")
        async with self._pool.acquire() as conn:
            row = await store.by_item(conn, item_id)
        view["proposal"] = self._proposal_view(row)
        return view

    # --- the committee and the units --------------------------------------------------------------
    async def file(self, actor: Actor, proposal_id: int, body: dict) -> dict:
        """立案 (with the lead and helping units), 并案 into another proposal, or 转为意见建议."""
        action = body.get("action")
        if not isinstance(action, str) or action not in {"file", "merge", "suggest"}:
            raise InvalidInput("处理方式应为 file（立案）、merge（并案）或 suggest（转为意见建议）",
                               code="filing_invalid")
        async with self._pool.acquire() as conn:
            row = await store.proposal(conn, proposal_id)
        if row is None or row["item_id"] is None:
            raise NotFound("提案不存在或尚在征集附议", code="proposal_not_found")

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            proposal = await store.proposal(conn, proposal_id, lock=True)
            session = await store.session(conn, proposal["session_id"])
            task = next((t for t in await item_store.tasks_of(conn, step.item["id"])
                         if t["status"] == "open"), None)
            if proposal["status"] != "reviewing" or task is None:
                raise Conflict("该提案已处理", code="item_moved")
            if action == "file":
                lead = await self._unit(conn, actor, body.get("lead_unit"), session)
                helpers = body.get("help_units") or []
                if not isinstance(helpers, list) or len(helpers) > 10:
                    raise InvalidInput("协办单位最多 10 个", code="filing_invalid")
                help_ids = [(await self._unit(conn, actor, h, session))["id"] for h in helpers]
                if lead["id"] in help_ids or len(set(help_ids)) != len(help_ids):
                    raise InvalidInput("主办单位与协办单位不能重复", code="filing_invalid")
                number = await store.next_number(conn, proposal["session_id"])
                await store.filed(conn, proposal_id, number)
                await self._ops.complete(conn, step, actor, task["id"], "pass",
                                         clean_opinion(body.get("opinion")),
                                         {"lead_unit": lead["id"], "help_units": help_ids})
                await self._engine.set_item_deadline(
                    conn, step, {"count": session["reply_days"], "unit": "working", "warn": 5, "escalate": 3})
                return {"audit": {"number": number, "lead": lead["id"], "help": help_ids}}
            reason = clean_opinion(body.get("reason"), required=True)
            merged_into = None
            if action == "merge":
                target = await store.proposal(conn, row_id(body.get("into")) or 0)
                if target is None or target["session_id"] != proposal["session_id"] \
                        or target["id"] == proposal_id \
                        or target["status"] not in {"filed", "replied", "closed"}:
                    raise InvalidInput("只能并入本次会议已立案的提案", code="filing_invalid")
                merged_into = target["id"]
            await store.not_filed(conn, proposal_id, "merged" if action == "merge" else "suggestion",
                                  reason, merged_into)
            await self._ops.complete(conn, step, actor, task["id"], "reject", reason)
            return {"audit": {"action": action, "into": merged_into}}

        return await self._engine.run(actor, row["item_id"], body.get("version"), operation,
                                      action=f"proposal.{action}", module=MODULE_CODE)

    async def _unit(self, conn: asyncpg.Connection, actor: Actor, value: object,
                    session: asyncpg.Record) -> asyncpg.Record:
        org = await item_store.org(conn, row_id(value) or 0)
        if org is None:
            raise InvalidInput("请选择承办单位", code="filing_invalid")
        if not (org["path"] == session["org_path"] or org["path"].startswith(session["org_path"] + ".")):
            raise Forbidden("承办单位应为本会议所属工会及其下级", code="outside_subtree")
        return org

    async def reply(self, actor: Actor, proposal_id: int, body: dict) -> dict:
        """The lead unit's written reply with its class; C needs the reasons."""
        text = _text(body.get("reply"), "答复内容", 10, 5000)
        cls = body.get("class")
        if not isinstance(cls, str) or cls not in CLASSES:
            raise InvalidInput("答复类别应为 A、B 或 C", code="reply_invalid")
        async with self._pool.acquire() as conn:
            row = await store.proposal(conn, proposal_id)
        if row is None or row["item_id"] is None:
            raise NotFound("提案不存在", code="proposal_not_found")

        async def operation(conn: asyncpg.Connection, step: Step) -> dict:
            task = await self._ops.task_at(conn, step, body.get("task_id"), {"reply", "reprocess"},
                                           "尚未到主办单位答复的环节")
            await store.replied(conn, proposal_id, cls, text, step.now)
            await self._engine.event(conn, step, "replied", detail={"class": cls})
            await self._ops.complete(conn, step, actor, task["id"], "pass",
                                     clean_opinion(body.get("opinion")))
            return {"audit": {"class": cls}}

        return await self._engine.run(actor, row["item_id"], body.get("version"), operation,
                                      action="proposal.reply", module=MODULE_CODE)

    # --- the session's report -------------------------------------------------------------------
    def _report(self, rows: list[asyncpg.Record]) -> dict:
        filed = [r for r in rows if r["number"] is not None]
        replied = [r for r in filed if r["replied_at"] is not None]
        rated = [r for r in filed if r["rating"]]
        return {
            "submitted": len(rows), "lapsed": sum(r["status"] == "lapsed" for r in rows),
            "filed": len(filed), "merged": sum(r["status"] == "merged" for r in rows),
            "suggestions": sum(r["status"] == "suggestion" for r in rows),
            "by_class": {c: sum(r["class"] == c for r in replied) for c in CLASSES},
            "replied": len(replied), "on_time": sum(bool(r["on_time"]) for r in replied),
            "on_time_rate": round(sum(bool(r["on_time"]) for r in replied) / len(filed), 4)
            if filed else None,
            "rated": len(rated),
            "satisfaction_rate": round(sum(r["rating"] in {"satisfied", "basically"} for r in rated)
                                       / len(rated), 4) if rated else None}

    async def report_xlsx(self, actor: Actor, session_id: int) -> tuple[bytes, str]:
        """The session's report as a workbook: every proposal, then the counts."""
        view = await self.session(actor, session_id)
        report = view["report"]
        rows: list[list] = [[p["number"], p["title"], p["proposer"], "、".join(p["seconders"]),
                             p["status_name"], p["class"], p["replied_at"],
                             "是" if p["on_time"] else ("否" if p["replied_at"] else ""), p["rating_name"]]
                            for p in view["proposal_list"]]
        rows += [[], ["汇总"], ["提交提案", report["submitted"]], ["附议不足", report["lapsed"]],
                 ["立案", report["filed"]], ["并案", report["merged"]],
                 ["转为意见建议", report["suggestions"]],
                 *[[f"{c} 类（{name}）", report["by_class"][c]] for c, name in CLASSES.items()],
                 ["已答复", report["replied"]], ["按时答复", report["on_time"]],
                 ["按时答复率", report["on_time_rate"]], ["满意率", report["satisfaction_rate"]]]
        now = self._now().astimezone(CHINA)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._audit.acted(conn, actor, "proposal.report_export", f"congress:{session_id}")
        data = await asyncio.get_running_loop().run_in_executor(None, lambda: watermarked_xlsx(
            title=f"{view['name']} 提案办理情况", sheet="提案",
            header=["案号", "标题", "提案人", "附议人", "状态", "类别", "答复时间", "按时", "评价"],
            rows=rows, watermark=Watermark(actor.username, now.strftime("%Y-%m-%d %H:%M"))))
        return data, f"{view['name']}提案办理情况-{now:%Y%m%d}.xlsx"
