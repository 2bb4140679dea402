"""SQL for documents (公文), the unions' document offices and their number sequences (rules in
:mod:`wxbackend.services.office.documents`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# The columns a document's elements and handling write; an update names only these.
COLUMNS = frozenset({
    "copy_no", "urgency", "issuer_mark", "doc_number", "number_year", "number_serial", "signer",
    "title", "main_to", "body", "attachment_note", "attachments", "issuer", "written_on", "note",
    "copy_to", "printer", "printed_on", "flow", "important", "countersign", "signed_by",
    "signed_at", "numbered_at", "sealed_by", "sealed_at", "distributed_at", "sender",
    "received_no", "received_year", "received_serial", "instruction", "handlers", "year"})

_DOCUMENT = """d.*, d.org_path::text AS org_path, o.name AS org_name, i.status AS item_status,
    i.version AS item_version, i.due_at, i.closed_at, i.outcome,
    (SELECT string_agg(s.name, '、' ORDER BY s.id) FROM work_steps s
      WHERE s.item_id = d.item_id AND s.status = 'open') AS open_steps,
    k.display_name AS drafted_by_name"""
_FROM = """documents d JOIN orgs o ON o.id = d.org_id JOIN work_items i ON i.id = d.item_id
    LEFT JOIN cadres k ON k.id = d.drafted_by"""


# --- the document offices ---------------------------------------------------------------------
async def office(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT f.*, c.display_name AS principal_name FROM document_offices f
           LEFT JOIN cadres c ON c.id = f.principal_id WHERE f.org_id = $1""", org_id)


