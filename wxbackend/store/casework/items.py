"""SQL for work items, their steps and tasks, proxies (委托) and reads (传阅、抄送)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

ITEM_COLUMNS = """i.id, i.module, i.definition_id, i.org_id, i.org_path::text AS org_path, i.title,
    i.status, i.outcome, i.version, i.data, i.state, i.submitter_account_id, i.submitter_cadre_id,
    i.channel, i.due_at, i.due_provisional, i.opened_at, i.suspended_at, i.closed_at,
    o.name AS org_name, o.parent_id AS org_parent_id"""


async def insert_item(conn: asyncpg.Connection, *, module: str, definition_id: int, org_id: int,
                      title: str, data: dict, submitter_account_id: int | None,
                      submitter_cadre_id: int | None, channel: str, notice_grants: list[str],
                      now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO work_items (module, definition_id, org_id, org_path, title, data,
               submitter_account_id, submitter_cadre_id, channel, notice_grants, opened_at)
           SELECT $1, $2, o.id, o.path, $4, $5, $6, $7, $8, $9, $10 FROM orgs o WHERE o.id = $3
           RETURNING id""",
        module, definition_id, org_id, title, data, submitter_account_id, submitter_cadre_id,
        channel, notice_grants, now)


async def insert_items_many(conn: asyncpg.Connection, *, module: str, definition_id: int,
                            org_ids: list[int], title: str, data: dict,
                            submitter_cadre_id: int | None, now: datetime) -> list[asyncpg.Record]:
    """One item per union, in one statement (saved once: version 1, as a started item is)."""
    return await conn.fetch(
        """WITH made AS (
               INSERT INTO work_items (module, definition_id, org_id, org_path, title, data,
                                       submitter_cadre_id, opened_at, version)
               SELECT $1, $2, o.id, o.path, $4, $5, $6, $7, 1 FROM orgs o
               WHERE o.id = ANY($3::bigint[])
               RETURNING id, org_id, org_path)
           SELECT m.id, m.org_id, m.org_path::text AS org_path, o.parent_id AS org_parent_id
           FROM made m JOIN orgs o ON o.id = m.org_id""",
        module, definition_id, org_ids, title, data, submitter_cadre_id, now)


async def insert_steps_many(conn: asyncpg.Connection, item_ids: list[int], node: dict,
                            now: datetime) -> dict[int, int]:
    """The same first step of each item; the step ids by item."""
    rows = await conn.fetch(
        """INSERT INTO work_steps (item_id, node, name, sign, ratio, opened_at)
           SELECT i, $2, $3, $4, $5, $6 FROM unnest($1::bigint[]) AS i RETURNING id, item_id""",
        item_ids, node["id"], node["name"], node["sign"], node.get("ratio"), now)
    return {r["item_id"]: r["id"] for r in rows}


async def insert_tasks_many(conn: asyncpg.Connection, rows: list[tuple], now: datetime) -> list[int]:
    """Role tasks of (step_id, item_id, role, org_id, permission, department), in one statement."""
    if not rows:
        return []
    columns = [list(c) for c in zip(*rows, strict=True)]
    return [r["id"] for r in await conn.fetch(
        """INSERT INTO work_tasks (step_id, item_id, role, org_id, permission, department, created_at)
           SELECT s, i, r, o, p, d, $7
           FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[])
                AS t(s, i, r, o, p, d) RETURNING id""", *columns, now)]


async def lock_item(conn: asyncpg.Connection, item_id: int) -> asyncpg.Record | None:
    """The item, locked for the step being taken: a second cadre's step waits, then sees the
    version it did not expect."""
    return await conn.fetchrow(
        f"""SELECT {ITEM_COLUMNS} FROM work_items i JOIN orgs o ON o.id = i.org_id
            WHERE i.id = $1 FOR UPDATE OF i""", item_id)  # noqa: S608


async def get_item(conn: asyncpg.Connection, item_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {ITEM_COLUMNS} FROM work_items i JOIN orgs o ON o.id = i.org_id WHERE i.id = $1",  # noqa: S608
        item_id)


async def save_item(conn: asyncpg.Connection, item_id: int, *, status: str, outcome: str | None,
                    data: dict, state: dict, suspended_at: datetime | None,
                    closed_at: datetime | None) -> int:
    """Write the step's result and bump the version; the new version."""
    return await conn.fetchval(
        """UPDATE work_items SET status = $2, outcome = $3, data = $4, state = $5,
               suspended_at = $6, closed_at = $7, version = version + 1
           WHERE id = $1 RETURNING version""",
        item_id, status, outcome, data, state, suspended_at, closed_at)


async def set_title(conn: asyncpg.Connection, item_id: int, title: str) -> None:
    """An item's title follows its record's (a draft document retitled): the lists show it."""
    await conn.execute("UPDATE work_items SET title = $2 WHERE id = $1", item_id, title)


async def set_due(conn: asyncpg.Connection, item_id: int, due_at: datetime | None,
                  provisional: bool) -> None:
    await conn.execute("UPDATE work_items SET due_at = $2, due_provisional = $3 WHERE id = $1",
                       item_id, due_at, provisional)


