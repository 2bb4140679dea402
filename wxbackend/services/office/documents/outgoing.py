"""Outgoing documents (发文), module ``document_out``.

拟稿 (the drafter) → 核稿 (the union's office) → 会签 (the departments the document names, every
one of them) → 签发 (the union's principal for important and upward documents, 重要公文和上行文
由主要负责人签发; any cadre of the office otherwise) → 复核 → 编号 (the number is drawn here) →
用印 → 分发 (each recipient union gets the document in its incoming queue) → 归档. A check,
countersignature, signature or recheck that does not pass sends the draft back to its drafter.

Who is the principal: each union names one in its document settings (``document_offices``); it
is copied into the item when the draft is submitted, so the signature waits on that person (or
the proxy they named for a leave, 委托) and nobody else.
"""

from __future__ import annotations

import asyncpg

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Step, clean_opinion
from wxbackend.services.casework.modules import Module
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office.documents import numbers
from wxbackend.services.office.documents.steps import PERMISSION, StepDesk
from wxbackend.store.office import documents as store

MODULE_CODE = "document_out"
MAX_RECIPIENTS = 2000

GRAPH = {"nodes": [
    {"id": "start", "type": "start", "next": "draft"},
    {"id": "draft", "type": "task", "name": "拟稿", "assign": [{"role": "submitter"}], "next": "check"},
    {"id": "check", "type": "task", "name": "核稿", "assign": [{"role": "office"}], "next": "checked"},
    {"id": "checked", "type": "exclusive", "branches": [
        {"when": "decision == 'reject'", "next": "draft"},
        {"when": "len(countersign) > 0", "next": "countersign"},
        {"next": "to_sign"}]},
    {"id": "countersign", "type": "task", "name": "会签", "sign": "all",
     "assign": [{"role": "departments", "field": "countersign"}], "next": "countersigned"},
    {"id": "countersigned", "type": "exclusive", "branches": [
        {"when": "decision == 'reject'", "next": "draft"}, {"next": "to_sign"}]},
    {"id": "to_sign", "type": "exclusive", "branches": [
        {"when": "principal_required", "next": "sign_principal"}, {"next": "sign"}]},
    {"id": "sign_principal", "type": "task", "name": "签发",
     "assign": [{"role": "principal", "field": "principal"}], "next": "signed"},
    {"id": "sign", "type": "task", "name": "签发", "assign": [{"role": "office"}], "next": "signed"},
    {"id": "signed", "type": "exclusive", "branches": [
        {"when": "decision == 'reject'", "next": "draft"}, {"next": "recheck"}]},
    {"id": "recheck", "type": "task", "name": "复核", "assign": [{"role": "office"}], "next": "rechecked"},
    {"id": "rechecked", "type": "exclusive", "branches": [
        {"when": "decision == 'reject'", "next": "draft"}, {"next": "number"}]},
    {"id": "number", "type": "task", "name": "编号", "assign": [{"role": "office"}], "next": "seal"},
    {"id": "seal", "type": "task", "name": "用印", "assign": [{"role": "office"}], "next": "distribute"},
    {"id": "distribute", "type": "task", "name": "分发", "assign": [{"role": "office"}], "next": "archive"},
    {"id": "archive", "type": "task", "name": "归档", "assign": [{"role": "office"}], "next": "archived"},
    {"id": "archived", "type": "end", "outcome": "archived"},
]}

OUTGOING = Module(code=MODULE_CODE, name="发文办理", permission=PERMISSION, graph=GRAPH,
                  fields=frozenset({"countersign", "principal_required", "principal"}),
                  desk_nodes=frozenset({"draft", "sign", "sign_principal", "number", "seal",
                                        "distribute"}))


def principal_required(doc: asyncpg.Record | dict) -> bool:
    return bool(doc["important"]) or doc["flow"] == "up"


