"""SQL for information reports (信息报送), their reviews per level, pictures and rankings (rules in
:mod:`wxbackend.services.office.info_reports`)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

_REPORT = """r.id, r.org_id, r.org_path::text AS org_path, r.submitted_by, r.title, r.body,
    r.category, r.event_date, r.filed_at, r.late, r.round, r.updated_at, r.national_passed_at,
    r.national_adopted_at, r.national_points, r.national_note, o.name AS org_name,
    c.display_name AS submitted_by_name"""
_FROM = """info_reports r JOIN orgs o ON o.id = r.org_id JOIN cadres c ON c.id = r.submitted_by"""
# A level that is not decided waits either for its reviewer or (an open 修改 step) for the
# submitter's changes.
_REVIEW = """v.id, v.report_id, v.org_id, v.level, v.item_id, v.opened_at, v.verdict, v.reason,
    v.points, v.decided_at, v.passed_up_at, o.name AS org_name, i.version, i.status AS item_status,
    coalesce(v.verdict, CASE WHEN EXISTS (SELECT 1 FROM work_steps s WHERE s.item_id = v.item_id
                                           AND s.status = 'open' AND s.node = 'revise')
                             THEN 'returned' ELSE 'pending' END) AS status,
    d.display_name AS decided_by_name"""
_REVIEW_FROM = """info_report_reviews v JOIN orgs o ON o.id = v.org_id
    JOIN work_items i ON i.id = v.item_id LEFT JOIN cadres d ON d.id = v.decided_by"""


async def org(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, parent_id, name, kind, path::text AS path FROM orgs WHERE id = $1", org_id)


# --- reports --------------------------------------------------------------------------------------
async def insert_report(conn: asyncpg.Connection, *, org_id: int, submitted_by: int, title: str,
                        body: str, category: str | None, event_date: date, late: bool,
                        now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO info_reports (org_id, org_path, submitted_by, title, body, category,
               event_date, filed_at, late, updated_at)
           SELECT o.id, o.path, $2, $3, $4, $5, $6, $8, $7, $8 FROM orgs o WHERE o.id = $1
           RETURNING id""",
        org_id, submitted_by, title, body, category, event_date, late, now)


async def report(conn: asyncpg.Connection, report_id: int, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_REPORT} FROM {_FROM} WHERE r.id = $1" + (" FOR UPDATE OF r" if lock else ""),  # noqa: S608
        report_id)


async def revise(conn: asyncpg.Connection, report_id: int, *, title: str, body: str,
                 category: str | None, event_date: date, late: bool, now: datetime) -> None:
    """A resubmission after 退回修改: the same report, a new round."""
    await conn.execute(
        """UPDATE info_reports SET title = $2, body = $3, category = $4, event_date = $5, late = $6,
               round = round + 1, updated_at = $7 WHERE id = $1""",
        report_id, title, body, category, event_date, late, now)
    # 我的待办 shows the report's current title on every level's item.
    await conn.execute(
        """UPDATE work_items i SET title = $2 FROM info_report_reviews v
           WHERE v.report_id = $1 AND i.id = v.item_id""", report_id, title)


async def national_passed(conn: asyncpg.Connection, report_id: int, cadre_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE info_reports SET national_passed_at = $3, national_passed_by = $2 WHERE id = $1",
        report_id, cadre_id, now)


async def national_adopted(conn: asyncpg.Connection, report_id: int, cadre_id: int, points: int,
                           note: str | None, now: datetime) -> None:
    await conn.execute(
        """UPDATE info_reports SET national_adopted_at = $5, national_adopted_by = $2,
               national_points = $3, national_note = $4 WHERE id = $1""",
        report_id, cadre_id, points, note, now)


async def reports_of(conn: asyncpg.Connection, org_id: int, limit: int, offset: int) -> list[asyncpg.Record]:
    """A union's own reports, newest first."""
    return await conn.fetch(
        f"""SELECT {_REPORT} FROM {_FROM} WHERE r.org_id = $1
            ORDER BY r.id DESC LIMIT $2 OFFSET $3""", org_id, limit, offset)  # noqa: S608


async def addressed_to(conn: asyncpg.Connection, org_id: int, open_only: bool, limit: int,
                       offset: int) -> list[asyncpg.Record]:
    """Reports a union reviews (its desk): those still waiting for its verdict first."""
    return await conn.fetch(
        f"""SELECT {_REPORT}, v.id AS review_id FROM info_report_reviews v
              JOIN {_FROM} ON r.id = v.report_id
            WHERE v.org_id = $1 AND (NOT $2 OR v.verdict IS NULL)
            ORDER BY (v.verdict IS NULL) DESC, v.id DESC LIMIT $3 OFFSET $4""",  # noqa: S608
        org_id, open_only, limit, offset)


# --- reviews per level ----------------------------------------------------------------------------
async def insert_review(conn: asyncpg.Connection, *, report_id: int, org_id: int, level: str,
                        item_id: int, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO info_report_reviews (report_id, org_id, level, item_id, opened_at)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""", report_id, org_id, level, item_id, now)


async def reviews_of(conn: asyncpg.Connection, report_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_REVIEW} FROM {_REVIEW_FROM} WHERE v.report_id = ANY($1::bigint[])
            ORDER BY v.report_id, v.id""", report_ids)  # noqa: S608


