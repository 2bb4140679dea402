"""``/admin/v1/rosters``: roster import and export (会员名册导入/导出) for cadres.

An upload is the raw file as the request body, streamed to disk as it arrives: a roster may be
up to ``[membership] import_max_bytes``, far above the server's general body limit, and is
refused before a byte of it is read when the session, CSRF token or permission is missing or its
declared length is over that limit (413).
"""

from __future__ import annotations

import contextlib

from tornado.web import stream_request_body

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership.roster_files import Upload
from wxbackend.services.membership.rosters import RosterService


class RosterHandler(AdminHandler):
    def initialize(self, cadres: CadreService, rosters: RosterService) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.rosters = rosters


@stream_request_body
class ImportsHandler(RosterHandler):
    route = "/admin/v1/rosters/imports"
    upload: Upload | None = None   # the file being received; the import's once handed over

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method == "POST":
            length = self.request.headers.get("Content-Length", "")
            declared = int(length) if length.isascii() and length.isdigit() else None
            self.upload = await self.rosters.receive(self.actor, declared)
            # The server's general body limit, raised to the roster's; Tornado still cuts off
            # a chunked body that runs over it (with a bare 400).
            self.request.connection.set_max_body_size(self.upload.max_bytes)

    async def data_received(self, chunk: bytes) -> None:
        if self.upload is not None:
            await self.upload.write(chunk)

    async def post(self) -> None:
        upload, self.upload = self.upload, None
        report = await self.rosters.start_import(self.actor, upload,
                                                 self.get_query_argument("filename", ""))
        self.write_json({"import": report}, 202)

    async def get(self) -> None:
        self.write_json({"imports": await self.rosters.list_imports(self.actor)})

    def _discard(self) -> None:
        if self.upload is not None:
            self.upload.discard()
            self.upload = None

    def on_connection_close(self) -> None:
        self._discard()
        super().on_connection_close()

    def on_finish(self) -> None:
        self._discard()
        super().on_finish()


class ImportHandler(RosterHandler):
    route = "/admin/v1/rosters/imports/{id}"

    async def get(self, import_id: str) -> None:
        self.write_json({"import": await self.rosters.get_import(self.actor, int(import_id))})


class TemplateHandler(RosterHandler):
    route = "/admin/v1/rosters/template.xlsx"

    async def get(self) -> None:
        data, filename = await self.rosters.template_xlsx()
        self.send_xlsx_headers(filename)
        self.finish(data)


class ExportHandler(RosterHandler):
    route = "/admin/v1/rosters/export.xlsx"

    async def get(self) -> None:
        org_id = self.int_argument("org_id")
        if org_id is None:
            raise InvalidInput("请选择要导出的工会", code="invalid_input")
        export = await self.rosters.export_roster(self.actor, org_id=org_id,
                                                  purpose=self.get_query_argument("purpose", ""))
        try:
            self.send_xlsx_headers(export.filename)
            async with contextlib.aclosing(export.chunks()) as chunks:
                async for chunk in chunks:
                    self.write(chunk)
                    await self.flush()
            self.finish()
        finally:
            export.discard()


def routes(cadres: CadreService, rosters: RosterService) -> list:
    kwargs = {"cadres": cadres, "rosters": rosters}
    return route_table((ImportsHandler, ImportHandler, TemplateHandler, ExportHandler), kwargs)
