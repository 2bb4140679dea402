"""The province collects the city nodes' cosignatures (tlog-witness, the log's side).

After each new checkpoint every witness receives ``add-checkpoint`` with a consistency proof from
the size it last cosigned; each witness has its own pusher, which always sends the newest
checkpoint and skips those the witness has not seen yet (a consistency proof covers the gap). A
409 tells the size the witness holds: the pusher retries from there. Any other refusal, or a
cosignature that does not verify, is an alarm. A checkpoint is final once ``quorum`` witnesses
have cosigned it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import httpx

from wxbackend.config import LedgerSettings
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.errors import Conflict
from wxbackend.services.ledger.alarms import LedgerAlarms
from wxbackend.services.ledger.log import LedgerLog, Signed
from wxbackend.services.ledger.notes import NoteError, Proof, Signer, Verifier, verify_note
from wxbackend.store.ledger import log as store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WitnessEndpoint:
    """A city node as the province knows it: its cosigning key and its submission prefix."""
    verifier: Verifier
    url: str

    @property
    def name(self) -> str:
        return self.verifier.name

    @classmethod
    def parse(cls, spec: str) -> WitnessEndpoint:
        """``<verifier key> <submission URL prefix>``, as in ``[ledger] witnesses``."""
        parts = spec.split()
        if len(parts) != 2 or not parts[1].startswith(("http://", "https://")):
            raise ValueError(f"节点配置应为“公钥 地址”：{spec!r}")
        return cls(Verifier.parse(parts[0]), parts[1].rstrip("/"))


async def wake_or_stop(wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    """Wait until ``wake`` or ``stop`` is set, or ``seconds``: a loop that sleeps long
    between polls still ends at once on shutdown."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def submission(old: int, proof: Iterable[bytes], note: bytes) -> bytes:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n".encode() + note


def from_settings(pool: asyncpg.Pool, settings: LedgerSettings, http: httpx.AsyncClient, *,
                  audit: AuditTrail | None, clock: Clock) -> tuple[LedgerLog, LedgerAlarms, Cosigning]:
    """The province's ledger services from ``[ledger]``."""
    key = settings.signing_key.reveal()
    ledger = LedgerLog(pool, origin=settings.origin, signer=Signer.parse(key) if key else None,
                       clock=clock, batch=settings.batch)
    alarms = LedgerAlarms(pool, audit=audit, clock=clock)
    witnesses = [WitnessEndpoint.parse(spec) for spec in settings.witnesses]
    return ledger, alarms, Cosigning(pool, ledger, alarms, witnesses, http=http, quorum=settings.quorum,
                                     clock=clock, timeout=settings.witness_timeout)


