"""Process definitions: the graph an item runs through, as data a cadre can read.

A graph is a list of nodes::

    {"id": "accept", "type": "task", "name": "受理", "assign": [{"role": "office"}],
     "sign": "single", "deadline": {"count": 15, "unit": "calendar"}, "next": "route"}

- ``start`` (one) and ``end`` (one or more, each with an ``outcome``) bound the graph;
- ``task``: ``assign`` names roles relative to the item's union — ``office`` (this union's
  cadres holding the module's permission), ``upper`` (the union above), ``department`` (with
  ``"department": "法律部"``), ``union`` (the union, or unions, whose ids the item's data holds
  in ``field``: a proposal's lead unit is chosen when it is filed), ``departments`` (one task per
  department of the item's union named in the list the item's data holds in ``field``: the
  offices a document names for 会签), ``principal`` (the union's principal, 主要负责人, whose
  cadre id the item's data holds in ``field``: set from the union's settings when the item
  reaches that point), ``submitter`` — never a person. ``sign`` is ``single``, ``all``
  (会签), ``any`` (或签) or ``ratio`` (票签, with ``ratio``); one task per assigned role.
  ``deadline`` bounds the step; ``item_deadline`` resets the item's own time limit when the
  step opens (a petition's 60 days run from acceptance). ``"entry": true`` marks a task an
  operation enters from outside the main path (a review, 复查, after the item closed);
- ``exclusive``: ``branches`` tried in order, ``{"when": condition, "next": id}``, the last one
  without ``when`` (the default path);
- ``parallel`` fans out to every id in ``next``; ``join`` waits for all its incoming paths.

A definition is checked whole before it is saved (:func:`check_graph`), and frozen once published:
its digest is the SHA-256 of the canonical JSON, and running items keep the version they began.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from wxbackend.services.casework import conditions
from wxbackend.services.errors import InvalidInput

NODE_TYPES = {"start", "task", "exclusive", "parallel", "join", "end"}
ROLES = {"office", "upper", "department", "union", "departments", "principal", "submitter"}
# Roles resolved from a field of the item's data.
FIELD_ROLES = {"union", "departments", "principal"}
SIGNS = {"single", "all", "any", "ratio"}
UNITS = {"calendar", "working"}
MAX_NODES = 60
MAX_DAYS = 366
# Every item's data may carry these, whatever the module; branch conditions may read them.
BASE_FIELDS = frozenset({"decision"})


def _one_of(value: object, choices: set[str] | frozenset[str]) -> bool:
    return isinstance(value, str) and value in choices


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_definition")


def digest(graph: Mapping) -> str:
    canonical = json.dumps(graph, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _deadline(node_id: str, value: object) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"count", "unit", "warn", "escalate"}:
        raise _bad(f"节点 {node_id} 的时限应写明 count（天数）和 unit（calendar 或 working）")
    count, unit = value.get("count"), value.get("unit", "calendar")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= MAX_DAYS \
            or not _one_of(unit, UNITS):
        raise _bad(f"节点 {node_id} 的时限应为 1 至 {MAX_DAYS} 个日或工作日")
    warn, escalate = value.get("warn", 2), value.get("escalate", 2)
    for days in (warn, escalate):
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 30:
            raise _bad(f"节点 {node_id} 的提醒和督办天数应为 0 至 30")
    return {"count": count, "unit": unit, "warn": warn, "escalate": escalate}


def check_graph(graph: object, fields: frozenset[str] = frozenset()) -> dict:
    """The graph, cleaned, if it is a well-formed process; else InvalidInput naming the fault.
    ``fields``: the item data the module's branch conditions may read."""
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        raise _bad("流程定义应包含 nodes 列表")
    raw = graph["nodes"]
    if not 2 <= len(raw) <= MAX_NODES:
        raise _bad(f"流程应有 2 至 {MAX_NODES} 个节点")
    nodes: dict[str, dict] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) \
                or not item["id"].strip() or len(item["id"]) > 40:
            raise _bad("每个节点须有 id（不超过 40 个字符）")
        node_id = item["id"]
        if node_id in nodes:
            raise _bad(f"节点 id 重复：{node_id}")
        if not _one_of(item.get("type"), NODE_TYPES):
            raise _bad(f"节点 {node_id} 的类型应为 {'、'.join(sorted(NODE_TYPES))} 之一")
        nodes[node_id] = _clean_node(item, fields | BASE_FIELDS)
    starts = [n for n in nodes.values() if n["type"] == "start"]
    if len(starts) != 1:
        raise _bad("流程应有且只有一个开始节点")
    if not any(n["type"] == "end" for n in nodes.values()):
        raise _bad("流程应至少有一个结束节点")
    for node in nodes.values():
        for target in successors(node):
            if target not in nodes:
                raise _bad(f"节点 {node['id']} 指向不存在的节点 {target}")
            if nodes[target]["type"] == "start":
                raise _bad(f"节点 {node['id']} 不能指回开始节点")
    roots = [starts[0]["id"]] + [n["id"] for n in nodes.values() if n.get("entry")]
    reached, frontier = set(roots), list(roots)
    while frontier:
        for target in successors(nodes[frontier.pop()]):
            if target not in reached:
                reached.add(target)
                frontier.append(target)
    unreachable = set(nodes) - reached
    if unreachable:
        raise _bad(f"这些节点从开始节点无法到达：{'、'.join(sorted(unreachable))}")
    return {"nodes": list(nodes.values())}


