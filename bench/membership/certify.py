"""Certification (会员认证) requests per second on one server process, against millions of member
records: the issue's target is "certification lookups against 5 million member records (p99 under
20 ms, one server process)".

    .venv/bin/python bench/membership/certify.py   # from the repository root [--members 5000000]
                        [--duration 10] [--connections 64,16] [--runs 3] [--mix 50,30,20]

It follows ``bench/identity/run.py`` and uses its helpers and, through it, those of
``bench/oa_messages/run.py`` (the shared benchmark lock, the idle check, process handling, CPU
meters, the wrk output parser, machine facts): the server under test alone on core 0, everything
else on core 1. In order (every step is bounded in time; every process it starts is stopped on
exit, including on an exception, Ctrl-C or SIGTERM):

1. takes the benchmark lock shared with the other benchmarks and waits until both cores idle;
2. the member database: reused from ``bench/membership/results/cache-<N>/`` when its ``meta.json``
   says it holds the same number of records made by the same generator under the same migrations
   (``--rebuild`` forces a new one). Otherwise it builds one, using both cores: embedded PostgreSQL,
   ``wxbackend migrate`` and ``seed``, 200 grassroots unions under the city unions
   (``wxbackend.store.membership.orgs.create_grassroots``), then N member records from ``certify_data.py``
   (valid, distinct ID numbers; names; ID numbers and phones SM4-sealed and HMAC-SM3 blind-indexed
   by the real ``PersonalData`` with the cache's keys) sealed by a pool of worker processes and
   written with ``copy_records_to_table`` in chunks. The secondary indexes and unique constraints
   of ``members`` are dropped for the load and created again from their own definitions (checked
   identical afterwards); the foreign key to ``orgs`` is checked once after the load instead of
   per row. Then ``VACUUM (ANALYZE)`` and a checkpoint;
3. copies the cached cluster to a temporary directory (the cache stays untouched), pins itself to
   core 1 and starts embedded PostgreSQL and Redis there (they inherit core 1); writes a config
   with the cache's keys and both certification limits ``[membership] certify_per_account_day``
   and ``certify_per_ip_hour`` set to 10^9 (every request comes from 127.0.0.1, and the limits are
   not what is measured; the Redis counters are still incremented on every request) and
   ``certify_without_phone = "allow"`` (the generated roster leaves some phones out, and a first
   certification must link at once to be measured), runs
   ``migrate`` and ``seed`` (both no-ops unless a migration was added since the cache was built)
   and starts ``taskset -c 0 wxbackend serve --no-worker``;
4. creates the workers: accounts with a verified phone (as ``POST /mp/v1/phone`` leaves them:
   ``phone_enc``/``phone_bidx`` under ``accounts.phone``, source ``miniprogram``), their Mini
   Program openid, and a Mini Program session stored by the server's own ``SessionStore`` (as
   ``POST /mp/v1/session`` leaves it), written straight to PostgreSQL and Redis: the request path
   measured is certification, not sign-in (bench/identity measures that). A first certification's
   account has the member's phone, or its own when the roster has none. It certifies
   ``--repeat-pairs`` members through ``POST /mp/v1/membership/certify`` itself (the pairs the
   repeats use) and checks every answer;
5. for each number of connections (``-t1``; 64 and 16 by default) warms each mix up, then runs
   wrk three times per mix, interleaved: ``first`` (every request a new account certifying a
   member nobody has certified: 200, the member linked), ``miss`` (a valid ID number in no record:
   400 ``certify_no_match``), ``repeat`` (an account that certified its member before: 200,
   nothing changes) and ``mixed`` (the three shuffled, ``--mix`` percent). Every first
   certification and miss is used once (a run whose pool wrapped fails); ``certify.lua`` checks
   each answer against what its request must get. Before each run it sends one request of each
   kind itself and checks the answer; after it, that exactly the first certifications wrk sent got
   their member linked to their account, and nothing else (those answered 200 and, of those still
   in flight when wrk stopped, the ones the server finished). A run disturbed by processes outside
   the benchmark is repeated;
6. if a p99 is above 20 ms: profiles the server with py-spy (from ``bench/.venv-werobot``) during
   an extra, untimed mixed run, and runs the mixes over 20 ms at the most connections again
   against a second server started with ``WXBACKEND__DATABASE__POOL_MAX`` = that many connections
   (default 10: how much of the tail is waiting for a pooled connection). Always: times the
   lookup itself (``store.member_by_id_number``, from one connection, also with its row lock in
   a rolled-back transaction) for hits and misses, and keeps ``EXPLAIN (ANALYZE, BUFFERS)`` of
   both statements;
7. prints a summary. Raw wrk output, logs, the profile and ``summary.json`` go to
   ``bench/membership/results/<time>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import datetime as dt
import hashlib
import json
import math
import multiprocessing
import os
import random
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _path in (str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from bench._scripts import load_script  # noqa: E402

# bench/identity/run.py as a module (a script, not a package); it loads bench/oa_messages/run.py
# in turn.
ident = load_script(ROOT / "bench" / "identity" / "run.py", "identity_run")
oa = ident.oa

import certify_data as data  # noqa: E402

from wxbackend.config import load_settings  # noqa: E402
from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.infra.pii import PersonalData, mask_id_number, mask_phone, new_key, parse_keyring  # noqa: E402
from wxbackend.services.identity.accounts import PHONE_COLUMN as ACCOUNT_PHONE  # noqa: E402
from wxbackend.services.identity.sessions import SessionStore  # noqa: E402
from wxbackend.services.identity.wechat_login import SESSION_KEY_COLUMN  # noqa: E402
from wxbackend.services.membership.idnumbers import uscc_check_char  # noqa: E402
from wxbackend.store.membership import members as member_store  # noqa: E402
from wxbackend.store.membership import orgs as org_store  # noqa: E402

BenchError = oa.BenchError
log = oa.log
PROJECT_BIN = Path(sys.executable).parent
LUA = HERE / "certify.lua"
RESULTS = HERE / "results"  # raw output and the cached databases; results/.gitignore ignores all
SERVER_CORE = oa.SERVER_CORE
LOAD_CORE = oa.LOAD_CORE
FOREIGN_CPU_LIMIT = ident.FOREIGN_CPU_LIMIT
RETRIES = ident.RETRIES
TARGET_P99_MS = 20.0
PATH = "/mp/v1/membership/certify"
MP_APPID = ident.MP_APPID
MP_TTL = ident.MP_TTL
LIMIT = 1_000_000_000  # both certification limits: never reached in a benchmark
UNIONS = 200
CHUNK = 50_000  # member records per COPY
MISS_ACCOUNTS = 500  # accounts the misses take turns with
MIXES = ("mixed", "first", "miss", "repeat")
KINDS = {"mixed": "FMR", "first": "F", "miss": "M", "repeat": "R"}
LABELS = {"mixed": "mixed", "first": "first certification", "miss": "miss (no record)",
          "repeat": "repeat (already certified)"}
EMPLOYER_WORDS = ("蜀锦科技", "天府物流", "川渝建设", "锦江食品", "岷江电力", "峨眉机械", "青城旅游",
                  "嘉陵纺织", "巴蜀医药", "雅安茶业", "攀西钒钛", "川北农业", "沱江化工", "涪江电子",
                  "大渡河水电", "金沙江矿业", "龙泉汽车", "双流航空", "新都家具", "温江花木")


# --- the config --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    """The made-up field and blind-index keys the cached records were sealed with."""

    field_keys: str
    index_key: str

    @classmethod
    def new(cls) -> Keys:
        return cls(f"1:{new_key()}", base64.b64encode(os.urandom(32)).decode())

    def pii(self) -> PersonalData:
        return PersonalData(parse_keyring(self.field_keys), 1, base64.b64decode(self.index_key))


def write_config(path: Path, tmp: Path, port: int, dsn: str, redis_url: str, keys: Keys) -> None:
    """bench/identity's config (no WeChat needed: the fake's address is a closed port), with the
    cache's keys and both certification limits out of the way; read back to check."""
    ident.write_config(path, tmp, port, dsn, redis_url, "http://127.0.0.1:9",
                       script="bench/membership/certify.py", field_keys=keys.field_keys,
                       index_key=keys.index_key,
                       after_security=f"\n[membership]\ncertify_per_account_day = {LIMIT}\n"
                                      f"certify_per_ip_hour = {LIMIT}\n"
                                      'certify_without_phone = "allow"\n')
    settings = load_settings(path, environ={})
    m = settings.membership
    if m.certify_per_account_day != LIMIT or m.certify_per_ip_hour != LIMIT or \
            m.certify_without_phone != "allow" or \
            settings.security.index_key.reveal() != keys.index_key:
        raise BenchError(f"the config written to {path} does not read back as intended")