async def review_at(conn: asyncpg.Connection, report_id: int, org_id: int) -> asyncpg.Record | None:
    """The level of ``report_id`` that the union ``org_id`` reviews."""
    return await conn.fetchrow(
        f"SELECT {_REVIEW} FROM {_REVIEW_FROM} WHERE v.report_id = $1 AND v.org_id = $2",  # noqa: S608
        report_id, org_id)


async def undecided(conn: asyncpg.Connection, report_id: int) -> asyncpg.Record | None:
    """The level still under review (there is one at most: a report goes up only once adopted)."""
    return await conn.fetchrow(
        f"""SELECT {_REVIEW} FROM {_REVIEW_FROM} WHERE v.report_id = $1 AND v.verdict IS NULL
            ORDER BY v.id DESC LIMIT 1""", report_id)  # noqa: S608


async def decide(conn: asyncpg.Connection, review_id: int, *, verdict: str, reason: str | None,
                 points: int, cadre_id: int, now: datetime) -> bool:
    """The verdict, once: False when the level was already decided."""
    done = await conn.execute(
        """UPDATE info_report_reviews SET verdict = $2, reason = $3, points = $4, decided_by = $5,
               decided_at = $6 WHERE id = $1 AND verdict IS NULL""",
        review_id, verdict, reason, points, cadre_id, now)
    return done == "UPDATE 1"


async def passed_up(conn: asyncpg.Connection, review_id: int, cadre_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE info_report_reviews SET passed_up_at = $3, passed_up_by = $2 WHERE id = $1",
        review_id, cadre_id, now)


# --- pictures ------------------------------------------------------------------------------------
async def insert_picture(conn: asyncpg.Connection, *, org_id: int, cadre_id: int, page_key: str,
                         thumb_key: str, width: int, height: int, size: int, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO info_report_pictures (org_id, uploaded_by, page_key, thumb_key, width, height,
               bytes, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
        org_id, cadre_id, page_key, thumb_key, width, height, size, now)


async def loose_pictures(conn: asyncpg.Connection, cadre_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM info_report_pictures WHERE uploaded_by = $1 AND report_id IS NULL",
        cadre_id)


async def pictures(conn: asyncpg.Connection, picture_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM info_report_pictures WHERE id = ANY($1::bigint[]) FOR UPDATE", picture_ids)


async def attach_pictures(conn: asyncpg.Connection, report_id: int, picture_ids: list[int]) -> None:
    """The report's pictures become exactly ``picture_ids``, in that order; the ones it no longer
    shows go (their files stay: the store keeps files by content, others may share them)."""
    await conn.execute(
        "DELETE FROM info_report_pictures WHERE report_id = $1 AND NOT id = ANY($2::bigint[])",
        report_id, picture_ids)
    await conn.execute(
        """UPDATE info_report_pictures p SET report_id = $1, position = x.n
           FROM unnest($2::bigint[]) WITH ORDINALITY AS x(id, n) WHERE p.id = x.id""",
        report_id, picture_ids)


async def pictures_of(conn: asyncpg.Connection, report_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, report_id, page_key, thumb_key, width, height, bytes FROM info_report_pictures
           WHERE report_id = ANY($1::bigint[]) ORDER BY report_id, position""", report_ids)


# --- rankings ------------------------------------------------------------------------------------
async def tallies(conn: asyncpg.Connection, subtree: str, start: datetime,
                  end: datetime) -> list[asyncpg.Record]:
    """Per union directly below ``subtree`` (grp: its path; '' for the subtree's own union):
    reports filed in the period, adoptions in it by level with their points, national ones."""
    return await conn.fetch(
        """WITH facts AS (
               SELECT r.org_path AS path, 'submitted' AS kind, 0 AS points, r.late
                 FROM info_reports r
                WHERE r.org_path <@ $1::ltree AND r.filed_at >= $2 AND r.filed_at < $3
               UNION ALL
               SELECT r.org_path, v.level, v.points, r.late
                 FROM info_report_reviews v JOIN info_reports r ON r.id = v.report_id
                WHERE r.org_path <@ $1::ltree AND v.verdict = 'adopted'
                  AND v.decided_at >= $2 AND v.decided_at < $3
               UNION ALL
               SELECT r.org_path, 'national', r.national_points, r.late FROM info_reports r
                WHERE r.org_path <@ $1::ltree AND r.national_adopted_at >= $2
                  AND r.national_adopted_at < $3)
           SELECT CASE WHEN nlevel(path) > nlevel($1::ltree)
                       THEN subpath(path, 0, nlevel($1::ltree) + 1)::text ELSE '' END AS grp,
                  kind, count(*) AS n, coalesce(sum(points), 0) AS points,
                  count(*) FILTER (WHERE late) AS late
             FROM facts GROUP BY 1, 2""",
        subtree, start, end)


async def children(conn: asyncpg.Connection, org_id: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, name, path::text AS path FROM orgs WHERE parent_id = $1 ORDER BY id LIMIT $2",
        org_id, limit)


async def orgs_by_path(conn: asyncpg.Connection, paths: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, name, path::text AS path FROM orgs WHERE path = ANY($1::ltree[])", paths)
