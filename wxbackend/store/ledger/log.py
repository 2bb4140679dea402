"""SQL of the province's ledger: the queue, entries, tiles, checkpoints, cosignatures, alarms."""

from __future__ import annotations

from datetime import datetime

import asyncpg

# One integrator at a time, whichever process runs it.
INTEGRATE_LOCK = 0x6C656467  # "ledg"


async def lock_integrator(conn: asyncpg.Connection) -> bool:
    """Take the integrator's transaction lock, or False when another process holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", INTEGRATE_LOCK))


async def take_queued(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Remove the oldest queued items (in the caller's transaction) and return what their entries
    are made of, oldest first. ``scope`` is the owning union's path as it stands now (NULL for an
    audit-trail head, which every node receives), ``codes`` the union codes along it."""
    return await conn.fetch(
        """WITH taken AS (
               DELETE FROM ledger_queue WHERE id IN (SELECT id FROM ledger_queue ORDER BY id LIMIT $1)
               RETURNING id, kind, ref
           ), parts AS (
               SELECT t.id, t.kind, t.ref, c.entity, c.entity_id, c.action, c.data, c.actor,
                      coalesce(c.created_at, h.at) AS at, h.seq AS head_seq, h.hash AS head_hash,
                      h.mac AS head_mac,
                      CASE c.entity
                          WHEN 'org' THEN c.entity_id::bigint
                          WHEN 'member' THEN (SELECT m.org_id FROM members m WHERE m.id = c.entity_id::bigint)
                          WHEN 'cadre' THEN (SELECT d.org_id FROM cadres d WHERE d.id = c.entity_id::bigint)
                          WHEN 'registered_user' THEN
                              (SELECT a.home_org_id FROM accounts a WHERE a.id = c.entity_id::bigint)
                      END AS org_id
               FROM taken t
               LEFT JOIN base_data_changes c ON t.kind = 'change' AND c.id = t.ref
               LEFT JOIN audit_heads h ON t.kind = 'audit_head' AND h.id = t.ref
           )
           SELECT p.*, o.path AS scope,
                  (SELECT array_agg(a.code ORDER BY nlevel(a.path)) FROM orgs a WHERE a.path @> o.path)
                      AS codes
           FROM parts p
           -- a change whose record has no union (an account without a home union) is the province's
           LEFT JOIN orgs o ON p.kind = 'change'
                           AND o.id = coalesce(p.org_id, (SELECT id FROM orgs WHERE parent_id IS NULL))
           ORDER BY p.id""", limit)


