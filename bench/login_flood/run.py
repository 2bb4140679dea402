"""OA pushes while cadre sign-in is flooded: does a login flood stall the rest of the server?

    .venv/bin/python bench/login_flood/run.py   # from the repository root [--duration 8] [--runs 3]
                                    [--rate 200] [--flood 150] [--flood-pause 1] [--no-docs]
                                    [--only throttled|argon2]

The figure: the p99 latency of OA pushes (safe-mode text "帮助", each with its own MsgId,
answered and stored) sent open loop at ``--rate`` per second, without and with a flood of
``--flood`` concurrent cadre sign-ins with unknown usernames (each attacker sends again
``--flood-pause`` seconds after its answer). The target: with the flood, the push p99 stays
within 2× of the figure without it. It reuses ``bench/oa_messages/run.py`` (lock, idle check,
processes, config writer, machine facts, push checks): the server alone on core 0, PostgreSQL,
Redis, the push driver and the flood (a separate process) on core 1.

Two server configurations, each measured ``--runs`` times as (no flood, flood) pairs:

* ``throttled``: the shipped sign-in limits. Every attempt comes from 127.0.0.1 (the server
  trusts forwarded headers only from configured proxies, so an attacker's address is the one it
  connects from): after ``login_per_ip_minute`` attempts the address gets 429 before any hashing,
  held back a random 1–2 s (``[admin] refused_delay_ms``).
* ``argon2``: both sign-in limits raised to 10^9 through ``[admin]``, so every attempt reaches
  Argon2: the hash concurrency bound and its queue (503 ``signin_busy`` beyond it) are what keep
  pushes moving.

Latency is timed from each push's scheduled send time (no coordinated omission). ``/healthz``
is probed every 0.5 s. Raw figures go to ``bench/results/login_flood/<time>/summary.json`` and
the section "Cadre sign-in flood" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

oa = load_script(ROOT / "bench" / "oa_messages" / "run.py", "oa_messages_run")
pushes = oa.pushes

from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "login_flood"
SECTION = "## Cadre sign-in flood (bench/login_flood)"
UNTHROTTLED = "\n[admin]\nlogin_per_ip_minute = 1000000000\nlogin_per_username_hour = 1000000000\n"
VARIANTS = {"throttled": "", "argon2": UNTHROTTLED}
log = oa.log


# --- the flood (a child process on core 1) --------------------------------------------------------
async def flood(url: str, seconds: float, workers: int, pause: float) -> dict:
    """Raw HTTP/1.1 keep-alive requests, niced: the flood must not starve PostgreSQL and Redis,
    which share core 1 with it (httpx costs milliseconds of CPU a request; this, tens of µs)."""
    os.nice(19)
    host, port = url.removeprefix("http://").split(":")
    codes: Counter[str] = Counter()
    waits: list[float] = []
    deadline = time.monotonic() + seconds

    def request() -> bytes:
        body = json.dumps({"username": f"x{uuid.uuid4().hex[:12]}", "password": "Guess-Password-1",
                           "totp": ""}).encode()
        return (f"POST /admin/v1/login HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: "
                f"application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def attacker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.monotonic() < deadline:
                started = time.monotonic()
                writer.write(request())
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1].decode()
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                codes[status] += 1
                waits.append(time.monotonic() - started)
                await asyncio.sleep(pause)
        except (OSError, asyncio.IncompleteReadError) as exc:
            codes[type(exc).__name__] += 1
        finally:
            writer.close()

    await asyncio.gather(*(attacker() for _ in range(workers)))
    waits.sort()
    return {"answers": dict(codes), "attempts": len(waits),
            "p50_ms": 1000 * waits[len(waits) // 2] if waits else None,
            "p99_ms": 1000 * waits[int(len(waits) * 0.99)] if waits else None}


# --- the measured pushes --------------------------------------------------------------------------
async def measure(url: str, seconds: float, rate: int, msg_ids, users: list[str]) -> dict:
    pool = list(pushes.make_pushes(int(seconds * rate), msg_ids, users))
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    health: Counter[str] = Counter()
    health_worst = 0.0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
        start = time.monotonic() + 0.2

        async def push(i: int, query: dict, body: bytes) -> None:
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            try:
                got = await client.post(f"{url}{pushes.PATH}", params=query, content=body)
                if got.status_code != 200 or not got.content.startswith(b"<xml>"):
                    failures[str(got.status_code)] += 1
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
            latencies.append(time.monotonic() - due)

        async def probe() -> None:
            nonlocal health_worst
            while time.monotonic() < start + seconds:
                began = time.monotonic()
                try:
                    got = await client.get(f"{url}/healthz", timeout=10)
                    health[str(got.status_code)] += 1
                except httpx.HTTPError as exc:
                    health[type(exc).__name__] += 1
                health_worst = max(health_worst, time.monotonic() - began)
                await asyncio.sleep(0.5)

        await asyncio.gather(probe(), *(push(i, q, b) for i, (q, b) in enumerate(pool)))
    latencies.sort()
    return {"pushes": len(latencies), "failed": dict(failures),
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "healthz": dict(health), "healthz_worst_ms": 1000 * health_worst}


def phase(server, args, msg_ids, users: list[str], flooded: bool) -> dict:
    worker = None
    if flooded:
        worker = subprocess.Popen(
            [sys.executable, __file__, "--flood-worker", server.url, str(args.duration + 1.0),
             str(args.flood), str(args.flood_pause)], stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # the flood is on before the first measured push
    try:
        result = asyncio.run(measure(server.url, args.duration, args.rate, msg_ids, users))
    finally:
        if worker is not None:
            out, _ = worker.communicate(timeout=args.duration + 60)
            result["flood"] = json.loads(out.strip().splitlines()[-1])
    if result["failed"]:
        raise oa.BenchError(f"pushes failed: {result['failed']}")
    log(f"  {'flood   ' if flooded else 'no flood'}: push p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, healthz {result['healthz']}"
        + (f", sign-in answers {result['flood']['answers']}" if flooded else ""))
    return result


def check_login(server) -> None:
    got = httpx.post(f"{server.url}/admin/v1/login", json={"username": "nobody", "password": "x"},
                     timeout=10)
    if got.status_code != 401 or got.json()["error"]["code"] != "login_failed":
        raise oa.BenchError(f"check sign-in answered {got.status_code}: {got.text[:200]}")


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    os.sched_setaffinity(0, {oa.LOAD_CORE})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="login-flood-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    msg_ids, users = pushes.MsgIds(), pushes.openids(2000)
    report: dict = {"variants": {}}
    for name, admin in VARIANTS.items():
        if args.only and name != args.only:
            continue
        cfg, port = tmp / f"{name}.toml", oa.free_port()
        oa.write_config(cfg, tmp, port, embedded.dsn, embedded.redis_url,
                        script="bench/login_flood/run.py", after_security=admin)
        if not report["variants"]:
            log(oa.wxbackend(cfg, "migrate"))
            log(oa.wxbackend(cfg, "seed"))
        server = oa.start_ours(cfg, out, port)
        try:
            oa.check_one_push(server, msg_ids, pushes.help_reply())
            check_login(server)
            log(f"{name}: warm-up")
            asyncio.run(measure(server.url, 2.0, args.rate, msg_ids, users))
            runs = []
            for i in range(args.runs):
                log(f"{name}: run {i + 1}")
                runs.append({"quiet": phase(server, args, msg_ids, users, False),
                             "flood": phase(server, args, msg_ids, users, True)})
        finally:
            server.proc.stop()
        quiet = statistics.median(r["quiet"]["p99_ms"] for r in runs)
        flooded = statistics.median(r["flood"]["p99_ms"] for r in runs)
        report["variants"][name] = {"runs": runs, "quiet_p99_ms": quiet, "flood_p99_ms": flooded,
                                    "ratio": flooded / quiet, "within_2x": flooded <= 2 * quiet}
    report.update(when=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                  command=shlex.join([".venv/bin/python", "bench/login_flood/run.py", *sys.argv[1:]]),
                  machine=oa.machine(), commit=oa.source_commit(),
                  args={k: v for k, v in vars(args).items() if k != "flood_worker"})
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    log(f"raw output in {out.relative_to(ROOT)}")
    return report


def _range(runs: list[dict], part: str, key: str) -> str:
    values = [r[part][key] for r in runs]
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def render_section(report: dict) -> str:
    m, a = report["machine"], report["args"]
    lines = [SECTION, "",
             f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
             f"({m['os']}); commit {report['commit']}.", "",
             f"    {report['command']}", "",
             f"OA pushes open loop at {a['rate']}/s for {a['duration']:g} s, without and with "
             f"{a['flood']} concurrent sign-ins with unknown usernames from 127.0.0.1 (each "
             f"attacker sends again {a['flood_pause']:g} s after its answer); {a['runs']} pairs "
             "per configuration, medians (min–max). Server on core 0; PostgreSQL, Redis, the push "
             "driver and the flood on core 1. Target: push p99 under the flood within 2× of the "
             "figure without it.", "",
             "| configuration | push p99, no flood (ms) | push p99, flood (ms) | ratio | "
             "sign-in answers during the flood (last run) | /healthz |",
             "|---|---|---|---|---|---|"]
    for name, v in report["variants"].items():
        last = v["runs"][-1]["flood"]
        answers = last["flood"]["answers"]
        lines.append(f"| {name} | {_range(v['runs'], 'quiet', 'p99_ms')} | "
                     f"{_range(v['runs'], 'flood', 'p99_ms')} | {v['ratio']:.2f}"
                     f"{'' if v['within_2x'] else ' (over 2×)'} | "
                     f"{', '.join(f'{k}: {n}' for k, n in sorted(answers.items()))} | "
                     f"{', '.join(f'{k}: {n}' for k, n in last['healthz'].items())}, worst "
                     f"{last['healthz_worst_ms']:.0f} ms |")
    lines += ["", "`throttled` is the shipped configuration: after `login_per_ip_minute` attempts "
              "the address gets 429 before any hashing, answered at the server's front (no "
              "handler, no Redis round trip) and held back a random 1–2 s first (`[admin] "
              "refused_delay_ms`): answered together, the 150 attackers would come back together, "
              "one burst a second that every push arriving with it queues behind; held back at "
              "random, they come back spread out and at half the pace. `argon2` raises both "
              "sign-in limits to 10^9 so that every attempt is hashed: at most `hash_concurrency` "
              "hashes run at once (half the cores, in threads at the lowest priority) and beyond "
              "`hash_queue` waiting sign-ins the answer is 503, held back a random 1–2 s like the "
              "429s; no pooled connection is held while hashing. Before these changes, in the "
              "security review, 150 concurrent sign-ins made `/healthz` answer 503 after 2 s and "
              "other requests take 5–36 s.", ""]
    if not report["variants"].get("argon2", {}).get("within_2x", True):
        lines += [
            "`argon2` stays over 2×: with the limits off, every attempt runs the handler and "
            "about a tenth of them an Argon2 verification on the server's own core, which the "
            "event loop then shares (the hashing thread yields to it, but not instantly). It "
            "stands for a flood from as many addresses as attackers, each under its own limit: "
            "such a flood is bounded by the hash queue and turned into quick 503s, not held off "
            "entirely; the nginx site in `deploy/` (`limit_req` per address) is the layer in "
            "front of it.", ""]
    if not report["variants"].get("throttled", {}).get("within_2x", True):
        lines += [
            "**The 2× target is not met in this run.** PostgreSQL, Redis, the push driver and the "
            "flood share the second core, and the quiet p99 itself moves by several times from "
            "run to run on this machine; see the runs in the raw output. In production the nginx "
            "site in `deploy/` also refuses a flood per address (`limit_req`) before it reaches a "
            "server process.", ""]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    oa.write_section("## Cadre sign-in flood (bench/login_flood)", section)


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--flood-worker":
        url, seconds, workers, pause = sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
        print(json.dumps(asyncio.run(flood(url, seconds, workers, pause))))
        return 0
    parser = argparse.ArgumentParser(description="OA push latency while cadre sign-in is flooded.")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured phase")
    parser.add_argument("--runs", type=int, default=3, help="(no flood, flood) pairs per configuration")
    parser.add_argument("--rate", type=int, default=200, help="pushes per second, open loop")
    parser.add_argument("--flood", type=int, default=150, help="concurrent sign-in attackers")
    parser.add_argument("--flood-pause", type=float, default=1.0, help="seconds between an attacker's tries")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the lock or idle")
    parser.add_argument("--only", choices=sorted(VARIANTS), help="measure one configuration")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()

    def print_report(report: dict) -> None:
        print("\n" + render_section(report))

    def docs(report: dict) -> None:
        if args.docs:
            write_docs(render_section(report))

    return oa.run_main(args, main_inner, print_report, docs)


if __name__ == "__main__":
    sys.exit(main())
