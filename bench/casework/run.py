"""Casework at the province's scale: 200,000 grassroots unions and a year of appeals (1,000,000
closed, 100,000 open), then

1. **我的待办**: a cadre with 1,000 open tasks reads the first page, ``--reads`` times one after
   another. Target: p99 under 100 ms.
2. **The overdue sweep** over every open item, all of whose deadlines are due at once (the worst
   moment: the sweep was down for days), with reminders on and a fifth of the desks' cadres bound
   to WeChat. Target: under 30 s.
3. **Concurrent completions**: 1,000 acceptances of distinct appeals at once, and 100 of the same
   appeal at once (exactly one may win).
4. **A month's completion rates for the whole province**, by city. Target: under 2 s.

    .venv/bin/python bench/casework/run.py        # from the repository root [--closed 1000000]
                                                  # [--open 100000] [--unions 200000] [--no-docs]

The items are loaded straight into PostgreSQL in the shape the engine leaves them (events,
deadlines, steps, tasks); the measured operations go through the product's services in one
process on this machine's two cores. Results go to ``bench/results/casework/<time>/`` and the
section "Casework" of ``docs/benchmarks.md``.
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
import time
from pathlib import Path

import asyncpg

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
from wxbackend.services.casework.rates import period_bounds  # noqa: E402
from wxbackend.services.clock import CHINA  # noqa: E402
from wxbackend.services.errors import Conflict  # noqa: E402
from wxbackend.services.seed import seed  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "casework"
SECTION = "## Casework (bench/casework)"
NOW = dt.datetime(2026, 12, 20, 10, 0, tzinfo=CHINA)   # the year 2026 is behind, the calendar known
log = oa.log


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- loading ------------------------------------------------------------------------------------
async def load(dsn: str, unions: int, closed: int, open_items: int) -> dict:
    conn = await connect(dsn)
    started = time.perf_counter()
    try:
        await migrate(conn)
        await seed(conn)
        definition = await conn.fetchval(
            "SELECT id FROM process_definitions WHERE module = 'appeal' AND status = 'published'")
        await conn.execute("SET synchronous_commit = off")
        # 200,000 grassroots unions spread over the 21 city unions.
        await conn.execute(
            """WITH cities AS (SELECT id, path, row_number() OVER (ORDER BY id) - 1 AS n
                               FROM orgs WHERE kind = 'city'),
                    made AS (SELECT nextval('orgs_id_seq') AS id, g FROM generate_series(1, $1) g)
               INSERT INTO orgs (id, parent_id, code, name, kind, path)
               SELECT m.id, c.id, 'BENCH-' || m.g, '基层工会' || m.g, 'grassroots',
                      (c.path::text || '.' || m.id)::ltree
               FROM made m JOIN cities c ON c.n = m.g % 21""", unions)
        desk_union = await conn.fetchval("SELECT id FROM orgs WHERE code = 'BENCH-1'")
        # One desk cadre per 50 unions (4,000), a fifth bound to WeChat; the benchmark's cadre
        # sits at BENCH-1, which will hold 1,000 open appeals.
        await conn.execute(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
               SELECT 'desk' || o.id, '办理人' || o.id, o.id, 'cadre', 'business', 'unused'
               FROM orgs o WHERE o.kind = 'grassroots' AND (o.id % 50 = 0 OR o.id = $1)""",
            desk_union)
        await conn.execute(
            """INSERT INTO cadre_grants (cadre_id, permission) SELECT id, 'appeal.handle' FROM cadres""")
        await conn.execute(
            """INSERT INTO cadre_wechat (cadre_id, oa_openid, bound_at)
               SELECT id, 'o-bench-' || id, now() FROM cadres WHERE id % 5 = 0""")
        await conn.execute(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
               SELECT 'city' || o.id, '市总办理人' || o.id, o.id, 'cadre', 'business', 'unused'
               FROM orgs o WHERE o.kind IN ('city', 'province')""")
        await conn.execute(
            """INSERT INTO cadre_grants (cadre_id, permission)
               SELECT c.id, p FROM cadres c JOIN orgs o ON o.id = c.org_id,
                      unnest(ARRAY['appeal.handle', 'kpi.read']) p
               WHERE o.kind IN ('city', 'province') ON CONFLICT DO NOTHING""")
        log(f"{unions:,} unions and their desks in {time.perf_counter() - started:.0f} s")

        # The items: closed ones spread over 2026, open ones filed in the last two months; the
        # first 1,000 open ones at the benchmark's union, the rest anywhere.
        t = time.perf_counter()
        await conn.execute(
            """INSERT INTO work_items (module, definition_id, org_id, org_path, title, status, outcome,
                   version, data, submitter_account_id, opened_at, closed_at, due_at)
               SELECT 'appeal', $1, o.id, o.path, '咨询·批量', 'closed', 'replied', 3,
                      '{"category": "咨询"}', NULL, opened, opened + (g % 70) * interval '1 day',
                      opened + interval '60 days'
               FROM generate_series(1, $2) g
               JOIN LATERAL (SELECT timestamptz '2026-01-01 09:00+08' + (g % 300) * interval '1 day'
                             + (g % 480) * interval '1 minute' AS opened) x ON true
               JOIN orgs o ON o.code = 'BENCH-' || (1 + (g::bigint * 7919) % $3)""",
            definition, closed, unions)
        await conn.execute(
            """INSERT INTO work_items (module, definition_id, org_id, org_path, title, status, version,
                   data, opened_at, due_at)
               SELECT 'appeal', $1, o.id, o.path, '法律援助·待办' || g, 'open', 1,
                      '{"category": "法律援助"}', opened, opened + interval '15 days'
               FROM generate_series(1, $2) g
               JOIN LATERAL (SELECT timestamptz '2026-10-20 09:00+08'
                                    + (g % 55) * interval '1 day' AS opened) x ON true
               JOIN orgs o
                 ON o.code = 'BENCH-' || CASE WHEN g <= 1000 THEN 1 ELSE 1 + (g::bigint * 7919) % $3 END""",
            definition, open_items, unions)
        log(f"{closed + open_items:,} items in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        await conn.execute(
            """INSERT INTO work_steps (item_id, node, name, sign, status, opened_at)
               SELECT id, 'accept', '登记受理', 'single', 'open', opened_at FROM work_items
               WHERE status = 'open'""")
        await conn.execute(
            """INSERT INTO work_tasks (step_id, item_id, role, org_id, permission, created_at)
               SELECT s.id, s.item_id, 'office', i.org_id, 'appeal.handle', s.opened_at
               FROM work_steps s JOIN work_items i ON i.id = s.item_id""")
        await conn.execute(
            """INSERT INTO appeals (item_id, category, anonymous)
               SELECT id, data->>'category', false FROM work_items WHERE status = 'open'""")
        # Two deadlines per open item (the item's and its step's), all long due: the worst sweep.
        await conn.execute(
            """INSERT INTO work_deadlines (item_id, step_id, starts_on, count, unit, due_at, warn_at,
                   escalate_at, provisional, reason, next_at, created_at)
               SELECT s.item_id, x.step_id, (s.opened_at AT TIME ZONE 'Asia/Shanghai')::date, 15,
                      'calendar',
                      s.opened_at + interval '15 days', s.opened_at + interval '12 days',
                      s.opened_at + interval '17 days', false, 'set', s.opened_at + interval '12 days',
                      s.opened_at
               FROM work_steps s, LATERAL (VALUES (s.id), (NULL::bigint)) x(step_id)""")
        log(f"steps, tasks and deadlines in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        # Events as the engine writes them: opened, the time limits, the decision, the closing.
        await conn.execute(
            """INSERT INTO work_events (ref, item_id, module, org_path, kind, at, due_at, detail)
               SELECT 'item:' || i.id, i.id, 'appeal', i.org_path, e.kind, e.at, e.due_at, e.detail
               FROM work_items i, LATERAL (VALUES
                   ('opened', i.opened_at, NULL::timestamptz, '{}'::jsonb),
                   ('due', i.opened_at, i.opened_at + interval '15 days', '{"reason": "set"}'),
                   ('due', i.opened_at, i.due_at, '{"reason": "set"}'),
                   ('approved', i.closed_at - interval '1 hour', NULL, '{}'),
                   ('closed', i.closed_at, NULL, '{"outcome": "replied"}'),
                   ('rated', i.closed_at + interval '1 day', NULL,
                    CASE WHEN i.id % 10 = 0 THEN '{"rating": "dissatisfied"}'::jsonb
                         ELSE '{"rating": "satisfied"}' END)) AS e(kind, at, due_at, detail)
               WHERE i.status = 'closed'""")
        await conn.execute(
            """INSERT INTO work_events (ref, item_id, module, org_path, kind, at, due_at, detail)
               SELECT 'item:' || i.id, i.id, 'appeal', i.org_path, e.kind, i.opened_at, e.due_at, '{}'
               FROM work_items i, LATERAL (VALUES ('opened', NULL::timestamptz), ('due', i.due_at))
                    AS e(kind, due_at)
               WHERE i.status = 'open'""")
        log(f"events in {time.perf_counter() - t:.0f} s")
        await conn.execute("VACUUM ANALYZE")
        sizes = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM work_events) AS events,
                      pg_total_relation_size('work_events') AS events_bytes,
                      pg_total_relation_size('work_items') AS items_bytes,
                      (SELECT count(*) FROM work_deadlines) AS deadlines""")
        return {"unions": unions, "closed": closed, "open": open_items, "events": sizes["events"],
                "deadlines": sizes["deadlines"], "events_mb": sizes["events_bytes"] / 2**20,
                "items_mb": sizes["items_bytes"] / 2**20,
                "load_seconds": time.perf_counter() - started}
    finally:
        await conn.close()


