"""A workbook small on disk and huge inflated (a zip bomb of sheet XML): decided by its inflated
size, read only by a child process under a time bound, or refused outright; never parsed in the
server process."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
import zipfile

import pytest

from tests.services.membership.test_rosters import lisi, row, tree, wangwu, written, xlsx  # noqa: F401 - fixtures
from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership import roster_files
from wxbackend.services.membership.roster_files import Upload, inspect, reads_in_child
from wxbackend.services.membership.rosters import RosterService

CELLS = "<c><v>1</v></c>" * 5000


def bomb(tmp_path, org: str, rows: int) -> str:
    """A real roster workbook whose sheet, after the header, holds ``rows`` rows of 5,000 cells:
    about 75 KB a row inflated, a few hundred bytes compressed."""
    good = xlsx(tmp_path / "good.xlsx", [row(org, "张三", "110101199001011237")])
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                head, _, _ = data.partition(b"</sheetData>")
                body = "".join(f'<row r="{n}">{CELLS}</row>' for n in range(3, rows + 3))
                data = head + body.encode() + b"</sheetData></worksheet>"
            dst.writestr(info.filename, data, zipfile.ZIP_DEFLATED)
    return str(path)


def service(rt, **membership) -> RosterService:
    return RosterService(rt.pool, rt.pii, dataclasses.replace(rt.settings.membership, **membership),
                         audit=rt.audit)


@pytest.fixture
def parsed_here(monkeypatch) -> list[str]:
    """Any workbook parsed in this (the server's) process; a spawned child does not inherit it."""
    calls: list[str] = []
    original = roster_files._xlsx_rows

    def watched(path: str):
        calls.append(path)
        return original(path)
    monkeypatch.setattr(roster_files, "_xlsx_rows", watched)
    return calls


async def test_a_small_file_that_inflates_to_a_large_sheet_is_read_by_a_child_under_a_time_bound(
        rt, db, tree, lisi, tmp_path, parsed_here) -> None:  # noqa: F811
    path = bomb(tmp_path, tree["a"], rows=200)   # ~15 MB of sheet XML: over 10 s for openpyxl
    assert os.path.getsize(path) < 200_000
    source = inspect(path, "bomb.xlsx")
    assert source.unzipped > 14_000_000
    assert reads_in_child(source, 2 * 1_048_576)                 # by the inflated size, not the file's

    started = time.monotonic()
    upload = await Upload.of_file(path)
    report = await service(rt, import_read_seconds=1.5).import_roster(lisi, upload, "名册.xlsx")
    assert time.monotonic() - started < 8
    assert report["status"] == "failed" and "读取工作簿超时" in report["message"], report
    assert parsed_here == []
    assert multiprocessing.active_children() == []               # the reader was killed and reaped
    assert (await written(db))["members"] == 0


async def test_a_workbook_whose_sheets_inflate_past_the_limit_is_refused_unread(
        rt, db, tree, lisi, tmp_path, parsed_here) -> None:  # noqa: F811
    path = bomb(tmp_path, tree["a"], rows=200)                    # ~15 MB of sheet XML
    with pytest.raises(InvalidInput) as refused:
        await service(rt, import_max_sheet_bytes=8 * 1_048_576).import_roster(
            lisi, await Upload.of_file(path), "名册.xlsx")
    assert refused.value.code == "file_too_large"
    assert "超过 8 MB 的上限" in refused.value.message
    assert parsed_here == []
    assert await written(db) == {"members": 0, "changes": 0, "imports": 0, "audit": 0}


async def test_a_small_workbook_is_still_read_in_process(rt, db, tree, lisi, tmp_path, parsed_here) -> None:  # noqa: F811
    path = xlsx(tmp_path / "small.xlsx", [row(tree["a"], "张三", "110101199001011237")])
    assert not reads_in_child(inspect(path, "small.xlsx"), 2 * 1_048_576)
    report = await service(rt).import_roster(lisi, await Upload.of_file(path), "small.xlsx")
    assert report["status"] == "done" and parsed_here == [path]


async def test_a_sheet_larger_than_its_declared_size_is_read_no_further(
        rt, db, tree, lisi, tmp_path, parsed_here) -> None:  # noqa: F811
    """The decision trusts the declared sizes because zipfile holds every member to its declared
    size: a sheet declaring 1,000 bytes and inflating to 15 MB is read in process, 1,000 bytes of
    it, and fails its CRC."""
    path = bomb(tmp_path, tree["a"], rows=200)
    data = bytearray(open(path, "rb").read())
    entry = data.index(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + 24] != b"xl/worksheets/sheet1.xml":
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 24:entry + 28] = (1000).to_bytes(4, "little")    # the central directory's size
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    source = inspect(path, "名册.xlsx")
    assert source.unzipped < 100_000 and not reads_in_child(source, 2 * 1_048_576)

    started = time.monotonic()
    report = await service(rt).import_roster(lisi, await Upload.of_file(path), "名册.xlsx")
    assert time.monotonic() - started < 3
    assert report["status"] == "failed" and "无法读取 Excel 工作簿" in report["message"], report
    assert len(parsed_here) == 1 and (await written(db))["members"] == 0
