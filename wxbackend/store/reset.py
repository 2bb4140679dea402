"""Emptying the database for the sandbox's reset: every table but the migrations' record."""

from __future__ import annotations

import asyncpg


async def empty_everything(conn: asyncpg.Connection) -> None:
    """Every table of the schema emptied and its sequences restarted (TRUNCATE passes the
    append-only tables' row triggers, which is why only the sandbox's reset may call this)."""
    tables = [r["name"] for r in await conn.fetch(
        """SELECT quote_ident(tablename) AS name FROM pg_tables
           WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'""")]
    if tables:
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
