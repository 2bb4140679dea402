"""SQL for the places and units workers claim (rules in
:mod:`wxbackend.services.activities.admission` and :mod:`wxbackend.services.activities.places`)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import asyncpg

# Statuses that count against a worker's caps (everything but a withdrawn or refused request).
COUNTING = ("entered", "pending", "waitlisted", "held", "confirmed", "used", "lapsed", "missed")
# Statuses that hold a unit of the stock ('missed': the place was kept and not used).
HOLDING = ("held", "confirmed", "used", "missed")
_CLAIM = """c.id, c.offering_id, c.account_id, c.status, c.china_day, c.ticket, c.hold_until,
    c.queued_at, c.used_at, c.created_at, c.updated_at"""


async def take(conn: asyncpg.Connection, *, offering_id: int, account_id: int, ticket: uuid.UUID,
               day: date, now: datetime, status: str) -> asyncpg.Record:
    """One call of ``take_place`` (migration 0011): ``outcome``, ``claim_id``, ``remaining``."""
    return await conn.fetchrow("SELECT * FROM take_place($1, $2, $3, $4, $5, $6)",
                               offering_id, account_id, ticket, day, now, status)


async def take_many(conn: asyncpg.Connection, *, offering_id: int, accounts: list[int],
                    tickets: list[uuid.UUID], day: date, now: datetime,
                    status: str) -> list[asyncpg.Record]:
    """One call of ``take_places`` (migration 0011): per ticket, in order, what take_place said."""
    return await conn.fetch("SELECT * FROM take_places($1, $2, $3, $4, $5, $6)",
                            offering_id, accounts, tickets, day, now, status)


async def existing_tickets(conn: asyncpg.Connection, offering_id: int,
                           tickets: list[uuid.UUID]) -> tuple[int, set[uuid.UUID]]:
    """In one snapshot: the item's units left in the record, and which of ``tickets`` made a row."""
    row = await conn.fetchrow(
        """SELECT o.stock - o.taken AS remaining,
                  ARRAY(SELECT c.ticket FROM offering_claims c
                        WHERE c.ticket = ANY($2::uuid[]) AND c.offering_id = o.id) AS found
           FROM offerings o WHERE o.id = $1""", offering_id, tickets)
    return row["remaining"], set(row["found"])


async def counts(conn: asyncpg.Connection, offering_id: int, day: date) -> dict:
    """What the admission gate in Redis is rebuilt from, in one snapshot: the units left, and
    per worker their claims on the item, on the item today, and in its campaign."""
    row = await conn.fetchrow(
        """SELECT o.stock - o.taken AS remaining, o.campaign_id,
             ARRAY(SELECT ARRAY[c.account_id, count(*)] FROM offering_claims c
                   WHERE c.offering_id = o.id AND c.status = ANY($3::text[])
                   GROUP BY c.account_id) AS item,
             ARRAY(SELECT ARRAY[c.account_id, count(*)] FROM offering_claims c
                   WHERE c.offering_id = o.id AND c.china_day = $2 AND c.status = ANY($3::text[])
                   GROUP BY c.account_id) AS today,
             ARRAY(SELECT ARRAY[c.account_id, count(*)] FROM offering_claims c
                   WHERE o.campaign_id IS NOT NULL AND c.campaign_id = o.campaign_id
                     AND c.status = ANY($3::text[])
                   GROUP BY c.account_id) AS campaign
           FROM offerings o WHERE o.id = $1""", offering_id, day, list(COUNTING))
    return {"remaining": row["remaining"], "campaign_id": row["campaign_id"],
            "item": dict(map(tuple, row["item"])), "today": dict(map(tuple, row["today"])),
            "campaign": dict(map(tuple, row["campaign"]))}


