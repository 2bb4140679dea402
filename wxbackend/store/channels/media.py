"""SQL for uploaded images and attachments (files themselves in
:mod:`wxbackend.services.channels.media_store`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = """id, kind, org_id, org_path::text AS org_path, filename, content_type, bytes, width,
    height, variants, oa_url, oa_media_id, created_at"""


async def by_upload(conn: asyncpg.Connection, org_id: int, upload_sha256: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM media WHERE org_id = $1 AND upload_sha256 = $2",  # noqa: S608
        org_id, upload_sha256)


async def insert(conn: asyncpg.Connection, *, kind: str, upload_sha256: bytes, org_id: int,
                 org_path: str, filename: str, content_type: str, size: int, width: int | None,
                 height: int | None, variants: dict, uploaded_by: int,
                 now: datetime) -> asyncpg.Record:
    """The new row, or the one a concurrent identical upload made first."""
    row = await conn.fetchrow(
        f"""INSERT INTO media (kind, upload_sha256, org_id, org_path, filename, content_type, bytes,
                               width, height, variants, uploaded_by, created_at)
            VALUES ($1, $2, $3, $4::ltree, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (org_id, upload_sha256) DO NOTHING RETURNING {_COLUMNS}""",  # noqa: S608
        kind, upload_sha256, org_id, org_path, filename, content_type, size, width, height,
        variants, uploaded_by, now)
    return row if row is not None else await by_upload(conn, org_id, upload_sha256)


async def many(conn: asyncpg.Connection, ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {_COLUMNS} FROM media WHERE id = ANY($1::bigint[])",  # noqa: S608
                            ids)


async def set_oa(conn: asyncpg.Connection, media_id: int, *, oa_url: str | None = None,
                 oa_media_id: str | None = None) -> None:
    await conn.execute(
        """UPDATE media SET oa_url = COALESCE($2, oa_url), oa_media_id = COALESCE($3, oa_media_id)
           WHERE id = $1""", media_id, oa_url, oa_media_id)
