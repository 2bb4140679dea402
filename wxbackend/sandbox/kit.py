"""What ``wxbackend demo`` hands the application: the sandbox page's guide, the trainee's phone
and the Official Account's menu as the phone shows it."""

from __future__ import annotations

from dataclasses import dataclass, field

from wxbackend.sandbox.guide import Guide
from wxbackend.sandbox.phone import Phone


@dataclass(frozen=True)
class Sandbox:
    guide: Guide
    phone: Phone
    menu: dict = field(default_factory=dict)     # [wechat.menu], {h5} not yet filled in
