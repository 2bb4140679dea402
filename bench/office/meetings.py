"""Office: meeting sign-in. A meeting of 1,000 cadres, each with their WeChat bound and an
account signed in through the Official Account; at the start all 1,000 scan the venue's code at
once. Measured through the product's services (``SignIn.by_scan``: the token checked, the
account's openid, the bound cadre, the meeting, one conditional update), all 1,000 started
together on one event loop sharing the pool of ``[database] pool_max`` connections:

- every attendee is recorded exactly once (then a second wave of the same 1,000 scans: all are
  told 已签到, nothing changes);
- the wave's wall time and each sign-in's latency (p50, p99), three rounds (three meetings),
  medians with ranges.

    .venv/bin/python bench/office/meetings.py     # from the repository root [--attendees 1000]
                                                  # [--rounds 3] [--no-docs]

The cadres, accounts and bindings are loaded straight into PostgreSQL; the meetings are created
through the service (which writes the invitations and queues their reminders). PostgreSQL and
the process share this machine's two cores. Results go to ``bench/results/office-meetings/<time>/``
and the section "Office: meeting sign-in" of ``docs/benchmarks.md``.
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
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

oa = load_script(ROOT / "bench" / "oa_messages" / "run.py", "oa_run")

from wxbackend.config import load_settings  # noqa: E402
from wxbackend.infra.db import connect  # noqa: E402
from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.infra.migrations import migrate  # noqa: E402
from wxbackend.infra.pii import new_key  # noqa: E402
from wxbackend.runtime import open_runtime  # noqa: E402
from wxbackend.services.cadres.permissions import Actor  # noqa: E402
from wxbackend.services.clock import CHINA  # noqa: E402
from wxbackend.services.errors import Conflict  # noqa: E402
from wxbackend.services.seed import seed  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "office-meetings"
SECTION = "## Office: meeting sign-in (bench/office/meetings.py)"
APPID = "wxbench0000000000"
START = dt.datetime(2026, 6, 16, 9, 0, tzinfo=CHINA)   # a Tuesday morning
log = oa.log


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Clock:
    """The services' clock: set to an instant, then running on with the wall clock."""

    def __init__(self, at: dt.datetime) -> None:
        self.set(at)

    def set(self, at: dt.datetime) -> None:
        self._offset = at - dt.datetime.now(CHINA)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(CHINA) + self._offset


async def load(dsn: str, attendees: int) -> dict:
    """The Chengdu union's organiser and ``attendees`` cadres, each bound to the openid of an
    account that signed in through the Official Account."""
    conn = await connect(dsn)
    started = time.perf_counter()
    try:
        await migrate(conn)
        await seed(conn)
        chengdu = await conn.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
        organiser = await conn.fetchval(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
               VALUES ('huiwu', '会务', $1, 'cadre', 'business', 'unused') RETURNING id""", chengdu)
        await conn.execute("INSERT INTO cadre_grants (cadre_id, permission) VALUES ($1, 'meeting.manage')",
                           organiser)
        cadres = [r["id"] for r in await conn.fetch(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
               SELECT 'bench' || n, '干部' || n, $1, 'cadre', 'business', 'unused'
               FROM generate_series(1, $2) AS n RETURNING id""", chengdu, attendees)]
        accounts = [r["id"] for r in await conn.fetch(
            """INSERT INTO accounts (registered_at, home_org_id)
               SELECT now(), $1 FROM generate_series(1, $2) RETURNING id""", chengdu, attendees)]
        pairs = list(zip(cadres, accounts, strict=True))
        await conn.executemany(
            """INSERT INTO account_identities (account_id, kind, issuer, subject)
               VALUES ($1, 'oa_openid', $2, $3)""", [(a, APPID, f"o-bench-{c}") for c, a in pairs])
        await conn.executemany(
            "INSERT INTO cadre_wechat (cadre_id, oa_openid, bound_at) VALUES ($1, $2, now())",
            [(c, f"o-bench-{c}") for c, _ in pairs])
    finally:
        await conn.close()
    return {"attendees": attendees, "organiser": organiser, "chengdu": chengdu, "pairs": pairs,
            "load_seconds": time.perf_counter() - started}


