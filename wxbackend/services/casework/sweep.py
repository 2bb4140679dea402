"""The worker's side of deadlines: the sweep (before due, at due, escalation) and the
recomputation of provisional deadlines once a year's calendar is imported.

The sweep advances due rows in batches, each batch one short transaction that writes the
events and the reminders with the stage change (SKIP LOCKED lets every worker process share
it; a worker killed mid-batch rolls the batch back and the next sweep takes it again).
"""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from wxbackend.services.casework.calendar import WorkdayCalendar
from wxbackend.services.casework.engine import Engine, Limit, compute_limit
from wxbackend.services.clock import Clock, china_now
from wxbackend.store.casework import deadlines as store
from wxbackend.store.casework import events as event_store
from wxbackend.store.casework import items as item_store

log = logging.getLogger(__name__)

BATCH = 1000


class DeadlineSweep:
    def __init__(self, pool: asyncpg.Pool, engine: Engine, calendar: WorkdayCalendar, *,
                 now: Clock = china_now, batch: int = BATCH) -> None:
        self._pool = pool
        self._engine = engine
        self._calendar = calendar
        self._now = now
        self._batch = batch

    async def sweep(self) -> int:
        """Advance every deadline whose moment has come; how many were advanced."""
        total = 0
        while True:
            now = self._now()
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await store.claim_due(conn, now, self._batch)
                if rows:
                    await self._tell(conn, rows, now)
            total += len(rows)
            if len(rows) < self._batch:
                return total

    async def _tell(self, conn: asyncpg.Connection, rows: list[asyncpg.Record], now: datetime) -> None:
        """The events of a batch, and its reminders: one per item and stage (an item's own limit
        and its step's often pass together), the candidates found for the whole batch at once."""
        items = {r["id"]: r for r in await item_store.of_items(conn, list({r["item_id"] for r in rows}))}
        events = []
        asks: dict[int, tuple[str, str]] = {}            # item -> (reminder kind, idempotency key)
        escalations: dict[str, list[tuple[int, str]]] = {}   # permission -> [(item, key)]
        for row in rows:
            item = items[row["item_id"]]
            left, reached = row["left_stage"], row["stage"]
            crossed_due = left in {"warn", "due"} and reached in {"escalate", "done"}
            escalated = reached == "done"
            detail = {"deadline": row["id"], "step": row["step_id"], "provisional": row["provisional"]}
            ref = f"item:{item['id']}"
            if crossed_due:
                events.append((ref, item["id"], item["module"], item["org_path"], "overdue", now,
                               None, row["due_at"], detail))
            if escalated:
                events.append((ref, item["id"], item["module"], item["org_path"], "escalated", now,
                               None, row["due_at"], detail))
            key = f"deadline:{row['id']}:{reached}"
            if escalated:
                permission = self._engine.module(item["module"]).permission
                if all(i != item["id"] for i, _ in escalations.get(permission, [])):
                    escalations.setdefault(permission, []).append((item["id"], key))
            elif item["id"] not in asks or crossed_due:
                asks[item["id"]] = ("due" if crossed_due else "warn", key)
        if events:
            await event_store.append_many(conn, events)
        reminders = self._engine.reminders
        if not reminders.enabled:
            return
        if asks:
            await reminders.items(conn, asks)
        for permission, escalated_items in escalations.items():
            await reminders.upper_many(conn, escalated_items, permission)

    async def recompute_provisional(self, year: int | None = None) -> int:
        """After a calendar import: every open provisional deadline is counted again. The old
        row is superseded (kept, with its value), the new one says why, and an item's new time
        limit is an event. Returns how many were recomputed."""
        calendar = await self._calendar.calendar()
        done, after = 0, 0
        while True:
            now = self._now()
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await store.provisional_open(conn, after, 500)
                for old in rows:
                    rule = {"count": old["count"], "unit": old["unit"],
                            "warn": (old["due_at"] - old["warn_at"]).days,
                            "escalate": (old["escalate_at"] - old["due_at"]).days}
                    limit: Limit = compute_limit(calendar, old["starts_on"], rule)
                    if limit.provisional and limit.due_at == old["due_at"]:
                        continue   # still in an unknown year, and the same day: nothing to say
                    step = await self._engine.load(conn, old["item_id"])
                    step.now = now
                    await store.set_status(conn, [old["id"]], "superseded")
                    await self._engine.insert_deadline(conn, step, limit, step_id=old["step_id"],
                                                        reason="recomputed", supersedes=old["id"])
                    await self._engine.event(
                        conn, step, "recomputed",
                        detail={"deadline": old["id"], "previous": old["due_at"].isoformat(),
                                "due": limit.due_at.isoformat(), "provisional": limit.provisional,
                                "year": year})
                    await self._engine.save(conn, step)
                    done += 1
            if len(rows) < 500:
                break
            after = rows[-1]["id"]
        if done:
            log.info("recomputed %d provisional deadlines after the %s calendar import", done, year)
        return done
