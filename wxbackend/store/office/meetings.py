"""SQL for meetings: rooms and bookings, meetings, invitees and their sign-ins, files, action items."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg


# --- rooms and bookings -------------------------------------------------------------------------
async def insert_room(conn: asyncpg.Connection, *, org_id: int, name: str, capacity: int, place: str,
                      created_by: int, now: datetime) -> int | None:
    """The new room's id; None when the union already has a room of that name."""
    return await conn.fetchval(
        """INSERT INTO meeting_rooms (org_id, name, capacity, place, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, name) DO NOTHING RETURNING id""",
        org_id, name, capacity, place, created_by, now)


async def rooms_in(conn: asyncpg.Connection, subtree: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT r.id, r.org_id, o.name AS org_name, r.name, r.capacity, r.place
           FROM meeting_rooms r JOIN orgs o ON o.id = r.org_id
           WHERE o.path <@ $1::ltree ORDER BY nlevel(o.path), o.name, r.name""", subtree)


async def room(conn: asyncpg.Connection, room_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT r.id, r.org_id, r.name, r.capacity, r.place, o.path::text AS org_path
           FROM meeting_rooms r JOIN orgs o ON o.id = r.org_id WHERE r.id = $1""", room_id)


async def insert_booking(conn: asyncpg.Connection, room_id: int, meeting_id: int, starts: datetime,
                         ends: datetime, now: datetime) -> int | None:
    """The booking's id; None when it overlaps a booking held for the room (the exclusion
    constraint decides, also against a booking another transaction is committing right now:
    this insert waits for it). Runs in a savepoint, so the caller's transaction stays usable."""
    try:
        async with conn.transaction():
            return await conn.fetchval(
                """INSERT INTO meeting_bookings (room_id, meeting_id, during, created_at)
                   VALUES ($1, $2, tstzrange($3, $4, '[)'), $5) RETURNING id""",
                room_id, meeting_id, starts, ends, now)
    except asyncpg.ExclusionViolationError:
        return None


async def clash(conn: asyncpg.Connection, room_id: int, starts: datetime,
                ends: datetime) -> asyncpg.Record | None:
    """The held booking of the room that overlaps [starts, ends), with its meeting."""
    return await conn.fetchrow(
        """SELECT m.id, m.title, lower(b.during) AS starts_at, upper(b.during) AS ends_at
           FROM meeting_bookings b JOIN meetings m ON m.id = b.meeting_id
           WHERE b.room_id = $1 AND b.held AND b.during && tstzrange($2, $3, '[)')
           ORDER BY lower(b.during) LIMIT 1""", room_id, starts, ends)


async def release_bookings(conn: asyncpg.Connection, meeting_id: int) -> None:
    await conn.execute("UPDATE meeting_bookings SET held = false WHERE meeting_id = $1 AND held",
                       meeting_id)


async def bookings_in(conn: asyncpg.Connection, subtree: str, start: datetime,
                      end: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT b.id, b.room_id, r.name AS room_name, o.name AS org_name, m.id AS meeting_id,
                  m.title, lower(b.during) AS starts_at, upper(b.during) AS ends_at,
                  c.display_name AS organiser
           FROM meeting_bookings b JOIN meeting_rooms r ON r.id = b.room_id
           JOIN orgs o ON o.id = r.org_id JOIN meetings m ON m.id = b.meeting_id
           JOIN cadres c ON c.id = m.organiser_id
           WHERE b.held AND o.path <@ $1::ltree AND b.during && tstzrange($2, $3, '[)')
           ORDER BY lower(b.during), r.name LIMIT 1000""", subtree, start, end)


# --- meetings -----------------------------------------------------------------------------------
_COLUMNS = """m.*, o.name AS org_name, o.path::text AS org_path, r.name AS room_name,
                     c.display_name AS organiser, i.version AS item_version,
                     i.status AS item_status, i.due_at"""
_FROM = """FROM meetings m JOIN orgs o ON o.id = m.org_id
              JOIN cadres c ON c.id = m.organiser_id
              LEFT JOIN meeting_rooms r ON r.id = m.room_id
              LEFT JOIN work_items i ON i.id = m.item_id"""
_MEETING = f"SELECT {_COLUMNS} {_FROM}"


async def insert_meeting(conn: asyncpg.Connection, *, kind: str, org_id: int, title: str,
                         agenda: str | None, starts_at: datetime, ends_at: datetime,
                         room_id: int | None, place: str, organiser_id: int, caller: str | None,
                         now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO meetings (kind, org_id, title, agenda, starts_at, ends_at, room_id, place,
                                 organiser_id, caller, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id""",
        kind, org_id, title, agenda, starts_at, ends_at, room_id, place, organiser_id, caller, now)


async def set_item(conn: asyncpg.Connection, meeting_id: int, item_id: int) -> None:
    await conn.execute("UPDATE meetings SET item_id = $2 WHERE id = $1", meeting_id, item_id)