class Cosigning:
    def __init__(self, pool: asyncpg.Pool, ledger: LedgerLog, alarms: LedgerAlarms,
                 witnesses: Iterable[WitnessEndpoint], *, http: httpx.AsyncClient, quorum: int,
                 clock: Clock = china_now, timeout: float = 5.0) -> None:
        self.pool = pool
        self.ledger = ledger
        self.alarms = alarms
        self.witnesses = list(witnesses)
        self.quorum = quorum
        self.clock = clock
        self.http = http
        self.timeout = timeout
        self._sizes: dict[str, int] | None = None
        self._newest = asyncio.Event()

    async def _known_sizes(self) -> dict[str, int]:
        if self._sizes is None:
            async with self.pool.acquire() as conn:
                self._sizes = await store.witness_sizes(conn)
        return self._sizes

    async def push(self, witness: WitnessEndpoint, signed: Signed) -> bool:
        """Ask one witness to cosign ``signed``; True when its cosignature was stored."""
        sizes = await self._known_sizes()
        old = sizes.get(witness.name, 0)
        for _ in range(3):
            if old > signed.size:
                return False            # the witness is ahead of this checkpoint: a newer one follows
            proof = await self.ledger.consistency(old, signed.size) if 0 < old < signed.size else []
            try:
                response = await self.http.post(witness.url + "/add-checkpoint",
                                                content=submission(old, proof, signed.note),
                                                timeout=self.timeout)
            except httpx.HTTPError as exc:
                log.warning("ledger witness %s unreachable: %s", witness.name, exc.__class__.__name__)
                return False
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(
                    "text/x.tlog.size"):
                try:
                    old = int(response.text.strip())
                except ValueError:
                    break
                sizes[witness.name] = old
                continue
            if response.status_code != 200:
                await self.alarms.raise_alarm(
                    source="province", kind=f"witness_{response.status_code}",
                    message=f"节点 {witness.name} 拒绝联署树大小 {signed.size}：HTTP {response.status_code}",
                    evidence={"witness": witness.name, "size": signed.size, "old": old,
                              "answer": response.text[:2000]})
                return False
            return await self._keep(witness, signed, response.content)
        await self.alarms.raise_alarm(
            source="province", kind="witness_size",
            message=f"节点 {witness.name} 报告的已联署大小无法使用",
            evidence={"witness": witness.name, "old": old})
        return False

    async def _keep(self, witness: WitnessEndpoint, signed: Signed, lines: bytes) -> bool:
        try:
            note, verified = verify_note(signed.note + lines, [witness.verifier])
        except NoteError as exc:
            verified, note = [], None
            log.error("ledger witness %s answered a bad cosignature: %s", witness.name, exc)
        if not verified or note is None:
            await self.alarms.raise_alarm(
                source="province", kind="bad_cosignature",
                message=f"节点 {witness.name} 返回的联署签名无法验证",
                evidence={"witness": witness.name, "size": signed.size,
                          "answer": lines.decode(errors="replace")})
            return False
        line = next(s.line() for s in note.signatures
                    if s.name == witness.name and s.key_id == witness.verifier.key_id)
        async with self.pool.acquire() as conn:
            await store.add_cosignature(conn, signed.size, witness.name, line, self.clock())
        (await self._known_sizes())[witness.name] = signed.size
        return True

    def announce(self) -> None:
        """A new checkpoint was signed: wake the pushers."""
        self._newest.set()

    async def run(self, stop: asyncio.Event, *, poll: float = 1.0) -> None:
        """Push the newest checkpoint to every witness whenever one is signed."""
        pushed: dict[str, int] = {}

        async def one(witness: WitnessEndpoint, signed: Signed) -> None:
            if pushed.get(witness.name) != signed.size and await self.push(witness, signed):
                pushed[witness.name] = signed.size

        while not stop.is_set():
            await wake_or_stop(self._newest, stop, poll)
            self._newest.clear()
            try:
                signed = await self.ledger.latest()
                if signed is not None and signed.size > 0:
                    await asyncio.gather(*(one(w, signed) for w in self.witnesses))
            except Exception:
                log.exception("ledger cosigning failed")

    async def cosigned(self, size: int) -> bytes:
        """The checkpoint of ``size`` with every cosignature collected for it."""
        signed = await self.ledger.signed(size)
        async with self.pool.acquire() as conn:
            rows = await store.cosignatures(conn, size)
        return signed.note + "".join(r["line"] + "\n" for r in rows).encode()

    async def final(self) -> int | None:
        """The largest size cosigned by the quorum."""
        async with self.pool.acquire() as conn:
            return await store.final_size(conn, self.quorum)



async def receipt(cosigning: Cosigning, index: int) -> bytes:
    """A tlog-proof@v1 receipt of entry ``index``: its inclusion proof in the newest checkpoint
    the quorum cosigned, with that checkpoint and its cosignatures: checkable offline with the
    public keys alone (``wxbackend ledger verify``)."""
    size = await cosigning.final()
    if size is None or index >= size:
        raise Conflict("该条目尚未被足够多的城市节点联署，请稍后再取回执", code="not_final")
    path = await cosigning.ledger.inclusion(index, size)
    return Proof(index=index, path=tuple(path), checkpoint=await cosigning.cosigned(size)).encode()
