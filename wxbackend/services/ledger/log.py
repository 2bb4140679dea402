"""The province's log: queued base-data changes and audit heads become entries, tiles and a
signed checkpoint, one batch per transaction.

The integrator takes the oldest queued items under a transaction-level advisory lock, encodes
each as its canonical entry (:mod:`.entries`), appends their leaf hashes to the right edge of
the tile tree, and signs the new checkpoint, all in one transaction: a province stopped mid-append
rolls back to the last checkpoint and the queue still holds what was taken. Only the right edge's
partial tiles (one per level, at most a few KB) are read and written per batch, so the cost of an
append does not grow with the log. Proofs read O(log n) hashes from a handful of tiles.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

import asyncpg

from wxbackend.infra.metrics import LEDGER_APPENDED, LEDGER_SIZE
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound
from wxbackend.services.ledger import tlog
from wxbackend.services.ledger.entries import encode
from wxbackend.services.ledger.notes import Checkpoint, Signer, sign_note
from wxbackend.store.ledger import log as store

log = logging.getLogger(__name__)

BATCH = 5000
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Signed:
    """A checkpoint as the log signed it."""
    size: int
    root: bytes
    note: bytes
    appended: int = 0      # entries this checkpoint added


class TileCache:
    """Tiles read for one computation, each fetched once; ``perfect`` answers a perfect
    subtree's hash from them."""

    def __init__(self, tiles: dict[tuple[int, int], bytes]) -> None:
        self.tiles = tiles

    def perfect(self, subtree: tlog.Subtree) -> bytes:
        level, idx, offset, count = tlog.tile_location(subtree)
        data = self.tiles.get((level, idx), b"")
        hashes = [data[i * 32:(i + 1) * 32] for i in range(offset, offset + count)]
        if len(hashes[-1]) != 32:
            raise NotFound("账本中缺少该部分的哈希", code="ledger_tile_missing")
        return tlog.perfect_root(hashes)


def edge_keys(size: int) -> list[tuple[int, int]]:
    """The partial tiles on the right edge of a tree of ``size`` leaves, one per level."""
    keys, level = [], 0
    while size >> (8 * level):
        full, width = tlog.tiles_for_size(size, level)
        if width:
            keys.append((level, full))
        level += 1
    return keys


