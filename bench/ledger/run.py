"""The base-data ledger at the province's scale, on this machine:

1. **Appends**: 1,000,000 base-data changes generated in PostgreSQL, then the integrator
   (``LedgerLog.integrate``, the default batch of 5,000, one signed checkpoint per batch) run
   until the queue is empty: entries per second, the time per batch, memory. Then the largest
   batch that integrates within a second (a checkpoint signed every second).
2. **Catch-up**: a city node for 成都 (``wxbackend node``, its own embedded PostgreSQL, empty)
   following the 1,000,000-entry log from the province's server (``wxbackend serve``, another
   process): time, entries held, the node process's peak memory.
3. **Proofs** at that size: ``LedgerLog.inclusion`` and ``consistency`` (tiles read from
   PostgreSQL) and their verification (``tlog.verify_inclusion``, ``verify_consistency``), µs.
4. **Lag**: a fresh province serving with its worker (integrating every 0.2 s, pushing each
   checkpoint to the nodes of 成都, 绵阳 and 达州, quorum 2) and the three ``wxbackend node``
   processes, each with its own embedded PostgreSQL, under 200 changes a second for 60 s, each in
   its own transaction, evenly spaced and then at random moments (Poisson): the lag of every
   change at every node, and the time to quorum. Target: p99 under 1 s.

    .venv/bin/python bench/ledger/run.py       # from the repository root [--entries 1000000]
                                               # [--rate 200] [--seconds 60] [--no-docs]
    .venv/bin/python bench/ledger/run.py --render bench/results/ledger/<time>/summary.json
                                               # write the section again from a run's results

The changes are base-data changes of the real union tree (the province, its 21 cities, the
industry unions and the 183 county unions of ``sichuan_regions.csv``), the share of each city in
proportion to its registered-user target (``registered_user_targets.csv``), split evenly
between the city union and its counties. Times are read from PostgreSQL: a change's commit and
a node's verified size come from the commit timestamps (``track_commit_timestamp``) of the
province's and the node's own databases, on the same clock. Results go to
``bench/results/ledger/<time>/`` and the section "Base-data ledger" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import datetime as dt
import itertools
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

kpi = load_script(ROOT / "bench" / "kpi" / "run.py", "kpi_run")
demo = load_script(ROOT / "deploy" / "ledger_demo.py", "ledger_demo")
oa = kpi.oa

from wxbackend.infra.db import connect, create_pool  # noqa: E402
from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.infra.migrations import migrate  # noqa: E402
from wxbackend.infra.pii import new_key  # noqa: E402
from wxbackend.services.ledger import tlog  # noqa: E402
from wxbackend.services.ledger.client import ProvinceClient  # noqa: E402
from wxbackend.services.ledger.entries import encode  # noqa: E402
from wxbackend.services.ledger.log import BATCH, LedgerLog, TileCache, edge_keys, grow  # noqa: E402
from wxbackend.services.ledger.notes import COSIGNATURE_V1, Checkpoint, Signer, sign_note  # noqa: E402
from wxbackend.services.seed import _csv, seed  # noqa: E402
from wxbackend.store.identity.accounts import log_change  # noqa: E402
from wxbackend.store.ledger import log as ledger_store  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ledger"
SECTION = "## Base-data ledger (bench/ledger/run.py)"
ORIGIN = demo.ORIGIN
QUORUM = demo.QUORUM
CATCH_UP = ("chengdu", "SC-510100")
# Benchmarks that would share the cores with this one; waited for before starting.
OTHERS = ("bench/kpi/run.py", "ledger_demo")
PROVINCE_SHARE = 0.01          # of the changes, on the province's own union
log = oa.log
pct = kpi.pct


def us_stats(values_ns: list[int]) -> dict:
    values = [v / 1000 for v in values_ns]
    return {"n": len(values), "p50_us": pct(values, 50), "p99_us": pct(values, 99), "max_us": max(values),
            "mean_us": statistics.fmean(values)}


def s_stats(values: list[float]) -> dict:
    return {"n": len(values), "p50_s": pct(values, 50), "p99_s": pct(values, 99), "max_s": max(values),
            "mean_s": statistics.fmean(values)}


# --- the machine ------------------------------------------------------------------------------
def _pgrep(pattern: str) -> list[int]:
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    mine = {os.getpid(), os.getppid()}
    return [int(p) for p in done.stdout.split() if int(p) not in mine]


def wait_for_others(timeout: float) -> None:
    """Another benchmark or the demo on this machine would take the cores: wait for it."""
    deadline = time.monotonic() + timeout
    said = False
    while busy := {p: pid for p in OTHERS for pid in _pgrep(p)}:
        if time.monotonic() > deadline:
            raise oa.BenchError(f"still running after {timeout:.0f} s: {', '.join(busy)}")
        if not said:
            log(f"waiting for {', '.join(busy)} to finish (checking every 30 s)")
            said = True
        time.sleep(30)


def tree_seconds(pid: int) -> float:
    """CPU seconds of a process and its descendants, the exited ones included."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    own = sum(int(f) for f in fields[11:15]) / oa._TICK
    return own + sum(tree_seconds(c) for c in kpi._children(pid))


def postmaster_of(pid: int) -> int | None:
    """The PostgreSQL server a process started (its child running ``postgres``)."""
    for child in kpi._children(pid):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/comm").read_text().strip() == "postgres":
                return child
    return None


