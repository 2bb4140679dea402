"""SQL for cadre accounts, their grants, devices and super-admin filings."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_CADRE = """c.id, c.username, c.display_name, c.org_id, c.role, c.duty, c.password_hash,
    c.totp_secret_enc, c.totp_last_step, c.status, c.failed_logins, c.locked_until,
    c.verified_at, c.created_at, o.path::text AS org_path, o.name AS org_name,
    coalesce((SELECT array_agg(g.permission ORDER BY g.permission) FROM cadre_grants g
              WHERE g.cadre_id = c.id), '{}') AS permissions"""


async def get(conn: asyncpg.Connection, cadre_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF c" if lock else ""
    return await conn.fetchrow(
        f"SELECT {_CADRE} FROM cadres c JOIN orgs o ON o.id = c.org_id WHERE c.id = $1{suffix}",  # noqa: S608
        cadre_id)


async def count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM cadres")


async def get_by_username(conn: asyncpg.Connection, username: str, *,
                          lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF c" if lock else ""
    return await conn.fetchrow(
        f"SELECT {_CADRE} FROM cadres c JOIN orgs o ON o.id = c.org_id WHERE c.username = $1{suffix}",  # noqa: S608
        username)


async def list_within(conn: asyncpg.Connection, org_path: str) -> list[asyncpg.Record]:
    """Every cadre in a union's subtree (the only cadres its people may see)."""
    return await conn.fetch(
        f"""SELECT {_CADRE} FROM cadres c JOIN orgs o ON o.id = c.org_id
            WHERE o.path <@ $1::ltree ORDER BY o.path, c.id""", org_path)  # noqa: S608


