"""SQL for the registered-user targets, the unions' go-live years and the history of both."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg


async def lock_orgs(conn: asyncpg.Connection, org_ids: Sequence[int]) -> list[asyncpg.Record]:
    """Lock the unions whose targets are about to change, in id order (no deadlock between two
    imports), so that the value read as "from" is still the value when the change is written.
    NO KEY UPDATE: members and applications referring to the union are not held up."""
    return await conn.fetch(
        """SELECT id, code, name, path::text AS path FROM orgs WHERE id = ANY($1::bigint[])
           ORDER BY id FOR NO KEY UPDATE""", list(org_ids))


async def current(conn: asyncpg.Connection, org_ids: Sequence[int]) -> dict[tuple[int, int], int]:
    rows = await conn.fetch(
        "SELECT org_id, year, new_users FROM registered_user_targets WHERE org_id = ANY($1::bigint[])",
        list(org_ids))
    return {(r["org_id"], r["year"]): r["new_users"] for r in rows}


async def first_years(conn: asyncpg.Connection, org_ids: Sequence[int]) -> dict[int, int]:
    """The go-live years set explicitly (a union without one starts with the arrangement)."""
    rows = await conn.fetch(
        "SELECT org_id, first_year FROM kpi_first_years WHERE org_id = ANY($1::bigint[])", list(org_ids))
    return {r["org_id"]: r["first_year"] for r in rows}


async def put_target(conn: asyncpg.Connection, org_id: int, year: int, new_users: int) -> None:
    await conn.execute(
        """INSERT INTO registered_user_targets (org_id, year, new_users) VALUES ($1, $2, $3)
           ON CONFLICT (org_id, year) DO UPDATE SET new_users = $3""",
        org_id, year, new_users)


async def put_first_year(conn: asyncpg.Connection, org_id: int, first_year: int,
                         cadre_id: int | None, at: datetime) -> None:
    await conn.execute(
        """INSERT INTO kpi_first_years (org_id, first_year, set_by, set_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (org_id) DO UPDATE SET first_year = $2, set_by = $3, set_at = $4""",
        org_id, first_year, cadre_id, at)


async def add_changes(conn: asyncpg.Connection, changes: Sequence[tuple], *, source: str,
                      import_id: int | None, cadre_id: int | None, cadre: str | None,
                      at: datetime) -> None:
    """``changes``: (org_id, kind, year, old_value, new_value) each."""
    await conn.executemany(
        """INSERT INTO kpi_target_changes (org_id, kind, year, old_value, new_value, source, import_id,
                                           changed_by, changed_by_name, changed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        [(*c, source, import_id, cadre_id, cadre, at) for c in changes])


async def add_import(conn: asyncpg.Connection, *, cadre_id: int, cadre: str, sha256: bytes, size: int,
                     rows: int, changes: int, at: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO kpi_target_imports (cadre_id, cadre, sha256, bytes, rows, changes, imported_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        cadre_id, cadre, sha256, size, rows, changes, at)


async def table(conn: asyncpg.Connection, root_path: str, own_id: int) -> list[asyncpg.Record]:
    """The union ``own_id`` and every union of its subtree that has a target or a go-live year,
    in tree order, with all its targets as a ``{year: new_users}`` JSON object. Driven from the
    (few) unions with targets, not from the subtree, which holds every grassroots union."""
    return await conn.fetch(
        """SELECT o.id, o.code, o.name, o.kind, o.path::text AS path, f.first_year,
                  coalesce((SELECT jsonb_object_agg(t.year::text, t.new_users)
                            FROM registered_user_targets t WHERE t.org_id = o.id), '{}') AS targets
           FROM orgs o LEFT JOIN kpi_first_years f ON f.org_id = o.id
           WHERE o.path <@ $1::ltree
             AND (o.id = $2 OR o.id IN (SELECT org_id FROM registered_user_targets
                                        UNION SELECT org_id FROM kpi_first_years))
           ORDER BY nlevel(o.path), o.code""",
        root_path, own_id)


async def org(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, code, name, short_name, path::text AS path FROM orgs WHERE id = $1", org_id)


async def orgs_by_code_or_name(conn: asyncpg.Connection, codes: Sequence[str],
                               names: Sequence[str]) -> list[asyncpg.Record]:
    """Unions named in an import, by code or by their exact (full or short) name."""
    return await conn.fetch(
        """SELECT id, code, name, short_name, path::text AS path FROM orgs
           WHERE code = ANY($1::text[]) OR name = ANY($2::text[]) OR short_name = ANY($2::text[])""",
        list(codes), list(names))


async def history(conn: asyncpg.Connection, org_id: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, kind, year, old_value, new_value, source, import_id, changed_by_name, changed_at
           FROM kpi_target_changes WHERE org_id = $1 ORDER BY id DESC LIMIT $2""",
        org_id, limit)
