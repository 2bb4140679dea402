"""The audit trail: appended with the action, MAC-chained, and any edit or deletion found."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
from datetime import datetime

import asyncpg
import pytest

from tests.conftest import AUDIT_KEY
from wxbackend.cli import _background_jobs
from wxbackend.infra.db import connect
from wxbackend.services.cadres import audit
from wxbackend.services.cadres.audit import AuditTrail, Head
from wxbackend.services.clock import CHINA

KEY = base64.b64decode(AUDIT_KEY)
TRAIL = AuditTrail(KEY)


async def write(dsn: str, n: int, actor: str = "李四") -> None:
    conn = await connect(dsn)
    try:
        for i in range(n):
            async with conn.transaction():
                await TRAIL.record(conn, actor_id=1, actor=actor, org_id=2, action="cadre.create",
                                   target=f"cadre:{i}", detail={"permissions": ["kpi.read"]}, ip="10.0.0.1")
    finally:
        await conn.close()


async def test_an_intact_trail_verifies(clean_db, db) -> None:
    await asyncio.gather(*(write(clean_db, 5, actor=f"干部{i}") for i in range(4)))  # concurrent writers
    count, breaks = await TRAIL.verify(db)
    assert (count, breaks) == (20, [])


async def test_records_need_the_actions_transaction(db) -> None:
    with pytest.raises(RuntimeError):
        await TRAIL.record(db, actor_id=1, actor="x", org_id=None, action="a")


async def test_no_role_can_change_or_remove_records(clean_db, db) -> None:
    await write(clean_db, 2)
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await db.execute(statement)


async def tamper(db: asyncpg.Connection, statement: str) -> None:
    """What someone with the database owner's rights could still do: switch triggers off."""
    await db.execute("SET session_replication_role = replica")
    await db.execute(statement)
    await db.execute("SET session_replication_role = DEFAULT")


async def test_an_edited_record_is_named(clean_db, db) -> None:
    await write(clean_db, 5)
    await tamper(db, "UPDATE audit_log SET detail = '{\"permissions\": [\"member.export\"]}' WHERE id = 3")
    _, breaks = await TRAIL.verify(db)
    assert [(b.record_id, b.problem) for b in breaks] == [(3, "edited")]


async def test_a_deleted_record_is_found(clean_db, db) -> None:
    await write(clean_db, 5)
    await tamper(db, "DELETE FROM audit_log WHERE id = 2")
    _, breaks = await TRAIL.verify(db)
    assert (3, "deleted_before") in [(b.record_id, b.problem) for b in breaks]
    assert (3, "chain_mismatch") in [(b.record_id, b.problem) for b in breaks]


async def test_the_cli_reports_and_fails(clean_db, db, tmp_path, backing) -> None:
    await write(clean_db, 3)
    env = {**os.environ, "WXBACKEND__DATABASE__DSN": backing.dsn, "WXBACKEND__REDIS__URL": backing.redis_url,
           "WXBACKEND__SECURITY__AUDIT_KEY": AUDIT_KEY}
    ok = await asyncio.create_subprocess_exec(sys.executable, "-m", "wxbackend.cli", "audit", "verify",
                                              env=env, stdout=asyncio.subprocess.PIPE)
    out, _ = await ok.communicate()
    assert ok.returncode == 0 and b"3 records checked, 0 problems" in out
    await tamper(db, "UPDATE audit_log SET ip = '1.2.3.4' WHERE id = 2")
    bad = await asyncio.create_subprocess_exec(sys.executable, "-m", "wxbackend.cli", "audit", "verify",
                                               env=env, stdout=asyncio.subprocess.PIPE)
    out, _ = await bad.communicate()
    assert bad.returncode == 1 and b"record 2: edited" in out


async def test_an_append_from_a_repeatable_read_snapshot_is_refused(db) -> None:
    """Its snapshot could predate the newest record: the chain would fork."""
    with pytest.raises(RuntimeError):
        async with db.transaction(isolation="repeatable_read"):
            await TRAIL.record(db, actor_id=None, actor="system", org_id=None, action="test")
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 0


