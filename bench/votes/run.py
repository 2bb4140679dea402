"""A vote burst (线上投票): 20,000 eligible certified workers each casting one ballot plus 5,000
repeated ballots (answered 409 今天已经给该选项投过票了), at 64 connections, against two server
processes sharing one PostgreSQL and one Redis. Most ballots go to one option (a popular
candidate), so its count row is the hot spot.

    .venv/bin/python bench/votes/run.py   # from the repository root [--workers 20000]
                                [--repeats 5000] [--connections 64] [--no-docs]

Checked after the burst: one vote row per worker, each option's count equal to its rows, and no
answer other than 201 (counted) or 409 (already voted). The load, the servers, PostgreSQL and
Redis share the machine's two cores (the load client is the drops benchmark's). Results go to
``bench/results/votes/<time>/summary.json`` and the section "Votes" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import asyncpg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

drops = load_script(ROOT / "bench" / "signups" / "run.py", "signups_run")
oa = drops.oa

from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.infra.pii import new_key  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "votes"
SECTION = "## Votes (bench/votes)"
SHARES = (0.6, 0.3, 0.1)  # of the ballots, per option
log = oa.log


async def new_poll(dsn: str, union: int, title: str) -> tuple[int, list[int]]:
    """A published vote item open to the union's certified members: three options, one vote per
    worker per day, counts shown live."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            item = await conn.fetchval(
                """INSERT INTO offerings (kind, form, org_id, org_path, title, opens_at, closes_at,
                                          mode, stock, audience, status, published_at)
                   SELECT 'activity', 'vote', id, path, $1, now() - interval '1 minute',
                          now() + interval '1 hour', 'first_come', 100,
                          jsonb_build_object('level', 'certified', 'orgs', jsonb_build_array($2::bigint)),
                          'published', now()
                   FROM orgs WHERE code = 'SC-510100' RETURNING id""", title, union)
            await conn.execute("INSERT INTO polls VALUES ($1, 1, NULL, 'live')", item)
            options = [await conn.fetchval(
                "INSERT INTO poll_options (offering_id, position, label) VALUES ($1, $2, $3) RETURNING id",
                item, n, f"候选{n}") for n in range(1, len(SHARES) + 1)]
        return item, options
    finally:
        await conn.close()


