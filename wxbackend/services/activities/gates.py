"""What a worker must have done before signing up for an item of some forms: pass a round of
its quiz (on the same China day, when the organiser asks for that), or vote in its poll. Both are
read from the record at the moment of the sign-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from wxbackend.services.clock import china_now
from wxbackend.services.errors import DomainError, Forbidden
from wxbackend.store.activities import polls as polls_store
from wxbackend.store.activities import quizzes as quizzes_store


class Gates:
    def __init__(self, pool: asyncpg.Pool, *, now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._now = now

    async def unmet(self, item: dict, account_id: int) -> DomainError | None:
        """Why the worker may not sign up for ``item`` yet, or None."""
        if item["form"] == "quiz":
            async with self._pool.acquire() as conn:
                rules = await quizzes_store.rules(conn, item["id"])
                day = self._now().date() if rules is not None and rules["pass_daily"] else None
                if await quizzes_store.has_passed(conn, item["id"], account_id, day):
                    return None
            return Forbidden("请先参加答题并达到及格线" + ("（须当天通过）" if day else ""),
                             code="quiz_not_passed")
        if item["form"] == "vote":
            async with self._pool.acquire() as conn:
                if await polls_store.has_voted(conn, item["id"], account_id):
                    return None
            return Forbidden("请先参与投票", code="vote_first")
        return None
