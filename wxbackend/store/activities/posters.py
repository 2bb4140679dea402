"""SQL for the Mini Program codes posters carry (rules in
:mod:`wxbackend.services.activities.posters`)."""

from __future__ import annotations

import asyncpg


async def kept_code(conn: asyncpg.Connection, page: str, scene: str) -> bytes | None:
    return await conn.fetchval("SELECT image FROM wxa_codes WHERE page = $1 AND scene = $2", page, scene)


async def keep_code(conn: asyncpg.Connection, page: str, scene: str, image: bytes) -> None:
    await conn.execute(
        """INSERT INTO wxa_codes (page, scene, image) VALUES ($1, $2, $3)
           ON CONFLICT (page, scene) DO NOTHING""", page, scene, image)