async def actor(conn: asyncpg.Connection, username: str) -> Actor:
    row = await conn.fetchrow(
        """SELECT c.id, c.org_id, o.path::text AS path,
                  array_agg(g.permission) AS permissions
           FROM cadres c JOIN orgs o ON o.id = c.org_id JOIN cadre_grants g ON g.cadre_id = c.id
           WHERE c.username = $1 GROUP BY c.id, o.path""", username)
    return Actor(id=row["id"], username=username, org_id=row["org_id"], org_path=row["path"],
                 role="cadre", duty="business", permissions=frozenset(row["permissions"]))


# --- the measurements -------------------------------------------------------------------------------
async def measure(settings, embedded: EmbeddedServers, reads: int) -> dict:
    report: dict = {}
    async with open_runtime(settings, embedded.dsn, embedded.redis_url, now=lambda: NOW) as rt:
        async with rt.pool.acquire() as conn:
            bench_union = await conn.fetchval("SELECT id FROM orgs WHERE code = 'BENCH-1'")
            province_id = await conn.fetchval("SELECT id FROM orgs WHERE kind = 'province'")
            desk = await actor(conn, f"desk{bench_union}")
            province = await actor(conn, f"city{province_id}")

        # 1. 我的待办
        first = await rt.work_lists.todo(desk)
        assert first["counts"]["total"] == 1000, first["counts"]
        times = []
        for _ in range(reads):
            t = time.perf_counter()
            await rt.work_lists.todo(desk)
            times.append((time.perf_counter() - t) * 1000)
        report["todo"] = {"tasks": first["counts"]["total"], "reads": reads, "p50_ms": pct(times, 50),
                          "p99_ms": pct(times, 99), "max_ms": max(times)}
        log(f"todo: p99 {report['todo']['p99_ms']:.1f} ms")

        # 2. The overdue sweep.
        async with rt.pool.acquire() as conn:
            due_rows = await conn.fetchval(
                "SELECT count(*) FROM work_deadlines WHERE status = 'open' AND next_at <= $1", NOW)
        t = time.perf_counter()
        swept = await rt.deadlines.sweep()
        seconds = time.perf_counter() - t
        async with rt.pool.acquire() as conn:
            reminders = await conn.fetchval("SELECT count(*) FROM outbox")
            escalated = await conn.fetchval("SELECT count(*) FROM work_events WHERE kind = 'escalated'")
        report["sweep"] = {"deadlines": due_rows, "advanced": swept, "seconds": seconds,
                           "reminders": reminders, "escalated_events": escalated}
        log(f"sweep: {swept:,} deadlines in {seconds:.1f} s, {reminders:,} reminders")

        # 3. Concurrent completions: 1,000 distinct appeals accepted at once …
        async with rt.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT t.id AS task_id, t.item_id, c.username FROM work_tasks t
                   JOIN cadres c ON c.org_id = t.org_id AND c.username LIKE 'desk%'
                   WHERE t.status = 'open' AND t.org_id <> (SELECT id FROM orgs WHERE code = 'BENCH-1')
                   ORDER BY t.id LIMIT 1000""")
            actors = {u: await actor(conn, u) for u in {r["username"] for r in rows}}
        picked = rows[:1000]
        t = time.perf_counter()
        results = await asyncio.gather(*(rt.appeals.decide(actors[r["username"]], r["item_id"],
                                                           {"task_id": r["task_id"], "accept": True})
                                         for r in picked), return_exceptions=True)
        distinct_seconds = time.perf_counter() - t
        failures = [r for r in results if isinstance(r, BaseException)]
        # … and 100 on the same appeal (BENCH-1's first task) at once.
        async with rt.pool.acquire() as conn:
            one = await conn.fetchrow(
                """SELECT t.id, t.item_id FROM work_tasks t JOIN orgs o ON o.id = t.org_id
                   WHERE o.code = 'BENCH-1' AND t.status = 'open' ORDER BY t.id LIMIT 1""")
        t = time.perf_counter()
        body = {"task_id": one["id"], "accept": True}
        same = await asyncio.gather(
            *(rt.appeals.decide(desk, one["item_id"], dict(body)) for _ in range(100)),
            return_exceptions=True)
        same_seconds = time.perf_counter() - t
        winners = sum(isinstance(r, dict) for r in same)
        moved = sum(isinstance(r, Conflict) and r.code == "item_moved" for r in same)
        report["concurrent"] = {"distinct": len(picked), "distinct_ok": len(picked) - len(failures),
                                "distinct_seconds": distinct_seconds,
                                "distinct_errors": sorted({type(f).__name__ for f in failures}),
                                "same": 100, "same_winners": winners, "same_told_moved": moved,
                                "same_seconds": same_seconds}
        log(f"concurrent: {len(picked) - len(failures)}/{len(picked)} in {distinct_seconds:.1f} s; "
            f"same item: {winners} winner, {moved} told it moved on")

        # 4. A month's rates for the whole province, by city.
        times = []
        for _ in range(5):
            t = time.perf_counter()
            rates = await rt.rates.rates(province, "2026-06")
            times.append(time.perf_counter() - t)
        report["rates"] = {"runs": len(times), "best_s": min(times), "worst_s": max(times),
                           "due": rates["total"]["all"]["due"],
                           "closed": rates["total"]["all"]["closed"],
                           "completion_rate": rates["total"]["all"]["completion_rate"],
                           "cities": len(rates["unions"])}
        log(f"rates: {max(times):.2f} s worst of {len(times)}")
        # The same month exactly as it stood at its end, recounted from the events alone.
        start, end = period_bounds("2026-06")
        t = time.perf_counter()
        then = await rt.rates.compute(province.org_path, start, end, end)
        report["rates"]["as_of_s"] = time.perf_counter() - t
        report["rates"]["as_of_due"] = then["total"]["all"]["due"]
        log(f"rates as of the month's end, from events: {report['rates']['as_of_s']:.2f} s")
    return report


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="casework-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    report: dict = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": shlex.join([".venv/bin/python", "bench/casework/run.py", *sys.argv[1:]]),
                    "machine": oa.machine(), "commit": oa.source_commit(), "args": vars(args)}
    report["load"] = asyncio.run(load(embedded.dsn, args.unions, args.closed, args.open))
    settings = load_settings(None, environ={}).replace(
        casework={"cadre_template_id": "TPL-BENCH"},
        security={"field_keys": f"1:{new_key()}", "field_key_current": 1,
                  "index_key": _key32(), "audit_key": _key32()})
    report.update(asyncio.run(measure(settings, embedded, args.reads)))
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str),
                                      encoding="utf-8")
    return report


def _key32() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def render_section(report: dict) -> str:
    m, ld, td, sw, cc, rt = (report["machine"], report["load"], report["todo"], report["sweep"],
                             report["concurrent"], report["rates"])
    verdict = lambda ok: "meets" if ok else "misses"  # noqa: E731
    return "\n".join([
        SECTION, "",
        f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['os']}); commit {report['commit']}.", "", f"    {report['command']}", "",
        f"Loaded: {ld['unions']:,} grassroots unions under the 21 city unions, {ld['closed']:,} closed "
        f"and {ld['open']:,} open appeals ({ld['events']:,} events, {ld['events_mb']:,.0f} MB; "
        f"{ld['deadlines']:,} deadline rows), in {ld['load_seconds']:.0f} s. Everything below runs "
        "through the product's services in one process, PostgreSQL and the process sharing the "
        "two cores.", "",
        "| what | result | target |", "|---|---|---|",
        f"| 我的待办 of a cadre with {td['tasks']:,} open tasks, {td['reads']} reads | p50 "
        f"{td['p50_ms']:.1f} ms, **p99 {td['p99_ms']:.1f} ms**, max {td['max_ms']:.1f} ms | < 100 ms "
        f"({verdict(td['p99_ms'] < 100)}) |",
        f"| overdue sweep, every open item's deadlines due by then ({sw['deadlines']:,} of "
        f"{ld['deadlines']:,} rows) | {sw['advanced']:,} deadlines "
        f"in **{sw['seconds']:.1f} s**; {sw['escalated_events']:,} escalations, {sw['reminders']:,} "
        f"reminders queued | < 30 s ({verdict(sw['seconds'] < 30)}) |",
        f"| 1,000 acceptances of distinct appeals at once | {cc['distinct_ok']:,} of {cc['distinct']:,} "
        f"in {cc['distinct_seconds']:.1f} s ({cc['distinct_ok'] / cc['distinct_seconds']:.0f}/s) "
        "| all succeed |",
        f"| 100 acceptances of one appeal at once | **{cc['same_winners']} winner**, "
        f"{cc['same_told_moved']} told it moved on, in {cc['same_seconds']:.2f} s | one winner |",
        f"| a month's rates for the whole province, by city | **{rt['worst_s']:.2f} s** worst of "
        f"{rt['runs']} (best {rt['best_s']:.2f} s); {rt['due']:,} items due, {rt['closed']:,} closed, "
        f"{rt['cities']} cities | < 2 s ({verdict(rt['worst_s'] < 2)}) |",
        f"| the same month as it stood at its end, recounted from the events | {rt['as_of_s']:.2f} s, "
        f"{rt['as_of_due']:,} items due | (a reproduction, not the daily report) |", "",
        "The sweep advances 1,000 deadlines per statement (`UPDATE … RETURNING` with the stage left "
        "and reached) and finds a batch's recipients in one query; the reminders go to the outbox "
        "in one insert per batch. A completion is one transaction under the item's row lock, "
        "audited; the audit trail's chain is the point every completion passes one at a time, "
        "which is what bounds the rate of distinct completions. The rates as things stand read "
        "`work_item_facts` (each item's latest time limit and closing, kept by a trigger as the "
        "events are appended): two index ranges, the month's due items and its closings. A "
        "past moment (`as_of`) is recounted from the events alone, each candidate's latest limit "
        "and closing read from the covering index on (ref, kind, id). Reminders go only to the "
        "cadres bound to WeChat (a fifth of one desk per 50 unions here); the rest see the "
        "console.", ""])


def write_docs(section: str) -> None:
    oa.write_section("## Casework (bench/casework)", section)


def main() -> int:
    parser = argparse.ArgumentParser(description="Casework at the province's scale.")
    parser.add_argument("--unions", type=int, default=200_000)
    parser.add_argument("--closed", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the lock or idle")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()

    def docs(report: dict) -> None:
        if args.docs:
            write_docs(render_section(report))

    return oa.run_main(args, main_inner, lambda r: print("\n" + render_section(r)), docs)


if __name__ == "__main__":
    sys.exit(main())
