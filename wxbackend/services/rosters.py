"""Roster import and export (会员名册导入/导出) for cadres.

A grassroots union keeps its members' roster in a spreadsheet; the platform takes it as XLSX or
CSV, checks every row and files one member record per person (``members``: one record per ID
number, across all unions). A row with a problem is reported and skipped, the rest go in; a file
that is not the spreadsheet it claims to be goes nowhere.

Why it is built the way it is:

* The whole import is one transaction. A file that turns out unreadable halfway, or a process
  that dies, leaves nothing behind, and the report and its audit record commit with the rows.
  The transaction holds an advisory lock, so the stale sweep can tell an import still running
  from one whose process is gone.
* Imports are idempotent: each member keeps a keyed hash of the row last imported
  (``roster_digest``; keyed, because a plain hash of a row with an ID number can be brute-forced).
  Re-importing a file writes nothing; a changed row updates the record, never the account link
  or certification that a worker's own action made.
* 100,000 rows must import in well under a minute without growing memory: rows stream from the
  file in batches; parsing, checking, hashing and encrypting run in an executor; each batch is
  copied to a temporary table and applied with one INSERT and one UPDATE. The ID numbers already
  seen (to catch a person listed twice) live in a temporary table, not in memory. A large
  workbook is read by a child process: openpyxl is most of the CPU time and would otherwise hold
  the GIL against the event loop (bench/membership/roster_import.py measures it).
* An export hands out full ID numbers and phones, so it needs its own permission and a stated
  purpose, is audited, and is watermarked with who, when and why.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import dataclasses
import functools
import hashlib
import logging
import multiprocessing
import os
import re
import tempfile
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from multiprocessing.connection import Connection
from typing import IO, Any
from zoneinfo import ZoneInfo

import asyncpg

from wxbackend.config import MembershipSettings
from wxbackend.infra.pii import PersonalData, normalise_phone
from wxbackend.infra.xlsx import Watermark, WatermarkedWorkbook
from wxbackend.services import audit
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.services.idnumbers import IdNumber, id_check_char, parse_id_number
from wxbackend.services.permissions import Actor
from wxbackend.store import orgs as org_store
from wxbackend.store import rosters as store

log = logging.getLogger(__name__)

ID_COLUMN = "members.id_number"
PHONE_COLUMN = "members.phone"
ROW_COLUMN = "members.roster_row"
CHINA = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Column:
    header: str
    field: str
    required: bool = False
    limit: int = 50          # longest text accepted, in characters


COLUMNS = (
    Column("工会编码", "org_code", required=True, limit=64),
    Column("姓名", "name", required=True),
    Column("身份证号码", "id_number", required=True),
    Column("手机号码", "phone"),
    Column("民族", "ethnicity", limit=20),
    Column("学历", "education", limit=20),
    Column("政治面貌", "political_status", limit=20),
    Column("户籍类型", "household_type"),
    Column("是否农民工", "migrant_worker"),
    Column("工作单位", "employer", limit=100),
    Column("职务", "job"),
    Column("入会日期", "joined_on"),
    Column("会员编号", "member_no", limit=32),
)
HEADER = [c.header for c in COLUMNS]
# Fields a row sets on the member record, in the order of the digest and the change report.
_RECORD_FIELDS = ("name", "phone", "ethnicity", "education", "political_status", "household_type",
                  "migrant_worker", "employer", "job", "joined_on")
_FREE_TEXT = ("ethnicity", "education", "political_status", "employer", "job")

MAX_REPORTED_ERRORS = 1000
MAX_ROWS = 1_048_576          # an Excel sheet's limit; a larger roster is imported in parts
EXPORT_MAX_ROWS = 1_000_000
HEADER_SEARCH_ROWS = 20       # an export's title and watermark rows come before its header
MAX_UNZIPPED_BYTES = 1 << 30  # a 50 MB workbook that inflates beyond this is a zip bomb
MAX_SHARED_STRINGS_BYTES = 128 << 20   # openpyxl holds the shared strings in memory
EXPORT_CHUNK = 2000
_READ_CHUNK = 1 << 20

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # legacy .xls (and .doc): not readable here
_WORKBOOK_TYPES = (b"spreadsheetml.sheet.main+xml", b"spreadsheetml.template.main+xml",
                   b"ms-excel.sheet.macroEnabled.main+xml", b"ms-excel.template.macroEnabled.main+xml")
_XLSX_NAMES = (".xlsx", ".xlsm", ".xltx", ".xltm")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_HEADER_NOISE = re.compile(r"[\s*＊]|[（(]必填[）)]")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0{1,2}:00(?::00)?)?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MEMBER_NO = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
_YES = {"是": True, "否": False}

_MSG_NOT_TEXT = ("文件既不是 Excel 工作簿（.xlsx），也不是 UTF-8 或 GB18030 编码的 CSV 文件，"
                 "请使用会员名册模板填写后上传")
_MSG_UNREADABLE = "无法读取 Excel 工作簿，文件可能已损坏，请用 Excel 打开后重新保存为 .xlsx 再导入"
_MSG_INTERRUPTED = "导入被中断（服务重启），名册未导入，请重新导入"
_MSG_INTERNAL = "导入时发生内部错误，名册未导入，请稍后重新导入"


def china_today() -> date:
    return datetime.now(CHINA).date()


class RosterFileError(InvalidInput):
    """The file as a whole cannot be imported; nothing from it is written."""
    code = "roster_file_invalid"


# --- receiving the file ----------------------------------------------------------------------
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
    async def receive(cls, max_bytes: int) -> Upload:
        """An empty temporary file to stream an upload into."""
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
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise InvalidInput(f"文件超过 {self.max_bytes // 1_048_576} MB，请分批导入",
                               code="file_too_large")
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
class _Source:
    kind: str                 # xlsx | csv
    encoding: str | None      # of a CSV


def _format_error(message: str) -> RosterFileError:
    return RosterFileError(message, code="file_format")


def _inspect(path: str, filename: str) -> _Source:
    """Decide the format from the content (the name only sharpens the message); refuse a file
    that is not the spreadsheet it claims to be. Blocking: run in an executor."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        raise RosterFileError("文件是空的，请选择要导入的会员名册", code="file_empty")
    if head.startswith(b"PK\x03\x04"):
        _check_workbook_zip(path)
        return _Source("xlsx", None)
    if head.startswith(_OLE2):
        raise _format_error("不支持旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV 后再导入")
    if filename.lower().endswith(_XLSX_NAMES):
        raise _format_error("文件扩展名是 .xlsx，但内容不是 Excel 工作簿，"
                            "请用 Excel 打开后另存为 .xlsx 再导入")
    return _Source("csv", _text_encoding(path))


