"""The uploaded roster file (会员名册文件): receiving it, telling what it is, reading its rows.

A roster arrives as XLSX or CSV; anything else, or a spreadsheet in name only, is refused whole
(``RosterFileError``) before a row of it is read. What the rows mean is ``roster_rows``'s concern.

Why it is built the way it is:

* The format is decided from the content, never the name: a renamed file, a legacy ``.xls``, a
  zip that is not a workbook or a zip bomb (inflating past ``MAX_UNZIPPED_BYTES``, or shared
  strings openpyxl would hold in memory past ``MAX_SHARED_STRINGS_BYTES``) is refused with a
  message saying what to do. A CSV is UTF-8 (with or without BOM) or GB18030, which Excel in China
  writes for "CSV".
* Every read and write of the file runs off the event loop; the upload is hashed as it is written,
  so the import's audit record names the exact file.
* A large workbook is read by a child process: openpyxl is most of an import's CPU time and would
  otherwise hold the GIL against the event loop (bench/membership/roster_import.py measures it).
  "Large" is the workbook's inflated size, never the upload's: a 572 KB file can hold 196 MB of
  sheet XML, which takes openpyxl over a minute (``reads_in_child``). Sheet XML past a limit is
  refused before it is read; the declared sizes cannot lie about what is read, because zipfile
  stops each member at its declared size and a member that inflates past it fails its CRC. The
  child is spawned, never forked (the parent holds an event loop), and the pipe's buffer holds
  it back when the import is slower than the file, so neither side's memory grows. The import
  waits on the child for at most ``read_seconds`` in all; then the child is killed and the import
  fails.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import hashlib
import multiprocessing
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import IO

from wxbackend.services.errors import InvalidInput

MAX_UNZIPPED_BYTES = 1 << 30  # a 50 MB workbook that inflates beyond this is a zip bomb
MAX_SHARED_STRINGS_BYTES = 128 << 20   # openpyxl holds the shared strings in memory
MAX_SHEET_BYTES = 128 << 20   # inflated sheet XML: openpyxl reads about 3 MB of it a second
_READ_CHUNK = 1 << 20
_CHILD_CHUNK_ROWS = 500

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # legacy .xls (and .doc): not readable here
_WORKBOOK_TYPES = (b"spreadsheetml.sheet.main+xml", b"spreadsheetml.template.main+xml",
                   b"ms-excel.sheet.macroEnabled.main+xml", b"ms-excel.template.macroEnabled.main+xml")
_XLSX_NAMES = (".xlsx", ".xlsm", ".xltx", ".xltm")

_MSG_NOT_TEXT = ("文件既不是 Excel 工作簿（.xlsx），也不是 UTF-8 或 GB18030 编码的 CSV 文件，"
                 "请使用会员名册模板填写后上传")
_MSG_UNREADABLE = "无法读取 Excel 工作簿，文件可能已损坏，请用 Excel 打开后重新保存为 .xlsx 再导入"
_MSG_TOO_SLOW = ("读取工作簿超时，名册未导入：工作表可能含有大量空白或无用的单元格，"
                 "请删除多余的行列、另存为 .xlsx 或分批导入")


class RosterFileError(InvalidInput):
    """The file as a whole cannot be imported; nothing from it is written."""
    code = "roster_file_invalid"


# --- receiving the file ----------------------------------------------------------------------
class UploadTooLarge(InvalidInput):
    code = "file_too_large"
    status = 413


class Upload:
    """A roster file on local disk: written and hashed off the event loop, bounded in size.
    An upload received over HTTP is a temporary file the import removes when done with it."""

    def __init__(self, path: str, *, owned: bool, max_bytes: int | None = None) -> None:
        self.path = path
        self.size = 0
        self.max_bytes = max_bytes
        self._owned = owned
        self._hash = hashlib.sha256()
        self._file: IO[bytes] | None = None
        self._writing = False
        self._discarded = False

    @classmethod
    async def receive(cls, max_bytes: int, declared_bytes: int | None = None) -> Upload:
        """An empty temporary file to stream an upload into; an upload declaring more than
        ``max_bytes`` is refused before a byte of it is read (the HTTP server enforces the limit
        on the bytes that arrive)."""
        if declared_bytes is not None and declared_bytes > max_bytes:
            raise UploadTooLarge(f"文件超过 {max_bytes // 1_048_576} MB，请分批导入")

        def create() -> Upload:
            fd, path = tempfile.mkstemp(prefix="wx-roster-", suffix=".upload")
            upload = cls(path, owned=True, max_bytes=max_bytes)
            upload._file = os.fdopen(fd, "wb")
            return upload
        return await asyncio.get_running_loop().run_in_executor(None, create)

    @classmethod
    async def of_file(cls, path: str) -> Upload:
        """An existing file (a script's, a test's): read, never removed."""
        upload = cls(path, owned=False)

        def digest() -> None:
            with open(path, "rb") as fh:
                while chunk := fh.read(_READ_CHUNK):
                    upload._hash.update(chunk)
                    upload.size += len(chunk)
        await asyncio.get_running_loop().run_in_executor(None, digest)
        return upload

    @property
    def sha256(self) -> bytes:
        return self._hash.digest()

    async def write(self, chunk: bytes) -> None:
        if self._discarded:
            return
        if self._file is None:
            raise RuntimeError("upload already closed")
        self.size += len(chunk)
        file = self._file

        def write() -> None:
            file.write(chunk)
            self._hash.update(chunk)
        self._writing = True
        try:
            await asyncio.get_running_loop().run_in_executor(None, write)
        finally:
            self._writing = False
            if self._discarded:
                self._close_file()

    async def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            await asyncio.get_running_loop().run_in_executor(None, file.close)

    def _close_file(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            file.close()

    def discard(self) -> None:
        """Remove the received file (a cheap unlink, safe on the event loop); idempotent, and
        safe while a write is on its way (the client went away mid-upload)."""
        self._discarded = True
        if not self._writing:
            self._close_file()
        if self._owned:
            self._owned = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


# --- what the file is ------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    kind: str                 # xlsx | csv
    encoding: str | None      # of a CSV
    unzipped: int = 0         # a workbook's members, inflated (as the zip declares and zipfile enforces)


def reads_in_child(source: Source, threshold: int) -> bool:
    """Whether the rows are read by a child process: a workbook whose inflated size reaches
    ``threshold``; never decided by the upload's size, which a compressed workbook hides."""
    return source.kind == "xlsx" and source.unzipped >= threshold


