"""SQL for the shared platform API's registered access entrances."""

from __future__ import annotations

import asyncpg


async def org_id(conn: asyncpg.Connection, code: str) -> int | None:
    return await conn.fetchval("SELECT id FROM orgs WHERE code = $1", code)


async def create_app(conn: asyncpg.Connection, *, app_id: str, name: str, secret_enc: bytes,
                     scopes: list[str], org_id: int, redirect_uris: list[str],
                     province_scope: bool = False) -> bool:
    status = await conn.execute(
        """INSERT INTO platform_apps (app_id, name, secret_enc, scopes, org_id, redirect_uris,
                                      province_scope)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id) DO NOTHING""",
        app_id, name, secret_enc, scopes, org_id, redirect_uris, province_scope)
    return status.endswith(" 1")


async def get_app(conn: asyncpg.Connection, app_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT app_id, name, secret_enc, scopes, org_id, redirect_uris, status, province_scope
           FROM platform_apps WHERE app_id = $1""", app_id)


async def set_status(conn: asyncpg.Connection, app_id: str, status: str) -> bool:
    result = await conn.execute("UPDATE platform_apps SET status = $2 WHERE app_id = $1",
                                app_id, status)
    return result.endswith(" 1")


async def list_apps(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT a.app_id, a.name, a.scopes, a.status, a.province_scope, o.name AS org_name,
                  a.created_at
           FROM platform_apps a JOIN orgs o ON o.id = a.org_id ORDER BY a.id""")


# --- which accounts an entrance reaches ----------------------------------------------------------
async def record_sign_in(conn: asyncpg.Connection, app_id: str, account_id: int) -> None:
    await conn.execute(
        """INSERT INTO platform_sign_ins (app_id, account_id) VALUES ($1, $2)
           ON CONFLICT (app_id, account_id) DO UPDATE SET last_at = now()""", app_id, account_id)


async def is_linked(conn: asyncpg.Connection, app_id: str, account_id: int) -> bool:
    """The account signed in to the entrance by SSO, or carries the entrance's own user id."""
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM platform_sign_ins WHERE app_id = $1 AND account_id = $2)
               OR EXISTS (SELECT 1 FROM account_identities
                          WHERE account_id = $2 AND kind = 'app_user' AND issuer = $1)""",
        app_id, account_id)


async def in_subtree(conn: asyncpg.Connection, org_id: int, account_id: int) -> bool:
    """The account's home union (a city) or its home region's union lies in ``org_id``'s subtree
    (a county union owns the accounts of its county)."""
    return await conn.fetchval(
        """SELECT EXISTS (
               SELECT 1 FROM accounts a JOIN orgs e ON e.id = $1
               WHERE a.id = $2 AND (
                   EXISTS (SELECT 1 FROM orgs h WHERE h.id = a.home_org_id AND h.path <@ e.path)
                   OR EXISTS (SELECT 1 FROM orgs d WHERE d.division_code = a.region_code
                              AND d.path <@ e.path)))""", org_id, account_id)