async def of_account(conn: asyncpg.Connection, account_id: int, *,
                     offering_id: int | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_CLAIM}, o.title, o.kind, o.mode, o.place, o.starts_at, o.ends_at,
                   o.cancel_until, g.name AS org_name
            FROM offering_claims c JOIN offerings o ON o.id = c.offering_id
            JOIN orgs g ON g.id = o.org_id
            WHERE c.account_id = $1 AND ($2::bigint IS NULL OR c.offering_id = $2)
            ORDER BY c.id DESC LIMIT 200""", account_id, offering_id)  # noqa: S608


async def get_for_update(conn: asyncpg.Connection, claim_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_CLAIM} FROM offering_claims c WHERE c.id = $1 FOR UPDATE",  # noqa: S608
                               claim_id)


async def set_status(conn: asyncpg.Connection, claim_id: int, status: str, now: datetime, *,
                     hold_until: datetime | None = None) -> None:
    await conn.execute(
        """UPDATE offering_claims SET status = $2, hold_until = $4, updated_at = $3,
                  queued_at = CASE WHEN $2 = 'waitlisted' THEN coalesce(queued_at, $3) ELSE queued_at END
           WHERE id = $1""", claim_id, status, now, hold_until)


async def give_back(conn: asyncpg.Connection, offering_id: int, units: int) -> None:
    await conn.execute("UPDATE offerings SET taken = taken - $2 WHERE id = $1", offering_id, units)


async def lapse_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Holds past their deadline become 'lapsed' and their units go back to the items' stock:
    (item, units) per item. Rows locked by a worker confirming right now are left for next time."""
    return await conn.fetch(
        """WITH due AS (
               SELECT id FROM offering_claims
               WHERE status = 'held' AND hold_until <= $1
               ORDER BY hold_until LIMIT $2 FOR UPDATE SKIP LOCKED),
           lapsed AS (
               UPDATE offering_claims c SET status = 'lapsed', hold_until = NULL, updated_at = $1
               FROM due WHERE c.id = due.id RETURNING c.offering_id),
           per_item AS (SELECT offering_id, count(*)::int AS units FROM lapsed GROUP BY offering_id)
           UPDATE offerings o SET taken = o.taken - p.units FROM per_item p
           WHERE o.id = p.offering_id RETURNING o.id AS offering_id, p.units, o.mode""",
        now, limit)


async def promote(conn: asyncpg.Connection, offering_id: int, places: int, hold_until: datetime,
                  now: datetime) -> list[asyncpg.Record]:
    """The first ``places`` on the item's waitlist move up to holds, taking units of the stock."""
    moved = await conn.fetch(
        """WITH next AS (
               SELECT id FROM offering_claims WHERE offering_id = $1 AND status = 'waitlisted'
               ORDER BY queued_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
           UPDATE offering_claims c SET status = 'held', hold_until = $3, updated_at = $4
           FROM next WHERE c.id = next.id RETURNING c.id, c.account_id""",
        offering_id, places, hold_until, now)
    if moved:
        await conn.execute("UPDATE offerings SET taken = taken + $2 WHERE id = $1", offering_id, len(moved))
    return moved


async def participants(conn: asyncpg.Connection, offering_id: int, *, status: str | None,
                       before_id: int | None, limit: int) -> list[asyncpg.Record]:
    """Who asked for an item, newest first, with what identifies them (sealed: the caller masks
    or opens it): the member record's name and union when linked, the account's phone."""
    return await conn.fetch(
        f"""SELECT {_CLAIM}, m.name, m.member_no, mo.name AS union_name, a.nickname,
                   a.phone_enc, c.used_by
            FROM offering_claims c JOIN accounts a ON a.id = c.account_id
            LEFT JOIN members m ON m.account_id = c.account_id
            LEFT JOIN orgs mo ON mo.id = m.org_id
            WHERE c.offering_id = $1 AND ($2::text IS NULL OR c.status = $2)
              AND ($3::bigint IS NULL OR c.id < $3)
            ORDER BY c.id DESC LIMIT $4""", offering_id, status, before_id, limit)  # noqa: S608


async def entries(conn: asyncpg.Connection, offering_id: int) -> list[int]:
    """The lottery entries still standing (withdrawn ones are out of the draw)."""
    return [r["id"] for r in await conn.fetch(
        "SELECT id FROM offering_claims WHERE offering_id = $1 AND status = 'entered' ORDER BY id",
        offering_id)]


async def settle_draw(conn: asyncpg.Connection, offering_id: int, winners: list[int],
                      hold_until: datetime, now: datetime) -> None:
    """Winners hold a place until ``hold_until``; every other entry has lost."""
    await conn.execute(
        """UPDATE offering_claims
           SET status = CASE WHEN id = ANY($2::bigint[]) THEN 'held' ELSE 'lost' END,
               hold_until = CASE WHEN id = ANY($2::bigint[]) THEN $3::timestamptz END,
               updated_at = $4
           WHERE offering_id = $1 AND status = 'entered'""", offering_id, winners, hold_until, now)
    await conn.execute("UPDATE offerings SET taken = taken + $2 WHERE id = $1", offering_id, len(winners))


async def offering_of(conn: asyncpg.Connection, claim_id: int) -> int | None:
    return await conn.fetchval("SELECT offering_id FROM offering_claims WHERE id = $1", claim_id)


