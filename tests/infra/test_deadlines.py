"""Deadlines of one length served by one timer: each passes once, in order, unless closed."""

from __future__ import annotations

import asyncio

import pytest

from wxbackend.infra.deadlines import Deadlines


async def test_a_deadline_closed_in_time_never_calls_back() -> None:
    called: list[str] = []
    deadlines = Deadlines(0.05)
    d = deadlines.start(called.append, "early")
    d.close()
    await asyncio.sleep(0.1)
    assert called == [] and not d.passed


async def test_passed_deadlines_call_back_once_each_in_order() -> None:
    called: list[int] = []
    deadlines = Deadlines(0.03)
    started = [deadlines.start(called.append, i) for i in range(5)]
    started[2].close()  # finished in time
    await asyncio.sleep(0.08)
    assert called == [0, 1, 3, 4]
    assert [d.passed for d in started] == [True, True, False, True, True]
    started[0].close()  # closing after the fact changes nothing
    await asyncio.sleep(0.05)
    assert called == [0, 1, 3, 4]


async def test_deadlines_set_later_pass_later() -> None:
    called: list[str] = []
    deadlines = Deadlines(0.2)
    deadlines.start(called.append, "first")
    await asyncio.sleep(0.1)
    deadlines.start(called.append, "second")
    await asyncio.sleep(0.15)   # 250 ms after the first, 150 ms after the second
    assert called == ["first"]
    await asyncio.sleep(0.15)
    assert called == ["first", "second"]


@pytest.mark.expected_errors(r"deadline callback failed")
async def test_a_failing_callback_does_not_stop_the_others() -> None:
    called: list[str] = []

    def boom(_: str) -> None:
        raise RuntimeError("boom")

    deadlines = Deadlines(0.01)
    deadlines.start(boom, "x")
    deadlines.start(called.append, "after")
    await asyncio.sleep(0.05)
    assert called == ["after"]