# --- the keyed chain and the published head -------------------------------------------------
class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def plain_hash(prev: bytes, row: asyncpg.Record) -> bytes:
    """The chain link as it was before the key: SHA-256 over the same canonical JSON."""
    body = json.dumps([row["at"].isoformat(), row["actor_id"], row["actor"], row["org_id"], row["action"],
                       row["target"], dict(row["detail"]), row["ip"]],
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(prev + body.encode()).digest()


async def rechain_plain(db: asyncpg.Connection, *, from_id: int, mac_version: int | None = None) -> None:
    """What a database superuser could do without the key: recompute every link from ``from_id``."""
    await db.execute("SET session_replication_role = replica")
    try:
        rows = await db.fetch("SELECT * FROM audit_log ORDER BY id")
        prev = audit.GENESIS
        for r in rows:
            if r["id"] >= from_id:
                digest = plain_hash(prev, r)
                await db.execute("UPDATE audit_log SET prev_hash = $2, hash = $3,"
                                 " mac_version = coalesce($4, mac_version) WHERE id = $1",
                                 r["id"], prev, digest, mac_version)
                prev = digest
            else:
                prev = r["hash"]
    finally:
        await db.execute("SET session_replication_role = DEFAULT")


async def test_a_rewritten_record_with_recomputed_hashes_is_found(clean_db, db) -> None:
    await write(clean_db, 5)
    await tamper(db, "UPDATE audit_log SET actor = '王五' WHERE id = 3")
    await rechain_plain(db, from_id=3)
    _, breaks = await TRAIL.verify(db)
    assert [(b.record_id, b.problem) for b in breaks] == [(3, "edited"), (4, "edited"), (5, "edited")]


async def test_records_carry_the_time_of_the_trails_clock(db) -> None:
    at = datetime(2026, 12, 5, 0, 30, tzinfo=CHINA)   # still the 4th in UTC
    trail = AuditTrail(KEY, now=Clock(at))
    async with db.transaction():
        await trail.record(db, actor_id=None, actor="system", org_id=None, action="test")
    assert await db.fetchval("SELECT at FROM audit_log") == at
    assert await trail.verify(db) == (1, [])


async def test_a_wrong_key_fails_verification(clean_db, db) -> None:
    await write(clean_db, 3)
    count, breaks = await AuditTrail(b"another-key-0123456789").verify(db)
    assert count == 3 and [(b.record_id, b.problem) for b in breaks] == [(1, "edited"), (2, "edited"),
                                                                          (3, "edited")]


async def test_deleting_the_newest_records_shows_against_the_published_head(clean_db, db) -> None:
    trail = AuditTrail(KEY, now=Clock(datetime(2026, 12, 5, 9, 0, tzinfo=CHINA)))
    await write(clean_db, 5)
    head = await trail.publish_head(db)
    assert head is not None and head.seq == 5
    assert await trail.verify(db) == (5, [])
    await tamper(db, "DELETE FROM audit_log WHERE id > 3")
    count, breaks = await trail.verify(db)
    assert count == 3
    assert breaks == [audit.Break(5, "missing_tail", "the head published at 2026-12-05 09:00:00 "
                                                     "covered record #5, the table ends at #3")]


async def test_a_head_deleted_from_the_database_still_counts_from_the_log(clean_db, db) -> None:
    trail = AuditTrail(KEY, now=Clock(datetime(2026, 12, 5, 9, 0, tzinfo=CHINA)))
    await write(clean_db, 4)
    line = (await trail.publish_head(db)).line()
    await tamper(db, "DELETE FROM audit_log WHERE id = 4")
    await tamper(db, "DELETE FROM audit_heads")
    assert await trail.verify(db) == (3, [])   # nothing left in the database to compare with
    _, breaks = await trail.verify(db, published=Head.parse(line))
    assert [(b.record_id, b.problem) for b in breaks] == [(4, "missing_tail")]


async def test_a_forged_head_is_not_believed(clean_db, db) -> None:
    trail = AuditTrail(KEY, now=Clock(datetime(2026, 12, 5, 9, 0, tzinfo=CHINA)))
    await write(clean_db, 2)
    await db.execute("INSERT INTO audit_heads (seq, hash, at, mac) VALUES (1, $1, now(), $2)",
                     bytes(32), bytes(32))
    _, breaks = await trail.verify(db)
    assert [(b.record_id, b.problem) for b in breaks] == [(1, "bad_head")]


async def test_downgrading_the_whole_chain_to_plain_hashes_shows_against_the_head(clean_db, db) -> None:
    trail = AuditTrail(KEY, now=Clock(datetime(2026, 12, 5, 9, 0, tzinfo=CHINA)))
    await write(clean_db, 4)
    await trail.publish_head(db)
    await tamper(db, "UPDATE audit_log SET detail = '{}' WHERE id = 2")
    await rechain_plain(db, from_id=1, mac_version=0)
    _, breaks = await trail.verify(db)
    assert [(b.record_id, b.problem) for b in breaks] == [(4, "head_mismatch")]


async def test_records_from_before_the_key_still_verify_and_cannot_follow_keyed_ones(clean_db, db) -> None:
    await write(clean_db, 3)
    await rechain_plain(db, from_id=1, mac_version=0)   # as the migration leaves older records
    await write(clean_db, 3)                             # the first keyed record chains over them
    assert await TRAIL.verify(db) == (6, [])
    await tamper(db, "UPDATE audit_log SET actor = '王五' WHERE id = 2")
    await rechain_plain(db, from_id=2)
    _, breaks = await TRAIL.verify(db)
    assert (4, "edited") in [(b.record_id, b.problem) for b in breaks]
    # Passing keyed records off as older ones: every one after a keyed record is refused (a
    # trail downgraded whole is the published head's to catch, tested above).
    await rechain_plain(db, from_id=5, mac_version=0)
    _, breaks = await TRAIL.verify(db)
    assert [(b.record_id, b.problem) for b in breaks] == [(4, "edited"), (5, "unkeyed"), (6, "unkeyed")]


async def test_the_cli_publishes_the_head_and_reports_a_missing_tail(clean_db, db, backing) -> None:
    await write(clean_db, 3)
    env = {**os.environ, "WXBACKEND__DATABASE__DSN": backing.dsn, "WXBACKEND__REDIS__URL": backing.redis_url,
           "WXBACKEND__SECURITY__AUDIT_KEY": AUDIT_KEY}

    async def cli(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "wxbackend.cli", "audit", *args,
                                                    env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return proc.returncode, out.decode()

    code, line = await cli("head")
    assert code == 0 and line.startswith("audit head #3 ")
    await tamper(db, "DELETE FROM audit_log WHERE id = 3")
    await tamper(db, "DELETE FROM audit_heads")
    code, out = await cli("verify", "--head", line.strip())
    assert code == 1 and "record 3: missing_tail" in out and "the table ends at #2" in out


async def test_the_workers_publish_the_head_to_the_table_and_the_log(rt, db, caplog) -> None:
    async with db.transaction():
        await rt.audit.record(db, actor_id=None, actor="system", org_id=None, action="test")
    stop = asyncio.Event()
    with caplog.at_level("INFO", logger="wxbackend.audit"):
        tasks = _background_jobs(rt, stop)
        for _ in range(100):
            if await db.fetchval("SELECT count(*) FROM audit_heads"):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
    line = next(r.getMessage() for r in caplog.records if r.name == "wxbackend.audit")
    head = Head.parse(line)
    assert head.seq == 1 and rt.audit.head_is_genuine(head)
    assert await db.fetchval("SELECT seq FROM audit_heads") == 1
