"""SQL for roster imports and exports.

An import runs in one transaction on one connection. Each batch is copied into a temporary
staging table and applied with one INSERT and one UPDATE, each writing its change-log rows in
the same statement, so 100,000 rows cost a few hundred round trips, not 100,000.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date

import asyncpg

# While an import's transaction is open it holds this advisory lock (with the import's id): the
# stale sweep fails only imports whose lock is free, i.e. whose process or connection is gone.
IMPORT_LOCK = 0x726F7374  # "rost"

STAGE_COLUMNS = ("op", "row_no", "member_id", "org_id", "member_no", "name", "id_number_enc",
                 "id_number_bidx", "phone_enc", "phone_bidx", "gender", "birth_date", "ethnicity",
                 "education", "political_status", "household_type", "migrant_worker", "employer",
                 "job", "joined_on", "roster_digest", "changed")


# --- the import's report ---------------------------------------------------------------------
async def create_import(conn: asyncpg.Connection, *, cadre_id: int, org_id: int, filename: str,
                        file_sha256: bytes) -> int:
    return await conn.fetchval(
        """INSERT INTO roster_imports (cadre_id, org_id, filename, file_sha256)
           VALUES ($1, $2, $3, $4) RETURNING id""", cadre_id, org_id, filename, file_sha256)


# An import's report, without its row errors (up to 1000 of them: only get_import reads them).
_IMPORT = """i.id, i.cadre_id, c.username AS cadre, i.org_id, o.path::text AS org_path, i.filename,
             i.file_sha256, i.status, i.total_rows, i.created_rows, i.updated_rows, i.unchanged_rows,
             i.error_rows, i.message, i.started_at, i.finished_at"""
_FROM = "roster_imports i JOIN orgs o ON o.id = i.org_id JOIN cadres c ON c.id = i.cadre_id"


async def get_import(conn: asyncpg.Connection, import_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_IMPORT}, i.errors FROM {_FROM} WHERE i.id = $1",  # noqa: S608
                               import_id)


async def list_imports(conn: asyncpg.Connection, org_path: str, limit: int) -> list[asyncpg.Record]:
    """The newest imports in a subtree, without their row errors."""
    return await conn.fetch(
        f"SELECT {_IMPORT} FROM {_FROM} WHERE o.path <@ $1::ltree ORDER BY i.id DESC LIMIT $2",  # noqa: S608
        org_path, limit)


async def record_progress(conn: asyncpg.Connection, import_id: int, counts: dict[str, int]) -> None:
    await conn.execute(
        """UPDATE roster_imports SET total_rows = $2, created_rows = $3, updated_rows = $4,
                  unchanged_rows = $5, error_rows = $6
           WHERE id = $1 AND status = 'running'""",
        import_id, counts["total"], counts["created"], counts["updated"], counts["unchanged"],
        counts["error"])


async def finish_import(conn: asyncpg.Connection, import_id: int, *, status: str, counts: dict[str, int],
                        errors: list[dict], message: str | None) -> bool:
    """Close the report; false when it was no longer running (the stale sweep got there first)."""
    return await conn.fetchval(
        """UPDATE roster_imports SET status = $2, total_rows = $3, created_rows = $4,
                  updated_rows = $5, unchanged_rows = $6, error_rows = $7, errors = $8, message = $9,
                  finished_at = now()
           WHERE id = $1 AND status = 'running'
           RETURNING true""",
        import_id, status, counts["total"], counts["created"], counts["updated"], counts["unchanged"],
        counts["error"], errors, message) or False


async def hold_import(conn: asyncpg.Connection, import_id: int) -> bool:
    """Take the import's liveness lock for this transaction; true if the import still runs."""
    return await conn.fetchval(
        """SELECT pg_try_advisory_xact_lock($1, $2::int) AND status = 'running'
           FROM roster_imports WHERE id = $2""", IMPORT_LOCK, import_id) or False


