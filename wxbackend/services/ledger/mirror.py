"""A city node's mirror: a verified copy of the province's log, as far as the node may see it.

For a new checkpoint (pushed with a cosigning request, or read by polling) the node reads the
level-0 hash tiles from its verified size on, extends its own right edge of the tree (a compact
range) with them, and accepts the tiles only if that reproduces the checkpoint's root: one
forged or truncated tile and nothing is accepted. It then reads its subtree's entries (and the
audit heads) through the signed platform API, checks each against the hash the verified tiles
hold at its index and against the subtree, and stores them with the new size in one
transaction per chunk, so a node killed mid-sync resumes from its last chunk with nothing lost or
doubled. A checkpoint smaller than the verified one, another root for the verified size, an
unknown or failing signature: refused, the evidence kept and an alarm raised (metric, log, and
the province's console through the API).

Memory: the hashes being verified, some 80 bytes per new entry as Python objects (a node catching
up on a million entries grew by 117 MiB, ``docs/benchmarks.md``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from wxbackend.infra.metrics import LEDGER_ALARMS, NODE_LAG, NODE_SIZE
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.ledger import entries as entry_rules
from wxbackend.services.ledger import tlog
from wxbackend.services.ledger.client import ProvinceClient, ProvinceUnavailable, TileMismatch
from wxbackend.services.ledger.notes import Checkpoint, NoteError, Verifier, verify_note
from wxbackend.store.ledger import node as store

log = logging.getLogger(__name__)

CHUNK = 64 * tlog.TILE_WIDTH     # entries verified and stored per transaction


class Refused(Exception):
    """A checkpoint, tile or entry that does not verify; the evidence has been kept."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class MirrorState:
    size: int
    root: bytes
    entries: int


