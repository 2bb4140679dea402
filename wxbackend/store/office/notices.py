"""SQL for notices (通知公告) and their recipients (rules in
:mod:`wxbackend.services.office.notices`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

_NOTICE = """n.*, n.org_path::text AS org_path, o.name AS org_name,
    a.display_name AS author_name, v.display_name AS reviewer_name"""
_FROM = """notices n JOIN orgs o ON o.id = n.org_id JOIN cadres a ON a.id = n.created_by
    LEFT JOIN cadres v ON v.id = n.reviewed_by"""


async def insert(conn: asyncpg.Connection, *, org_id: int, title: str, body: str,
                 attachments: list[int], targets: dict, receipt_form: dict | None,
                 receipt_due_at: datetime | None, created_by: int, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO notices (org_id, org_path, title, body, attachments, targets, receipt_form,
               receipt_due_at, created_by, created_at, updated_at)
           SELECT o.id, o.path, $2, $3, $4, $5, $6, $7, $8, $9, $9 FROM orgs o WHERE o.id = $1
           RETURNING id""",
        org_id, title, body, attachments, targets, receipt_form, receipt_due_at, created_by, now)


async def update_draft(conn: asyncpg.Connection, notice_id: int, *, title: str, body: str,
                       attachments: list[int], targets: dict, receipt_form: dict | None,
                       receipt_due_at: datetime | None, now: datetime) -> None:
    await conn.execute(
        """UPDATE notices SET title = $2, body = $3, attachments = $4, targets = $5,
               receipt_form = $6, receipt_due_at = $7, updated_at = $8
           WHERE id = $1 AND status = 'draft'""",
        notice_id, title, body, attachments, targets, receipt_form, receipt_due_at, now)


async def get(conn: asyncpg.Connection, notice_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_NOTICE} FROM {_FROM} WHERE n.id = $1"  # noqa: S608
        + (" FOR UPDATE OF n" if lock else ""), notice_id)


async def by_item(conn: asyncpg.Connection, item_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_NOTICE} FROM {_FROM} WHERE n.item_id = $1", item_id)  # noqa: S608


async def of_union(conn: asyncpg.Connection, org_id: int, cadre_id: int, status: str | None,
                   limit: int, offset: int) -> list[asyncpg.Record]:
    """A union's notices, newest first; drafts only the cadre's own."""
    return await conn.fetch(
        f"""SELECT {_NOTICE},
                   (SELECT count(*) FROM notice_recipients r
                     WHERE r.notice_id = n.id AND r.read_at IS NOT NULL) AS read,
                   (SELECT count(*) FROM notice_recipients r
                     WHERE r.notice_id = n.id AND r.receipt_at IS NOT NULL) AS answered
            FROM {_FROM}
            WHERE n.org_id = $1 AND (n.status <> 'draft' OR n.created_by = $2)
              AND ($3::text IS NULL OR n.status = $3)
            ORDER BY n.id DESC LIMIT $4 OFFSET $5""",  # noqa: S608
        org_id, cadre_id, status, limit, offset)


async def submitted(conn: asyncpg.Connection, notice_id: int, item_id: int, now: datetime) -> None:
    await conn.execute(
        """UPDATE notices SET status = 'reviewing', item_id = $2, submitted_at = $3,
               return_opinion = NULL, updated_at = $3 WHERE id = $1""", notice_id, item_id, now)


async def returned(conn: asyncpg.Connection, notice_id: int, reviewer: int, opinion: str,
                   now: datetime) -> None:
    await conn.execute(
        """UPDATE notices SET status = 'draft', reviewed_by = $2, return_opinion = $3,
               updated_at = $4 WHERE id = $1""", notice_id, reviewer, opinion, now)


async def published(conn: asyncpg.Connection, notice_id: int, reviewer: int, recipients: int,
                    now: datetime) -> None:
    await conn.execute(
        """UPDATE notices SET status = 'published', reviewed_by = $2, recipients = $3,
               published_at = $4, updated_at = $4 WHERE id = $1""",
        notice_id, reviewer, recipients, now)