async def save_office(conn: asyncpg.Connection, org_id: int, *, issuer_code: str, issuer_mark: str,
                      issuer_name: str, principal_id: int | None, by: int, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO document_offices (org_id, issuer_code, issuer_mark, issuer_name, principal_id,
                                         updated_by, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (org_id) DO UPDATE SET issuer_code = EXCLUDED.issuer_code,
                 issuer_mark = EXCLUDED.issuer_mark, issuer_name = EXCLUDED.issuer_name,
                 principal_id = EXCLUDED.principal_id, updated_by = EXCLUDED.updated_by,
                 updated_at = EXCLUDED.updated_at""",
        org_id, issuer_code, issuer_mark, issuer_name, principal_id, by, now)


async def handlers_of(conn: asyncpg.Connection, org_id: int, permission: str) -> list[asyncpg.Record]:
    """Active cadres of a union holding ``permission``: who may be its principal."""
    return await conn.fetch(
        """SELECT c.id, c.display_name, c.department FROM cadres c
           JOIN cadre_grants g ON g.cadre_id = c.id AND g.permission = $2
           WHERE c.org_id = $1 AND c.status = 'active' ORDER BY c.display_name, c.id""",
        org_id, permission)


async def staffed_departments(conn: asyncpg.Connection, org_id: int, departments: list[str],
                              permission: str) -> set[str]:
    """Of ``departments``, those with an active cadre of the union holding ``permission``."""
    return {r["department"] for r in await conn.fetch(
        """SELECT DISTINCT c.department FROM cadres c
           JOIN cadre_grants g ON g.cadre_id = c.id AND g.permission = $3
           WHERE c.org_id = $1 AND c.status = 'active' AND c.department = ANY($2::text[])""",
        org_id, departments, permission)}


async def cadre_name(conn: asyncpg.Connection, cadre_id: int) -> str | None:
    return await conn.fetchval("SELECT display_name FROM cadres WHERE id = $1", cadre_id)


async def org(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, parent_id, name, path::text AS path FROM orgs WHERE id = $1", org_id)


async def orgs(conn: asyncpg.Connection, org_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, parent_id, name, path::text AS path FROM orgs WHERE id = ANY($1::bigint[])",
        org_ids)


async def children(conn: asyncpg.Connection, org_id: int) -> list[int]:
    return [r["id"] for r in await conn.fetch(
        "SELECT id FROM orgs WHERE parent_id = $1 ORDER BY id", org_id)]


# --- numbers ----------------------------------------------------------------------------------
async def next_serial(conn: asyncpg.Connection, org_id: int, kind: str, year: int) -> int:
    """The next number of the union's year. The sequence row stays locked until the caller's
    transaction ends (a concurrent numbering waits), and a rollback gives the number back."""
    return await conn.fetchval(
        """INSERT INTO document_sequences (org_id, kind, year, last) VALUES ($1, $2, $3, 1)
           ON CONFLICT (org_id, kind, year) DO UPDATE SET last = document_sequences.last + 1
           RETURNING last""", org_id, kind, year)


# --- documents --------------------------------------------------------------------------------
async def insert(conn: asyncpg.Connection, *, direction: str, item_id: int, org_id: int,
                 fields: dict, drafted_by: int | None, now: datetime) -> int:
    names = sorted(set(fields) & COLUMNS)
    columns = ", ".join(names)
    values = ", ".join(f"${n + 6}" for n in range(len(names)))
    return await conn.fetchval(
        f"""INSERT INTO documents (direction, item_id, org_id, org_path, drafted_by, created_at,
                                   updated_at, {columns})
            SELECT $1, $2, o.id, o.path, $4, $5, $5, {values} FROM orgs o WHERE o.id = $3
            RETURNING id""",  # noqa: S608 - column names from COLUMNS only
        direction, item_id, org_id, drafted_by, now, *[fields[n] for n in names])


async def update(conn: asyncpg.Connection, doc_id: int, fields: dict, now: datetime) -> None:
    names = sorted(set(fields) & COLUMNS)
    if not names:
        return
    sets = ", ".join(f"{name} = ${n + 3}" for n, name in enumerate(names))
    await conn.execute(
        f"UPDATE documents SET updated_at = $2, {sets} WHERE id = $1",  # noqa: S608
        doc_id, now, *[fields[n] for n in names])


async def document(conn: asyncpg.Connection, doc_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_DOCUMENT} FROM {_FROM} WHERE d.id = $1", doc_id)  # noqa: S608


async def by_item(conn: asyncpg.Connection, item_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_DOCUMENT} FROM {_FROM} WHERE d.item_id = $1", item_id)  # noqa: S608


async def by_items(conn: asyncpg.Connection, item_ids: list[int]) -> dict[int, asyncpg.Record]:
    return {r["item_id"]: r for r in await conn.fetch(
        """SELECT id, item_id, direction, doc_number, received_no, urgency FROM documents
           WHERE item_id = ANY($1::bigint[])""", item_ids)}


async def registry(conn: asyncpg.Connection, org_id: int, direction: str, year: int,
                   search: str | None, limit: int, offset: int) -> tuple[list[asyncpg.Record], int]:
    """A union's documents of a year (发文登记簿 / 收文登记簿), by number, then the unnumbered."""
    where = """d.org_id = $1 AND d.direction = $2 AND d.year = $3
               AND ($4::text IS NULL OR strpos(d.title, $4) > 0 OR strpos(d.doc_number, $4) > 0)"""
    rows = await conn.fetch(
        f"""SELECT {_DOCUMENT} FROM {_FROM} WHERE {where}
            ORDER BY coalesce(d.number_serial, d.received_serial) NULLS LAST, d.id DESC
            LIMIT $5 OFFSET $6""",  # noqa: S608
        org_id, direction, year, search, limit, offset)
    total = await conn.fetchval(f"SELECT count(*) FROM documents d WHERE {where}",  # noqa: S608
                                org_id, direction, year, search)
    return rows, total


async def copies_of(conn: asyncpg.Connection, source_id: int) -> list[asyncpg.Record]:
    """Where a distributed document arrived: each union's copy, its progress and 签收."""
    return await conn.fetch(
        """SELECT d.id, d.org_id, o.name AS org_name, d.received_no, i.status AS item_status,
                  (SELECT string_agg(s.name, '、' ORDER BY s.id) FROM work_steps s
                    WHERE s.item_id = d.item_id AND s.status = 'open') AS open_steps,
                  (SELECT min(s.closed_at) FROM work_steps s
                    WHERE s.item_id = d.item_id AND s.node = 'receive' AND s.status = 'passed')
                    AS received_at
           FROM documents d JOIN orgs o ON o.id = d.org_id JOIN work_items i ON i.id = d.item_id
           WHERE d.source_id = $1 ORDER BY o.path""", source_id)


async def insert_copies(conn: asyncpg.Connection, source_id: int, items: dict[int, int],
                        now: datetime) -> int:
    """Each recipient union's incoming copy of a distributed document, in one statement: the
    elements as issued, the issuer as the sender."""
    status = await conn.execute(
        """INSERT INTO documents (direction, item_id, org_id, org_path, year, source_id, copy_no,
               urgency, issuer_mark, doc_number, signer, title, main_to, body, attachment_note,
               attachments, issuer, written_on, note, copy_to, printer, printed_on, flow, important,
               sender, created_at, updated_at)
           SELECT 'in', x.item_id, o.id, o.path, s.year, s.id, s.copy_no, s.urgency, s.issuer_mark,
                  s.doc_number, s.signer, s.title, s.main_to, s.body, s.attachment_note,
                  s.attachments, s.issuer, s.written_on, s.note, s.copy_to, s.printer, s.printed_on,
                  s.flow, s.important, s.issuer, $4, $4
           FROM documents s, unnest($2::bigint[], $3::bigint[]) AS x(org_id, item_id)
           JOIN orgs o ON o.id = x.org_id
           WHERE s.id = $1""", source_id, list(items), list(items.values()), now)
    return int(status.split()[-1])
