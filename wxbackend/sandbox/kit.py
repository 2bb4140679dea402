"""What ``wxbackend demo`` hands the application: the sandbox page's guide and the trainee's
phone."""

from __future__ import annotations

from dataclasses import dataclass

from wxbackend.sandbox.guide import Guide
from wxbackend.sandbox.phone import Phone


@dataclass(frozen=True)
class Sandbox:
    guide: Guide
    phone: Phone
