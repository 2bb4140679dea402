"""The training sandbox as a newcomer starts it: ``make demo`` in a fresh clone of the committed
HEAD, timed from the command to the sandbox page answering (the virtualenv, the install, the
embedded databases, the migrations, the seed and the demo province's generation); then a restart
(the province kept) and ``make demo-reset`` (generated again), each timed the same way; and the
generation itself as the demo logs it.

    .venv/bin/python bench/sandbox/run.py [--port 8000] [--no-docs]

Results go to the section "Training sandbox" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

oa = load_script(ROOT / "bench" / "oa_messages" / "run.py", "oa_run")

SECTION = "## Training sandbox (bench/sandbox/run.py)"
GENERATED = re.compile(r"demo province generated in ([0-9.]+) s: (\{.*\})")


def make(clone: Path, target: str, port: int, log: Path) -> tuple[subprocess.Popen, float]:
    """Start ``make <target>`` and wait for the sandbox page; the process and the seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXBACKEND__")}
    began = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(["make", target], cwd=clone, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    while time.perf_counter() - began < 900:
        if proc.poll() is not None:
            raise oa.BenchError(f"make {target} stopped: see {log}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/sandbox/", timeout=2).status_code == 200:
                return proc, time.perf_counter() - began
        time.sleep(0.1)
    raise oa.BenchError(f"make {target} did not answer within 900 s")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    work = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    stack.callback(shutil.rmtree, work, ignore_errors=True)
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    if args.port != 8000:
        makefile = clone / "Makefile"
        makefile.write_text(makefile.read_text().replace("--port 8000", f"--port {args.port}"))
    report: dict = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": shlex.join([".venv/bin/python", "bench/sandbox/run.py", *sys.argv[1:]]),
                    "machine": oa.machine(), "commit": oa.source_commit(), "runs": []}
    for name, target in (("first start in a fresh clone", "demo"), ("restart", "demo"),
                         ("reset", "demo-reset")):
        log = work / f"{len(report['runs'])}-{target}.log"
        proc, seconds = make(clone, target, args.port, log)
        stop(proc)
        found = GENERATED.search(log.read_text(encoding="utf-8", errors="replace"))
        report["runs"].append({"what": name, "target": target, "seconds": seconds,
                               "generated_s": float(found.group(1)) if found else None,
                               "made": found.group(2) if found else None})
        oa.log(f"{name}: {seconds:.1f} s")
    return report


def render(report: dict) -> str:
    m = report["machine"]
    rows = [f"| `make {r['target']}`: {r['what']} | **{r['seconds']:.1f} s** | "
            + (f"{r['generated_s']:.1f} s" if r["generated_s"] is not None else "— (kept)") + " |"
            for r in report["runs"]]
    made = next((r["made"] for r in report["runs"] if r["made"]), "")
    return "\n".join([
        SECTION, "",
        f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB ({m['os']}); "
        f"commit {report['commit']}.", "", f"    {report['command']}", "",
        "From the command to the sandbox page answering, in a fresh clone of the commit. The first "
        "start makes the virtualenv and installs the project (pip's cache was warm: the packages "
        "were not downloaded), starts the embedded PostgreSQL and Redis, migrates, seeds and "
        "generates the demo province at its default sizes; the restart keeps the province; the "
        "reset empties the database and generates it again.", "",
        "| what | to the page answering | of which the demo province's generation |", "|---|---|---|",
        *rows, "", f"The province generated: `{made}`.", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description="make demo, timed from a fresh clone.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--wait", type=float, default=600.0)
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()

    def docs(report: dict) -> None:
        if args.docs:
            oa.write_section(SECTION, render(report))

    return oa.run_main(args, main_inner, lambda r: print("\n" + render(r)), docs)


if __name__ == "__main__":
    sys.exit(main())