def _format_error(message: str) -> RosterFileError:
    return RosterFileError(message, code="file_format")


def inspect(path: str, filename: str, *, max_sheet_bytes: int = MAX_SHEET_BYTES) -> Source:
    """Decide the format from the content (the name only sharpens the message); refuse a file
    that is not the spreadsheet it claims to be, or a workbook whose sheets inflate past
    ``max_sheet_bytes``. Blocking: run in an executor."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise RosterFileError("文件是空的，请选择要导入的会员名册", code="file_empty")
    if head.startswith(b"PK\x03\x04"):
        return Source("xlsx", None, _check_workbook_zip(path, max_sheet_bytes))
    if head.startswith(_OLE2):
        raise _format_error("不支持旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV 后再导入")
    if filename.lower().endswith(_XLSX_NAMES):
        raise _format_error("文件扩展名是 .xlsx，但内容不是 Excel 工作簿，"
                            "请用 Excel 打开后另存为 .xlsx 再导入")
    return Source("csv", _text_encoding(path))


def _check_workbook_zip(path: str, max_sheet_bytes: int) -> int:
    """The workbook's inflated size, once it is known to be a workbook of bounded size."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            unzipped = sum(i.file_size for i in infos)
            sheets = sum(i.file_size for i in infos if i.filename.startswith("xl/worksheets/"))
            if unzipped > MAX_UNZIPPED_BYTES or any(
                    i.filename.endswith("sharedStrings.xml") and i.file_size > MAX_SHARED_STRINGS_BYTES
                    for i in infos):
                raise RosterFileError("工作簿解压后过大，请分批导入", code="file_too_large")
            if sheets > max_sheet_bytes:
                raise RosterFileError(
                    f"工作簿中的工作表解压后约 {sheets // 1_048_576} MB，超过 "
                    f"{max_sheet_bytes // 1_048_576} MB 的上限，请删除多余的行列或分批导入",
                    code="file_too_large")
            try:
                types = zf.getinfo("[Content_Types].xml")
            except KeyError:
                types = None
            content = zf.read(types) if types is not None and types.file_size < 1_048_576 else b""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError):
        raise _format_error(_MSG_UNREADABLE) from None
    if not any(t in content for t in _WORKBOOK_TYPES):
        raise _format_error("文件是压缩包但不是 Excel 工作簿（.xlsx），请上传用会员名册模板填写的文件")
    return unzipped


def _text_encoding(path: str) -> str:
    """UTF-8 (with or without BOM), else GB18030, which Excel in China writes for "CSV"."""
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(_READ_CHUNK):
                    if b"\x00" in chunk:   # binary, or UTF-16 "Unicode text"
                        raise _format_error(_MSG_NOT_TEXT)
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise _format_error(_MSG_NOT_TEXT)


