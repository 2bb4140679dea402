"""A configured business module as data: its form, its process on the engine, where it is open and
who may apply — checked whole before it is saved, so what the leading group approves can run.

The request and its approval are themselves an item on the engine (module ``business_request``,
decided by the province's cadres holding ``business.approve``, the leading group's office).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources

from wxbackend.services.casework.definitions import check_graph
from wxbackend.services.casework.engine import clean_text
from wxbackend.services.casework.modules import CONFIGURED_PERMISSION, CONFIGURED_PREFIX, Module
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.services.office import forms

ENTRANCES = {"console": "工作台", "h5": "微信网页", "mp": "小程序"}
APPLICANTS = {"members": "本工会会员", "workers": "注册职工", "cadres": "工会干部"}
MAX_OPEN_TO = 200
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

REQUEST_CODE = "business_request"
REQUEST = Module(
    code=REQUEST_CODE, name="业务上线申请", permission="business.approve",
    graph={"nodes": [
        {"id": "start", "type": "start", "next": "approve"},
        {"id": "approve", "type": "task", "name": "领导小组审批", "assign": [{"role": "office"}],
         "deadline": {"count": 10, "unit": "working", "warn": 2, "escalate": 2}, "next": "decided"},
        {"id": "decided", "type": "end", "outcome": "decided"},
    ]},
    desk_nodes=frozenset({"approve"}))


def _bad(message: str, code: str = "invalid_module") -> InvalidInput:
    return InvalidInput(message, code=code)


def module_code(value: object) -> str:
    """``biz_`` and the short name the department chose (``hardship`` → ``biz_hardship``)."""
    if isinstance(value, str) and value.startswith(CONFIGURED_PREFIX):
        value = value[len(CONFIGURED_PREFIX):]
    if not isinstance(value, str) or not _CODE.match(value):
        raise _bad("模块代码应为 2 至 31 位小写字母、数字或下划线，以字母开头")
    return CONFIGURED_PREFIX + value


def check_module(body: object) -> dict:
    """The module's definition, cleaned; InvalidInput naming the first fault."""
    if not isinstance(body, dict):
        raise _bad("请求格式有误")
    name = clean_text(body.get("name"), "模块名称", low=2, high=40, code="invalid_module")
    department = clean_text(body.get("department"), "申请部门", low=2, high=40, code="invalid_module")
    purpose = clean_text(body.get("purpose"), "业务说明", low=0, high=2000, code="invalid_module",
                         required=False) or ""
    form = forms.check_form(body.get("form"))
    plain = forms.keys(form) - forms.sensitive_keys(form) - forms.attachment_keys(form)
    # Branch conditions read the item's data, which holds no personal data: only plain fields.
    graph = check_graph(body.get("graph"), plain)
    tasks = {n["id"]: n for n in graph["nodes"] if n["type"] == "task"}
    step_forms_in = body.get("step_forms") or {}
    if not isinstance(step_forms_in, dict):
        raise _bad("step_forms 应为“环节 id → 表单”")
    step_forms = {}
    for node_id, spec in step_forms_in.items():
        if node_id not in tasks:
            raise _bad(f"环节表单指向不存在的办理环节：{node_id}")
        step_form = forms.check_form(spec)
        if forms.sensitive_keys(step_form):
            raise _bad(f"环节 {node_id} 的表单不能收集个人信息（身份证号、手机号等）")
        clash = forms.keys(step_form) & forms.keys(form)
        if clash:
            raise _bad(f"环节 {node_id} 的表单字段与申请表重名：{'、'.join(sorted(clash))}")
        step_forms[node_id] = step_form
    open_to = body.get("open_to")
    if not isinstance(open_to, list) or not 1 <= len(open_to) <= MAX_OPEN_TO or not all(
            isinstance(o, int) and not isinstance(o, bool) and o > 0 for o in open_to):
        raise _bad(f"请选择开放的工会（1 至 {MAX_OPEN_TO} 个，含其下级）")
    entrances = body.get("entrances")
    if not isinstance(entrances, list) or not entrances or not all(
            isinstance(e, str) and e in ENTRANCES for e in entrances):
        raise _bad(f"请选择办理入口：{'、'.join(f'{k}（{v}）' for k, v in ENTRANCES.items())}")
    applicants = body.get("applicants")
    if not isinstance(applicants, str) or applicants not in APPLICANTS:
        raise _bad(f"申请人应为：{'、'.join(f'{k}（{v}）' for k, v in APPLICANTS.items())}")
    if applicants == "cadres" and entrances != ["console"]:
        raise _bad("由工会干部申请的业务只在工作台办理（入口为 console）")
    if applicants == "cadres" and forms.attachment_keys(form):
        raise _bad("工作台申请的业务暂不支持附件字段；附件由职工在微信中上传")
    if applicants != "cadres" and entrances == ["console"]:
        raise _bad("职工申请的业务须开放微信网页或小程序入口")
    return {"name": name, "department": department, "purpose": purpose, "form": form,
            "step_forms": step_forms, "graph": graph, "open_to": sorted(set(open_to)),
            "entrances": [e for e in ENTRANCES if e in entrances], "applicants": applicants}


def as_module(row: Mapping) -> Module:
    """The engine's view of a live configured module."""
    form = row["form"]
    return Module(code=row["code"], name=row["name"], permission=CONFIGURED_PERMISSION,
                  graph=row["graph"],
                  fields=forms.keys(form) - forms.sensitive_keys(form) - forms.attachment_keys(form),
                  sensitive=True, configured=True, desk_nodes=frozenset(row["step_forms"]))


EXAMPLES = ("hardship",)


def example(name: str, open_to: list[int]) -> dict:
    """A module shipped as a definition (``wxbackend/data/business/<name>.json``), open to
    ``open_to``: the platform office starts from it like from any draft."""
    if name not in EXAMPLES:
        raise NotFound("没有这个示例", code="example_not_found")
    text = resources.files("wxbackend.data").joinpath("business", f"{name}.json").read_text("utf-8")
    return {**json.loads(text), "open_to": open_to}
