"""Registration with review (报名审核): the organiser approves or rejects each registration.
An approval takes a place while there is one (a hold the worker confirms), else puts the worker
on the waitlist, which moves up by itself when a place frees (:mod:`.signups`). After an activity
ends, confirmed places that were never used are no-shows: with ``no_show_ban_days`` set, the worker
may not sign up with that organiser for that many days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from wxbackend.services.activities.catalogue import PERMISSION
from wxbackend.services.activities.notices import Notices
from wxbackend.services.activities.signups import claim_view
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, InvalidInput, NotFound
from wxbackend.store.activities import claims as claims_store
from wxbackend.store.activities import offerings as store

REASON_MAX = 200


class Registrations:
    def __init__(self, pool: asyncpg.Pool, notices: Notices, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now) -> None:
        self._notices = notices
        self._pool = pool
        self._audit = audit
        self._now = now

    async def _locked(self, conn: asyncpg.Connection, actor: Actor,
                      claim_id: int) -> tuple[asyncpg.Record, asyncpg.Record]:
        """The claim's item (row-locked: approvals of one item take places one at a time) and
        the claim, both within the actor's subtree and permission."""
        offering_id = await claims_store.offering_of(conn, claim_id)
        row = await store.get(conn, offering_id, lock=True) if offering_id else None
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("未找到该报名记录", code="claim_not_found")
        actor.require(PERMISSION[row["kind"]])
        claim = await claims_store.get_for_update(conn, claim_id)
        if row["mode"] != "review":
            raise Conflict("该项目不需要审核", code="not_review")
        return row, claim

    async def approve(self, actor: Actor, claim_id: int) -> dict:
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row, claim = await self._locked(conn, actor, claim_id)
            if claim["status"] != "pending":
                raise Conflict("该报名已处理", code="claim_state")
            if row["taken"] < row["stock"]:
                await claims_store.set_status(conn, claim_id, "held", now,
                                              hold_until=now + timedelta(minutes=row["hold_minutes"]))
                await claims_store.give_back(conn, row["id"], -1)
            else:
                await claims_store.set_status(conn, claim_id, "waitlisted", now)
            claim = await claims_store.get_for_update(conn, claim_id)
            await self._notices.tell(conn, [claim_id],
                                     "approved" if claim["status"] == "held" else "waitlisted")
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=row["org_id"], action=f"{row['kind']}.approve",
                                     target=f"signup:{claim_id}",
                                     detail={"offering_id": row["id"], "status": claim["status"]},
                                     ip=actor.ip)
        return claim_view(claim)

    async def reject(self, actor: Actor, claim_id: int, reason: str) -> dict:
        reason = (reason or "").strip()
        if not reason or len(reason) > REASON_MAX:
            raise InvalidInput(f"请填写不通过的原因（不超过 {REASON_MAX} 字）", code="reason_missing")
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row, claim = await self._locked(conn, actor, claim_id)
            if claim["status"] not in ("pending", "waitlisted"):
                raise Conflict("该报名已处理", code="claim_state")
            await claims_store.set_status(conn, claim_id, "rejected", now)
            claim = await claims_store.get_for_update(conn, claim_id)
            await self._notices.tell(conn, [claim_id], "rejected")
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=row["org_id"], action=f"{row['kind']}.reject",
                                     target=f"signup:{claim_id}",
                                     detail={"offering_id": row["id"], "reason": reason}, ip=actor.ip)
        return claim_view(claim)

    async def ban_no_shows(self) -> int:
        """Confirmed places of items that ended a while ago and were never used: the worker
        may not sign up with that organiser for the item's ``no_show_ban_days``. Each no-show is
        banned once (the claim is marked ``missed``)."""
        async with self._pool.acquire() as conn, conn.transaction():
            return len(await claims_store.ban_no_shows(conn, self._now()))