def _check_workbook_zip(path: str) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES or any(
                    i.filename.endswith("sharedStrings.xml") and i.file_size > MAX_SHARED_STRINGS_BYTES
                    for i in infos):
                raise RosterFileError("工作簿解压后过大，请分批导入", code="file_too_large")
            try:
                types = zf.getinfo("[Content_Types].xml")
            except KeyError:
                types = None
            content = zf.read(types) if types is not None and types.file_size < 1_048_576 else b""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError):
        raise _format_error(_MSG_UNREADABLE) from None
    if not any(t in content for t in _WORKBOOK_TYPES):
        raise _format_error("文件是压缩包但不是 Excel 工作簿（.xlsx），请上传用会员名册模板填写的文件")


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


def _read_in_child(path: str, source: _Source, conn: Connection, chunk_rows: int) -> None:
    """The child process's whole life: send the file's rows in chunks, then None; a file error
    as ("error", code, message). The pipe's buffer holds the child back when the import is slower
    than the file, so neither side's memory grows."""
    try:
        rows = _xlsx_rows(path) if source.kind == "xlsx" else _csv_rows(path, source.encoding or "utf-8")
        chunk: list[tuple] = []
        for row in rows:
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

    def __init__(self, path: str, source: _Source) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding an event loop
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_read_in_child, args=(path, source, child, 500),
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

    def close(self) -> None:
        self._conn.close()
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join()
        self._proc.close()


# --- one row ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Row:
    row_no: int
    error: tuple[str, str] | None = None
    bidx: bytes | None = None
    ident: IdNumber | None = None
    org_code: str = ""
    name: str = ""
    phone: str | None = None
    phone_bidx: bytes | None = None
    ethnicity: str | None = None
    education: str | None = None
    political_status: str | None = None
    household_type: str | None = None
    migrant_worker: bool = False
    employer: str | None = None
    job: str | None = None
    joined_on: date | None = None
    member_no: str | None = None


