"""SQL for the kept Mini Program codes (rules in :mod:`wxbackend.services.wxa_codes`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def kept(conn: asyncpg.Connection, page: str, scene: str) -> bytes | None:
    return await conn.fetchval("SELECT image FROM wxa_codes WHERE page = $1 AND scene = $2",
                               page, scene)


async def keep(conn: asyncpg.Connection, page: str, scene: str, image: bytes,
               created_at: datetime) -> bytes:
    """Keep ``image`` unless one is kept already; returns the one kept (the first wins, so every
    poster of an item shows the same code)."""
    return await conn.fetchval(
        """WITH added AS (
               INSERT INTO wxa_codes (page, scene, image, created_at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (page, scene) DO NOTHING RETURNING image)
           SELECT image FROM added
           UNION ALL SELECT image FROM wxa_codes WHERE page = $1 AND scene = $2
           LIMIT 1""", page, scene, image, created_at)
