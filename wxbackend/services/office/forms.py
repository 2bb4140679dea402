"""Forms defined as data: a notice's receipt (回执), a configured business module's application.

A form is a list of fields::

    {"fields": [
      {"key": "reason", "label": "困难原因", "type": "choice", "required": true,
       "choices": ["因病", "因灾", "子女就学", "其他"]},
      {"key": "detail", "label": "其他原因说明", "type": "textarea", "when": "reason == '其他'"},
      {"key": "amount", "label": "申请金额（元）", "type": "number", "min": 0, "max": 20000},
      {"key": "id_number", "label": "身份证号码", "type": "idnumber", "required": true,
       "sensitive": true}]}

Types: ``text``, ``textarea``, ``number`` (``integer``, ``min``, ``max``), ``date``,
``choice``/``multichoice`` (``choices``), ``bool``, ``phone``, ``idnumber``, ``attachments``
(ids of files the caller uploaded; the module checks they are the applicant's own). ``when``
shows a field only while a condition over the earlier fields holds (read by simpleeval, as branch
conditions are); a hidden field is neither required nor kept. ``sensitive`` fields hold personal
data: the module stores them encrypted and shows them masked.

The same definition drives the browser renderer (``static/shared/forms.js``) in the console and
the H5 pages, so one check here is the only validation that counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from wxbackend.infra.pii import mask_id_number, mask_phone, normalise_phone
from wxbackend.services.casework import conditions
from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership.idnumbers import parse_id_number

TYPES = {"text": "单行文字", "textarea": "多行文字", "number": "数字", "date": "日期", "choice": "单选",
         "multichoice": "多选", "bool": "是否", "phone": "手机号码", "idnumber": "身份证号码",
         "attachments": "附件"}
MAX_FIELDS = 50
MAX_CHOICES = 50
MAX_ATTACHMENTS = 9
TEXT_LIMITS = {"text": (200, 500), "textarea": (2000, 10000)}   # default and highest max_length
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Names the engine's item data already uses; a field may not shadow them.
RESERVED = frozenset({"decision", "title", "applicant", "org_id"})
_ATTRIBUTES = {"key", "label", "type", "required", "choices", "min", "max", "integer",
               "max_length", "when", "sensitive", "help"}


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_form")


def _answer(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_answer")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_form(spec: object) -> dict:
    """The form, cleaned, if well-formed; else InvalidInput naming the first fault."""
    if not isinstance(spec, dict) or not isinstance(spec.get("fields"), list):
        raise _bad("表单定义应包含 fields 列表")
    raw = spec["fields"]
    if not 1 <= len(raw) <= MAX_FIELDS:
        raise _bad(f"表单应有 1 至 {MAX_FIELDS} 个字段")
    fields: list[dict] = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise _bad(f"第 {n} 个字段应为对象")
        unknown = set(item) - _ATTRIBUTES
        if unknown:
            raise _bad(f"第 {n} 个字段有未知的属性：{'、'.join(sorted(map(str, unknown)))}")
        key = item.get("key")
        if not isinstance(key, str) or not _KEY.match(key) or key in RESERVED:
            raise _bad(f"第 {n} 个字段的 key 应为小写字母开头的字母、数字或下划线（不超过 40 个），"
                       f"且不能是 {'、'.join(sorted(RESERVED))}")
        if any(f["key"] == key for f in fields):
            raise _bad(f"字段 key 重复：{key}")
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in TYPES:
            raise _bad(f"字段 {key} 的类型未知；可用的类型：{'、'.join(TYPES)}")
        label = item.get("label")
        if not isinstance(label, str) or not 1 <= len(label.strip()) <= 40:
            raise _bad(f"字段 {key} 须有名称（不超过 40 个字）")
        field: dict = {"key": key, "label": label.strip(), "type": kind,
                       "required": item.get("required") is True}
        if item.get("sensitive") is True:
            field["sensitive"] = True
        if kind in ("idnumber", "phone"):
            field["sensitive"] = True   # personal data whatever the definition says
        help_text = item.get("help")
        if help_text is not None:
            if not isinstance(help_text, str) or len(help_text) > 200:
                raise _bad(f"字段 {key} 的说明不超过 200 个字")
            field["help"] = help_text.strip()
        _typed(field, item)
        when = item.get("when")
        if when is not None:
            field["when"] = conditions.check(when, {f["key"] for f in fields})
        fields.append(field)
    return {"fields": fields}


def _typed(field: dict, item: dict) -> None:
    key, kind = field["key"], field["type"]
    if kind in ("choice", "multichoice"):
        choices = item.get("choices")
        if not isinstance(choices, list) or not 2 <= len(choices) <= MAX_CHOICES or not all(
                isinstance(c, str) and 1 <= len(c.strip()) <= 40 for c in choices):
            raise _bad(f"字段 {key} 应有 2 至 {MAX_CHOICES} 个选项（每项不超过 40 个字）")
        cleaned = [c.strip() for c in choices]
        if len(set(cleaned)) != len(cleaned):
            raise _bad(f"字段 {key} 的选项重复")
        field["choices"] = cleaned
    elif kind == "number":
        for bound in ("min", "max"):
            value = item.get(bound)
            if value is not None:
                if not _number(value):
                    raise _bad(f"字段 {key} 的 {bound} 应为数字")
                field[bound] = value
        if "min" in field and "max" in field and field["min"] > field["max"]:
            raise _bad(f"字段 {key} 的最小值大于最大值")
        if item.get("integer") is True:
            field["integer"] = True
    elif kind in TEXT_LIMITS:
        default, highest = TEXT_LIMITS[kind]
        length = item.get("max_length", default)
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= highest:
            raise _bad(f"字段 {key} 的长度上限应为 1 至 {highest}")
        field["max_length"] = length


def keys(form: Mapping) -> frozenset[str]:
    return frozenset(f["key"] for f in form["fields"])


def attachment_keys(form: Mapping) -> frozenset[str]:
    return frozenset(f["key"] for f in form["fields"] if f["type"] == "attachments")


def sensitive_keys(form: Mapping) -> frozenset[str]:
    return frozenset(f["key"] for f in form["fields"] if f.get("sensitive"))


def clean_answers(form: Mapping, answers: object, *, today: date) -> dict:
    """The answers, cleaned and typed, for the fields shown; InvalidInput naming the first field
    that is missing or wrong. Answers to unknown or hidden fields are dropped. ``today`` (China
    time) bounds the birth dates of ID numbers."""
    if not isinstance(answers, dict):
        raise _answer("请填写表单")
    out: dict = {}
    for field in form["fields"]:
        if field.get("when") and not conditions.holds(field["when"], out):
            continue
        value = answers.get(field["key"])
        if value is None or value == "" or value == []:
            if field["required"]:
                raise _answer(f"请填写“{field['label']}”")
            continue
        out[field["key"]] = _value(field, value, today)
    return out


def _value(field: dict, value: object, today: date) -> object:
    label, kind = field["label"], field["type"]
    if kind in TEXT_LIMITS:
        if not isinstance(value, str) or len(value.strip()) > field["max_length"]:
            raise _answer(f"“{label}”应为不超过 {field['max_length']} 个字的文字")
        if not value.strip():
            raise _answer(f"请填写“{label}”")
        return value.strip()
    if kind == "number":
        if isinstance(value, str):
            try:
                value = float(value) if "." in value else int(value)
            except ValueError:
                raise _answer(f"“{label}”应为数字") from None
        if not _number(value) or value != value or value in (float("inf"), float("-inf")):
            raise _answer(f"“{label}”应为数字")
        if field.get("integer") and value != int(value):
            raise _answer(f"“{label}”应为整数")
        if ("min" in field and value < field["min"]) or ("max" in field and value > field["max"]):
            raise _answer(f"“{label}”应在 {field.get('min', '不限')} 至 {field.get('max', '不限')} 之间")
        return int(value) if field.get("integer") else value
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise _answer(f"“{label}”应为日期（如 2026-03-02）") from None
    if kind == "choice":
        if value not in field["choices"]:
            raise _answer(f"“{label}”请从选项中选择")
        return value
    if kind == "multichoice":
        if not isinstance(value, list) or not all(v in field["choices"] for v in value):
            raise _answer(f"“{label}”请从选项中选择")
        return [c for c in field["choices"] if c in value]
    if kind == "bool":
        if not isinstance(value, bool):
            raise _answer(f"“{label}”应为是或否")
        return value
    if kind == "phone":
        phone = normalise_phone(value) if isinstance(value, str) else None
        if phone is None:
            raise _answer(f"“{label}”应为 11 位手机号码")
        return phone
    if kind == "idnumber":
        if not isinstance(value, str):
            raise _answer(f"“{label}”应为 18 位身份证号码")
        try:
            return parse_id_number(value, today, min_age=0).number
        except InvalidInput as exc:
            raise _answer(f"“{label}”：{exc}") from None
    # attachments: ids the module resolves against the caller's own uploads
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ATTACHMENTS or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise _answer(f"“{label}”最多 {MAX_ATTACHMENTS} 个附件")
    return sorted(set(value))


def masked(form: Mapping, values: Mapping) -> dict:
    """``values`` as a page may show them to someone not handling the item: personal data masked."""
    out = {}
    for field in form["fields"]:
        key = field["key"]
        if key not in values:
            continue
        value = values[key]
        if field.get("sensitive"):
            value = mask_id_number(value) if field["type"] == "idnumber" else (
                mask_phone(value) if field["type"] == "phone" else "******")
        out[key] = value
    return out
