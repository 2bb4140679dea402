"""Roster import of 100,000 rows through ``RosterService`` against a real, migrated PostgreSQL.

    .venv/bin/python bench/membership/roster_import.py   # from the repository root [--rows 100000]

In order:

1. starts embedded PostgreSQL and Redis in a temporary directory, migrates and seeds them;
   creates 50 grassroots unions under the Chengdu union and a cadre 李四 with ``member.import``
   and ``member.export`` (through the services, as the console would);
2. writes the same roster (``--rows`` members, valid random ID numbers with check digits from
   ``id_check_char``, every column of the template) twice — not timed:
   * as Excel saves a workbook: shared strings, a ``<dimension>`` element, dates as styled numbers;
   * as openpyxl writes one (and so as our own export is written): inline strings and no
     ``<dimension>``, which openpyxl reads about twice as slowly (it parses the sheet once more
     just to find the size);
3. ``--runs`` times (3), timed and without tracing, for each file: the first import (every row
   created), then the re-import of the same file (every row unchanged, nothing written), the
   members emptied before each file; then the export of the Chengdu subtree; prints each run
   and the medians with their ranges;
4. checks every result (counts, members and change-log rows in the database, no row errors);
5. empties the members and runs import and re-import of the Excel file again under
   ``tracemalloc`` for the peak of Python allocations in this process (tracing slows Python
   down, so those runs are not timed).

Printed: wall time, rows/s, the tracemalloc peak, this process's peak RSS (``ru_maxrss``, reset
before each phase through ``/proc/self/clear_refs``) and the peak RSS of the workbook reader
(a child process the service starts for a large workbook; sampled from ``/proc``). PostgreSQL
runs on the same two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
from openpyxl import Workbook  # noqa: E402
from openpyxl.utils import get_column_letter  # noqa: E402

from wxbackend.config import load_settings  # noqa: E402
from wxbackend.infra.db import connect  # noqa: E402
from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.infra.migrations import migrate  # noqa: E402
from wxbackend.infra.pii import new_key  # noqa: E402
from wxbackend.runtime import open_runtime  # noqa: E402
from wxbackend.services.membership.idnumbers import id_check_char  # noqa: E402
from wxbackend.services.membership.roster_files import Upload  # noqa: E402
from wxbackend.services.membership.roster_rows import HEADER  # noqa: E402
from wxbackend.services.seed import seed  # noqa: E402
from wxbackend.store.membership import orgs as org_store  # noqa: E402

PASSWORD = "Sichuan-Union-2026"
UNIONS = 50
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志强海燕红梅玉兰春花晓东"
REGIONS = ("510104", "510105", "510106", "510107", "510108", "510112", "510113", "510114", "510115")
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"


def otp(uri: str) -> str:
    return pyotp.TOTP(parse_qs(urlsplit(uri).query)["secret"][0]).now()


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 1_048_576:.1f} MiB"


def hwm(pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peaks() -> None:
    """Start each phase's peak RSS afresh: writing "5" to clear_refs resets the high-water mark
    that ru_maxrss reports, which otherwise would show Argon2's 64 MiB (the cadres' password
    hashing at start-up) rather than the import's own peak."""
    Path("/proc/self/clear_refs").write_text("5")
    READER.peak = 0


def rss() -> str:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return f"ru_maxrss {mib(peak)}; reader child {mib(READER.peak) if READER.peak else '-'}"


class ReaderPeak:
    """The peak RSS (VmHWM) of the service's workbook reader, a spawned child of this process
    (RUSAGE_CHILDREN would also count initdb, run by the embedded PostgreSQL)."""

    def __init__(self) -> None:
        self.peak = 0

    def sample(self) -> None:
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if ppid == me and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                    self.peak = max(self.peak, hwm(entry))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile

    async def watch(self, every: float = 0.2) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(every)


READER = ReaderPeak()


