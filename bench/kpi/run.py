"""Usage monitoring (用量监测) at the province's target scale: 6.48 million registered users, 5
million members, 200,000 grassroots unions and a year of events, then

1. **The backfill** of the whole year's daily counters (``kpi_daily``), time and memory.
2. **A day's refresh**: the recount of the busiest day, and the worker's ``refresh()`` (today,
   yesterday, the days back-dated members touched and, before the second, the days 3,000 casework
   closings moved). Target: under 60 s.
3. **The province-wide monthly report**, ``--runs`` times. Target: under 2 s.
4. **A city's dashboard**: the city cadre's report over HTTP (the console route
   ``/admin/v1/kpi/report``, signed in) and the trend (``/admin/v1/kpi/trend``), ``--reads``
   sequential reads each. Target: p99 under 200 ms.

    .venv/bin/python bench/kpi/run.py          # from the repository root [--users 6480000]
                                               # [--members 5000000] [--unions 200000] [--no-docs]

The union tree is the real one (the province, its 21 cities and industry unions, the 183 county
unions of ``sichuan_regions.csv``) plus generated grassroots unions under the counties. The
sources are generated straight in PostgreSQL with set-based SQL (``INSERT … SELECT
generate_series``), each row only the columns the counters and the report read plus the required
ones; the measured operations go through the product's services (the dashboard through the
application's HTTP server) in one process on this machine's two cores, the clock fixed just
after the generated year. Results go to ``bench/results/kpi/<time>/`` and the section "Usage
monitoring" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import pyotp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

oa = load_script(ROOT / "bench" / "oa_messages" / "run.py", "oa_run")

from wxbackend.app import make_server  # noqa: E402
from wxbackend.config import load_settings  # noqa: E402
from wxbackend.infra.db import connect  # noqa: E402
from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.infra.migrations import migrate  # noqa: E402
from wxbackend.infra.pii import new_key  # noqa: E402
from wxbackend.runtime import open_runtime  # noqa: E402
from wxbackend.services.cadres.permissions import Actor  # noqa: E402
from wxbackend.services.clock import CHINA  # noqa: E402
from wxbackend.services.seed import _csv, seed  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "kpi"
SECTION = "## Usage monitoring (bench/kpi/run.py)"
CLOSINGS = 3_000                              # items closed between the worker's two looks
FIRST = dt.date(2025, 12, 1)                  # the generated year: 2025-12-01 … 2026-11-30
DAYS = 365
LAST = FIRST + dt.timedelta(days=DAYS - 1)
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=CHINA)   # the morning after the year
MONTH = "2026-11"                             # the report's month: the year's last, complete
PASSWORD = "Sichuan-Union-2026"
log = oa.log


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- memory -------------------------------------------------------------------------------------
def _status(pid: int | str) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssShmem"):
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def _children(parent: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[1]) == parent:
                pids.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


class Memory:
    """Peak memory of one operation: this process's (the high-water mark, reset before it
    through ``clear_refs``, so the peak is the operation's own) and PostgreSQL's processes'
    private memory (``RssAnon`` of each child of the postmaster, sampled every 50 ms: the
    backends' sorts, hashes and caches; shared buffers are counted once, apart)."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster
        self._stop = threading.Event()
        self.pg_sum = 0
        self.pg_max = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            anon = [_status(p).get("RssAnon", 0) for p in _children(self.postmaster)]
            self.pg_sum = max(self.pg_sum, sum(anon))
            self.pg_max = max(self.pg_max, max(anon, default=0))
            self._stop.wait(0.05)

    def __enter__(self) -> Memory:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        self.rss_before = _status("self").get("VmRSS", 0)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.process_peak = _status("self").get("VmHWM", 0)
        self.maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def result(self) -> dict:
        return {"process_peak_mib": self.process_peak / 2**20, "process_before_mib": self.rss_before / 2**20,
                "ru_maxrss_mib": self.maxrss / 2**20, "pg_private_peak_mib": self.pg_sum / 2**20,
                "pg_backend_peak_mib": self.pg_max / 2**20}


# --- loading ------------------------------------------------------------------------------------
# A pseudo-random number in [0, 1) for row g and a salt: the same on every run, so an account's
# registration and its member's certification can be derived apart without a join.
RANDOM_FN = """CREATE FUNCTION bench_r(g bigint, salt int) RETURNS float8 IMMUTABLE PARALLEL SAFE
               LANGUAGE sql AS $$ SELECT (hashint8(g * 64 + salt)::float8 + 2147483648) / 4294967296 $$"""
# A day of the year with a rising rate (the platform taking on: the last days twice the average).
RAMP = "floor({days} * sqrt(bench_r({g}, {salt})))::int"


def ramp(g: str, salt: int) -> str:
    return RAMP.format(days=DAYS, g=g, salt=salt)


async def load(dsn: str, args: argparse.Namespace) -> dict:
    conn = await connect(dsn)
    started = time.perf_counter()
    steps: dict[str, float] = {}
    t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        steps[name] = time.perf_counter() - t
        log(f"{name} in {steps[name]:.0f} s")
        t = time.perf_counter()

    y0 = dt.datetime.combine(FIRST, dt.time(0), CHINA)
    try:
        await migrate(conn)
        await seed(conn)
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("SET work_mem = '256MB'")
        await conn.execute(RANDOM_FN)
        # The seeded unions (province, cities, industry unions) and channels existed before the year.
        await conn.execute("UPDATE orgs SET created_at = $1, updated_at = $1", y0 - dt.timedelta(days=400))

        # The tree: the 183 counties, then the grassroots unions spread over them; a fifth of
        # them founded during the year (half of those through the platform), the rest before.
        counties = [r for r in _csv("sichuan_regions.csv") if r["level"] == "county"]
        await conn.executemany(
            """INSERT INTO orgs (parent_id, code, name, kind, division_code, path, created_at)
               SELECT c.id, 'SC-' || $1, $2 || '总工会', 'county', $1, '0', $4 FROM orgs c
               WHERE c.code = 'SC-' || $3""",
            [(r["code"], r["name"], r["city_code"], y0 - dt.timedelta(days=400)) for r in counties])
        await conn.execute(
            """UPDATE orgs o SET path = (p.path::text || '.' || o.id)::ltree FROM orgs p
               WHERE o.kind = 'county' AND p.id = o.parent_id""")
        await conn.execute(
            f"""WITH counties AS (SELECT id, path, row_number() OVER (ORDER BY id) - 1 AS n,
                                         count(*) OVER () AS total FROM orgs WHERE kind = 'county'),
                     made AS (SELECT nextval('orgs_id_seq') AS id, g FROM generate_series(1, $1) g)
                INSERT INTO orgs (id, parent_id, code, name, kind, path, founded_via_platform,
                                  created_at, updated_at)
                SELECT m.id, c.id, 'BENCH-' || m.g, '基层工会' || m.g, 'grassroots',
                       (c.path::text || '.' || m.id)::ltree,
                       bench_r(m.g, 1) < 0.2 AND bench_r(m.g, 3) < 0.5, x.at, x.at
                FROM made m JOIN counties c ON c.n = m.g % c.total
                CROSS JOIN LATERAL (SELECT CASE WHEN bench_r(m.g, 1) < 0.2
                    THEN $2::timestamptz + {ramp('m.g', 2)} * interval '1 day'
                         + bench_r(m.g, 4) * interval '10 hours' + interval '8 hours'
                    ELSE $2::timestamptz - interval '1 day' - bench_r(m.g, 2) * interval '3000 days'
                    END AS at) x""",  # noqa: S608
            args.unions, y0)
        # The grassroots unions numbered 0 … n-1 (the members' unions are picked by number).
        await conn.execute(
            """CREATE TABLE bench_unions AS
               SELECT (row_number() OVER (ORDER BY id) - 1)::int AS n, id AS org_id, path,
                      subpath(path, 1, 1)::text::bigint AS city_id
               FROM orgs WHERE kind = 'grassroots'""")
        await conn.execute("ALTER TABLE bench_unions ADD PRIMARY KEY (n)")
        step(f"{args.unions:,} grassroots unions under {len(counties)} counties")

        # A member's union: skewed, a few large enterprise unions and many small ones (the
        # largest holds some 0.2 % of the members).
        union_of = "floor($1::int * bench_r({g}, 10) ^ 2)::int"
        # Accounts 1 … users, registered over the year (the rate rising), between 7:00 and 23:00;
        # the home union is the city of a member's union (account g's member is member g).
        await conn.execute("SELECT setval('accounts_id_seq', greatest((SELECT max(id) FROM accounts), 1))")
        base = await conn.fetchval("SELECT coalesce(max(id), 0) FROM accounts")
        assert base == 0, "the seed made accounts"
        await conn.execute(
            f"""INSERT INTO accounts (id, registered_at, home_org_id, region_code, phone_enc, phone_bidx,
                                      phone_verified_at, privacy_version, privacy_accepted_at,
                                      created_at, updated_at)
                SELECT g, x.at, u.city_id, NULL, '\\x00'::bytea, uuid_send(gen_random_uuid()), x.at,
                       '2025-01', x.at, x.at, x.at
                FROM generate_series(1, $2::bigint) g
                CROSS JOIN LATERAL (SELECT CASE WHEN g <= $3 THEN g
                                           ELSE 1 + floor(bench_r(g, 11) * $3)::bigint END AS m) p
                JOIN bench_unions u ON u.n = {union_of.format(g='p.m')}
                CROSS JOIN LATERAL (SELECT $4::timestamptz + {ramp('g', 12)} * interval '1 day'
                                           + interval '7 hours'
                                           + bench_r(g, 13) * interval '16 hours' AS at) x""",  # noqa: S608
            args.unions, args.users, args.members, y0)
        await conn.execute("SELECT setval('accounts_id_seq', $1)", args.users)
        step(f"{args.users:,} accounts")

        # Members 1 … members in their unions: 60 % certified (member g by account g, within three
        # days of its registration); 40 % joined during the year (half through the platform),
        # the rest joined years ago and came with a roster imported during the year.
        end = y0 + dt.timedelta(days=DAYS) - dt.timedelta(minutes=1)
        await conn.execute(
            f"""INSERT INTO members (id, org_id, member_no, name, id_number_enc, id_number_bidx, gender,
                                     birth_date, source, joined_on, account_id, certified_at,
                                     created_at, updated_at)
                SELECT g, u.org_id, 'M' || g, '会员', '\\x00'::bytea, sha256(int8send(g)), 1 + g % 2,
                       date '1966-01-01' + (g % 14000)::int,
                       CASE WHEN n.new AND bench_r(g, 15) < 0.5 THEN 'platform' ELSE 'roster' END,
                       y.joined, c.account, c.at, y.created, greatest(y.created, c.at)
                FROM generate_series(1, $2::bigint) g
                JOIN bench_unions u ON u.n = {union_of.format(g='g')}
                CROSS JOIN LATERAL (SELECT bench_r(g, 14) < 0.4 AS new) n
                CROSS JOIN LATERAL (SELECT
                    CASE WHEN n.new THEN $4::date + {ramp('g', 16)}
                         ELSE date '2000-01-01' + floor(bench_r(g, 16) * 9000)::int END AS joined,
                    CASE WHEN n.new THEN $5::timestamptz + {ramp('g', 16)} * interval '1 day'
                                         + interval '9 hours'
                         ELSE $5::timestamptz + floor(bench_r(g, 17) * {DAYS}) * interval '1 day'
                              + interval '10 hours' END AS created) y
                CROSS JOIN LATERAL (SELECT
                    CASE WHEN g <= $3 AND bench_r(g, 18) < 0.6 THEN g END AS account,
                    CASE WHEN g <= $3 AND bench_r(g, 18) < 0.6 THEN least($6::timestamptz,
                         $5::timestamptz + {ramp('g', 12)} * interval '1 day' + interval '7 hours'
                         + bench_r(g, 13) * interval '16 hours' + bench_r(g, 19) * interval '72 hours')
                    END AS at) c""",  # noqa: S608
            args.unions, args.members, args.users, FIRST, y0, end)
        await conn.execute("SELECT setval('members_id_seq', $1)", args.members)
        step(f"{args.members:,} members")

        # Cadres entered over the year (one per four grassroots unions), at the unions of all
        # levels; they write the articles.
        await conn.execute(
            f"""INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash,
                                    created_at, updated_at, verified_at, password_changed_at)
                SELECT 'bc' || g, '干部' || g, u.org_id, 'cadre', 'business', 'unused', x.at, x.at, x.at, x.at
                FROM generate_series(1, $2) g
                JOIN bench_unions u ON u.n = floor($1::int * bench_r(g, 20))::int
                CROSS JOIN LATERAL (SELECT $3::timestamptz + {ramp('g', 21)} * interval '1 day'
                                           + interval '9 hours'
                                           + bench_r(g, 22) * interval '8 hours' AS at) x""",  # noqa: S608
            args.unions, args.cadres, y0)
        author = await conn.fetchval("SELECT min(id) FROM cadres")
        # Articles first published over the year in the channels (the province's and the cities'
        # busier), and every channel's page views of every day.
        await conn.execute(
            f"""WITH ch AS (SELECT id, org_path, row_number() OVER (ORDER BY id) - 1 AS n,
                                   count(*) OVER () AS total FROM channels)
                INSERT INTO articles (channel_id, org_path, created_by, stage, working, live_revision,
                                      first_published_at, published_at, created_at, updated_at)
                SELECT ch.id, ch.org_path, $1, 'live', '{{}}', 1, x.at, x.at, x.at, x.at
                FROM generate_series(1, $2) g
                JOIN ch ON ch.n = floor(ch.total * bench_r(g, 30) ^ 1.5)::int
                CROSS JOIN LATERAL (SELECT $3::timestamptz
                                           + floor(bench_r(g, 31) * {DAYS}) * interval '1 day'
                                           + interval '8 hours'
                                           + bench_r(g, 32) * interval '12 hours' AS at) x""",  # noqa: S608
            author, args.articles, y0)
        await conn.execute(
            f"""INSERT INTO channel_visits (channel_id, day, views, visitors)
                SELECT c.id, $1::date + d, v.views, v.views / 3
                FROM channels c, generate_series(0, {DAYS - 1}) d,
                     LATERAL (SELECT 200 + floor(bench_r(c.id * 1000 + d, 33) * 20000)::bigint AS views) v""",  # noqa: S608
            FIRST)
        # Activities and services published over the year by the grassroots unions (skewed).
        await conn.execute(
            f"""INSERT INTO offerings (kind, form, org_id, org_path, title, opens_at, closes_at, mode,
                                       stock, audience, status, created_at, updated_at, published_at)
                SELECT CASE WHEN g % 2 = 0 THEN 'activity' ELSE 'service' END,
                       CASE WHEN g % 2 = 0 THEN 'offline' ELSE 'coupon' END,
                       u.org_id, u.path, '活动' || g, x.at, x.at + interval '7 days', 'first_come', 100,
                       '{{}}', 'published', x.at, x.at, x.at
                FROM generate_series(1, $2) g
                JOIN bench_unions u ON u.n = floor($1::int * bench_r(g, 40) ^ 2)::int
                CROSS JOIN LATERAL (SELECT $3::timestamptz + {ramp('g', 41)} * interval '1 day'
                                           + interval '9 hours'
                                           + bench_r(g, 42) * interval '9 hours' AS at) x""",  # noqa: S608
            args.unions, args.offerings, y0)
        step(f"{args.cadres:,} cadres, {args.articles:,} articles, channel visits, "
             f"{args.offerings:,} offerings")

        # Work items opened over the year in every module (nine in ten online), closed within
        # 20 days of a 15-day limit; their facts (latest limit and closing) and the closing and
        # rating events, as the engine leaves them, so the report's completion rate has data.
        await conn.execute(
            f"""WITH one AS (SELECT DISTINCT ON (module) module, id FROM process_definitions
                             WHERE status = 'published' ORDER BY module, id),
                     defs AS (SELECT module, id, row_number() OVER (ORDER BY module) - 1 AS n,
                                     count(*) OVER () AS total FROM one)
                INSERT INTO work_items (module, definition_id, org_id, org_path, title, status, outcome,
                                        version, channel, opened_at, due_at, closed_at)
                SELECT d.module, d.id, u.org_id, u.path, '事项' || g,
                       CASE WHEN x.closed < $4 THEN 'closed' ELSE 'open' END,
                       CASE WHEN x.closed < $4 THEN 'replied' END, 3,
                       CASE WHEN g % 10 = 0 THEN 'offline' ELSE 'online' END,
                       x.opened, x.opened + interval '15 days', CASE WHEN x.closed < $4 THEN x.closed END
                FROM generate_series(1, $2) g
                JOIN defs d ON d.n = g % d.total
                JOIN bench_unions u ON u.n = floor($1::int * bench_r(g, 50) ^ 2)::int
                CROSS JOIN LATERAL (SELECT $3::timestamptz + {ramp('g', 51)} * interval '1 day'
                                           + interval '8 hours'
                                           + bench_r(g, 52) * interval '10 hours' AS opened) o
                CROSS JOIN LATERAL (SELECT o.opened,
                                           o.opened + bench_r(g, 53) * interval '20 days' AS closed) x""",  # noqa: S608
            args.unions, args.items, y0, NOW)
        await conn.execute(
            """INSERT INTO work_item_facts (ref, module, org_path, due_at, finish_kind, finish_at)
               SELECT 'item:' || id, module, org_path, due_at,
                      CASE WHEN closed_at IS NOT NULL THEN 'closed' END, closed_at FROM work_items""")
        await conn.execute("SET session_replication_role = replica")   # the facts are written above
        await conn.execute(
            """INSERT INTO work_events (ref, item_id, module, org_path, kind, at, detail)
               SELECT 'item:' || i.id, i.id, i.module, i.org_path, e.kind, e.at, e.detail
               FROM work_items i, LATERAL (VALUES
                   ('closed', i.closed_at, '{"outcome": "replied"}'::jsonb),
                   ('rated', i.closed_at + interval '1 hour',
                    CASE WHEN i.id % 10 = 0 THEN '{"rating": "dissatisfied"}'::jsonb
                         ELSE '{"rating": "satisfied"}' END)) AS e(kind, at, detail)
               WHERE i.closed_at IS NOT NULL""")
        await conn.execute("SET session_replication_role = DEFAULT")
        step(f"{args.items:,} work items, their facts and events")

        # The province's cadre (created here) reads the report; the city's signs in later.
        await conn.execute(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash, created_at)
               SELECT 'province', '省总', id, 'cadre', 'business', 'unused', $1 FROM orgs
               WHERE kind = 'province'""", y0 - dt.timedelta(days=30))
        await conn.execute(
            """INSERT INTO cadre_grants (cadre_id, permission)
               SELECT id, 'kpi.read' FROM cadres WHERE username = 'province'""")
        await conn.execute("DROP TABLE bench_unions")
        await conn.execute("DROP FUNCTION bench_r")
        await conn.execute("VACUUM ANALYZE")
        step("vacuum and analyze")
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM orgs) AS unions,
                       (SELECT count(*) FROM orgs WHERE kind = 'county') AS counties,
                       (SELECT count(*) FROM orgs WHERE kind = 'grassroots'
                          AND created_at >= $1) AS founded,
                       (SELECT count(*) FROM accounts WHERE registered_at IS NOT NULL) AS accounts,
                       (SELECT count(*) FROM members) AS members,
                       (SELECT count(*) FROM members WHERE certified_at IS NOT NULL) AS certified,
                       (SELECT count(*) FROM members WHERE joined_on >= $2) AS joined,
                       (SELECT count(*) FROM members
                          WHERE joined_on >= $2 AND source = 'platform') AS via_platform,
                       (SELECT count(*) FROM cadres) AS cadres,
                       (SELECT count(*) FROM articles) AS articles,
                       (SELECT count(*) FROM channels) AS channels,
                       (SELECT count(*) FROM channel_visits) AS visits_rows,
                       (SELECT count(*) FROM offerings) AS offerings,
                       (SELECT count(*) FROM work_items) AS items,
                       (SELECT count(*) FROM work_events) AS events,
                       (SELECT max(c) FROM (SELECT count(*) AS c FROM members GROUP BY org_id) m)
                           AS largest_union,
                       pg_total_relation_size('accounts') AS accounts_bytes,
                       pg_total_relation_size('members') AS members_bytes,
                       pg_database_size(current_database()) AS db_bytes""",
            y0, FIRST)
        return {**dict(row), "grassroots": args.unions, "steps_s": steps,
                "load_seconds": time.perf_counter() - started}
    finally:
        await conn.close()


