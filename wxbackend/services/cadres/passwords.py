"""Argon2id password hashing, off the event loop and bounded.

A hash or a verification costs tens to hundreds of milliseconds of CPU (Argon2 also runs its
lanes in threads of its own). It runs never while a pooled connection or transaction is held, in
an executor of its own with ``concurrency`` threads, so a flood of sign-ins queues here instead
of filling the loop's executor that other work (member cards, exports, roster parsing) shares;
beyond ``queue`` waiting sign-ins the answer is a quick 503 rather than a long wait. Its threads
run at the lowest CPU priority (nice 19, per thread on Linux; Argon2's lane threads inherit it):
on a busy core the event loop answering other requests goes first, hashing takes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from wxbackend.services.errors import Unavailable

T = TypeVar("T")


def _lowest_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # not Linux: the thread keeps its priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class PasswordHashing:
    """``busy_delay``: a sign-in turned away because the queue is full gets its 503 after a
    random half to all of this many seconds (at most ``busy_held`` held at once): a flood
    answered at once comes back at once, one burst after another."""

    def __init__(self, *, concurrency: int = 0, queue: int = 64,
                 hasher: PasswordHasher | None = None, busy_delay: float = 0.0,
                 busy_held: int = 2000) -> None:
        self._busy_delay = busy_delay
        self._busy_held = busy_held
        self._held = 0
        self._hasher = hasher or PasswordHasher()  # Argon2id, the library's recommended parameters
        slots = concurrency or max(1, (os.cpu_count() or 2) // 2)
        self._slots = asyncio.Semaphore(slots)
        self._executor = ThreadPoolExecutor(slots, thread_name_prefix="argon2",
                                            initializer=_lowest_priority)
        self._queue = max(1, queue)
        self._waiting = 0
        self._decoy: str | None = None

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._waiting >= self._queue:
            if self._busy_delay > 0 and self._held < self._busy_held:
                self._held += 1
                try:
                    await asyncio.sleep(self._busy_delay * (500 + secrets.randbelow(501)) / 1000)
                finally:
                    self._held -= 1
            raise Unavailable("登录人数较多，请稍后再试", code="signin_busy", headers={"Retry-After": "5"})
        self._waiting += 1
        try:
            async with self._slots:
                return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._waiting -= 1

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def matches(self, stored: str | None, password: str) -> bool:
        """Does ``password`` match ``stored``? With no stored hash (an unknown username) a
        decoy is verified instead, so the answer takes as long either way."""
        if stored is None:
            if self._decoy is None:
                self._decoy = await self.hash(secrets.token_urlsafe(16))
            await self._run(self._verify, self._decoy, password)
            return False
        return await self._run(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)
