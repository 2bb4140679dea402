"""The audit trail: appended with the action, hash-chained, and any edit or deletion found."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import pytest

from wxbackend.infra.db import connect
from wxbackend.services import audit


async def write(dsn: str, n: int, actor: str = "李四") -> None:
    conn = await connect(dsn)
    try:
        for i in range(n):
            async with conn.transaction():
                await audit.record(conn, actor_id=1, actor=actor, org_id=2, action="cadre.create",
                                   target=f"cadre:{i}", detail={"permissions": ["kpi.read"]}, ip="10.0.0.1")
    finally:
        await conn.close()


async def test_an_intact_trail_verifies(clean_db, db) -> None:
    await asyncio.gather(*(write(clean_db, 5, actor=f"干部{i}") for i in range(4)))  # concurrent writers
    count, breaks = await audit.verify(db)
    assert (count, breaks) == (20, [])


async def test_records_need_the_actions_transaction(db) -> None:
    with pytest.raises(RuntimeError):
        await audit.record(db, actor_id=1, actor="x", org_id=None, action="a")


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
    _, breaks = await audit.verify(db)
    assert [(b.record_id, b.problem) for b in breaks] == [(3, "edited")]


async def test_a_deleted_record_is_found(clean_db, db) -> None:
    await write(clean_db, 5)
    await tamper(db, "DELETE FROM audit_log WHERE id = 2")
    _, breaks = await audit.verify(db)
    assert (3, "deleted_before") in [(b.record_id, b.problem) for b in breaks]
    assert (3, "chain_mismatch") in [(b.record_id, b.problem) for b in breaks]


async def test_the_cli_reports_and_fails(clean_db, db, tmp_path, backing) -> None:
    await write(clean_db, 3)
    env = {**os.environ, "WXBACKEND__DATABASE__DSN": backing.dsn, "WXBACKEND__REDIS__URL": backing.redis_url}
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
            await audit.record(db, actor_id=None, actor="system", org_id=None, action="test")
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 0
