"""Lottery draws that anyone can re-check.

When a lottery item is created, a random 32-byte seed is drawn and only its SHA-256 is shown
(``seed_hash``, before the sign-up window opens); the seed itself stays sealed. At the draw, after
the window closes, every entry is ranked by HMAC-SHA256(seed, "<claim id>") — smallest first —
and the first ``stock`` entries win. The seed is then published with the ranked entries, so
anyone can check that SHA-256(seed) is the committed hash and recompute the ranking with
:func:`rank`: the organiser could not pick the seed after seeing the entries, nor the winners
after seeing the seed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import asyncpg

from wxbackend.infra.pii import PersonalData
from wxbackend.services.activities.catalogue import PERMISSION, SEED_COLUMN, Catalogue
from wxbackend.services.activities.notices import Notices
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, NotFound
from wxbackend.store.activities import claims as claims_store
from wxbackend.store.activities import offerings as store


def rank(seed: bytes, entry_ids: Sequence[int]) -> list[int]:
    """The entries in draw order: by HMAC-SHA256(seed, decimal claim id), then by id."""
    return sorted(entry_ids, key=lambda i: (hmac.new(seed, str(i).encode(), hashlib.sha256).digest(), i))


def verify(seed_hash: bytes, seed: bytes, entry_ids: Sequence[int], stock: int) -> list[int]:
    """The winners a published draw must have had; raises ValueError when the seed is not the
    one committed."""
    if not hmac.compare_digest(hashlib.sha256(seed).digest(), seed_hash):
        raise ValueError("the seed does not match the committed hash")
    return rank(seed, entry_ids)[:stock]


class Lottery:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, catalogue: Catalogue,
                 notices: Notices, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now) -> None:
        self._notices = notices
        self._pool = pool
        self._pii = pii
        self._catalogue = catalogue
        self._audit = audit
        self._now = now

    async def draw(self, actor: Actor | None, offering_id: int) -> dict:
        """Draws an item whose window has closed (a cadre of its subtree, or the worker's sweep
        with ``actor`` None); drawing again returns the same record."""
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.get(conn, offering_id, lock=True)
            if row is None or (actor is not None and not actor.covers(row["org_path"])):
                raise NotFound("未找到该活动或服务", code="item_not_found")
            if actor is not None:
                actor.require(PERMISSION[row["kind"]])
            if row["mode"] != "lottery":
                raise Conflict("该项目不是抽签方式", code="not_lottery")
            if row["drawn_at"] is None:
                if row["status"] == "draft" or now < row["closes_at"]:
                    raise Conflict("报名截止后才能抽签", code="draw_too_early")
                seed = bytes.fromhex(self._pii.decrypt(row["seed_sealed"], SEED_COLUMN))
                entries = await claims_store.entries(conn, offering_id)
                winners = rank(seed, entries)[:row["stock"]]
                await claims_store.settle_draw(conn, offering_id, winners,
                                               now + timedelta(minutes=row["hold_minutes"]), now)
                await store.drawn(conn, offering_id, seed, entries, now)
                await self._notices.tell(conn, winners, "won")
                await self._notices.tell(conn, sorted(set(entries) - set(winners)), "lost")
                await self._audit.record(
                    conn, actor_id=actor.id if actor else None,
                    actor=actor.username if actor else "system", org_id=row["org_id"],
                    action=f"{row['kind']}.draw", target=f"offering:{offering_id}",
                    detail={"entries": len(entries), "winners": len(winners)},
                    ip=actor.ip if actor else "")
        return await self.record(offering_id)

    async def record(self, offering_id: int) -> dict:
        """The public record of a draw: the committed hash, and once drawn the seed, every entry
        in draw order and the winners (claim ids: each worker knows their own)."""
        async with self._pool.acquire() as conn:
            row = await store.get(conn, offering_id)
            if row is None or row["status"] == "draft" or row["mode"] != "lottery":
                raise NotFound("未找到该抽签", code="item_not_found")
        out = {"offering_id": offering_id, "seed_hash": row["seed_hash"].hex(), "stock": row["stock"],
               "drawn_at": row["drawn_at"].isoformat() if row["drawn_at"] else None,
               "seed": None, "entries": [], "winners": [],
               "rule": "按 HMAC-SHA256(种子, 报名号) 从小到大排序，前 stock 名中签"}
        if row["drawn_at"] is not None:
            ordered = rank(row["seed"], row["draw_entries"])
            out.update(seed=row["seed"].hex(), entries=ordered, winners=ordered[:row["stock"]])
        return out

    async def draw_due(self) -> int:
        """The worker's round: every lottery whose window closed and is not drawn yet."""
        async with self._pool.acquire() as conn:
            due = await store.due_draws(conn, self._now())
        for offering_id in due:
            await self.draw(None, offering_id)
        return len(due)