async def meeting(conn: asyncpg.Connection, meeting_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"{_MEETING} WHERE m.id = $1", meeting_id)


async def meetings_in(conn: asyncpg.Connection, subtree: str, kind: str, start: datetime,
                      end: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_COLUMNS},
                   (SELECT count(*) FROM meeting_invitees v WHERE v.meeting_id = m.id) AS invited,
                   (SELECT count(*) FROM meeting_invitees v
                     WHERE v.meeting_id = m.id AND v.signed_in_at IS NOT NULL) AS present
            {_FROM} WHERE o.path <@ $1::ltree AND m.kind = $2
            AND m.starts_at < $4 AND m.ends_at > $3
            ORDER BY m.starts_at, m.id LIMIT 500""", subtree, kind, start, end)  # noqa: S608


async def invitations_of(conn: asyncpg.Connection, cadre_id: int, since: datetime) -> list[asyncpg.Record]:
    """The meetings a cadre is expected at that end after ``since``, with their answer."""
    return await conn.fetch(
        f"""SELECT {_COLUMNS}, v.answer, v.leave_status, v.signed_in_at, v.substitute_for
            {_FROM} JOIN meeting_invitees v ON v.meeting_id = m.id AND v.cadre_id = $1
            WHERE m.ends_at > $2 AND m.status <> 'cancelled'
            ORDER BY m.starts_at LIMIT 200""", cadre_id, since)


async def set_status(conn: asyncpg.Connection, meeting_id: int, status: str) -> None:
    await conn.execute("UPDATE meetings SET status = $2 WHERE id = $1", meeting_id, status)


async def file_minutes(conn: asyncpg.Connection, meeting_id: int, minutes: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE meetings SET minutes = $2, minutes_at = $3, status = 'closed' WHERE id = $1",
        meeting_id, minutes, now)


async def record_external(conn: asyncpg.Connection, meeting_id: int, fields: dict) -> None:
    """An external meeting's step: the leader's instruction, the reply or the relay."""
    allowed = {"leader", "instruction", "reply", "relay", "relayed_to"}
    if not set(fields) <= allowed:
        raise ValueError(f"not an external meeting's field: {set(fields) - allowed}")
    assignments = ", ".join(f"{name} = ${n}" for n, name in enumerate(fields, 2))
    await conn.execute(f"UPDATE meetings SET {assignments} WHERE id = $1",  # noqa: S608
                       meeting_id, *fields.values())


# --- invitees -----------------------------------------------------------------------------------
async def cadres(conn: asyncpg.Connection, cadre_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT c.id, c.display_name, c.status, c.org_id, o.path::text AS org_path
           FROM cadres c JOIN orgs o ON o.id = c.org_id WHERE c.id = ANY($1::bigint[])""", cadre_ids)


async def add_invitees(conn: asyncpg.Connection, meeting_id: int, cadre_ids: list[int], now: datetime, *,
                       answer: str = "pending", substitute_for: int | None = None) -> list[int]:
    """The cadres newly added (those already on the list stay as they are)."""
    rows = await conn.fetch(
        """INSERT INTO meeting_invitees (meeting_id, cadre_id, answer, substitute_for, invited_at)
           SELECT $1, c, $3, $4, $5 FROM unnest($2::bigint[]) AS c
           ON CONFLICT (meeting_id, cadre_id) DO NOTHING RETURNING cadre_id""",
        meeting_id, cadre_ids, answer, substitute_for, now)
    return [r["cadre_id"] for r in rows]


