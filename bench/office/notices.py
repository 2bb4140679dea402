"""Notices (通知公告) at the province's scale: a province-wide notice to every cadre of the city,
industry, county and grassroots levels (50,000 by default), then

1. **Publication**: the reviewer's approval, one transaction that writes a row per recipient
   (one INSERT … SELECT) and queues the bound cadres' WeChat messages through the outbox
   (``enqueue_many``). Three notices, one after another. Target: under 10 s.
2. **The statistics by union** (recipients, read, not read, receipts) of the sender's union,
   with a realistic share read (70 %) and answered (40 %), read ``--reads`` times one after
   another, and the same for one city's drill-down. Target: p99 under 100 ms.

    .venv/bin/python bench/office/notices.py       # from the repository root [--cadres 50000]
                                                   # [--grassroots 10000] [--bound 0.6] [--no-docs]

The union tree is the real one (the province, its 21 cities and industry unions, the 183 county
unions of ``sichuan_regions.csv``) plus generated grassroots unions under the counties; the
cadres are loaded straight into PostgreSQL. The measured operations go through the product's
services in one process on this machine's two cores. Results go to
``bench/results/office-notices/<time>/`` and the section "Office: notices" of
``docs/benchmarks.md``.
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
from wxbackend.services.clock import CHINA  # noqa: E402
from wxbackend.services.seed import _csv, seed  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "office-notices"
SECTION = "## Office: notices (bench/office/notices.py)"
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=CHINA)   # a Monday morning: no quiet hours
PER_UNION = 20          # cadres of each city, industry and county union
log = oa.log


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- loading ------------------------------------------------------------------------------------
async def load(dsn: str, cadres: int, grassroots: int, bound: float) -> dict:
    conn = await connect(dsn)
    started = time.perf_counter()
    try:
        await migrate(conn)
        await seed(conn)
        await conn.execute("SET synchronous_commit = off")
        counties = [r for r in _csv("sichuan_regions.csv") if r["level"] == "county"]
        await conn.executemany(
            """INSERT INTO orgs (parent_id, code, name, kind, division_code, path)
               SELECT c.id, 'SC-' || $1, $2 || '总工会', 'county', $1, '0' FROM orgs c
               WHERE c.code = 'SC-' || $3""",
            [(r["code"], r["name"], r["city_code"]) for r in counties])
        await conn.execute(
            """UPDATE orgs o SET path = (p.path::text || '.' || o.id)::ltree FROM orgs p
               WHERE o.kind = 'county' AND p.id = o.parent_id""")
        await conn.execute(
            """WITH counties AS (SELECT id, path, row_number() OVER (ORDER BY id) - 1 AS n,
                                        count(*) OVER () AS total FROM orgs WHERE kind = 'county'),
                    made AS (SELECT nextval('orgs_id_seq') AS id, g FROM generate_series(1, $1) g)
               INSERT INTO orgs (id, parent_id, code, name, kind, path)
               SELECT m.id, c.id, 'BENCH-' || m.g, '基层工会' || m.g, 'grassroots',
                      (c.path::text || '.' || m.id)::ltree
               FROM made m JOIN counties c ON c.n = m.g % c.total""", grassroots)
        # Cadres: PER_UNION in every city, industry and county union, the rest spread over the
        # grassroots unions; two province cadres publish (one drafts, one reviews).
        await conn.execute(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash, department)
               SELECT 'u' || o.id || 'n' || g, '干部' || o.id || '-' || g, o.id,
                      CASE WHEN g = 1 THEN 'super_admin' ELSE 'cadre' END, 'business', 'unused',
                      (ARRAY['办公室', '组织部', '宣传教育部', '权益保障部'])[1 + g % 4]
               FROM orgs o, generate_series(1, $1) g
               WHERE o.kind IN ('city', 'industry', 'industry_holder', 'county')""", PER_UNION)
        upper = await conn.fetchval("SELECT count(*) FROM cadres")
        await conn.execute(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
               SELECT 'gr' || g, '基层干部' || g, o.id, 'cadre', 'business', 'unused'
               FROM generate_series(1, $1) g JOIN orgs o ON o.code = 'BENCH-' || (1 + g % $2)""",
            cadres - upper, grassroots)
        await conn.execute(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
               SELECT name, name, (SELECT id FROM orgs WHERE kind = 'province'), 'cadre', 'business',
                      'unused' FROM unnest(ARRAY['author', 'reviewer']) name""")
        await conn.execute(
            """INSERT INTO cadre_grants (cadre_id, permission)
               SELECT id, 'notice.publish' FROM cadres WHERE username IN ('author', 'reviewer')""")
        await conn.execute(
            """INSERT INTO cadre_wechat (cadre_id, oa_openid, bound_at)
               SELECT id, 'o-bench-' || id, now() FROM cadres WHERE random() < $1""", bound)
        await conn.execute("VACUUM ANALYZE")
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM orgs) AS unions,
                      (SELECT count(*) FROM orgs WHERE kind = 'county') AS counties,
                      (SELECT count(*) FROM cadres) AS cadres,
                      (SELECT count(*) FROM cadre_wechat) AS bound""")
        return {**dict(row), "grassroots": grassroots, "load_seconds": time.perf_counter() - started}
    finally:
        await conn.close()


async def actor(conn: asyncpg.Connection, username: str) -> Actor:
    row = await conn.fetchrow(
        """SELECT c.id, c.org_id, o.path::text AS path, array_agg(g.permission) AS permissions
           FROM cadres c JOIN orgs o ON o.id = c.org_id JOIN cadre_grants g ON g.cadre_id = c.id
           WHERE c.username = $1 GROUP BY c.id, o.path""", username)
    return Actor(id=row["id"], username=username, org_id=row["org_id"], org_path=row["path"],
                 role="cadre", duty="business", permissions=frozenset(row["permissions"]))


# --- the measurements -------------------------------------------------------------------------------
async def measure(settings, embedded: EmbeddedServers, reads: int, runs: int) -> dict:
    report: dict = {}
    draft = {"title": "关于做好2026年全省工会系统安全生产月活动的通知",
             "body": "各市（州）总工会、省级产业工会，各县（市、区）总工会、各基层工会：……" * 20,
             "targets": {"scope": "levels", "levels": ["city", "industry", "county", "grassroots"]},
             "receipt": {"form": {"fields": [
                 {"key": "contact", "label": "联系人", "type": "text", "required": True},
                 {"key": "plan", "label": "是否已制定方案", "type": "choice", "required": True,
                  "choices": ["已制定", "正在制定"]}]},
                 "due_at": (NOW + dt.timedelta(days=10)).isoformat()}}
    async with open_runtime(settings, embedded.dsn, embedded.redis_url, now=lambda: NOW) as rt:
        notices = rt.office_notices
        async with rt.pool.acquire() as conn:
            author, reviewer = await actor(conn, "author"), await actor(conn, "reviewer")

        # 1. Publication: the approval writes every recipient and queues the messages.
        published = []
        for n in range(runs):
            notice = await notices.create(author, draft | {"title": f"{draft['title']}（{n + 1}）"})
            await notices.submit(author, notice["id"])
            t = time.perf_counter()
            result = await notices.review(reviewer, notice["id"], {"decision": "approve"})
            seconds = time.perf_counter() - t
            published.append({"notice": notice["id"], "seconds": seconds,
                              "recipients": result["recipients"], "queued": result["queued"]})
            log(f"published to {result['recipients']:,} cadres, {result['queued']:,} messages queued, "
                f"in {seconds:.2f} s")
        times = [p["seconds"] for p in published]
        report["publish"] = {"runs": published, "median_s": statistics.median(times),
                             "best_s": min(times), "worst_s": max(times),
                             "recipients": published[0]["recipients"], "queued": published[0]["queued"]}

        # 2. The statistics by union with 70 % read and 40 % answered, like a week after sending.
        first = published[0]["notice"]
        async with rt.pool.acquire() as conn:
            await conn.execute(
                """UPDATE notice_recipients SET read_at = delivered_at + (cadre_id % 97) * interval '1 hour',
                       receipt_at = CASE WHEN cadre_id % 10 < 4 THEN delivered_at + interval '1 day' END,
                       receipt = CASE WHEN cadre_id % 10 < 4
                                      THEN '{"contact": "张三", "plan": "已制定"}'::jsonb END
                   WHERE notice_id = $1 AND cadre_id % 10 < 7""", first)
            await conn.execute("ANALYZE notice_recipients")
            city = await conn.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
        stats = await notices.stats(author, first)
        assert stats["total"]["recipients"] == published[0]["recipients"], stats["total"]
        report["stats"] = {"unions": len(stats["unions"]), **stats["total"]}
        for name, org in (("province", None), ("city", city)):
            times = []
            for _ in range(reads):
                t = time.perf_counter()
                await notices.stats(author, first, org)
                times.append((time.perf_counter() - t) * 1000)
            report["stats"][name] = {"reads": reads, "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
                                     "max_ms": max(times)}
            log(f"stats ({name}): p99 {report['stats'][name]['p99_ms']:.1f} ms")
        drill = await notices.stats(author, first, city)
        report["stats"]["city_unions"] = len(drill["unions"])
        report["stats"]["city_recipients"] = drill["total"]["recipients"]
    return report


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="notices-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    report: dict = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": shlex.join([".venv/bin/python", "bench/office/notices.py", *sys.argv[1:]]),
                    "machine": oa.machine(), "commit": oa.source_commit(), "args": vars(args)}
    report["load"] = asyncio.run(load(embedded.dsn, args.cadres, args.grassroots, args.bound))
    settings = load_settings(None, environ={}).replace(
        casework={"cadre_template_id": "TPL-BENCH"},
        security={"field_keys": f"1:{new_key()}", "field_key_current": 1,
                  "index_key": _key32(), "audit_key": _key32()})
    report.update(asyncio.run(measure(settings, embedded, args.reads, args.runs)))
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str),
                                      encoding="utf-8")
    return report


def _key32() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def render_section(report: dict) -> str:
    m, ld, pb, st = report["machine"], report["load"], report["publish"], report["stats"]
    verdict = lambda ok: "meets" if ok else "misses"  # noqa: E731
    runs = ", ".join(f"{r['seconds']:.2f}" for r in pb["runs"])
    pv, cy = st["province"], st["city"]
    return "\n".join([
        SECTION, "",
        f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['os']}); commit {report['commit']}.", "", f"    {report['command']}", "",
        f"Loaded: the Sichuan tree (the province, 21 cities, the provincial industry unions, "
        f"{ld['counties']} county unions) plus {ld['grassroots']:,} generated grassroots unions "
        f"({ld['unions']:,} unions), {ld['cadres']:,} cadres ({PER_UNION} in each city, industry "
        f"and county union, the rest in the grassroots unions), {ld['bound']:,} of them bound to "
        f"WeChat, in {ld['load_seconds']:.0f} s. The notice goes to every cadre of the city, "
        "industry, county and grassroots levels, with a receipt. Everything below runs through the "
        "product's services in one process, PostgreSQL and the process sharing the two cores.", "",
        "| what | result | target |", "|---|---|---|",
        f"| approval of a province-wide notice: {pb['recipients']:,} recipient rows written and "
        f"{pb['queued']:,} WeChat messages queued, one transaction | median **{pb['median_s']:.2f} s** "
        f"of {len(pb['runs'])} ({runs} s) | < 10 s ({verdict(pb['worst_s'] < 10)}) |",
        f"| statistics by union of the province ({st['unions']} rows: the 21 cities, the industry "
        f"unions), {pv['reads']} reads; {st['read']:,} read, {st['answered']:,} answered | p50 "
        f"{pv['p50_ms']:.1f} ms, **p99 {pv['p99_ms']:.1f} ms**, max {pv['max_ms']:.1f} ms | < 100 ms "
        f"({verdict(pv['p99_ms'] < 100)}) |",
        f"| the same drilled down to Chengdu ({st['city_unions']} rows, {st['city_recipients']:,} "
        f"recipients), {cy['reads']} reads | p50 {cy['p50_ms']:.1f} ms, **p99 {cy['p99_ms']:.1f} ms**, "
        f"max {cy['max_ms']:.1f} ms | < 100 ms ({verdict(cy['p99_ms'] < 100)}) |", "",
        "The recipients are one `INSERT … SELECT` over the active cadres of the targeted unions "
        "(the subtree, the levels, the role and department filters in its WHERE clause); the "
        "messages go to the outbox with `enqueue_many`, 5,000 rows a statement, each with its "
        "idempotency key; the approval, the rows, the messages, the work item's events and the "
        "audit record commit together. The statistics count the notice's rows per recipient union "
        "from the index on (notice, union) that includes the read and receipt moments, then roll "
        "the unions up to the ones directly below the union asked for (`subpath` of their path). "
        "The shares read and answered are set in SQL and the table analysed, not vacuumed: the "
        "index-only scan still visits the heap for the updated rows, as it would a week after "
        "sending.", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description="A province-wide notice: publication and statistics.")
    parser.add_argument("--cadres", type=int, default=50_000)
    parser.add_argument("--grassroots", type=int, default=10_000)
    parser.add_argument("--bound", type=float, default=0.6, help="share of cadres bound to WeChat")
    parser.add_argument("--runs", type=int, default=3, help="notices published one after another")
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the lock or idle")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()

    def docs(report: dict) -> None:
        if args.docs:
            oa.write_section(SECTION, render_section(report))

    return oa.run_main(args, main_inner, lambda r: print("\n" + render_section(r)), docs)


if __name__ == "__main__":
    sys.exit(main())