class Mirror:
    def __init__(self, pool: asyncpg.Pool, client: ProvinceClient, *, name: str, origin: str,
                 log_keys: Iterable[Verifier], codes: list[str], org: str | None = None,
                 clock: Clock = china_now, page: int = 5000) -> None:
        self.pool = pool
        self.client = client
        self.name = name
        self.origin = origin
        self.log_keys = list(log_keys)
        self.codes = codes            # the union code path of the node's subtree
        self.org = org                # the subtree asked for (default: the node's own union)
        self.clock = clock
        self.page = page
        self._lock = asyncio.Lock()

    async def refuse(self, kind: str, message: str, evidence: dict) -> Refused:
        LEDGER_ALARMS.labels(self.name, kind).inc()
        log.error("ledger alarm (%s) %s: %s", self.origin, kind, message)
        async with self.pool.acquire() as conn:
            await store.add_evidence(conn, self.origin, kind, message, evidence, self.clock())
        return Refused(kind, message)

    def verify_checkpoint(self, note: bytes) -> Checkpoint:
        try:
            parsed, verified = verify_note(note, self.log_keys)
        except NoteError as exc:
            kind = "unknown_key" if exc.code == "unknown_key" else "bad_signature"
            raise Refused(kind, f"检查点签名无效：{exc}") from None
        if not verified:
            raise Refused("unknown_key", "检查点不是由省级账本的密钥签名的")
        cp = Checkpoint.parse(parsed.text)
        if cp.origin != self.origin:
            raise Refused("unknown_origin", f"检查点属于另一个日志：{cp.origin}")
        return cp

    async def state(self) -> MirrorState:
        async with self.pool.acquire() as conn:
            row = await store.mirror(conn, self.origin)
            count = await store.count_entries(conn, self.origin)
        if row is None:
            return MirrorState(0, tlog.EMPTY_ROOT, count)
        return MirrorState(row["size"], bytes(row["root"]), count)

    async def sync(self, note: bytes | None = None, *, signed_at: float | None = None) -> MirrorState:
        """Verify and copy up to ``note`` (default: the province's latest checkpoint)."""
        async with self._lock:
            if note is None:
                note = await self.client.checkpoint()
            try:
                cp = self.verify_checkpoint(note)
            except Refused as exc:
                raise await self.refuse(exc.kind, str(exc),
                                        {"checkpoint": note.decode(errors="replace")}) from None
            await self._sync_to(cp, note)
            state = await self.state()
        NODE_SIZE.labels(self.origin).set(state.size)
        if signed_at is not None:
            NODE_LAG.observe(max(time.time() - signed_at, 0.0))
        return state

    async def _sync_to(self, cp: Checkpoint, note: bytes) -> None:
        async with self.pool.acquire() as conn:
            row = await store.mirror(conn, self.origin)
        size = row["size"] if row else 0
        root = bytes(row["root"]) if row else tlog.EMPTY_ROOT
        held = {"held_size": size, "held_root": base64.b64encode(root).decode(),
                "held_checkpoint": bytes(row["note"]).decode() if row else "",
                "checkpoint": note.decode()}
        if cp.size < size:
            raise await self.refuse("log_shrank",
                                    f"日志回退：本节点已核验 {size} 条，新检查点只有 {cp.size} 条",
                                    held)
        if cp.size == size:
            if cp.root != root:
                raise await self.refuse("fork", f"同一树大小 {size} 出现了两个不同的根哈希（日志分叉）", held)
            return
        edge = tlog.CompactRange.from_bytes(bytes(row["edge"])) if row else tlog.CompactRange()
        try:
            leaves = await self.client.leaf_hashes(size, cp.size)
        except TileMismatch as exc:
            raise await self.refuse("bad_tile", str(exc), held) from None
        # Verify every new hash against the checkpoint before storing anything, keeping the
        # right edge at each chunk boundary for the stores that follow.
        edges: dict[int, bytes] = {}
        for offset in range(0, len(leaves), CHUNK):
            edge.extend(leaves[offset:offset + CHUNK])
            edges[min(size + offset + CHUNK, cp.size)] = edge.to_bytes()
            await asyncio.sleep(0)
        if edge.root() != cp.root:
            raise await self.refuse("bad_tile",
                                    f"数据块与检查点不符：{size} 至 {cp.size} 的哈希算不出检查点的根哈希",
                                    held)
        start = size
        for end, edge_bytes in sorted(edges.items()):
            await self._copy_chunk(start, end, leaves, size, edge_bytes, note)
            start = end

    async def _copy_chunk(self, start: int, end: int, leaves: list[bytes], base: int, edge: bytes,
                          note: bytes) -> None:
        got: list[tuple[int, bytes]] = []
        cursor: int | None = start
        while cursor is not None and cursor < end:
            page, cursor = await self.client.entries(cursor, end, org=self.org, limit=self.page)
            for idx, body in page:
                if not start <= idx < end or (got and idx <= got[-1][0]):
                    raise await self.refuse("bad_entry", f"条目序号 {idx} 不在请求的范围内或重复",
                                            {"index": idx, "range": [start, end]})
                if tlog.leaf_hash(body) != leaves[idx - base]:
                    raise await self.refuse("bad_entry", f"条目 {idx} 与已核验的哈希不符",
                                            {"index": idx, "entry": base64.b64encode(body).decode()})
                try:
                    mine = entry_rules.within(body, self.codes)
                except ValueError as exc:
                    raise await self.refuse("bad_entry", f"条目 {idx} 无法解析：{exc}",
                                            {"index": idx}) from None
                if not mine:
                    raise await self.refuse("outside_subtree", f"条目 {idx} 不属于本节点的范围",
                                            {"index": idx, "entry": body.decode(errors="replace")})
                got.append((idx, body))
        root = tlog.CompactRange.from_bytes(edge).root()
        async with self.pool.acquire() as conn, conn.transaction():
            state = await store.lock_mirror(conn, self.origin, tlog.EMPTY_ROOT,
                                            tlog.CompactRange().to_bytes(), self.clock())
            if state["size"] != start:
                return      # another sync of this node got here first
            await store.advance_mirror(conn, self.origin, size=end, root=root, edge=edge, note=note,
                                       at=self.clock(), entries=got)

    async def report(self) -> int:
        """Send the evidence not yet reported to the province; how many went."""
        async with self.pool.acquire() as conn:
            rows = await store.unreported(conn)
        sent = []
        for row in rows:
            try:
                await self.client.raise_alarm(
                    kind=row["kind"], message=row["message"],
                    evidence={**row["evidence"], "seen_at": row["seen_at"].isoformat()})
            except ProvinceUnavailable:
                break
            sent.append(row["id"])
        if sent:
            async with self.pool.acquire() as conn:
                await store.mark_reported(conn, sent, self.clock())
        return len(sent)

    async def entries(self, start: int = 0, limit: int = 100) -> list[tuple[int, bytes]]:
        async with self.pool.acquire() as conn:
            rows = await store.entries(conn, self.origin, start, limit)
        return [(r["idx"], bytes(r["body"])) for r in rows]

    async def evidence_count(self) -> int:
        async with self.pool.acquire() as conn:
            return await store.count_evidence(conn)
