"""SQL for the health check."""

from __future__ import annotations

import asyncpg


async def ping(db: asyncpg.Pool | asyncpg.Connection) -> None:
    """A round trip to the database."""
    await db.fetchval("SELECT 1")
