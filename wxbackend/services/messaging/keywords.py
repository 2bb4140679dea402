"""The keyword router: which answer a text, a menu click or a follow gets.

Rules live in PostgreSQL so the union can change answers without a release. Each process keeps
a copy for a few seconds (``keyword_cache_seconds``): a change reaches every process within
that time, and the hot path of the message endpoint does not query the rules table.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import asyncpg

from wxbackend.store.messaging import keywords as store


@dataclass(frozen=True)
class Rule:
    name: str
    match_kind: str
    pattern: str
    reply: str
    regex: re.Pattern | None = None


class KeywordRouter:
    def __init__(self, pool: asyncpg.Pool, *, h5_base: str, cache_seconds: float = 10.0) -> None:
        self._pool = pool
        self._h5 = h5_base.rstrip("/")
        self._ttl = cache_seconds
        self._rules: list[Rule] = []
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _current(self) -> list[Rule]:
        if time.monotonic() - self._loaded_at < self._ttl:
            return self._rules
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self._ttl:
                async with self._pool.acquire() as conn:
                    rows = await store.list_enabled(conn)
                self._rules = [self._compile(r) for r in rows]
                self._loaded_at = time.monotonic()
        return self._rules

    def _compile(self, row) -> Rule:
        regex = None
        if row["match_kind"] == "regex":
            try:
                regex = re.compile(row["pattern"])
            except re.error:
                regex = re.compile(r"(?!)")  # a broken rule matches nothing rather than crash
        reply = row["reply"].replace("{h5}", self._h5)
        return Rule(row["name"], row["match_kind"], row["pattern"], reply, regex)

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def for_text(self, content: str) -> str | None:
        text = content.strip()
        rules = await self._current()
        for rule in rules:
            if (rule.match_kind == "exact" and text == rule.pattern) or \
               (rule.match_kind == "contains" and rule.pattern and rule.pattern in text) or \
               (rule.match_kind == "regex" and rule.regex is not None and rule.regex.search(text)):
                return rule.reply
        return self._default(rules)

    async def for_click(self, key: str) -> str | None:
        rules = await self._current()
        for rule in rules:
            if rule.match_kind == "click" and rule.pattern == key:
                return rule.reply
        return self._default(rules)

    async def for_event(self, event: str) -> str | None:
        for rule in await self._current():
            if rule.match_kind == "event" and rule.pattern == event:
                return rule.reply
        return None

    async def default(self) -> str | None:
        return self._default(await self._current())

    @staticmethod
    def _default(rules: list[Rule]) -> str | None:
        return next((r.reply for r in rules if r.match_kind == "default"), None)