def roster_rows(rows: int, unions: list[str], seed_value: int = 2026) -> Iterator[list]:
    """Unique, valid ID numbers: region, birth date and sequence never repeat together."""
    rng = random.Random(seed_value)
    start = date(1965, 1, 1)
    for i in range(rows):
        region = REGIONS[i % len(REGIONS)]
        born = start + timedelta(days=(i // len(REGIONS)) % 12_000)
        seq = i // (len(REGIONS) * 12_000)
        first17 = f"{region}{born:%Y%m%d}{seq:02d}{rng.randrange(10)}"
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        yield [unions[i % len(unions)], name,
               first17 + id_check_char(first17), f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
               "汉族", rng.choice(("高中", "大专", "本科")), rng.choice(("群众", "共青团员", "中共党员")),
               rng.choice(("城镇", "农村")), rng.choice(("是", "否")), "成都某某制造有限公司",
               rng.choice(("操作工", "技术员", "班组长", None)), date(2010, 1, 1) + timedelta(days=i % 5000),
               f"CD{i:08d}" if i % 2 else None]


def write_openpyxl_style(path: Path, rows: int, unions: list[str]) -> None:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("会员名册")
    ws.append(HEADER)
    for values in roster_rows(rows, unions):
        ws.append(values)
    wb.save(path)


def write_excel_style(path: Path, rows: int, unions: list[str]) -> None:
    """The parts Excel writes for a one-sheet workbook, with the sheet streamed into the zip."""
    strings: dict[str, int] = {}
    letters = [get_column_letter(c) for c in range(1, len(HEADER) + 1)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("xl/worksheets/sheet1.xml", "w") as out:
            out.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{MAIN_NS}">'
                      f'<dimension ref="A1:{letters[-1]}{rows + 1}"/><sheetData>'.encode())
            for r, values in enumerate(_with_header(roster_rows(rows, unions)), 1):
                cells = []
                for letter, v in zip(letters, values, strict=True):
                    if v is None:
                        continue
                    if isinstance(v, date):
                        cells.append(f'<c r="{letter}{r}" s="1"><v>{(v - date(1899, 12, 30)).days}</v></c>')
                    else:
                        idx = strings.setdefault(v, len(strings))
                        cells.append(f'<c r="{letter}{r}" t="s"><v>{idx}</v></c>')
                out.write(f'<row r="{r}">{"".join(cells)}</row>'.encode())
            out.write(b"</sheetData></worksheet>")
        zf.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN_NS}" uniqueCount="{len(strings)}">'
                    + "".join(f"<si><t>{escape(s)}</t></si>" for s in strings) + "</sst>")
        xf = 'fontId="0" fillId="0" borderId="0"'
        zf.writestr("xl/styles.xml", f'<styleSheet xmlns="{MAIN_NS}">'
                    '<fonts count="1"><font><sz val="11"/><name val="等线"/></font></fonts>'
                    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
                    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
                    f'<cellStyleXfs count="1"><xf numFmtId="0" {xf}/></cellStyleXfs><cellXfs count="2">'
                    f'<xf numFmtId="0" {xf} xfId="0"/><xf numFmtId="14" {xf} xfId="0" applyNumberFormat="1"/>'
                    '</cellXfs><cellStyles count="1"><cellStyle name="常规" xfId="0" builtinId="0"/>'
                    '</cellStyles></styleSheet>')
        zf.writestr("xl/workbook.xml", f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}"><sheets>'
                    '<sheet name="会员名册" sheetId="1" r:id="rId1"/></sheets></workbook>')
        zf.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{PKG_REL_NS}">'
                    f'<Relationship Id="rId1" Type="{REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>'
                    f'<Relationship Id="rId2" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>'
                    f'<Relationship Id="rId3" Type="{REL_NS}/styles" Target="styles.xml"/></Relationships>')
        zf.writestr("_rels/.rels", f'<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" '
                    f'Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
        zf.writestr("[Content_Types].xml",
                    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                    '<Default Extension="rels" '
                    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                    '<Default Extension="xml" ContentType="application/xml"/>'
                    f'<Override PartName="/xl/workbook.xml" ContentType="{sml}.sheet.main+xml"/>'
                    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{sml}.worksheet+xml"/>'
                    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{sml}.sharedStrings+xml"/>'
                    f'<Override PartName="/xl/styles.xml" ContentType="{sml}.styles+xml"/></Types>')


def _with_header(rows: Iterator[list]) -> Iterator[list]:
    yield list(HEADER)
    yield from rows


WALLS: dict[str, list[float]] = {}


async def timed(label: str, coro, rows: int) -> object:
    reset_peaks()
    started = time.perf_counter()
    result = await coro
    wall = time.perf_counter() - started
    WALLS.setdefault(label, []).append(wall)
    print(f"{label:<58} {wall:6.2f} s {rows / wall:7,.0f} rows/s   {rss()}", flush=True)
    return result


def summary(rows: int) -> None:
    print(f"\nmedian (min–max) of {max(len(w) for w in WALLS.values())} runs:")
    for label, walls in WALLS.items():
        mid = statistics.median(walls)
        print(f"{label:<58} {mid:6.2f} s ({min(walls):.2f}–{max(walls):.2f})  {rows / mid:7,.0f} rows/s")


async def traced(label: str, coro) -> object:
    reset_peaks()
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = await coro
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<58} tracemalloc peak {mib(peak)}   {rss()}", flush=True)
    return result


async def prepare(dsn: str) -> tuple[int, list[str], str]:
    conn = await connect(dsn)
    try:
        await migrate(conn)
        await seed(conn)
        chengdu = await conn.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
        unions = []
        for n in range(UNIONS):
            org = await org_store.create_grassroots(
                conn, parent_id=chengdu, name=f"成都压测{n}公司工会", credit_code=None,
                employer_name=f"成都压测{n}公司", region_code=None, founded_via_platform=False)
            unions.append(org["code"])
        return chengdu, unions, await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