class _RowError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _text(value: Any) -> str:
    """A cell as the text a cadre sees in it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _CONTROL.sub("", value).strip()
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value).strip()


def _date(value: Any, today: date) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        found = value.date()
    elif isinstance(value, date):
        found = value
    elif isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 2_958_466:
        found = date(1899, 12, 30) + timedelta(days=int(value))  # an Excel serial date
    else:
        text = _text(value)
        match = _DATE.match(text) or _COMPACT_DATE.match(text)
        try:
            found = date(*(int(g) for g in match.groups())) if match else None
        except ValueError:
            found = None
        if found is None:
            raise _RowError("joined_on_invalid", "入会日期应为 YYYY-MM-DD 格式的有效日期")
    if found > today:
        raise _RowError("joined_on_invalid", "入会日期不能晚于今天")
    return found


class _RosterReader:
    """Rows of the file, parsed and checked in batches. Pure CPU and file work: every method
    runs in an executor (one call at a time)."""

    def __init__(self, rows: Iterator[tuple], pii: PersonalData, today: date, batch_rows: int) -> None:
        self._rows = rows
        self._pii = pii
        self._today = today
        self._batch = batch_rows
        self._row_no = 0
        self._data_rows = 0
        self.index: dict[str, int] = {}
        self.present: frozenset[str] = frozenset()

    @classmethod
    def open(cls, path: str, source: _Source, pii: PersonalData, today: date, batch_rows: int, *,
             in_child: bool) -> _RosterReader:
        rows: Iterator[tuple]
        if in_child:
            rows = _ChildRows(path, source)
        elif source.kind == "xlsx":
            rows = _xlsx_rows(path)
        else:
            rows = _csv_rows(path, source.encoding or "utf-8")
        reader = cls(rows, pii, today, batch_rows)
        try:
            reader._find_header()
        except BaseException:
            reader.close()
            raise
        return reader

    def close(self) -> None:
        self._rows.close()

    def _next(self) -> tuple | None:
        row = next(self._rows, None)
        if row is not None:
            self._row_no += 1
        return row

    def _find_header(self) -> None:
        best: dict[str, int] = {}
        seen_any = False
        while self._row_no < HEADER_SEARCH_ROWS and (row := self._next()) is not None:
            labels = [_HEADER_NOISE.sub("", _text(v)) for v in row]
            seen_any = seen_any or any(labels)
            index: dict[str, int] = {}
            for col in COLUMNS:
                if col.header in labels:
                    index[col.field] = labels.index(col.header)
            required = sum(1 for c in COLUMNS if c.required and c.field in index)
            if required == sum(1 for c in COLUMNS if c.required):
                self.index = index
                self.present = frozenset(index)
                return
            if required > sum(1 for c in COLUMNS if c.required and c.field in best):
                best = index
        if not seen_any:
            raise RosterFileError("文件中没有内容，请使用会员名册模板填写后上传", code="file_empty")
        missing = "、".join(c.header for c in COLUMNS if c.required and c.field not in best)
        raise RosterFileError(f"缺少必填列：{missing}。请使用会员名册模板（第一行为列名）",
                              code="columns_missing")

    def next_batch(self) -> list[_Row] | None:
        """The next batch of non-empty rows, parsed; None at the end of the file."""
        batch: list[_Row] = []
        while len(batch) < self._batch and (values := self._next()) is not None:
            if not any(v is not None and _text(v) for v in values):
                continue
            self._data_rows += 1
            if self._data_rows > MAX_ROWS:
                raise RosterFileError(f"名册超过 {MAX_ROWS} 行，请分批导入", code="file_too_large")
            batch.append(self._parse(values))
        return batch or None

    def _cell(self, values: tuple, field: str) -> Any:
        idx = self.index.get(field)
        return values[idx] if idx is not None and idx < len(values) else None

    def _parse(self, values: tuple) -> _Row:
        row = _Row(self._row_no)
        try:
            # The ID number first: even a row with another problem counts as the first
            # occurrence of its person when a later row repeats them.
            try:
                row.ident = parse_id_number(_text(self._cell(values, "id_number")), self._today)
            except InvalidInput as exc:
                raise _RowError(exc.code, exc.message) from None
            row.bidx = self._pii.blind_index(row.ident.number, ID_COLUMN)
            row.name = _SPACES.sub(" ", _text(self._cell(values, "name")))
            if not row.name:
                raise _RowError("name_missing", "姓名不能为空")
            if len(row.name) > 50:
                raise _RowError("name_invalid", "姓名不能超过 50 个字")
            row.org_code = _text(self._cell(values, "org_code"))
            if not row.org_code:
                raise _RowError("org_missing", "工会编码不能为空")
            phone = _text(self._cell(values, "phone"))
            if phone:
                row.phone = normalise_phone(phone)
                if row.phone is None:
                    raise _RowError("phone_invalid", "手机号码应为 11 位大陆手机号")
                row.phone_bidx = self._pii.blind_index(row.phone, PHONE_COLUMN)
            for col in COLUMNS:
                if col.field in _FREE_TEXT:
                    text = _text(self._cell(values, col.field))
                    if len(text) > col.limit:
                        raise _RowError("value_too_long", f"{col.header}不能超过 {col.limit} 个字")
                    setattr(row, col.field, text or None)
            household = _text(self._cell(values, "household_type"))
            if household and household not in ("城镇", "农村"):
                raise _RowError("household_type_invalid", "户籍类型应填“城镇”或“农村”")
            row.household_type = household or None
            migrant = _text(self._cell(values, "migrant_worker"))
            if migrant and migrant not in _YES:
                raise _RowError("migrant_worker_invalid", "是否农民工应填“是”或“否”")
            row.migrant_worker = _YES.get(migrant, False)
            row.joined_on = _date(self._cell(values, "joined_on"), self._today)
            if row.joined_on is not None and row.joined_on < row.ident.birth_date:
                raise _RowError("joined_on_invalid", "入会日期早于出生日期")
            member_no = _text(self._cell(values, "member_no"))
            if member_no and not _MEMBER_NO.match(member_no):
                raise _RowError("member_no_invalid", "会员编号只能由字母、数字、“-”和“_”组成，不超过 32 位")
            row.member_no = member_no or None
        except _RowError as exc:
            row.error = (exc.code, exc.message)
        return row


# --- deciding what each row does -------------------------------------------------------------
@dataclass
class _Plan:
    """What a batch does: the staged writes and the rows settled without a write."""
    stage: list[tuple] = dataclasses.field(default_factory=list)
    creates: dict[bytes, int] = dataclasses.field(default_factory=dict)     # bidx → row
    updates: dict[int, tuple[int, bool]] = dataclasses.field(default_factory=dict)  # id → row, changed
    seen: list[tuple[bytes, int]] = dataclasses.field(default_factory=list)
    errors: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)
    unchanged: int = 0


@dataclass(frozen=True)
class _Lookups:
    orgs: dict[str, asyncpg.Record | None]
    existing: dict[bytes, asyncpg.Record]
    owners: dict[str, bytes]          # member number → its holder's ID-number index
    seen: dict[bytes, int]            # ID-number index → the row it first appeared on


def _plan(rows: list[_Row], look: _Lookups, *, present: frozenset[str], actor: Actor,
          pii: PersonalData, today: date) -> _Plan:
    """Pure CPU (hashing, encryption): run in an executor."""
    plan = _Plan()
    first_row: dict[bytes, int] = {}
    numbers: dict[str, bytes] = {}
    for row in rows:
        if row.bidx is not None:
            earlier = look.seen.get(row.bidx) or first_row.get(row.bidx)
            if earlier is None:
                first_row[row.bidx] = row.row_no
                plan.seen.append((row.bidx, row.row_no))
            elif row.error is None:
                row.error = ("duplicate_in_file", f"与第 {earlier} 行的身份证号码重复")
        try:
            if row.error is not None:
                raise _RowError(*row.error)
            _plan_row(row, look, numbers, plan, present=present, actor=actor, pii=pii, today=today)
        except _RowError as exc:
            plan.errors.append((row.row_no, exc.code, exc.message))
    return plan


def _plan_row(row: _Row, look: _Lookups, numbers: dict[str, bytes], plan: _Plan, *,
              present: frozenset[str], actor: Actor, pii: PersonalData, today: date) -> None:
    org = look.orgs.get(row.org_code)
    if org is None:
        raise _RowError("org_unknown", f"工会编码“{row.org_code}”不存在")
    if org["kind"] != "grassroots":
        raise _RowError("org_not_grassroots", f"“{row.org_code}”不是基层工会，会员只能导入到基层工会")
    if not actor.covers(org["path"]):
        raise _RowError("org_outside_subtree", f"“{row.org_code}”不在本单位及下级工会范围内")
    old = look.existing.get(row.bidx)
    if old is not None and old["org_id"] != org["id"]:
        raise _RowError("member_elsewhere", "已是其他工会会员，请办理会员关系接转")
    if row.member_no is not None:
        holder = numbers.get(row.member_no) or look.owners.get(row.member_no)
        if holder is not None and holder != row.bidx:
            raise _RowError("member_no_taken", f"会员编号“{row.member_no}”已被他人使用")

    # What the record will hold: a column the file does not have keeps what is stored; an empty
    # join date or member number keeps the stored one (or gets today's / a new number).
    def value(field: str, default: Any = None) -> Any:
        if field in present:
            return getattr(row, field)
        return old[field] if old is not None else default

    phone_enc, phone_bidx = None, None
    if "phone" in present:
        phone_bidx = row.phone_bidx
        if phone_bidx is not None:
            same = old is not None and old["phone_bidx"] == phone_bidx
            phone_enc = old["phone_enc"] if same else pii.encrypt(row.phone, PHONE_COLUMN)
    elif old is not None:
        phone_enc, phone_bidx = old["phone_enc"], old["phone_bidx"]
    record = {"name": row.name, "phone": phone_bidx}
    for field in (*_FREE_TEXT, "household_type"):
        record[field] = value(field)
    record["migrant_worker"] = bool(value("migrant_worker", False))
    record["joined_on"] = row.joined_on or (old["joined_on"] if old is not None else today)
    member_no = row.member_no or (old["member_no"] if old is not None else None)
    digest = _digest(pii, org["id"], record)

    if old is not None:
        if digest == old["roster_digest"] and member_no == old["member_no"]:
            plan.unchanged += 1
            return
        stored = {f: old[f] for f in _RECORD_FIELDS if f != "phone"} | {"phone": old["phone_bidx"]}
        changed = [f for f in _RECORD_FIELDS if record[f] != stored[f]]
        if member_no != old["member_no"]:
            changed.append("member_no")
        # Equal data under a stale or missing digest (a member who joined on the platform):
        # refresh the digest, report the row unchanged, log no change.
        plan.updates[old["id"]] = (row.row_no, bool(changed))
        op, member_id, id_enc = "u", old["id"], None
    else:
        changed = []
        plan.creates[row.bidx] = row.row_no
        op, member_id, id_enc = "c", None, pii.encrypt(row.ident.number, ID_COLUMN)
    if member_no is not None:
        numbers[member_no] = row.bidx
    plan.stage.append((
        op, row.row_no, member_id, org["id"], member_no, row.name, id_enc, row.bidx, phone_enc,
        phone_bidx, row.ident.gender, row.ident.birth_date, record["ethnicity"], record["education"],
        record["political_status"], record["household_type"], record["migrant_worker"],
        record["employer"], record["job"], record["joined_on"], digest, changed))


def _digest(pii: PersonalData, org_id: int, record: dict) -> bytes:
    parts = ["v1", str(org_id)]
    for field in _RECORD_FIELDS:
        v = record[field]
        parts.append(v.hex() if isinstance(v, bytes) else "1" if v is True else "0" if v is False
                     else v.isoformat() if isinstance(v, date) else (v or ""))
    return pii.blind_index("\x1f".join(parts), ROW_COLUMN)


# --- export ----------------------------------------------------------------------------------
@dataclass
class RosterExport:
    """A finished export on local disk, streamed to the cadre and removed."""
    path: str
    filename: str
    rows: int

    async def chunks(self, size: int = 262_144) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        fh = await loop.run_in_executor(None, open, self.path, "rb")
        try:
            while chunk := await loop.run_in_executor(None, fh.read, size):
                yield chunk
        finally:
            fh.close()
            self.discard()

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class _ExportBook:
    """The workbook being written; every method runs in an executor."""

    def __init__(self, pii: PersonalData, watermark: Watermark) -> None:
        self._pii = pii
        self._book = WatermarkedWorkbook(title="川工之家 会员名册", sheet="会员名册", header=HEADER,
                                         watermark=watermark)
        self.rows = 0

    def add(self, records: Sequence[asyncpg.Record]) -> None:
        decrypt = self._pii.decrypt
        for r in records:
            self._book.append([
                r["org_code"], r["name"], decrypt(r["id_number_enc"], ID_COLUMN),
                decrypt(r["phone_enc"], PHONE_COLUMN) if r["phone_enc"] else None, r["ethnicity"],
                r["education"], r["political_status"], r["household_type"],
                "是" if r["migrant_worker"] else "否", r["employer"], r["job"], r["joined_on"],
                r["member_no"]])
        self.rows += len(records)

    def save(self) -> str:
        fd, path = tempfile.mkstemp(prefix="wx-roster-export-", suffix=".xlsx")
        try:
            with os.fdopen(fd, "wb") as fh:
                self._book.save(fh)
        except BaseException:
            os.unlink(path)
            raise
        return path


def _template() -> bytes:
    """The import template: the header, one example row, and how to fill each column."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "会员名册"
    ws.append(HEADER)
    first17 = "51010419900307123"
    ws.append(["SC-G-示例", "张三", first17 + id_check_char(first17), "13800000000", "汉族", "本科",
               "群众", "城镇", "否", "某某有限公司", "职员", "2024-05-01", ""])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for idx, col in enumerate(COLUMNS, 1):
        letter = ws.cell(row=1, column=idx).column_letter
        ws.column_dimensions[letter].width = 22 if col.field in ("id_number", "employer") else 14
        if col.field in ("id_number", "phone", "member_no", "org_code"):
            # As text: Excel would otherwise turn an 18-digit ID number into 5.10104E+17.
            ws.column_dimensions[letter].number_format = "@"
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("填写说明")
    notes.append(["列名", "是否必填", "填写说明"])
    for row in (
        ("工会编码", "必填", "会员所在基层工会的编码（在“工会组织”中查看）"),
        ("姓名", "必填", "与身份证一致"),
        ("身份证号码", "必填", "18 位居民身份证号码，性别和出生日期由此得出"),
        ("手机号码", "选填", "11 位手机号"),
        ("民族", "选填", "如：汉族"),
        ("学历", "选填", "如：本科"),
        ("政治面貌", "选填", "如：群众"),
        ("户籍类型", "选填", "城镇 或 农村"),
        ("是否农民工", "选填", "是 或 否，不填为否"),
        ("工作单位", "选填", ""),
        ("职务", "选填", ""),
        ("入会日期", "选填", "YYYY-MM-DD，不填为导入当天"),
        ("会员编号", "选填", "不填由平台编号"),
        ("说明", "", "第一行为列名，列的顺序可以调整；同一文件可以重复导入，未变化的行不会重复写入；"
                     "示例行请删除后再导入"),
    ):
        notes.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# --- the service -----------------------------------------------------------------------------
