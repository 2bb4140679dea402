"""Many deadlines of one length, served by one timer.

Every push gets the same reply budget. A timer per push (``call_later`` and its cancellation)
was a measurable share of a push's cost, for a deadline that almost never passes. Deadlines of
equal length pass in the order they were set, so they wait in a queue and a single timer is
set for the earliest one still open; a closed deadline is dropped as the queue moves on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Deadline:
    __slots__ = ("_args", "_callback", "at", "closed", "passed")

    def __init__(self, at: float, callback: Callable[..., None], args: tuple) -> None:
        self.at = at
        self.passed = False   # the deadline passed before close(): the callback was called
        self.closed = False
        self._callback = callback
        self._args = args

    def close(self) -> None:
        """The work is over: the callback will not be called (again)."""
        self.closed = True


class Deadlines:
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._queue: collections.deque[Deadline] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, callback: Callable[..., None], *args: Any) -> Deadline:
        """A deadline ``seconds`` from now; unless closed first, ``callback(*args)`` is then
        called once, from the event loop."""
        loop = asyncio.get_running_loop()
        deadline = Deadline(loop.time() + self._seconds, callback, args)
        queue = self._queue
        while queue and queue[0].closed:
            queue.popleft()
        queue.append(deadline)
        if self._timer is None:
            self._timer = loop.call_at(queue[0].at, self._expire)
        return deadline

    def _expire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        queue = self._queue
        while queue and (queue[0].closed or queue[0].at <= now):
            deadline = queue.popleft()
            if deadline.closed:
                continue
            deadline.passed = deadline.closed = True
            try:
                deadline._callback(*deadline._args)
            except Exception:
                log.exception("deadline callback failed")
        if queue:
            self._timer = loop.call_at(queue[0].at, self._expire)