async def queued(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM ledger_queue")


async def size(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries")


async def add_entries(conn: asyncpg.Connection, rows: list[tuple[int, str, int, str | None, bytes]]) -> None:
    """(idx, kind, ref, scope, body) rows, in one statement."""
    await conn.execute(
        """INSERT INTO ledger_entries (idx, kind, ref, scope, body)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::ltree[], $5::bytea[])""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        [r[4] for r in rows])


async def tiles(conn: asyncpg.Connection, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not keys:
        return {}
    rows = await conn.fetch(
        """SELECT t.level, t.idx, t.hashes FROM ledger_tiles t
           JOIN unnest($1::smallint[], $2::bigint[]) AS k (level, idx)
             ON k.level = t.level AND k.idx = t.idx""",
        [k[0] for k in keys], [k[1] for k in keys])
    return {(r["level"], r["idx"]): bytes(r["hashes"]) for r in rows}


async def tile(conn: asyncpg.Connection, level: int, idx: int) -> bytes | None:
    value = await conn.fetchval("SELECT hashes FROM ledger_tiles WHERE level = $1 AND idx = $2", level, idx)
    return bytes(value) if value is not None else None


async def put_tiles(conn: asyncpg.Connection, tiles: dict[tuple[int, int], bytes]) -> None:
    if not tiles:
        return
    keys = sorted(tiles)
    await conn.execute(
        """INSERT INTO ledger_tiles (level, idx, hashes)
           SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
           ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes""",
        [k[0] for k in keys], [k[1] for k in keys], [tiles[k] for k in keys])


async def entries(conn: asyncpg.Connection, start: int, end: int) -> list[bytes]:
    rows = await conn.fetch("SELECT body FROM ledger_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                            start, end)
    return [bytes(r["body"]) for r in rows]


async def entries_within(conn: asyncpg.Connection, start: int, end: int, path: str | None,
                         limit: int) -> list[asyncpg.Record]:
    """Entries in [start, end) of a union's subtree and those for every node; every entry when
    ``path`` is None."""
    return await conn.fetch(
        """SELECT idx, body FROM ledger_entries
           WHERE idx >= $1 AND idx < $2 AND ($3::ltree IS NULL OR scope IS NULL OR scope <@ $3::ltree)
           ORDER BY idx LIMIT $4""", start, end, path, limit)


async def entry(conn: asyncpg.Connection, idx: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT idx, kind, ref, scope::text AS scope, body FROM ledger_entries WHERE idx = $1", idx)


async def add_checkpoint(conn: asyncpg.Connection, size: int, root: bytes, note: bytes, at: datetime) -> None:
    await conn.execute("INSERT INTO ledger_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)",
                       size, root, note, at)


async def latest_checkpoint(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT size, root, note, signed_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")


async def checkpoint(conn: asyncpg.Connection, size: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT size, root, note, signed_at FROM ledger_checkpoints WHERE size = $1",
                               size)


async def checkpoints(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT c.size, c.root, c.signed_at,
                  coalesce(array_agg(s.witness ORDER BY s.witness) FILTER (WHERE s.witness IS NOT NULL),
                           '{}') AS witnesses
           FROM (SELECT * FROM ledger_checkpoints ORDER BY size DESC LIMIT $1) c
           LEFT JOIN ledger_cosignatures s ON s.size = c.size
           GROUP BY c.size, c.root, c.signed_at ORDER BY c.size DESC""", limit)


async def add_cosignature(conn: asyncpg.Connection, size: int, witness: str, line: str, at: datetime) -> None:
    await conn.execute(
        """INSERT INTO ledger_cosignatures (size, witness, line, cosigned_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (size, witness) DO NOTHING""", size, witness, line, at)


async def cosignatures(conn: asyncpg.Connection, size: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT witness, line, cosigned_at FROM ledger_cosignatures WHERE size = $1 ORDER BY witness", size)


async def witness_sizes(conn: asyncpg.Connection) -> dict[str, int]:
    """The newest size each witness cosigned."""
    rows = await conn.fetch("SELECT witness, max(size) AS size FROM ledger_cosignatures GROUP BY witness")
    return {r["witness"]: r["size"] for r in rows}


async def final_size(conn: asyncpg.Connection, quorum: int) -> int | None:
    """The largest checkpoint cosigned by at least ``quorum`` witnesses."""
    return await conn.fetchval(
        """SELECT size FROM ledger_cosignatures GROUP BY size HAVING count(*) >= $1
           ORDER BY size DESC LIMIT 1""", quorum)


async def add_alarm(conn: asyncpg.Connection, *, source: str, kind: str, message: str, evidence: dict,
                    at: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO ledger_alarms (source, kind, message, evidence, raised_at)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""", source, kind, message, evidence, at)


async def alarms(conn: asyncpg.Connection, *, open_only: bool, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, source, kind, message, evidence, raised_at, cleared_at, cleared_by FROM ledger_alarms
           WHERE NOT $1 OR cleared_at IS NULL ORDER BY raised_at DESC, id DESC LIMIT $2""", open_only, limit)


async def clear_alarm(conn: asyncpg.Connection, alarm_id: int, cadre_id: int, at: datetime) -> bool:
    return await conn.fetchval(
        """UPDATE ledger_alarms SET cleared_at = $3, cleared_by = $2 WHERE id = $1 AND cleared_at IS NULL
           RETURNING true""", alarm_id, cadre_id, at) or False


async def org_scope(conn: asyncpg.Connection, *, org_id: int | None = None,
                    code: str | None = None) -> asyncpg.Record | None:
    """A union's path and the union codes from the province down to it."""
    return await conn.fetchrow(
        """SELECT o.id, o.code, o.path::text AS path,
                  (SELECT array_agg(a.code ORDER BY nlevel(a.path)) FROM orgs a
                   WHERE a.path @> o.path) AS codes
           FROM orgs o WHERE o.id = $1 OR o.code = $2""", org_id, code)



async def audit_head_entries(conn: asyncpg.Connection) -> list[bytes]:
    """The audit-trail heads recorded in the ledger, oldest first."""
    rows = await conn.fetch("SELECT body FROM ledger_entries WHERE kind = 'audit_head' ORDER BY idx")
    return [bytes(r["body"]) for r in rows]
