"""What a roster row means (会员名册的一行): the columns, parsing and checking a row, and
planning what a batch of rows does to the member records.

Every function here is pure CPU work (parsing, hashing, encrypting) over the file's rows and the
database lookups the service made for a batch; the service runs them in an executor and does the
database work itself.

Why it is built the way it is:

* A row with a problem is reported (``code`` and a Chinese message, as a row error) and skipped;
  the rest of the file goes in. The ID number is parsed first, so even a row with another problem
  counts as the first occurrence of its person when a later row repeats them.
* Names are normalised by ``member_forms.clean_name``, the function certification runs on the
  name a worker types: the roster must store the name in the form certification compares with,
  and a name it would refuse is a row error (``name_invalid``) rather than a record no worker can
  ever certify against. Ethnicity, education, political status and household type are held to the
  form's vocabularies too: a value a joining worker could not pick is a row error.
* Imports are idempotent: each member keeps a keyed hash of the row last imported
  (``roster_digest``; keyed, because a plain hash of a row with an ID number can be brute-forced).
  Re-importing a file writes nothing; a changed row updates the record, never the account link
  or certification that a worker's own action made.
* A column the file does not have keeps what is stored, so a cadre can import a roster of a few
  columns without clearing the others.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from wxbackend.infra.pii import PersonalData, normalise_phone
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership.idnumbers import IdNumber, parse_id_number
from wxbackend.services.membership.member_forms import (
    EDUCATION,
    EMPLOYER_MAX,
    ETHNICITIES,
    HOUSEHOLD_TYPES,
    JOB_MAX,
    POLITICAL_STATUS,
    clean_name,
)
from wxbackend.services.membership.membership import ID_COLUMN, PHONE_COLUMN
from wxbackend.services.membership.roster_files import RosterFileError, Source, open_rows

ROW_COLUMN = "members.roster_row"


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
    Column("民族", "ethnicity"),
    Column("学历", "education"),
    Column("政治面貌", "political_status"),
    Column("户籍类型", "household_type"),
    Column("是否农民工", "migrant_worker"),
    Column("工作单位", "employer", limit=EMPLOYER_MAX),
    Column("职务", "job", limit=JOB_MAX),
    Column("入会日期", "joined_on"),
    Column("会员编号", "member_no", limit=32),
)
HEADER = [c.header for c in COLUMNS]
# Fields a row sets on the member record, in the order of the digest and the change report.
_RECORD_FIELDS = ("name", "phone", "ethnicity", "education", "political_status", "household_type",
                  "migrant_worker", "employer", "job", "joined_on")
# The worker's form's vocabularies: an imported member is held to what a joining worker may pick.
_CHOICES = {"ethnicity": ETHNICITIES, "education": EDUCATION, "political_status": POLITICAL_STATUS,
            "household_type": HOUSEHOLD_TYPES}
_FREE_TEXT = ("employer", "job")

MAX_ROWS = 1_048_576          # an Excel sheet's limit; a larger roster is imported in parts
HEADER_SEARCH_ROWS = 20       # an export's title and watermark rows come before its header

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_NOISE = re.compile(r"[\s*＊]|[（(]必填[）)]")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0{1,2}:00(?::00)?)?$",
                   re.ASCII)
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$", re.ASCII)
_MEMBER_NO = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
_YES = {"是": True, "否": False}


# --- one row ---------------------------------------------------------------------------------
@dataclass(slots=True)
class Row:
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


def _one_of(header: str, allowed: tuple[str, ...]) -> str:
    if len(allowed) > 10:
        return f"{header}应填写全称，如“{allowed[0]}”"
    quoted = [f"“{v}”" for v in allowed]
    return f"{header}应填{'、'.join(quoted[:-1])}或{quoted[-1]}"


class _RowError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _text(value: Any) -> str:
    """A cell as the text a cadre sees in it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return CONTROL.sub("", value).strip()
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


class RosterReader:
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

    @classmethod
    def open(cls, path: str, source: Source, pii: PersonalData, today: date, batch_rows: int, *,
             in_child: bool, read_seconds: float = 300.0) -> RosterReader:
        reader = cls(open_rows(path, source, in_child=in_child, read_seconds=read_seconds), pii,
                     today, batch_rows)
        try:
            reader._find_header()
        except BaseException:
            reader.close()
            raise
        return reader

    @property
    def present(self) -> frozenset[str]:
        """The fields the file has a column for."""
        return frozenset(self.index)

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
                return
            if required > sum(1 for c in COLUMNS if c.required and c.field in best):
                best = index
        if not seen_any:
            raise RosterFileError("文件中没有内容，请使用会员名册模板填写后上传", code="file_empty")
        missing = "、".join(c.header for c in COLUMNS if c.required and c.field not in best)
        raise RosterFileError(f"缺少必填列：{missing}。请使用会员名册模板（第一行为列名）",
                              code="columns_missing")

    def next_batch(self) -> list[Row] | None:
        """The next batch of non-empty rows, parsed; None at the end of the file."""
        batch: list[Row] = []
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

    def _parse(self, values: tuple) -> Row:
        row = Row(self._row_no)
        try:
            # The ID number first: even a row with another problem counts as the first
            # occurrence of its person when a later row repeats them.
            try:
                row.ident = parse_id_number(_text(self._cell(values, "id_number")), self._today)
            except InvalidInput as exc:
                raise _RowError(exc.code, exc.message) from None
            row.bidx = self._pii.blind_index(row.ident.number, ID_COLUMN)
            name = _text(self._cell(values, "name"))
            if not name:
                raise _RowError("name_missing", "姓名不能为空")
            try:
                # As certification normalises the name a worker types, so the two compare equal.
                row.name = clean_name(name)
            except InvalidInput as exc:
                raise _RowError(exc.code, exc.message) from None
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
                if col.field in _CHOICES:
                    text = _text(self._cell(values, col.field))
                    if text and text not in _CHOICES[col.field]:
                        raise _RowError(f"{col.field}_invalid", _one_of(col.header, _CHOICES[col.field]))
                    setattr(row, col.field, text or None)
                elif col.field in _FREE_TEXT:
                    text = _text(self._cell(values, col.field))
                    if len(text) > col.limit:
                        raise _RowError("value_too_long", f"{col.header}不能超过 {col.limit} 个字")
                    setattr(row, col.field, text or None)
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
class Plan:
    """What a batch does: the staged writes and the rows settled without a write."""
    stage: list[tuple] = dataclasses.field(default_factory=list)
    creates: dict[bytes, int] = dataclasses.field(default_factory=dict)     # bidx → row
    updates: dict[int, tuple[int, bool]] = dataclasses.field(default_factory=dict)  # id → row, changed
    seen: list[tuple[bytes, int]] = dataclasses.field(default_factory=list)
    errors: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)
    unchanged: int = 0


@dataclass(frozen=True)
class Lookups:
    orgs: dict[str, asyncpg.Record | None]
    existing: dict[bytes, asyncpg.Record]
    owners: dict[str, bytes]          # member number → its holder's ID-number index
    seen: dict[bytes, int]            # ID-number index → the row it first appeared on


def plan_batch(rows: list[Row], look: Lookups, *, present: frozenset[str], actor: Actor,
               pii: PersonalData, today: date) -> Plan:
    """Pure CPU (hashing, encryption): run in an executor."""
    plan = Plan()
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


def _plan_row(row: Row, look: Lookups, numbers: dict[str, bytes], plan: Plan, *,
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
    for field in (*_CHOICES, *_FREE_TEXT):
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