async def ban_no_shows(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Confirmed, never used places of items that ended over an hour ago become 'missed'; where
    the item sets ``no_show_ban_days``, the worker is banned from the organiser's sign-ups until
    then (a longer ban already in place stays)."""
    return await conn.fetch(
        """WITH missed AS (
               UPDATE offering_claims c SET status = 'missed', updated_at = $1
               FROM offerings o
               WHERE o.id = c.offering_id AND c.status = 'confirmed'
                 AND o.ends_at < $1::timestamptz - interval '1 hour'
               RETURNING c.id, c.account_id, o.org_id, o.no_show_ban_days)
           INSERT INTO offering_bans AS b (org_id, account_id, until, reason_claim_id)
           SELECT DISTINCT ON (org_id, account_id) org_id, account_id,
                  $1 + make_interval(days => no_show_ban_days), id
           FROM missed WHERE no_show_ban_days > 0
           ORDER BY org_id, account_id, no_show_ban_days DESC
           ON CONFLICT (org_id, account_id) DO UPDATE SET until = greatest(b.until, excluded.until),
               reason_claim_id = excluded.reason_claim_id
           RETURNING b.account_id""", now)


async def notice_context(conn: asyncpg.Connection, claim_ids: list[int], oa_appid: str,
                         mp_appid: str) -> list[asyncpg.Record]:
    """What a result or reminder needs per claim: the item, the times, the worker's openids and
    the Mini Program templates they allowed."""
    return await conn.fetch(
        """SELECT c.id, c.status, c.hold_until, c.notice_grants, o.title, o.starts_at, o.place,
                  (SELECT subject FROM account_identities i WHERE i.account_id = c.account_id
                     AND i.kind = 'oa_openid' AND i.issuer = $2) AS oa_openid,
                  (SELECT subject FROM account_identities i WHERE i.account_id = c.account_id
                     AND i.kind = 'mp_openid' AND i.issuer = $3) AS mp_openid
           FROM offering_claims c JOIN offerings o ON o.id = c.offering_id
           WHERE c.id = ANY($1::bigint[])""", claim_ids, oa_appid, mp_appid)


async def set_grants(conn: asyncpg.Connection, claim_id: int, templates: list[str]) -> None:
    await conn.execute("UPDATE offering_claims SET notice_grants = $2 WHERE id = $1", claim_id, templates)


async def due_reminders(conn: asyncpg.Connection, day_starts: datetime, day_ends: datetime,
                        now: datetime, limit: int) -> list[int]:
    """Confirmed places of items starting within [day_starts, day_ends) not reminded yet; marked
    reminded here (in the caller's transaction, with the messages)."""
    return [r["id"] for r in await conn.fetch(
        """UPDATE offering_claims c SET reminded_at = $3
           WHERE c.id IN (SELECT c2.id FROM offering_claims c2 JOIN offerings o ON o.id = c2.offering_id
                          WHERE c2.status = 'confirmed' AND c2.reminded_at IS NULL
                            AND o.starts_at >= $1 AND o.starts_at < $2
                          ORDER BY c2.id LIMIT $4 FOR UPDATE OF c2 SKIP LOCKED)
           RETURNING c.id""", day_starts, day_ends, now, limit)]


async def release_cancelled_accounts(conn: asyncpg.Connection, now: datetime,
                                     limit: int) -> list[asyncpg.Record]:
    """Places and registrations still open of accounts that were cancelled (注销) are withdrawn;
    units they held go back: (item, units freed) per item."""
    return await conn.fetch(
        """WITH gone AS (
               SELECT c.id, c.status AS was FROM offering_claims c
               JOIN accounts a ON a.id = c.account_id
               WHERE a.status = 'cancelled'
                 AND c.status IN ('entered', 'pending', 'waitlisted', 'held', 'confirmed')
               ORDER BY c.id LIMIT $2 FOR UPDATE OF c SKIP LOCKED),
           withdrawn AS (
               UPDATE offering_claims c SET status = 'cancelled', hold_until = NULL, updated_at = $1
               FROM gone WHERE c.id = gone.id
               RETURNING c.offering_id, gone.was),
           per_item AS (
               SELECT offering_id, count(*)::int AS claims,
                      count(*) FILTER (WHERE was IN ('held', 'confirmed'))::int AS units
               FROM withdrawn GROUP BY offering_id),
           freed AS (
               UPDATE offerings o SET taken = o.taken - p.units FROM per_item p
               WHERE o.id = p.offering_id AND p.units > 0)
           SELECT offering_id, units, claims FROM per_item""", now, limit)
