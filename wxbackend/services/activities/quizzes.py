"""Online quizzes (线上答题): a cadre writes the question bank and the rules of a round; a worker
answers rounds of questions drawn at random from the bank, against a time limit and a number of
rounds per day; passing a round is what lets the worker sign up for the item (a quiz-gated draw
or claim, see :mod:`wxbackend.services.activities.gates`).

What a worker is sent never holds the answers before the round is handed in; each round shows
the options of each question in its own order, and is scored against that order. The bank is
fixed once the sign-up window opens, so every worker answers the same bank.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from wxbackend.services.activities.catalogue import Catalogue, fixed_once_open, window_refusal
from wxbackend.services.activities.item_forms import invalid, text_field, whole_number
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, InvalidInput, NotFound
from wxbackend.store.activities import offerings as offerings_store
from wxbackend.store.activities import quizzes as store

MAX_QUESTIONS = 500
# A hand-in this long after the time limit still counts: the phone's last tap was on time.
LATE_GRACE = timedelta(seconds=10)
HISTORY = 20
BY_UNION_LIMIT = 100
_RULES = {"per_round": ("每轮题数", 1, 50, 6), "pass_mark": ("及格题数", 1, 50, None),
          "round_seconds": ("每轮限时（秒）", 30, 7200, 600),
          "rounds_per_day": ("每人每日答题次数", 1, 100, 3),
          "rounds_total": ("每人答题总次数", 1, 1000, None)}


def clean_question(raw: object, n: int) -> dict:
    where = f"第 {n} 题"
    if not isinstance(raw, dict):
        raise invalid(f"{where}格式有误")
    prompt = text_field(raw.get("prompt"), f"{where}的题干", 300)
    options = raw.get("options")
    if not isinstance(options, list) or not 2 <= len(options) <= 8:
        raise invalid(f"{where}应有 2–8 个选项")
    options = [text_field(o, f"{where}的选项", 100) for o in options]
    if len(set(options)) != len(options):
        raise invalid(f"{where}的选项有重复")
    answer = raw.get("answer")
    if not isinstance(answer, list) or not answer or any(
            not isinstance(a, int) or isinstance(a, bool) or not 0 <= a < len(options) for a in answer):
        raise invalid(f"{where}的正确答案应为选项序号（从 0 开始）")
    answer = sorted(set(answer))
    multiple = raw.get("multiple", len(answer) > 1)
    if not isinstance(multiple, bool) or (not multiple and len(answer) > 1):
        raise invalid(f"{where}是单选题，只能有一个正确答案")
    return {"prompt": prompt, "options": options, "answer": answer, "multiple": multiple,
            "explanation": text_field(raw.get("explanation"), f"{where}的解析", 500, required=False)}


def clean_quiz(body: dict) -> tuple[dict, list[dict]]:
    """The rules and the bank of a quiz document, checked together."""
    rules: dict = {}
    for name, (label, low, high, default) in _RULES.items():
        value = body.get(name, default)
        rules[name] = None if value is None else whole_number(value, label, low, high)
    if rules["pass_mark"] is None:
        rules["pass_mark"] = -(-rules["per_round"] * 6 // 10)  # 60 %, rounded up
    if rules["pass_mark"] > rules["per_round"]:
        raise invalid("及格题数不能多于每轮题数")
    if rules["rounds_total"] is not None and rules["rounds_total"] < rules["rounds_per_day"]:
        raise invalid("每人答题总次数不能少于每日次数")
    for name, default in (("show_answers", True), ("pass_daily", False)):
        value = body.get(name, default)
        if not isinstance(value, bool):
            raise invalid(f"{name} 应为 true 或 false")
        rules[name] = value
    raw = body.get("questions")
    if not isinstance(raw, list) or not raw:
        raise invalid("请至少添加一道题")
    if len(raw) > MAX_QUESTIONS:
        raise invalid(f"题库最多 {MAX_QUESTIONS} 道题")
    questions = [clean_question(q, n) for n, q in enumerate(raw, start=1)]
    if len(questions) < rules["per_round"]:
        raise invalid(f"题库只有 {len(questions)} 道题，少于每轮题数 {rules['per_round']}")
    return rules, questions


def _rules_view(rules: asyncpg.Record | dict) -> dict:
    return {name: rules[name] for name in store.RULES}


def _state(row: asyncpg.Record, now: datetime) -> str:
    if row["submitted_at"] is not None:
        return "passed" if row["passed"] else "failed"
    return "answering" if now <= row["due_at"] + LATE_GRACE else "expired"


_STATE_NAMES = {"passed": "已通过", "failed": "未通过", "answering": "答题中", "expired": "超时未交卷"}


class Quizzes:
    def __init__(self, pool: asyncpg.Pool, catalogue: Catalogue, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now,
                 rng: random.Random | None = None) -> None:
        self._pool = pool
        self._catalogue = catalogue
        self._audit = audit
        self._now = now
        self._rng = rng or secrets.SystemRandom()

    # --- cadres ------------------------------------------------------------------------------
    async def save(self, actor: Actor, offering_id: int, body: dict) -> dict:
        """Sets a quiz item's rules and whole bank (until its sign-up window opens)."""
        if not isinstance(body, dict):
            raise invalid("提交的内容格式有误")
        rules, questions = clean_quiz(body)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._catalogue.owned_content(conn, actor, offering_id, "quiz")
            await store.replace(conn, offering_id, rules, questions)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=row["org_id"], action="activity.quiz",
                                     target=f"offering:{offering_id}",
                                     detail={"questions": len(questions), **rules}, ip=actor.ip)
        return await self.manage_get(actor, offering_id)

    async def manage_get(self, actor: Actor, offering_id: int) -> dict:
        """The quiz as its organiser sees it: rules and bank with the answers."""
        async with self._pool.acquire() as conn:
            row = await self._catalogue.owned(conn, actor, offering_id)
            rules = await store.rules(conn, offering_id)
            bank = await store.questions(conn, offering_id)
        return {"offering_id": offering_id, "editable": fixed_once_open(row, self._now()) is None,
                "rules": _rules_view(rules) if rules else None,
                "questions": [{"id": q["id"], "prompt": q["prompt"], "options": list(q["options"]),
                               "answer": list(q["answer"]), "multiple": q["multiple"],
                               "explanation": q["explanation"]} for q in bank]}

    async def stats(self, actor: Actor, offering_id: int) -> dict:
        """Participation, pass rate, average score, each question's accuracy and the unions
        directly under the organiser ranked by participants."""
        async with self._pool.acquire() as conn:
            row = await self._catalogue.owned(conn, actor, offering_id)
            totals = await store.stats(conn, offering_id)
            accuracy = await store.accuracy(conn, offering_id)
            units = await store.by_union(conn, offering_id, row["org_path"], BY_UNION_LIMIT)
        participants = totals["participants"]
        return {
            "participants": participants, "rounds": totals["rounds"],
            "passed_workers": totals["passed_workers"], "passed_rounds": totals["passed_rounds"],
            "pass_rate": round(totals["passed_workers"] / participants, 4) if participants else None,
            "average_score": round(float(totals["average_score"]), 2)
            if totals["average_score"] is not None else None,
            "questions": [{"id": q["id"], "position": q["position"], "prompt": q["prompt"],
                           "answered": q["answered"], "answered_right": q["answered_right"],
                           "accuracy": round(q["answered_right"] / q["answered"], 4)
                           if q["answered"] else None}
                          for q in accuracy],
            "by_union": [{"org_id": u["org_id"], "name": u["name"], "participants": u["participants"],
                          "passed": u["passed"], "rounds": u["rounds"]} for u in units],
        }

    # --- workers -----------------------------------------------------------------------------
    async def _open_item(self, account_id: int, offering_id: int) -> dict:
        """A published quiz whose window is open, to a worker it is open to."""
        item = await self._catalogue.published_of_form(offering_id, "quiz")
        refused = window_refusal(item, self._now(), "答题已结束")
        if refused is not None:
            raise refused
        await self._catalogue.require_eligible(item, account_id)
        return item

    async def view(self, account_id: int, offering_id: int) -> dict:
        """The rules, what the worker has left today, the round under way and past results."""
        await self._catalogue.published_of_form(offering_id, "quiz")
        now = self._now()
        async with self._pool.acquire() as conn:
            rules = await store.rules(conn, offering_id)
            rounds = await store.rounds_of(conn, offering_id, account_id)
            current = next((r for r in rounds if _state(r, now) == "answering"), None)
            shown = await self._shown(conn, current) if current else None
        if rules is None:
            raise NotFound("未找到该答题活动", code="item_not_found")
        today = sum(1 for r in rounds if r["china_day"] == now.date())
        left_today = rules["rounds_per_day"] - today
        if rules["rounds_total"] is not None:
            left_today = min(left_today, rules["rounds_total"] - len(rounds))
        scores = [r["score"] for r in rounds if r["score"] is not None]
        passed = any(r["passed"] and (not rules["pass_daily"] or r["china_day"] == now.date())
                     for r in rounds)
        return {"offering_id": offering_id, "rules": _rules_view(rules),
                "rounds_left_today": max(0, left_today), "rounds_used": len(rounds),
                "best_score": max(scores) if scores else None, "passed": passed,
                "current": self._round_view(current, shown, rules, now) if current else None,
                "history": [{"id": r["id"], "started_at": r["started_at"].isoformat(),
                             "state": _state(r, now), "state_name": _STATE_NAMES[_state(r, now)],
                             "score": r["score"]} for r in rounds[-HISTORY:]][::-1]}

    async def start(self, account_id: int, offering_id: int) -> dict:
        """A new round of ``per_round`` questions drawn from the bank, or the round still under
        way (a reload does not spend a round, nor show a second set of questions)."""
        await self._open_item(account_id, offering_id)
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            await offerings_store.lock_worker(conn, offering_id, account_id)
            rules = await store.rules(conn, offering_id)
            if rules is None:
                raise NotFound("未找到该答题活动", code="item_not_found")
            rounds = await store.rounds_of(conn, offering_id, account_id)
            current = next((r for r in rounds if _state(r, now) == "answering"), None)
            if current is None:
                if sum(1 for r in rounds if r["china_day"] == now.date()) >= rules["rounds_per_day"]:
                    raise Conflict(f"今日答题次数已用完（每日 {rules['rounds_per_day']} 次），明天再来吧",
                                   code="rounds_used_today")
                if rules["rounds_total"] is not None and len(rounds) >= rules["rounds_total"]:
                    raise Conflict(f"答题次数已用完（共 {rules['rounds_total']} 次）", code="rounds_used")
                bank = await store.questions(conn, offering_id)
                picked = self._rng.sample(bank, rules["per_round"])
                shown = []
                for q in picked:
                    order = list(range(len(q["options"])))
                    self._rng.shuffle(order)
                    shown.append({"q": q["id"], "order": order})
                current = await store.start_round(
                    conn, offering_id=offering_id, account_id=account_id, day=now.date(), shown=shown,
                    now=now, due=now + timedelta(seconds=rules["round_seconds"]))
            questions = await self._shown(conn, current)
        return self._round_view(current, questions, rules, now)

    async def submit(self, account_id: int, round_id: int, answers: object) -> dict:
        """Hands in a round: ``answers[i]`` lists the options chosen for the i-th question, by
        their place as shown. A round is scored once; handing it in again answers the same."""
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.get_round(conn, round_id, lock=True)
            if row is None or row["account_id"] != account_id:
                raise NotFound("未找到该轮答题", code="round_not_found")
            rules = await store.rules(conn, row["offering_id"])
            questions = await self._shown(conn, row)
            if row["submitted_at"] is None:
                if _state(row, now) == "expired":
                    raise Conflict("已超过答题时限，本轮不计分", code="round_expired")
                chosen = _clean_answers(answers, questions)
                marks = [sorted(o[d] for d in c) == sorted(q["answer"])
                         for c, (q, o) in zip(chosen, questions, strict=True)]
                row = await store.finish_round(conn, round_id, answers=chosen, marks=marks,
                                               passed=sum(marks) >= rules["pass_mark"], now=now)
        return self._round_view(row, questions, rules, now)

    async def _shown(self, conn: asyncpg.Connection, row: asyncpg.Record) -> list[tuple]:
        """The round's questions with the order their options were shown in."""
        shown = row["shown"]
        bank = await store.questions_by_id(conn, [s["q"] for s in shown])
        return [(bank[s["q"]], s["order"]) for s in shown]

    @staticmethod
    def _round_view(row: asyncpg.Record, questions: list[tuple], rules: asyncpg.Record,
                    now: datetime) -> dict:
        state = _state(row, now)
        out = {"id": row["id"], "offering_id": row["offering_id"], "state": state,
               "state_name": _STATE_NAMES[state], "started_at": row["started_at"].isoformat(),
               "due_at": row["due_at"].isoformat(),
               "seconds_left": max(0, int((row["due_at"] - now).total_seconds())),
               "pass_mark": rules["pass_mark"], "score": row["score"], "passed": row["passed"],
               "questions": [{"prompt": q["prompt"], "multiple": q["multiple"],
                              "options": [q["options"][i] for i in order]} for q, order in questions]}
        if row["submitted_at"] is not None:
            marked = zip(out["questions"], questions, row["answers"], row["marks"], strict=True)
            for view, (q, order), mine, right in marked:
                view.update(chosen=mine, right=right)
                if rules["show_answers"]:
                    view.update(answer=sorted(order.index(a) for a in q["answer"]),
                                explanation=q["explanation"])
        return out


def _clean_answers(answers: object, questions: list[tuple]) -> list[list[int]]:
    if not isinstance(answers, list) or len(answers) != len(questions):
        raise InvalidInput(f"答案应为 {len(questions)} 题的选项列表", code="invalid_answers")
    out = []
    for n, (given, (q, _order)) in enumerate(zip(answers, questions, strict=True), start=1):
        if given is None:
            given = []
        if not isinstance(given, list) or any(not isinstance(a, int) or isinstance(a, bool)
                                              or not 0 <= a < len(q["options"]) for a in given):
            raise InvalidInput(f"第 {n} 题的答案有误", code="invalid_answers")
        given = sorted(set(given))
        if not q["multiple"] and len(given) > 1:
            raise InvalidInput(f"第 {n} 题是单选题，只能选一个", code="invalid_answers")
        out.append(given)
    return out
