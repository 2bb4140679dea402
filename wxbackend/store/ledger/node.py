"""SQL of a city node: its witness state, its mirror's verified copy, the evidence it keeps."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def lock_witness(conn: asyncpg.Connection, origin: str, empty_root: bytes,
                       at: datetime) -> asyncpg.Record:
    """The witness's state for ``origin``, row-locked until the caller's transaction ends (the
    check and the update of a cosignature are one step). A new origin starts at size 0."""
    await conn.execute(
        """INSERT INTO node_witness (origin, size, root, note, updated_at) VALUES ($1, 0, $2, '', $3)
           ON CONFLICT (origin) DO NOTHING""", origin, empty_root, at)
    return await conn.fetchrow(
        "SELECT size, root, note, updated_at FROM node_witness WHERE origin = $1 FOR UPDATE", origin)


async def set_witness(conn: asyncpg.Connection, origin: str, size: int, root: bytes, note: bytes,
                      at: datetime) -> None:
    await conn.execute("UPDATE node_witness SET size = $2, root = $3, note = $4, updated_at = $5 "
                       "WHERE origin = $1", origin, size, root, note, at)


async def witness(conn: asyncpg.Connection, origin: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT size, root, note, updated_at FROM node_witness WHERE origin = $1",
                               origin)


async def lock_mirror(conn: asyncpg.Connection, origin: str, empty_root: bytes, empty_edge: bytes,
                      at: datetime) -> asyncpg.Record:
    await conn.execute(
        """INSERT INTO node_mirror (origin, size, root, edge, note, updated_at) VALUES ($1, 0, $2, $3, '', $4)
           ON CONFLICT (origin) DO NOTHING""", origin, empty_root, empty_edge, at)
    return await conn.fetchrow("SELECT size, root, edge, note FROM node_mirror WHERE origin = $1 FOR UPDATE",
                               origin)


async def mirror(conn: asyncpg.Connection, origin: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT size, root, edge, note, updated_at FROM node_mirror WHERE origin = $1",
                               origin)


async def advance_mirror(conn: asyncpg.Connection, origin: str, *, size: int, root: bytes, edge: bytes,
                         note: bytes, at: datetime, entries: list[tuple[int, bytes]]) -> None:
    """Store the verified entries and the new verified size together."""
    if entries:
        await conn.execute(
            """INSERT INTO node_entries (origin, idx, body)
               SELECT $1, * FROM unnest($2::bigint[], $3::bytea[])""",
            origin, [e[0] for e in entries], [e[1] for e in entries])
    await conn.execute("UPDATE node_mirror SET size = $2, root = $3, edge = $4, note = $5, updated_at = $6 "
                       "WHERE origin = $1", origin, size, root, edge, note, at)


async def entries(conn: asyncpg.Connection, origin: str, start: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT idx, body FROM node_entries WHERE origin = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
        origin, start, limit)


async def count_entries(conn: asyncpg.Connection, origin: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM node_entries WHERE origin = $1", origin)


async def add_evidence(conn: asyncpg.Connection, origin: str, kind: str, message: str, evidence: dict,
                       at: datetime) -> int:
    return await conn.fetchval(
        """INSERT INTO node_evidence (origin, kind, message, evidence, seen_at) VALUES ($1, $2, $3, $4, $5)
           RETURNING id""", origin, kind, message, evidence, at)


async def unreported(conn: asyncpg.Connection, limit: int = 50) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, origin, kind, message, evidence, seen_at FROM node_evidence WHERE reported_at IS NULL
           ORDER BY id LIMIT $1""", limit)


async def mark_reported(conn: asyncpg.Connection, ids: list[int], at: datetime) -> None:
    await conn.execute("UPDATE node_evidence SET reported_at = $2 WHERE id = ANY($1::bigint[])", ids, at)


async def count_evidence(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM node_evidence")