async def fail_abandoned(conn: asyncpg.Connection, older_than_minutes: int,
                         message: str) -> list[asyncpg.Record]:
    """Fail imports left running by a process that is gone (their advisory lock is free)."""
    return await conn.fetch(
        """UPDATE roster_imports SET status = 'failed', message = $2, finished_at = now()
           WHERE id IN (SELECT id FROM roster_imports
                        WHERE status = 'running'
                          AND started_at < now() - make_interval(mins => $1)
                          AND pg_try_advisory_xact_lock($3, id::int))
           RETURNING id, cadre_id, org_id, filename, file_sha256""",
        older_than_minutes, message, IMPORT_LOCK)


# --- staging and applying one batch ----------------------------------------------------------
async def open_staging(conn: asyncpg.Connection) -> None:
    """Temporary tables of this transaction: the ID numbers seen so far in the file (so a
    repeat is found without holding the file's numbers in memory) and the batch being applied.

    The members table can grow from nothing to 100,000 rows inside this one transaction: a
    generic plan of a cached prepared statement, made while it was small, would go on
    scanning it whole for every batch. Custom plans see its current size."""
    await conn.execute(
        """SET LOCAL plan_cache_mode = force_custom_plan;
           CREATE TEMP TABLE roster_seen (bidx bytea PRIMARY KEY, row_no integer NOT NULL)
               ON COMMIT DROP;
           CREATE TEMP TABLE roster_stage (
               op char(1) NOT NULL, row_no integer NOT NULL, member_id bigint, org_id bigint NOT NULL,
               member_no text, name text NOT NULL, id_number_enc bytea, id_number_bidx bytea NOT NULL,
               phone_enc bytea, phone_bidx bytea, gender smallint, birth_date date, ethnicity text,
               education text, political_status text, household_type text,
               migrant_worker boolean NOT NULL, employer text, job text, joined_on date NOT NULL,
               roster_digest bytea NOT NULL, changed text[]
           ) ON COMMIT DROP""")


