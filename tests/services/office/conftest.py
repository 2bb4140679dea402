"""The office modules' tests reuse the casework tests' province: cadres of the province, Chengdu
and a grassroots union under it (made straight in SQL), the frozen clock at a Monday of 2026, and
the reminders' templates switched on."""

from __future__ import annotations

from tests.services.casework.conftest import cadres, settings, tianfu, worker  # noqa: F401