async def invitees(conn: asyncpg.Connection, meeting_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT v.*, c.display_name AS name, o.name AS org_name, s.display_name AS substitute_name,
                  f.display_name AS substitute_for_name, h.display_name AS signed_by_name
           FROM meeting_invitees v JOIN cadres c ON c.id = v.cadre_id JOIN orgs o ON o.id = c.org_id
           LEFT JOIN cadres s ON s.id = v.substitute_id
           LEFT JOIN cadres f ON f.id = v.substitute_for
           LEFT JOIN cadres h ON h.id = v.signed_by
           WHERE v.meeting_id = $1 ORDER BY v.invited_at, c.display_name""", meeting_id)


async def invitee(conn: asyncpg.Connection, meeting_id: int, cadre_id: int, *,
                  lock: bool = False) -> asyncpg.Record | None:
    lock_clause = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(
        f"SELECT * FROM meeting_invitees WHERE meeting_id = $1 AND cadre_id = $2{lock_clause}",  # noqa: S608
        meeting_id, cadre_id)


async def answer(conn: asyncpg.Connection, meeting_id: int, cadre_id: int, *, answer: str,
                 reason: str | None, substitute_id: int | None, now: datetime) -> None:
    await conn.execute(
        """UPDATE meeting_invitees SET answer = $3, leave_reason = $4, substitute_id = $5,
                  leave_status = CASE WHEN $3 = 'leave' THEN 'pending' END, leave_decided_by = NULL,
                  answered_at = $6
           WHERE meeting_id = $1 AND cadre_id = $2""",
        meeting_id, cadre_id, answer, reason, substitute_id, now)


async def decide_leave(conn: asyncpg.Connection, meeting_id: int, cadre_id: int, status: str,
                       decided_by: int) -> None:
    await conn.execute(
        """UPDATE meeting_invitees SET leave_status = $3, leave_decided_by = $4
           WHERE meeting_id = $1 AND cadre_id = $2""", meeting_id, cadre_id, status, decided_by)


async def sign_in(conn: asyncpg.Connection, meeting_id: int, cadre_id: int, now: datetime,
                  starts_at: datetime, signed_by: int | None) -> asyncpg.Record | None:
    """Record the sign-in once: None when the cadre is not on the list or signed in already
    (one conditional statement, so of two scans at once exactly one records it)."""
    return await conn.fetchrow(
        """UPDATE meeting_invitees SET signed_in_at = $3, late = $3::timestamptz > $4, signed_by = $5
           WHERE meeting_id = $1 AND cadre_id = $2 AND signed_in_at IS NULL
           RETURNING signed_in_at, late""", meeting_id, cadre_id, now, starts_at, signed_by)


async def bound(conn: asyncpg.Connection, cadre_ids: list[int]) -> list[asyncpg.Record]:
    """The active cadres among ``cadre_ids`` who bound their WeChat (reminders reach them)."""
    return await conn.fetch(
        """SELECT w.cadre_id, w.oa_openid FROM cadre_wechat w
           JOIN cadres c ON c.id = w.cadre_id AND c.status = 'active'
           WHERE w.cadre_id = ANY($1::bigint[])""", cadre_ids)


async def cadre_by_openid(conn: asyncpg.Connection, openid: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT c.id, c.display_name FROM cadre_wechat w JOIN cadres c ON c.id = w.cadre_id
           WHERE w.oa_openid = $1 AND c.status = 'active'""", openid)


async def withdraw_reminders(conn: asyncpg.Connection, keys: list[str]) -> None:
    """Reminders queued for later that no longer apply (a cancelled meeting, an approved leave)."""
    await conn.execute(
        """UPDATE outbox SET status = 'failed', last_error = 'withdrawn'
           WHERE idempotency_key = ANY($1::text[]) AND status = 'pending'""", keys)


# --- files --------------------------------------------------------------------------------------
async def insert_file(conn: asyncpg.Connection, *, org_id: int, filename: str, content_type: str,
                      data: bytes, uploaded_by: int, now: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO meeting_files (org_id, filename, content_type, size, data, uploaded_by,
                                      uploaded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, filename, content_type, size""",
        org_id, filename, content_type, len(data), data, uploaded_by, now)


async def files_meta(conn: asyncpg.Connection, file_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT f.id, f.meeting_id, f.filename, f.content_type, f.size, o.path::text AS org_path
           FROM meeting_files f JOIN orgs o ON o.id = f.org_id WHERE f.id = ANY($1::bigint[])""",
        file_ids)


async def attach_files(conn: asyncpg.Connection, meeting_id: int, file_ids: list[int]) -> None:
    await conn.execute("UPDATE meeting_files SET meeting_id = $1 WHERE id = ANY($2::bigint[])",
                       meeting_id, file_ids)


async def files_of(conn: asyncpg.Connection, meeting_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, filename, content_type, size FROM meeting_files WHERE meeting_id = $1 ORDER BY id",
        meeting_id)


async def file(conn: asyncpg.Connection, file_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT f.*, o.path::text AS org_path FROM meeting_files f JOIN orgs o ON o.id = f.org_id
           WHERE f.id = $1""", file_id)


# --- action items -------------------------------------------------------------------------------
async def insert_action(conn: asyncpg.Connection, *, meeting_id: int, what: str, org_id: int,
                        cadre_id: int | None, deadline: date, item_id: int, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO meeting_actions (meeting_id, what, org_id, cadre_id, deadline, item_id, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        meeting_id, what, org_id, cadre_id, deadline, item_id, now)


async def actions_of(conn: asyncpg.Connection, meeting_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT a.id, a.what, a.org_id, o.name AS org_name, a.cadre_id, c.display_name AS cadre_name,
                  a.deadline, a.item_id, i.status AS item_status, i.closed_at, i.due_at
           FROM meeting_actions a JOIN orgs o ON o.id = a.org_id
           LEFT JOIN cadres c ON c.id = a.cadre_id JOIN work_items i ON i.id = a.item_id
           WHERE a.meeting_id = $1 ORDER BY a.id""", meeting_id)