# --- the cached member database ---------------------------------------------------------------
def cache_dir(members: int) -> Path:
    if members % 1_000_000 == 0:
        label = f"{members // 1_000_000}m"
    elif members % 1000 == 0:
        label = f"{members // 1000}k"
    else:
        label = str(members)
    return RESULTS / f"cache-{label}"


def migration_hashes() -> dict[str, str]:
    folder = ROOT / "wxbackend" / "infra" / "migrations"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.sql"))}


def usable_cache(cache: Path, members: int) -> tuple[dict | None, str]:
    """The cache's meta.json if the cache fits this run, else None and why not."""
    try:
        meta = json.loads((cache / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "no cache yet"
    if not (cache / "embedded" / "postgres" / "PG_VERSION").exists():
        return None, "the cache has no database"
    if meta.get("members") != members:
        return None, f"the cache holds {meta.get('members')} records"
    if meta.get("generator") != data.GENERATOR_VERSION:
        return None, "the record generator changed"
    now = migration_hashes()
    changed = [name for name, digest in meta.get("migrations", {}).items() if now.get(name) != digest]
    if changed:
        return None, f"migrations changed since it was built: {', '.join(changed)}"
    return meta, ""


async def create_unions(dsn: str, n: int) -> list[tuple[int, str]]:
    """``n`` grassroots unions under the city unions, in turn: (id, employer name)."""
    async with oa.connected(dsn) as conn:
        cities = await conn.fetch(
            "SELECT id, division_code FROM orgs WHERE kind = 'city' ORDER BY division_code")
        if not cities:
            raise BenchError("no city unions: did `wxbackend seed` run?")
        out = []
        async with conn.transaction():
            for i in range(n):
                city = cities[i % len(cities)]
                code = city["division_code"]
                counties = data.COUNTIES_OF.get(code) or [code]
                region = counties[(i // len(cities)) % len(counties)]
                first17 = f"91{region}{i + 1:09d}"
                employer = (f"{data.CITIES.get(code, '四川省')[:-1]}"
                            f"{EMPLOYER_WORDS[i % len(EMPLOYER_WORDS)]}有限公司{i // 20 + 1}分公司")
                row = await org_store.create_grassroots(
                    conn, parent_id=city["id"], name=f"{employer}工会",
                    credit_code=first17 + uscc_check_char(first17), employer_name=employer,
                    region_code=region, founded_via_platform=False)
                out.append((row["id"], employer))
        return out


_SECONDARY = """
SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition, c.conname AS constraint_name,
       pg_get_constraintdef(c.oid) AS constraint_definition
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
     LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
WHERE x.indrelid = 'members'::regclass AND NOT x.indisprimary
ORDER BY i.relname"""


async def load_members(dsn: str, members: int, orgs: list[tuple[int, str]], keys: Keys,
                       workers: int) -> dict:
    """COPY ``members`` records sealed by ``workers`` processes; returns timings."""
    async with oa.connected(dsn) as conn:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        secondary = [dict(r) for r in await conn.fetch(_SECONDARY)]
        for ix in secondary:
            if ix["constraint_name"]:
                await conn.execute(f'ALTER TABLE members DROP CONSTRAINT "{ix["constraint_name"]}"')
            else:
                await conn.execute(f'DROP INDEX "{ix["name"]}"')
        # The foreign keys' per-row checks (org_id) are triggers; checked once after the load.
        await conn.execute("SET session_replication_role = replica")
        started = time.monotonic()
        ctx = multiprocessing.get_context("fork")
        index_key = base64.b64decode(keys.index_key)
        pending: collections.deque = collections.deque()
        chunks = iter(range(0, members, CHUNK))
        loaded = 0
        last_said = started
        with ctx.Pool(workers, initializer=data.init_worker,
                      initargs=(keys.field_keys, 1, index_key, {SERVER_CORE, LOAD_CORE})) as pool:
            while True:
                while len(pending) < 2 * workers:
                    start = next(chunks, None)
                    if start is None:
                        break
                    pending.append(pool.apply_async(data.rows,
                                                    (start, min(start + CHUNK, members), orgs)))
                if not pending:
                    break
                records = pending.popleft().get(timeout=900)
                await conn.copy_records_to_table("members", records=records, columns=data.COLUMNS)
                loaded += len(records)
                if time.monotonic() - last_said > 30 or loaded == members:
                    last_said = time.monotonic()
                    rate = loaded / (last_said - started)
                    log(f"  {loaded:,} of {members:,} records ({rate:,.0f}/s)")
        copied = time.monotonic() - started
        await conn.execute("SET session_replication_role = DEFAULT")
        orphans = await conn.fetchval(
            "SELECT count(*) FROM members m WHERE NOT EXISTS (SELECT 1 FROM orgs o WHERE o.id = m.org_id)")
        if orphans:
            raise BenchError(f"{orphans} member records name a union that does not exist")
        started_ix = time.monotonic()
        for ix in secondary:
            if ix["constraint_name"]:
                await conn.execute(f'ALTER TABLE members ADD CONSTRAINT "{ix["constraint_name"]}" '
                                   f'{ix["constraint_definition"]}')
            else:
                await conn.execute(ix["definition"])
        again = [dict(r) for r in await conn.fetch(_SECONDARY)]
        if again != secondary:
            raise BenchError(f"the indexes of members differ after the load:\n{secondary}\n{again}")
        indexed = time.monotonic() - started_ix
        started_vac = time.monotonic()
        await conn.execute("VACUUM (ANALYZE) members")
        await conn.execute("ANALYZE")
        await conn.execute("CHECKPOINT")
        count = await conn.fetchval("SELECT count(*) FROM members")
        if count != members:
            raise BenchError(f"{count} member records after loading {members}")
        return {"copy_s": round(copied, 1), "indexes_s": round(indexed, 1),
                "vacuum_analyze_s": round(time.monotonic() - started_vac, 1),
                "rows_per_s": round(members / copied), "workers": workers}


async def table_sizes(dsn: str) -> dict:
    async with oa.connected(dsn) as conn:
        row = await conn.fetchrow(
            """SELECT pg_relation_size('members') AS heap, pg_table_size('members') AS table,
                      pg_indexes_size('members') AS indexes,
                      pg_total_relation_size('members') AS total,
                      (SELECT reltuples::bigint FROM pg_class WHERE oid = 'members'::regclass) AS rows,
                      pg_database_size(current_database()) AS database""")
        indexes = await conn.fetch(
            """SELECT indexrelid::regclass::text AS name, pg_relation_size(indexrelid) AS bytes
               FROM pg_index WHERE indrelid = 'members'::regclass ORDER BY 2 DESC""")
        return {**dict(row), "per_index": {r["name"]: r["bytes"] for r in indexes}}


def build_cache(args: argparse.Namespace, cache: Path, tmp: Path) -> dict:
    """A new member database in ``cache`` (both cores); returns its meta.json."""
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    keys = Keys.new()
    started = time.monotonic()
    log(f"building the member database in {cache.relative_to(ROOT)} "
        f"({args.members:,} records, {args.load_workers} sealing processes, both cores)")
    with EmbeddedServers(cache / "embedded") as servers:
        cfg = tmp / "build.toml"
        write_config(cfg, tmp, oa.free_port(), servers.dsn, servers.redis_url, keys)
        oa.wxbackend(cfg, "migrate")
        oa.wxbackend(cfg, "seed")
        orgs = asyncio.run(create_unions(servers.dsn, UNIONS))
        log(f"created {len(orgs)} grassroots unions under the city unions")
        timings = asyncio.run(load_members(servers.dsn, args.members, orgs, keys,
                                           args.load_workers))
        sizes = asyncio.run(table_sizes(servers.dsn))
    meta = {
        "members": args.members, "generator": data.GENERATOR_VERSION,
        "migrations": migration_hashes(), "built": dt.datetime.now(dt.UTC).isoformat(),
        "build_seconds": round(time.monotonic() - started, 1), "load": timings,
        "unions": [org_id for org_id, _ in orgs], "sizes_after_build": sizes,
        # Made-up keys for made-up records; needed to read the cache again.
        "field_keys": keys.field_keys, "index_key": keys.index_key,
    }
    meta_path = cache / "meta.json"
    meta_path.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    meta_path.chmod(0o600)
    log(f"member database built in {meta['build_seconds']:.0f} s (COPY {timings['copy_s']:.0f} s, "
        f"{timings['rows_per_s']:,}/s; indexes {timings['indexes_s']:.0f} s; VACUUM ANALYZE "
        f"{timings['vacuum_analyze_s']:.0f} s)")
    return meta


def copy_cluster(cache: Path, tmp: Path) -> Path:
    """The cached cluster copied to ``tmp/embedded`` (the runs change it; the cache stays)."""
    work = tmp / "embedded"
    work.mkdir()
    started = time.monotonic()
    subprocess.run(["cp", "-a", "--reflink=auto", str(cache / "embedded" / "postgres"),
                    str(work / "postgres")], check=True, timeout=3600)
    for path in (tmp, work):  # PostgreSQL runs as its own user when we are root
        path.chmod(0o755)
    log(f"copied the cached cluster in {time.monotonic() - started:.0f} s")
    return work


# --- the requests ------------------------------------------------------------------------------
@dataclass
class Req:
    kind: str  # F first certification, M miss, R repeat
    token: str
    account_id: int
    name: str
    id_number: str
    member_no: str = "-"
    phone: str | None = None

    def body(self) -> bytes:
        return json.dumps({"name": self.name, "id_number": self.id_number},
                          ensure_ascii=False).encode()


def write_pool(path: Path, host: str, requests: list[Req]) -> None:
    with path.open("wb") as fh:
        for r in requests:
            raw = ident.raw_request("POST", PATH, host, {
                "Authorization": f"Bearer {r.token}", "Content-Type": "application/json"}, r.body())
            fh.write(f"{r.kind} {r.member_no} {len(raw)}\n".encode())
            fh.write(raw)


def _ms(seconds: list[float]) -> dict:
    ordered = sorted(seconds)

    def pct(p: float) -> float:
        return 1e3 * ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"n": len(ordered), "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "max_ms": 1e3 * ordered[-1], "mean_ms": 1e3 * statistics.fmean(ordered)}


# --- the benchmark ----------------------------------------------------------------------------
@dataclass
class Bench:
    args: argparse.Namespace
    out: Path
    tmp: Path
    dsn: str
    redis_url: str
    server: oa.Server
    pii: PersonalData
    members: int
    next_pick: int = 0   # members handed to first certifications so far
    next_miss: int = 0
    next_phone: int = 0
    miss_accounts: list[tuple[int, str]] = field(default_factory=list)  # (account id, token)
    repeats: list[Req] = field(default_factory=list)
    runs: dict[str, list[dict]] = field(default_factory=dict)
    best_rps: dict[str, float] = field(default_factory=dict)
    wrk_cmd: list[str] = field(default_factory=list)
    seq: int = 0
    repeated: int = 0
    accounts_made: int = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    # --- accounts, sessions, members ----------------------------------------------------------
    async def _accounts(self, phones: list[str]) -> list[tuple[int, str]]:
        """Accounts with these verified phones, an openid each and a Mini Program session:
        (account id, bearer token)."""
        enc = [self.pii.encrypt(p, ACCOUNT_PHONE) for p in phones]
        bidx = [self.pii.blind_index(p, ACCOUNT_PHONE) for p in phones]
        openids = ["o" + secrets.token_urlsafe(21)[:27] for _ in phones]
        async with oa.connected(self.dsn) as conn:
            async with conn.transaction():
                rows = await conn.fetch(
                    """INSERT INTO accounts (phone_enc, phone_bidx, phone_verified_at, phone_source)
                       SELECT e, b, now(), 'miniprogram' FROM unnest($1::bytea[], $2::bytea[]) AS t(e, b)
                       RETURNING id, phone_bidx""", enc, bidx)
                by_bidx = {bytes(r["phone_bidx"]): r["id"] for r in rows}
                ids = [by_bidx[b] for b in bidx]
                await conn.execute(
                    """INSERT INTO account_identities (account_id, kind, issuer, subject)
                       SELECT a, 'mp_openid', $3, s FROM unnest($1::bigint[], $2::text[]) AS t(a, s)""",
                    ids, openids, MP_APPID)
        client = aioredis.Redis.from_url(self.redis_url)
        store = SessionStore(client, kind="mp", ttl=MP_TTL)
        limit = asyncio.Semaphore(64)

        async def session(account_id: int, openid: str) -> str:
            sealed = self.pii.encrypt(secrets.token_urlsafe(18), SESSION_KEY_COLUMN).hex()
            async with limit:
                return await store.create(account_id, {"openid": openid, "session_key": sealed})

        try:
            tokens = await asyncio.gather(*(session(a, o) for a, o in zip(ids, openids, strict=True)))
        finally:
            await client.aclose()
        self.accounts_made += len(ids)
        return list(zip(ids, tokens, strict=True))

    def spare_phone(self) -> str:
        self.next_phone += 1
        return data.spare_phone(self.next_phone - 1)

    def firsts(self, n: int) -> list[Req]:
        """``n`` first certifications: members nobody has certified, each with a new account
        holding the member's phone (or its own, when the roster has none)."""
        if self.next_pick + n > self.members:
            raise BenchError(
                f"out of uncertified members: {self.members - self.next_pick} left, {n} needed; "
                "use more --members or fewer/shorter runs")
        picked = [data.member(data.pick(j, self.members))
                  for j in range(self.next_pick, self.next_pick + n)]
        self.next_pick += n
        phones = [m.phone or self.spare_phone() for m in picked]
        accounts = asyncio.run(self._accounts(phones))
        return [Req("F", token, account_id, m.name, m.id_number, m.member_no, m.phone)
                for m, (account_id, token) in zip(picked, accounts, strict=True)]

    def misses(self, n: int) -> list[Req]:
        out = []
        for j in range(self.next_miss, self.next_miss + n):
            number, name = data.miss(j)
            account_id, token = self.miss_accounts[j % len(self.miss_accounts)]
            out.append(Req("M", token, account_id, name, number))
        self.next_miss += n
        return out

    def setup(self) -> None:
        started = time.monotonic()
        phones = [self.spare_phone() for _ in range(MISS_ACCOUNTS)]
        self.miss_accounts = asyncio.run(self._accounts(phones))
        pairs = self.firsts(self.args.repeat_pairs)
        answers = asyncio.run(self._certify_all(pairs))
        for req, (status, body) in zip(pairs, answers, strict=True):
            self.check_answer(req, status, body)
        self.repeats = [Req("R", r.token, r.account_id, r.name, r.id_number, r.member_no, r.phone)
                        for r in pairs]
        linked = self.linked()
        if linked != len(pairs):
            raise BenchError(f"{linked} members linked after certifying {len(pairs)}")
        log(f"{MISS_ACCOUNTS} accounts for misses; {len(pairs)} members certified through the "
            f"API for the repeats ({time.monotonic() - started:.1f} s)")

    async def _certify_all(self, reqs: list[Req]) -> list[tuple[int, dict]]:
        limit = asyncio.Semaphore(16)

        async def one(client: httpx.AsyncClient, r: Req) -> tuple[int, dict]:
            async with limit:
                got = await client.post(f"{self.server.url}{PATH}", content=r.body(), timeout=30,
                                        headers={"Authorization": f"Bearer {r.token}",
                                                 "Content-Type": "application/json"})
            return got.status_code, got.json()

        async with httpx.AsyncClient(trust_env=False) as client:
            return await asyncio.gather(*(one(client, r) for r in reqs))

    def check_answer(self, r: Req, status: int, body: dict) -> None:
        """What the driver itself checks in an answer (more than certify.lua can)."""
        if r.kind == "M":
            if status != 400 or body.get("error", {}).get("code") != "certify_no_match":
                raise BenchError(f"a miss was answered {status}: {json.dumps(body)[:300]}")
            return
        m = body.get("member") or {}
        problems = []
        if status != 200:
            problems.append(f"status {status}")
        expected = {"member_no": r.member_no, "name": r.name, "certified": True,
                    "id_number": mask_id_number(r.id_number), "phone": mask_phone(r.phone)}
        for key, value in expected.items():
            if m.get(key) != value:
                problems.append(f"{key} {m.get(key)!r}, not {value!r}")
        if problems:
            raise BenchError(f"wrong answer to a {'first' if r.kind == 'F' else 'repeat'} "
                             f"certification: {', '.join(problems)}: {json.dumps(body)[:300]}")

    # --- the database -------------------------------------------------------------------------
    def linked(self) -> int:
        return asyncio.run(oa._fetchval(
            self.dsn, "SELECT count(*) FROM members WHERE account_id IS NOT NULL"))

    async def _pairs_linked(self, reqs: list[Req]) -> int:
        async with oa.connected(self.dsn) as conn:
            return await conn.fetchval(
                """SELECT count(*) FROM members m
                   JOIN unnest($1::text[], $2::bigint[]) AS p(no, account) ON p.no = m.member_no
                   WHERE m.account_id = p.account AND m.certified_at IS NOT NULL""",
                [r.member_no for r in reqs], [r.account_id for r in reqs])

    # --- one run ------------------------------------------------------------------------------
    def check(self, mix: str) -> None:
        """One request of each kind in the mix, sent by the driver, its answer read."""
        reqs = []
        for kind in KINDS[mix]:
            if kind == "F":
                reqs += self.firsts(1)
            elif kind == "M":
                reqs += self.misses(1)
            else:
                reqs.append(self.repeats[self.seq % len(self.repeats)])
        before = self.linked()
        for r, (status, body) in zip(reqs, asyncio.run(self._certify_all(reqs)), strict=True):
            self.check_answer(r, status, body)
        firsts = [r for r in reqs if r.kind == "F"]
        if self.linked() - before != len(firsts) or \
                asyncio.run(self._pairs_linked(firsts)) != len(firsts):
            raise BenchError("the check certification did not link exactly its member")

    def pool_size(self, key: str, duration: float) -> int:
        """Requests for one run: 1.5 times the fastest rate seen for this key (or for the same
        mix at other connections), ``--per-second`` per second when nothing was seen; twice that for
        misses."""
        mix = key.split("@")[0]
        seen = self.best_rps.get(key) or max(
            (v for k, v in self.best_rps.items() if k.split("@")[0] == mix), default=0.0)
        rate = 1.5 * seen if seen else self.args.per_second
        if mix == "miss":
            rate *= 2  # cheap to make, and faster than the others
        return max(500, math.ceil(rate * duration))

    def pool(self, mix: str, n: int) -> tuple[list[Req], str]:
        if mix == "repeat":
            return list(self.repeats), "cycle"
        if mix == "first":
            return self.firsts(n), "once"
        if mix == "miss":
            return self.misses(n), "once"
        share = dict(zip("FMR", self.args.mix, strict=True))
        counts = {k: round(n * share[k] / 100) for k in "FMR"}
        firsts, misses = self.firsts(counts["F"]), self.misses(counts["M"])
        repeats = [self.repeats[i % len(self.repeats)] for i in range(counts["R"])]
        reqs = firsts + misses + repeats
        random.Random(self.seq).shuffle(reqs)
        return reqs, "once"

    def run(self, mix: str, connections: int, duration: float, label: str,
            on_start=None) -> dict:
        for attempt in range(RETRIES + 1):
            try:
                return self._attempt(mix, connections, duration, label, on_start)
            except ident.Disturbed as exc:
                if attempt == RETRIES:
                    raise
                self.repeated += 1
                log(f"{exc}; repeating the run once the machine is quiet")
                oa.wait_until_idle(self.args.wait, ident.QUIET_SECONDS)
        raise AssertionError("unreachable")

    def _attempt(self, mix: str, connections: int, duration: float, label: str,
                 on_start) -> dict:
        if not self.server.proc.alive():
            raise BenchError(f"the server died:\n{self.server.proc.tail()}")
        self.seq += 1
        key = f"{mix}@{connections}"
        self.check(mix)
        started = time.monotonic()
        reqs, mode = self.pool(mix, self.pool_size(key, duration))
        pool_file = self.tmp / "pool.bin"
        write_pool(pool_file, self.host, reqs)
        made = time.monotonic() - started
        before = self.linked()
        raw = self.out / f"{self.seq:03d}-{mix}-c{connections}-{label.replace(' ', '-')}.txt"
        try:
            result, self.wrk_cmd = self.run_wrk(pool_file, connections, duration, mode, raw,
                                                on_start)
        finally:
            pool_file.unlink(missing_ok=True)
        done, sent = result["completed"], result["sent"]
        failures = []
        if result["bad_replies"]:
            failures.append(f"{result['bad_replies']} answers not the one their request must get "
                            f"(statuses {result['bad_statuses']})")
        if result["ok_member"] + result["ok_miss"] + result["bad_replies"] != done:
            failures.append(f"{done} answers but {result['ok_member']} + {result['ok_miss']} + "
                            f"{result['bad_replies']} counted")
        if mode == "once" and result["wraps"]:
            failures.append(f"the pool of {result['pool']} single-use requests wrapped")
        # wrk -t1 walks the pool in order: the requests sent are its first `sent`.
        sent_firsts = [r for r in reqs[:sent] if r.kind == "F"] if mode == "once" else []
        if result["sent_first"] != len(sent_firsts):
            failures.append(f"wrk sent {result['sent_first']} first certifications, the pool's "
                            f"first {sent} requests hold {len(sent_firsts)}")
        # Exactly the members of the first certifications answered 200 are linked, plus those of
        # requests still in flight when wrk stopped that the server finished (wrk closes its
        # connections then: a request it wrote last may or may not be served); every member
        # linked is one a first certification sent asked for, to the account that asked.
        grown = ident.settled(self.linked, "the count of certified members") - before
        in_flight = sent - done
        if not result["ok_first"] <= grown <= min(len(sent_firsts), result["ok_first"] + in_flight):
            failures.append(f"{grown} members were linked: {result['ok_first']} first "
                            f"certifications were answered 200, {len(sent_firsts)} were sent, "
                            f"{in_flight} requests were in flight at the end")
        elif sent_firsts and asyncio.run(self._pairs_linked(sent_firsts)) != grown:
            failures.append("some members were linked to another account than the one sent")
        if failures:
            raise BenchError(f"{LABELS[mix]}, -c{connections}: " + "; ".join(failures)
                             + f" (see {raw})")
        kinds = collections.Counter(r.kind for r in reqs[:sent]) if mode == "once" \
            else collections.Counter({"R": sent})
        result.update(label=label, mix=mix, connections=connections, pool_made_s=round(made, 2),
                      cpu_us_per_request=1e6 * result["server_cpu"] / result["rps"],
                      members_linked=grown, in_flight_not_served=len(sent_firsts) - grown,
                      sent_kinds={k: kinds.get(k, 0) for k in "FMR"})
        self.best_rps[key] = max(self.best_rps.get(key, 0.0), result["rps"])
        log(f"  {mix:6s} c{connections:<3d} {label:8s} {result['rps']:7.1f} req/s  "
            f"p50 {result['p50_ms']:6.2f} ms  p90 {result['p90_ms']:6.2f} ms  "
            f"p99 {result['p99_ms']:6.2f} ms  cpu: server {result['server_cpu']:4.0%} "
            f"core0 {result['core0_busy']:4.0%} core1 {result['core1_busy']:4.0%} "
            f"others {result['others_cpu']:3.0%}  ({done} done, {sent}/{result['pool']} of the "
            f"pool; 200 {result['ok_member']}, 400 {result['ok_miss']}; +{grown} linked)")
        return result

    def run_wrk(self, pool_file: Path, connections: int, duration: float, mode: str,
                raw_out: Path, on_start=None) -> tuple[dict, list[str]]:
        """bench/identity's run_wrk without its fake WeChat, with this script and its counters."""
        cmd = ["taskset", "-c", str(LOAD_CORE), "wrk", "-t1", f"-c{connections}",
               f"-d{duration:g}s", "--latency", "-s", str(LUA), self.server.url, "--",
               str(pool_file), "1", mode]
        pid = self.server.proc.pid
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as wrk:
            try:
                # bench/oa_messages' test (20 ms of CPU within 50 ms) is too strict for one
                # connection, which leaves the server idle while it waits for PostgreSQL.
                load_began = oa.wait_for_load(pid, wrk, timeout=120, busy=0.005)
                meter = oa.CpuMeter(pid)
                meter.start()
                irq_before = ident.interrupt_jiffies(SERVER_CORE)
                procs_before = ident.process_times()
                if on_start is not None:
                    on_start()
                window = max(0.5, duration - 1.0) - (time.monotonic() - load_began)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    wrk.wait(max(0.0, window))
                cpu = {}
                if wrk.poll() is None:
                    cpu = meter.stop()
                    irq_after = ident.interrupt_jiffies(SERVER_CORE)
                    cpu[f"core{SERVER_CORE}_softirq"] = (irq_after[0] - irq_before[0]) / max(
                        1, irq_after[1] - irq_before[1])
                    cpu["others_cpu"] = ident.others_seconds(
                        procs_before, ident.process_times(), os.getpid()) / cpu["window_s"]
                stdout, stderr = wrk.communicate(timeout=duration + 180)
            except BaseException:
                wrk.kill()
                raise
        raw_out.write_text(shlex.join(cmd) + "\n\n" + stdout + stderr, encoding="utf-8")
        if wrk.returncode != 0:
            raise BenchError(f"wrk failed ({wrk.returncode}): {stderr[-2000:]}")
        if not cpu:
            raise BenchError("wrk ended before the CPU could be measured")
        result = oa.parse_wrk(stdout)
        result.update(cpu)
        mine = re.search(r"^BENCH_RESULT (.*)$", stdout, re.M).group(1)
        counters = dict(item.split("=") for item in mine.split())
        for name in ("sent_first", "ok_member", "ok_first", "ok_miss"):
            result[name] = int(counters[name])
        result["bad_statuses"] = {k[len("bad_status_"):]: int(v) for k, v in counters.items()
                                  if k.startswith("bad_status_")}
        result["foreign_cpu"] = max(0.0, cpu[f"core{SERVER_CORE}_busy"] - cpu["server_cpu"]
                                    - cpu[f"core{SERVER_CORE}_softirq"])
        if result["foreign_cpu"] > FOREIGN_CPU_LIMIT or result["others_cpu"] > FOREIGN_CPU_LIMIT:
            raise ident.Disturbed(
                f"-c{connections}: during the run something else used "
                f"{result['foreign_cpu']:.0%} of core {SERVER_CORE}, and processes outside this "
                f"benchmark {result['others_cpu']:.0%} of a core (see {raw_out})")
        if any(result["socket_errors"].values()):
            raise BenchError(f"socket errors {result['socket_errors']} (see {raw_out})")
        return result, cmd


# --- the lookup alone, and the profile -----------------------------------------------------------
async def lookup_probe(dsn: str, pii: PersonalData, members: int, samples: int) -> dict:
    """``store.member_by_id_number`` (the ``member_rows`` row by blind index, as certify looks a
    record up), from one connection, for members spread over the table and for misses; plus the
    same with the row lock (``lock=True``: ``SELECT ... FOR UPDATE`` first) in a transaction
    rolled back, and EXPLAIN (ANALYZE, BUFFERS) of both statements."""
    rng = random.Random(20261124)
    hits = [data.member(rng.randrange(members)).id_number for _ in range(samples)]
    misses = [data.miss(10_000_000 + j)[0] for j in range(samples)]
    out: dict = {}
    async with oa.connected(dsn) as conn:
        for name, numbers in (("hit", hits), ("miss", misses)):
            for lock in (False, True):
                seconds = []
                for number in numbers:
                    bidx = pii.blind_index(number, data.ID_COLUMN)
                    started = time.perf_counter()
                    if lock:
                        tr = conn.transaction()
                        await tr.start()
                        row = await member_store.member_by_id_number(conn, bidx, lock=True)
                        await tr.rollback()
                    else:
                        row = await member_store.member_by_id_number(conn, bidx)
                    seconds.append(time.perf_counter() - started)
                    if (row is None) != (name == "miss"):
                        raise BenchError(f"the lookup probe: a {name} found {row is not None}")
                out[f"{name}, locked" if lock else name] = _ms(seconds)
        plans = []
        for name, number in (("hit", hits[0]), ("miss", misses[0])):
            bidx = pii.blind_index(number, data.ID_COLUMN)
            for sql in ("SELECT * FROM member_rows WHERE id_number_bidx = $1",
                        "SELECT 1 FROM members WHERE id_number_bidx = $1 FOR UPDATE"):
                tr = conn.transaction()
                await tr.start()
                rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, bidx)
                await tr.rollback()
                plans.append(f"-- {name}, $1 = '\\x{bidx.hex()}': {sql}\n"
                             + "\n".join(r[0] for r in rows))
        out["explain"] = "\n\n".join(plans)
    return out


_STAGES = (
    ("SessionStore.get ", "session: bearer token looked up in Redis"),
    ("MembershipService._limit ", "rate-limit counters (Redis EVALSHA)"),
    ("MembershipService._phone ", "the account row and its phone (decrypted)"),
    ("member_by_id_number ", "the lookup: the member_rows row by blind index"),
    (";certify (wxbackend/store/", "first certification: link and log (one statement)"),
    ("link_account ", "first certification: link"),
    ("log_change ", "first certification: change log row"),
    ("member_of_account ", "first certification: is the account linked elsewhere"),
    ("Transaction.", "BEGIN / COMMIT / ROLLBACK"),
    ("PersonalData.blind_index ", "blind indexes (HMAC-SM3)"),
    ("member_view ", "the answer: two SM4 decryptions, masking"),
    ("parse_id_number ", "ID number and name checks"),
    ("clean_name ", "ID number and name checks"),
    ("Pool.acquire ", "asyncpg: pool acquire / release"),
    ("PoolConnectionProxy", "asyncpg: pool acquire / release"),
    ("Pool.release ", "asyncpg: pool acquire / release"),
    ("(asyncpg/", "asyncpg: other (statements, protocol)"),
    ("MembershipService.", "the service's other code"),
    ("RequestHandler.finish ", "HTTP: write the response (Tornado), request log, metrics"),
    ("write_error ", "HTTP: the 400 answer (Tornado)"),
    ("(wxbackend/", "our other code (handler, session, request id)"),
    ("(tornado/", "HTTP: read and parse the request, route (Tornado)"),
)


def profile_run(bench: Bench, connections: int) -> dict:
    """py-spy on the server during one extra, untimed mixed run at ``connections``."""
    summary = oa.record_profile(
        bench.out, "mixed", bench.server.proc.pid, bench.args.duration, _STAGES,
        lambda on_start: bench.run("mixed", connections, bench.args.duration, "profiled",
                                   on_start=on_start),
        "cpu_us_per_request")
    if summary:
        summary["connections"] = connections
    return summary


# --- the report -------------------------------------------------------------------------------
SUMMARY_KEYS = ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "server_cpu",
                "cpu_us_per_request", f"core{LOAD_CORE}_busy")


def summarize(runs: list[dict]) -> dict:
    return {k: oa.spread([r[k] for r in runs]) for k in SUMMARY_KEYS}


def _mib(n: int) -> str:
    return f"{n / 1_048_576:,.0f} MiB"


def print_report(report: dict) -> None:
    m, v = report["machine"], report["versions"]
    print()
    print(f"command: {report['command']}")
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
          f"Linux {m['kernel']}")
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    db = report["database"]
    print(f"members: {db['members']:,} ({'cache reused' if db['cache_reused'] else 'built now'}; "
          f"built in {db['build_seconds']:.0f} s: COPY {db['load']['copy_s']:.0f} s, indexes "
          f"{db['load']['indexes_s']:.0f} s, VACUUM ANALYZE {db['load']['vacuum_analyze_s']:.0f} s)")
    s = db["sizes"]
    print(f"members table {_mib(s['table'])} (heap {_mib(s['heap'])}), indexes "
          f"{_mib(s['indexes'])}: " + ", ".join(f"{k} {_mib(b)}" for k, b in s["per_index"].items()))
    print(f"mixed = {report['args']['mix'][0]}% first, {report['args']['mix'][1]}% miss, "
          f"{report['args']['mix'][2]}% repeat")
    print()
    print(f"{'mix':7s} {'conns':>5s} {'req/s':>18s} {'p50 ms':>20s} {'p99 ms':>20s} "
          f"{'CPU us/req':>10s} {'server':>6s} {'core1':>6s}")
    for key, e in report["summary"].items():
        mix, conns = key.split("@")
        flag = "" if e["p99_ms"]["median"] < TARGET_P99_MS else "  > 20 ms"
        print(f"{mix:7s} {conns:>5s} {oa._fmt(e['rps'], 0):>18s} {oa._fmt(e['p50_ms'], 1):>20s} "
              f"{oa._fmt(e['p99_ms'], 1):>20s} {e['cpu_us_per_request']['median']:10.0f} "
              f"{e['server_cpu']['median']:6.0%} {e[f'core{LOAD_CORE}_busy']['median']:6.0%}{flag}")
    pool = report.get("pool_probe") or {}
    for key, e in (pool.get("summary") or {}).items():
        mix, conns = key.split("@")
        print(f"{mix:7s} {conns:>5s} {oa._fmt(e['rps'], 0):>18s} {oa._fmt(e['p50_ms'], 1):>20s} "
              f"{oa._fmt(e['p99_ms'], 1):>20s} {e['cpu_us_per_request']['median']:10.0f} "
              f"{e['server_cpu']['median']:6.0%} {e[f'core{LOAD_CORE}_busy']['median']:6.0%}  "
              f"(database pool {pool['pool_max']})")
    probe = report.get("lookup") or {}
    for name, p in probe.items():
        print(f"lookup alone ({name}, {p['n']} from one connection): p50 {p['p50_ms']:.2f} ms, "
              f"p99 {p['p99_ms']:.2f} ms, max {p['max_ms']:.2f} ms")
    prof = report.get("profile")
    if prof:
        print(f"profile of the mixed load at -c{prof['connections']} ({prof['samples']} samples, "
              f"{prof['cpu_us_per_request']:.0f} us CPU per request):")
        for name, share in prof["stages"]:
            print(f"  {share:6.1%}  {share * prof['cpu_us_per_request']:5.0f} us  {name}")
    print(f"accounts created: {report['accounts_created']:,}; members certified: "
          f"{report['members_linked']:,}")


# --- main ---------------------------------------------------------------------------------------
def command_line() -> str:
    return shlex.join([".venv/bin/python", "bench/membership/certify.py", *sys.argv[1:]])


def prepare_database(args: argparse.Namespace, tmp: Path) -> tuple[dict, bool]:
    cache = cache_dir(args.members)
    meta, why = (None, "--rebuild") if args.rebuild else usable_cache(cache, args.members)
    if meta is not None:
        log(f"reusing the member database in {cache.relative_to(ROOT)} "
            f"(built {meta['built'][:16]}, {meta['members']:,} records)")
        return meta, True
    log(f"building the member database: {why}")
    return build_cache(args, cache, tmp), False


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    if os.cpu_count() is None or os.cpu_count() < 2 or \
            not {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0):
        raise BenchError(f"need cores {SERVER_CORE} and {LOAD_CORE}; "
                         f"have {sorted(os.sched_getaffinity(0))}")
    stack.callback(os.close, oa.take_lock(args.wait))  # the same lock as the other benchmarks
    oa.ensure_wrk()
    RESULTS.mkdir(parents=True, exist_ok=True)
    ignore = RESULTS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# raw output and cached databases of bench/membership/certify.py\n*\n",
                          encoding="utf-8")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="certify-bench-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)

    oa.wait_until_idle(args.wait, ident.QUIET_SECONDS)
    meta, reused = prepare_database(args, tmp)
    keys = Keys(meta["field_keys"], meta["index_key"])
    copy_cluster(cache_dir(args.members), tmp)

    oa.wait_until_idle(args.wait, ident.QUIET_SECONDS)
    os.sched_setaffinity(0, {LOAD_CORE})  # before the embedded servers: they inherit core 1
    log(f"driver pinned to core {LOAD_CORE}; the server under test goes to core {SERVER_CORE}")
    log("starting embedded PostgreSQL and Redis on the copy")
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    count = asyncio.run(oa._fetchval(embedded.dsn, "SELECT count(*) FROM members"))
    if count != args.members:
        raise BenchError(f"the cached database holds {count} member records, not {args.members}; "
                         "run again with --rebuild")
    cfg = tmp / "bench.toml"
    port = oa.free_port()
    write_config(cfg, tmp, port, embedded.dsn, embedded.redis_url, keys)
    log(oa.wxbackend(cfg, "migrate", timeout=1800))
    log(oa.wxbackend(cfg, "seed"))
    sizes = asyncio.run(table_sizes(embedded.dsn))

    server = ident.start_server(cfg, out, port, "wxbackend")
    stack.callback(server.proc.stop)
    log(f"wxbackend serving on {server.url} (pid {server.proc.pid}); certification limits "
        f"{LIMIT:,} per account and day and per address and hour")
    bench = Bench(args, out, tmp, embedded.dsn, embedded.redis_url, server, keys.pii(),
                  args.members)
    bench.setup()

    keys_run = []
    for connections in args.connections:
        for mix in args.only:
            bench.run(mix, connections, args.warmup, "warm-up")
        for i in range(args.runs):
            for mix in args.only:
                key = f"{mix}@{connections}"
                bench.runs.setdefault(key, []).append(
                    bench.run(mix, connections, args.duration, f"run {i + 1}"))
                if key not in keys_run:
                    keys_run.append(key)
    summary = {k: summarize(bench.runs[k]) for k in keys_run}
    over = [k for k, s in summary.items() if s["p99_ms"]["median"] >= TARGET_P99_MS]
    profile = {}
    if args.profile and over and "mixed" in args.only:
        profile = profile_run(bench, max(args.connections))
    server.proc.stop()

    # The same load at the most connections once more, against a second server process with as
    # many database connections as wrk has connections (default 10): how much of the tail is
    # waiting for one of the pool's connections (as bench/identity asks for /mp/v1/me).
    most = max(args.connections)
    probe_keys = [f"{mix}@{most}" for mix in args.only if f"{mix}@{most}" in over]
    probe_runs: dict[str, list[dict]] = {}
    if args.probe and probe_keys:
        env = {"WXBACKEND__DATABASE__POOL_MAX": str(most)}
        wide = ident.start_server(cfg, out, oa.free_port(), "wxbackend-pool", env)
        stack.callback(wide.proc.stop)
        log(f"wxbackend with {env} on {wide.url} (pid {wide.proc.pid})")
        bench.server = wide
        mixes = [k.split("@")[0] for k in probe_keys]
        for mix in mixes:
            bench.run(mix, most, args.warmup, "warm-up")
        for i in range(args.runs):
            for mix in mixes:
                probe_runs.setdefault(f"{mix}@{most}", []).append(
                    bench.run(mix, most, args.duration, f"pool {i + 1}"))
        wide.proc.stop()
    linked = bench.linked()

    log(f"timing the lookup alone ({args.lookup_samples} hits and misses from one connection)")
    lookup = asyncio.run(lookup_probe(embedded.dsn, bench.pii, args.members, args.lookup_samples))
    (out / "explain.txt").write_text(lookup["explain"] + "\n", encoding="utf-8")
    facts = ident.versions(embedded)
    report = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line(),
        "target": f"p99 under {TARGET_P99_MS:.0f} ms",
        "args": {"members": args.members, "duration": args.duration,
                 "connections": args.connections, "runs": args.runs, "warmup": args.warmup,
                 "mix": args.mix, "repeat_pairs": args.repeat_pairs, "mixes": args.only},
        "machine": oa.machine(),
        "commit": oa.source_commit(),
        "overrides": {k: v for k, v in sorted(os.environ.items())
                      if k.startswith("WXBACKEND__") and not any(
                          word in k for word in ("SECRET", "TOKEN", "KEY", "DSN", "URL"))},
        "config": {"membership.certify_per_account_day": LIMIT,
                   "membership.certify_per_ip_hour": LIMIT,
                   "membership.certify_without_phone": "allow"},
        "versions": facts,
        "database": {"members": args.members, "cache_reused": reused,
                     "cache": str(cache_dir(args.members).relative_to(ROOT)),
                     "build_seconds": meta["build_seconds"], "load": meta["load"],
                     "sizes": sizes},
        "runs": bench.runs,
        "summary": summary,
        "over_target": over,
        "lookup": {k: v for k, v in lookup.items() if k != "explain"},
        "profile": profile,
        "pool_probe": {"pool_max": most, "runs": probe_runs,
                       "summary": {k: summarize(v) for k, v in probe_runs.items()}},
        "accounts_created": bench.accounts_made,
        "members_linked": linked,
        "wrk_command": shlex.join(bench.wrk_cmd),
        "repeated": bench.repeated,
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False),
                                      encoding="utf-8")
    log(f"raw output in {out.relative_to(ROOT)}")
    return report


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated integers expected") from None


