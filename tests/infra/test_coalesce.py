"""The coalescer: concurrent submissions share one flush, each gets its own result."""

from __future__ import annotations

import asyncio

import pytest

from wxbackend.infra.coalesce import Coalescer


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: object = None) -> None:
        self.batches: list[list] = []
        self.delay = delay
        self.fail_on = fail_on

    async def flush(self, items: list) -> list:
        self.batches.append(list(items))
        await asyncio.sleep(self.delay)
        if self.fail_on in items:
            raise ValueError(f"cannot write {self.fail_on}")
        return [f"done:{i}" for i in items]


async def test_a_lone_item_is_flushed_at_once() -> None:
    rec = Recorder()
    assert await asyncio.wait_for(Coalescer(rec.flush).submit(1), 0.5) == "done:1"
    assert rec.batches == [[1]]


async def test_concurrent_items_share_a_flush_and_keep_their_own_results() -> None:
    rec = Recorder(delay=0.01)
    co = Coalescer(rec.flush, max_inflight=1)
    results = await asyncio.gather(*(co.submit(i) for i in range(50)))
    assert results == [f"done:{i}" for i in range(50)]
    assert len(rec.batches) < 5
    assert sorted(i for b in rec.batches for i in b) == list(range(50))


async def test_batches_are_capped() -> None:
    rec = Recorder()
    co = Coalescer(rec.flush, max_batch=8)
    await asyncio.gather(*(co.submit(i) for i in range(30)))
    assert max(len(b) for b in rec.batches) <= 8


async def test_items_with_the_same_key_go_to_different_batches() -> None:
    rec = Recorder()
    co = Coalescer(rec.flush, key=lambda item: item[0])
    items = [("alice", 1), ("bob", 1), ("alice", 2), ("alice", 3), ("bob", 2)]
    await asyncio.gather(*(co.submit(i) for i in items))
    for batch in rec.batches:
        assert len({k for k, _ in batch}) == len(batch)
    alice = [n for b in rec.batches for k, n in b if k == "alice"]
    assert alice == [1, 2, 3]  # order kept per key


async def test_a_key_is_never_in_two_batches_in_flight_together() -> None:
    """Concurrent flushes (max_inflight > 1) never hold the same key: the second item of a key
    waits until the batch with the first one is done."""
    in_flight: list[set] = []
    overlaps: list[str] = []

    async def flush(items: list) -> list:
        keys = {k for k, _ in items}
        if any(keys & other for other in in_flight):
            overlaps.append(repr(items))
        in_flight.append(keys)
        await asyncio.sleep(0.01)
        in_flight.remove(keys)
        return items

    co = Coalescer(flush, max_batch=2, max_inflight=4, key=lambda item: item[0])
    items = [("alice", 1), ("bob", 1), ("alice", 2), ("carol", 1), ("bob", 2), ("alice", 3)]
    assert await asyncio.gather(*(co.submit(i) for i in items)) == items
    assert overlaps == []


async def test_a_failed_flush_fails_only_its_own_batch() -> None:
    rec = Recorder(delay=0.01, fail_on=3)
    co = Coalescer(rec.flush, max_batch=4, max_inflight=1)
    results = await asyncio.gather(*(co.submit(i) for i in range(8)), return_exceptions=True)
    failed = [i for i, r in enumerate(results) if isinstance(r, ValueError)]
    assert 3 in failed and len(failed) <= 4
    assert all(r == f"done:{i}" for i, r in enumerate(results) if i not in failed)


async def test_a_flush_with_the_wrong_number_of_results_is_an_error() -> None:
    async def short(items: list) -> list:
        return items[:-1]

    with pytest.raises(RuntimeError, match="results"):
        await Coalescer(short).submit(1)


async def test_a_cancelled_caller_is_left_out_of_the_flush() -> None:
    rec = Recorder(delay=0.02)
    co = Coalescer(rec.flush, max_inflight=1)
    first = asyncio.ensure_future(co.submit("first"))
    await asyncio.sleep(0)  # "first" is being flushed now
    waiting = asyncio.ensure_future(co.submit("gave-up"))
    kept = asyncio.ensure_future(co.submit("kept"))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await first == "done:first"
    assert await kept == "done:kept"
    assert "gave-up" not in [i for b in rec.batches for i in b]