def grow(tiles: dict[tuple[int, int], bytes], size: int, leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Append leaf hashes to the tiles of a tree of ``size`` leaves; return every tile that
    changed (full or partial). ``tiles`` must hold the right edge's partial tiles and is updated."""
    changed: dict[tuple[int, int], bytes] = {}
    for offset, leaf in enumerate(leaves):
        index, level, value = size + offset, 0, leaf
        while True:
            key = (level, index >> 8)
            data = tiles.get(key, b"") + value
            tiles[key] = changed[key] = data
            if len(data) < tlog.TILE_WIDTH * tlog.HASH_SIZE:
                break
            # The tile is full: its root is one hash of the level above.
            value = tlog.perfect_root([data[i:i + 32] for i in range(0, len(data), 32)])
            index >>= 8
            level += 1
    return changed


class LedgerLog:
    def __init__(self, pool: asyncpg.Pool, *, origin: str, signer: Signer | None,
                 clock: Clock = china_now, batch: int = BATCH) -> None:
        self.pool = pool
        self.origin = origin
        self.signer = signer
        self.clock = clock
        self.batch = batch

    @property
    def enabled(self) -> bool:
        return self.signer is not None

    async def integrate(self) -> Signed | None:
        """Append one batch and sign its checkpoint; None when there was nothing to append (or
        another process is appending). The first call on an empty log signs the empty tree."""
        if self.signer is None:
            return None
        async with self.pool.acquire() as conn, conn.transaction():
            if not await store.lock_integrator(conn):
                return None
            latest = await store.latest_checkpoint(conn)
            size = latest["size"] if latest else 0
            rows = await store.take_queued(conn, self.batch)
            if not rows and latest is not None:
                return None
            bodies = [encode(r) for r in rows]
            tiles = await store.tiles(conn, edge_keys(size))
            changed = grow(tiles, size, [tlog.leaf_hash(b) for b in bodies])
            new_size = size + len(bodies)
            root = tlog.CompactRange.from_perfect(new_size, TileCache(tiles).perfect).root()
            note = sign_note(Checkpoint(self.origin, new_size, root).body(), self.signer)
            await store.add_entries(conn, [(size + i, r["kind"], r["ref"], r["scope"], b)
                                           for i, (r, b) in enumerate(zip(rows, bodies, strict=True))])
            await store.put_tiles(conn, changed)
            await store.add_checkpoint(conn, new_size, root, note, self.clock())
        LEDGER_APPENDED.inc(len(bodies))
        LEDGER_SIZE.set(new_size)
        return Signed(new_size, root, note, len(bodies))

    async def integrate_all(self) -> Signed | None:
        """Integrate until the queue is empty; the last checkpoint signed."""
        last = None
        while (signed := await self.integrate()) is not None:
            last = signed
        return last

    # --- reading --------------------------------------------------------------------------------
    async def latest(self) -> Signed | None:
        async with self.pool.acquire() as conn:
            row = await store.latest_checkpoint(conn)
        return Signed(row["size"], bytes(row["root"]), bytes(row["note"])) if row else None

    async def signed(self, size: int) -> Signed:
        async with self.pool.acquire() as conn:
            row = await store.checkpoint(conn, size)
        if row is None:
            raise NotFound(f"没有树大小为 {size} 的检查点", code="checkpoint_not_found")
        return Signed(row["size"], bytes(row["root"]), bytes(row["note"]))

    async def _hashes(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        needed = tlog.needed(ranges)
        keys = sorted({tlog.tile_location(s)[:2] for s in needed})
        async with self.pool.acquire() as conn:
            cache = TileCache(await store.tiles(conn, keys))
        return tlog.hash_ranges(ranges, cache.perfect)

    async def _checked_size(self, size: int) -> Signed:
        if size <= 0:
            raise InvalidInput("树大小必须为正整数", code="invalid_size")
        return await self.signed(size)

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        """The inclusion proof of entry ``index`` in the signed tree of ``size``."""
        await self._checked_size(size)
        if not 0 <= index < size:
            raise InvalidInput(f"条目序号 {index} 不在大小为 {size} 的树中", code="index_out_of_range")
        return await self._hashes(tlog.inclusion_ranges(index, size))

    async def consistency(self, old: int, new: int) -> list[bytes]:
        """The consistency proof between two signed tree sizes."""
        if not 0 <= old <= new:
            raise InvalidInput("一致性证明要求 0 ≤ 旧大小 ≤ 新大小", code="invalid_size")
        await self._checked_size(new)
        if old in (0, new):
            return []
        await self.signed(old)
        return await self._hashes(tlog.consistency_ranges(old, new))

    async def tile(self, level: int, index: int, width: int) -> bytes:
        """A hash tile as tlog-tiles serves it: ``width`` hashes, only once the tile holds them."""
        async with self.pool.acquire() as conn:
            data = await store.tile(conn, level, index)
        if data is None or len(data) < width * tlog.HASH_SIZE:
            raise NotFound("该数据块尚不存在", code="tile_not_found")
        return data[:width * tlog.HASH_SIZE]

    async def bundle(self, index: int, width: int) -> bytes:
        """An entry bundle (``tile/entries/N``): the entries of leaves [256N, 256N + width)."""
        start = index * tlog.TILE_WIDTH
        async with self.pool.acquire() as conn:
            bodies = await store.entries(conn, start, start + width)
        if len(bodies) < width:
            raise NotFound("该数据块尚不存在", code="tile_not_found")
        return tlog.entry_bundle(bodies)

    async def node_entries(self, *, org_id: int, province_scope: bool, org_code: str | None, start: int,
                           end: int | None, limit: int) -> dict:
        """A page of the entries of a union's subtree (and the audit heads) for a node: the
        node's own union's by default, or one it names inside its reach."""
        if start < 0 or (end is not None and end < start):
            raise InvalidInput("条目范围无效：应有 0 ≤ start ≤ end", code="invalid_range")
        limit = max(1, min(limit, MAX_PAGE))
        async with self.pool.acquire() as conn:
            own = await store.org_scope(conn, org_id=org_id)
            target = own if not org_code else await store.org_scope(conn, code=org_code)
            if target is None:
                raise NotFound(f"没有代码为 {org_code} 的工会", code="org_not_found")
            within = target["path"] == own["path"] or target["path"].startswith(own["path"] + ".")
            if not (within or province_scope):
                raise Forbidden("只能读取本节点所属工会及下级工会的账本条目", code="outside_subtree")
            size = (await store.latest_checkpoint(conn) or {"size": 0})["size"]
            end = size if end is None else min(end, size)
            rows = await store.entries_within(conn, start, end, None if province_scope and not org_code
                                              else target["path"], limit)
        last = rows[-1]["idx"] + 1 if len(rows) == limit else None
        return {"org": target["code"], "codes": list(target["codes"]), "size": size,
                "entries": [{"index": r["idx"], "entry": base64.b64encode(bytes(r["body"])).decode()}
                            for r in rows],
                "next": last if last is not None and last < end else None}