async def measure(settings, embedded: EmbeddedServers, loaded: dict, rounds: int) -> dict:
    clock = Clock(START - dt.timedelta(days=1))
    async with open_runtime(settings, embedded.dsn, embedded.redis_url, now=clock) as rt:
        async with rt.pool.acquire() as conn:
            path = await conn.fetchval("SELECT path::text FROM orgs WHERE id = $1", loaded["chengdu"])
        organiser = Actor(id=loaded["organiser"], username="huiwu", org_id=loaded["chengdu"], org_path=path,
                          role="cadre", duty="business", permissions=frozenset({"meeting.manage"}))
        pairs = loaded["pairs"]
        runs = []
        for n in range(rounds):
            clock.set(START - dt.timedelta(days=1))
            starts = START + dt.timedelta(days=n)
            t = time.perf_counter()
            made = await rt.meetings.internal.create(organiser, {
                "title": f"全市工会干部大会（第{n + 1}场）", "place": "成都市总工会大礼堂",
                "starts_at": starts.isoformat(), "ends_at": (starts + dt.timedelta(hours=3)).isoformat(),
                "invitees": [c for c, _ in pairs]})
            create_s = time.perf_counter() - t
            clock.set(starts - dt.timedelta(minutes=5))
            code = (await rt.meetings.signin.venue_code(organiser, made["id"]))["code"]
            body = {"meeting_id": made["id"], "code": code}

            async def scan(account: int, body: dict) -> tuple[float, bool]:
                t0 = time.perf_counter()
                try:
                    await rt.meetings.signin.by_scan(account, body)
                    ok = True
                except Conflict as exc:
                    assert exc.code == "already_signed", exc.code
                    ok = False
                return (time.perf_counter() - t0) * 1000, ok

            # The timed wave, then the replays; both checked below (each recorded exactly once).
            t = time.perf_counter()
            wave = await asyncio.gather(*(scan(a, body) for _, a in pairs))
            wave_s = time.perf_counter() - t
            again = await asyncio.gather(*(scan(a, body) for _, a in pairs))
            async with rt.pool.acquire() as conn:
                recorded = await conn.fetchval(
                    """SELECT count(*) FROM meeting_invitees
                       WHERE meeting_id = $1 AND signed_in_at IS NOT NULL""", made["id"])
            latencies = [ms for ms, _ in wave]
            run = {"create_s": create_s, "wave_s": wave_s, "signed": sum(ok for _, ok in wave),
                   "recorded": recorded, "replays_refused": sum(not ok for _, ok in again),
                   "p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99), "max_ms": max(latencies)}
            assert run["signed"] == run["recorded"] == len(pairs), run
            assert run["replays_refused"] == len(pairs), run
            log(f"round {n + 1}: {run['signed']} signed in {wave_s:.2f} s, p50 {run['p50_ms']:.0f} ms, "
                f"p99 {run['p99_ms']:.0f} ms; replays refused {run['replays_refused']}")
            runs.append(run)
        pool_max = settings.database.pool_max
    return {"runs": runs, "pool_max": pool_max}


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="meetings-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    report: dict = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": shlex.join([".venv/bin/python", "bench/office/meetings.py", *sys.argv[1:]]),
                    "machine": oa.machine(), "commit": oa.source_commit(), "args": vars(args)}
    loaded = asyncio.run(load(embedded.dsn, args.attendees))
    report["load"] = {k: v for k, v in loaded.items() if k != "pairs"}
    settings = load_settings(None, environ={}).replace(
        wechat={"appid": APPID}, casework={"cadre_template_id": "TPL-BENCH"},
        security={"field_keys": f"1:{new_key()}", "field_key_current": 1,
                  "index_key": _key32(), "audit_key": _key32()})
    report.update(asyncio.run(measure(settings, embedded, loaded, args.rounds)))
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str),
                                      encoding="utf-8")
    return report


def _key32() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def render_section(report: dict) -> str:
    m, runs = report["machine"], report["runs"]
    n = report["load"]["attendees"]

    def spread(key: str, fmt: str) -> str:
        values = [r[key] for r in runs]
        low, high = format(min(values), fmt), format(max(values), fmt)
        return f"{format(statistics.median(values), fmt)} ({low}–{high})"

    return "\n".join([
        SECTION, "",
        f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['os']}); commit {report['commit']}.", "", f"    {report['command']}", "",
        f"{n:,} cadres of one union, each bound to the WeChat of an account signed in through the "
        f"Official Account, invited to one meeting; at its start all {n:,} sign-ins from the "
        f"venue's code are started at once through `SignIn.by_scan` (one event loop, a pool of "
        f"{report['pool_max']} connections, PostgreSQL on the same two cores). "
        f"{len(runs)} rounds, a meeting each; medians with the range.", "",
        "| what | result |", "|---|---|",
        f"| creating the meeting with {n:,} invitations (and their reminders) | "
        f"{spread('create_s', '.2f')} s |",
        f"| {n:,} concurrent sign-ins, wall time | **{spread('wave_s', '.2f')} s** |",
        f"| one sign-in's latency in the wave | p50 {spread('p50_ms', '.0f')} ms, "
        f"**p99 {spread('p99_ms', '.0f')} ms** |",
        f"| recorded | {', '.join(str(r['recorded']) for r in runs)} of {n:,}: each exactly once |",
        f"| the same {n:,} scans again | {', '.join(str(r['replays_refused']) for r in runs)} told "
        "已签到, nothing written |", "",
        "A sign-in reads the account's openid and the bound cadre, then records the time in one "
        "conditional `UPDATE … WHERE signed_in_at IS NULL` on the invitee's row: no transaction "
        "spans more, no lock but that row's, and nothing is audited (the organiser's sign-ins by "
        "hand are). The wave's latency is mostly the wait for one of the pool's connections: "
        f"{n:,} sign-ins at once queue behind the pool, as attendees do at a venue's doors.", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description="Office: meeting sign-in.")
    parser.add_argument("--attendees", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the lock or idle")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()

    def docs(report: dict) -> None:
        if args.docs:
            oa.write_section(SECTION, render_section(report))

    return oa.run_main(args, main_inner, lambda r: print("\n" + render_section(r)), docs)


if __name__ == "__main__":
    sys.exit(main())
