"""A first-come drop (抢): 500 units, 20,000 eligible certified workers each trying once plus 5,000
repeated attempts, at 64 connections, against two server processes sharing one PostgreSQL and one
Redis — through the Redis gate (the shipped design) and through PostgreSQL alone (every attempt
takes the item's row lock: the simplest correct design, the anchor). Then the same drop through
the gate with one server process killed (SIGKILL) when half the units are taken, and restarted.

    .venv/bin/python bench/signups/run.py   # from the repository root [--workers 20000]
                                  [--repeats 5000] [--stock 500] [--connections 64] [--no-docs]

Checked after every drop: exactly ``stock`` holds, nobody twice, the item's ``taken`` equal to
them, no answer other than 201 (won) or 409 (已抢完 / 已达领取上限), and — through the gate —
the gate's stock in Redis equal to PostgreSQL's. After the kill: the same, every holder sees the
place in ``GET /mp/v1/signups``, and the admissions the killed process left pending were settled
by the worker process (``wxbackend worker``: lapses holds and reconciles the gate).

The load is a raw asyncio HTTP/1.1 client in this process (tens of microseconds of CPU a request);
each connection sends the next attempt as soon as its previous one is answered (closed loop), and
latency is timed per attempt from send to answer. Everything shares the machine's two cores: the
two servers, the worker, PostgreSQL, Redis and the load. Results go to
``bench/results/signups/<time>/summary.json`` and the section "Drops" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import random
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
from argon2 import PasswordHasher

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

oa = load_script(ROOT / "bench" / "oa_messages" / "run.py", "oa_messages_run")

import redis.asyncio as aioredis  # noqa: E402

from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.infra.pii import new_key  # noqa: E402
from wxbackend.services.activities.admission import Gate  # noqa: E402
from wxbackend.services.clock import china_now  # noqa: E402
from wxbackend.services.identity.sessions import SessionStore  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "signups"
SECTION = "## Drops (bench/signups)"
log = oa.log
TARGET_RPS, TARGET_P99_MS = 3000, 100.0
ACTIVITIES = "\n[activities]\nadmission_gate = {gate}\npending_grace_seconds = 2\nsweep_seconds = 1\n"


# --- data --------------------------------------------------------------------------------------
async def make_workers(dsn: str, redis_url: str, n: int) -> tuple[list[int], list[str], int]:
    """``n`` registered accounts, each a certified member of one grassroots union in Chengdu, and
    a Mini Program session for each (as ``POST /mp/v1/session`` makes them)."""
    conn = await asyncpg.connect(dsn)
    try:
        union = await conn.fetchval(
            """INSERT INTO orgs (parent_id, code, name, kind, path)
               SELECT id, 'BENCH-DROP', '压测工会', 'grassroots', path FROM orgs WHERE code = 'SC-510100'
               RETURNING id""")
        await conn.execute("UPDATE orgs SET path = path || id::text::ltree WHERE id = $1", union)
        home = await conn.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
        ids = [r["id"] for r in await conn.fetch(
            """INSERT INTO accounts (registered_at, home_org_id, phone_enc, phone_bidx, phone_verified_at)
               SELECT now(), $1, '\\x00', uuid_send(gen_random_uuid()), now()
               FROM generate_series(1, $2) RETURNING id""", home, n)]
        await conn.execute(
            """INSERT INTO members (org_id, member_no, name, id_number_enc, id_number_bidx, gender,
                   birth_date, source, joined_on, account_id, certified_at, status)
               SELECT $1, 'B' || a, '压测', '\\x00', uuid_send(gen_random_uuid()), 1, '1990-01-01',
                      'roster', '2020-01-01', a, now(), 'active' FROM unnest($2::bigint[]) a""",
            union, ids)
    finally:
        await conn.close()
    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        sessions = SessionStore(redis, kind="mp", ttl=7200)
        tokens = []
        for i in range(0, n, 50):
            tokens += await asyncio.gather(*(sessions.create(a) for a in ids[i:i + 50]))
    finally:
        await redis.aclose()
    return ids, tokens, union


async def new_item(dsn: str, stock: int, union: int, title: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            """INSERT INTO offerings (kind, form, org_id, org_path, title, opens_at, closes_at, mode,
                                      stock, audience, status, published_at)
               SELECT 'service', 'coupon', id, path, $1, now() - interval '1 minute',
                      now() + interval '1 hour', 'first_come', $2,
                      jsonb_build_object('level', 'certified', 'orgs', jsonb_build_array($3::bigint)),
                      'published', now()
               FROM orgs WHERE code = 'SC-510100' RETURNING id""", title, stock, union)
    finally:
        await conn.close()


# --- the load ----------------------------------------------------------------------------------
class _Exchange(asyncio.Protocol):
    """One keep-alive connection: sends a request, reads its answer (status, Content-Length and
    body), then asks its load for the next. A protocol, not streams: half the client's CPU."""

    def __init__(self, load: Load, port: int, done: asyncio.Future) -> None:
        self.load, self.port, self.done = load, port, done
        self.buffer = b""
        self.account = 0
        self.began = 0.0
        self.waiting = False  # a request sent and not yet answered
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        load = self.load
        if load.next >= len(load.attempts):
            self.transport.close()
            return
        self.account, token = load.attempts[load.next]
        load.next += 1
        self.began = time.perf_counter()
        self.waiting = True
        self.transport.write(load.request(self.port, token))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end]
        at = head.lower().find(b"content-length:")
        eol = head.find(b"\r\n", at)
        length = int(head[at + 15:eol if eol > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        self.load.results.append((self.account, int(head[9:12]), time.perf_counter() - self.began))
        self.waiting = False
        self.buffer = self.buffer[end + 4 + length:]
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class Load:
    """Attempts sent over ``connections`` keep-alive connections spread over the servers' ports;
    a connection whose server is gone moves to another (as a proxy in front would), and the
    attempt it was waiting for is counted as lost with the process."""

    def __init__(self, ports: list[int], item: int, attempts: list[tuple[int, str]],
                 connections: int) -> None:
        self.ports = ports
        self.item = item
        self.attempts = attempts
        self.connections = connections
        self.next = 0
        self.results: list[tuple[int, int, float]] = []  # (account, status, seconds)
        self.errors: Counter[str] = Counter()

    def request(self, port: int, token: str) -> bytes:
        return (f"POST /mp/v1/offerings/{self.item}/signup HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n").encode()

    async def _connection(self, n: int) -> None:
        loop = asyncio.get_running_loop()
        preferred = self.ports[n % len(self.ports)]
        while self.next < len(self.attempts):
            for port in (preferred, *[p for p in self.ports if p != preferred]):
                done = loop.create_future()
                try:
                    _, exchange = await loop.create_connection(
                        lambda port=port, done=done: _Exchange(self, port, done), "127.0.0.1", port)
                except OSError:
                    continue
                await done
                if exchange.waiting:
                    self.errors["lost with the process"] += 1
                break
            else:
                await asyncio.sleep(0.05)

    async def run(self, during=None) -> dict:
        began = time.perf_counter()
        cpu = time.process_time()
        tasks = [asyncio.create_task(self._connection(n)) for n in range(self.connections)]
        watcher = asyncio.create_task(during()) if during else None
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - began
        cpu = time.process_time() - cpu
        if watcher:
            await watcher
        latencies = sorted(r[2] for r in self.results)
        statuses = Counter(r[1] for r in self.results)
        return {"attempts": len(self.results), "seconds": seconds,
                "rps": len(self.results) / seconds, "client_cpu_share": cpu / seconds,
                "p50_ms": 1000 * latencies[len(latencies) // 2],
                "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
                "max_ms": 1000 * latencies[-1], "statuses": dict(statuses),
                "connection_errors": dict(self.errors),
                "won_answers": statuses.get(201, 0)}


def attempts_for(ids: list[int], tokens: list[str], repeats: int, seed: int) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    pairs = list(zip(ids, tokens, strict=True))
    out = pairs + [rng.choice(pairs) for _ in range(repeats)]
    rng.shuffle(out)
    return out


# --- checks ------------------------------------------------------------------------------------
async def check_record(dsn: str, redis_url: str, item: int, stock: int, gate: bool) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        holders = [r["account_id"] for r in await conn.fetch(
            "SELECT account_id FROM offering_claims WHERE offering_id = $1 AND status = 'held'", item)]
        other = await conn.fetchval(
            "SELECT count(*) FROM offering_claims WHERE offering_id = $1 AND status <> 'held'", item)
        taken = await conn.fetchval("SELECT taken FROM offerings WHERE id = $1", item)
    finally:
        await conn.close()
    out = {"holds": len(holders), "distinct_holders": len(set(holders)), "taken": taken,
           "other_claims": other}
    if gate:
        redis = aioredis.from_url(redis_url, decode_responses=True)
        try:
            gate_keys = Gate.of(item, None, china_now().date())
            out["gate_stock"] = int(await redis.get(gate_keys.stock) or -1)
            out["gate_pending"] = await redis.hlen(gate_keys.pending)
        finally:
            await redis.aclose()
    problems = []
    if not (len(holders) == len(set(holders)) == taken == stock) or other:
        problems.append(f"record: {out}")
    if gate and (out["gate_stock"] != stock - taken or out["gate_pending"]):
        problems.append(f"gate: stock {out['gate_stock']} pending {out['gate_pending']}, "
                        f"record left {stock - taken}")
    out["problems"] = problems
    return out


def check_answers(result: dict, stock: int) -> list[str]:
    problems = []
    unexpected = {s: n for s, n in result["statuses"].items() if s not in (201, 409)}
    if unexpected:
        problems.append(f"answers other than 201/409: {unexpected}")
    return problems


async def visible_to_holders(url: str, dsn: str, item: int, tokens: dict[int, str]) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        holders = [r["account_id"] for r in await conn.fetch(
            "SELECT account_id FROM offering_claims WHERE offering_id = $1 AND status = 'held'", item)]
    finally:
        await conn.close()
    seen = 0
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        for account in holders:
            got = await client.get(f"{url}/mp/v1/signups",
                                   headers={"Authorization": f"Bearer {tokens[account]}"})
            if any(s["offering_id"] == item and s["status"] == "held" for s in got.json()["signups"]):
                seen += 1
    return seen


# --- redemption -------------------------------------------------------------------------------
async def redemption_race(urls: list[str], dsn: str, redis_url: str, union: int, ids: list[int],
                          tokens: dict[int, str], codes: int, verifiers: int) -> dict:
    """``codes`` confirmed places, each code presented by ``verifiers`` verifiers at once over
    HTTP: exactly ``codes`` redemptions must succeed."""
    item = await new_item(dsn, codes, union, "redemption race")
    holders = ids[-codes:]
    async with httpx.AsyncClient(trust_env=False, timeout=30,
                                 limits=httpx.Limits(max_connections=200)) as client:
        for n, account in enumerate(holders):
            auth = {"Authorization": f"Bearer {tokens[account]}"}
            url = urls[n % len(urls)]
            signup = (await client.post(f"{url}/mp/v1/offerings/{item}/signup", headers=auth)).json()
            await client.post(f"{url}/mp/v1/signups/{signup['signup']['id']}/confirm", headers=auth)
        # Verifier accounts as an organiser makes them (POST /admin/v1/verifiers), written here.
        password = "Bench-Verifier-1"
        hashed = PasswordHasher().hash(password)
        conn = await asyncpg.connect(dsn)
        try:
            for n in range(verifiers):
                verifier_id = await conn.fetchval(
                    """INSERT INTO offering_verifiers (org_id, username, display_name, password_hash)
                       VALUES ($1, $2, $3, $4) RETURNING id""", union, f"desk{n:02d}", f"前台{n}", hashed)
                await conn.execute("INSERT INTO offering_verifier_items VALUES ($1, $2)", verifier_id, item)
        finally:
            await conn.close()
        staff = []
        for n in range(verifiers):
            login = await client.post(f"{urls[n % len(urls)]}/verify/v1/login",
                                      json={"username": f"desk{n:02d}", "password": password})
            staff.append((urls[n % len(urls)], login.json()["token"]))
        codes_shown = []
        for account in holders:
            mine = (await client.get(f"{urls[0]}/mp/v1/signups",
                                     headers={"Authorization": f"Bearer {tokens[account]}"})).json()
            signup_id = next(s["id"] for s in mine["signups"] if s["offering_id"] == item)
            shown = await client.get(f"{urls[0]}/mp/v1/signups/{signup_id}/code",
                                     headers={"Authorization": f"Bearer {tokens[account]}"})
            codes_shown.append(shown.json()["code"])
        began = time.perf_counter()

        async def scan(url: str, token: str, code: str) -> int:
            got = await client.post(f"{url}/verify/v1/redeem",
                                    json={"code": code, "request_id": uuid.uuid4().hex},
                                    headers={"Authorization": f"Bearer {token}"})
            return got.status_code

        statuses = Counter(await asyncio.gather(*(scan(url, token, code) for code in codes_shown
                                                  for url, token in staff)))
        seconds = time.perf_counter() - began
    conn = await asyncpg.connect(dsn)
    try:
        used = await conn.fetchval(
            "SELECT count(*) FROM offering_claims WHERE offering_id = $1 AND status = 'used'", item)
    finally:
        await conn.close()
    out = {"codes": codes, "verifiers": verifiers, "scans": sum(statuses.values()),
           "statuses": dict(statuses), "used": used, "seconds": seconds}
    out["problems"] = [] if used == codes and statuses.get(200) == codes else [f"redemption: {out}"]
    return out


# --- processes ---------------------------------------------------------------------------------
def start_server(cfg: Path, out: Path, port: int, name: str) -> oa.Proc:
    proc = oa.Proc(name, [str(oa.PROJECT_BIN / "wxbackend"), "--config", str(cfg), "serve",
                          "--port", str(port), "--no-worker"], out / f"{name}.log")
    oa.wait_ready(proc, lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200)
    return proc


def start_worker(cfg: Path, out: Path) -> oa.Proc:
    return oa.Proc("worker", [str(oa.PROJECT_BIN / "wxbackend"), "--config", str(cfg), "worker"],
                   out / "worker.log")


def config(tmp: Path, port: int, embedded: EmbeddedServers, gate: bool, keys: dict) -> Path:
    cfg = tmp / f"{'gate' if gate else 'pg'}.toml"
    oa.write_config(cfg, tmp, port, embedded.dsn, embedded.redis_url, script="bench/signups/run.py",
                    after_security=ACTIVITIES.format(gate=str(gate).lower()), **keys)
    return cfg


async def drop(args, dsn: str, redis_url: str, ports: list[int], union: int, ids, tokens,
               title: str, gate: bool, during_factory=None) -> tuple[dict, int]:
    item = await new_item(dsn, args.stock, union, title)
    load = Load(ports, item, attempts_for(ids, tokens, args.repeats, seed=len(title)), args.connections)
    during = during_factory(item, load) if during_factory else None
    result = await load.run(during)
    return result, item


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="signups-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    keys = {"field_keys": f"1:{new_key()}", "index_key": base64.b64encode(os.urandom(32)).decode()}
    ports = [oa.free_port(), oa.free_port()]
    cfgs = {gate: config(tmp, ports[0], embedded, gate, keys) for gate in (True, False)}
    log(oa.wxbackend(cfgs[True], "migrate"))
    log(oa.wxbackend(cfgs[True], "seed"))
    ids, tokens, union = asyncio.run(make_workers(embedded.dsn, embedded.redis_url, args.workers))
    by_account = dict(zip(ids, tokens, strict=True))
    log(f"{len(ids)} certified workers with sessions")
    report: dict = {"drops": {}}

    def servers(gate: bool) -> list[oa.Proc]:
        procs = [start_server(cfgs[gate], out, port, f"server{i}") for i, port in enumerate(ports)]
        for p in procs:
            stack.callback(p.stop)
        return procs

    for gate, name in ((True, "gate"), (False, "postgresql")):
        procs = servers(gate)
        worker = start_worker(cfgs[gate], out)
        stack.callback(worker.stop)
        asyncio.run(drop(args, embedded.dsn, embedded.redis_url, ports, union, ids[:2000],
                         tokens[:2000], f"warm-up {name}", gate))  # imports, caches, pools
        result, item = asyncio.run(drop(args, embedded.dsn, embedded.redis_url, ports, union, ids,
                                        tokens, f"drop {name}", gate))
        time.sleep(3)  # the worker's sweep settles anything pending
        result["record"] = asyncio.run(check_record(embedded.dsn, embedded.redis_url, item,
                                                    args.stock, gate))
        result["problems"] = result["record"].pop("problems") + check_answers(result, args.stock)
        log(f"{name}: {result['rps']:.0f} attempts/s, p50 {result['p50_ms']:.1f} ms, "
            f"p99 {result['p99_ms']:.1f} ms, answers {result['statuses']}, record {result['record']}")
        report["drops"][name] = result
        for p in procs:
            p.stop()
        worker.stop()

    # The kill: through the gate, server0 gets SIGKILL when half the units are held, then restarts.
    procs = servers(True)
    worker = start_worker(cfgs[True], out)
    stack.callback(worker.stop)
    killed: dict = {}

    def killer(item: int, load: Load):
        async def watch() -> None:
            conn = await asyncpg.connect(embedded.dsn)
            taken = "SELECT taken FROM offerings WHERE id = $1"
            try:
                while await conn.fetchval(taken, item) < args.stock // 2:  # noqa: ASYNC110 - polling another process
                    await asyncio.sleep(0.002)
                procs[0].popen.send_signal(signal.SIGKILL)
                killed["at_attempt"] = load.next
                killed["taken_at_kill"] = await conn.fetchval(taken, item)
                await asyncio.sleep(0.5)
                procs[0] = await asyncio.to_thread(start_server, cfgs[True], out, ports[0],
                                                   "server0-restarted")
                stack.callback(procs[0].stop)
                killed["restarted_at_attempt"] = load.next
            finally:
                await conn.close()
        return watch

    result, item = asyncio.run(drop(args, embedded.dsn, embedded.redis_url, ports, union, ids, tokens,
                                    "drop with a kill", True, killer))
    time.sleep(4)  # past the pending grace (2 s) and a sweep (1 s)
    result["kill"] = killed
    result["record"] = asyncio.run(check_record(embedded.dsn, embedded.redis_url, item, args.stock, True))
    result["problems"] = result["record"].pop("problems") + check_answers(result, args.stock)
    result["visible_to_holders"] = asyncio.run(visible_to_holders(
        f"http://127.0.0.1:{ports[1]}", embedded.dsn, item, by_account))
    if result["visible_to_holders"] != result["record"]["holds"]:
        result["problems"].append(f"only {result['visible_to_holders']} holders see their place")
    log(f"kill: {killed}, record {result['record']}, answers {result['statuses']}, "
        f"lost with the process {result['connection_errors']}, visible {result['visible_to_holders']}")
    report["drops"]["gate, one process killed"] = result
    for p in procs:
        p.stop()
    worker.stop()

    procs = servers(True)
    report["redemption"] = asyncio.run(redemption_race(
        [f"http://127.0.0.1:{p}" for p in ports], embedded.dsn, embedded.redis_url, union, ids,
        by_account, 100, 10))
    log(f"redemption: {report['redemption']}")
    for p in procs:
        p.stop()

    gate_rps = report["drops"]["gate"]["rps"]
    report.update(
        ratio=gate_rps / report["drops"]["postgresql"]["rps"],
        targets_met=gate_rps >= TARGET_RPS and report["drops"]["gate"]["p99_ms"] < TARGET_P99_MS,
        when=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join([".venv/bin/python", "bench/signups/run.py", *sys.argv[1:]]),
        machine=oa.machine(), commit=oa.source_commit(), args=vars(args))
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    problems = [f"{name}: {p}" for name, d in report["drops"].items() for p in d["problems"]]
    problems += report["redemption"]["problems"]
    if problems:
        raise oa.BenchError("; ".join(problems) + f" (raw output in {out})")
    return report


def _count(statuses: dict, status: int) -> int:
    """A status's count, read back from JSON (keys become strings) or not."""
    return statuses.get(status, statuses.get(str(status), 0))


def render_section(report: dict) -> str:
    m, a = report["machine"], report["args"]
    lines = [SECTION, "",
             f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
             f"({m['os']}); commit {report['commit']}.", "", f"    {report['command']}", "",
             f"{a['stock']} units of one first-come item; {a['workers']} eligible certified workers "
             f"each trying once plus {a['repeats']} repeated attempts, shuffled, over "
             f"{a['connections']} keep-alive connections (closed loop) spread over two server "
             "processes that share one PostgreSQL and one Redis; a `wxbackend worker` process "
             "lapses holds and reconciles the gate. Everything, the load included, on the same "
             "2 cores. Target (through the gate): at least "
             f"{TARGET_RPS} attempts/s in all and p99 under {TARGET_P99_MS:.0f} ms.", "",
             "| design | attempts/s | p50 (ms) | p99 (ms) | answers | holds (distinct) | "
             "gate stock = record |", "|---|---|---|---|---|---|---|"]
    for name, d in report["drops"].items():
        r = d["record"]
        gate = "—" if "gate_stock" not in r else \
            f"{r['gate_stock']} = {a['stock'] - r['taken']}, {r['gate_pending']} pending"
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(d["statuses"].items()))
        if d["connection_errors"]:
            answers += f"; lost with the killed process: {sum(d['connection_errors'].values())}"
        lines.append(f"| {name} | {d['rps']:.0f} | {d['p50_ms']:.1f} | {d['p99_ms']:.1f} | "
                     f"{answers} | {r['holds']} ({r['distinct_holders']}) | {gate} |")
    kill = report["drops"]["gate, one process killed"]
    gate = report["drops"]["gate"]
    lines += ["", f"Through the gate against PostgreSQL alone: **{report['ratio']:.1f}×** the "
              f"attempts per second. Target {'met' if report['targets_met'] else '**not met**'}"
              + ("" if report["targets_met"] else
                 f" ({gate['rps']:.0f} attempts/s against {TARGET_RPS}; p99 {gate['p99_ms']:.1f} ms "
                 f"against {TARGET_P99_MS:.0f}). The slowest attempts are the winners of the drop's "
                 "first fraction of a second: each unit is recorded under the item's row lock and "
                 "committed (fsync) before the next, so the admitted attempts queue there; the "
                 "losers, answered by the gate or at the front, take a few milliseconds") + ".",
              "", f"The kill: `server0` got SIGKILL when {kill['kill']['taken_at_kill']} units were "
              f"held (attempt {kill['kill']['at_attempt']}) and was running again by attempt "
              f"{kill['kill']['restarted_at_attempt']}; its connections moved to `server1` "
              "meanwhile. The admissions it had made in Redis but not recorded were given back by "
              "the worker after the 2-second grace and taken by later attempts; every one of the "
              f"{kill['record']['holds']} holders saw the place in `GET /mp/v1/signups` "
              f"({kill['visible_to_holders']} checked).", ""]
    r = report["redemption"]
    lines += [f"Redemption: {r['codes']} confirmed places, each code presented by {r['verifiers']} "
              f"verifiers at once ({r['scans']} scans over HTTP in {r['seconds']:.1f} s): "
              f"{_count(r['statuses'], 200)} redeemed, {_count(r['statuses'], 409)} answered 409 "
              f"已使用; {r['used']} places used in PostgreSQL.", ""]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    oa.write_section("## Drops (bench/signups)", section)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="A first-come drop: the Redis gate against PostgreSQL alone.")
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5_000)
    parser.add_argument("--stock", type=int, default=500)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the lock or idle")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()

    def docs(report: dict) -> None:
        if args.docs:
            write_docs(render_section(report))

    return oa.run_main(args, main_inner, lambda r: print("\n" + render_section(r)), docs)


if __name__ == "__main__":
    sys.exit(main())
