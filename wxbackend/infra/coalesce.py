"""Coalescing: the writes of concurrent requests go to the database together.

In a burst, dozens of requests each want one small round trip to PostgreSQL or Redis. A round
trip costs a message's worth of CPU in the client library alone, so instead every request hands
its item to a :class:`Coalescer` and awaits its own result; all items submitted while the event
loop runs one pass — and while the previous flush is on the wire — go out as one statement or
one pipeline (group commit). An idle server flushes a lone item at once, so nothing waits for a
timer; a busy one amortises the round trip over the batch. Each item still gets its own result
or its own exception.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[list[R]]], *, max_batch: int = 256,
                 max_inflight: int = 2, key: Callable[[T], Hashable] | None = None) -> None:
        """``flush`` gets a batch and returns one result per item, in order. ``key``, when
        given, keeps items with the same key out of the same batch (a statement may not, say,
        upsert one row twice) and out of batches in flight together (so concurrent statements
        never wait on each other's rows); such an item waits for the next batch."""
        self._flush = flush
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._key = key
        self._queue: collections.deque[tuple[T, asyncio.Future]] = collections.deque()
        self._inflight: set[asyncio.Task] = set()
        self._busy: set[Hashable] = set()  # keys of the items in flight
        self._scheduled = False

    async def submit(self, item: T) -> R:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if not self._scheduled and len(self._inflight) < self._max_inflight:
            self._scheduled = True
            # Let the other requests of this loop pass join the batch before it leaves.
            asyncio.get_running_loop().call_soon(self._start)
        return await future

    def _start(self) -> None:
        self._scheduled = False
        while self._queue and len(self._inflight) < self._max_inflight:
            batch, keys = self._take()
            if not batch:
                break
            task = asyncio.ensure_future(self._run(batch, keys))
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _take(self) -> tuple[list[tuple[T, asyncio.Future]], list[Hashable]]:
        batch: list[tuple[T, asyncio.Future]] = []
        held: list[tuple[T, asyncio.Future]] = []
        keys: list[Hashable] = []
        busy = self._busy
        while self._queue and len(batch) < self._max_batch:
            item, future = self._queue.popleft()
            if future.done():  # the caller gave up (cancelled)
                continue
            if self._key is not None:
                key = self._key(item)
                if key in busy:
                    held.append((item, future))
                    continue
                busy.add(key)
                keys.append(key)
            batch.append((item, future))
        self._queue.extendleft(reversed(held))
        return batch, keys

    async def _run(self, batch: list[tuple[T, asyncio.Future]], keys: list[Hashable]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"flush returned {len(results)} results for {len(batch)} items")
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._busy.difference_update(keys)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    def _done(self, task: asyncio.Task) -> None:
        self._inflight.discard(task)
        if self._queue and not self._scheduled:
            self._start()

    async def drain(self) -> None:
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
