"""Client addresses this process has already refused until the end of a rate window.

A flood from one address keeps coming after its first 429. Remembering the refusal here lets the
server's front answer the rest of the window without a Redis round trip, a request handler or a
JSON parse; the Redis counters stay the record that all processes share, so forgetting an entry
(a restart, or more addresses than ``size``) only means the next attempt is counted again.
"""

from __future__ import annotations


class Refusals:
    """Key -> (refused until, Unix time; answers given from memory since)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._until: dict[str, list[int]] = {}

    def refuse(self, key: str, until: int) -> None:
        self._until.pop(key, None)
        self._until[key] = [until, 0]
        while len(self._until) > self._size:  # dicts keep insertion order: drop the oldest
            del self._until[next(iter(self._until))]

    def check(self, key: str, now: int) -> tuple[int, int] | None:
        """``(until, times)`` while ``key`` is refused (``times`` counts this answer too), else
        None. An entry whose window has ended is forgotten."""
        entry = self._until.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            del self._until[key]
            return None
        entry[1] += 1
        return entry[0], entry[1]
