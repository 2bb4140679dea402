"""SQL for ``keyword_rules``, the Official Account's keyword router."""

from __future__ import annotations

import asyncpg


async def list_enabled(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, name, match_kind, pattern, reply, priority FROM keyword_rules
           WHERE enabled ORDER BY priority, id""")


async def insert_missing(conn: asyncpg.Connection, rules: list[dict]) -> int:
    """Insert seed rules by name; an existing rule (perhaps edited by a cadre) is left alone."""
    inserted = 0
    for rule in rules:
        status = await conn.execute(
            """INSERT INTO keyword_rules (name, match_kind, pattern, reply, priority)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING""",
            rule["name"], rule["match_kind"], rule.get("pattern", ""), rule["reply"],
            rule.get("priority", 100))
        inserted += status.endswith(" 1")
    return inserted
