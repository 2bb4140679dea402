"""What the engine needs to know of each module that runs items on it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Module:
    code: str                  # 'petition', 'proposal', …
    name: str                  # as cadres call it: 职工诉求（信访）
    permission: str            # cadres holding it handle the module's items in their subtree
    graph: dict                # the built-in definition, published by ``wxbackend seed``
    fields: frozenset[str] = field(default_factory=frozenset)  # item data conditions may read
    extension_days: int = 30   # an approved extension adds at most this many days …
    extensions: int = 1        # … this many times per item
    sensitive: bool = False    # personal data: every view is audited
    # Steps whose outcome carries the module's own record (an appeal's acceptance, its written
    # reply): decided through the module's desk, never with a bare 通过/不通过.
    desk_nodes: frozenset[str] = field(default_factory=frozenset)
    # Events that mean "an item of this module was opened / decided", for the membership
    # reviews that report into the rates without running on the engine.
    reported_only: bool = False


# Modules that report intake and decisions into the events without running on the engine.
MEMBERSHIP_REVIEWS = Module(code="membership", name="入会、认证、建会与转会审核",
                            permission="member.review", graph={}, reported_only=True)
