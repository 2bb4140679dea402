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
    # Defined as data by the platform office (流程改造后上网), not in code: its process is
    # published with the module's approved version, never on its own.
    configured: bool = False


# Modules that report intake and decisions into the events without running on the engine.
MEMBERSHIP_REVIEWS = Module(code="membership", name="入会、认证、建会与转会审核",
                            permission="member.review", graph={}, reported_only=True)


CONFIGURED_PREFIX = "biz_"
CONFIGURED_PERMISSION = "business.handle"


class ModuleTable(dict):
    """The engine's modules by code. A configured module (code ``biz_…``) another process put
    live is known here before this process reloads the list: every configured module is handled
    under the same permission, so a stand-in serves until its name is read."""

    def __missing__(self, code: str) -> Module:
        if not isinstance(code, str) or not code.startswith(CONFIGURED_PREFIX):
            raise KeyError(code)
        module = self[code] = Module(code=code, name="配置业务", permission=CONFIGURED_PERMISSION,
                                     graph={}, sensitive=True, configured=True)
        return module

    def get(self, code: str, default: Module | None = None) -> Module | None:  # type: ignore[override]
        try:
            return self[code]
        except KeyError:
            return default

    def __contains__(self, code: object) -> bool:
        return dict.__contains__(self, code) or (
            isinstance(code, str) and code.startswith(CONFIGURED_PREFIX))