async def members_by_bidx(conn: asyncpg.Connection, bidxs: Sequence[bytes]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, id_number_bidx, org_id, member_no, name, phone_enc, phone_bidx, ethnicity,
                  education, political_status, household_type, migrant_worker, employer, job,
                  joined_on, roster_digest
           FROM members WHERE id_number_bidx = ANY($1::bytea[])""", list(bidxs))


async def member_no_owners(conn: asyncpg.Connection, numbers: Sequence[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT member_no, id_number_bidx FROM members WHERE member_no = ANY($1::text[])", list(numbers))


async def seen_rows(conn: asyncpg.Connection, bidxs: Sequence[bytes]) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT bidx, row_no FROM roster_seen WHERE bidx = ANY($1::bytea[])",
                            list(bidxs))


async def mark_seen(conn: asyncpg.Connection, rows: Iterable[tuple[bytes, int]]) -> None:
    await conn.copy_records_to_table("roster_seen", records=rows, columns=("bidx", "row_no"))


async def stage(conn: asyncpg.Connection, records: Sequence[tuple]) -> None:
    await conn.execute("TRUNCATE roster_stage")
    if records:
        await conn.copy_records_to_table("roster_stage", records=records, columns=STAGE_COLUMNS)


async def apply_creates(conn: asyncpg.Connection, import_id: int, actor: str, today: date) -> set[bytes]:
    """Insert the staged new members with their change-log rows; the ID-number indexes of
    those inserted (a row taken meanwhile by another transaction is left out). New member numbers
    carry the year of ``today``, a China date."""
    rows = await conn.fetch(
        """WITH created AS (
               INSERT INTO members (org_id, member_no, name, id_number_enc, id_number_bidx, phone_enc,
                                    phone_bidx, gender, birth_date, ethnicity, education,
                                    political_status, household_type, migrant_worker, employer, job,
                                    source, joined_on, roster_digest)
               SELECT org_id, coalesce(member_no, next_member_no($3)), name, id_number_enc,
                      id_number_bidx, phone_enc, phone_bidx, gender, birth_date, ethnicity, education,
                      political_status, household_type, migrant_worker, employer, job, 'roster',
                      joined_on, roster_digest
               FROM roster_stage WHERE op = 'c' ORDER BY row_no
               ON CONFLICT DO NOTHING
               RETURNING id, org_id, member_no, id_number_bidx
           ), logged AS (
               INSERT INTO base_data_changes (entity, entity_id, action, data, actor)
               SELECT 'member', c.id::text, 'created',
                      jsonb_build_object('member_no', c.member_no, 'org_id', c.org_id, 'org_code', o.code,
                                         'source', 'roster', 'import_id', $1::bigint),
                      $2
               FROM created c JOIN orgs o ON o.id = c.org_id
           )
           SELECT id_number_bidx FROM created""", import_id, actor, today)
    return {r["id_number_bidx"] for r in rows}


async def apply_updates(conn: asyncpg.Connection, import_id: int, actor: str) -> set[int]:
    """Update the staged changed members (never their account link or certification) with their
    change-log rows; the ids updated. A row whose data were equal and only its digest stale
    (``changed`` empty) refreshes the digest and logs nothing. A member moved meanwhile, or a
    member number taken meanwhile, is left out."""
    rows = await conn.fetch(
        """WITH updated AS (
               UPDATE members m
               SET member_no = s.member_no, name = s.name, phone_enc = s.phone_enc,
                   phone_bidx = s.phone_bidx, ethnicity = s.ethnicity, education = s.education,
                   political_status = s.political_status, household_type = s.household_type,
                   migrant_worker = s.migrant_worker, employer = s.employer, job = s.job,
                   joined_on = s.joined_on, roster_digest = s.roster_digest,
                   updated_at = CASE WHEN cardinality(s.changed) > 0 THEN now() ELSE m.updated_at END
               FROM roster_stage s
               WHERE s.op = 'u' AND m.id = s.member_id AND m.org_id = s.org_id
                 AND NOT EXISTS (SELECT 1 FROM members x WHERE x.member_no = s.member_no AND x.id <> m.id)
               RETURNING m.id, m.org_id, m.member_no, s.changed
           ), logged AS (
               INSERT INTO base_data_changes (entity, entity_id, action, data, actor)
               SELECT 'member', u.id::text, 'updated',
                      jsonb_build_object('member_no', u.member_no, 'org_id', u.org_id, 'org_code', o.code,
                                         'fields', to_jsonb(u.changed), 'source', 'roster',
                                         'import_id', $1::bigint),
                      $2
               FROM updated u JOIN orgs o ON o.id = u.org_id
               WHERE cardinality(u.changed) > 0
           )
           SELECT id FROM updated""", import_id, actor)
    return {r["id"] for r in rows}


# --- export ----------------------------------------------------------------------------------
async def count_roster(conn: asyncpg.Connection, org_path: str) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM members m JOIN orgs o ON o.id = m.org_id
           WHERE o.path <@ $1::ltree AND m.status <> 'withdrawn'""", org_path)


async def iter_roster(conn: asyncpg.Connection, org_path: str,
                      chunk: int) -> AsyncIterator[list[asyncpg.Record]]:
    """The members of a subtree (not those who left), in chunks from a server-side cursor.
    Call inside a transaction."""
    cursor = await conn.cursor(
        """SELECT o.code AS org_code, m.name, m.id_number_enc, m.phone_enc, m.ethnicity, m.education,
                  m.political_status, m.household_type, m.migrant_worker, m.employer, m.job,
                  m.joined_on, m.member_no
           FROM members m JOIN orgs o ON o.id = m.org_id
           WHERE o.path <@ $1::ltree AND m.status <> 'withdrawn'
           ORDER BY m.org_id, m.id""", org_path)
    while rows := await cursor.fetch(chunk):
        yield rows
