"""SQL for re-encrypting sealed columns after a field-key change (rules in
:mod:`wxbackend.services.key_rotation`). The statements are built once, at import, from the
fixed table of sealed columns below — never from anything a caller passes."""

from __future__ import annotations

import asyncpg

# column label → (table, column holding the sealed value)
_SEALED = {
    "accounts.phone": ("accounts", "phone_enc"),
    "members.id_number": ("members", "id_number_enc"),
    "members.phone": ("members", "phone_enc"),
    # applications hold the values they will hand to a member record, sealed for its columns
    "applications.id_number": ("applications", "id_number_enc"),
    "applications.phone": ("applications", "phone_enc"),
    "platform_apps.secret": ("platform_apps", "secret_enc"),
    "cadres.totp_secret": ("cadres", "totp_secret_enc"),
    "wechat_inbound.payload": ("wechat_inbound", "payload_enc"),
}


def _statements(table: str, column: str) -> tuple[str, str]:
    # ``get_byte(value, 1)`` is the key id every sealed value carries (see infra/pii.py).
    select = (f"SELECT id, {column} AS value FROM {table} "  # noqa: S608 - names from _SEALED only
              f"WHERE {column} IS NOT NULL AND get_byte({column}, 1) <> $1 AND id > $2 "
              "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED")
    update = f"UPDATE {table} SET {column} = $2 WHERE id = $1"  # noqa: S608 - names from _SEALED only
    return select, update


_STATEMENTS = {label: _statements(*where) for label, where in _SEALED.items()}
COLUMNS = tuple(_SEALED)


async def stale(conn: asyncpg.Connection, column: str, current_key: int, after_id: int,
                limit: int) -> list[asyncpg.Record]:
    """The next rows of ``column`` sealed under another key than ``current_key``."""
    return await conn.fetch(_STATEMENTS[column][0], current_key, after_id, limit)


async def write(conn: asyncpg.Connection, column: str, rows: list[tuple[int, bytes]]) -> None:
    await conn.executemany(_STATEMENTS[column][1], rows)