async def move_item(conn: asyncpg.Connection, item_id: int, org_id: int) -> str:
    """The item goes to another union (routing); its new path."""
    return await conn.fetchval(
        """UPDATE work_items i SET org_id = o.id, org_path = o.path FROM orgs o
           WHERE i.id = $1 AND o.id = $2 RETURNING i.org_path::text""", item_id, org_id)


async def forget_submitter(conn: asyncpg.Connection, account_id: int) -> None:
    """Cancellation: items stay (they are the statistics), the link to the person goes."""
    await conn.execute(
        """UPDATE work_items SET submitter_account_id = NULL, notice_grants = '{}'
           WHERE submitter_account_id = $1""", account_id)


async def of_items(conn: asyncpg.Connection, item_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, module, org_path::text AS org_path, channel FROM work_items
           WHERE id = ANY($1::bigint[])""", item_ids)


async def org_names(conn: asyncpg.Connection, org_ids: list[int]) -> dict[int, str]:
    return {r["id"]: r["name"] for r in await conn.fetch(
        "SELECT id, name FROM orgs WHERE id = ANY($1::bigint[])", org_ids)}


async def active_cadre(conn: asyncpg.Connection, cadre_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, username, display_name, org_id FROM cadres WHERE id = $1 AND status = 'active'",
        cadre_id)


async def org(conn: asyncpg.Connection, org_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, parent_id, name, path::text AS path FROM orgs WHERE id = $1", org_id)


# --- steps and tasks ----------------------------------------------------------------------------
async def insert_step(conn: asyncpg.Connection, item_id: int, node: dict, opened_by: int | None,
                      now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO work_steps (item_id, node, name, sign, ratio, opened_by, opened_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        item_id, node["id"], node["name"], node["sign"], node.get("ratio"), opened_by, now)


async def insert_tasks(conn: asyncpg.Connection, step_id: int, item_id: int, tasks: list[dict],
                       now: datetime) -> list[int]:
    ids = []
    for t in tasks:
        ids.append(await conn.fetchval(
            """INSERT INTO work_tasks (step_id, item_id, role, org_id, permission, department,
                   cadre_id, account_id, delegated_by, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id""",
            step_id, item_id, t["role"], t.get("org_id"), t.get("permission"), t.get("department"),
            t.get("cadre_id"), t.get("account_id"), t.get("delegated_by"), now))
    return ids


async def steps_of(conn: asyncpg.Connection, item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, node, name, sign, ratio, status, opened_by, opened_at, closed_at
           FROM work_steps WHERE item_id = $1 ORDER BY id""", item_id)


async def tasks_of(conn: asyncpg.Connection, item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT t.*, s.node, o.name AS org_name, k.display_name AS cadre_name,
                  a.display_name AS acted_by_name, f.display_name AS acted_for_name,
                  d.display_name AS delegated_by_name
           FROM work_tasks t JOIN work_steps s ON s.id = t.step_id LEFT JOIN orgs o ON o.id = t.org_id
           LEFT JOIN cadres k ON k.id = t.cadre_id LEFT JOIN cadres a ON a.id = t.acted_by
           LEFT JOIN cadres f ON f.id = t.acted_for LEFT JOIN cadres d ON d.id = t.delegated_by
           WHERE t.item_id = $1 ORDER BY t.id""", item_id)


async def require_all_signers(conn: asyncpg.Connection, step_id: int) -> None:
    """加签 on a step one person signed: every signer of it must now sign (会签)."""
    await conn.execute("UPDATE work_steps SET sign = 'all' WHERE id = $1 AND sign = 'single'", step_id)


async def close_step(conn: asyncpg.Connection, step_id: int, status: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE work_steps SET status = $2, closed_at = $3 WHERE id = $1 AND status = 'open'",
        step_id, status, now)
    await conn.execute(
        "UPDATE work_tasks SET status = 'cancelled' WHERE step_id = $1 AND status = 'open'", step_id)


async def finish_task(conn: asyncpg.Connection, task_id: int, decision: str, acted_by: int | None,
                      acted_for: int | None, now: datetime) -> None:
    await conn.execute(
        """UPDATE work_tasks SET status = 'done', decision = $2, acted_by = $3, acted_for = $4,
               acted_at = $5 WHERE id = $1""", task_id, decision, acted_by, acted_for, now)


async def reassign_task(conn: asyncpg.Connection, task_id: int, cadre_id: int,
                        delegated_by: int | None) -> None:
    await conn.execute("UPDATE work_tasks SET cadre_id = $2, delegated_by = $3 WHERE id = $1",
                       task_id, cadre_id, delegated_by)


async def cancel_task(conn: asyncpg.Connection, task_id: int) -> None:
    await conn.execute("UPDATE work_tasks SET status = 'cancelled' WHERE id = $1", task_id)


async def retarget_role_tasks(conn: asyncpg.Connection, item_id: int, old_org: int,
                              new_org: int) -> None:
    """Routing: the open tasks of the old union's roles pass to the new union's."""
    await conn.execute(
        """UPDATE work_tasks SET org_id = $3 WHERE item_id = $1 AND status = 'open'
               AND org_id = $2 AND cadre_id IS NULL""", item_id, old_org, new_org)


async def acted_since(conn: asyncpg.Connection, step_ids: list[int]) -> bool:
    """Has anyone acted on these steps (the next step moved on, so no 撤回)?"""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM work_tasks WHERE step_id = ANY($1::bigint[]) AND acted_at IS NOT NULL)",
        step_ids)


# --- who may act ---------------------------------------------------------------------------
async def identities(conn: asyncpg.Connection, cadre_id: int, now: datetime) -> list[asyncpg.Record]:
    """The cadre themself and everyone whose proxy (委托) they are at ``now``: the union,
    department and permissions each acts with. The cadre's own row comes first."""
    return await conn.fetch(
        """SELECT c.id, c.org_id, c.department, c.display_name,
                  coalesce(array_agg(g.permission) FILTER (WHERE g.permission IS NOT NULL),
                           '{}') AS permissions,
                  c.id = $1 AS own
           FROM cadres c LEFT JOIN cadre_grants g ON g.cadre_id = c.id
           WHERE c.status = 'active' AND (c.id = $1 OR c.id IN (
                 SELECT p.cadre_id FROM work_proxies p WHERE p.proxy_id = $1 AND p.revoked_at IS NULL
                   AND p.starts_at <= $2 AND p.ends_at > $2))
           GROUP BY c.id ORDER BY (c.id = $1) DESC, c.id""", cadre_id, now)


async def cadre(conn: asyncpg.Connection, cadre_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT c.id, c.display_name, c.org_id, o.path::text AS org_path, c.status, c.department,
                  coalesce(array_agg(g.permission) FILTER (WHERE g.permission IS NOT NULL),
                           '{}') AS permissions
           FROM cadres c JOIN orgs o ON o.id = c.org_id LEFT JOIN cadre_grants g ON g.cadre_id = c.id
           WHERE c.id = $1 GROUP BY c.id, o.path""", cadre_id)


async def colleagues(conn: asyncpg.Connection, subtree: str, limit: int) -> list[asyncpg.Record]:
    """Active cadres of a subtree, the actor's own union first: whom an item can be handed to."""
    return await conn.fetch(
        """SELECT c.id, c.display_name, c.department, o.name AS org_name
           FROM cadres c JOIN orgs o ON o.id = c.org_id
           WHERE c.status = 'active' AND o.path <@ $1::ltree
           ORDER BY nlevel(o.path), o.name, c.display_name LIMIT $2""", subtree, limit)


# --- proxies and reads ----------------------------------------------------------------------
async def insert_proxy(conn: asyncpg.Connection, cadre_id: int, proxy_id: int, starts_at: datetime,
                       ends_at: datetime, now: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO work_proxies (cadre_id, proxy_id, starts_at, ends_at, created_at)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""", cadre_id, proxy_id, starts_at, ends_at, now)


async def proxies_of(conn: asyncpg.Connection, cadre_id: int, now: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT p.id, p.cadre_id, c.display_name AS cadre_name, p.proxy_id,
                  x.display_name AS proxy_name, p.starts_at, p.ends_at
           FROM work_proxies p JOIN cadres c ON c.id = p.cadre_id JOIN cadres x ON x.id = p.proxy_id
           WHERE (p.cadre_id = $1 OR p.proxy_id = $1) AND p.revoked_at IS NULL AND p.ends_at > $2
           ORDER BY p.starts_at""", cadre_id, now)


async def revoke_proxy(conn: asyncpg.Connection, proxy_row: int, cadre_id: int, now: datetime) -> bool:
    status = await conn.execute(
        """UPDATE work_proxies SET revoked_at = $3
           WHERE id = $1 AND cadre_id = $2 AND revoked_at IS NULL""", proxy_row, cadre_id, now)
    return status.endswith(" 1")


async def add_read(conn: asyncpg.Connection, item_id: int, cadre_id: int, kind: str, sent_by: int,
                   now: datetime) -> bool:
    status = await conn.execute(
        """INSERT INTO work_reads (item_id, cadre_id, kind, sent_by, sent_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT DO NOTHING""", item_id, cadre_id, kind, sent_by, now)
    return status.endswith(" 1")


async def mark_read(conn: asyncpg.Connection, item_id: int, cadre_id: int, now: datetime) -> int:
    status = await conn.execute(
        """UPDATE work_reads SET read_at = $3 WHERE item_id = $1 AND cadre_id = $2
               AND read_at IS NULL""", item_id, cadre_id, now)
    return int(status.split()[-1])


async def reads_of(conn: asyncpg.Connection, item_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT r.cadre_id, c.display_name, r.kind, r.sent_at, r.read_at
           FROM work_reads r JOIN cadres c ON c.id = r.cadre_id WHERE r.item_id = $1
           ORDER BY r.sent_at""", item_id)


async def is_reader(conn: asyncpg.Connection, item_id: int, cadre_id: int) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM work_reads WHERE item_id = $1 AND cadre_id = $2)",
        item_id, cadre_id)