class OutgoingDesk(StepDesk):
    """The steps of an outgoing document that carry its own record; the others (核稿, 会签,
    复核, 归档) are the engine's 通过 / 不通过."""

    async def submit(self, conn: asyncpg.Connection, step: Step, actor: Actor, doc: asyncpg.Record,
                     body: dict) -> dict:
        """拟稿 done: the draft goes to 核稿, with the departments to countersign and, for an
        important or upward document, the principal who must sign it."""
        task, _ = await self.task(conn, step, actor, {"draft"}, body, "该公文已送审，不在拟稿环节")
        countersign = list(doc["countersign"])
        if countersign:
            staffed = await store.staffed_departments(conn, doc["org_id"], countersign, PERMISSION)
            missing = [d for d in countersign if d not in staffed]
            if missing:
                raise InvalidInput(f"会签部门“{'、'.join(missing)}”没有可办理公文的干部，请调整会签部门",
                                   code="department_unstaffed")
        principal = None
        if principal_required(doc):
            office = await store.office(conn, doc["org_id"])
            principal = office["principal_id"] if office else None
            if principal is None:
                raise Conflict("重要公文和上行文须由主要负责人签发：请先在“公文设置”中指定本单位主要负责人",
                               code="principal_missing")
        await self.ops.complete(conn, step, actor, task["id"], "pass", clean_opinion(body.get("opinion")),
                                {"countersign": countersign, "principal_required": principal is not None,
                                 "principal": principal})
        return {"audit": {"countersign": countersign, "principal": principal}}

    async def sign(self, conn: asyncpg.Connection, step: Step, actor: Actor, doc: asyncpg.Record,
                   body: dict) -> dict:
        """签发 (or 不同意签发, back to the drafter with the reason)."""
        decision = body.get("decision", "pass")
        if decision not in {"pass", "reject"}:
            raise InvalidInput("签发意见应为 pass（同意签发）或 reject（退回修改）", code="document_invalid")
        opinion = clean_opinion(body.get("opinion"), required=decision == "reject")
        try:
            task, acted_for = await self.task(conn, step, actor, {"sign", "sign_principal"}, body,
                                              "该公文尚未到签发环节")
        except Forbidden:
            if step.item["data"].get("principal_required"):
                raise Forbidden("重要公文和上行文须由本单位主要负责人签发", code="principal_only") from None
            raise
        signer_id = acted_for or actor.id
        if task["node"] == "sign_principal" and signer_id != step.item["data"].get("principal"):
            # 转办 may have handed the task on; the rule stays with the person.
            raise Forbidden("重要公文和上行文须由本单位主要负责人签发", code="principal_only")
        if decision == "pass":
            today = step.now.astimezone(CHINA).date()
            await store.update(conn, doc["id"], {
                "signer": await store.cadre_name(conn, signer_id), "signed_by": signer_id,
                "signed_at": step.now, "written_on": doc["written_on"] or today}, step.now)
        await self.ops.complete(conn, step, actor, task["id"], decision, opinion)
        return {"audit": {"decision": decision}}

    async def number(self, conn: asyncpg.Connection, step: Step, actor: Actor, doc: asyncpg.Record,
                     body: dict) -> dict:
        """编号: the next number of the union's year, once per document."""
        if doc["doc_number"]:
            raise Conflict(f"该公文已编号为 {doc['doc_number']}，一份公文只编一个文号",
                           code="already_numbered")
        task, _ = await self.task(conn, step, actor, {"number"}, body,
                                  "该公文尚未签发、复核，不能编号")
        office = await store.office(conn, doc["org_id"])
        if office is None:
            raise Conflict("请先在“公文设置”中填写本单位的发文代字", code="office_missing")
        year, serial, text = await numbers.issue(conn, doc["org_id"], office["issuer_code"], step.now)
        await store.update(conn, doc["id"], {"doc_number": text, "number_year": year,
                                             "number_serial": serial, "numbered_at": step.now,
                                             "year": year}, step.now)
        await self.ops.complete(conn, step, actor, task["id"], "pass", clean_opinion(body.get("opinion")))
        return {"doc_number": text, "audit": {"doc_number": text}}

    async def seal(self, conn: asyncpg.Connection, step: Step, actor: Actor, doc: asyncpg.Record,
                   body: dict) -> dict:
        """用印: the seal is applied; the printing office and date (版记) are fixed now."""
        task, _ = await self.task(conn, step, actor, {"seal"}, body, "该公文尚未编号，不能用印")
        await store.update(conn, doc["id"], {
            "sealed_by": actor.id, "sealed_at": step.now,
            "printed_on": doc["printed_on"] or step.now.astimezone(CHINA).date(),
            "printer": doc["printer"] or doc["issuer"]}, step.now)
        await self.ops.complete(conn, step, actor, task["id"], "pass", clean_opinion(body.get("opinion")))
        return {}

    async def recipients(self, conn: asyncpg.Connection, doc: asyncpg.Record, body: dict) -> list[int]:
        """The unions a document goes to: lower unions of the issuer's subtree (``children``:
        every union directly below), and for an upward document the union directly above."""
        ids = body.get("org_ids") or []
        if not isinstance(ids, list) or len(ids) > MAX_RECIPIENTS or any(row_id(i) is None for i in ids):
            raise InvalidInput(f"收文单位应为 0 至 {MAX_RECIPIENTS} 个工会", code="recipients_invalid")
        if body.get("children") is True:
            ids = [*ids, *await store.children(conn, doc["org_id"])]
        ids = list(dict.fromkeys(ids))
        if len(ids) > MAX_RECIPIENTS:
            raise InvalidInput(f"收文单位不超过 {MAX_RECIPIENTS} 个", code="recipients_invalid")
        rows = await store.orgs(conn, ids)
        if len(rows) != len(ids):
            raise NotFound("收文单位不存在", code="org_not_found")
        issuer = await store.org(conn, doc["org_id"])
        for r in rows:
            below = r["path"].startswith(doc["org_path"] + ".")
            upward = doc["flow"] == "up" and r["id"] == issuer["parent_id"]
            if not (below or upward):
                raise Forbidden(f"{r['name']}不是本单位的下级工会：公文只能分发给本单位的下级工会"
                                "（上行文报送上一级工会）", code="outside_subtree")
        return ids

    async def distribute(self, conn: asyncpg.Connection, step: Step, actor: Actor,
                         doc: asyncpg.Record, body: dict, incoming: str) -> dict:
        """分发: each recipient union gets the document in its own incoming queue (module
        ``incoming``), in this step's transaction; none listed means distributed off the platform."""
        task, _ = await self.task(conn, step, actor, {"distribute"}, body, "该公文尚未用印，不能分发")
        ids = await self.recipients(conn, doc, body)
        items = await self.engine.start_many(
            conn, incoming, org_ids=ids, title=doc["title"], data={"handlers": []},
            submitter_cadre_id=actor.id,
            detail={"source": doc["id"], "doc_number": doc["doc_number"], "from": doc["issuer"]})
        copies = await store.insert_copies(conn, doc["id"], items, step.now)
        await store.update(conn, doc["id"], {"distributed_at": step.now}, step.now)
        await self.ops.complete(conn, step, actor, task["id"], "pass", clean_opinion(body.get("opinion")))
        return {"recipients": copies, "audit": {"recipients": copies}}
