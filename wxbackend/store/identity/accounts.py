"""SQL for platform accounts, their identities and conflicts, and the base-data change log."""

from __future__ import annotations

import asyncpg

_ACCOUNT = """a.id, a.public_id, a.status, a.merged_into, a.nickname, a.avatar_url, a.phone_enc,
    a.phone_bidx, a.phone_verified_at, a.phone_source, a.privacy_version, a.privacy_accepted_at,
    a.region_code, r.name AS region_name, r.city_code, a.home_org_id, a.registered_at,
    a.created_at, a.cancelled_at"""
_FROM = "accounts a LEFT JOIN regions r ON r.code = a.region_code"


async def get(conn: asyncpg.Connection, account_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF a" if lock else ""
    return await conn.fetchrow(f"SELECT {_ACCOUNT} FROM {_FROM} WHERE a.id = $1{suffix}", account_id)  # noqa: S608


async def get_by_public_id(conn: asyncpg.Connection, public_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_ACCOUNT} FROM {_FROM} WHERE a.public_id = $1::uuid",  # noqa: S608
                               public_id)


async def find_by_phone(conn: asyncpg.Connection, phone_bidx: bytes, *,
                        lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE OF a" if lock else ""
    return await conn.fetchrow(f"SELECT {_ACCOUNT} FROM {_FROM} WHERE a.phone_bidx = $1{suffix}",  # noqa: S608
                               phone_bidx)


async def create(conn: asyncpg.Connection, *, nickname: str | None = None,
                 avatar_url: str | None = None) -> int:
    return await conn.fetchval(
        "INSERT INTO accounts (nickname, avatar_url) VALUES ($1, $2) RETURNING id",
        nickname, avatar_url)


async def update_profile(conn: asyncpg.Connection, account_id: int, *, nickname: str | None,
                         avatar_url: str | None) -> None:
    await conn.execute(
        """UPDATE accounts SET nickname = coalesce($2, nickname),
               avatar_url = coalesce($3, avatar_url), updated_at = now() WHERE id = $1""",
        account_id, nickname, avatar_url)


async def set_phone(conn: asyncpg.Connection, account_id: int, phone_enc: bytes, phone_bidx: bytes,
                    source: str) -> None:
    await conn.execute(
        """UPDATE accounts SET phone_enc = $2, phone_bidx = $3, phone_source = $4,
               phone_verified_at = now(), updated_at = now() WHERE id = $1""",
        account_id, phone_enc, phone_bidx, source)


async def set_privacy(conn: asyncpg.Connection, account_id: int, version: str) -> None:
    await conn.execute(
        """UPDATE accounts SET privacy_version = $2, privacy_accepted_at = now(), updated_at = now()
           WHERE id = $1""", account_id, version)


async def set_region(conn: asyncpg.Connection, account_id: int, region_code: str,
                     home_org_id: int | None) -> None:
    await conn.execute(
        """UPDATE accounts SET region_code = $2, home_org_id = $3, updated_at = now()
           WHERE id = $1""", account_id, region_code, home_org_id)


async def mark_registered(conn: asyncpg.Connection, account_id: int) -> bool:
    """Set ``registered_at`` the first time the account meets the conditions; true if now."""
    status = await conn.execute(
        """UPDATE accounts SET registered_at = now(), updated_at = now()
           WHERE id = $1 AND registered_at IS NULL AND status = 'active'
             AND phone_bidx IS NOT NULL AND privacy_version IS NOT NULL
             AND region_code IS NOT NULL""", account_id)
    return status.endswith(" 1")


async def absorb(conn: asyncpg.Connection, survivor: int, absorbed: int) -> None:
    """Move ``absorbed``'s identities and the facts the survivor lacks to ``survivor``, and mark
    ``absorbed`` merged. The caller has checked the two may be merged."""
    await conn.execute("UPDATE account_identities SET account_id = $1 WHERE account_id = $2",
                       survivor, absorbed)
    # The entrances the absorbed account signed in to may go on reading the person.
    await conn.execute(
        """INSERT INTO platform_sign_ins (app_id, account_id, first_at, last_at)
           SELECT app_id, $1, first_at, last_at FROM platform_sign_ins WHERE account_id = $2
           ON CONFLICT (app_id, account_id) DO NOTHING""", survivor, absorbed)
    await conn.execute("DELETE FROM platform_sign_ins WHERE account_id = $1", absorbed)
    # One person, one certified member record: it follows the person unless the survivor has one.
    await conn.execute(
        """UPDATE members SET account_id = $1, updated_at = now()
           WHERE account_id = $2 AND NOT EXISTS (SELECT 1 FROM members WHERE account_id = $1)""",
        survivor, absorbed)
    await conn.execute("UPDATE members SET account_id = NULL, certified_at = NULL WHERE account_id = $1",
                       absorbed)
    await conn.execute(
        """UPDATE applications SET status = 'withdrawn', updated_at = now()
           WHERE account_id = $2 AND status = 'pending' AND kind IN
                 (SELECT kind FROM applications WHERE account_id = $1 AND status = 'pending')""",
        survivor, absorbed)
    await conn.execute("UPDATE applications SET account_id = $1 WHERE account_id = $2", survivor, absorbed)
    await conn.execute(
        """UPDATE accounts s SET
               nickname = coalesce(s.nickname, x.nickname),
               avatar_url = coalesce(s.avatar_url, x.avatar_url),
               privacy_version = coalesce(s.privacy_version, x.privacy_version),
               privacy_accepted_at = coalesce(s.privacy_accepted_at, x.privacy_accepted_at),
               region_code = coalesce(s.region_code, x.region_code),
               home_org_id = coalesce(s.home_org_id, x.home_org_id),
               registered_at = least(s.registered_at, x.registered_at),
               updated_at = now()
           FROM accounts x WHERE s.id = $1 AND x.id = $2""", survivor, absorbed)
    # The phone moves last: its blind index is unique, so it leaves the absorbed row first.
    phone = await conn.fetchrow(
        "SELECT phone_enc, phone_bidx, phone_source, phone_verified_at FROM accounts WHERE id = $1",
        absorbed)
    await conn.execute(
        """UPDATE accounts SET phone_enc = NULL, phone_bidx = NULL, status = 'merged',
               merged_into = $1, updated_at = now() WHERE id = $2""", survivor, absorbed)
    if phone["phone_bidx"] is not None:
        await conn.execute(
            """UPDATE accounts SET phone_enc = $2, phone_bidx = $3, phone_source = $4,
                   phone_verified_at = $5 WHERE id = $1 AND phone_bidx IS NULL""",
            survivor, *phone.values())


async def cancel(conn: asyncpg.Connection, account_id: int) -> None:
    """The deletion rule of docs/privacy.md: personal data goes, the KPI facts stay. A union's
    member record stays with the union, no longer linked; what the worker filed loses its
    personal data, and what was still pending is withdrawn."""
    await conn.execute("DELETE FROM account_identities WHERE account_id = $1", account_id)
    await conn.execute("DELETE FROM platform_sign_ins WHERE account_id = $1", account_id)
    await conn.execute("UPDATE members SET account_id = NULL, certified_at = NULL, updated_at = now() "
                       "WHERE account_id = $1", account_id)
    await conn.execute(
        """UPDATE applications SET name = '（已注销）', id_number_enc = NULL, id_number_bidx = NULL,
               phone_enc = NULL, form = form - 'birth_date' - 'gender' - 'note',
               status = CASE WHEN status = 'pending' THEN 'withdrawn' ELSE status END,
               updated_at = now()
           WHERE account_id = $1""", account_id)
    await conn.execute(
        """UPDATE accounts SET status = 'cancelled', cancelled_at = now(), updated_at = now(),
               nickname = NULL, avatar_url = NULL, phone_enc = NULL, phone_bidx = NULL,
               phone_source = NULL, phone_verified_at = NULL, region_code = NULL,
               privacy_version = NULL, privacy_accepted_at = NULL
           WHERE id = $1""", account_id)


# --- identities ------------------------------------------------------------------------------
async def lock_identity(conn: asyncpg.Connection, key: str) -> None:
    """Serialise, until the transaction ends, everything done for one identity."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", key)


async def find_identity(conn: asyncpg.Connection, kind: str, issuer: str,
                        subject: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT i.account_id, a.status, a.merged_into FROM account_identities i
           JOIN accounts a ON a.id = i.account_id
           WHERE i.kind = $1 AND i.issuer = $2 AND i.subject = $3""", kind, issuer, subject)


