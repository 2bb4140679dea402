"""SQL for configured business modules and their applications (rules in
:mod:`wxbackend.services.office.business`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_MODULE = """SELECT m.*, o.name AS org_name, o.path::text AS org_path FROM business_modules m
             JOIN orgs o ON o.id = m.org_id"""


async def insert_module(conn: asyncpg.Connection, *, code: str, org_id: int, spec: dict,
                        created_by: int, now: datetime) -> int:
    """A draft: the module's next version (one pending draft or request per module)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('business_modules:' || $1))", code)
    return await conn.fetchval(
        """INSERT INTO business_modules (code, version, name, department, purpose, org_id, form,
                                         step_forms, graph, open_to, entrances, applicants,
                                         created_by, created_at)
           VALUES ($1, coalesce((SELECT max(version) FROM business_modules WHERE code = $1), 0) + 1,
                   $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           RETURNING id""",
        code, spec["name"], spec["department"], spec["purpose"], org_id, spec["form"],
        spec["step_forms"], spec["graph"], spec["open_to"], spec["entrances"], spec["applicants"],
        created_by, now)


async def update_draft(conn: asyncpg.Connection, module_id: int, spec: dict) -> None:
    await conn.execute(
        """UPDATE business_modules SET name = $2, department = $3, purpose = $4, form = $5,
                  step_forms = $6, graph = $7, open_to = $8, entrances = $9, applicants = $10
           WHERE id = $1 AND status = 'draft'""",
        module_id, spec["name"], spec["department"], spec["purpose"], spec["form"],
        spec["step_forms"], spec["graph"], spec["open_to"], spec["entrances"], spec["applicants"])


