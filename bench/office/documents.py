"""Office: document numbers (发文字号). Chengdu's office has ``--docs`` outgoing documents waiting
at the numbering step (编号); then

1. **100 concurrent numberings of different documents** of one union and year, ``--rounds``
   times: every request must get a number, the numbers must be distinct and without gaps
   (``成工办字〔2026〕1号`` … ``100号``, then on from 101 in the next round), and the time the
   burst takes is reported.
2. **100 concurrent numberings of the same document**: exactly one number is given; the 99
   others are told the document moved on or is numbered already, and the sequence moved by one.

    .venv/bin/python bench/office/documents.py          # from the repository root [--rounds 3]
                                                         # [--burst 100] [--no-docs]

The documents are drafted and taken to the numbering step through the product's services
(draft → submit → 核稿 → 签发 → 复核); the numberings go through ``Documents.act`` — the engine
step with its item lock, the sequence row, the audit record — in one process on this machine's
two cores, with PostgreSQL. Results go to ``bench/results/office-documents/<time>/`` and the
section "Office: document numbers" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import re
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

RESULTS = ROOT / "bench" / "results" / "office-documents"
SECTION = "## Office: document numbers (bench/office/documents.py)"
NOW = dt.datetime(2026, 6, 15, 10, 0, tzinfo=CHINA)
DOC = {"title": "关于做好职工春训工作的通知", "main_to": "各区（市）县总工会",
       "body": "现就有关事项通知如下。"}
NUMBER = re.compile(r"成工办字〔2026〕([0-9]+)号")
log = oa.log


class Failed(oa.BenchError):
    pass


async def prepare(dsn: str) -> None:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await seed(conn)
        chengdu = await conn.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
        for name in ("wangni", "libiao"):
            cadre = await conn.fetchval(
                """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
                   VALUES ($1, $1, $2, 'cadre', 'business', 'unused') RETURNING id""", name, chengdu)
            await conn.execute(
                "INSERT INTO cadre_grants (cadre_id, permission) VALUES ($1, 'document.handle')", cadre)
    finally:
        await conn.close()


async def actor(conn, username: str) -> Actor:
    row = await conn.fetchrow(
        """SELECT c.id, c.org_id, o.path::text AS path FROM cadres c JOIN orgs o ON o.id = c.org_id
           WHERE c.username = $1""", username)
    return Actor(id=row["id"], username=username, org_id=row["org_id"], org_path=row["path"],
                 role="cadre", duty="business", permissions=frozenset({"document.handle"}))


async def at_numbering(rt, drafter: Actor, checker: Actor) -> int:
    """One document drafted and taken to 编号 through the services."""
    d = rt.documents
    doc_id = (await d.draft(drafter, dict(DOC)))["document"]["id"]
    await d.act(drafter, doc_id, {"action": "submit"})
    for step in ("check", "sign", "recheck"):
        if step == "sign":
            await d.act(checker, doc_id, {"action": "sign"})
            continue
        item = (await d.view(checker, doc_id))["item"]
        task = next(t["id"] for s in item["steps"] if s["status"] == "open" for t in s["tasks"] if t["mine"])
        await rt.work.act(checker, item["id"], {"action": "pass", "task_id": task})
    return doc_id


async def measure(settings, embedded: EmbeddedServers, rounds: int, burst: int) -> dict:
    report: dict = {"rounds": []}
    async with open_runtime(settings, embedded.dsn, embedded.redis_url, now=lambda: NOW) as rt:
        async with rt.pool.acquire() as conn:
            drafter, checker = await actor(conn, "wangni"), await actor(conn, "libiao")
        await rt.documents.set_office(checker, {"issuer_code": "成工办字", "issuer_mark": "成都市总工会文件",
                                                "issuer_name": "成都市总工会"})
        t = time.perf_counter()
        waiting = []
        for _ in range(rounds * burst + 1):
            waiting.append(await at_numbering(rt, drafter, checker))
        report["prepare_seconds"] = time.perf_counter() - t
        log(f"{len(waiting)} documents at 编号 in {report['prepare_seconds']:.0f} s")

        given: list[int] = []
        for n in range(rounds):
            batch = waiting[n * burst:(n + 1) * burst]
            t = time.perf_counter()
            results = await asyncio.gather(*(rt.documents.act(checker, doc, {"action": "number"})
                                             for doc in batch), return_exceptions=True)
            seconds = time.perf_counter() - t
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise Failed(f"round {n + 1}: {len(errors)} numberings failed: {errors[0]!r}")
            serials = sorted(int(NUMBER.fullmatch(r["doc_number"]).group(1)) for r in results)
            expected = list(range(n * burst + 1, (n + 1) * burst + 1))
            if serials != expected:
                raise Failed(f"round {n + 1}: numbers not distinct and gap-free: {serials}")
            given += serials
            report["rounds"].append({"seconds": seconds, "first": serials[0], "last": serials[-1]})
            log(f"round {n + 1}: {burst} numbers {serials[0]}–{serials[-1]} in {seconds * 1000:.0f} ms")
        async with rt.pool.acquire() as conn:
            stored = [r["number_serial"] for r in await conn.fetch(
                "SELECT number_serial FROM documents WHERE number_serial IS NOT NULL ORDER BY 1")]
        if stored != sorted(given) or len(set(stored)) != len(stored):
            raise Failed("the stored numbers differ from those handed out")

        same = waiting[-1]
        t = time.perf_counter()
        answers = await asyncio.gather(*(rt.documents.act(checker, same, {"action": "number"})
                                         for _ in range(burst)), return_exceptions=True)
        seconds = time.perf_counter() - t
        winners = [a for a in answers if isinstance(a, dict)]
        refused = [a for a in answers if isinstance(a, Conflict)]
        async with rt.pool.acquire() as conn:
            last = await conn.fetchval(
                "SELECT last FROM document_sequences WHERE kind = 'out' AND year = 2026")
            kept = await conn.fetchval("SELECT doc_number FROM documents WHERE id = $1", same)
        if len(winners) != 1 or len(refused) != burst - 1 or last != rounds * burst + 1 \
                or kept != winners[0]["doc_number"]:
            raise Failed(f"same document: {len(winners)} winners, {len(refused)} refused, sequence at {last}")
        report["same"] = {"requests": burst, "winners": len(winners), "refused": len(refused),
                          "codes": sorted({a.code for a in refused}), "seconds": seconds,
                          "number": kept, "sequence_last": last}
        log(f"same document: 1 number ({kept}), {len(refused)} refused, in {seconds * 1000:.0f} ms")
    return report


def main_inner(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    stack.callback(os.close, oa.take_lock(args.wait))
    oa.wait_until_idle(args.wait)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="office-documents-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    embedded = stack.enter_context(EmbeddedServers(tmp / "embedded"))
    report: dict = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "command": shlex.join([".venv/bin/python", "bench/office/documents.py", *sys.argv[1:]]),
                    "machine": oa.machine(), "commit": oa.source_commit(), "args": vars(args)}
    asyncio.run(prepare(embedded.dsn))
    settings = load_settings(None, environ={}).replace(
        security={"field_keys": f"1:{new_key()}", "field_key_current": 1,
                  "index_key": _key32(), "audit_key": _key32()})
    report.update(asyncio.run(measure(settings, embedded, args.rounds, args.burst)))
    (out / "summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str),
                                      encoding="utf-8")
    return report


def _key32() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def render_section(report: dict) -> str:
    m, rounds, same = report["machine"], report["rounds"], report["same"]
    times = [r["seconds"] * 1000 for r in rounds]
    burst = report["args"]["burst"]
    return "\n".join([
        SECTION, "",
        f"Measured {report['when']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['os']}); commit {report['commit']}.", "", f"    {report['command']}", "",
        f"Chengdu's office had {rounds[-1]['last'] + 1} outgoing documents at the numbering step "
        f"(drafted and taken there through the services in {report['prepare_seconds']:.0f} s). "
        "Each numbering is `Documents.act(…, number)`: the engine step under the item's row lock, "
        "the union-and-year sequence row incremented in the same transaction, the audit record. "
        "One process, PostgreSQL on the same two cores.", "",
        "| what | result | check |", "|---|---|---|",
        f"| {burst} concurrent numberings of different documents, one union and year, "
        f"{len(rounds)} rounds | median **{statistics.median(times):.0f} ms** per burst "
        f"(range {min(times):.0f}–{max(times):.0f} ms) | numbers 1–{rounds[-1]['last']} handed out, "
        "each round distinct and without gaps (asserted) |",
        f"| {same['requests']} concurrent numberings of the same document | **{same['winners']} number** "
        f"({same['number']}), {same['refused']} refused ({', '.join(same['codes'])}), in "
        f"{same['seconds'] * 1000:.0f} ms | the sequence moved by one (asserted) |", "",
        "The sequence row (`document_sequences`, one per union, kind and year) is taken by "
        "`INSERT … ON CONFLICT DO UPDATE … RETURNING` and stays locked until the step commits, so "
        "concurrent numberings of a union queue on it and a failed step gives its number back; a "
        "partial unique index on (union, year, number) backs the rule. The same document's "
        "requests queue on its item lock: the first numbers it, the rest see the step has moved "
        "on (`item_moved` when they name the version they saw, `already_numbered` otherwise).", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description="Office: document numbers under concurrency.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the lock or idle")
    parser.add_argument("--no-docs", dest="docs", action="store_false")
    args = parser.parse_args()

    def docs(report: dict) -> None:
        if args.docs:
            oa.write_section(SECTION, render_section(report))

    return oa.run_main(args, main_inner, lambda r: print("\n" + render_section(r)), docs)


if __name__ == "__main__":
    sys.exit(main())
