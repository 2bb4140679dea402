"""The pool's reset on release: no extra query, but nothing of a request leaks into the next."""

from __future__ import annotations

import pytest

from wxbackend.infra.db import create_pool


@pytest.mark.expected_errors("Resetting connection with an active transaction")  # asyncpg says so
async def test_a_released_connection_is_rolled_back_and_clean(clean_db: str) -> None:
    pool = await create_pool(clean_db, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO regions (code, name, city_code, level) "
                               "VALUES ('519999', '测试', '519900', 'county')")
            first = conn.get_server_pid()
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == first            # the same connection, reused
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM regions WHERE code = '519999'") == 0
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(42)")
        async with pool.acquire() as conn:                   # transaction-scoped: already released
            assert await conn.fetchval("SELECT pg_try_advisory_xact_lock(42)") is True
    finally:
        await pool.close()