class Peak:
    """Peak memory of a running process (its kernel high-water mark, read at the end) and of
    its PostgreSQL server's processes' private memory, sampled every 50 ms."""

    def __init__(self, pid: int, postmaster: int | None) -> None:
        self.pid = pid
        self.postmaster = postmaster
        self.pg_sum = 0
        self.rss_max = 0
        self.start = kpi._status(pid).get("VmRSS", 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.rss_max = max(self.rss_max, kpi._status(self.pid).get("VmRSS", 0))
            if self.postmaster:
                self.pg_sum = max(self.pg_sum, sum(kpi._status(p).get("RssAnon", 0)
                                                   for p in kpi._children(self.postmaster)))
            self._stop.wait(0.05)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        status = kpi._status(self.pid)
        return {"process_peak_mib": status.get("VmHWM", self.rss_max) / 2**20,
                "process_start_mib": self.start / 2**20,
                "process_now_mib": status.get("VmRSS", 0) / 2**20,
                "pg_private_peak_mib": self.pg_sum / 2**20}


# --- databases --------------------------------------------------------------------------------
# A node's verified and cosigned sizes as they change, with the transaction that changed them:
# its commit time (track_commit_timestamp) is when the size became what the node holds.
HISTORY = """
CREATE TABLE IF NOT EXISTS bench_sizes (kind text NOT NULL, size bigint NOT NULL, xact xid8 NOT NULL);
CREATE OR REPLACE FUNCTION bench_sizes_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_sizes VALUES (TG_ARGV[0], NEW.size, pg_current_xact_id());
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS bench_mirror ON node_mirror;
CREATE TRIGGER bench_mirror AFTER INSERT OR UPDATE ON node_mirror
    FOR EACH ROW EXECUTE FUNCTION bench_sizes_keep('verified');
DROP TRIGGER IF EXISTS bench_witness ON node_witness;
CREATE TRIGGER bench_witness AFTER INSERT OR UPDATE ON node_witness
    FOR EACH ROW EXECUTE FUNCTION bench_sizes_keep('cosigned');
"""


@contextlib.contextmanager
def database(data_dir: Path, *, redis: bool = False) -> Iterator[EmbeddedServers]:
    """An embedded PostgreSQL (and Redis) that records commit timestamps: started once to set
    it (it needs a restart), then again for use."""
    with EmbeddedServers(data_dir, want_postgres=True, want_redis=False) as first:
        asyncio.run(_execute(first.dsn, "ALTER SYSTEM SET track_commit_timestamp = on"))
    with EmbeddedServers(data_dir, want_postgres=True, want_redis=redis) as servers:
        yield servers


async def _execute(dsn: str, *sql: str) -> None:
    conn = await connect(dsn)
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


def prepare_node(data_dir: Path) -> None:
    """A node's database, created, migrated and recording its sizes, before the node starts."""
    with database(data_dir) as servers:
        asyncio.run(_prepare_node(servers.dsn))


async def _prepare_node(dsn: str) -> None:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(HISTORY)
    finally:
        await conn.close()


def node_dsn(data_dir: Path) -> str:
    """The DSN of the PostgreSQL a running node started under ``data_dir``."""
    port = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[3].strip()
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


async def node_sizes(data_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """(size, commit time) of each size a node reached, verified and cosigned, in order."""
    conn = await connect(node_dsn(data_dir))
    try:
        rows = await conn.fetch(
            """SELECT kind, size, extract(epoch FROM pg_xact_commit_timestamp(xid(xact)))::float8 AS at
               FROM bench_sizes WHERE size > 0 ORDER BY kind, size, at""")
        held = await conn.fetchval("SELECT count(*) FROM node_entries")
        db_bytes = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    out: dict[str, list[tuple[int, float]]] = {"verified": [], "cosigned": []}
    for r in rows:
        if r["at"] is not None and (not out[r["kind"]] or r["size"] > out[r["kind"]][-1][0]):
            out[r["kind"]].append((r["size"], r["at"]))
    return {**out, "held": held, "db_bytes": db_bytes}


async def add_counties(conn: asyncpg.Connection) -> int:
    """The 183 county unions under their cities (seed() makes the province and the cities)."""
    counties = [r for r in _csv("sichuan_regions.csv") if r["level"] == "county"]
    await conn.executemany(
        """INSERT INTO orgs (parent_id, code, name, kind, division_code, path)
           SELECT c.id, 'SC-' || $1, $2 || '总工会', 'county', $1, '0' FROM orgs c
           WHERE c.code = 'SC-' || $3""",
        [(r["code"], r["name"], r["city_code"]) for r in counties])
    await conn.execute(
        """UPDATE orgs o SET path = (p.path::text || '.' || o.id)::ltree FROM orgs p
           WHERE o.kind = 'county' AND p.id = o.parent_id""")
    return len(counties)


async def units(conn: asyncpg.Connection) -> list[tuple[int, float, str]]:
    """(org id, share of the changes, city code or '') of every union a change may be about: a
    city's share (its registered-user target's) split between the city union and its counties,
    each provincial industry union's its own, and a little for the province's union."""
    targets = {r["unit"]: float(r["total"]) for r in _csv("registered_user_targets.csv")}
    total = sum(targets.values())
    rows = await conn.fetch(
        """SELECT o.id, o.kind, o.short_name, o.code,
                  (SELECT count(*) FROM orgs c WHERE c.parent_id = o.id AND c.kind = 'county') AS counties
           FROM orgs o WHERE o.kind IN ('province', 'city', 'industry', 'industry_holder') ORDER BY o.id""")
    out: list[tuple[int, float, str]] = []
    for r in rows:
        if r["kind"] == "province":
            out.append((r["id"], PROVINCE_SHARE, ""))
            continue
        unit = r["short_name"] if r["kind"] != "industry_holder" else next(
            u for u in targets if u.startswith("其他省产业"))
        share = targets[unit] / total * (1 - PROVINCE_SHARE)
        if r["kind"] != "city":
            out.append((r["id"], share, ""))
            continue
        parts = 1 + r["counties"]
        out.append((r["id"], share / parts, r["code"]))
        counties = await conn.fetch("SELECT id FROM orgs WHERE parent_id = $1 AND kind = 'county'", r["id"])
        out += [(county["id"], share / parts, r["code"]) for county in counties]
    return out


async def make_units_table(conn: asyncpg.Connection, spread: list[tuple[int, float, str]]) -> None:
    hi, acc = [], 0.0
    for _, share, _ in spread:
        acc += share
        hi.append(acc)
    hi[-1] = 2.0            # past every r in [0, 1), whatever the rounding
    await conn.execute("CREATE TABLE bench_units (hi float8 PRIMARY KEY, org_id bigint NOT NULL)")
    await conn.execute("INSERT INTO bench_units SELECT * FROM unnest($1::float8[], $2::bigint[])",
                       hi, [u[0] for u in spread])
    await conn.execute("ANALYZE bench_units")


async def generate(conn: asyncpg.Connection, first: int, last: int) -> None:
    """Changes ``first`` … ``last`` (one per union picked by a fixed pseudo-random number), each
    naming the fields a cadre changed, as the product's change log does; the statement trigger
    queues them for the ledger."""
    await conn.execute(
        """INSERT INTO base_data_changes (entity, entity_id, action, data, actor, created_at)
           SELECT 'org', u.org_id::text, 'updated',
                  jsonb_build_object('fields', (ARRAY['["name"]', '["short_name"]', '["contact"]',
                                                      '["name", "short_name"]'])[1 + g % 4]::jsonb,
                                     'seq', g),
                  'cadre:' || (1 + g % 997), now() - interval '1 day' + g * interval '20 ms'
           FROM generate_series($1::bigint, $2::bigint) g
           CROSS JOIN LATERAL (SELECT org_id FROM bench_units
                               WHERE hi > (hashint8(g)::float8 + 2147483648) / 4294967296
                               ORDER BY hi LIMIT 1) u""", first, last)


# --- processes --------------------------------------------------------------------------------
def province_config(path: Path, *, data_dir: Path, port: int, servers: EmbeddedServers, key: Signer,
                    nodes: list, worker: bool) -> Path:
    """The province's config: as deploy/ledger_demo.py's, on the given database and Redis."""
    witnesses = ", ".join(f'"{n.signer.verifier().vkey()} {n.url}/witness"' for n in nodes)
    path.write_text(f"""# Written by bench/ledger/run.py for one benchmark run.
[server]
address = "127.0.0.1"
port = {port}
data_dir = "{data_dir}"
public_url = "http://127.0.0.1:{port}"
run_worker = {"true" if worker else "false"}

[database]
dsn = "{servers.dsn}"

[redis]
url = "{servers.redis_url}"

[wechat]
appid = "wxledgerbench000"
secret = "{"0" * 32}"
token = "ledgerbench"
encoding_aes_key = "{"a" * 43}"
original_id = "gh_ledgerbench"

[security]
field_keys = "1:{new_key()}"
field_key_current = 1
index_key = "{base64.b64encode(os.urandom(32)).decode()}"
audit_key = "{base64.b64encode(os.urandom(32)).decode()}"

[ledger]
origin = "{ORIGIN}"
signing_key = "{key.skey()}"
quorum = {QUORUM}
witnesses = [{witnesses}]

[logging]
level = "WARNING"
json = false
""", encoding="utf-8")
    path.chmod(0o600)
    return path


def node_app(config: Path, node) -> None:
    """The node's access entrance at the province (scope ledger.node), as the platform office
    registers it; keeps the secret on ``node``."""
    out = oa.wxbackend(config, "platform", "app", "create", "--app-id", f"node-{node.name}",
                       "--name", f"{node.name} 城市节点", "--org", node.code, "--scopes", "ledger.node")
    node.app_secret = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("secret: "))


def serve(config: Path, port: int, out: Path, *, worker: bool) -> oa.Proc:
    proc = oa.Proc("province", [str(oa.PROJECT_BIN / "wxbackend"), "--config", str(config), "serve",
                                "--port", str(port), *([] if worker else ["--no-worker"])],
                   out / "province.log", cwd=ROOT)
    oa.wait_ready(proc, lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200)
    return proc


def start_node(config: Path, node, out: Path) -> oa.Proc:
    return oa.Proc(node.name, [str(oa.PROJECT_BIN / "wxbackend"), "--config", str(config), "node"],
                   out / f"node-{node.name}.log", cwd=ROOT)


def node_ready(proc: oa.Proc, node) -> float:
    """Waits for the node's HTTP side; the time it answered."""
    oa.wait_ready(proc, lambda: httpx.get(node.url + "/healthz", timeout=2).status_code == 200)
    return time.time()


def make_node(name: str, code: str) -> demo.CityNode:
    return demo.CityNode(name, code, "", oa.free_port(), Signer.generate(f"{name}.node", COSIGNATURE_V1))


# --- 1. appends -------------------------------------------------------------------------------
async def appends(dsn: str, key: Signer, args: argparse.Namespace) -> dict:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await seed(conn)
        counties = await add_counties(conn)
        spread = await units(conn)
        await make_units_table(conn, spread)
        # What the seed itself logged goes first, as in production.
        seeded = await conn.fetchval("SELECT count(*) FROM ledger_queue")
        t = time.perf_counter()
        step = 100_000
        for first in range(1, args.entries + 1, step):
            await generate(conn, first, min(first + step - 1, args.entries))
        await conn.execute("VACUUM ANALYZE base_data_changes")
        await conn.execute("VACUUM ANALYZE ledger_queue")
        generated = time.perf_counter() - t
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        postmaster = kpi._parent(backend)
    finally:
        await conn.close()
    log(f"{args.entries:,} changes generated and queued in {generated:.0f} s")

    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        ledger = LedgerLog(pool, origin=ORIGIN, signer=key, batch=args.batch)
        times: list[float] = []
        sizes: list[int] = []
        with kpi.Memory(postmaster) as mem:
            started = time.perf_counter()
            while True:
                t = time.perf_counter()
                signed = await ledger.integrate()
                if signed is None:
                    break
                times.append(time.perf_counter() - t)
                sizes.append(signed.size)
                if len(times) % 50 == 0:
                    log(f"  {signed.size:,} entries, last batch {times[-1] * 1000:.0f} ms")
            total = time.perf_counter() - started
        async with pool.acquire() as conn:
            size = await conn.fetchval("SELECT max(size) FROM ledger_checkpoints")
            tables = {t: await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", t)
                      for t in ("ledger_entries", "ledger_tiles", "ledger_checkpoints")}
            body = await conn.fetchval("SELECT avg(length(body)) FROM ledger_entries")
    finally:
        await pool.close()
    entries = size
    result = {"entries": entries, "generated": args.entries, "seeded_changes": seeded, "counties": counties,
              "units": len(spread), "generate_s": generated, "batch": args.batch, "batches": len(times),
              "seconds": total, "per_second": entries / total, "batch_s": s_stats(times),
              "batch_times_s": times, "avg_entry_bytes": float(body),
              "table_mib": {k: v / 2**20 for k, v in tables.items()}, **mem.result()}
    log(f"integrated {entries:,} entries in {total:.1f} s: {entries / total:,.0f} entries/s; batch p50 "
        f"{result['batch_s']['p50_s'] * 1000:.0f} ms, p99 {result['batch_s']['p99_s'] * 1000:.0f} ms")
    return result


async def largest_batch(dsn: str, key: Signer, args: argparse.Namespace, first: int) -> dict:
    """The largest batch that integrates within 1 s, worst of ``runs`` batches: doubled from the
    default until one is too slow, then halved down the gap. Every batch is fresh changes."""
    pool = await create_pool(dsn, min_size=1, max_size=4)
    trials: list[dict] = []
    next_g = first

    async def trial(batch: int) -> float:
        nonlocal next_g
        async with pool.acquire() as conn:
            await generate(conn, next_g, next_g + batch * args.sweep_runs - 1)
            await conn.execute("ANALYZE ledger_queue")
        next_g += batch * args.sweep_runs
        ledger = LedgerLog(pool, origin=ORIGIN, signer=key, batch=batch)
        times = []
        for _ in range(args.sweep_runs):
            t = time.perf_counter()
            signed = await ledger.integrate()
            times.append(time.perf_counter() - t)
            assert signed is not None
        trials.append({"batch": batch, "times_s": times, "worst_s": max(times)})
        log(f"  batch {batch:,}: worst {max(times):.2f} s of {args.sweep_runs}")
        return max(times)

    try:
        good, bad = 0, 0
        batch = args.batch
        while batch <= args.sweep_max:
            if await trial(batch) > 1.0:
                bad = batch
                break
            good, batch = batch, batch * 2
        low, high = good, bad
        while bad and high - low > max(1000, low // 8):
            middle = (low + high) // 2 // 500 * 500
            if await trial(middle) > 1.0:
                high = middle
            else:
                low = middle
        async with pool.acquire() as conn:
            size = await conn.fetchval("SELECT max(size) FROM ledger_checkpoints")
    finally:
        await pool.close()
    best = next((t for t in trials if t["batch"] == low), None)
    return {"largest": low, "worst_s": best["worst_s"] if best else None, "first_too_slow": high or None,
            "runs": args.sweep_runs, "trials": trials, "size_after": size}


class _Capture:
    """Stands in for a connection to catch the SQL a store function sends."""

    async def fetch(self, sql: str, *args: object) -> list:
        self.sql, self.args = sql, args
        return []


async def anatomy(dsn: str, key: Signer, args: argparse.Namespace, first: int, out: Path) -> dict:
    """Where a batch's time goes: the integrator's steps one by one, as ``LedgerLog.integrate``
    takes them, on a batch of fresh changes, each time rolled back (median of 3); then the batch
    is integrated for real. The plan of the queue's read is kept."""
    conn = await connect(dsn)
    steps: dict[str, list[float]] = {}
    try:
        await generate(conn, first, first + args.batch - 1)
        await conn.execute("ANALYZE ledger_queue")
        size = await conn.fetchval("SELECT max(size) FROM ledger_checkpoints")
        for _ in range(3):
            clock = time.perf_counter()

            def lap(name: str) -> None:
                nonlocal clock
                now = time.perf_counter()
                steps.setdefault(name, []).append(now - clock)
                clock = now

            tr = conn.transaction()
            await tr.start()
            try:
                rows = await ledger_store.take_queued(conn, args.batch)
                lap("take_queued (SQL)")
                bodies = [encode(r) for r in rows]
                lap("encode (canonical JSON)")
                leaves = [tlog.leaf_hash(b) for b in bodies]
                lap("leaf hashes")
                tiles = await ledger_store.tiles(conn, edge_keys(size))
                changed = grow(tiles, size, leaves)
                root = tlog.CompactRange.from_perfect(size + len(bodies), TileCache(tiles).perfect).root()
                note = sign_note(Checkpoint(ORIGIN, size + len(bodies), root).body(), key)
                lap("tiles, root and signature")
                await ledger_store.add_entries(conn, [(size + i, r["kind"], r["ref"], r["scope"], bodies[i])
                                                      for i, r in enumerate(rows)])
                lap("add_entries (SQL)")
                await ledger_store.put_tiles(conn, changed)
                await ledger_store.add_checkpoint(conn, size + len(bodies), root, note,
                                                  dt.datetime.now(dt.UTC))
                lap("put_tiles, add_checkpoint (SQL)")
            finally:
                await tr.rollback()
        # The plan of the queue's read, its SQL as the store sends it (the statement deletes: rolled back).
        query = _Capture()
        await ledger_store.take_queued(query, args.batch)
        tr = conn.transaction()
        await tr.start()
        try:
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query.sql, *query.args)
        finally:
            await tr.rollback()
        (out / "explain-take_queued.txt").write_text("\n".join(r[0] for r in plan) + "\n", encoding="utf-8")
    finally:
        await conn.close()
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        await LedgerLog(pool, origin=ORIGIN, signer=key, batch=args.batch).integrate()
    finally:
        await pool.close()
    result = {name: statistics.median(v) for name, v in steps.items()}
    log("a batch's steps: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.items()))
    return {"batch": args.batch, "size": size, "steps_s": result, "next": first + args.batch}


# --- 3. proofs --------------------------------------------------------------------------------
async def proofs(dsn: str, key: Signer, args: argparse.Namespace) -> dict:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    rng = random.Random(14)
    try:
        ledger = LedgerLog(pool, origin=ORIGIN, signer=key)
        latest = await ledger.latest()
        size, root = latest.size, latest.root
        indexes = [rng.randrange(size) for _ in range(args.proofs)]
        async with pool.acquire() as conn:
            bodies = {r["idx"]: bytes(r["body"]) for r in await conn.fetch(
                "SELECT idx, body FROM ledger_entries WHERE idx = ANY($1::bigint[])", indexes)}
            roots = {r["size"]: bytes(r["root"]) for r in await conn.fetch(
                "SELECT size, root FROM ledger_checkpoints WHERE size > 0 AND size < $1", size)}
        olds = sorted(roots)
        make, check, lengths = [], [], []
        for index in indexes:
            t = time.perf_counter_ns()
            path = await ledger.inclusion(index, size)
            make.append(time.perf_counter_ns() - t)
            leaf = tlog.leaf_hash(bodies[index])
            t = time.perf_counter_ns()
            ok = tlog.verify_inclusion(leaf, index, size, path, root)
            check.append(time.perf_counter_ns() - t)
            if not ok:
                raise oa.BenchError(f"the inclusion proof of {index} in {size} does not verify")
            lengths.append(len(path))
        old_sizes = [rng.choice(olds) for _ in range(args.proofs)] if olds else []
        c_make, c_check, c_lengths = [], [], []
        for old in old_sizes:
            t = time.perf_counter_ns()
            proof = await ledger.consistency(old, size)
            c_make.append(time.perf_counter_ns() - t)
            t = time.perf_counter_ns()
            ok = tlog.verify_consistency(old, size, roots[old], root, proof)
            c_check.append(time.perf_counter_ns() - t)
            if not ok:
                raise oa.BenchError(f"the consistency proof {old} → {size} does not verify")
            c_lengths.append(len(proof))
    finally:
        await pool.close()
    out = {"size": size, "inclusion": {"make": us_stats(make), "verify": us_stats(check),
                                       "hashes": statistics.fmean(lengths)}}
    if old_sizes:
        out["consistency"] = {"make": us_stats(c_make), "verify": us_stats(c_check),
                              "hashes": statistics.fmean(c_lengths), "checkpoints": len(olds)}
    log(f"inclusion proofs at {size:,}: make p50 {out['inclusion']['make']['p50_us']:.0f} µs, verify p50 "
        f"{out['inclusion']['verify']['p50_us']:.0f} µs")
    return out


# --- 2. catch-up ------------------------------------------------------------------------------
def catch_up(servers: EmbeddedServers, key: Signer, size: int, base: Path, out: Path,
             args: argparse.Namespace) -> dict:
    """成都's node, its database empty, following the log from the province's server."""
    port = oa.free_port()
    demo.PROVINCE_PORT = port                     # node_config() points the node at it
    node = make_node(*CATCH_UP)
    config = province_config(base / "province-serve.toml", data_dir=base / "serve", port=port,
                             servers=servers, key=key, nodes=[], worker=False)
    node_app(config, node)
    province = serve(config, port, out, worker=False)
    try:
        node_conf = demo.node_config(base, node, key.verifier().vkey())
        prepare_node(base / node.name)
        started = time.time()
        proc = start_node(node_conf, node, out)
        try:
            ready = node_ready(proc, node)
            peak = Peak(proc.pid, postmaster_of(proc.pid))
            province_cpu = tree_seconds(province.pid)
            node_cpu = tree_seconds(proc.pid)
            deadline = time.monotonic() + args.catch_up_timeout
            status: dict = {}
            with httpx.Client(timeout=10, trust_env=False) as http:
                while time.monotonic() < deadline:
                    if not proc.alive():
                        raise oa.BenchError(f"the node exited:\n{proc.tail()}")
                    with contextlib.suppress(httpx.HTTPError):
                        status = http.get(node.url + "/node/status").json()
                        if status["verified_size"] >= size:
                            break
                    time.sleep(0.25)
                else:
                    raise oa.BenchError(f"the node had verified {status.get('verified_size')} of {size:,} "
                                        f"after {args.catch_up_timeout:.0f} s")
            memory = peak.stop()
            cpu = {"node_s": tree_seconds(proc.pid) - node_cpu,
                   "province_s": tree_seconds(province.pid) - province_cpu}
            history = asyncio.run(node_sizes(base / node.name))
        finally:
            proc.stop(60)
        chunks = history["verified"]
        done = chunks[-1][1]
        result = {"node": node.name, "code": node.code, "size": size, "verified": status["verified_size"],
                  "held": history["held"], "status": status, "evidence": status["evidence"],
                  "start_s": ready - started, "total_s": done - started, "sync_s": done - ready,
                  "first_chunk_s": chunks[0][1] - ready, "chunks": len(chunks),
                  "copy_s": done - chunks[0][1], "node_db_mib": history["db_bytes"] / 2**20,
                  "cpu": cpu, **memory}
        if status["evidence"]:
            raise oa.BenchError(f"the node refused something during the catch-up: {status}")
        log(f"成都's node caught up on {size:,} entries in {result['total_s']:.1f} s "
            f"({result['held']:,} held), peak RSS {memory['process_peak_mib']:.0f} MiB")
        # Where the time goes: the tile and entry reads alone, from this process.
        result["reads"] = asyncio.run(_reads(f"http://127.0.0.1:{port}", node, size))
    finally:
        province.stop()
    return result


async def _reads(url: str, node, size: int) -> dict:
    client = ProvinceClient(url, app_id=f"node-{node.name}", secret=node.app_secret)
    try:
        t = time.perf_counter()
        leaves = await client.leaf_hashes(0, size)
        tiles_s = time.perf_counter() - t
        t = time.perf_counter()
        edge = tlog.CompactRange()
        edge.extend(leaves)
        edge.root()
        verify_s = time.perf_counter() - t
        t = time.perf_counter()
        cursor, count, pages = 0, 0, 0
        while cursor is not None and cursor < size:
            page, cursor = await client.entries(cursor, size, org=node.code)
            count += len(page)
            pages += 1
        entries_s = time.perf_counter() - t
    finally:
        await client.close()
    return {"tiles": (size + 255) // 256, "tiles_s": tiles_s, "hash_s": verify_s, "entries": count,
            "pages": pages, "entries_s": entries_s}


# --- 4. lag -----------------------------------------------------------------------------------
async def lag_load(dsn: str, spread: list[tuple[int, float, str]], nodes: list, args: argparse.Namespace,
                   seconds: float, first: int, arrivals: str) -> dict:
    """``rate`` changes a second for ``seconds``, each in its own transaction: a quarter each in
    the three nodes' cities (the city union or a county), a quarter anywhere by share. ``even``:
    one every 1/rate s; ``poisson``: at random moments, independent of each other, as many
    people's changes arrive."""
    rng = random.Random(first)
    n = round(args.rate * seconds)
    offsets, at = [], 0.0
    for i in range(n):
        offsets.append(i / args.rate if arrivals == "even" else at)
        at += rng.expovariate(args.rate)
    by_city = {n.code: [u[0] for u in spread if u[2] == n.code] for n in nodes}
    ids, weights = [u[0] for u in spread], [u[1] for u in spread]
    pool = await create_pool(dsn, min_size=8, max_size=args.connections)
    loop = asyncio.get_running_loop()
    late: list[float] = []
    errors: list[str] = []

    async def one(i: int, org: int) -> None:
        try:
            async with pool.acquire() as conn:
                await log_change(conn, "org", str(org), "updated", "bench:lag",
                                 {"fields": ["name"], "seq": i})
        except (asyncpg.PostgresError, OSError) as exc:
            errors.append(f"{i}: {exc}")

    tasks = []
    t0 = loop.time() + 0.05
    try:
        for i in range(n):
            target = t0 + offsets[i]
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            late.append(max(0.0, -delay))
            city = i % 4
            org = rng.choice(by_city[nodes[city].code]) if city < len(nodes) else rng.choices(ids, weights)[0]
            tasks.append(asyncio.create_task(one(first + i, org)))
        await asyncio.gather(*tasks)
        wall = loop.time() - t0
    finally:
        await pool.close()
    if errors:
        raise oa.BenchError(f"{len(errors)} changes failed, the first: {errors[0]}")
    return {"arrivals": arrivals, "changes": n, "wall_s": wall, "rate": n / wall,
            "late_p99_ms": pct(late, 99) * 1000}


async def lag_results(dsn: str, base: Path, nodes: list, first: int, last: int) -> dict:
    """Each measured change's commit, index and the moments each node cosigned and verified a
    size past it; the checkpoints' commits and quorums."""
    conn = await connect(dsn)
    try:
        changes = await conn.fetch(
            """SELECT (c.data->>'seq')::int AS seq, e.idx,
                      extract(epoch FROM pg_xact_commit_timestamp(c.xmin))::float8 AS at
               FROM base_data_changes c JOIN ledger_entries e ON e.kind = 'change' AND e.ref = c.id
               WHERE c.actor = 'bench:lag' AND (c.data->>'seq')::int BETWEEN $1 AND $2 ORDER BY e.idx""",
            first, last)
        signed = await conn.fetch(
            """SELECT size, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 AS at
               FROM ledger_checkpoints ORDER BY size""")
        quorum = await conn.fetch(
            """SELECT size, min(at) FILTER (WHERE n = $1) AS at FROM (
                   SELECT size, extract(epoch FROM cosigned_at)::float8 AS at,
                          row_number() OVER (PARTITION BY size ORDER BY cosigned_at) AS n
                   FROM ledger_cosignatures) s
               GROUP BY size HAVING count(*) >= $1 ORDER BY size""", QUORUM)
    finally:
        await conn.close()
    if len(changes) != last - first + 1:
        raise oa.BenchError(f"{last - first + 1 - len(changes)} measured changes are not in the ledger")
    sizes = {n.name: await node_sizes(base / n.name) for n in nodes}
    return {"changes": [(r["seq"], r["idx"], r["at"]) for r in changes],
            "signed": [(r["size"], r["at"]) for r in signed],
            "quorum": [(r["size"], r["at"]) for r in quorum],
            "nodes": {k: {"verified": v["verified"], "cosigned": v["cosigned"], "held": v["held"]}
                      for k, v in sizes.items()}}


def first_past(history: list[tuple[int, float]], index: int) -> float | None:
    """The time of the first size in ``history`` (ascending) that holds entry ``index``; a
    later size reached earlier (a quorum out of order) counts."""
    sizes = [s for s, _ in history]
    at = bisect.bisect_right(sizes, index)
    if at == len(history):
        return None
    return min(t for _, t in history[at:])


def summarize_lag(raw: dict) -> dict:
    changes = raw["changes"]
    out: dict = {"nodes": {}}
    everything: list[float] = []
    for name, node in raw["nodes"].items():
        lags, cosigned = [], []
        for _, idx, at in changes:
            verified = first_past(node["verified"], idx)
            if verified is None:
                raise oa.BenchError(f"the node {name} never verified entry {idx}")
            lags.append(verified - at)
            seen = first_past(node["cosigned"], idx)
            if seen is not None:
                cosigned.append(seen - at)
        everything += lags
        out["nodes"][name] = {**s_stats(lags), "cosigned": s_stats(cosigned), "held": node["held"],
                              "syncs": len(node["verified"])}
    out["overall"] = s_stats(everything)
    out["signed"] = s_stats([first_past(raw["signed"], idx) - at for _, idx, at in changes])
    finals = [first_past(raw["quorum"], idx) for _, idx, at in changes]
    out["final"] = s_stats([f - at for f, (_, _, at) in zip(finals, changes, strict=True) if f is not None])
    # The checkpoint that made the last change final: its signing and its quorum.
    _, last_idx, last_at = changes[-1]
    quorum_size, quorum_at = next((s, t) for s, t in raw["quorum"] if s > last_idx)
    signed_at = dict(raw["signed"])[quorum_size]
    out["last"] = {"size": quorum_size, "commit_to_quorum_s": quorum_at - last_at,
                   "signed_to_quorum_s": quorum_at - signed_at, "commit_to_signed_s": signed_at - last_at}
    # Time to quorum of every checkpoint of the run the quorum cosigned.
    signed = dict(raw["signed"])
    run = [(s, t) for s, t in raw["quorum"] if changes[0][1] < s <= quorum_size]
    out["to_quorum"] = s_stats([t - signed[s] for s, t in run if s in signed])
    out["checkpoints"] = sum(1 for s, _ in raw["signed"] if changes[0][1] < s <= quorum_size)
    out["cosigned_checkpoints"] = len(run)
    # The longest wait between two checkpoints reaching quorum, and the longest streak of
    # checkpoints signed back to back (less than 20 ms apart) during the run.
    times = [t for _, t in run]
    out["longest_quorum_gap_s"] = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
    streak = longest = 1
    moments = [t for s, t in raw["signed"] if changes[0][1] < s <= quorum_size]
    for a, b in itertools.pairwise(moments):
        streak = streak + 1 if b - a < 0.02 else 1
        longest = max(longest, streak)
    out["longest_streak"] = longest
    return out


def lag(base: Path, out: Path, args: argparse.Namespace) -> dict:
    """A fresh province serving with its worker and three nodes under a steady load."""
    port = oa.free_port()
    demo.PROVINCE_PORT = port
    key = Signer.generate(ORIGIN)
    nodes = [make_node(name, code) for name, code, _region, _port in demo.CITIES]
    with database(base / "lag-province", redis=True) as servers:
        spread = asyncio.run(_lag_province(servers.dsn))
        config = province_config(base / "province-lag.toml", data_dir=base / "lag-serve", port=port,
                                 servers=servers, key=key, nodes=nodes, worker=True)
        for node in nodes:
            node_app(config, node)
            prepare_node(base / node.name)
        procs: list[oa.Proc] = []
        try:
            province = serve(config, port, out, worker=True)
            procs.append(province)
            for node in nodes:
                procs.append(start_node(demo.node_config(base, node, key.verifier().vkey()), node, out))
            for proc, node in zip(procs[1:], nodes, strict=True):
                node_ready(proc, node)
            asyncio.run(settle(servers.dsn, nodes))
            log(f"province and {len(nodes)} nodes running; {args.warmup:.0f} s of warm-up, then "
                f"{args.rate} changes/s for {args.seconds:.0f} s, arrivals {args.arrivals}")
            asyncio.run(lag_load(servers.dsn, spread, nodes, args, args.warmup, 0, "even"))
            pids = {"province": province.pid, "province_postgres": postmaster_of(os.getpid()) or 0,
                    **{n.name: p.pid for n, p in zip(nodes, procs[1:], strict=True)}}
            raws = {}
            for number, arrivals in enumerate(args.arrivals.split(","), start=1):
                first = number * 1_000_000
                asyncio.run(settle(servers.dsn, nodes))
                cpu0 = {k: tree_seconds(v) for k, v in pids.items()}
                driver0 = oa.process_seconds(os.getpid())
                cores0 = oa.core_jiffies()
                t = time.monotonic()
                load = asyncio.run(lag_load(servers.dsn, spread, nodes, args, args.seconds, first, arrivals))
                window = time.monotonic() - t
                cores = oa.core_jiffies()
                # Cores' worth of CPU each used: a node with its PostgreSQL, the province's server,
                # its PostgreSQL, this process (the load).
                cpu = {k: (tree_seconds(v) - cpu0[k]) / window for k, v in pids.items()}
                cpu["driver"] = (oa.process_seconds(os.getpid()) - driver0) / window
                cpu["cores_busy"] = {c: (cores[c][0] - b0) / max(1, cores[c][1] - t0)
                                     for c, (b0, t0) in cores0.items()}
                asyncio.run(settle(servers.dsn, nodes, within=120))
                raws[arrivals] = (load, cpu, first)
            results = {a: asyncio.run(lag_results(servers.dsn, base, nodes, first, first + ld["changes"] - 1))
                       for a, (ld, _cpu, first) in raws.items()}
            for proc in procs:
                if not proc.alive():
                    raise oa.BenchError(f"{proc.name} exited:\n{proc.tail()}")
        finally:
            for proc in reversed(procs):
                proc.stop(60)
    runs = {}
    for arrivals, raw in results.items():
        (out / f"lag-{arrivals}.json").write_text(json.dumps(raw), encoding="utf-8")
        load, cpu, _first = raws[arrivals]
        runs[arrivals] = run = {"load": load, "cpu": cpu, **summarize_lag(raw)}
        log(f"lag ({arrivals} arrivals) overall p50 {run['overall']['p50_s'] * 1000:.0f} ms, p99 "
            f"{run['overall']['p99_s'] * 1000:.0f} ms, max {run['overall']['max_s'] * 1000:.0f} ms")
    return {"nodes": [n.name for n in nodes], "runs": runs}


async def _lag_province(dsn: str) -> list[tuple[int, float, str]]:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await seed(conn)
        await add_counties(conn)
        return await units(conn)
    finally:
        await conn.close()


async def settle(dsn: str, nodes: list, within: float = 60) -> None:
    """Until everything queued is in a checkpoint the quorum cosigned and every node verified."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        conn = await connect(dsn)
        try:
            while True:
                queued = await conn.fetchval("SELECT count(*) FROM ledger_queue")
                size = await conn.fetchval("SELECT coalesce(max(size), 0) FROM ledger_checkpoints")
                final = await conn.fetchval(
                    "SELECT max(size) FROM (SELECT size FROM ledger_cosignatures GROUP BY size "
                    "HAVING count(*) >= $1) q", QUORUM)
                verified = [(await http.get(n.url + "/node/status")).json()["verified_size"] for n in nodes]
                if not queued and size and final == size and all(v == size for v in verified):
                    return
                if time.monotonic() > deadline:
                    raise oa.BenchError(f"not settled after {within:.0f} s: {queued} queued, size {size}, "
                                        f"final {final}, verified {verified}")
                await asyncio.sleep(0.2)
        finally:
            await conn.close()


# --- the run ----------------------------------------------------------------------------------
def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    wait_for_others(args.wait_others)
    oa.wait_until_idle(args.wait)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="ledger-"))
    stack.callback(shutil.rmtree, base, ignore_errors=True)
    report: dict = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": shlex.join([".venv/bin/python", "bench/ledger/run.py", *sys.argv[1:]]),
                    "machine": oa.machine(), "commit": oa.source_commit(), "args": vars(args)}
    key = Signer.generate(ORIGIN)
    if not args.skip_big:
        with database(base / "province", redis=True) as servers:
            report["appends"] = asyncio.run(appends(servers.dsn, key, args))
            size = report["appends"]["entries"]
            report["proofs"] = asyncio.run(proofs(servers.dsn, key, args))
            report["catch_up"] = catch_up(servers, key, size, base, out, args)
            shutil.rmtree(base / CATCH_UP[0], ignore_errors=True)
            report["anatomy"] = asyncio.run(anatomy(servers.dsn, key, args, args.entries + 1, out))
            log("the largest batch within a second")
            report["sweep"] = asyncio.run(largest_batch(servers.dsn, key, args, report["anatomy"]["next"]))
    if args.seconds > 0:
        report["lag"] = lag(base, out, args)
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str),
                                      encoding="utf-8")
    log(f"raw output in {out.relative_to(ROOT)}")
    return report


TARGET = {"entries": 1_000_000, "rate": 200, "seconds": 60}


def scale(args: dict) -> str:
    short = [f"{args[k]:,} {k} of {v:,}" for k, v in TARGET.items() if args[k] < v]
    return f"**Reduced scale**: {', '.join(short)}; the figures below are not those of the target scale. " \
        if short else ""


CITY = {"chengdu": "成都", "mianyang": "绵阳", "dazhou": "达州"}


def _ms(stats: dict, key: str) -> str:
    return f"{stats[key] * 1000:,.0f} ms"


def render_section(report: dict) -> str:
    m, args = report["machine"], report["args"]
    lines = [
        SECTION, "",
        f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB ({m['os']}); "
        f"commit {report['commit']}. The machine has {m['cores']} cores: the province's server, the "
        "nodes, their PostgreSQL servers and this script (the load) share them.", "",
        f"    {report['command']}", "", scale(args) + intro(report), "",
        "| what | result | target |", "|---|---|---|"]
    if "appends" in report:
        ap, sw, cu, pr = report["appends"], report["sweep"], report["catch_up"], report["proofs"]
        an = report["anatomy"]
        b = ap["batch_s"]
        lines += [
            f"| appends: the integrator at its default batch ({ap['batch']:,} entries, one signed checkpoint "
            f"each) until the queue of {ap['entries']:,} was empty | **{ap['per_second']:,.0f} entries/s** "
            f"({ap['seconds']:.1f} s, {ap['batches']} batches); per batch p50 {_ms(b, 'p50_s')}, p99 "
            f"{_ms(b, 'p99_s')}, max {_ms(b, 'max_s')}; this process's RSS "
            f"{ap['process_before_mib']:.0f} MiB before, peak {ap['process_peak_mib']:.0f} MiB; "
            f"PostgreSQL backends' private memory peak {ap['pg_private_peak_mib']:.0f} MiB | — |",
            f"| where a batch's time goes: the integrator's steps one by one on {an['batch']:,} fresh "
            f"changes at size {an['size']:,} (median of 3, rolled back) | "
            + ", ".join(f"{k} {v * 1000:,.0f} ms" for k, v in an["steps_s"].items()) + " | — |",
            f"| the largest batch integrated within 1 s (worst of {sw['runs']}, each batch fresh changes) | "
            + (f"**{sw['largest']:,} entries** ({sw['worst_s']:.2f} s; {sw['first_too_slow']:,} took over "
               f"1 s): {sw['largest']:,} entries/s with a checkpoint signed every second"
               if sw["worst_s"] is not None and sw["first_too_slow"] else
               f"over {sw['largest']:,} entries (the largest tried)" if sw["worst_s"] is not None else
               "none") + " | — |",
            f"| catch-up: {CITY[cu['node']]}'s node (`wxbackend node`, its own embedded PostgreSQL, empty) "
            f"following the {cu['size']:,}-entry log from the province's server (`wxbackend serve`, "
            f"another process) | **{cu['total_s']:.0f} s** from the node's start: serving after "
            f"{cu['start_s']:.1f} s, every hash read and verified against the checkpoint and the first "
            f"chunk stored {cu['first_chunk_s']:.0f} s later, the {cu['chunks']} chunks of entries in "
            f"{cu['copy_s']:.0f} s more; **{cu['held']:,} entries held** (its subtree's and the audit "
            f"heads), none refused; node process RSS {cu.get('process_start_mib', 0):.0f} MiB when it "
            f"started serving, peak **{cu['process_peak_mib']:.0f} MiB**, its "
            f"PostgreSQL's private memory peak {cu['pg_private_peak_mib']:.0f} MiB, database "
            f"{cu['node_db_mib']:.0f} MiB | — |",
            f"| inclusion proofs in the tree of {pr['size']:,}, {pr['inclusion']['make']['n']:,} random "
            f"entries ({pr['inclusion']['hashes']:.0f} hashes each) | `LedgerLog.inclusion` (tiles read "
            f"from PostgreSQL) p50 **{pr['inclusion']['make']['p50_us']:,.0f} µs**, p99 "
            f"{pr['inclusion']['make']['p99_us']:,.0f} µs; `tlog.verify_inclusion` p50 "
            f"**{pr['inclusion']['verify']['p50_us']:,.0f} µs**, p99 "
            f"{pr['inclusion']['verify']['p99_us']:,.0f} µs | — |"]
        if "consistency" in pr:
            c = pr["consistency"]
            lines.append(
                f"| consistency proofs to {pr['size']:,} from {c['make']['n']:,} random signed sizes "
                f"({c['hashes']:.0f} hashes on average) | `LedgerLog.consistency` p50 "
                f"**{c['make']['p50_us']:,.0f} µs**, p99 {c['make']['p99_us']:,.0f} µs; "
                f"`tlog.verify_consistency` p50 **{c['verify']['p50_us']:,.0f} µs**, p99 "
                f"{c['verify']['p99_us']:,.0f} µs | — |")
    if "lag" in report:
        lines += _lag_rows(report["lag"])
    lines += ["", analysis(report), ""]
    return "\n".join(lines)


ARRIVALS = {"even": "evenly spaced", "poisson": "at random (Poisson)"}


def _three(stats: dict) -> str:
    return f"p50 {_ms(stats, 'p50_s')}, **p99 {_ms(stats, 'p99_s')}**, max {_ms(stats, 'max_s')}"


def _lag_rows(lg: dict) -> list[str]:
    runs = lg["runs"]
    verdict = lambda ok: "meets" if ok else "misses"  # noqa: E731
    rows = []
    for name in lg["nodes"]:
        held = max(r["nodes"][name]["held"] for r in runs.values())
        rows.append(
            f"| lag at {CITY.get(name, name)}'s node: a change's commit → the node's verified size holds "
            f"it ({held:,} entries of its subtree held at the end) | "
            + "; ".join(f"{ARRIVALS.get(a, a)}: {_three(r['nodes'][name])}" for a, r in runs.items())
            + f" | p99 < 1 s ({verdict(all(r['nodes'][name]['p99_s'] < 1 for r in runs.values()))}) |")
    rows.append(
        "| lag, the three nodes together ("
        + "; ".join(f"{ARRIVALS.get(a, a)}: {r['overall']['n']:,} change-node pairs, "
                    f"{r['load']['changes']:,} changes at {r['load']['rate']:.0f}/s"
                    for a, r in runs.items()) + ") | "
        + "; ".join(f"{ARRIVALS.get(a, a)}: {_three(r['overall'])}" for a, r in runs.items())
        + f" | p99 < 1 s ({verdict(all(r['overall']['p99_s'] < 1 for r in runs.values()))}) |")
    rows.append(
        f"| a change's commit → in a signed checkpoint → final (cosigned by {QUORUM} of 3) | "
        + "; ".join(f"{ARRIVALS.get(a, a)}: signed p50 {_ms(r['signed'], 'p50_s')}, p99 "
                    f"{_ms(r['signed'], 'p99_s')}; final p50 {_ms(r['final'], 'p50_s')}, p99 "
                    f"{_ms(r['final'], 'p99_s')}" for a, r in runs.items()) + " | — |")
    rows.append(
        "| time to quorum of the final checkpoint (the first final one holding the run's last change) | "
        + "; ".join(f"{ARRIVALS.get(a, a)}: **{r['last']['signed_to_quorum_s'] * 1000:,.0f} ms** from its "
                    f"signing, {r['last']['commit_to_quorum_s'] * 1000:,.0f} ms from the last change's "
                    f"commit (every checkpoint of the run that reached quorum: p50 "
                    f"{_ms(r['to_quorum'], 'p50_s')}, p99 {_ms(r['to_quorum'], 'p99_s')})"
                    for a, r in runs.items()) + " | — |")
    rows.append(
        "| checkpoints signed during the run; how many reached quorum; the longest wait between two "
        "quorums; the longest streak of checkpoints signed less than 20 ms apart | "
        + "; ".join(f"{ARRIVALS.get(a, a)}: {r['checkpoints']:,}; {r['cosigned_checkpoints']:,}; "
                    f"{r['longest_quorum_gap_s'] * 1000:,.0f} ms; {r['longest_streak']:,}"
                    for a, r in runs.items()) + " | — |")
    rows.append("")
    for a, r in runs.items():
        cpu = r["cpu"]
        rows.append(
            f"CPU during the lag run with changes {ARRIVALS.get(a, a)}, in cores: " + ", ".join(
                [f"the province's server {cpu['province']:.2f}",
                 f"its PostgreSQL {cpu['province_postgres']:.2f}",
                 *(f"{CITY.get(n, n)}'s node with its PostgreSQL {cpu[n]:.2f}" for n in lg["nodes"]),
                 f"the load {cpu['driver']:.2f}"])
            + "; the cores were " + " and ".join(f"{v:.0%}" for v in cpu["cores_busy"].values()) + " busy.")
        rows.append("")
    return rows[:-1]


def intro(report: dict) -> str:
    args = report["args"]
    text = ""
    if "appends" in report:
        ap = report["appends"]
        text += (
            f"The province's log: {ap['generated']:,} base-data changes of the real union tree (the "
            f"province, the 21 cities, the industry unions and {ap['counties']} county unions; each city's "
            "share in proportion to its registered-user target, split evenly between the city union and its "
            "counties; 1 % on the province's own union) generated in PostgreSQL "
            f"({ap['generate_s']:.0f} s, one `INSERT … SELECT generate_series` per 100,000) and queued by "
            f"the change log's statement trigger; entries average {ap['avg_entry_bytes']:.0f} bytes. The "
            "integrator, the proofs and the search for the largest batch run in this process against that "
            "database; the catch-up uses the product's processes, `wxbackend serve` for the province and "
            "`wxbackend node` for the node. ")
    if "lag" in report:
        patterns = " and then ".join(ARRIVALS.get(a, a) for a in report["lag"]["runs"])
        text += (
            "The lag runs start a fresh province (`wxbackend serve` with its worker, integrating every "
            "0.2 s and pushing each checkpoint to the nodes) with the nodes of 成都, 绵阳 and 达州 "
            f"(`wxbackend node`, each with its own embedded PostgreSQL; quorum {QUORUM}): after a warm-up, "
            f"{args['rate']} changes a second for {args['seconds']:.0f} s, {patterns}, each its own "
            "transaction (`log_change`), a quarter each in the three cities and a quarter anywhere by "
            "share. Times come from PostgreSQL's commit timestamps (`track_commit_timestamp`): a change's "
            "in the province's database, a node's verified and cosigned sizes in the node's own (a "
            "trigger keeps each size with its transaction), all on this machine's clock; a change's lag "
            "at a node is from its commit to the commit that made the node's verified size pass its "
            "index, for every change at every node (a node verifies the whole tree and keeps its "
            "subtree's entries).")
    return text


def analysis(report: dict) -> str:
    """What the figures mean, from the figures."""
    parts = []
    if "appends" in report:
        ap, an, sw, cu = report["appends"], report["anatomy"], report["sweep"], report["catch_up"]
        steps = an["steps_s"]
        take = steps["take_queued (SQL)"]
        rest = sum(v for k, v in steps.items() if "SQL" not in k and "encode" not in k)
        times = ap["batch_times_s"]
        head, tail = statistics.fmean(times[:20]), statistics.fmean(times[-20:])
        parts.append(
            f"- **Appends.** A batch of {an['batch']:,} at size {an['size']:,} costs some "
            f"{sum(steps.values()) * 1000:.0f} ms in its steps: reading the queue "
            f"{take * 1000:.0f} ms (by its plan, `explain-take_queued.txt`, most of it the union-code "
            "path of each entry, one GiST lookup of `orgs` per row although a batch names a few hundred "
            f"unions), the canonical JSON {steps['encode (canonical JSON)'] * 1000:.0f} ms, inserting the "
            f"entries {steps['add_entries (SQL)'] * 1000:.0f} ms; hashing, the tiles, the root and the "
            f"signature together {rest * 1000:.0f} ms. The cost does not grow with the log: the first 20 "
            f"batches averaged {head * 1000:.0f} ms, the last 20 {tail * 1000:.0f} ms. With a checkpoint a "
            f"second the log takes some {sw['largest']:,} entries a second, "
            f"{sw['largest'] / report['args']['rate']:.0f} times the lag runs' load.")
        reads = cu["reads"]
        growth = cu["process_peak_mib"] - cu.get("process_start_mib", 0)
        parts.append(
            f"- **Catch-up.** The node read the {reads['tiles']:,} level-0 tiles one request after another "
            f"(from this process alone: {reads['tiles_s']:.1f} s), hashed them into its compact range "
            f"({reads['hash_s']:.1f} s alone) and only then, the root matching, read its subtree's entries "
            f"{reads['pages']} page{'s' if reads['pages'] != 1 else ''} of up to 5,000 "
            f"({reads['entries_s']:.1f} s alone) and stored them "
            "16,384 indexes a transaction. It used "
            f"{cu['cpu']['node_s']:.0f} s of CPU with its PostgreSQL, the province's server "
            f"{cu['cpu']['province_s']:.0f} s. Its memory grew by {growth:.0f} MiB: the hashes being "
            "verified are kept as a list of Python `bytes`, some 80 bytes a hash with the list's pointer, "
            "not the 32 bytes `docs/ledger.md` counts.")
    if "lag" in report:
        runs = report["lag"]["runs"]
        for arrivals, r in runs.items():
            busy = max(r["cpu"]["cores_busy"].values())
            nodes = statistics.fmean(r["cpu"][n] for n in report["lag"]["nodes"])
            parts.append(
                f"- **Lag, changes {ARRIVALS.get(arrivals, arrivals)}.** A change was in a signed "
                f"checkpoint after p50 {_ms(r['signed'], 'p50_s')}, p99 {_ms(r['signed'], 'p99_s')}, final "
                f"(the quorum's cosignatures) after p50 {_ms(r['final'], 'p50_s')}, p99 "
                f"{_ms(r['final'], 'p99_s')}, and in the nodes' verified copies after p50 "
                f"{_ms(r['overall'], 'p50_s')}, p99 "
                f"{_ms(r['overall'], 'p99_s')}. The integrator signed {r['checkpoints']:,} checkpoints "
                f"({r['load']['changes'] / max(1, r['checkpoints']):.1f} changes each on average; up to "
                f"{r['longest_streak']:,} back to back less than 20 ms apart: with a change every 5 ms on "
                "average and an append of a few entries taking about as long, the queue is often not empty "
                f"when an append ends) and {r['cosigned_checkpoints']:,} reached quorum, each a witness "
                "request, a cosignature and a mirror sync at every node; the longest wait between two "
                f"quorums was {r['longest_quorum_gap_s'] * 1000:,.0f} ms. The cores were {busy:.0%} busy at "
                f"most (the province's server {r['cpu']['province']:.2f} of a core, its PostgreSQL "
                f"{r['cpu']['province_postgres']:.2f}, each node with its PostgreSQL {nodes:.2f})."
                + (" Every change waiting through such a wait is late at every node at once: those waits "
                   f"make the p99 and the max ({_ms(r['overall'], 'max_s')})."
                   if r["longest_quorum_gap_s"] > 0.4 else ""))
    parts.append("\nRaw results (the summary, the lag runs' commit times, the plan of the queue's read, the "
                 "processes' logs) are in `bench/results/ledger/`.")
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description="The base-data ledger at the province's scale.")
    parser.add_argument("--entries", type=int, default=1_000_000, help="changes generated and integrated")
    parser.add_argument("--batch", type=int, default=BATCH, help="the integrator's batch")
    parser.add_argument("--sweep-runs", type=int, default=3, help="batches per size in the search")
    parser.add_argument("--sweep-max", type=int, default=320_000, help="largest batch tried")
    parser.add_argument("--proofs", type=int, default=1000, help="proofs of each kind")
    parser.add_argument("--catch-up-timeout", type=float, default=900.0)
    parser.add_argument("--rate", type=int, default=200, help="changes a second in the lag runs")
    parser.add_argument("--seconds", type=float, default=60.0, help="each lag run's length (0: none)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the lag runs")
    parser.add_argument("--connections", type=int, default=20, help="the load's connections")
    parser.add_argument("--arrivals", default="even,poisson",
                        help="the lag runs, one per pattern: even (one every 1/rate s), poisson (random)")
    parser.add_argument("--skip-big", action="store_true", help="only the lag runs")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the lock or idle")
    parser.add_argument("--wait-others", type=float, default=3600.0,
                        help="seconds to wait for other benchmarks and the demo to finish")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    parser.add_argument("--render", metavar="SUMMARY", help="only render a run's summary.json again")
    args = parser.parse_args()
    if args.render:
        section = render_section(json.loads(Path(args.render).read_text(encoding="utf-8")))
        print(section)
        if args.docs:
            oa.write_section(SECTION, section)
        return 0
    if set(args.arrivals.split(",")) - set(ARRIVALS):
        parser.error(f"--arrivals: choose from {', '.join(ARRIVALS)}")

    def docs(report: dict) -> None:
        if args.docs:
            oa.write_section(SECTION, render_section(report))

    return oa.run_main(args, main_inner, lambda r: print("\n" + render_section(r)), docs)


if __name__ == "__main__":
    sys.exit(main())