async def module(conn: asyncpg.Connection, module_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    if lock:
        await conn.execute("SELECT 1 FROM business_modules WHERE id = $1 FOR UPDATE", module_id)
    return await conn.fetchrow(f"{_MODULE} WHERE m.id = $1", module_id)


async def by_request(conn: asyncpg.Connection, item_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_MODULE} WHERE m.request_item_id = $1", item_id)


async def live(conn: asyncpg.Connection, code: str | None = None) -> list[asyncpg.Record]:
    if code is None:
        return await conn.fetch(f"{_MODULE} WHERE m.status = 'live' ORDER BY m.code")
    return await conn.fetch(f"{_MODULE} WHERE m.status = 'live' AND m.code = $1", code)


async def modules_within(conn: asyncpg.Connection, org_path: str) -> list[asyncpg.Record]:
    """Every version of the modules defined in the subtree, newest first within each module."""
    return await conn.fetch(
        f"{_MODULE} WHERE o.path <@ $1::ltree ORDER BY m.code, m.version DESC", org_path)


async def set_status(conn: asyncpg.Connection, module_id: int, status: str, now: datetime, *,
                     request_item_id: int | None = None, definition_id: int | None = None) -> None:
    await conn.execute(
        """UPDATE business_modules SET status = $2,
                  requested_at = CASE WHEN $2 = 'requested' THEN $3 ELSE requested_at END,
                  decided_at = CASE WHEN $2 IN ('live', 'refused') THEN $3 ELSE decided_at END,
                  retired_at = CASE WHEN $2 IN ('retired', 'superseded') THEN $3 ELSE retired_at END,
                  request_item_id = coalesce($4, request_item_id),
                  definition_id = coalesce($5, definition_id)
           WHERE id = $1""", module_id, status, now, request_item_id, definition_id)


async def supersede_live(conn: asyncpg.Connection, code: str, now: datetime) -> None:
    await conn.execute(
        """UPDATE business_modules SET status = 'superseded', retired_at = $2
           WHERE code = $1 AND status = 'live'""", code, now)


async def retire_definition(conn: asyncpg.Connection, definition_id: int) -> None:
    """A retired module's process starts nothing more (its running items keep it)."""
    await conn.execute("UPDATE process_definitions SET status = 'retired' WHERE id = $1", definition_id)


async def running(conn: asyncpg.Connection, code: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM work_items WHERE module = $1 AND status <> 'closed'", code)


# --- applications -------------------------------------------------------------------------------
async def insert_application(conn: asyncpg.Connection, *, item_id: int, module_id: int,
                             account_id: int | None, cadre_id: int | None, entrance: str,
                             sealed: bytes | None, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO business_applications (item_id, module_id, account_id, cadre_id, entrance,
                                              sealed, filed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        item_id, module_id, account_id, cadre_id, entrance, sealed, now)


_APPLICATION = """SELECT a.*, i.module, i.title, i.status, i.outcome, i.version, i.data, i.org_id,
                         i.org_path::text AS org_path, i.opened_at, i.closed_at, i.due_at,
                         i.due_provisional, o.name AS org_name, m.name AS module_name,
                         m.form, m.step_forms, m.version AS module_version
                  FROM business_applications a
                  JOIN work_items i ON i.id = a.item_id
                  JOIN orgs o ON o.id = i.org_id
                  JOIN business_modules m ON m.id = a.module_id"""


async def application(conn: asyncpg.Connection, item_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_APPLICATION} WHERE a.item_id = $1", item_id)


async def applications_of(conn: asyncpg.Connection, account_id: int,
                          limit: int | None = 100) -> list[asyncpg.Record]:
    """An account's applications, newest first (``limit`` None: all of them)."""
    return await conn.fetch(f"{_APPLICATION} WHERE a.account_id = $1 ORDER BY a.filed_at DESC LIMIT $2",
                            account_id, limit)


async def record_step(conn: asyncpg.Connection, item_id: int, node: str, values: dict) -> None:
    await conn.execute(
        """UPDATE business_applications SET steps = steps || jsonb_build_object($2::text, $3::jsonb)
           WHERE item_id = $1""", item_id, node, values)


async def filed_since(conn: asyncpg.Connection, account_id: int, module_id: int,
                      since: datetime) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM business_applications
           WHERE account_id = $1 AND module_id = $2 AND filed_at >= $3""", account_id, module_id, since)


async def erase(conn: asyncpg.Connection, account_id: int, now: datetime) -> None:
    await conn.execute(
        """UPDATE business_applications SET sealed = NULL, erased_at = $2
           WHERE account_id = $1 AND erased_at IS NULL""", account_id, now)


# --- attached files ------------------------------------------------------------------------------
async def insert_file(conn: asyncpg.Connection, account_id: int, kind: str, filename: str,
                      content_type: str, size: int, sealed: bytes, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO business_files (account_id, kind, filename, content_type, size, data_enc, uploaded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        account_id, kind, filename, content_type, size, sealed, now)


async def unfiled_count(conn: asyncpg.Connection, account_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM business_files WHERE account_id = $1 AND item_id IS NULL", account_id)


async def claim_files(conn: asyncpg.Connection, account_id: int, item_id: int, field: str,
                      ids: list[int]) -> int:
    """Attach the account's own unfiled files to the application; how many were."""
    status = await conn.execute(
        """UPDATE business_files SET item_id = $2, field = $3
           WHERE id = ANY($4::bigint[]) AND account_id = $1 AND item_id IS NULL""",
        account_id, item_id, field, ids)
    return int(status.split()[-1])


async def file(conn: asyncpg.Connection, file_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM business_files WHERE id = $1", file_id)


async def files_of(conn: asyncpg.Connection, item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, field, kind, filename, size FROM business_files WHERE item_id = $1 ORDER BY id", item_id)


async def drop_unfiled(conn: asyncpg.Connection, before: datetime) -> int:
    status = await conn.execute(
        "DELETE FROM business_files WHERE item_id IS NULL AND uploaded_at < $1", before)
    return int(status.split()[-1])


async def drop_files_of(conn: asyncpg.Connection, account_id: int) -> None:
    await conn.execute("DELETE FROM business_files WHERE account_id = $1", account_id)


async def unions(conn: asyncpg.Connection, ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, name, path::text AS path FROM orgs WHERE id = ANY($1::bigint[])",
                            ids)


async def member_union(conn: asyncpg.Connection, account_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT o.id, o.name, o.path::text AS path FROM members m JOIN orgs o ON o.id = m.org_id
           WHERE m.account_id = $1 AND m.status = 'active'""", account_id)


async def root_union(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT id FROM orgs WHERE nlevel(path) = 1 ORDER BY id LIMIT 1")
