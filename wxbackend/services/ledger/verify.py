"""Offline verification (``wxbackend ledger verify``): an entry, its tlog-proof receipt and the
cosigned checkpoint in it, checked with nothing but the public keys: the province's log key and
the city nodes' cosigning keys, of which at least ``quorum`` must have cosigned."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from wxbackend.services.ledger import tlog
from wxbackend.services.ledger.notes import Checkpoint, NoteError, Proof, Verifier, verify_note


class VerifyError(Exception):
    """Why a receipt does not prove what it claims (a Chinese message)."""


@dataclass(frozen=True)
class Verified:
    index: int
    size: int
    root: bytes
    origin: str
    cosigned_by: tuple[str, ...]

    def summary(self) -> str:
        return (f"条目 #{self.index} 包含在 {self.origin} 的树（大小 {self.size}，根 "
                f"{base64.b64encode(self.root).decode()}）中；联署节点：{', '.join(self.cosigned_by)}")


def verify_receipt(entry: bytes, receipt: bytes, *, log_key: Verifier, witnesses: Iterable[Verifier],
                   quorum: int) -> Verified:
    witnesses = list(witnesses)
    try:
        proof = Proof.parse(receipt)
        note, verified = verify_note(proof.checkpoint, [log_key, *witnesses])
        cp = Checkpoint.parse(note.text)
    except NoteError as exc:
        raise VerifyError(f"回执无效：{exc}") from None
    if log_key not in verified:
        raise VerifyError("检查点没有省级账本密钥的有效签名")
    cosigners = tuple(sorted(v.name for v in verified if v in witnesses))
    if len(cosigners) < quorum:
        raise VerifyError(f"检查点只有 {len(cosigners)} 个节点联署，少于要求的 {quorum} 个")
    if not tlog.verify_inclusion(tlog.leaf_hash(entry), proof.index, cp.size, proof.path, cp.root):
        raise VerifyError(f"条目与包含证明不符：它不是树（大小 {cp.size}）中的第 {proof.index} 条")
    return Verified(proof.index, cp.size, cp.root, cp.origin, cosigners)


def verify_consistency_notes(old_note: bytes, new_note: bytes, proof: Iterable[bytes], *,
                             log_key: Verifier) -> tuple[Checkpoint, Checkpoint]:
    """Two checkpoints signed by the log, and the proof that the newer extends the older."""
    try:
        old = Checkpoint.parse(verify_note(old_note, [log_key])[0].text)
        new = Checkpoint.parse(verify_note(new_note, [log_key])[0].text)
    except NoteError as exc:
        raise VerifyError(f"检查点无效：{exc}") from None
    for note in (old_note, new_note):
        if log_key not in verify_note(note, [log_key])[1]:
            raise VerifyError("检查点没有省级账本密钥的有效签名")
    if old.origin != new.origin:
        raise VerifyError("两个检查点属于不同的日志")
    if not tlog.verify_consistency(old.size, new.size, old.root, new.root, list(proof)):
        raise VerifyError(f"一致性证明不成立：大小 {new.size} 的树不是大小 {old.size} 的树的延续")
    return old, new
