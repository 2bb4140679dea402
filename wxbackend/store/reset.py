"""Emptying the database for the sandbox's reset: every table but the migrations' record."""

from __future__ import annotations

import asyncpg


async def empty_everything(conn: asyncpg.Connection) -> None:
    """Every table of the schema emptied and its sequences restarted. The append-only tables
    (the audit trail, the ledger, the casework events) refuse TRUNCATE through their triggers;
    replica mode, for this transaction only, is how the sandbox's reset alone gets past them
    (it needs the superuser the embedded PostgreSQL runs as)."""
    tables = [r["name"] for r in await conn.fetch(
        """SELECT quote_ident(tablename) AS name FROM pg_tables
           WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'""")]
    if not tables:
        return
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
