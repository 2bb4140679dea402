"""Migrations: in order, once, under an advisory lock, and edits to applied files refused."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from wxbackend.infra import migrations
from wxbackend.infra.db import connect
from wxbackend.infra.migrations import Migration, MigrationError, migrate


@pytest.fixture
async def fresh_db(backing) -> str:
    admin = await connect(backing.dsn)
    await admin.execute("DROP DATABASE IF EXISTS migrate_test WITH (FORCE)")
    await admin.execute("CREATE DATABASE migrate_test")
    await admin.close()
    return backing.dsn.rsplit("/", 1)[0] + "/migrate_test"


async def test_processes_starting_at_once_migrate_exactly_once(fresh_db) -> None:
    conns = [await connect(fresh_db) for _ in range(5)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        versions = [m.version for m in migrations.available()]
        assert sorted(v for r in results for v in r) == versions
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(versions)
        assert await migrate(conns[0]) == []
    finally:
        for c in conns:
            await c.close()


async def test_an_edited_migration_is_refused(fresh_db, monkeypatch) -> None:
    conn = await connect(fresh_db)
    try:
        await migrate(conn)
        original = migrations.available()
        edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in original]
        monkeypatch.setattr(migrations, "available", lambda: edited)
        with pytest.raises(MigrationError, match="edited after it was applied"):
            await migrate(conn)
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(fresh_db, monkeypatch) -> None:
    conn = await connect(fresh_db)
    try:
        broken = [*migrations.available(), Migration(9999, "broken",
                  "CREATE TABLE half_done (id int); SELECT no_such_function();")]
        monkeypatch.setattr(migrations, "available", lambda: broken)
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn)
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") < 9999
    finally:
        await conn.close()
