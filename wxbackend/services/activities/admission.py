"""First-come drops (抢): who gets one of a few hundred units when thousands ask in one second.

PostgreSQL is the record: ``take_place`` (migration 0011) takes a unit under the item's row lock,
re-checking the stock and every cap, so no unit is ever given twice and no worker gets more than
the caps allow, whatever Redis says. Redis is a gate in front of it so that the losers of a drop
(nearly everyone) are answered without touching PostgreSQL: one Lua script checks the stock and
the worker's counts and takes a unit in Redis, and only admitted workers go on to PostgreSQL.

What the gate keeps per item (one hash tag per item, or per campaign when the item is in one, so
a cluster keeps every key of a script in one slot):

* ``stock`` units left; absent means "not loaded" and the gate is rebuilt from PostgreSQL;
* ``took`` / ``day:<yyyymmdd>`` / campaign ``took``: claims per worker (hashes);
* ``pending``: admissions not yet recorded (ticket -> "account:day:unix ms");
* ``ver``: bumped by every admission and completion, so a reconciliation can tell whether the
  gate moved while it read PostgreSQL.

An admission whose process dies before PostgreSQL recorded it stays ``pending``; the
reconciliation (at start-up and from the worker) gives its unit back once it is older than
``grace`` and has no row. A flush or restart of Redis loses the gate; the next attempt rebuilds it
from PostgreSQL. Either way PostgreSQL's own checks stay the last word: a gate that admits too
many only sends more workers to a refusal there.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg
import redis.asyncio as aioredis

from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, Unavailable
from wxbackend.store.activities import claims as store

log = logging.getLogger(__name__)

# Redis answers for an attempt; >= 0 is the stock left after admitting it.
SOLD_OUT, ITEM_CAP, DAY_CAP, CAMPAIGN_CAP, NOT_LOADED = -1, -2, -3, -4, -9

_ADMIT = """
local stock = redis.call('GET', KEYS[1])
if not stock then return -9 end
stock = tonumber(stock)
if stock <= 0 then return -1 end
local who = ARGV[1]
if tonumber(redis.call('HGET', KEYS[2], who) or '0') >= tonumber(ARGV[2]) then return -2 end
local per_day = tonumber(ARGV[3])
if per_day > 0 and tonumber(redis.call('HGET', KEYS[3], who) or '0') >= per_day then return -3 end
local per_campaign = tonumber(ARGV[4])
if per_campaign > 0 and tonumber(redis.call('HGET', KEYS[4], who) or '0') >= per_campaign then
  return -4
end
redis.call('DECR', KEYS[1])
redis.call('HINCRBY', KEYS[2], who, 1)
if per_day > 0 then
  redis.call('HINCRBY', KEYS[3], who, 1)
  redis.call('EXPIRE', KEYS[3], 172800)
end
if per_campaign > 0 then redis.call('HINCRBY', KEYS[4], who, 1) end
redis.call('HSET', KEYS[5], ARGV[5], who .. ':' .. ARGV[6])
redis.call('INCR', KEYS[6])
return stock - 1
"""

# Recorded in PostgreSQL: the admission is no longer pending.
_COMPLETE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then redis.call('INCR', KEYS[2]) end
return 1
"""

# Not recorded (refused by PostgreSQL, or its process died): undo what the admission counted.
# ARGV: ticket, account, give the unit back (1/0), per-day (0: none), per-campaign (0: none),
# and which count PostgreSQL found full ('item', 'day', 'campaign' or ''), set to its cap so the
# worker's next attempt is refused here.
_UNDO = """
if redis.call('HDEL', KEYS[5], ARGV[1]) == 0 then return 0 end
local who = ARGV[2]
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCR', KEYS[1]) end
redis.call('HINCRBY', KEYS[2], who, -1)
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', KEYS[3], who, -1) end
if tonumber(ARGV[5]) > 0 then redis.call('HINCRBY', KEYS[4], who, -1) end
if ARGV[6] == 'item' then redis.call('HSET', KEYS[2], who, ARGV[7]) end
if ARGV[6] == 'day' then redis.call('HSET', KEYS[3], who, ARGV[4]) end
if ARGV[6] == 'campaign' then redis.call('HSET', KEYS[4], who, ARGV[5]) end
redis.call('INCR', KEYS[6])
return 1
"""