def _clean_node(item: dict, fields: frozenset[str]) -> dict:
    node_id, kind = item["id"], item["type"]
    node: dict = {"id": node_id, "type": kind}
    if kind == "end":
        node["outcome"] = str(item.get("outcome") or "done")[:40]
        return node
    if kind == "exclusive":
        branches = item.get("branches")
        if not isinstance(branches, list) or len(branches) < 2:
            raise _bad(f"分支节点 {node_id} 至少需要两条分支")
        cleaned = []
        for n, branch in enumerate(branches):
            last = n == len(branches) - 1
            if not isinstance(branch, dict) or not isinstance(branch.get("next"), str):
                raise _bad(f"分支节点 {node_id} 的第 {n + 1} 条分支须指明 next")
            when = branch.get("when")
            if last and when is not None:
                raise _bad(f"分支节点 {node_id} 的最后一条分支应为默认分支（不写条件）")
            if not last:
                when = conditions.check(when, set(fields))
            cleaned.append({"next": branch["next"], **({"when": when} if when else {})})
        node["branches"] = cleaned
        return node
    nxt = item.get("next")
    if kind == "parallel":
        if not isinstance(nxt, list) or len(nxt) < 2 or not all(isinstance(t, str) for t in nxt):
            raise _bad(f"并行节点 {node_id} 应指向至少两个节点")
        node["next"] = list(nxt)
        return node
    if not isinstance(nxt, str):
        raise _bad(f"节点 {node_id} 须指明下一节点 next")
    node["next"] = nxt
    if kind == "start" and item.get("item_deadline") is not None:
        node["item_deadline"] = _deadline(node_id, item["item_deadline"])
    if kind != "task":
        return node
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 40:
        raise _bad(f"任务节点 {node_id} 须有名称（不超过 40 个字符）")
    node["name"] = name.strip()
    assign = item.get("assign")
    if not isinstance(assign, list) or not 1 <= len(assign) <= 20:
        raise _bad(f"任务节点 {node_id} 须指定 1 至 20 个办理角色")
    node["assign"] = []
    for role in assign:
        if not isinstance(role, dict) or not _one_of(role.get("role"), ROLES):
            raise _bad(f"任务节点 {node_id} 的办理角色应为 {'、'.join(sorted(ROLES))} 之一（不能指定个人）")
        cleaned_role = {"role": role["role"]}
        if role["role"] == "department":
            dept = role.get("department")
            if not isinstance(dept, str) or not dept.strip() or len(dept) > 40:
                raise _bad(f"任务节点 {node_id} 须写明部门名称")
            cleaned_role["department"] = dept.strip()
        if role["role"] in FIELD_ROLES:
            if not _one_of(role.get("field"), fields):
                raise _bad(f"任务节点 {node_id} 的办理单位应取自事项的字段（{'、'.join(sorted(fields))}）")
            cleaned_role["field"] = role["field"]
        node["assign"].append(cleaned_role)
    sign = item.get("sign", "single")
    if not _one_of(sign, SIGNS):
        raise _bad(f"任务节点 {node_id} 的签署方式应为 single、all（会签）、any（或签）或 ratio（票签）")
    if sign == "single" and len(node["assign"]) != 1:
        raise _bad(f"任务节点 {node_id} 由一人办理时只能指定一个角色；多个角色请用会签、或签或票签")
    node["sign"] = sign
    if sign == "ratio":
        ratio = item.get("ratio")
        if not isinstance(ratio, int | float) or isinstance(ratio, bool) or not 0 < ratio <= 1:
            raise _bad(f"任务节点 {node_id} 的票签比例应在 0 与 1 之间")
        node["ratio"] = round(float(ratio), 3)
    if item.get("entry") is True:
        node["entry"] = True
    for key in ("deadline", "item_deadline"):
        limit = _deadline(node_id, item.get(key))
        if limit:
            node[key] = limit
    return node


def successors(node: Mapping) -> list[str]:
    if node["type"] == "exclusive":
        return [b["next"] for b in node["branches"]]
    nxt = node.get("next")
    return list(nxt) if isinstance(nxt, list) else ([nxt] if nxt else [])


@dataclass
class Walk:
    """Where an item goes from a point of the graph."""
    tasks: list[dict] = field(default_factory=list)   # task nodes to open
    ends: list[dict] = field(default_factory=list)    # end nodes reached
    joins: dict[str, int] = field(default_factory=dict)  # arrivals at each join so far


class Graph:
    def __init__(self, graph: Mapping) -> None:
        self.nodes: dict[str, dict] = {n["id"]: n for n in graph["nodes"]}
        self.start = next(n for n in self.nodes.values() if n["type"] == "start")
        self._incoming: dict[str, int] = {}
        for node in self.nodes.values():
            for target in successors(node):
                self._incoming[target] = self._incoming.get(target, 0) + 1

    def __getitem__(self, node_id: str) -> dict:
        return self.nodes[node_id]

    def walk(self, targets: list[str], data: Mapping[str, object],
             joins: Mapping[str, int]) -> Walk:
        """Follow the graph from ``targets`` up to the next task nodes and ends: exclusive
        branches by their conditions on ``data``; a join passes once all its paths arrived."""
        result = Walk(joins=dict(joins))
        pending = list(targets)
        steps = 0
        while pending:
            steps += 1
            if steps > 10 * MAX_NODES:   # a cycle of gateways with no task would spin forever
                raise RuntimeError("process graph loops without a task")
            node = self.nodes[pending.pop(0)]
            kind = node["type"]
            if kind == "task":
                result.tasks.append(node)
            elif kind == "end":
                result.ends.append(node)
            elif kind == "exclusive":
                pending.append(next(b["next"] for b in node["branches"]
                                    if "when" not in b or conditions.holds(b["when"], data)))
            elif kind == "join":
                arrived = result.joins.get(node["id"], 0) + 1
                if arrived >= self._incoming.get(node["id"], 1):
                    result.joins.pop(node["id"], None)
                    pending.append(node["next"])
                else:
                    result.joins[node["id"]] = arrived
            else:
                pending.extend(successors(node))
        return result
