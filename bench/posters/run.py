"""Poster rendering: time per poster and memory, drawn in the event loop's executor as the
server does, while a timer measures how late the event loop runs.

    .venv/bin/python bench/posters/run.py   # from the repository root [--posters 200] [--no-docs]

Each poster is a 750×1200 PNG with a long Chinese title (wrapped and fitted), time, place, the
organiser and a QR of the item's page (the H5 form; the Mini Program form pastes WeChat's image
instead of drawing a QR). Results go to the section "Posters" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._scripts import load_script  # noqa: E402

oa = load_script(ROOT / "bench" / "oa_messages" / "run.py", "oa_messages_run")

from wxbackend.services.activities.posters import render_poster  # noqa: E402

SECTION = "## Posters (bench/posters)"


def draw_one(n: int) -> tuple[float, int]:
    began = time.perf_counter()
    png = render_poster(f"第{n}届四川省职工文化艺术节暨川工之家线上文艺汇演（成都分会场）",
                        "2027年05月01日 09:00 至 12:00", "成都市锦江区红星路二段 85 号 四川省职工服务中心",
                        "成都市总工会", None, f"https://example.cn/h5/activities.html#item-{n}")
    return time.perf_counter() - began, len(png)


async def measure(posters: int) -> dict:
    loop = asyncio.get_running_loop()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await loop.run_in_executor(None, draw_one, 0)  # fonts loaded, caches warm
    rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    alone = sorted([await loop.run_in_executor(None, draw_one, n) for n in range(20)])  # one at a time
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            due = time.perf_counter() + 0.01
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - due)

    tick = asyncio.create_task(ticker())
    began = time.perf_counter()
    results = await asyncio.gather(*(loop.run_in_executor(None, draw_one, n) for n in range(1, posters + 1)))
    wall = time.perf_counter() - began
    stop.set()
    await tick
    times = sorted(r[0] for r in results)
    lags.sort()
    return {"posters": posters, "wall_s": wall, "alone_p50_ms": 1000 * statistics.median(t for t, _ in alone),
            "per_poster_p50_ms": 1000 * statistics.median(times),
            "per_poster_p99_ms": 1000 * times[int(len(times) * 0.99) - 1],
            "png_kib": statistics.mean(r[1] for r in results) / 1024,
            "rss_warm_mib": (rss_warm - rss_before) / 1024,
            "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "loop_lag_p99_ms": 1000 * lags[int(len(lags) * 0.99) - 1], "loop_lag_max_ms": 1000 * lags[-1]}


def render(result: dict, machine: dict, commit: str, command: str) -> str:
    r = result
    return "\n".join([
        SECTION, "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC} on {machine['cpu']}, {machine['cores']} "
        f"cores, {machine['memory_gib']} GiB ({machine['os']}); commit {commit}.", "", f"    {command}", "",
        f"{r['posters']} posters (750×1200 PNG, a two-line Chinese title, time, place, organiser, a QR) "
        "drawn in the event loop's default executor, all submitted at once, while a 10 ms timer "
        "runs on the loop.", "",
        "| one poster alone, p50 (ms) | in the burst, p50 / p99 (ms) | burst, wall (s) | PNG (KiB) | "
        "memory after the first (MiB) | peak RSS (MiB) | event-loop lag p99 / max (ms) |",
        "|---|---|---|---|---|---|---|",
        f"| {r['alone_p50_ms']:.0f} | {r['per_poster_p50_ms']:.0f} / {r['per_poster_p99_ms']:.0f} | "
        f"{r['wall_s']:.1f} | "
        f"{r['png_kib']:.0f} | +{r['rss_warm_mib']:.0f} | {r['rss_peak_mib']:.0f} | "
        f"{r['loop_lag_p99_ms']:.1f} / {r['loop_lag_max_ms']:.1f} |", "",
        "The first poster loads the CJK font (the member card's Noto Sans CJK) and is not counted. "
        "In the burst, times include waiting for one of the executor's threads. The loop's lag is "
        "the GIL that the drawing threads hold between Pillow's C calls: a burst of posters delays "
        "other requests by that much, never by a whole poster.", ""])


def write_docs(section: str) -> None:
    oa.write_section("## Posters (bench/posters)", section)


def main() -> int:
    parser = argparse.ArgumentParser(description="Poster rendering time and memory.")
    parser.add_argument("--posters", type=int, default=200)
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()
    result = asyncio.run(measure(args.posters))
    section = render(result, oa.machine(), oa.source_commit(),
                     shlex.join([".venv/bin/python", "bench/posters/run.py", *sys.argv[1:]]))
    print(section)
    if args.docs:
        write_docs(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