async def add_identity(conn: asyncpg.Connection, account_id: int, kind: str, issuer: str,
                       subject: str) -> bool:
    """Attach an identity; false if it already belongs to an account (perhaps another one)."""
    status = await conn.execute(
        """INSERT INTO account_identities (account_id, kind, issuer, subject)
           VALUES ($1, $2, $3, $4) ON CONFLICT (kind, issuer, subject) DO NOTHING""",
        account_id, kind, issuer, subject)
    return status.endswith(" 1")


async def touch_identity(conn: asyncpg.Connection, kind: str, issuer: str, subject: str) -> None:
    await conn.execute(
        """UPDATE account_identities SET last_seen_at = now()
           WHERE kind = $1 AND issuer = $2 AND subject = $3""", kind, issuer, subject)


async def identities(conn: asyncpg.Connection, account_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT kind, issuer, subject, created_at, last_seen_at FROM account_identities
           WHERE account_id = $1 ORDER BY id""", account_id)


async def oa_openid(conn: asyncpg.Connection, account_id: int, appid: str) -> str | None:
    """The account's openid under this Official Account, if it has signed in there."""
    return await conn.fetchval(
        """SELECT subject FROM account_identities
           WHERE account_id = $1 AND kind = 'oa_openid' AND issuer = $2""", account_id, appid)


async def record_conflict(conn: asyncpg.Connection, account_id: int, other_id: int, reason: str,
                          detail: dict) -> None:
    await conn.execute(
        """INSERT INTO account_conflicts (account_id, other_id, reason, detail)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
        account_id, other_id, reason, detail)


async def open_conflicts(conn: asyncpg.Connection, account_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, account_id, other_id, reason, detail, created_at FROM account_conflicts
           WHERE status = 'open' AND $1 IN (account_id, other_id) ORDER BY id""", account_id)


async def list_open_conflicts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT c.id, c.account_id, c.other_id, c.reason, c.detail, c.created_at,
                  a.public_id AS account_public, b.public_id AS other_public
           FROM account_conflicts c JOIN accounts a ON a.id = c.account_id
           JOIN accounts b ON b.id = c.other_id
           WHERE c.status = 'open' ORDER BY c.id""")


async def get_conflict(conn: asyncpg.Connection, conflict_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM account_conflicts WHERE id = $1 FOR UPDATE", conflict_id)


async def close_conflict(conn: asyncpg.Connection, conflict_id: int, resolution: str) -> None:
    await conn.execute(
        """UPDATE account_conflicts SET status = 'resolved', resolution = $2, resolved_at = now()
           WHERE id = $1""", conflict_id, resolution)


async def drop_phone(conn: asyncpg.Connection, account_id: int) -> None:
    await conn.execute(
        """UPDATE accounts SET phone_enc = NULL, phone_bidx = NULL, phone_source = NULL,
               phone_verified_at = NULL, updated_at = now() WHERE id = $1""", account_id)


# --- regions ---------------------------------------------------------------------------------
async def get_region(conn: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT r.code, r.name, r.city_code, r.level, o.id AS city_org_id
           FROM regions r LEFT JOIN orgs o ON o.division_code = r.city_code AND o.kind = 'city'
           WHERE r.code = $1""", code)


async def list_regions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT code, name, city_code, level FROM regions ORDER BY code")


async def upsert_regions(conn: asyncpg.Connection, rows: list[tuple[str, str, str, str]]) -> None:
    await conn.executemany(
        """INSERT INTO regions (code, name, city_code, level) VALUES ($1, $2, $3, $4)
           ON CONFLICT (code) DO UPDATE SET name = $2, city_code = $3, level = $4""", rows)


# --- the base-data change log ----------------------------------------------------------------
async def log_change(conn: asyncpg.Connection, entity: str, entity_id: str, action: str,
                     actor: str, data: dict | None = None) -> None:
    await conn.execute(
        """INSERT INTO base_data_changes (entity, entity_id, action, data, actor)
           VALUES ($1, $2, $3, $4, $5)""", entity, entity_id, action, data or {}, actor)