# Rebuild the gate from PostgreSQL's counts. ARGV: stock left, then the number of item, today and
# campaign pairs, then the pairs. Pending admissions are dropped: the counts already hold those
# that were recorded, and those that were not never will be (or PostgreSQL refuses them).
_LOAD = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
if KEYS[4] ~= KEYS[2] then redis.call('DEL', KEYS[4]) end
local n_item, n_day, n_camp = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 5
for _, key in ipairs({{KEYS[2], n_item}, {KEYS[3], n_day}, {KEYS[4], n_camp}}) do
  for _ = 1, key[2] do
    redis.call('HSET', key[1], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
end
redis.call('EXPIRE', KEYS[3], 172800)
redis.call('SET', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[6])
return 1
"""

# Correct the stock when the gate has not moved since ``ver`` was read.
_SET_STOCK = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

OUTCOME_MESSAGES = {
    "sold_out": ("sold_out", "已抢完"),
    "item_cap": ("over_cap", "已达领取上限"),
    "day_cap": ("over_cap", "今日已达领取上限"),
    "campaign_cap": ("over_cap", "已达本次活动的领取上限"),
    "banned": ("banned", "因未按时参加，暂不能报名该单位的活动"),
    "closed": ("closed", "已结束"),
    "not_open": ("not_open", "尚未开始"),
}
_REDIS_OUTCOME = {SOLD_OUT: "sold_out", ITEM_CAP: "item_cap", DAY_CAP: "day_cap",
                  CAMPAIGN_CAP: "campaign_cap"}


def refused(outcome: str) -> Conflict:
    code, message = OUTCOME_MESSAGES[outcome]
    return Conflict(message, code=code)


@dataclass(frozen=True)
class Gate:
    """One item's keys in Redis."""
    stock: str
    took: str
    day: str
    campaign: str
    pending: str
    ver: str

    @classmethod
    def of(cls, offering_id: int, campaign_id: int | None, day: date) -> Gate:
        tag = f"{{cmp:{campaign_id}}}" if campaign_id else f"{{ofr:{offering_id}}}"
        base = f"act:{tag}:{offering_id}"
        return cls(stock=f"{base}:stock", took=f"{base}:took", day=f"{base}:day:{day:%Y%m%d}",
                   campaign=f"act:{tag}:took" if campaign_id else f"{base}:took",
                   pending=f"{base}:pending", ver=f"{base}:ver")

    @property
    def keys(self) -> list[str]:
        return [self.stock, self.took, self.day, self.campaign, self.pending, self.ver]


@dataclass(frozen=True)
class Item:
    """What admission needs of an item (the catalogue caches these per process)."""
    id: int
    campaign_id: int | None
    per_person: int
    per_day: int | None
    campaign_cap: int | None


@dataclass(frozen=True)
class Taken:
    claim_id: int
    remaining: int | None


class Admission:
    """Takes first-come units through the Redis gate; ``gate=False`` goes to PostgreSQL for every
    attempt (the simplest correct design, kept as the benchmark's anchor and as a fallback)."""

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, *,
                 now: Callable[[], datetime] = china_now, gate: bool = True,
                 grace_seconds: float = 30.0, record_timeout: float = 10.0,
                 sold_out_memo: float = 0.5) -> None:
        self._pool = pool
        self._redis = redis
        self._now = now
        self._gate = gate
        self._grace_ms = int(grace_seconds * 1000)
        self._record_timeout = record_timeout
        self._admit = redis.register_script(_ADMIT)
        self._complete = redis.register_script(_COMPLETE)
        self._undo = redis.register_script(_UNDO)
        self._load = redis.register_script(_LOAD)
        self._set_stock = redis.register_script(_SET_STOCK)
        # Items this process saw sold out, until when (monotonic): after a drop's first second
        # nearly every attempt is a loser, answered from here without a Redis round trip. A unit
        # given back in another process is seen here within ``sold_out_memo`` seconds.
        self._sold_out: dict[int, float] = {}
        # Admitted attempts waiting to be recorded, per (item, China day), and one writer per
        # item at a time (the item's row lock would make a second one wait anyway).
        self._batches: dict[tuple[int, date], list] = {}
        self._writing: dict[int, asyncio.Lock] = {}
        self._writers: set[asyncio.Task] = set()
        self._memo = sold_out_memo

    async def sold_out(self, item: Item) -> bool:
        """A cheap look before anything else is read: is the gate loaded and empty?"""
        if not self._gate:
            return False
        if self._sold_out.get(item.id, 0.0) > time.monotonic():
            return True
        left = await self._redis.get(Gate.of(item.id, item.campaign_id, self._now().date()).stock)
        if left is not None and int(left) <= 0:
            self._remember_sold_out(item.id)
            return True
        return False

    def seen_sold_out(self, offering_id: int) -> bool:
        """Did this process see the item sold out within the memo's time? (No I/O: the server's
        front asks this for every attempt.)"""
        return self._sold_out.get(offering_id, 0.0) > time.monotonic()

    def _remember_sold_out(self, offering_id: int) -> None:
        if len(self._sold_out) > 10_000:
            self._sold_out.clear()
        self._sold_out[offering_id] = time.monotonic() + self._memo

    async def take(self, item: Item, account_id: int, status: str = "held") -> Taken:
        """One attempt; raises the refusal (``Conflict`` with the Chinese answer) otherwise."""
        now = self._now()
        ticket = uuid.uuid4()
        if not self._gate or status != "held":
            return await self._record(item, account_id, ticket, now, status)
        gate = Gate.of(item.id, item.campaign_id, now.date())
        args = [account_id, item.per_person, item.per_day or 0, item.campaign_cap or 0, ticket.hex,
                int(time.time() * 1000)]
        for attempt in range(40):
            left = await self._admit(keys=gate.keys, args=args)
            if left != NOT_LOADED:
                break
            if not await self.rebuild(item, now.date()):
                await asyncio.sleep(0.05 * (1 + attempt % 4))  # another process is rebuilding it
        else:
            raise Unavailable("参与人数较多，请稍后再试", code="drop_busy", headers={"Retry-After": "2"})
        if left < 0:
            if left == SOLD_OUT:
                self._remember_sold_out(item.id)
            raise refused(_REDIS_OUTCOME[left])
        # Should this fail (a timeout, a lost connection), whether PostgreSQL recorded it is
        # unknown: the pending entry stays, and the reconciliation settles it either way.
        return await self._record(item, account_id, ticket, now, status, gate=gate)

    async def _record(self, item: Item, account_id: int, ticket: uuid.UUID, now: datetime,
                      status: str, gate: Gate | None = None) -> Taken:
        if gate is not None:
            row = await self._batched(item.id, account_id, ticket, now)
        else:
            async with self._pool.acquire() as conn:
                row = await asyncio.wait_for(
                    store.take(conn, offering_id=item.id, account_id=account_id, ticket=ticket,
                               day=now.date(), now=now, status=status), self._record_timeout)
        outcome = row["outcome"]
        if gate is not None:
            if outcome == "ok":
                await self._complete(keys=[gate.pending, gate.ver], args=[ticket.hex])
            else:
                full = {"item_cap": "item", "day_cap": "day", "campaign_cap": "campaign"}.get(outcome, "")
                await self._undo(keys=gate.keys, args=[
                    ticket.hex, account_id, 0 if outcome == "sold_out" else 1, item.per_day or 0,
                    item.campaign_cap or 0, full, item.per_person])
        if outcome != "ok":
            raise refused(outcome)
        return Taken(claim_id=row["claim_id"], remaining=row["remaining"])

    async def _batched(self, offering_id: int, account_id: int, ticket: uuid.UUID,
                       now: datetime) -> asyncpg.Record:
        """Records an admitted attempt together with the others admitted for the same item
        meanwhile: one transaction, one row lock, one commit for the lot. The batch forms while
        the previous one is being written, so a lone attempt waits for nothing."""
        key = (offering_id, now.date())
        waiting = self._batches.setdefault(key, [])
        done = asyncio.get_running_loop().create_future()
        waiting.append((account_id, ticket, now, done))
        if len(waiting) == 1:
            task = asyncio.ensure_future(self._write_batches(key))
            self._writers.add(task)
            task.add_done_callback(self._writers.discard)
        return await done

    async def _write_batches(self, key: tuple[int, date]) -> None:
        offering_id, day = key
        async with self._writing.setdefault(offering_id, asyncio.Lock()):
            batch = self._batches.pop(key, [])[:]
            if not batch:
                return
            try:
                async with self._pool.acquire() as conn:
                    rows = await asyncio.wait_for(store.take_many(
                        conn, offering_id=offering_id, accounts=[b[0] for b in batch],
                        tickets=[b[1] for b in batch], day=day, now=max(b[2] for b in batch),
                        status="held"), self._record_timeout)
            except BaseException as exc:  # unknown whether it was recorded: reconciliation settles it
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                return
            by_ticket = {row["ticket"]: row for row in rows}
            for _, ticket, _, done in batch:
                if not done.done():
                    done.set_result(by_ticket[ticket])

    # --- keeping the gate equal to the record ------------------------------------------------
    async def rebuild(self, item: Item, day: date) -> bool:
        """Loads the gate from PostgreSQL unless another process is doing it (then False)."""
        gate = Gate.of(item.id, item.campaign_id, day)
        lock = f"{gate.stock}:loading"
        if not await self._redis.set(lock, "1", nx=True, px=5000):
            return False
        try:
            async with self._pool.acquire() as conn:
                counts = await store.counts(conn, item.id, day)
            pairs: list = []
            for part in ("item", "today", "campaign"):
                for account, n in counts[part].items():
                    pairs += [account, n]
            await self._load(keys=gate.keys, args=[
                max(0, counts["remaining"]), len(counts["item"]), len(counts["today"]),
                len(counts["campaign"]) if item.campaign_id else 0, *pairs])
            log.info("admission gate for item %s rebuilt: %s left", item.id, counts["remaining"])
            return True
        finally:
            await self._redis.delete(lock)

    async def reconcile(self, item: Item) -> dict:
        """Settles pending admissions older than the grace period (recorded: done; not recorded:
        their unit and counts go back), then sets the gate's stock to the record's when the gate
        is quiet. Returns what it did."""
        day = self._now().date()
        gate = Gate.of(item.id, item.campaign_id, day)
        if not await self._redis.exists(gate.stock):
            return {"loaded": False}
        settled = returned = 0
        pending = await self._redis.hgetall(gate.pending)
        cutoff = int(time.time() * 1000) - self._grace_ms
        old = {uuid.UUID(t): v for t, v in pending.items() if int(v.rsplit(":", 1)[1]) < cutoff}
        if old:
            async with self._pool.acquire() as conn:
                _, found = await store.existing_tickets(conn, item.id, list(old))
            for ticket, value in old.items():
                if ticket in found:
                    await self._complete(keys=[gate.pending, gate.ver], args=[ticket.hex])
                    settled += 1
                else:
                    account = value.split(":", 1)[0]
                    returned += await self._undo(keys=gate.keys, args=[
                        ticket.hex, account, 1, item.per_day or 0, item.campaign_cap or 0, "",
                        item.per_person])
        ver = await self._redis.get(gate.ver)
        waiting = [uuid.UUID(t) for t in await self._redis.hkeys(gate.pending)]
        async with self._pool.acquire() as conn:
            remaining, found = await store.existing_tickets(conn, item.id, waiting)
        expected = max(0, remaining - (len(waiting) - len(found)))
        corrected = await self._set_stock(keys=[gate.stock, gate.ver],
                                          args=[ver if ver is not None else "", expected])
        return {"loaded": True, "settled": settled, "returned": returned,
                "stock": expected if corrected else None}

    async def returned(self, item: Item, units: int) -> None:
        """Units the record gave back (lapsed or cancelled holds) go back to the gate too; a
        gate that is not loaded is rebuilt from the record anyway."""
        if self._gate and units:
            self._sold_out.pop(item.id, None)
            gate = Gate.of(item.id, item.campaign_id, self._now().date())
            await self._redis.eval(
                "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], ARGV[1]) end "
                "redis.call('INCR', KEYS[2]) return 1", 2, gate.stock, gate.ver, units)

    async def forget(self, item: Item, account_id: int) -> None:
        """A worker gave a place back: it no longer counts against their caps in the gate."""
        if self._gate:
            gate = Gate.of(item.id, item.campaign_id, self._now().date())
            await self._redis.hincrby(gate.took, str(account_id), -1)
            if item.campaign_id:
                await self._redis.hincrby(gate.campaign, str(account_id), -1)