async def actor(conn: asyncpg.Connection, username: str) -> Actor:
    row = await conn.fetchrow(
        """SELECT c.id, c.org_id, c.role, c.duty, o.path::text AS path, array_agg(g.permission) AS permissions
           FROM cadres c JOIN orgs o ON o.id = c.org_id JOIN cadre_grants g ON g.cadre_id = c.id
           WHERE c.username = $1 GROUP BY c.id, o.path""", username)
    return Actor(id=row["id"], username=username, org_id=row["org_id"], org_path=row["path"],
                 role=row["role"], duty=row["duty"], permissions=frozenset(row["permissions"]))


def _totp(uri: str) -> str:
    """The code at the fixed clock's moment (the service checks codes against its clock)."""
    from urllib.parse import parse_qs, urlsplit
    return pyotp.TOTP(parse_qs(urlsplit(uri).query)["secret"][0]).at(NOW)


async def _temp_bytes(conn: asyncpg.Connection) -> int:
    return await conn.fetchval(
        "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()")


async def _timed(times: list[float], coro) -> object:
    t = time.perf_counter()
    result = await coro
    times.append((time.perf_counter() - t) * 1000)
    return result


class Parts:
    """Where a report's time goes: the module functions it calls for the counters' sums and for
    the office modules' usage counts, timed per report (instrumentation of this run only)."""

    def __init__(self) -> None:
        self.runs: list[dict[str, float]] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Parts:
        from unittest import mock

        from wxbackend.services.office.usage import UsageRates
        from wxbackend.store.kpi import rollups as rollup_store

        def timed(name: str, fn):
            async def wrapper(*a, **k):
                t = time.perf_counter()
                try:
                    return await fn(*a, **k)
                finally:
                    run = self.runs[-1]
                    run[name] = run.get(name, 0.0) + (time.perf_counter() - t) * 1000
            return wrapper
        self._stack.enter_context(mock.patch.object(rollup_store, "sums",
                                                    timed("counters", rollup_store.sums)))
        self._stack.enter_context(mock.patch.object(UsageRates, "counts",
                                                    staticmethod(timed("usage", UsageRates.counts))))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    async def run(self, times: list[float], coro) -> object:
        self.runs.append({})
        return await _timed(times, coro)

    def p50(self) -> dict[str, float]:
        return {name: pct([r.get(name, 0.0) for r in self.runs], 50) for name in ("counters", "usage")}