# --- reading the rows ------------------------------------------------------------------------
def open_rows(path: str, source: Source, *, in_child: bool,
              read_seconds: float = 300.0) -> Iterator[tuple]:
    """The file's rows as tuples of cell values, read here or (``in_child``, a workbook) by a
    child process that may keep the import waiting ``read_seconds`` in all. Blocking: run in an
    executor; ``close()`` the rows when done with them."""
    return _ChildRows(path, source, read_seconds) if in_child else _rows(path, source)


def _rows(path: str, source: Source) -> Iterator[tuple]:
    return _xlsx_rows(path) if source.kind == "xlsx" else _csv_rows(path, source.encoding or "utf-8")


def _xlsx_rows(path: str) -> Iterator[tuple]:
    from openpyxl import load_workbook

    # A file object, not the path: openpyxl judges a path by its extension, and an upload's
    # temporary file has none (the content has been checked to be a workbook).
    fh = open(path, "rb")  # closed below, after the workbook that reads it
    try:
        wb = load_workbook(fh, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises a zoo of types for a damaged workbook
        fh.close()
        raise _format_error(_MSG_UNREADABLE) from exc
    try:
        sheets = [ws for ws in [wb.active, *wb.worksheets] if hasattr(ws, "iter_rows")]
        if not sheets:
            raise _format_error("工作簿中没有工作表")
        sheet = sheets[0]
        # Writers other than Excel often record a wrong sheet size; trust the rows instead.
        sheet.reset_dimensions()
        try:
            yield from sheet.iter_rows(values_only=True)
        except Exception as exc:  # a damaged sheet shows only as its rows are read
            raise _format_error(_MSG_UNREADABLE) from exc
    finally:
        wb.close()
        fh.close()


def _csv_rows(path: str, encoding: str) -> Iterator[tuple]:
    with open(path, encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        try:
            for row in reader:
                yield tuple(row)
        except csv.Error as exc:
            raise _format_error(f"CSV 文件第 {reader.line_num} 行格式有误，请用 Excel 打开后重新保存") \
                from exc


def _read_in_child(path: str, source: Source, conn: Connection, chunk_rows: int) -> None:
    """The child process's whole life: send the file's rows in chunks, then None; a file error
    as ("error", code, message). The pipe's buffer holds the child back when the import is slower
    than the file, so neither side's memory grows."""
    try:
        chunk: list[tuple] = []
        for row in _rows(path, source):
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                conn.send(chunk)
                chunk = []
        conn.send(chunk)
        conn.send(None)
    except RosterFileError as exc:
        conn.send(("error", exc.code, exc.message))
    except (BrokenPipeError, EOFError):
        pass  # the import was stopped
    finally:
        conn.close()


class _ChildRows:
    """Rows of a workbook read by a child process. openpyxl spends most of an import's CPU
    time on a large workbook; in a thread it would hold the GIL against the event loop and the
    rest of the import, in a child it uses the other core."""

    def __init__(self, path: str, source: Source, read_seconds: float) -> None:
        self._wait_left = read_seconds
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding an event loop
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_read_in_child, args=(path, source, child, _CHILD_CHUNK_ROWS),
                                 name="roster-reader", daemon=True)
        self._proc.start()
        child.close()
        self._chunk: Iterator[tuple] = iter(())
        self._done = False

    def __iter__(self) -> _ChildRows:
        return self

    def __next__(self) -> tuple:
        while (row := next(self._chunk, None)) is None:
            if self._done:
                raise StopIteration
            # Only the time spent waiting on the child counts: a slow database does not fail an
            # import, a sheet that takes openpyxl minutes does.
            started = time.monotonic()
            ready = self._conn.poll(max(self._wait_left, 0))
            self._wait_left -= time.monotonic() - started
            if not ready:
                self._done = True
                self._stop()
                raise RosterFileError(_MSG_TOO_SLOW, code="file_too_slow")
            try:
                message = self._conn.recv()
            except EOFError:
                raise RuntimeError(f"roster reader exited with {self._proc.exitcode}") from None
            if message is None:
                self._done = True
                raise StopIteration
            if isinstance(message, tuple):
                self._done = True
                raise RosterFileError(message[2], code=message[1])
            self._chunk = iter(message)
        return row

    def _stop(self) -> None:
        if self._proc.is_alive():
            self._proc.kill()

    def close(self) -> None:
        self._conn.close()
        self._stop()
        self._proc.join()
        self._proc.close()
