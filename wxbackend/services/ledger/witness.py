"""A city node's witness (C2SP tlog-witness ``add-checkpoint``): it cosigns a checkpoint of the
province's log only when it is consistent with the last one it cosigned.

The check and the persisting of the new state happen under one row lock, so two concurrent
submissions cannot roll the witness back (the race the specification describes). What it refuses
with a valid log signature — two different roots for one size, a log that shrank, a proof that
does not verify — is kept as evidence and raised as an alarm: it is proof that the log forked.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from wxbackend.infra.metrics import LEDGER_ALARMS
from wxbackend.services.clock import Clock, china_now, unix_time
from wxbackend.services.errors import DomainError
from wxbackend.services.ledger import tlog
from wxbackend.services.ledger.notes import (
    Checkpoint,
    NoteError,
    Signature,
    Signer,
    Verifier,
    parse_note,
    verify_note,
)
from wxbackend.store.ledger import node as store

log = logging.getLogger(__name__)

MAX_PROOF = 63
MAX_SIZE = 2**63 - 1     # what the database holds; no log grows past it


class WitnessRefused(DomainError):
    """A refused submission; ``status`` is the one tlog-witness prescribes."""

    def __init__(self, status: int, message: str, code: str, *, size: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.size = size


@dataclass(frozen=True)
class Submission:
    old: int
    proof: tuple[bytes, ...]
    note: bytes


def parse_submission(body: bytes) -> Submission:
    """``old N``, up to 63 base64 proof lines, an empty line, then the checkpoint note."""
    head, sep, note = body.partition(b"\n\n")
    lines = head.split(b"\n")
    if not sep or not lines[0].startswith(b"old "):
        raise WitnessRefused(400, "请求格式错误：应为 old 行、一致性证明、空行和检查点", "malformed")
    digits = lines[0][4:]
    if not digits.isdigit() or len(digits) > 20 or (digits != b"0" and digits.startswith(b"0")):
        raise WitnessRefused(400, "请求格式错误：old 后应为十进制树大小", "malformed")
    if len(lines) - 1 > MAX_PROOF:
        raise WitnessRefused(400, f"一致性证明不得超过 {MAX_PROOF} 行", "malformed")
    proof = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            value = b""
        if len(value) != tlog.HASH_SIZE:
            raise WitnessRefused(400, "一致性证明的每一行应为 32 字节哈希的 base64", "malformed")
        proof.append(value)
    return Submission(int(digits), tuple(proof), note)


Alarm = Callable[[str, str, dict], Awaitable[None]]


class Witness:
    """``logs`` maps each followed origin to the keys its checkpoints may be signed with."""

    def __init__(self, pool: asyncpg.Pool, *, signer: Signer, logs: dict[str, Iterable[Verifier]],
                 clock: Clock = china_now,
                 on_cosigned: Callable[[Checkpoint, bytes], None] | None = None) -> None:
        self.pool = pool
        self.signer = signer
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.clock = clock
        self.on_cosigned = on_cosigned
        self._last_time = 0

    def _timestamp(self, last_cosigned: int) -> int:
        # Cosignature times never go backwards, whatever the clock does, across restarts too
        # (the time of the last cosignature is kept with the state).
        self._last_time = max(self._last_time, last_cosigned, unix_time(self.clock))
        return self._last_time

    async def add_checkpoint(self, body: bytes) -> bytes:
        """The cosignature lines for a submission, or :class:`WitnessRefused`."""
        sub = parse_submission(body)
        try:
            text = parse_note(sub.note).text
            origin = text.split(b"\n", 1)[0].decode()
        except (NoteError, UnicodeDecodeError) as exc:
            raise WitnessRefused(400, f"检查点格式错误：{exc}", "malformed") from None
        keys = self.logs.get(origin)
        if keys is None:
            raise WitnessRefused(404, f"本节点不跟随日志 {origin}", "unknown_origin")
        try:
            note, verified = verify_note(sub.note, keys)
        except NoteError as exc:
            raise WitnessRefused(403, f"检查点签名无效：{exc}", "bad_signature") from None
        if not verified:
            raise WitnessRefused(403, "检查点没有本节点信任的省级签名", "bad_signature")
        try:
            cp = Checkpoint.parse(note.text)
        except NoteError as exc:
            raise WitnessRefused(400, f"检查点格式错误：{exc}", "malformed") from None
        if cp.size > MAX_SIZE:
            raise WitnessRefused(400, "检查点的树大小超出范围", "malformed")
        evidence = {"old": sub.old, "proof": [base64.b64encode(p).decode() for p in sub.proof],
                    "checkpoint": sub.note.decode()}
        try:
            return await self._check_and_cosign(cp, sub, note.text)
        except WitnessRefused as exc:
            if exc.status == 422 or exc.code == "log_shrank":
                await self.keep_evidence(origin, exc.code, str(exc), evidence)
            raise

    async def _check_and_cosign(self, cp: Checkpoint, sub: Submission, text: bytes) -> bytes:
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            state = await store.lock_witness(conn, cp.origin, tlog.EMPTY_ROOT, now)
            if sub.old > cp.size:
                if sub.old == state["size"]:
                    raise WitnessRefused(400, f"日志回退：已联署大小 {sub.old}，新检查点只有 {cp.size}",
                                         "log_shrank")
                raise WitnessRefused(400, "old 不得大于检查点的树大小", "old_too_large")
            if sub.old != state["size"]:
                raise WitnessRefused(409, f"本节点最近联署的树大小为 {state['size']}", "size_mismatch",
                                     size=state["size"])
            if cp.size == 0 and cp.root != tlog.EMPTY_ROOT:
                raise WitnessRefused(422, "大小为 0 的检查点必须是空树的根哈希", "bad_empty_root")
            if sub.old == 0 and sub.proof:
                raise WitnessRefused(422, "旧大小为 0 时一致性证明应为空", "bad_proof")
            if sub.old == cp.size and cp.root != bytes(state["root"]):
                raise WitnessRefused(422, f"同一树大小 {cp.size} 出现了两个不同的根哈希（日志分叉）", "fork")
            if sub.old > 0 and not tlog.verify_consistency(
                    sub.old, cp.size, bytes(state["root"]), cp.root, sub.proof):
                raise WitnessRefused(422, f"从 {sub.old} 到 {cp.size} 的一致性证明不成立", "inconsistent")
            stamp = self._timestamp(int(state["updated_at"].timestamp()))
            signature = Signature(self.signer.name, self.signer.key_id,
                                  self.signer.sign(text, timestamp=stamp))
            await store.set_witness(conn, cp.origin, cp.size, cp.root, sub.note,
                                    max(now, datetime.fromtimestamp(stamp, UTC)))
        if self.on_cosigned is not None:
            self.on_cosigned(cp, sub.note)
        return (signature.line() + "\n").encode()

    async def keep_evidence(self, origin: str, kind: str, message: str, evidence: dict) -> None:
        LEDGER_ALARMS.labels(self.signer.name, kind).inc()
        log.error("ledger alarm (%s) %s: %s", origin, kind, message)
        async with self.pool.acquire() as conn:
            await store.add_evidence(conn, origin, kind, message, evidence, self.clock())

    async def state(self, origin: str) -> dict | None:
        async with self.pool.acquire() as conn:
            row = await store.witness(conn, origin)
        return dict(row) if row else None