def _clean_filename(raw: str) -> str:
    name = _CONTROL.sub("", re.split(r"[\\/]", raw or "")[-1]).strip()
    return name[:200] or "会员名册"


def _report(row: asyncpg.Record, *, with_errors: bool = True) -> dict:
    report = {
        "id": row["id"], "filename": row["filename"], "cadre": row["cadre"], "org_id": row["org_id"],
        "sha256": row["file_sha256"].hex(), "status": row["status"],
        "counts": {"total": row["total_rows"], "created": row["created_rows"],
                   "updated": row["updated_rows"], "unchanged": row["unchanged_rows"],
                   "error": row["error_rows"]},
        "message": row["message"], "started_at": row["started_at"].isoformat(),
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
    }
    if with_errors:
        report["errors"] = row["errors"]
    return report


def _zero() -> dict[str, int]:
    return {"total": 0, "created": 0, "updated": 0, "unchanged": 0, "error": 0}


class RosterService:
    def __init__(self, pool: asyncpg.Pool, pii: PersonalData, settings: MembershipSettings, *,
                 today: Callable[[], date] = china_today, child_reader_bytes: int = 2 * 1_048_576) -> None:
        """``child_reader_bytes``: a workbook at least this large is read in a child process
        (starting one costs about half a second, worth it only for a large file)."""
        self._pool = pool
        self._child_from = child_reader_bytes
        self._pii = pii
        self._s = settings
        self._today = today
        self._running: set[asyncio.Task] = set()

    # --- import ------------------------------------------------------------------------------
    def require_import(self, actor: Actor) -> None:
        """Checked before an upload is accepted, so a cadre without the permission is refused
        before sending 50 MB."""
        actor.require("member.import")

    async def receive(self, actor: Actor) -> Upload:
        self.require_import(actor)
        return await Upload.receive(self._s.import_max_bytes)

    async def start_import(self, actor: Actor, upload: Upload, filename: str) -> dict:
        """Check the file is a roster spreadsheet, file the import and run it in the background;
        the report as it starts. The upload is the import's from here on."""
        import_id, source = await self._begin(actor, upload, filename)
        task = asyncio.create_task(self._run(actor, import_id, _clean_filename(filename), upload, source))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await self.get_import(actor, import_id)

    async def import_roster(self, actor: Actor, upload: Upload, filename: str) -> dict:
        """The same import, awaited: the final report (scripts, tests)."""
        import_id, source = await self._begin(actor, upload, filename)
        await self._run(actor, import_id, _clean_filename(filename), upload, source)
        return await self.get_import(actor, import_id)

    async def _begin(self, actor: Actor, upload: Upload, filename: str) -> tuple[int, _Source]:
        try:
            self.require_import(actor)
            await upload.close()
            source = await asyncio.get_running_loop().run_in_executor(
                None, _inspect, upload.path, _clean_filename(filename))
            async with self._pool.acquire() as conn:
                import_id = await store.create_import(
                    conn, cadre_id=actor.id, org_id=actor.org_id, filename=_clean_filename(filename),
                    file_sha256=upload.sha256)
        except BaseException:
            upload.discard()
            raise
        return import_id, source

    async def _run(self, actor: Actor, import_id: int, filename: str, upload: Upload,
                   source: _Source) -> None:
        counts, errors = _zero(), []
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if not await store.hold_import(conn, import_id):
                    return  # failed by the stale sweep before it began
                await store.open_staging(conn)
                await self._import_rows(conn, actor, import_id, upload, source, counts, errors)
                message = None if counts["total"] else "文件中没有会员数据"
                await store.finish_import(conn, import_id, status="done", counts=counts,
                                          errors=errors, message=message)
                await self._audit(conn, actor, import_id, filename, upload, "done", counts)
            log.info("roster import %d done: %s", import_id, counts)
        except RosterFileError as exc:
            log.info("roster import %d refused: %s", import_id, exc.code)
            await self._fail(actor, import_id, filename, upload, exc.message)
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(actor, import_id, filename, upload, _MSG_INTERRUPTED))
            raise
        except Exception:
            log.exception("roster import %d failed", import_id)
            await self._fail(actor, import_id, filename, upload, _MSG_INTERNAL)
        finally:
            upload.discard()

    async def _import_rows(self, conn: asyncpg.Connection, actor: Actor, import_id: int, upload: Upload,
                           source: _Source, counts: dict[str, int], errors: list[dict]) -> None:
        loop = asyncio.get_running_loop()
        today = self._today()
        in_child = source.kind == "xlsx" and upload.size >= self._child_from
        reader = await loop.run_in_executor(None, functools.partial(
            _RosterReader.open, upload.path, source, self._pii, today, self._s.import_batch_rows,
            in_child=in_child))
        # The next batch is read while this one is written: the file and the database overlap.
        pending = loop.run_in_executor(None, reader.next_batch)
        orgs: dict[str, asyncpg.Record | None] = {}
        try:
            while (batch := await pending) is not None:
                pending = loop.run_in_executor(None, reader.next_batch)
                found = await self._apply(conn, actor, import_id, batch, reader.present, orgs, today)
                counts["total"] += len(batch)
                for key, n in found.items():
                    counts[key] += n
                room = MAX_REPORTED_ERRORS - len(errors)
                errors.extend({"row": r, "code": c, "message": m} for r, c, m in found.errors[:room])
                async with self._pool.acquire() as progress:
                    await store.record_progress(progress, import_id, counts)
        finally:
            await asyncio.wait([pending])
            await loop.run_in_executor(None, reader.close)   # may wait for the child to exit

    async def _apply(self, conn: asyncpg.Connection, actor: Actor, import_id: int, batch: list[_Row],
                     present: frozenset[str], orgs: dict[str, asyncpg.Record | None],
                     today: date) -> _Outcome:
        valid = [r for r in batch if r.error is None]
        codes = {r.org_code for r in valid} - orgs.keys()
        if codes:
            found = {r["code"]: r for r in await store.orgs_by_code(conn, sorted(codes))}
            orgs.update({c: found.get(c) for c in codes})
        bidxs = [r.bidx for r in batch if r.bidx is not None]
        numbers = sorted({r.member_no for r in valid if r.member_no})
        look = _Lookups(
            orgs=orgs,
            existing={r["id_number_bidx"]: r for r in await store.members_by_bidx(conn, bidxs)},
            owners={r["member_no"]: r["id_number_bidx"]
                    for r in await store.member_no_owners(conn, numbers)} if numbers else {},
            seen={r["bidx"]: r["row_no"] for r in await store.seen_rows(conn, bidxs)})
        plan = await asyncio.get_running_loop().run_in_executor(
            None, lambda: _plan(batch, look, present=present, actor=actor, pii=self._pii, today=today))
        if plan.seen:
            await store.mark_seen(conn, plan.seen)
        outcome = _Outcome(unchanged=plan.unchanged, errors=plan.errors)
        if plan.stage:
            who = f"cadre:{actor.id}"
            await store.stage(conn, plan.stage)
            created = await store.apply_creates(conn, import_id, who) if plan.creates else set()
            updated = await store.apply_updates(conn, import_id, who) if plan.updates else set()
            # A row another transaction took meanwhile (a worker joining at this moment, a
            # transfer) is reported, not overwritten.
            lost = [row for bidx, row in plan.creates.items() if bidx not in created]
            lost += [row for mid, (row, _) in plan.updates.items() if mid not in updated]
            outcome.errors += [(row, "concurrent_change", "该会员的信息刚被其他操作修改，请稍后重新导入此行")
                               for row in lost]
            outcome.created = len(created)
            for mid, (_, changed) in plan.updates.items():
                if mid in updated:
                    if changed:
                        outcome.updated += 1
                    else:
                        outcome.unchanged += 1
        outcome.errors.sort()
        return outcome

    async def _audit(self, conn: asyncpg.Connection, actor: Actor, import_id: int, filename: str,
                     upload: Upload, status: str, counts: dict[str, int]) -> None:
        await audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                           action="roster.import", target=f"roster_import:{import_id}", ip=actor.ip,
                           detail={"filename": filename, "sha256": upload.sha256.hex(), "status": status,
                                   "bytes": upload.size, **counts})

    async def _fail(self, actor: Actor, import_id: int, filename: str, upload: Upload, message: str) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if await store.finish_import(conn, import_id, status="failed", counts=_zero(), errors=[],
                                             message=message):
                    await self._audit(conn, actor, import_id, filename, upload, "failed", _zero())
        except (OSError, asyncpg.PostgresError):
            # The database went away too: the stale sweep will fail the import later.
            log.exception("could not record roster import %d as failed", import_id)

    async def get_import(self, actor: Actor, import_id: int) -> dict:
        actor.require("member.import")
        async with self._pool.acquire() as conn:
            row = await store.get_import(conn, import_id)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("未找到该导入记录")
        return _report(row)

    async def list_imports(self, actor: Actor, limit: int = 20) -> list[dict]:
        """Recent imports in the actor's subtree (without their row errors)."""
        actor.require("member.import")
        async with self._pool.acquire() as conn:
            rows = await store.list_imports(conn, actor.org_path, max(1, min(limit, 100)))
        return [_report(r, with_errors=False) for r in rows]

    async def mark_stale_imports_failed(self, older_than_minutes: int = 30) -> int:
        """For the periodic sweep: fail imports whose process died mid-way (nothing of them was
        written: the import is one transaction). An import still running holds its lock and is
        left alone however long it takes. Returns how many were failed."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await store.fail_abandoned(conn, older_than_minutes, _MSG_INTERRUPTED)
            for r in rows:
                await audit.record(conn, actor_id=None, actor="system", org_id=r["org_id"],
                                   action="roster.import", target=f"roster_import:{r['id']}",
                                   detail={"filename": r["filename"], "sha256": r["file_sha256"].hex(),
                                           "status": "failed", "reason": "abandoned"})
        if rows:
            log.warning("failed %d abandoned roster imports: %s", len(rows), [r["id"] for r in rows])
        return len(rows)

    async def close(self) -> None:
        """Shutting down: stop imports still running; each is marked failed (nothing of it was
        written) so the cadre knows to import again."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the imports running in this process (tests, a graceful stop)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def template_xlsx(self) -> tuple[bytes, str]:
        data = await asyncio.get_running_loop().run_in_executor(None, _template)
        return data, "会员名册导入模板.xlsx"

    # --- export ------------------------------------------------------------------------------
    async def export_roster(self, actor: Actor, *, org_id: int, purpose: str) -> RosterExport:
        """The members of a union and every union below it, with full ID numbers and phones,
        as a watermarked XLSX; audited. The caller streams the file and it removes itself."""
        actor.require("member.export")
        purpose = _SPACES.sub(" ", _CONTROL.sub("", purpose or "")).strip()
        if len(purpose) < 4:
            raise InvalidInput("请填写导出用途（至少 4 个字）", code="purpose_missing")
        if len(purpose) > 200:
            raise InvalidInput("导出用途不能超过 200 个字", code="purpose_too_long")
        loop = asyncio.get_running_loop()
        async with self._pool.acquire() as conn:
            org = await org_store.get(conn, org_id)
            if org is None:
                raise NotFound("未找到该工会")
            actor.require_within(org["path"])
            export: RosterExport | None = None
            try:
                # One snapshot for the count and every row: the file is the roster at one moment.
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    total = await store.count_roster(conn, org["path"])
                    if total > EXPORT_MAX_ROWS:
                        raise InvalidInput(f"该范围内会员超过 {EXPORT_MAX_ROWS} 人，请按下级工会分别导出",
                                           code="export_too_large")
                    now = datetime.now(CHINA)
                    watermark = Watermark(exporter=actor.username, stamp=now.strftime("%Y-%m-%d %H:%M:%S"),
                                          purpose=purpose)
                    book = await loop.run_in_executor(None, _ExportBook, self._pii, watermark)
                    async for chunk in store.iter_roster(conn, org["path"], EXPORT_CHUNK):
                        await loop.run_in_executor(None, book.add, chunk)
                    export = RosterExport(await loop.run_in_executor(None, book.save),
                                          f"会员名册-{org['code']}-{now:%Y%m%d%H%M%S}.xlsx", book.rows)
                # The audit record in a transaction of its own: appending to the hash chain needs
                # the newest record, which the export's older snapshot might not see.
                async with conn.transaction():
                    await audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=org["id"],
                                       action="roster.export", target=f"org:{org['id']}", ip=actor.ip,
                                       detail={"org_code": org["code"], "purpose": purpose,
                                               "rows": export.rows})
            except BaseException:
                if export is not None:
                    export.discard()
                raise
        return export


@dataclass
class _Outcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)

    def items(self) -> Iterator[tuple[str, int]]:
        yield from (("created", self.created), ("updated", self.updated),
                    ("unchanged", self.unchanged), ("error", len(self.errors)))
