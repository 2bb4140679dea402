"""SQL for the lists cadres work from: 我的待办 (open tasks they may act on, across modules) and
a union's overdue board."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# The tasks a set of identities (a cadre and those they stand in for) may act on: named ones,
# and those of a role (union, permission, department) one of them holds.
_MINE = """
    SELECT t.id FROM work_tasks t
    WHERE t.status = 'open' AND t.cadre_id = ANY($1::bigint[])
    UNION
    SELECT t.id FROM unnest($2::bigint[], $3::text[], $4::text[]) AS r(org_id, permission, department)
    JOIN work_tasks t ON t.org_id = r.org_id AND t.permission = r.permission
    WHERE t.status = 'open' AND t.cadre_id IS NULL
      AND (t.department IS NULL OR t.department = r.department)
      -- one seat per cadre in a step of several signers
      AND NOT EXISTS (SELECT 1 FROM work_tasks d WHERE d.step_id = t.step_id
                        AND d.acted_by = ANY($1::bigint[]))"""

_DUE = """
    LEFT JOIN LATERAL (SELECT d.due_at, d.warn_at, d.provisional FROM work_deadlines d
                       WHERE d.step_id = t.step_id AND d.status = 'open'
                       ORDER BY d.id DESC LIMIT 1) sd ON true
    LEFT JOIN LATERAL (SELECT d.due_at, d.warn_at, d.provisional FROM work_deadlines d
                       WHERE d.item_id = i.id AND d.step_id IS NULL AND d.status = 'open'
                       ORDER BY d.id DESC LIMIT 1) idl ON true"""


def _roles(identities: list[asyncpg.Record]) -> tuple[list[int], list[str], list[str | None]]:
    orgs: list[int] = []
    perms: list[str] = []
    depts: list[str | None] = []
    for ident in identities:
        for permission in ident["permissions"]:
            orgs.append(ident["org_id"])
            perms.append(permission)
            depts.append(ident["department"])
    return orgs, perms, depts


async def my_tasks(conn: asyncpg.Connection, identities: list[asyncpg.Record], now: datetime, *,
                   module: str | None, state: str | None, search: str | None,
                   limit: int, offset: int) -> tuple[list[asyncpg.Record], asyncpg.Record]:
    """A page of the tasks, soonest due first, and the counts (all, amber, red) of the whole list.
    ``state``: 'overdue' (red), 'soon' (amber) or None."""
    orgs, perms, depts = _roles(identities)
    args = [[i["id"] for i in identities], orgs, perms, depts, now, module, search]
    rows = await conn.fetch(
        f"""WITH mine AS ({_MINE}),
            listed AS (
              SELECT t.id AS task_id, t.step_id, t.role, t.cadre_id, t.delegated_by, t.org_id,
                     t.permission, t.department,
                     s.name AS step_name, s.sign, i.id AS item_id, i.module, i.title, i.status,
                     i.version, i.org_id AS item_org_id, o.name AS org_name, i.opened_at,
                     least(sd.due_at, idl.due_at) AS due_at,
                     CASE WHEN sd.due_at IS NULL OR (idl.due_at IS NOT NULL AND idl.due_at < sd.due_at)
                          THEN idl.warn_at ELSE sd.warn_at END AS warn_at,
                     coalesce(sd.provisional, false) OR coalesce(idl.provisional, false) AS provisional
              FROM mine JOIN work_tasks t ON t.id = mine.id
              JOIN work_steps s ON s.id = t.step_id JOIN work_items i ON i.id = t.item_id
              JOIN orgs o ON o.id = i.org_id {_DUE}
              WHERE ($6::text IS NULL OR i.module = $6)
                AND ($7::text IS NULL OR strpos(i.title, $7) > 0))
            SELECT *, CASE WHEN due_at <= $5 THEN 'overdue' WHEN warn_at <= $5 THEN 'soon'
                           ELSE 'ok' END AS urgency,
                   count(*) OVER () AS total,
                   count(*) FILTER (WHERE due_at <= $5) OVER () AS overdue,
                   count(*) FILTER (WHERE due_at > $5 AND warn_at <= $5) OVER () AS soon
            FROM listed""", *args)  # noqa: S608
    # The window counts are over the whole list; the page and the state filter are applied here
    # so the counts stay those of the list.
    counts = {"total": rows[0]["total"] if rows else 0, "overdue": rows[0]["overdue"] if rows else 0,
              "soon": rows[0]["soon"] if rows else 0}
    picked = [r for r in rows if state is None or r["urgency"] == state]
    picked.sort(key=lambda r: (r["due_at"] is None, r["due_at"] or now, r["task_id"]))
    return picked[offset:offset + limit], counts


async def ledger(conn: asyncpg.Connection, subtree: str, module: str, start: datetime,
                 end: datetime, limit: int) -> list[asyncpg.Record]:
    """A module's items opened in a period, in a subtree: the 台账 (ledger) a union keeps."""
    return await conn.fetch(
        """SELECT i.id, i.title, i.status, i.outcome, i.channel, i.opened_at, i.closed_at, i.due_at,
                  i.due_provisional, o.name AS org_name,
                  a.category, a.anonymous, a.phone_enc, a.rating AS appeal_rating,
                  p.number, p.proposer, p.class, p.rating AS proposal_rating
           FROM work_items i JOIN orgs o ON o.id = i.org_id
           LEFT JOIN appeals a ON a.item_id = i.id LEFT JOIN proposals p ON p.item_id = i.id
           WHERE i.module = $2 AND i.org_path <@ $1::ltree AND i.opened_at >= $3 AND i.opened_at < $4
           ORDER BY i.opened_at, i.id LIMIT $5""", subtree, module, start, end, limit)


async def overdue_board(conn: asyncpg.Connection, subtree: str, now: datetime, *,
                        module: str | None, limit: int) -> list[asyncpg.Record]:
    """Open items of a subtree past their time limit, the longest overdue first."""
    return await conn.fetch(
        """SELECT i.id AS item_id, i.module, i.title, i.org_id, o.name AS org_name, i.due_at,
                  i.due_provisional AS provisional, i.status,
                  (SELECT string_agg(DISTINCT s.name, '、') FROM work_steps s
                   WHERE s.item_id = i.id AND s.status = 'open') AS steps
           FROM work_items i JOIN orgs o ON o.id = i.org_id
           WHERE i.status = 'open' AND i.due_at <= $2 AND i.org_path <@ $1::ltree
             AND ($3::text IS NULL OR i.module = $3)
           ORDER BY i.due_at, i.id LIMIT $4""", subtree, now, module, limit)