class Ballots(drops.Load):
    """The drops benchmark's closed-loop client, sending ballots: each worker's option is fixed
    (by the shares), so a repeated ballot names the option already voted for."""

    def __init__(self, ports: list[int], item: int, attempts: list[tuple[int, str]],
                 connections: int, options: list[int]) -> None:
        super().__init__(ports, item, attempts, connections)
        self.choice: dict[str, int] = {}
        bounds = [sum(SHARES[:n + 1]) for n in range(len(SHARES))]
        for n, (_, token) in enumerate(sorted(set(attempts))):
            share = (n * 0.618034) % 1  # spread the options evenly over the workers
            self.choice[token] = options[next(i for i, b in enumerate(bounds) if share < b)]

    def request(self, port: int, token: str) -> bytes:
        body = json.dumps({"option_ids": [self.choice[token]]}).encode()
        return (f"POST /mp/v1/offerings/{self.item}/poll/votes HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def check_record(dsn: str, item: int, workers: int) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM poll_votes WHERE offering_id = $1", item)
        voters = await conn.fetchval(
            "SELECT count(DISTINCT account_id) FROM poll_votes WHERE offering_id = $1", item)
        counted = dict(await conn.fetch(
            "SELECT option_id, count(*) FROM poll_votes WHERE offering_id = $1 GROUP BY option_id", item))
        kept = dict(await conn.fetch(
            """SELECT o.id, coalesce(sum(c.votes), 0) FROM poll_options o
               LEFT JOIN poll_counts c ON c.option_id = o.id WHERE o.offering_id = $1 GROUP BY o.id""",
            item))
    finally:
        await conn.close()
    out = {"vote_rows": rows, "voters": voters, "counts": sorted(kept.values(), reverse=True)}
    problems = []
    if not rows == voters == workers:
        problems.append(f"{rows} vote rows from {voters} workers, {workers} expected")
    if any(kept[o] != counted.get(o, 0) for o in kept):
        problems.append(f"counts {kept} against rows {counted}")
    out["problems"] = problems
    return out


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="votes-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    keys = {"field_keys": f"1:{new_key()}", "index_key": base64.b64encode(os.urandom(32)).decode()}
    ports = [oa.free_port(), oa.free_port()]
    cfg = drops.config(tmp, ports[0], embedded, True, keys)
    log(oa.wxbackend(cfg, "migrate"))
    log(oa.wxbackend(cfg, "seed"))
    ids, tokens, union = asyncio.run(drops.make_workers(embedded.dsn, embedded.redis_url, args.workers))
    log(f"{len(ids)} certified workers with sessions")
    procs = [drops.start_server(cfg, out, port, f"server{i}") for i, port in enumerate(ports)]
    for p in procs:
        stack.callback(p.stop)

    async def burst(title: str, n: int, repeats: int) -> tuple[dict, int]:
        item, options = await new_poll(embedded.dsn, union, title)
        attempts = drops.attempts_for(ids[:n], tokens[:n], repeats, seed=len(title))
        return await Ballots(ports, item, attempts, args.connections, options).run(), item

    asyncio.run(burst("warm-up", 2000, 0))  # imports, caches, pools
    result, item = asyncio.run(burst("burst", len(ids), args.repeats))
    result["record"] = asyncio.run(check_record(embedded.dsn, item, len(ids)))
    unexpected = {s: n for s, n in result["statuses"].items() if s not in (201, 409)}
    result["problems"] = result["record"].pop("problems") + (
        [f"answers other than 201/409: {unexpected}"] if unexpected else [])
    if result["statuses"].get(201, 0) != len(ids):
        result["problems"].append(f"{result['statuses'].get(201, 0)} ballots counted, {len(ids)} expected")
    log(f"votes: {result['rps']:.0f} ballots/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, answers {result['statuses']}, record {result['record']}")
    report = {"burst": result, "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "command": shlex.join([".venv/bin/python", "bench/votes/run.py", *sys.argv[1:]]),
              "machine": oa.machine(), "commit": oa.source_commit(), "args": vars(args)}
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    if result["problems"]:
        raise oa.BenchError("; ".join(result["problems"]) + f" (raw output in {out})")
    return report


def render_section(report: dict) -> str:
    m, a, r = report["machine"], report["args"], report["burst"]
    answers = ", ".join(f"{s}: {n}" for s, n in sorted(r["statuses"].items()))
    return "\n".join([
        SECTION, "",
        f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['os']}); commit {report['commit']}.", "", f"    {report['command']}", "",
        f"One vote item with three options, one vote per worker per day; {a['workers']} eligible "
        f"certified workers each casting one ballot plus {a['repeats']} repeated ballots, shuffled, "
        f"over {a['connections']} keep-alive connections (closed loop) spread over two server "
        "processes sharing one PostgreSQL and one Redis; "
        f"{' / '.join(f'{s:.0%}' for s in SHARES)} of the workers vote for the first, second and "
        "third option, so the first option's count row takes most of the updates. Everything, the "
        "load included, on the same 2 cores.", "",
        "| ballots/s | p50 (ms) | p99 (ms) | answers | vote rows (workers) | counts |",
        "|---|---|---|---|---|---|",
        f"| {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {answers} | "
        f"{r['record']['vote_rows']} ({r['record']['voters']}) | "
        f"{' / '.join(str(c) for c in r['record']['counts'])} |", "",
        "Each ballot is one transaction: the worker's advisory lock, the day's votes read back, the "
        "vote row and its option's count (split over 16 rows by the voter, so the popular option's "
        "ballots do not queue on one row lock). Repeated ballots are answered 409 (今天已经给该选项投过票了) "
        "and write nothing; every option's count equals its rows.", ""])


def write_docs(section: str) -> None:
    oa.write_section("## Votes (bench/votes)", section)


def main() -> int:
    parser = argparse.ArgumentParser(description="A vote burst: ballots counted exactly once.")
    parser.add_argument("--workers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5_000)
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
