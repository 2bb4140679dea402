"""SQL for re-encrypting sealed columns after a field-key change (rules in
:mod:`wxbackend.services.key_rotation`). One fixed pair of statements per column: no SQL is
built from names at run time."""

from __future__ import annotations

import asyncpg

# column label → (select the next rows sealed under another key, write one row back)
# ``get_byte(value, 1)`` is the key id every sealed value carries (see infra/pii.py).
_STATEMENTS: dict[str, tuple[str, str]] = {
    "accounts.phone": (
        """SELECT id, phone_enc AS value FROM accounts
           WHERE phone_enc IS NOT NULL AND get_byte(phone_enc, 1) <> $1 AND id > $2
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        "UPDATE accounts SET phone_enc = $2 WHERE id = $1"),
    "members.id_number": (
        """SELECT id, id_number_enc AS value FROM members
           WHERE get_byte(id_number_enc, 1) <> $1 AND id > $2
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        "UPDATE members SET id_number_enc = $2 WHERE id = $1"),
    "members.phone": (
        """SELECT id, phone_enc AS value FROM members
           WHERE phone_enc IS NOT NULL AND get_byte(phone_enc, 1) <> $1 AND id > $2
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        "UPDATE members SET phone_enc = $2 WHERE id = $1"),
    # applications hold the values they will hand to a member record, sealed for its columns
    "applications.id_number": (
        """SELECT id, id_number_enc AS value FROM applications
           WHERE id_number_enc IS NOT NULL AND get_byte(id_number_enc, 1) <> $1 AND id > $2
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        "UPDATE applications SET id_number_enc = $2 WHERE id = $1"),
    "applications.phone": (
        """SELECT id, phone_enc AS value FROM applications
           WHERE phone_enc IS NOT NULL AND get_byte(phone_enc, 1) <> $1 AND id > $2
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        "UPDATE applications SET phone_enc = $2 WHERE id = $1"),
    "platform_apps.secret": (
        """SELECT id, secret_enc AS value FROM platform_apps
           WHERE get_byte(secret_enc, 1) <> $1 AND id > $2
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        "UPDATE platform_apps SET secret_enc = $2 WHERE id = $1"),
    "cadres.totp_secret": (
        """SELECT id, totp_secret_enc AS value FROM cadres
           WHERE totp_secret_enc IS NOT NULL AND get_byte(totp_secret_enc, 1) <> $1 AND id > $2
           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED""",
        "UPDATE cadres SET totp_secret_enc = $2 WHERE id = $1"),
}
COLUMNS = tuple(_STATEMENTS)


async def stale(conn: asyncpg.Connection, column: str, current_key: int, after_id: int,
                limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(_STATEMENTS[column][0], current_key, after_id, limit)


async def write(conn: asyncpg.Connection, column: str, rows: list[tuple[int, bytes]]) -> None:
    await conn.executemany(_STATEMENTS[column][1], rows)
