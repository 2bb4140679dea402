"""The tamper-evident audit trail of cadre actions.

Each record's hash covers the previous record's hash and its own content (SHA-256 over a
canonical JSON), so editing or deleting any record breaks the chain from there on; ``verify``
walks the trail and says where. Records are appended in the transaction of the action they
describe (an action and its record commit together), under a transaction-scoped advisory lock
so concurrent actions cannot fork the chain. The table refuses UPDATE, DELETE and TRUNCATE.
Retention: records are kept at least 180 days (the Cybersecurity Law's six months); nothing in
the product deletes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from wxbackend.store import audit as store

GENESIS = bytes(32)
AUDIT_LOCK = 0x61756469745F6C67  # "audit_lg"


def _digest(prev: bytes, at: datetime, actor_id: int | None, actor: str, org_id: int | None,
            action: str, target: str, detail: dict, ip: str) -> bytes:
    body = json.dumps([at.isoformat(), actor_id, actor, org_id, action, target, detail, ip],
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(prev + body.encode()).digest()


async def record(conn: asyncpg.Connection, *, actor_id: int | None, actor: str, org_id: int | None,
                 action: str, target: str = "", detail: dict | None = None, ip: str = "") -> None:
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
    at = datetime.now(UTC)
    digest = _digest(prev, at, actor_id, actor, org_id, action, target, detail, ip)
    await store.append(conn, at=at, actor_id=actor_id, actor=actor, org_id=org_id, action=action,
                       target=target, detail=detail, ip=ip, prev_hash=prev, digest=digest)


@dataclass(frozen=True)
class Break:
    record_id: int
    problem: str        # edited | deleted_before | chain_mismatch


async def verify(conn: asyncpg.Connection) -> tuple[int, list[Break]]:
    """Walk the whole trail; return how many records were checked and every break found."""
    breaks: list[Break] = []
    prev, last_id, count = GENESIS, 0, 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in store.walk(conn):
            count += 1
            if row["id"] != last_id + 1 and last_id:
                breaks.append(Break(row["id"], "deleted_before"))
            if row["prev_hash"] != prev:
                breaks.append(Break(row["id"], "chain_mismatch"))
            expected = _digest(row["prev_hash"], row["at"], row["actor_id"], row["actor"],
                               row["org_id"], row["action"], row["target"], dict(row["detail"]),
                               row["ip"])
            if expected != row["hash"]:
                breaks.append(Break(row["id"], "edited"))
            prev, last_id = row["hash"], row["id"]
    return count, breaks
