"""Merkle-tree arithmetic of the ledger: RFC 6962/9162 hashing, proofs, and the tlog-tiles layout.

Everything here is a pure function of its arguments (no I/O), so the log, the city nodes and any
outside verifier share one implementation. The hash is SHA-256 because tlog-tiles fixes it.

The log stores the tree as tlog-tiles "tiles": level L tile N holds up to 256 hashes, each the
hash of a perfect subtree of height 8·L (level 0 holds the leaf hashes). A proof is a list of
hashes of leaf ranges; each range's hash is built from the hashes of the perfect subtrees it
splits into, and the caller supplies those through a ``perfect(subtree)`` callback, so a proof
over billions of leaves reads only a handful of tiles (see :func:`needed` and
:func:`tile_location`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF  # entry bundles prefix each entry with a uint16 length

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n ≥ 2): where MTH splits n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_perfect(start: int, end: int) -> bool:
    """Is [start, end) the leaf range of one node of a tree (a power-of-two width, aligned)?"""
    n = end - start
    return n > 0 and n & (n - 1) == 0 and start % n == 0


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, straight from the RFC 6962 definition (a reference for
    tests and small trees; the log itself uses :class:`CompactRange` or tiles)."""

    def mth(start: int, end: int) -> bytes:
        if end - start == 1:
            return leaf_hashes[start]
        k = _split(end - start)
        return node_hash(mth(start, start + k), mth(start + k, end))

    return mth(0, len(leaf_hashes)) if leaf_hashes else EMPTY_ROOT


@dataclass(frozen=True, order=True)
class Subtree:
    """The perfect subtree over leaves [index << height, (index + 1) << height)."""

    height: int
    index: int

    def __post_init__(self) -> None:
        if not 0 <= self.height <= MAX_LEVEL or self.index < 0:
            raise ValueError(f"子树参数无效：高度 {self.height}，序号 {self.index}")

    @property
    def start(self) -> int:
        return self.index << self.height

    @property
    def end(self) -> int:
        return (self.index + 1) << self.height

    @property
    def size(self) -> int:
        return 1 << self.height


Perfect = Callable[[Subtree], bytes]


def _check_range(start: int, end: int) -> None:
    if not 0 <= start <= end:
        raise ValueError(f"叶子范围无效：[{start}, {end})")