async def bench(tmp: Path, rows: int, runs: int) -> None:
    with EmbeddedServers(tmp / "embedded") as servers:
        chengdu, unions, pg_version = await prepare(servers.dsn)
        settings = load_settings(None, environ={}).replace(
            security={"field_keys": f"1:{new_key()}", "field_key_current": 1,
                      "index_key": new_key() + new_key(), "audit_key": new_key() + new_key()},
            logging={"level": "WARNING"})
        files = {"Excel-written workbook (shared strings)": tmp / "excel.xlsx",
                 "openpyxl-written workbook (inline strings)": tmp / "openpyxl.xlsx"}
        started = time.perf_counter()
        # In a child process, so this process's peak RSS is the import's, not the generator's.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(pool, write, path, rows, unions)
                                   for write, path in zip((write_excel_style, write_openpyxl_style),
                                                          files.values(), strict=True)))
        print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"PostgreSQL {pg_version}, openpyxl {version('openpyxl')}, asyncpg {version('asyncpg')}, "
              f"cryptography {version('cryptography')}; "
              f"batches of {settings.membership.import_batch_rows} rows")
        sizes = ", ".join(f"{mib(p.stat().st_size)} ({p.name})" for p in files.values())
        took = time.perf_counter() - started
        print(f"generated {rows:,} rows twice: {sizes} in {took:.1f} s (not timed)\n", flush=True)

        watcher = asyncio.create_task(READER.watch())
        async with open_runtime(settings, servers.dsn, servers.redis_url) as rt:
            office = await rt.cadres.create_operator(username="office", display_name="平台办公室",
                                                     password=PASSWORD)
            office_actor = (await rt.cadres.login(username="office", password=PASSWORD,
                                                  totp=otp(office.totp_uri), ip="", user_agent="")).actor
            wangwu = await rt.cadres.create_account(
                office_actor, username="wangwu", display_name="王五", org_id=chengdu, role="super_admin",
                duty="system", password=PASSWORD,
                permissions={"account.manage", "member.import", "member.export"})
            wangwu_actor = (await rt.cadres.login(username="wangwu", password=PASSWORD,
                                                  totp=otp(wangwu.totp_uri), ip="", user_agent="")).actor
            await rt.cadres.create_account(wangwu_actor, username="lisi", display_name="李四", org_id=chengdu,
                                           role="cadre", duty="business", password=PASSWORD,
                                           permissions={"member.import", "member.export"})
            lisi = (await rt.cadres.login(username="lisi", password=PASSWORD, totp="", ip="",
                                          user_agent="")).actor

            async def run_import(path: Path) -> dict:
                return await rt.rosters.import_roster(lisi, await Upload.of_file(str(path)), path.name)

            async def empty_members() -> None:
                async with rt.pool.acquire() as conn:
                    await conn.execute("SET session_replication_role = replica")
                    await conn.execute("TRUNCATE members CASCADE")
                    await conn.execute("SET session_replication_role = DEFAULT")

            print(f"{rows:,} rows; before the first import: {rss()}")
            for run in range(1, runs + 1):
                print(f"run {run}")
                for label, path in files.items():
                    await empty_members()
                    first = await timed(f"{label}: first import", run_import(path), rows)
                    assert first["status"] == "done", first
                    assert first["counts"] == {"total": rows, "created": rows, "updated": 0, "unchanged": 0,
                                               "error": 0}, first["counts"]
                    async with rt.pool.acquire() as conn:
                        assert await conn.fetchval("SELECT count(*) FROM members") == rows
                    again = await timed(f"{label}: re-import", run_import(path), rows)
                    assert again["counts"]["unchanged"] == rows, again["counts"]
                async with rt.pool.acquire() as conn:
                    changes = await conn.fetchval(
                        "SELECT count(*) FROM base_data_changes WHERE entity = 'member'")
                    assert changes == 2 * rows * run, changes   # one "created" per member and file
                exporting = rt.rosters.export_roster(lisi, org_id=chengdu, purpose="压测导出核对")
                export = await timed("export of the Chengdu subtree", exporting, rows)
                size = await asyncio.to_thread(os.path.getsize, export.path)
                assert export.rows == rows
                export.discard()
            print(f"the export: {mib(size)} XLSX")
            summary(rows)

            print("\nunder tracemalloc (slower, not timed), the Excel-written workbook:")
            await empty_members()
            excel = files["Excel-written workbook (shared strings)"]
            first = await traced("first import", run_import(excel))
            assert first["counts"]["created"] == rows, first["counts"]
            again = await traced("re-import", run_import(excel))
            assert again["counts"]["unchanged"] == rows, again["counts"]
        watcher.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-roster-") as tmp:
        asyncio.run(bench(Path(tmp), args.rows, args.runs))


if __name__ == "__main__":
    main()