def _latency(times: list[float]) -> dict:
    return {"reads": len(times), "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
            "max_ms": max(times), "mean_ms": statistics.fmean(times)}


# --- the measurements -------------------------------------------------------------------------------
async def measure(settings, embedded: EmbeddedServers, args: argparse.Namespace) -> dict:
    report: dict = {}
    async with open_runtime(settings, embedded.dsn, embedded.redis_url, now=lambda: NOW) as rt:
        async with rt.pool.acquire() as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            postmaster = _parent(backend)
            province = await actor(conn, "province")
            chengdu = await conn.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
            county = await conn.fetchval(
                """SELECT o.id FROM orgs o JOIN orgs c ON c.parent_id = o.id WHERE o.kind = 'county'
                   GROUP BY o.id ORDER BY count(*) DESC, o.id LIMIT 1""")

        async def temp() -> int:
            async with rt.pool.acquire() as conn:
                return await _temp_bytes(conn)

        # 1. The backfill of the whole year.
        # Chunk by chunk as ``backfill`` does (31 days a transaction), each chunk timed: the
        # runtime's pool cancels a statement after ``database.command_timeout``.
        before = await temp()
        chunks = []
        with Memory(postmaster) as mem:
            t = time.perf_counter()
            written = 0
            first = FIRST
            while first <= LAST:
                last = min(first + dt.timedelta(days=30), LAST)
                c = time.perf_counter()
                written += await rt.kpi_rollups.recount(first, last)
                chunks.append(time.perf_counter() - c)
                first = last + dt.timedelta(days=1)
            # The completion counts of the limits after the year (items still open).
            c = time.perf_counter()
            written += await rt.kpi_rollups.moved()
            moved_s = time.perf_counter() - c
            seconds = time.perf_counter() - t
        async with rt.pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE kpi_daily")
            rows = await conn.fetchval("SELECT count(*) FROM kpi_daily")
            size = await conn.fetchval("SELECT pg_total_relation_size('kpi_daily')")
            busiest = await conn.fetchrow(
                """SELECT day, sum(value) AS events FROM kpi_daily
                   WHERE org_id = $1 AND counter NOT IN ('visits') GROUP BY day ORDER BY 2 DESC LIMIT 1""",
                province.org_id)
        report["backfill"] = {"days": DAYS, "chunks": len(chunks), "chunk_s": chunks, "rows": written,
                              "moved_s": moved_s,
                              "table_rows": rows, "command_timeout_s": settings.database.command_timeout,
                              "table_mb": size / 2**20, "seconds": seconds,
                              "temp_mb": (await temp() - before) / 2**20, **mem.result()}
        log(f"backfill: {written:,} rows in {seconds:.1f} s")

        # 2. A day's refresh: the busiest day recounted, then the worker's refresh (the first one
        # also takes the members' watermark; the second is the steady state).
        day = busiest["day"]
        times = []
        before = await temp()
        with Memory(postmaster) as mem:
            for _ in range(3):
                t = time.perf_counter()
                day_rows = await rt.kpi_rollups.recount(day, day)
                times.append(time.perf_counter() - t)
        report["day"] = {"day": day.isoformat(), "events": int(busiest["events"]), "rows": day_rows,
                         "runs_s": times, "worst_s": max(times), "best_s": min(times),
                         "temp_mb": (await temp() - before) / 2**20, **mem.result()}
        log(f"recount of {day}: {max(times):.2f} s worst of 3")
        refreshes = []
        for n in range(args.refreshes):
            closed = dirty = 0
            if n:
                # A day of casework before the next look: items closed, ahead of their limits or
                # after them, each moving its completion counts to another day.
                async with rt.pool.acquire() as conn:
                    closed = int((await conn.execute(
                        """INSERT INTO work_events (ref, item_id, module, org_path, kind, at, detail)
                           SELECT 'item:' || id, id, module, org_path, 'closed',
                                  $1::timestamptz - interval '1 hour', '{"outcome": "replied"}'
                           FROM work_items WHERE closed_at IS NULL ORDER BY id LIMIT $2""",
                        NOW, CLOSINGS)).split()[-1])
                    dirty = await conn.fetchval("SELECT count(DISTINCT day) FROM kpi_dirty_days")
            with Memory(postmaster) as mem:
                t = time.perf_counter()
                refreshed = await rt.kpi_rollups.refresh()
                seconds = time.perf_counter() - t
            refreshes.append({"seconds": seconds, "rows": refreshed, "closed": closed, "dirty_days": dirty,
                              **mem.result()})
        report["refresh"] = refreshes
        log("refresh: " + ", then ".join(f"{r['seconds']:.2f} s" for r in refreshes))

        # 3. The province-wide monthly report.
        times = []
        with Memory(postmaster) as mem, Parts() as parts:
            for _ in range(args.runs):
                result = await parts.run(times, rt.kpi_reports.report(province, MONTH))
        times = [t / 1000 for t in times]
        figures = {i["code"]: i["value"] for i in result["indicators"]}
        report["province"] = {"runs_s": times, "worst_s": max(times), "best_s": min(times),
                              "median_s": statistics.median(times),
                              "units": len(result["indicators"][0]["units"]),
                              "below_standard": len(result["below_standard"]), "figures": figures,
                              "parts_p50_ms": parts.p50(), **mem.result()}
        log(f"province report: {max(times):.2f} s worst of {len(times)}; parts p50 {parts.p50()}")

        # 4. A city's dashboard over HTTP: the city's super admin (made by the platform office)
        # signs in to the console and reads the report and the trend.
        office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
        office_actor = (await rt.cadres.login(username="office", password=PASSWORD,
                                              totp=_totp(office.totp_uri), ip="10.0.0.1",
                                              user_agent="bench")).actor
        made = await rt.cadres.create_account(office_actor, username="chengdu", display_name="成都",
                                              role="super_admin", org_id=chengdu, duty="business",
                                              password=PASSWORD, permissions={"kpi.read"})
        server = make_server(rt)
        import tornado.testing
        sock, port = tornado.testing.bind_unused_port()
        server.add_sockets([sock])
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=30) as browser:
                signed = await browser.post(f"{base}/admin/v1/login", json={
                    "username": "chengdu", "password": PASSWORD, "totp": _totp(made.totp_uri)})
                if signed.status_code != 200:
                    raise oa.BenchError(f"the city cadre's sign-in failed: {signed.text}")
                first = await browser.get(f"{base}/admin/v1/kpi/report", params={"period": MONTH})
                if first.status_code != 200:
                    raise oa.BenchError(f"the report over HTTP: {first.status_code} {first.text[:500]}")
                city = first.json()["report"]
                http: dict = {}
                for name, path, params in (
                        ("report", "/admin/v1/kpi/report", {"period": MONTH}),
                        ("trend", "/admin/v1/kpi/trend", {"indicator": "certified_share", "months": 12})):
                    times = []
                    with Memory(postmaster) as mem:
                        for _ in range(args.reads):
                            t = time.perf_counter()
                            answer = await browser.get(f"{base}{path}", params=params)
                            times.append((time.perf_counter() - t) * 1000)
                            if answer.status_code != 200:
                                raise oa.BenchError(f"{path}: {answer.status_code}")
                    http[name] = {**_latency(times), "bytes": len(answer.content), **mem.result()}
                    log(f"city {name} over HTTP: p50 {http[name]['p50_ms']:.0f} ms, "
                        f"p99 {http[name]['p99_ms']:.0f} ms")
        finally:
            server.stop()
            await server.close_all_connections()
        # The same report through the service, and where its time goes.
        async with rt.pool.acquire() as conn:
            chengdu_actor = await actor(conn, "chengdu")
        service_times: list[float] = []
        with Parts() as parts:
            for _ in range(args.reads):
                await parts.run(service_times, rt.kpi_reports.report(chengdu_actor, MONTH))
        report["city"] = {"org_name": city["org_name"], "units": len(city["indicators"][0]["units"]),
                          "http": http, "service": _latency(service_times), "parts_p50_ms": parts.p50(),
                          "figures": {i["code"]: i["value"] for i in city["indicators"]}}
        # A county's report (its ~1,000 grassroots unions ranked), through the service.
        county_times: list[float] = []
        for _ in range(max(5, args.runs)):
            county_report = await _timed(county_times, rt.kpi_reports.report(province, MONTH, org_id=county))
        report["county"] = {"org_name": county_report["org_name"],
                            "units": len(county_report["indicators"][0]["units"]), **_latency(county_times)}
        log(f"county report ({report['county']['units']} unions): p50 {report['county']['p50_ms']:.0f} ms")
        report["explain"] = await explain(rt.pool, province, day)
    return report


