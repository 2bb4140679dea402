"""SQL for member records and the applications workers file (rules in
:mod:`wxbackend.services.membership.membership`)."""

from __future__ import annotations

from datetime import date

import asyncpg


# --- unions a worker can find ----------------------------------------------------------------
async def search_unions(conn: asyncpg.Connection, *, text: str | None, region_code: str | None,
                        credit_code: str | None, limit: int) -> list[asyncpg.Record]:
    """Grassroots unions open to members, by name or employer (trigram match), region, or the
    employer's credit code."""
    return await conn.fetch(
        """SELECT o.id, o.name, o.employer_name, o.region_code, r.name AS region_name,
                  p.name AS parent_name
           FROM orgs o JOIN orgs p ON p.id = o.parent_id
           LEFT JOIN regions r ON r.code = o.region_code
           WHERE o.kind = 'grassroots' AND o.accepts_members
             AND ($1::text IS NULL OR o.name ILIKE '%' || $1 || '%' ESCAPE '!'
                  OR o.employer_name ILIKE '%' || $1 || '%' ESCAPE '!')
             AND ($2::text IS NULL OR o.region_code = $2 OR o.region_code IN
                    (SELECT code FROM regions WHERE city_code = $2))
             AND ($3::text IS NULL OR o.credit_code = $3)
           ORDER BY o.name LIMIT $4""",
        text, region_code, credit_code, limit)


async def upper_unions(conn: asyncpg.Connection, region_code: str) -> list[asyncpg.Record]:
    """Who may approve a new union in ``region_code``: the union of its county (when there is
    one), of its city, and the provincial industry unions."""
    return await conn.fetch(
        """SELECT o.id, o.name, o.kind FROM orgs o, regions r
           WHERE r.code = $1
             AND (o.kind IN ('industry', 'industry_holder')
                  OR (o.kind IN ('city', 'county') AND o.division_code IN (r.code, r.city_code)))
           ORDER BY CASE o.kind WHEN 'county' THEN 0 WHEN 'city' THEN 1 ELSE 2 END, o.code""",
        region_code)


# --- members ---------------------------------------------------------------------------------
async def member_by_id_number(conn: asyncpg.Connection, bidx: bytes, *,
                              lock: bool = False) -> asyncpg.Record | None:
    """``lock``: hold the record (not its union) until the transaction ends."""
    if lock:
        await conn.execute("SELECT 1 FROM members WHERE id_number_bidx = $1 FOR UPDATE", bidx)
    return await conn.fetchrow("SELECT * FROM member_rows WHERE id_number_bidx = $1", bidx)


async def certify_lookup(conn: asyncpg.Connection, bidx: bytes,
                         account_id: int) -> tuple[asyncpg.Record | None, bool]:
    """The record of an ID number, and whether ``account_id`` already holds a record: one round
    trip."""
    row = await conn.fetchrow(
        """SELECT m.*, EXISTS (SELECT 1 FROM members WHERE account_id = $2) AS account_holds_one
           FROM (SELECT 1) AS one LEFT JOIN member_rows m ON m.id_number_bidx = $1""",
        bidx, account_id)
    return (row if row["id"] is not None else None), row["account_holds_one"]


async def record_certification_miss(conn: asyncpg.Connection, *, account_id: int,
                                    member_id: int | None, org_id: int | None, reason: str) -> None:
    await conn.execute(
        "INSERT INTO certification_misses (account_id, member_id, org_id, reason) VALUES ($1, $2, $3, $4)",
        account_id, member_id, org_id, reason)


