"""SQL for who a casework reminder reaches: cadres with a bound WeChat, workers by openid."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_ITEM = """i.id AS item_id, i.title, i.due_at,
    (SELECT string_agg(DISTINCT s.name, '、') FROM work_steps s
      WHERE s.item_id = i.id AND s.status = 'open') AS step_name"""


async def task_recipients(conn: asyncpg.Connection, task_ids: list[int],
                          now: datetime) -> list[asyncpg.Record]:
    """Each cadre who may act on one of the tasks — named, or holding the task's role — and the
    proxies standing in for them now; once per cadre and item."""
    return await conn.fetch(
        f"""WITH candidates AS (
                SELECT t.item_id, c.id AS cadre_id FROM work_tasks t
                JOIN cadres c ON c.status = 'active' AND (
                     c.id = t.cadre_id
                  OR (t.cadre_id IS NULL AND c.org_id = t.org_id
                      AND (t.department IS NULL OR c.department = t.department)
                      AND EXISTS (SELECT 1 FROM cadre_grants g
                                  WHERE g.cadre_id = c.id AND g.permission = t.permission)))
                WHERE t.id = ANY($1::bigint[]) AND t.status = 'open'),
            reached AS (
                SELECT item_id, cadre_id FROM candidates
                UNION
                SELECT k.item_id, p.proxy_id FROM candidates k JOIN work_proxies p
                  ON p.cadre_id = k.cadre_id AND p.revoked_at IS NULL
                 AND p.starts_at <= $2 AND p.ends_at > $2)
            SELECT DISTINCT ON (r.item_id, r.cadre_id) r.cadre_id, w.oa_openid, {_ITEM}
            FROM reached r JOIN cadre_wechat w ON w.cadre_id = r.cadre_id
            JOIN work_items i ON i.id = r.item_id""", task_ids, now)  # noqa: S608


async def item_recipients(conn: asyncpg.Connection, item_ids: list[int],
                          now: datetime) -> list[asyncpg.Record]:
    """:func:`task_recipients` for every open task of these items."""
    task_ids = [r["id"] for r in await conn.fetch(
        "SELECT id FROM work_tasks WHERE item_id = ANY($1::bigint[]) AND status = 'open'", item_ids)]
    return await task_recipients(conn, task_ids, now) if task_ids else []


async def upper_recipients_many(conn: asyncpg.Connection, item_ids: list[int],
                                permission: str) -> list[asyncpg.Record]:
    """:func:`upper_recipients` for several items at once."""
    return await conn.fetch(
        f"""SELECT w.cadre_id, w.oa_openid, {_ITEM}
            FROM work_items i JOIN orgs o ON o.id = i.org_id
            JOIN cadres c ON c.org_id = coalesce(o.parent_id, o.id) AND c.status = 'active'
            JOIN cadre_grants g ON g.cadre_id = c.id AND g.permission = $2
            JOIN cadre_wechat w ON w.cadre_id = c.id
            WHERE i.id = ANY($1::bigint[])""", item_ids, permission)  # noqa: S608


async def cadre_recipients(conn: asyncpg.Connection, item_id: int,
                           cadre_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT w.cadre_id, w.oa_openid, {_ITEM}
            FROM cadre_wechat w JOIN cadres c ON c.id = w.cadre_id AND c.status = 'active'
            JOIN work_items i ON i.id = $1
            WHERE w.cadre_id = ANY($2::bigint[])""", item_id, cadre_ids)  # noqa: S608


async def submitter(conn: asyncpg.Connection, item_id: int, oa_appid: str,
                    mp_appid: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT i.title, i.notice_grants,
                  (SELECT subject FROM account_identities a WHERE a.account_id = i.submitter_account_id
                     AND a.kind = 'oa_openid' AND a.issuer = $2) AS oa_openid,
                  (SELECT subject FROM account_identities a WHERE a.account_id = i.submitter_account_id
                     AND a.kind = 'mp_openid' AND a.issuer = $3) AS mp_openid
           FROM work_items i WHERE i.id = $1 AND i.submitter_account_id IS NOT NULL""",
        item_id, oa_appid, mp_appid)


async def use_grant(conn: asyncpg.Connection, item_id: int, template: str) -> None:
    """A one-time subscription allows one message: the grant is spent."""
    await conn.execute(
        """UPDATE work_items SET notice_grants =
               notice_grants[1:array_position(notice_grants, $2) - 1]
               || notice_grants[array_position(notice_grants, $2) + 1:]
           WHERE id = $1 AND $2 = ANY(notice_grants)""", item_id, template)


async def bind(conn: asyncpg.Connection, cadre_id: int, oa_openid: str, now: datetime) -> None:
    """One WeChat per cadre and one cadre per WeChat: a new binding replaces both."""
    await conn.execute("DELETE FROM cadre_wechat WHERE oa_openid = $1 AND cadre_id <> $2",
                       oa_openid, cadre_id)
    await conn.execute(
        """INSERT INTO cadre_wechat (cadre_id, oa_openid, bound_at) VALUES ($1, $2, $3)
           ON CONFLICT (cadre_id) DO UPDATE SET oa_openid = EXCLUDED.oa_openid,
                 bound_at = EXCLUDED.bound_at""", cadre_id, oa_openid, now)


async def unbind(conn: asyncpg.Connection, cadre_id: int) -> bool:
    status = await conn.execute("DELETE FROM cadre_wechat WHERE cadre_id = $1", cadre_id)
    return status.endswith(" 1")


async def binding(conn: asyncpg.Connection, cadre_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT bound_at FROM cadre_wechat WHERE cadre_id = $1", cadre_id)