async def explain(pool: asyncpg.Pool, province: Actor, day: dt.date) -> dict:
    """The plans behind the figures, kept with the raw results."""
    from wxbackend.services.kpi.indicators import counters_of
    from wxbackend.services.kpi.rollups import FIRST_DAY, _moment
    from wxbackend.store.kpi.rollups import _SOURCES
    out = {}
    async with pool.acquire() as conn:
        ids = [province.org_id, *[r["id"] for r in await conn.fetch(
            "SELECT id FROM orgs WHERE parent_id = $1", province.org_id)]]
        after = LAST + dt.timedelta(days=1)
        plan = await conn.fetch(
            """EXPLAIN (ANALYZE, BUFFERS) SELECT o.id AS org_id, c.counter, s.value
               FROM unnest($1::bigint[]) o(id) CROSS JOIN unnest($2::text[]) c(counter)
               CROSS JOIN LATERAL (SELECT sum(k.value)::bigint AS value FROM kpi_daily k
                                   WHERE k.counter = c.counter AND k.org_id = o.id
                                     AND k.day >= $3 AND k.day < $4) s
               WHERE s.value IS NOT NULL""", ids, counters_of(), FIRST_DAY, after)
        out["province_sums_to_date"] = [r[0] for r in plan]
        nxt = day + dt.timedelta(days=1)
        async with conn.transaction():
            plan = await conn.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM ({_SOURCES}) s",  # noqa: S608 - constants
                day, nxt, _moment(day), _moment(nxt))
        out["day_sources"] = [r[0] for r in plan]
    return out


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="kpi-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    report: dict = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": shlex.join([".venv/bin/python", "bench/kpi/run.py", *sys.argv[1:]]),
                    "machine": oa.machine(), "commit": oa.source_commit(), "args": vars(args),
                    "year": [FIRST.isoformat(), LAST.isoformat()], "now": NOW.isoformat(), "month": MONTH}
    report["load"] = asyncio.run(load(embedded.dsn, args))
    settings = load_settings(None, environ={}).replace(
        casework={"cadre_template_id": "TPL-BENCH"},
        security={"field_keys": f"1:{new_key()}", "field_key_current": 1,
                  "index_key": _key32(), "audit_key": _key32()},
        logging={"level": "WARNING"},
        # The product's default (10 s) cancels a 31-day chunk of the backfill at full scale.
        database={"command_timeout": args.command_timeout})
    report.update(asyncio.run(measure(settings, embedded, args)))
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str),
                                      encoding="utf-8")
    for name, lines in report["explain"].items():
        (out / f"explain-{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(f"raw output in {out.relative_to(ROOT)}")
    return report


def _key32() -> str:
    return base64.b64encode(os.urandom(32)).decode()


TARGET = {"users": 6_480_000, "members": 5_000_000, "unions": 200_000}


def scale(args: dict) -> str:
    """Says so when the run is smaller than the issue's target scale."""
    short = [f"{args[k]:,} {k} of {v:,}" for k, v in TARGET.items() if args[k] < v]
    if not short:
        return ""
    return (f"**Reduced scale**: {', '.join(short)} (with {args['items']:,} work items); the figures "
            "below are not those of the target scale. ")


def render_section(report: dict) -> str:
    m, ld, bf, dy, rf, pv, ct, cy = (report["machine"], report["load"], report["backfill"], report["day"],
                                     report["refresh"], report["province"], report["city"], report["county"])
    verdict = lambda ok: "meets" if ok else "misses"  # noqa: E731
    mb = lambda r: (f"process peak {r['process_peak_mib']:.0f} MiB; PostgreSQL backends' private "  # noqa: E731
                    f"memory peak {r['pg_private_peak_mib']:.0f} MiB")
    rep, trd = ct["http"]["report"], ct["http"]["trend"]
    return "\n".join([
        SECTION, "",
        f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['os']}); commit {report['commit']}.", "", f"    {report['command']}", "",
        f"{scale(report['args'])}Generated in PostgreSQL (set-based `INSERT … SELECT generate_series`, "
        f"{ld['load_seconds']:.0f} s): "
        f"the Sichuan tree (province, 21 cities, the industry unions, {ld['counties']} counties) plus "
        f"{ld['grassroots']:,} grassroots unions under the counties ({ld['founded']:,} founded during the "
        f"year, half through the platform); {ld['accounts']:,} registered users over the year "
        f"{report['year'][0]} … {report['year'][1]} (the daily rate rising, the last days twice the "
        f"average; home city that of a member's union); {ld['members']:,} members in skewed unions (the "
        f"largest {ld['largest_union']:,}), {ld['certified']:,} certified during the year, "
        f"{ld['joined']:,} joined during the year ({ld['via_platform']:,} through the platform); "
        f"{ld['cadres']:,} cadres entered, {ld['articles']:,} articles in {ld['channels']} channels, "
        f"{ld['visits_rows']:,} channel-day visit rows, {ld['offerings']:,} activities and services, "
        f"{ld['items']:,} work items with their facts and {ld['events']:,} closing and rating events. "
        f"Database {ld['db_bytes'] / 2**30:.1f} GiB. The clock is fixed at {report['now']}; the "
        f"report is the month {report['month']}. Everything runs through the product's services "
        "in one process, PostgreSQL and the process sharing the two cores; memory is this "
        "process's peak RSS during the step and the peak sum of PostgreSQL's processes' private "
        "(anonymous) memory, sampled every 50 ms (shared buffers, 256 MB, not counted).", "",
        "| what | result | target |", "|---|---|---|",
        f"| backfill of the whole year ({bf['days']} days, {bf['chunks']} chunks of 31 days) | "
        f"**{bf['seconds']:.0f} s** (slowest chunk {max(bf['chunk_s']):.1f} s; the completion counts of "
        f"the limits after the year {bf['moved_s']:.1f} s), {bf['rows']:,} counter rows "
        f"({bf['table_mb']:,.0f} MB); {mb(bf)}; "
        f"{bf['temp_mb']:,.0f} MB of temporary files | — |",
        f"| recount of the busiest day ({dy['day']}, {dy['events']:,} events, {dy['rows']:,} rows) | "
        f"**{dy['worst_s']:.2f} s** worst of 3 (best {dy['best_s']:.2f} s); {mb(dy)} | < 60 s "
        f"({verdict(dy['worst_s'] < 60)}) |",
        "| the worker's refresh: the first (yesterday, today; takes the members' watermark)"
        + (f" / the next (also the new members' counts of every joining day of the members added "
           f"in the hour before the watermark, and the completion counts of the "
           f"{rf[-1]['dirty_days']} days that {rf[-1]['closed']:,} closings moved)"
           if len(rf) > 1 else "") + " | "
        + " / ".join(f"**{r['seconds']:.2f} s**, {r['rows']:,} rows" for r in rf)
        + f"; {mb(rf[-1])} | < 60 s "
        f"({verdict(max(r['seconds'] for r in rf) < 60)}) |",
        f"| province-wide monthly report ({pv['units']} unions below ranked, {len(pv['figures'])} "
        f"indicators) | **{pv['worst_s']:.2f} s** worst of {len(pv['runs_s'])} (median {pv['median_s']:.2f} "
        f"s, best {pv['best_s']:.2f} s); of which the counters p50 {pv['parts_p50_ms']['counters']:.0f} ms, "
        f"the office modules' usage p50 {pv['parts_p50_ms']['usage']:.0f} ms; {mb(pv)} | < 2 s "
        f"({verdict(pv['worst_s'] < 2)}) |",
        f"| {ct['org_name']}'s dashboard: the report over HTTP, signed in, {rep['reads']} reads "
        f"({ct['units']} counties ranked, {rep['bytes'] / 1024:.0f} KiB) | p50 {rep['p50_ms']:.0f} ms, "
        f"**p99 {rep['p99_ms']:.0f} ms**, max {rep['max_ms']:.0f} ms; {mb(rep)} | < 200 ms "
        f"({verdict(rep['p99_ms'] < 200)}) |",
        f"| the trend over HTTP (certified share, 12 months), {trd['reads']} reads | p50 "
        f"{trd['p50_ms']:.0f} ms, **p99 {trd['p99_ms']:.0f} ms**, max {trd['max_ms']:.0f} ms | < 200 ms "
        f"({verdict(trd['p99_ms'] < 200)}) |",
        f"| the city's report through the service | p50 {ct['service']['p50_ms']:.0f} ms, p99 "
        f"{ct['service']['p99_ms']:.0f} ms; of which the counters p50 "
        f"{ct['parts_p50_ms']['counters']:.0f} ms, the office modules' usage p50 "
        f"{ct['parts_p50_ms']['usage']:.0f} ms | — |",
        f"| a county's report ({cy['org_name']}, {cy['units']:,} grassroots unions ranked), service | "
        f"p50 {cy['p50_ms']:.0f} ms, max {cy['max_ms']:.0f} ms | — |", "",
        ANALYSIS, ""])


