"""SQL for ``appeals`` and ``appeal_files`` (rules in :mod:`wxbackend.services.casework.appeals`)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_VIEW = """a.*, i.title, i.status, i.outcome, i.org_id, o.name AS org_name, i.opened_at, i.due_at,
    i.due_provisional, i.version"""


async def account(conn: asyncpg.Connection, account_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, phone_enc FROM accounts WHERE id = $1 AND status = 'active'", account_id)


async def union(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    """A union an appeal may be filed with (not the holder of unaffiliated industries' targets)."""
    return await conn.fetchrow(
        "SELECT id, name FROM orgs WHERE id = $1 AND kind <> 'industry_holder'", org_id)


async def filed_since(conn: asyncpg.Connection, account_id: int, since: datetime) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM appeals a JOIN work_items i ON i.id = a.item_id
           WHERE a.account_id = $1 AND i.opened_at >= $2""", account_id, since)


async def insert(conn: asyncpg.Connection, *, item_id: int, account_id: int, category: str,
                 anonymous: bool, description: bytes | None, employer: bytes | None,
                 contact: bytes | None, phone: bytes | None) -> None:
    await conn.execute(
        """INSERT INTO appeals (item_id, account_id, category, anonymous, description_enc,
               employer_enc, contact_enc, phone_enc)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        item_id, account_id, category, anonymous, description, employer, contact, phone)


async def get(conn: asyncpg.Connection, item_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {_VIEW} FROM appeals a JOIN work_items i ON i.id = a.item_id
            JOIN orgs o ON o.id = i.org_id WHERE a.item_id = $1""", item_id)  # noqa: S608


async def of_account(conn: asyncpg.Connection, account_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_VIEW} FROM appeals a JOIN work_items i ON i.id = a.item_id
            JOIN orgs o ON o.id = i.org_id WHERE a.account_id = $1
            ORDER BY a.item_id DESC""", account_id)  # noqa: S608


async def worker_events(conn: asyncpg.Connection, item_id: int, kinds: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT kind, at, opinion, detail FROM work_events
           WHERE item_id = $1 AND kind = ANY($2::text[]) ORDER BY id""", item_id, kinds)


async def accepted(conn: asyncpg.Connection, item_id: int, at: datetime) -> None:
    await conn.execute("UPDATE appeals SET accepted_at = $2 WHERE item_id = $1", item_id, at)


async def replied(conn: asyncpg.Connection, item_id: int, column: str, sealed: bytes | None,
                  at: datetime) -> None:
    if column == "reply":
        await conn.execute(
            """UPDATE appeals SET reply_enc = $2, replied_at = $3, replies = replies + 1
               WHERE item_id = $1""", item_id, sealed, at)
    else:
        await conn.execute(
            """UPDATE appeals SET review_reply_enc = $2, review_replied_at = $3, replies = replies + 1
               WHERE item_id = $1""", item_id, sealed, at)


async def rated(conn: asyncpg.Connection, item_id: int, rating: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE appeals SET rating = $2, rated_at = $3, ratings = ratings + 1 WHERE item_id = $1",
        item_id, rating, at)


async def mark_reopened(conn: asyncpg.Connection, item_id: int) -> None:
    await conn.execute("UPDATE appeals SET reopened = true WHERE item_id = $1", item_id)


async def review_requested(conn: asyncpg.Connection, item_id: int, at: datetime) -> None:
    await conn.execute("UPDATE appeals SET review_requested_at = $2 WHERE item_id = $1", item_id, at)


async def revisited(conn: asyncpg.Connection, item_id: int, note: bytes | None, at: datetime) -> None:
    await conn.execute(
        "UPDATE appeals SET revisited_at = $2, revisit_note_enc = $3 WHERE item_id = $1",
        item_id, at, note)


# --- files ------------------------------------------------------------------------------------
async def insert_file(conn: asyncpg.Connection, account_id: int, kind: str, filename: str,
                      content_type: str, size: int, sealed: bytes, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO appeal_files (account_id, kind, filename, content_type, size, data_enc, uploaded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        account_id, kind, filename, content_type, size, sealed, now)


async def unfiled_count(conn: asyncpg.Connection, account_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM appeal_files WHERE account_id = $1 AND item_id IS NULL", account_id)


async def unfiled_files(conn: asyncpg.Connection, account_id: int, ids: list[int]) -> list[int]:
    return [r["id"] for r in await conn.fetch(
        """SELECT id FROM appeal_files WHERE id = ANY($2::bigint[]) AND account_id = $1
             AND item_id IS NULL FOR UPDATE""", account_id, ids)]


async def attach_files(conn: asyncpg.Connection, item_id: int, ids: list[int]) -> None:
    await conn.execute("UPDATE appeal_files SET item_id = $1 WHERE id = ANY($2::bigint[])", item_id, ids)


async def file(conn: asyncpg.Connection, file_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM appeal_files WHERE id = $1", file_id)


async def files_of(conn: asyncpg.Connection, item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, kind, filename, content_type, size FROM appeal_files WHERE item_id = $1 ORDER BY id",
        item_id)


async def drop_unfiled(conn: asyncpg.Connection, before: datetime) -> int:
    """Files uploaded for an appeal that was never filed."""
    status = await conn.execute(
        "DELETE FROM appeal_files WHERE item_id IS NULL AND uploaded_at < $1", before)
    return int(status.split()[-1])


async def erase_account(conn: asyncpg.Connection, account_id: int, now: datetime) -> None:
    """Cancellation: the person's words, contact, phone, files and the replies about them go;
    the rest stays, unlinked."""
    await conn.execute(
        """DELETE FROM appeal_files WHERE account_id = $1
              OR item_id IN (SELECT item_id FROM appeals WHERE account_id = $1)""", account_id)
    await conn.execute(
        """UPDATE appeals SET description_enc = NULL, employer_enc = NULL, contact_enc = NULL,
               phone_enc = NULL, reply_enc = NULL, review_reply_enc = NULL,
               revisit_note_enc = NULL, erased_at = $2, account_id = NULL
           WHERE account_id = $1""", account_id, now)
