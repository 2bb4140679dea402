"""A worker's sign-ups and claims, and what becomes of them: a first-come unit or an approved
place is a hold until the worker confirms it; a hold not confirmed in time lapses and its unit
goes back to the stock, or to the first on the waitlist; a worker may give a place back until the
item's cancel deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from wxbackend.services.activities.admission import Admission
from wxbackend.services.activities.catalogue import Catalogue, window_refusal
from wxbackend.services.activities.gates import Gates
from wxbackend.services.activities.notices import Notices
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, NotFound
from wxbackend.store.activities import claims as store
from wxbackend.store.activities import offerings as offerings_store

log = logging.getLogger(__name__)

STATUS_NAMES = {
    "entered": "已报名，等待抽签", "lost": "未中签", "pending": "已报名，等待审核",
    "waitlisted": "候补中", "rejected": "未通过审核", "held": "已保留，请按时确认",
    "confirmed": "已确认", "used": "已使用", "lapsed": "超时未确认，已失效", "missed": "未按时参加",
    "cancelled": "已取消",
}
_FIRST_STATUS = {"first_come": "held", "lottery": "entered", "review": "pending"}
LAPSE_BATCH = 500


def claim_view(row: asyncpg.Record | dict) -> dict:
    out = {"id": row["id"], "offering_id": row["offering_id"], "status": row["status"],
           "status_name": STATUS_NAMES[row["status"]],
           "hold_until": row["hold_until"].isoformat() if row["hold_until"] else None,
           "created_at": row["created_at"].isoformat()}
    for extra in ("title", "kind", "place", "org_name"):
        if extra in row:
            out[extra] = row[extra]
    for extra in ("starts_at", "ends_at", "cancel_until"):
        if extra in row:
            out[extra] = row[extra].isoformat() if row[extra] else None
    return out


class Signups:
    def __init__(self, pool: asyncpg.Pool, catalogue: Catalogue, admission: Admission,
                 notices: Notices, gates: Gates, *,
                 now: Callable[[], datetime] = china_now) -> None:
        self._gates = gates
        self._pool = pool
        self._catalogue = catalogue
        self._admission = admission
        self._notices = notices
        self._now = now

    async def sign_up(self, account_id: int, offering_id: int, subscribed: object = None) -> dict:
        """Sign up for an activity or claim a unit of a service. Losers are told at once and
        plainly why (sold out, over a cap, not open to them); nothing is written for them.
        ``subscribed``: the Mini Program templates the worker allowed at this tap."""
        item = await self._catalogue.published(offering_id)
        if item is None:
            raise NotFound("未找到该活动或服务", code="item_not_found")
        refused = window_refusal(item, self._now())
        if refused is not None:
            raise refused
        admission_item = self._catalogue.admission_item(item)
        if item["mode"] == "first_come" and await self._admission.sold_out(admission_item):
            raise Conflict("已抢完", code="sold_out")
        await self._catalogue.require_eligible(item, account_id)
        unmet = await self._gates.unmet(item, account_id)
        if unmet is not None:
            raise unmet
        taken = await self._admission.take(admission_item, account_id, _FIRST_STATUS[item["mode"]])
        grants = self._notices.allowed(subscribed)
        async with self._pool.acquire() as conn:
            if grants:
                await store.set_grants(conn, taken.claim_id, grants)
            rows = await store.of_account(conn, account_id, offering_id=offering_id)
        mine = next(r for r in rows if r["id"] == taken.claim_id)
        return claim_view(mine)

    def sold_out_now(self, offering_id: int) -> Conflict | None:
        """The answer to an attempt on an item this process has just seen sold out, given before
        anything is read (no session, no Redis): after a drop's first second, nearly every
        attempt is one of these."""
        return Conflict("已抢完", code="sold_out") if self._admission.seen_sold_out(offering_id) else None

    async def mine(self, account_id: int) -> list[dict]:
        async with self._pool.acquire() as conn:
            return [claim_view(r) for r in await store.of_account(conn, account_id)]

    async def _claim(self, conn: asyncpg.Connection, account_id: int, claim_id: int) -> asyncpg.Record:
        row = await store.get_for_update(conn, claim_id)
        if row is None or row["account_id"] != account_id:
            raise NotFound("未找到该报名记录", code="claim_not_found")
        return row

    async def confirm(self, account_id: int, claim_id: int) -> dict:
        """The worker accepts a held place before its deadline."""
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._claim(conn, account_id, claim_id)
            if row["status"] == "confirmed":
                return claim_view(row)  # a repeated tap
            if row["status"] != "held":
                raise Conflict("该名额不在待确认状态", code="claim_state")
            if row["hold_until"] <= now:
                raise Conflict("已超过确认时限，名额已释放", code="hold_lapsed")
            await store.set_status(conn, claim_id, "confirmed", now)
            row = await store.get_for_update(conn, claim_id)
        return claim_view(row)

    async def cancel(self, account_id: int, claim_id: int) -> dict:
        """The worker gives a place back (or withdraws a registration) before the deadline."""
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._claim(conn, account_id, claim_id)
            item = await self._catalogue.published(row["offering_id"])
            deadline = item["cancel_until"] or item["starts_at"] or item["closes_at"]
            if row["status"] == "cancelled":
                return claim_view(row)
            if row["status"] not in ("entered", "pending", "waitlisted", "held", "confirmed"):
                raise Conflict("该记录不能取消", code="claim_state")
            if now >= deadline:
                raise Conflict("已过取消截止时间", code="cancel_closed")
            held = row["status"] in ("held", "confirmed")
            await store.set_status(conn, claim_id, "cancelled", now)
            if held:
                await store.give_back(conn, row["offering_id"], 1)
                await self._promote(conn, item, 1, now)
            row = await store.get_for_update(conn, claim_id)
        if item["mode"] == "first_come":
            admission_item = self._catalogue.admission_item(item)
            if held:
                await self._admission.returned(admission_item, 1)
            await self._admission.forget(admission_item, account_id)
        return claim_view(row)

    async def _promote(self, conn: asyncpg.Connection, item: dict, units: int, now: datetime) -> int:
        """Freed places of an item with a waitlist go to the first waiting, as holds."""
        if item["mode"] != "review":
            return 0
        until = now + timedelta(minutes=item["hold_minutes"])
        moved = await store.promote(conn, item["id"], units, until, now)
        await self._notices.tell(conn, [r["id"] for r in moved], "promoted")
        return len(moved)

    async def lapse_holds(self) -> int:
        """Holds past their deadline lapse; their units go back to the stock (and the gate) or
        to the waitlist. Runs from the worker; safe to run in several processes at once."""
        return await self._free_in_batches(store.lapse_due, "units")

    async def release_cancelled_accounts(self) -> int:
        """Open places and registrations of cancelled (注销) accounts are withdrawn and their units
        freed: cancellation belongs to the accounts, this sweep keeps the two domains apart."""
        return await self._free_in_batches(store.release_cancelled_accounts, "claims")

    async def _free_in_batches(self, release, counted: str) -> int:
        """Runs ``release(conn, now, limit)`` (rows: offering_id, units freed, …) until a batch
        comes back short; freed units go to each item's waitlist, else back to its gate."""
        now = self._now()
        total = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                freed = await release(conn, now, LAPSE_BATCH)
                back: list[tuple[dict, int]] = []
                for row in freed:
                    item = await self._catalogue.published(row["offering_id"])
                    promoted = await self._promote(conn, item, row["units"], now) if row["units"] else 0
                    back.append((item, row["units"] - promoted))
            for item, units in back:
                if item["mode"] == "first_come" and units:
                    await self._admission.returned(self._catalogue.admission_item(item), units)
            done = sum(r[counted] for r in freed)
            total += done
            if done < LAPSE_BATCH:
                return total

    async def reconcile(self) -> list[dict]:
        """Settles every open first-come item's gate with the record (see
        :meth:`Admission.reconcile`)."""
        async with self._pool.acquire() as conn:
            ids = await offerings_store.gated(conn, self._now())
        done = []
        for offering_id in ids:
            item = await self._catalogue.published(offering_id)
            if item is not None:
                done.append({"offering_id": offering_id,
                             **await self._admission.reconcile(self._catalogue.admission_item(item))})
        return done

    async def sweep(self) -> None:
        """The worker's round: overdue holds lapse, then the gates are reconciled."""
        lapsed = await self.lapse_holds()
        await self.release_cancelled_accounts()
        settled = await self.reconcile()
        if lapsed or any(r.get("returned") for r in settled):
            log.info("activity sweep: %d holds lapsed, gates %s", lapsed, settled)