ANALYSIS = (
    "The counters are recounted per China day from the sources' event-time indexes, grouped per "
    "union and day, and added to each union's ancestors from its `path` (no join to expand "
    "them); a report reads, for the union and the unions directly below it, one row per union, "
    "counter and month from `kpi_monthly` and one per day of the months the period cuts into "
    "from `kpi_daily`, four sums (the period, the year, to date, and the completion counts to "
    "the period's end). The completion counts are counters too: each item counted on the day "
    "the casework rule puts it (`work_item_facts.counted_on`), the days a change moved recounted "
    "by the worker's refresh. Only the office modules' usage is counted from the items at each "
    "report. Raw results, with the plans "
    "(`EXPLAIN ANALYZE`) of the report's largest sum and of a day's sources, are in "
    "`bench/results/kpi/`.")


def write_docs(section: str) -> None:
    oa.write_section(SECTION, section)


def main() -> int:
    parser = argparse.ArgumentParser(description="Usage monitoring at the province's scale.")
    parser.add_argument("--users", type=int, default=6_480_000)
    parser.add_argument("--members", type=int, default=5_000_000)
    parser.add_argument("--unions", type=int, default=200_000)
    parser.add_argument("--cadres", type=int, default=50_000)
    parser.add_argument("--articles", type=int, default=30_000)
    parser.add_argument("--offerings", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1_000_000, help="work items over the year")
    parser.add_argument("--command-timeout", type=float, default=900.0,
                        help="the pool's statement timeout (the product's default is 10 s)")
    parser.add_argument("--refreshes", type=int, default=2, choices=(1, 2),
                        help="worker refreshes: the first takes the watermark, the next uses it")
    parser.add_argument("--runs", type=int, default=5, help="province reports")
    parser.add_argument("--reads", type=int, default=200, help="dashboard reads")
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the lock or idle")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()

    def docs(report: dict) -> None:
        if args.docs:
            write_docs(render_section(report))

    return oa.run_main(args, main_inner, lambda r: print("\n" + render_section(r)), docs)


if __name__ == "__main__":
    sys.exit(main())