async def recalled(conn: asyncpg.Connection, notice_id: int, reason: str, now: datetime) -> None:
    await conn.execute(
        """UPDATE notices SET status = 'recalled', recalled_at = $3, recall_reason = $2,
               updated_at = $3 WHERE id = $1""", notice_id, reason, now)


async def next_urge(conn: asyncpg.Connection, notice_id: int) -> int:
    return await conn.fetchval(
        "UPDATE notices SET urges = urges + 1 WHERE id = $1 RETURNING urges", notice_id)


# --- targets --------------------------------------------------------------------------------
async def orgs(conn: asyncpg.Connection, org_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, name, kind, path::text AS path FROM orgs WHERE id = ANY($1::bigint[])", org_ids)


async def unions_below(conn: asyncpg.Connection, subtree: str) -> list[asyncpg.Record]:
    """How many unions of each kind lie strictly below a union, and the cities among them."""
    return await conn.fetch(
        """SELECT kind, count(*) AS unions,
                  coalesce(jsonb_agg(jsonb_build_object('id', id, 'name', name) ORDER BY name)
                           FILTER (WHERE kind = 'city'), '[]') AS cities
           FROM orgs WHERE path <@ $1::ltree AND path <> $1::ltree GROUP BY kind""", subtree)


async def departments(conn: asyncpg.Connection, subtree: str) -> list[str]:
    return [r["department"] for r in await conn.fetch(
        """SELECT DISTINCT c.department FROM cadres c JOIN orgs o ON o.id = c.org_id
           WHERE c.status = 'active' AND c.department IS NOT NULL AND o.path <@ $1::ltree
           ORDER BY 1 LIMIT 200""", subtree)]


# Active cadres of the subtree $1 (the author $2 aside) in the unions the targets name: of the
# kinds $3 strictly below $1, the county unions under the city $4, or the unions $5; then of the
# roles $6 and departments $7 when given.
_AUDIENCE = """FROM cadres c JOIN orgs o ON o.id = c.org_id
    WHERE c.status = 'active' AND o.path <@ $1::ltree AND c.id <> $2
      AND ((o.kind = ANY($3::text[]) AND o.path <> $1::ltree)
           OR (o.kind = 'county' AND o.path <@ $4::ltree)
           OR o.id = ANY($5::bigint[]))
      AND ($6::text[] IS NULL OR c.role = ANY($6::text[]))
      AND ($7::text[] IS NULL OR c.department = ANY($7::text[]))"""


@dataclass(frozen=True)
class Audience:
    """Whom a notice reaches, as :data:`_AUDIENCE` reads it."""
    subtree: str
    author: int
    kinds: list[str]
    city_path: str | None
    unions: list[int]
    roles: list[str] | None
    departments: list[str] | None

    def args(self) -> tuple:
        return (self.subtree, self.author, self.kinds, self.city_path, self.unions, self.roles,
                self.departments)


async def audience_size(conn: asyncpg.Connection, audience: Audience) -> int:
    return await conn.fetchval(f"SELECT count(*) {_AUDIENCE}", *audience.args())


async def write_recipients(conn: asyncpg.Connection, notice_id: int, now: datetime,
                           audience: Audience) -> int:
    """One row per cadre the notice reaches, in one statement; how many."""
    status = await conn.execute(
        f"""INSERT INTO notice_recipients (notice_id, cadre_id, org_id, org_path, delivered_at)
            SELECT $8, c.id, o.id, o.path, $9 {_AUDIENCE}""", *audience.args(), notice_id, now)
    return int(status.split()[-1])


async def bound_recipients(conn: asyncpg.Connection, notice_id: int) -> list[asyncpg.Record]:
    """The recipients with a bound WeChat: they get the notice as a template message."""
    return await conn.fetch(
        """SELECT r.cadre_id, w.oa_openid FROM notice_recipients r
           JOIN cadre_wechat w ON w.cadre_id = r.cadre_id WHERE r.notice_id = $1""", notice_id)


async def bound_cadres(conn: asyncpg.Connection, cadre_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT cadre_id, oa_openid FROM cadre_wechat WHERE cadre_id = ANY($1::bigint[])", cadre_ids)


# --- recipients -----------------------------------------------------------------------------
async def recipient(conn: asyncpg.Connection, notice_id: int, cadre_id: int, *,
                    lock: bool = False) -> asyncpg.Record | None:
    lock_clause = "FOR UPDATE" if lock else ""
    return await conn.fetchrow(
        f"SELECT * FROM notice_recipients WHERE notice_id = $1 AND cadre_id = $2 {lock_clause}",  # noqa: S608
        notice_id, cadre_id)


async def mark_read(conn: asyncpg.Connection, notice_id: int, cadre_id: int,
                    now: datetime) -> datetime | None:
    """The moment it was first read (now, unless it was read before)."""
    return await conn.fetchval(
        """UPDATE notice_recipients SET read_at = coalesce(read_at, $3)
           WHERE notice_id = $1 AND cadre_id = $2 RETURNING read_at""", notice_id, cadre_id, now)


async def answer(conn: asyncpg.Connection, notice_id: int, cadre_id: int, answers: dict,
                 now: datetime) -> None:
    """A receipt also means the notice was read."""
    await conn.execute(
        """UPDATE notice_recipients SET receipt = $3, receipt_at = $4,
               read_at = coalesce(read_at, $4)
           WHERE notice_id = $1 AND cadre_id = $2""", notice_id, cadre_id, answers, now)


async def inbox(conn: asyncpg.Connection, cadre_id: int, unread_only: bool, limit: int,
                offset: int) -> list[asyncpg.Record]:
    """A cadre's notices: unread ones first (a recalled one counts as read), newest first."""
    return await conn.fetch(
        """SELECT n.id, n.title, n.status, n.receipt_form IS NOT NULL AS has_receipt,
                  n.receipt_due_at, n.recalled_at, o.name AS org_name, r.delivered_at, r.read_at,
                  r.receipt_at, r.urged_at,
                  (r.read_at IS NULL AND n.status = 'published') AS unread
           FROM notice_recipients r JOIN notices n ON n.id = r.notice_id
           JOIN orgs o ON o.id = n.org_id
           WHERE r.cadre_id = $1 AND (NOT $2 OR (r.read_at IS NULL AND n.status = 'published'))
           ORDER BY (r.read_at IS NULL AND n.status = 'published') DESC, r.delivered_at DESC,
                    n.id DESC
           LIMIT $3 OFFSET $4""", cadre_id, unread_only, limit, offset)


async def inbox_counts(conn: asyncpg.Connection, cadre_id: int, now: datetime) -> asyncpg.Record:
    """All, unread, and receipts still open and not given."""
    return await conn.fetchrow(
        """SELECT count(*) AS total,
                  count(*) FILTER (WHERE r.read_at IS NULL AND n.status = 'published') AS unread,
                  count(*) FILTER (WHERE n.status = 'published' AND n.receipt_due_at > $2
                                   AND r.receipt_at IS NULL) AS unanswered
           FROM notice_recipients r JOIN notices n ON n.id = r.notice_id
           WHERE r.cadre_id = $1""", cadre_id, now)


# --- statistics, the list of who is behind, 催办 -----------------------------------------------
async def stats_by_branch(conn: asyncpg.Connection, notice_id: int, under: str) -> list[asyncpg.Record]:
    """Per union directly below ``under`` (its whole subtree), and for ``under``'s own cadres:
    recipients, read and receipts. ``branch`` is the union's path (``under`` itself for its own
    cadres). The rows are first counted per recipient union (a bigint, from the covering index),
    then the few thousand unions rolled up by their path."""
    return await conn.fetch(
        """WITH per_union AS (
               SELECT r.org_id, count(*) AS recipients, count(r.read_at) AS read,
                      count(r.receipt_at) AS answered
               FROM notice_recipients r WHERE r.notice_id = $1 GROUP BY r.org_id),
           counted AS (
               SELECT subpath(o.path, 0, least(nlevel(o.path), nlevel($2::ltree) + 1)) AS branch,
                      sum(p.recipients)::int AS recipients, sum(p.read)::int AS read,
                      sum(p.answered)::int AS answered
               FROM per_union p JOIN orgs o ON o.id = p.org_id
               WHERE o.path <@ $2::ltree GROUP BY 1)
           SELECT c.branch::text AS branch, o.id AS org_id, o.name AS org_name, o.kind,
                  c.recipients, c.read, c.answered
           FROM counted c JOIN orgs o ON o.id = ltree2text(subpath(c.branch, -1))::bigint
           ORDER BY c.recipients - c.read DESC, o.name""", notice_id, under)


async def recipients(conn: asyncpg.Connection, notice_id: int, under: str, state: str,
                     limit: int, offset: int) -> list[asyncpg.Record]:
    """The recipients of a union's subtree in ``state``: unread, unanswered, answered or all."""
    return await conn.fetch(
        """SELECT r.cadre_id, c.display_name, c.department, o.name AS org_name, r.delivered_at,
                  r.read_at, r.receipt_at, r.receipt, r.urged_at,
                  EXISTS (SELECT 1 FROM cadre_wechat w WHERE w.cadre_id = r.cadre_id) AS bound
           FROM notice_recipients r JOIN cadres c ON c.id = r.cadre_id
           JOIN orgs o ON o.id = r.org_id
           WHERE r.notice_id = $1 AND r.org_path <@ $2::ltree
             AND CASE $3 WHEN 'unread' THEN r.read_at IS NULL
                         WHEN 'unanswered' THEN r.receipt_at IS NULL
                         WHEN 'answered' THEN r.receipt_at IS NOT NULL ELSE true END
           ORDER BY r.org_path, c.display_name, r.cadre_id LIMIT $4 OFFSET $5""",
        notice_id, under, state, limit, offset)


async def urge(conn: asyncpg.Connection, notice_id: int, under: str, state: str, now: datetime,
               quiet_since: datetime) -> asyncpg.Record:
    """催办 the recipients of a subtree still behind (``unread`` or ``unanswered``) who were not
    urged since ``quiet_since``: their ``urged_at`` is set; how many were behind, how many were
    urged, and the bound ones' openids."""
    return await conn.fetchrow(
        """WITH behind AS (
               SELECT r.cadre_id, r.urged_at FROM notice_recipients r
               WHERE r.notice_id = $1 AND r.org_path <@ $2::ltree
                 AND CASE $3 WHEN 'unread' THEN r.read_at IS NULL ELSE r.receipt_at IS NULL END),
           urged AS (
               UPDATE notice_recipients r SET urged_at = $4 FROM behind b
               WHERE r.notice_id = $1 AND r.cadre_id = b.cadre_id
                 AND (b.urged_at IS NULL OR b.urged_at <= $5)
               RETURNING r.cadre_id)
           SELECT (SELECT count(*) FROM behind) AS behind, (SELECT count(*) FROM urged) AS urged,
                  coalesce((SELECT array_agg(w.cadre_id ORDER BY w.cadre_id) FROM urged u
                            JOIN cadre_wechat w ON w.cadre_id = u.cadre_id), '{}') AS cadre_ids,
                  coalesce((SELECT array_agg(w.oa_openid ORDER BY w.cadre_id) FROM urged u
                            JOIN cadre_wechat w ON w.cadre_id = u.cadre_id), '{}') AS openids""",
        notice_id, under, state, now, quiet_since)


async def attachments(conn: asyncpg.Connection, ids: list[int]) -> list[asyncpg.Record]:
    """The media rows of a notice's attachments, in the notice's order."""
    if not ids:
        return []
    rows = {r["id"]: r for r in await conn.fetch(
        "SELECT * FROM media WHERE id = ANY($1::bigint[])", ids)}
    return [rows[i] for i in ids if i in rows]


async def other_publishers(conn: asyncpg.Connection, org_id: int, cadre_id: int,
                           permission: str) -> int:
    """Active cadres of a union, other than ``cadre_id``, holding ``permission``."""
    return await conn.fetchval(
        """SELECT count(*) FROM cadres c JOIN cadre_grants g ON g.cadre_id = c.id
           WHERE c.org_id = $1 AND c.id <> $2 AND c.status = 'active' AND g.permission = $3""",
        org_id, cadre_id, permission)
