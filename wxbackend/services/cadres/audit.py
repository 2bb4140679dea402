"""The tamper-evident audit trail of cadre actions.

Each record's MAC covers the previous record's MAC and its own content (HMAC-SM3 over a
canonical JSON, keyed with ``[security] audit_key``, which never enters the database), so
editing or deleting any record breaks the chain from there on and, without the key, the chain
cannot be recomputed; ``verify`` walks the trail and says where. Records written before the key
existed carry plain SHA-256 links (``mac_version`` 0) and verify as before; the first keyed
record chains over the last of them. Deleting the newest records leaves an intact, shorter
chain: so the head (newest record number and MAC, signed) is published regularly to
``audit_heads`` and to the log, which ships off the machine, and ``verify`` compares the tail
with the newest head.

Records are appended in the transaction of the action they describe (an action and its record
commit together), under a transaction-scoped advisory lock so concurrent actions cannot fork the
chain. The tables refuse UPDATE, DELETE and TRUNCATE. Retention: records are kept at least 180
days (the Cybersecurity Law's six months); nothing in the product deletes them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import CHINA, china_now
from wxbackend.store.cadres import audit as store

log = logging.getLogger("wxbackend.audit")

GENESIS = bytes(32)
AUDIT_LOCK = 0x61756469745F6C67  # "audit_lg"
PLAIN, KEYED = 0, 1              # mac_version: SHA-256 (before the key), HMAC-SM3


class AuditKeyError(ValueError):
    """The audit key is missing or malformed."""


def parse_key(encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise AuditKeyError("[security] audit_key is base64") from None
    if len(key) < 16:
        raise AuditKeyError("[security] audit_key needs at least 16 bytes")
    return key


def _body(at: datetime, actor_id: int | None, actor: str, org_id: int | None, action: str,
          target: str, detail: dict, ip: str) -> bytes:
    # UTC, so a record verifies whatever zone the writer's clock or the reader's driver uses.
    fields = [at.astimezone(UTC).isoformat(), actor_id, actor, org_id, action, target, detail, ip]
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str).encode()


def _sm3_mac(key: bytes, data: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()


@dataclass(frozen=True)
class Head:
    """A published head: record ``seq`` was the newest, with MAC ``digest``, at ``at``."""
    seq: int
    digest: bytes
    at: datetime
    mac: bytes

    def line(self) -> str:
        return (f"audit head #{self.seq} mac={self.digest.hex()} "
                f"at={self.at.astimezone(UTC).isoformat()} sig={self.mac.hex()}")

    @classmethod
    def parse(cls, line: str) -> Head:
        """The line ``line()`` writes (as found in the shipped log); ValueError if malformed."""
        parts = dict(p.split("=", 1) for p in line.split() if "=" in p)
        seq = next(p for p in line.split() if p.startswith("#"))
        return cls(int(seq[1:]), bytes.fromhex(parts["mac"]), datetime.fromisoformat(parts["at"]),
                   bytes.fromhex(parts["sig"]))


@dataclass(frozen=True)
class Break:
    record_id: int
    # edited | deleted_before | chain_mismatch | unkeyed | missing_tail | head_mismatch | bad_head
    problem: str
    note: str = ""


class AuditTrail:
    """Appends and verifies with one key and one clock. Built once by the runtime and handed to
    every service that records (tests make their own)."""

    def __init__(self, key: bytes, now: Callable[[], datetime] = china_now) -> None:
        if len(key) < 16:
            raise AuditKeyError("the audit key needs at least 16 bytes")
        self._key = key
        self._now = now

    def digest(self, version: int, prev: bytes, body: bytes) -> bytes:
        if version == PLAIN:
            return hashlib.sha256(prev + body).digest()
        return _sm3_mac(self._key, prev + body)

    def _head_mac(self, seq: int, digest: bytes, at: datetime) -> bytes:
        return _sm3_mac(self._key, b"audit-head\x00" + seq.to_bytes(8, "big") + digest
                        + at.astimezone(UTC).isoformat().encode())

    def head_is_genuine(self, head: Head) -> bool:
        return hmac.compare_digest(head.mac, self._head_mac(head.seq, head.digest, head.at))

    async def acted(self, conn: asyncpg.Connection, actor: Actor, action: str, target: str = "",
                    detail: dict | None = None) -> None:
        """:meth:`record` of what a signed-in cadre did, inside its transaction."""
        await self.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                          action=action, target=target, detail=detail, ip=actor.ip)

    async def record(self, conn: asyncpg.Connection, *, actor_id: int | None, actor: str,
                     org_id: int | None, action: str, target: str = "", detail: dict | None = None,
                     ip: str = "") -> None:
        """Append one record. Call inside the transaction of the action it describes."""
        if not conn.is_in_transaction():
            raise RuntimeError("audit records are written inside the action's transaction")
        detail = detail or {}
        head, isolation = await store.lock_head(conn, AUDIT_LOCK)
        if isolation != "read committed":
            # A snapshot taken before the lock was granted would not see the newest record, and
            # the chain would fork: the append must read the head as it is once the lock is held.
            raise RuntimeError("audit records are written in READ COMMITTED transactions")
        prev = head or GENESIS
        at = self._now()
        digest = self.digest(KEYED, prev, _body(at, actor_id, actor, org_id, action, target, detail, ip))
        await store.append(conn, at=at, actor_id=actor_id, actor=actor, org_id=org_id, action=action,
                           target=target, detail=detail, ip=ip, prev_hash=prev, digest=digest,
                           mac_version=KEYED)

    async def publish_head(self, conn: asyncpg.Connection) -> Head | None:
        """Sign the newest record's number and MAC, store it in ``audit_heads`` and write it to
        the log (which leaves the machine). None while the trail is empty."""
        newest = await store.newest(conn)
        if newest is None:
            return None
        at = self._now()
        head = Head(newest["id"], newest["hash"], at, self._head_mac(newest["id"], newest["hash"], at))
        await store.add_head(conn, seq=head.seq, digest=head.digest, at=head.at, mac=head.mac)
        log.info("%s", head.line())
        return head

    async def verify(self, conn: asyncpg.Connection, *, published: Head | None = None,
                     recorded: Iterable[Head] = ()) -> tuple[int, list[Break]]:
        """Walk the whole trail; return how many records were checked and every break found,
        the tail checked against the newest genuine head in ``audit_heads``, ``published`` (a
        head from the shipped log) and ``recorded`` (the heads the base-data ledger holds, which
        the city nodes hold too), whichever covers more."""
        breaks: list[Break] = []
        prev, last_id, count, keyed_seen = GENESIS, 0, 0, False
        by_id: dict[int, bytes] = {}
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            heads = [Head(r["seq"], r["hash"], r["at"], r["mac"]) for r in await store.heads(conn)]
            if published is not None:
                heads.append(published)
            heads += [h for h in recorded if h not in heads]
            genuine = [h for h in heads if self.head_is_genuine(h)]
            breaks += [Break(h.seq, "bad_head", "a head's signature does not verify with this key")
                       for h in heads if h not in genuine]
            wanted = {h.seq for h in genuine}
            async for row in store.walk(conn):
                count += 1
                if row["id"] != last_id + 1 and last_id:
                    breaks.append(Break(row["id"], "deleted_before"))
                if row["prev_hash"] != prev:
                    breaks.append(Break(row["id"], "chain_mismatch"))
                version = row["mac_version"]
                if version == PLAIN and keyed_seen:
                    breaks.append(Break(row["id"], "unkeyed", "an unkeyed record after keyed ones"))
                keyed_seen = keyed_seen or version == KEYED
                body = _body(row["at"], row["actor_id"], row["actor"], row["org_id"], row["action"],
                             row["target"], dict(row["detail"]), row["ip"])
                if not hmac.compare_digest(self.digest(version, row["prev_hash"], body), row["hash"]):
                    breaks.append(Break(row["id"], "edited"))
                if row["id"] in wanted:
                    by_id[row["id"]] = row["hash"]
                prev, last_id = row["hash"], row["id"]
        if genuine:
            newest = max(genuine, key=lambda h: (h.seq, h.at))
            at = newest.at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
            if last_id < newest.seq:
                breaks.append(Break(newest.seq, "missing_tail",
                                    f"the head published at {at} covered record #{newest.seq}, "
                                    f"the table ends at #{last_id}"))
            for h in genuine:
                if h.seq in by_id and not hmac.compare_digest(by_id[h.seq], h.digest):
                    breaks.append(Break(h.seq, "head_mismatch",
                                        f"record #{h.seq} differs from the head published at "
                                        f"{h.at.astimezone(UTC).isoformat()}"))
        return count, breaks
