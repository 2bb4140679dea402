"""Roster import and export (会员名册导入/导出) for cadres.

A grassroots union keeps its members' roster in a spreadsheet; the platform takes it as XLSX or
CSV, checks every row and files one member record per person (``members``: one record per ID
number, across all unions). A row with a problem is reported and skipped, the rest go in; a file
that is not the spreadsheet it claims to be goes nowhere.

The service runs the import and the export; the file (``roster_files``), what a row means and
does (``roster_rows``) and the export workbook (``roster_export``) are modules of their own.

Why it is built the way it is:

* The whole import is one transaction. A file that turns out unreadable halfway, or a process
  that dies, leaves nothing behind, and the report and its audit record commit with the rows.
  The transaction holds an advisory lock, so the stale sweep can tell an import still running
  from one whose process is gone.
* 100,000 rows must import in well under a minute without growing memory: rows stream from the
  file in batches; parsing, checking, hashing and encrypting run in an executor; each batch is
  copied to a temporary table and applied with one INSERT and one UPDATE. The ID numbers already
  seen (to catch a person listed twice) live in a temporary table, not in memory. The next batch
  is read while this one is written (bench/membership/roster_import.py measures it).
* An export reads the roster in one snapshot, and its audit record is written in a transaction
  of its own, after it (see ``roster_export`` for what the export must carry).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import asyncpg

from wxbackend.config import MembershipSettings
from wxbackend.infra.pii import PersonalData
from wxbackend.infra.xlsx import Watermark
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.cadres import changed_by
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.services.membership.roster_export import ExportBook, RosterExport, template
from wxbackend.services.membership.roster_files import (
    RosterFileError,
    Source,
    Upload,
    inspect,
    reads_in_child,
)
from wxbackend.services.membership.roster_rows import CONTROL, Lookups, RosterReader, Row, plan_batch
from wxbackend.store.membership import orgs as org_store
from wxbackend.store.membership import rosters as store

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 1000
EXPORT_MAX_ROWS = 1_000_000
EXPORT_CHUNK = 2000
_SPACES = re.compile(r"\s+")

_MSG_INTERRUPTED = "导入被中断（服务重启），名册未导入，请重新导入"
_MSG_INTERNAL = "导入时发生内部错误，名册未导入，请稍后重新导入"



# --- the service -----------------------------------------------------------------------------
def _clean_filename(raw: str) -> str:
    name = CONTROL.sub("", re.split(r"[\\/]", raw or "")[-1]).strip()
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
                 audit: AuditTrail, now: Clock = china_now, child_reader_bytes: int = 2 * 1_048_576) -> None:
        """``child_reader_bytes``: a workbook that inflates to at least this much is read in a
        child process (starting one costs about half a second, worth it only for a large file;
        openpyxl reads about 3 MB of sheet XML a second)."""
        self._pool = pool
        self._audit = audit
        self._child_from = child_reader_bytes
        self._pii = pii
        self._s = settings
        self._now = now
        self._running: set[asyncio.Task] = set()

    # --- import ------------------------------------------------------------------------------
    def require_import(self, actor: Actor) -> None:
        """Checked before an upload is accepted, so a cadre without the permission is refused
        before sending 50 MB."""
        actor.require("member.import")

    async def receive(self, actor: Actor, declared_bytes: int | None = None) -> Upload:
        """Where an upload goes; refused (413) when its declared size is over the limit."""
        self.require_import(actor)
        return await Upload.receive(self._s.import_max_bytes, declared_bytes)

    async def start_import(self, actor: Actor, upload: Upload, filename: str) -> dict:
        """Check the file is a roster spreadsheet, file the import and run it in the background;
        the report as it starts. The upload is the import's from here on."""
        import_id, filename, source = await self._begin(actor, upload, filename)
        task = asyncio.create_task(self._run(actor, import_id, filename, upload, source))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await self.get_import(actor, import_id)

    async def import_roster(self, actor: Actor, upload: Upload, filename: str) -> dict:
        """The same import, awaited: the final report (scripts, tests)."""
        import_id, filename, source = await self._begin(actor, upload, filename)
        await self._run(actor, import_id, filename, upload, source)
        return await self.get_import(actor, import_id)

    async def _begin(self, actor: Actor, upload: Upload, filename: str) -> tuple[int, str, Source]:
        """The import filed: its id, the file's name as recorded, the file's format."""
        try:
            self.require_import(actor)
            filename = _clean_filename(filename)
            await upload.close()
            source = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
                inspect, upload.path, filename, max_sheet_bytes=self._s.import_max_sheet_bytes))
            async with self._pool.acquire() as conn:
                import_id = await store.create_import(conn, cadre_id=actor.id, org_id=actor.org_id,
                                                      filename=filename, file_sha256=upload.sha256)
        except BaseException:
            upload.discard()
            raise
        return import_id, filename, source

    async def _run(self, actor: Actor, import_id: int, filename: str, upload: Upload,
                   source: Source) -> None:
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
                await self._record_import(conn, actor, import_id, filename, upload, "done", counts)
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
                           source: Source, counts: dict[str, int], errors: list[dict]) -> None:
        loop = asyncio.get_running_loop()
        today = self._now().date()
        reader = await loop.run_in_executor(None, functools.partial(
            RosterReader.open, upload.path, source, self._pii, today, self._s.import_batch_rows,
            in_child=reads_in_child(source, self._child_from), read_seconds=self._s.import_read_seconds))
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

    async def _apply(self, conn: asyncpg.Connection, actor: Actor, import_id: int, batch: list[Row],
                     present: frozenset[str], orgs: dict[str, asyncpg.Record | None],
                     today: date) -> _Outcome:
        valid = [r for r in batch if r.error is None]
        codes = {r.org_code for r in valid} - orgs.keys()
        if codes:
            found = {r["code"]: r for r in await org_store.by_codes(conn, sorted(codes))}
            orgs.update({c: found.get(c) for c in codes})
        bidxs = [r.bidx for r in batch if r.bidx is not None]
        numbers = sorted({r.member_no for r in valid if r.member_no})
        look = Lookups(
            orgs=orgs,
            existing={r["id_number_bidx"]: r for r in await store.members_by_bidx(conn, bidxs)},
            owners={r["member_no"]: r["id_number_bidx"]
                    for r in await store.member_no_owners(conn, numbers)} if numbers else {},
            seen={r["bidx"]: r["row_no"] for r in await store.seen_rows(conn, bidxs)})
        plan = await asyncio.get_running_loop().run_in_executor(
            None, lambda: plan_batch(batch, look, present=present, actor=actor, pii=self._pii, today=today))
        if plan.seen:
            await store.mark_seen(conn, plan.seen)
        outcome = _Outcome(unchanged=plan.unchanged, errors=plan.errors)
        if plan.stage:
            who = changed_by(actor.id)
            await store.stage(conn, plan.stage)
            created = await store.apply_creates(conn, import_id, who, today) if plan.creates else set()
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

    async def _record_import(self, conn: asyncpg.Connection, actor: Actor, import_id: int,
                             filename: str, upload: Upload, status: str, counts: dict[str, int]) -> None:
        await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                 action="roster.import", target=f"roster_import:{import_id}", ip=actor.ip,
                                 detail={"filename": filename, "sha256": upload.sha256.hex(),
                                         "status": status, "bytes": upload.size, **counts})

    async def _fail(self, actor: Actor, import_id: int, filename: str, upload: Upload, message: str) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if await store.finish_import(conn, import_id, status="failed", counts=_zero(), errors=[],
                                             message=message):
                    await self._record_import(conn, actor, import_id, filename, upload, "failed", _zero())
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
                await self._audit.record(conn, actor_id=None, actor="system", org_id=r["org_id"],
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
        data = await asyncio.get_running_loop().run_in_executor(None, template)
        return data, "会员名册导入模板.xlsx"

    # --- export ------------------------------------------------------------------------------
    async def export_roster(self, actor: Actor, *, org_id: int, purpose: str) -> RosterExport:
        """The members of a union and every union below it, with full ID numbers and phones,
        as a watermarked XLSX; audited. The caller streams the file and it removes itself."""
        actor.require("member.export")
        purpose = _SPACES.sub(" ", CONTROL.sub("", purpose or "")).strip()
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
            # One snapshot for the count and every row: the file is the roster at one moment.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                total = await store.count_roster(conn, org["path"])
                if total > EXPORT_MAX_ROWS:
                    raise InvalidInput(f"该范围内会员超过 {EXPORT_MAX_ROWS} 人，请按下级工会分别导出",
                                       code="export_too_large")
                now = self._now()
                watermark = Watermark(exporter=actor.username, stamp=now.strftime("%Y-%m-%d %H:%M:%S"),
                                      purpose=purpose)
                book = await loop.run_in_executor(None, ExportBook, self._pii, watermark)
                async for chunk in store.iter_roster(conn, org["path"], EXPORT_CHUNK):
                    await loop.run_in_executor(None, book.add, chunk)
        # Writing out the workbook (compression, seconds for a large union) holds no connection.
        export: RosterExport | None = None
        try:
            export = RosterExport(await loop.run_in_executor(None, book.save),
                                  f"会员名册-{org['code']}-{now:%Y%m%d%H%M%S}.xlsx", book.rows)
            # The audit record in a transaction of its own: appending to the hash chain needs
            # the newest record, which the export's older snapshot might not see.
            async with self._pool.acquire() as conn, conn.transaction():
                await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=org["id"],
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