def main() -> int:
    parser = argparse.ArgumentParser(description="Certification lookups on one server process.")
    parser.add_argument("--members", type=int, default=5_000_000,
                        help="member records in the database (default 5,000,000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run")
    parser.add_argument("--connections", type=_ints, default=[64, 16],
                        help="wrk connections, comma-separated (default 64,16)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per mix and connections")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="untimed seconds per mix and connections")
    parser.add_argument("--mix", type=_ints, default=[50, 30, 20],
                        help="the mixed load: percent first certifications, misses, repeats")
    parser.add_argument("--only", default=",".join(MIXES),
                        help=f"mixes to measure, comma-separated ({', '.join(MIXES)})")
    parser.add_argument("--per-second", type=int, default=2_500,
                        help="requests per second of run made for a mix not measured yet")
    parser.add_argument("--repeat-pairs", type=int, default=2_000,
                        help="members certified beforehand, for the repeats")
    parser.add_argument("--lookup-samples", type=int, default=2_000,
                        help="lookups timed alone, for hits and for misses each")
    parser.add_argument("--load-workers", type=int, default=2,
                        help="processes sealing records while building the database")
    parser.add_argument("--rebuild", action="store_true", help="build the database even if cached")
    parser.add_argument("--wait", type=float, default=600.0,
                        help="seconds to wait for another run to finish or the machine to idle")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="no py-spy profile, even if a p99 is above 20 ms")
    parser.add_argument("--no-probe", dest="probe", action="store_false",
                        help="no second server with a database pool as large as the most "
                             "connections, even if a p99 is above 20 ms there")
    args = parser.parse_args()
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    if set(args.only) - set(MIXES) or not args.only:
        parser.error(f"--only: some of {', '.join(MIXES)}")
    if len(args.mix) != 3 or sum(args.mix) != 100 or min(args.mix) < 0:
        parser.error("--mix: three percentages adding up to 100")
    if args.runs < 1 or args.duration <= 0 or not args.connections or min(args.connections) < 1 \
            or args.members < 10_000 or not 10 <= args.repeat_pairs <= 100_000:
        parser.error("need --runs >= 1, --duration > 0, connections >= 1, --members >= 10000 and "
                     "10..100000 --repeat-pairs")
    return oa.run_main(args, main_inner, print_report)


if __name__ == "__main__":
    sys.exit(main())