async def org(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, name, path::text AS path FROM orgs WHERE id = $1", org_id)


async def org_by_code(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, name, path::text AS path FROM orgs WHERE code = $1", code)


async def active_super_admin(conn: asyncpg.Connection, org_id: int) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM cadres WHERE org_id = $1 AND role = 'super_admin' AND status = 'active'", org_id)


async def create(conn: asyncpg.Connection, *, username: str, display_name: str, org_id: int,
                 role: str, duty: str, password_hash: str, totp_secret_enc: bytes | None,
                 created_by: int | None) -> int | None:
    return await conn.fetchval(
        """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash,
                               totp_secret_enc, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username) DO NOTHING RETURNING id""",
        username, display_name, org_id, role, duty, password_hash, totp_secret_enc, created_by)


async def disable(conn: asyncpg.Connection, cadre_id: int) -> None:
    await conn.execute("UPDATE cadres SET status = 'disabled', updated_at = now() WHERE id = $1", cadre_id)


async def set_grants(conn: asyncpg.Connection, cadre_id: int, permissions: list[str],
                     granted_by: int | None) -> None:
    await conn.execute("DELETE FROM cadre_grants WHERE cadre_id = $1", cadre_id)
    await conn.executemany(
        "INSERT INTO cadre_grants (cadre_id, permission, granted_by) VALUES ($1, $2, $3)",
        [(cadre_id, p, granted_by) for p in permissions])


async def add_password_history(conn: asyncpg.Connection, cadre_id: int, password_hash: str) -> None:
    await conn.execute(
        "INSERT INTO cadre_password_history (cadre_id, password_hash) VALUES ($1, $2)",
        cadre_id, password_hash)


async def password_history(conn: asyncpg.Connection, cadre_id: int, limit: int) -> list[str]:
    rows = await conn.fetch(
        """SELECT password_hash FROM cadre_password_history WHERE cadre_id = $1
           ORDER BY created_at DESC LIMIT $2""", cadre_id, limit)
    return [r["password_hash"] for r in rows]


async def set_password(conn: asyncpg.Connection, cadre_id: int, password_hash: str, *,
                       expected: str) -> bool:
    """Replace the hash if it is still ``expected`` (read before the slow hashing)."""
    return await conn.fetchval(
        """UPDATE cadres SET password_hash = $2, password_changed_at = now(), updated_at = now()
           WHERE id = $1 AND password_hash = $3 RETURNING true""",
        cadre_id, password_hash, expected) or False


async def login_failed(conn: asyncpg.Connection, cadre_id: int, locked_until: datetime | None) -> int:
    """Count a failure since the last sign-in; lock the account for everyone until
    ``locked_until`` when given (never shortening a longer lock)."""
    return await conn.fetchval(
        """UPDATE cadres SET failed_logins = failed_logins + 1,
               locked_until = greatest(locked_until, $2)
           WHERE id = $1 RETURNING failed_logins""", cadre_id, locked_until)


async def login_succeeded(conn: asyncpg.Connection, cadre_id: int, password_hash: str,
                          totp_step: int | None, now: datetime) -> bool:
    """Record a sign-in checked outside any transaction, if it still holds: the account is
    active and unlocked, its password unchanged, and the TOTP step newer than the last used."""
    return await conn.fetchval(
        """UPDATE cadres SET failed_logins = 0, totp_last_step = coalesce($3, totp_last_step)
           WHERE id = $1 AND status = 'active' AND password_hash = $2
             AND (locked_until IS NULL OR locked_until <= $4)
             AND ($3::bigint IS NULL OR totp_last_step IS NULL OR totp_last_step < $3)
           RETURNING true""", cadre_id, password_hash, totp_step, now) or False


async def see_device(conn: asyncpg.Connection, cadre_id: int, device: str, ip: str) -> bool:
    """Record a device; true the first time it is seen."""
    return await conn.fetchval(
        """INSERT INTO cadre_devices (cadre_id, device, ip) VALUES ($1, $2, $3)
           ON CONFLICT (cadre_id, device) DO UPDATE SET last_seen = now(), ip = $3
           RETURNING xmax = 0""", cadre_id, device, ip)


async def file_super_admin(conn: asyncpg.Connection, org_id: int, cadre_id: int, action: str,
                           filed_by: int | None) -> None:
    await conn.execute(
        """INSERT INTO super_admin_filings (org_id, cadre_id, action, filed_by)
           VALUES ($1, $2, $3, $4)""", org_id, cadre_id, action, filed_by)


async def filings_visible_to(conn: asyncpg.Connection, org_path: str) -> list[asyncpg.Record]:
    """Filings of the unions in a subtree (the union above sees its lower unions' changes)."""
    return await conn.fetch(
        """SELECT f.id, f.action, f.filed_at, o.name AS org_name, c.username, c.display_name
           FROM super_admin_filings f JOIN orgs o ON o.id = f.org_id JOIN cadres c ON c.id = f.cadre_id
           WHERE o.path <@ $1::ltree ORDER BY f.id""", org_path)


async def orgs_within(conn: asyncpg.Connection, org_path: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, name, code, parent_id, kind FROM orgs WHERE path <@ $1::ltree
           ORDER BY path""", org_path)


async def mark_verified(conn: asyncpg.Connection, cadre_id: int) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE cadres SET verified_at = now(), updated_at = now() WHERE id = $1 RETURNING verified_at",
        cadre_id)


async def overdue(conn: asyncpg.Connection, older_than_days: int) -> list[asyncpg.Record]:
    """Active cadres and super admins whose last re-confirmation is too old (never operators)."""
    return await conn.fetch(
        """SELECT id, username, org_id FROM cadres
           WHERE status = 'active' AND role <> 'operator'
             AND verified_at < now() - make_interval(days => $1) FOR UPDATE""", older_than_days)


async def audit_within(conn: asyncpg.Connection, org_path: str, before: int | None, limit: int,
                       actions: list[str] | None = None) -> list[asyncpg.Record]:
    """Audit records of the unions in a subtree, newest first: what their cadres did, and what
    was done from above to a cadre account of theirs (a city's super admin appointed by the
    platform office is the city's record too)."""
    return await conn.fetch(
        """SELECT a.id, a.at, a.actor, a.action, a.target, a.detail, a.ip, o.name AS org_name
           FROM audit_log a LEFT JOIN orgs o ON o.id = a.org_id
           WHERE (o.path <@ $1::ltree
                  OR a.target IN (SELECT 'cadre:' || c.id FROM cadres c JOIN orgs co ON co.id = c.org_id
                                  WHERE co.path <@ $1::ltree))
             AND ($2::bigint IS NULL OR a.id < $2)
             AND ($4::text[] IS NULL OR a.action = ANY($4))
           ORDER BY a.id DESC LIMIT $3""", org_path, before, limit, actions)