def decompose(start: int, end: int) -> list[Subtree]:
    """The perfect subtrees whose hashes MTH(D[start:end]) is built from, left to right.

    For the ranges that occur in proofs and roots (``start`` a multiple of a power of two at
    least ``end - start``) these are the binary digits of the width, largest first.
    """
    _check_range(start, end)
    out: list[Subtree] = []

    def walk(lo: int, hi: int) -> None:
        if _is_perfect(lo, hi):
            n = hi - lo
            out.append(Subtree(n.bit_length() - 1, lo // n))
            return
        k = _split(hi - lo)
        walk(lo, lo + k)
        walk(lo + k, hi)

    if start < end:
        walk(start, end)
    return out


def range_hash(start: int, end: int, perfect: Perfect) -> bytes:
    """MTH(D[start:end]) from the hashes of the subtrees :func:`decompose` names."""
    _check_range(start, end)
    if start == end:
        return EMPTY_ROOT
    if _is_perfect(start, end):
        n = end - start
        return perfect(Subtree(n.bit_length() - 1, start // n))
    k = _split(end - start)
    return node_hash(range_hash(start, start + k, perfect), range_hash(start + k, end, perfect))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form RFC 9162 PATH(index, D_size), from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(f"叶子序号 {index} 不在大小为 {size} 的树中")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form RFC 9162 PROOF(old, D_new), bottom-up.

    Empty when ``old`` is 0 or equals ``new``: no proof is needed (tlog-witness sends none).
    """
    if not 0 <= old <= new:
        raise ValueError(f"一致性证明要求 0 ≤ 旧大小 ≤ 新大小（{old}，{new}）")
    if old in (0, new):
        return []
    ranges: list[tuple[int, int]] = []
    # SUBPROOF(m, D[start:end], whole), unrolled: m counts the old leaves inside the range.
    start, end, m, whole = 0, new, old, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        # The old tree's last perfect subtree; when the old tree is itself perfect the verifier
        # already holds its root, so RFC 9162 leaves it out.
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def needed(ranges: Iterable[tuple[int, int]]) -> set[Subtree]:
    """Every perfect subtree whose hash :func:`hash_ranges` will ask for."""
    out: set[Subtree] = set()
    for start, end in ranges:
        out.update(decompose(start, end))
    return out


def hash_ranges(ranges: Iterable[tuple[int, int]], perfect: Perfect) -> list[bytes]:
    """The proof hashes of ``ranges`` (from :func:`inclusion_ranges` or
    :func:`consistency_ranges`)."""
    return [range_hash(start, end, perfect) for start, end in ranges]


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect tree whose bottom row is ``hashes`` (2**k of them, k ≥ 0)."""
    n = len(hashes)
    if n == 0 or n & (n - 1):
        raise ValueError(f"完美子树需要 2 的幂个哈希，收到 {n} 个")
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ValueError("哈希长度必须为 32 字节")
    row = list(hashes)
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def tile_location(subtree: Subtree) -> tuple[int, int, int, int]:
    """Where a perfect subtree's hash lives in the tiles: ``(level, tile_index, offset, count)``.

    Its hash is ``perfect_root`` of hashes [offset, offset + count) of tile (level, tile_index);
    level = height // 8 and count = 2 ** (height % 8), so a single tile always suffices.
    """
    level, rest = divmod(subtree.height, TILE_HEIGHT)
    first = subtree.index << rest  # index of its first hash within the level
    tile_index, offset = divmod(first, TILE_WIDTH)
    return level, tile_index, offset, 1 << rest


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: is ``leaf`` (a leaf hash) entry ``index`` of the tree of ``size`` with
    ``root``? The final ``sn == 0`` test rejects padded and truncated paths."""
    if not 0 <= index < size or len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0 or len(p) != HASH_SIZE:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (new, new_root) an append-only extension of (old, old_root)?

    As the CT verifiers do: old > new is false; old == new needs an empty proof and equal roots;
    old == 0 needs an empty proof (the empty tree is consistent with every tree, tlog-witness).
    Whether a size-0 checkpoint carries the empty root is the caller's check.
    """
    if old < 0 or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof or any(len(c) != HASH_SIZE for c in proof):
        return False
    path = list(proof)
    if old & (old - 1) == 0:
        # A perfect old tree is a node of the new one: its root is where the path starts.
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


@dataclass
class CompactRange:
    """The right edge of a tree of ``size`` leaves: the hashes of the perfect subtrees
    :func:`decompose` (0, size) names, largest first (one per set bit of ``size``, at most 64).
    Enough to append leaves and compute the root without the rest of the tree."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 <= self.size < 1 << 64:
            raise ValueError(f"树大小无效：{self.size}")
        if len(self.hashes) != self.size.bit_count() or any(len(h) != HASH_SIZE for h in self.hashes):
            raise ValueError(f"大小为 {self.size} 的树边缘应有 {self.size.bit_count()} 个 32 字节哈希")

    @classmethod
    def from_perfect(cls, size: int, perfect: Perfect) -> CompactRange:
        """The edge of the tree of ``size`` leaves, from the perfect subtrees' hashes (e.g. tiles)."""
        return cls(size, [perfect(s) for s in decompose(0, size)])

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("叶子哈希长度必须为 32 字节")
        self.hashes.append(leaf)
        # Every trailing 1 bit of the old size is a subtree the new leaf completes a pair with.
        n = self.size
        while n & 1:
            right = self.hashes.pop()
            self.hashes[-1] = node_hash(self.hashes[-1], right)
            n >>= 1
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    def to_bytes(self) -> bytes:
        """uint64 big-endian size, then the hashes."""
        return self.size.to_bytes(8, "big") + b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        if len(data) < 8:
            raise ValueError("树边缘数据不完整")
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        if len(body) != size.bit_count() * HASH_SIZE:
            raise ValueError(f"树边缘数据长度与大小 {size} 不符")
        return cls(size, [body[i:i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])


# --- tlog-tiles paths and bundles ----------------------------------------------------------------

_TILE_PATH = re.compile(r"tile/(entries|[0-9]+)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([0-9]+))?")


def encode_index(n: int) -> str:
    """A tile index as tlog-tiles path elements: 1234067 → ``x001/x234/067``, 5 → ``005``."""
    if n < 0:
        raise ValueError(f"数据块序号不能为负：{n}")
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def _check_level(level: int | str) -> None:
    if level == "entries":
        return
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"数据块层级必须是 0–{MAX_LEVEL} 的整数或 entries：{level!r}")


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``; level ``"entries"`` for an entry bundle."""
    _check_level(level)
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"数据块宽度必须为 1–{TILE_WIDTH}：{width}")
    path = f"tile/{level}/{encode_index(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def parse_tile_path(path: str) -> tuple[int | str, int, int]:
    """``(level, index, width)`` of a tile or entry-bundle path; width 256 for a full one.

    Only the canonical spelling is accepted, so each resource has exactly one path: the level
    and the width without leading zeroes, three-digit index elements, ``x`` on all but the last
    and no leading ``x000``, and a partial width of 1–255.
    """
    m = _TILE_PATH.fullmatch(path)
    if m is None:
        raise ValueError(f"不是 tlog-tiles 数据块路径：{path!r}")
    raw_level, raw_index, raw_width = m.groups()
    level: int | str
    if raw_level == "entries":
        level = "entries"
    else:
        if raw_level != str(int(raw_level)) or int(raw_level) > MAX_LEVEL:
            raise ValueError(f"数据块层级必须是 0–{MAX_LEVEL} 且无前导零：{raw_level}")
        level = int(raw_level)
    parts = raw_index.split("/")
    if len(parts) > 1 and parts[0] == "x000":
        raise ValueError(f"数据块序号编码不规范（多余的 x000）：{raw_index}")
    index = int("".join(p.removeprefix("x") for p in parts))
    width = TILE_WIDTH
    if raw_width is not None:
        width = int(raw_width)
        if raw_width != str(width) or not 1 <= width < TILE_WIDTH:
            raise ValueError(f"部分数据块宽度必须是 1–{TILE_WIDTH - 1} 且无前导零：{raw_width}")
    if tile_path(level, index, width) != path:  # the rules above should make this unreachable
        raise ValueError(f"数据块路径不规范：{path!r}")
    return level, index, width


def tiles_for_size(size: int, level: int) -> tuple[int, int]:
    """``(full tiles, partial width)`` at ``level`` of a tree of ``size`` leaves (width 0: no
    partial tile). Size 70,000: level 0 → (273, 112), level 1 → (1, 17), level 2 → (0, 1)."""
    if size < 0:
        raise ValueError(f"树大小不能为负：{size}")
    _check_level(level)
    if level == "entries":
        raise ValueError("entries 不是哈希层级")
    return size >> (TILE_HEIGHT * (level + 1)), (size >> (TILE_HEIGHT * level)) % TILE_WIDTH


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    """A tlog-tiles entry bundle: each entry prefixed by its big-endian uint16 length."""
    if len(entries) > TILE_WIDTH:
        raise ValueError(f"一个条目包最多 {TILE_WIDTH} 条，收到 {len(entries)} 条")
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"条目长 {len(entry)} 字节，超过 {MAX_ENTRY_SIZE} 字节上限")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def parse_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle; ValueError when it is truncated or holds more than 256."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise ValueError("条目包在长度前缀处被截断")
        n = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        if pos + n > len(data):
            raise ValueError(f"条目包在第 {len(entries) + 1} 条处被截断")
        entries.append(bytes(data[pos:pos + n]))
        pos += n
        if len(entries) > TILE_WIDTH:
            raise ValueError(f"一个条目包最多 {TILE_WIDTH} 条")
    return entries