async def member_of_account(conn: asyncpg.Connection, account_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM member_rows WHERE account_id = $1", account_id)


async def member(conn: asyncpg.Connection, member_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM member_rows WHERE id = $1", member_id)


async def create_member(conn: asyncpg.Connection, *, org_id: int, name: str, id_number_enc: bytes,
                        id_number_bidx: bytes, phone_enc: bytes | None, phone_bidx: bytes | None,
                        gender: int, birth_date, form: dict, source: str,
                        account_id: int | None, joined_on: date) -> asyncpg.Record:
    """A new member record, joined (and numbered in the year of) ``joined_on``, a China date."""
    return await conn.fetchrow(
        """INSERT INTO members (org_id, member_no, name, id_number_enc, id_number_bidx, phone_enc,
                                phone_bidx, gender, birth_date, ethnicity, education,
                                political_status, household_type, migrant_worker, employer, job,
                                source, joined_on, account_id, certified_at)
           VALUES ($1, next_member_no($18), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                   $15, $16, $18, $17, CASE WHEN $17::bigint IS NULL THEN NULL ELSE now() END)
           RETURNING id, member_no""",
        org_id, name, id_number_enc, id_number_bidx, phone_enc, phone_bidx, gender, birth_date,
        form.get("ethnicity"), form.get("education"), form.get("political_status"),
        form.get("household_type"), bool(form.get("migrant_worker")), form.get("employer"),
        form.get("job"), source, account_id, joined_on)


async def certify(conn: asyncpg.Connection, member_id: int, account_id: int) -> asyncpg.Record | None:
    """Link a roster record to the account that proved it, and log the change, in one atomic
    statement; None when another account took the record first. Raises UniqueViolationError
    when this account holds another record."""
    return await conn.fetchrow(
        """WITH linked AS (
               UPDATE members SET account_id = $2, certified_at = now(), updated_at = now()
               WHERE id = $1 AND account_id IS NULL RETURNING id, member_no, certified_at)
           INSERT INTO base_data_changes (entity, entity_id, action, data, actor)
           SELECT 'member', id::text, 'certified', jsonb_build_object('member_no', member_no), 'self'
           FROM linked
           RETURNING entity_id""",
        member_id, account_id)


async def link_account(conn: asyncpg.Connection, member_id: int, account_id: int,
                       name: str | None = None) -> None:
    await conn.execute(
        """UPDATE members SET account_id = $2, certified_at = now(), name = coalesce($3, name),
                              updated_at = now()
           WHERE id = $1""", member_id, account_id, name)


async def move_member(conn: asyncpg.Connection, member_id: int, org_id: int) -> None:
    await conn.execute("UPDATE members SET org_id = $2, updated_at = now() WHERE id = $1",
                       member_id, org_id)


async def list_members(conn: asyncpg.Connection, *, subtree: str, org_id: int | None, name: str | None,
                       before: int | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM member_rows
           WHERE org_ltree <@ $1::ltree AND ($2::bigint IS NULL OR org_id = $2)
             AND ($3::text IS NULL OR name = $3) AND ($4::bigint IS NULL OR id < $4)
           ORDER BY id DESC LIMIT $5""",
        subtree, org_id, name, before, limit)


# --- applications ----------------------------------------------------------------------------
async def create_application(conn: asyncpg.Connection, *, kind: str, account_id: int, org_id: int,
                             from_org_id: int | None, member_id: int | None, name: str,
                             id_number_enc: bytes | None, id_number_bidx: bytes | None,
                             phone_enc: bytes | None, form: dict, review_days: int,
                             roster_check: str | None = None) -> int:
    """The new application's id; raises UniqueViolationError when one of the same kind is
    already pending for this worker (or, for a founding, for this employer)."""
    return await conn.fetchval(
        """INSERT INTO applications (kind, account_id, org_id, from_org_id, member_id, name,
                                     id_number_enc, id_number_bidx, phone_enc, form, due_at,
                                     roster_check)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(days => $11), $12)
           RETURNING id""",
        kind, account_id, org_id, from_org_id, member_id, name, id_number_enc, id_number_bidx,
        phone_enc, form, review_days, roster_check)


async def application(conn: asyncpg.Connection, application_id: int, *,
                      lock: bool = False) -> asyncpg.Record | None:
    if lock:
        await conn.execute("SELECT 1 FROM applications WHERE id = $1 FOR UPDATE", application_id)
    return await conn.fetchrow("SELECT * FROM application_rows WHERE id = $1", application_id)


async def applications_of(conn: asyncpg.Connection, account_id: int,
                          limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM application_rows WHERE account_id = $1
           ORDER BY created_at DESC, id DESC LIMIT $2""", account_id, limit)


async def pending_with_id_number(conn: asyncpg.Connection, bidx: bytes, kind: str,
                                 account_id: int) -> bool:
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM applications WHERE id_number_bidx = $1 AND kind = $2
                          AND status = 'pending' AND account_id <> $3)""", bidx, kind, account_id)


async def review_queue(conn: asyncpg.Connection, *, subtree: str, kind: str | None, status: str | None,
                       overdue: bool, before: int | None, limit: int) -> list[asyncpg.Record]:
    """Applications a cadre of ``subtree`` decides — or, for transfers, sees leaving its unions."""
    return await conn.fetch(
        """SELECT * FROM application_rows
           WHERE (org_ltree <@ $1::ltree OR from_org_ltree <@ $1::ltree)
             AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR status = $3)
             AND (NOT $4 OR overdue) AND ($5::bigint IS NULL OR id < $5)
           ORDER BY id DESC LIMIT $6""",
        subtree, kind, status, overdue, before, limit)


async def queue_counts(conn: asyncpg.Connection, subtree: str) -> asyncpg.Record:
    return await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE a.status = 'pending') AS pending,
                  count(*) FILTER (WHERE a.status = 'pending' AND a.due_at < now()) AS overdue,
                  count(*) FILTER (WHERE a.status <> 'pending' AND a.status <> 'withdrawn'
                                   AND a.reviewed_at <= a.due_at) AS decided_on_time,
                  count(*) FILTER (WHERE a.status <> 'pending' AND a.status <> 'withdrawn') AS decided
           FROM applications a JOIN orgs o ON o.id = a.org_id WHERE o.path <@ $1::ltree""", subtree)


async def withdraw(conn: asyncpg.Connection, application_id: int) -> None:
    await conn.execute("UPDATE applications SET status = 'withdrawn', updated_at = now() WHERE id = $1",
                       application_id)


async def decide(conn: asyncpg.Connection, application_id: int, *, status: str, reviewed_by: int | None,
                 reason: str | None, member_id: int | None = None,
                 result_org_id: int | None = None) -> None:
    await conn.execute(
        """UPDATE applications SET status = $2, reviewed_by = $3, reviewed_at = now(), reason = $4,
                                   member_id = coalesce($5, member_id),
                                   result_org_id = coalesce($6, result_org_id), updated_at = now()
           WHERE id = $1""",
        application_id, status, reviewed_by, reason, member_id, result_org_id)


async def union_exists_for(conn: asyncpg.Connection, credit_code: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM orgs WHERE credit_code = $1)", credit_code)
