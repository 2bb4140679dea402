"""The elements of a document as GB/T 9704-2012 lays them out, checked as a cadre types them.

版头: 份号, 密级和保密期限, 紧急程度, 发文机关标志, 发文字号, 签发人; 主体: 标题, 主送机关, 正文,
附件说明, 署名, 成文日期, 印章, 附注, 附件; 版记: 抄送机关, 印发机关和印发日期.

The platform is an internet system: a document marked with any classification (绝密, 机密,
秘密, with or without a term after ★) is refused before anything is written; it must be
handled on the classified network or on paper.
"""

from __future__ import annotations

import re
from datetime import date

from wxbackend.services.casework.engine import clean_text
from wxbackend.services.errors import InvalidInput

CLASSIFIED_MESSAGE = ("涉密公文不得在互联网平台处理，请按保密规定通过涉密网络或机要渠道办理"
                      "（本平台只办理非涉密公文）")
CLASSIFICATIONS = ("绝密", "机密", "秘密")
UNCLASSIFIED = {None, "", "非密", "公开"}
URGENCIES = ("特急", "加急")
FLOWS = {"up": "上行文", "level": "平行文", "down": "下行文"}
MAX_ATTACHMENTS = 20
MAX_DEPARTMENTS = 10
COPY_NO = re.compile(r"[0-9]{6}")

# field: (name, shortest, longest, required)
TEXTS = {
    "title": ("标题", 2, 200, True),
    "main_to": ("主送机关", 1, 300, True),
    "body": ("正文", 1, 50_000, True),
    "issuer_mark": ("发文机关标志", 2, 40, False),
    "issuer": ("署名", 2, 60, False),
    "attachment_note": ("附件说明", 1, 1000, False),
    "note": ("附注", 1, 300, False),
    "copy_to": ("抄送机关", 1, 500, False),
    "printer": ("印发机关", 2, 60, False),
    "sender": ("来文机关", 2, 60, False),
    "doc_number": ("来文字号", 2, 60, False),
}
OUTGOING_TEXTS = ("title", "main_to", "body", "issuer_mark", "issuer", "attachment_note", "note",
                  "copy_to", "printer")
INCOMING_TEXTS = ("title", "main_to", "body", "sender", "doc_number", "attachment_note", "note",
                  "copy_to")


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="document_invalid")


def refuse_classified(body: dict) -> None:
    """Any classified marking, in the 密级 field or at the head of the title (秘密★1年), is
    refused with the same message."""
    level = body.get("classification")
    if level is not None and not isinstance(level, str):
        raise _bad("密级应为文字（非涉密公文请留空）")
    title = body.get("title")
    marked = isinstance(title, str) and any(title.lstrip().startswith(c) for c in CLASSIFICATIONS) \
        and "★" in title
    if level not in UNCLASSIFIED or marked:
        raise InvalidInput(CLASSIFIED_MESSAGE, code="classified_document")


def _day(value: object, what: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _bad(f"{what}应为日期（如 2026-03-02）") from None


def departments(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_DEPARTMENTS:
        raise _bad(f"{what}最多 {MAX_DEPARTMENTS} 个")
    names = [clean_text(v, f"{what}名称", low=1, high=40, code="document_invalid") for v in value]
    if len(set(names)) != len(names):
        raise _bad(f"{what}不能重复")
    return names


def clean(body: dict, *, outgoing: bool, partial: bool = False) -> dict:
    """The elements in ``body``, checked; ``partial``: only those present (an edit)."""
    if not isinstance(body, dict):
        raise _bad("请提交公文内容")
    refuse_classified(body)
    out: dict = {}
    for key in OUTGOING_TEXTS if outgoing else INCOMING_TEXTS:
        if partial and key not in body:
            continue
        what, low, high, required = TEXTS[key]
        out[key] = clean_text(body.get(key), what, low=low, high=high, code="document_invalid",
                              required=required)
    if not partial or "copy_no" in body:
        copy_no = body.get("copy_no") or None
        if copy_no is not None and (not isinstance(copy_no, str) or not COPY_NO.fullmatch(copy_no)):
            raise _bad("份号应为 6 位数字")
        out["copy_no"] = copy_no
    if not partial or "urgency" in body:
        urgency = body.get("urgency") or None
        if urgency is not None and urgency not in URGENCIES:
            raise _bad("紧急程度应为“特急”“加急”或不标注")
        out["urgency"] = urgency
    for key, what in (("written_on", "成文日期"), ("printed_on", "印发日期")):
        if not partial or key in body:
            out[key] = _day(body.get(key), what)
    if not partial or "attachments" in body:
        files = body.get("attachments") or []
        if not isinstance(files, list) or len(files) > MAX_ATTACHMENTS:
            raise _bad(f"附件最多 {MAX_ATTACHMENTS} 个")
        out["attachments"] = files
    if outgoing:
        if not partial or "flow" in body:
            flow = body.get("flow", "down")
            if flow not in FLOWS:
                raise _bad("行文方向应为 up（上行文）、level（平行文）或 down（下行文）")
            out["flow"] = flow
        if not partial or "important" in body:
            important = body.get("important", False)
            if not isinstance(important, bool):
                raise _bad("是否重要公文应为 true 或 false")
            out["important"] = important
    return out

