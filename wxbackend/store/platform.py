"""SQL for the shared platform API's registered access entrances."""

from __future__ import annotations

import asyncpg


async def org_id(conn: asyncpg.Connection, code: str) -> int | None:
    return await conn.fetchval("SELECT id FROM orgs WHERE code = $1", code)


async def create_app(conn: asyncpg.Connection, *, app_id: str, name: str, secret_enc: bytes,
                     scopes: list[str], org_id: int, redirect_uris: list[str]) -> bool:
    status = await conn.execute(
        """INSERT INTO platform_apps (app_id, name, secret_enc, scopes, org_id, redirect_uris)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app_id) DO NOTHING""",
        app_id, name, secret_enc, scopes, org_id, redirect_uris)
    return status.endswith(" 1")


async def get_app(conn: asyncpg.Connection, app_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT app_id, name, secret_enc, scopes, org_id, redirect_uris, status
           FROM platform_apps WHERE app_id = $1""", app_id)


async def set_status(conn: asyncpg.Connection, app_id: str, status: str) -> bool:
    result = await conn.execute("UPDATE platform_apps SET status = $2 WHERE app_id = $1",
                                app_id, status)
    return result.endswith(" 1")


async def list_apps(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT a.app_id, a.name, a.scopes, a.status, o.name AS org_name, a.created_at
           FROM platform_apps a JOIN orgs o ON o.id = a.org_id ORDER BY a.id""")
