"""Registered-user targets and go-live years (``/admin/v1/kpi/targets``): the table, one change,
a union's history, the table as a workbook and its import (a streamed upload,
:mod:`wxbackend.handlers.uploads`)."""

from __future__ import annotations

import tornado.web

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.handlers.uploads import StreamedUpload
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.kpi.targets import IMPORT_LIMIT, MANAGE, KpiTargets
from wxbackend.services.membership.membership import row_id


class TargetsHandler(AdminHandler):
    def initialize(self, cadres: CadreService, targets: KpiTargets) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.targets = targets


class TableHandler(TargetsHandler):
    route = "/admin/v1/kpi/targets"

    async def get(self) -> None:
        self.write_json(await self.targets.table(self.actor, self.int_argument("year")))

    async def put(self) -> None:
        self.write_json(await self.targets.set(self.actor, self.json_body()))


class HistoryHandler(TargetsHandler):
    route = "/admin/v1/kpi/targets/history"

    async def get(self) -> None:
        self.write_json(await self.targets.history(self.actor, row_id(self.int_argument("org_id"))))


class WorkbookHandler(TargetsHandler):
    route = "/admin/v1/kpi/targets.xlsx"

    async def get(self) -> None:
        data, filename = await self.targets.template(self.actor)
        self.send_xlsx_headers(filename)
        self.finish(data)


@tornado.web.stream_request_body
class ImportHandler(StreamedUpload, TargetsHandler):
    """The whole table from a workbook; refused before a byte is read without ``kpi.manage``."""

    route = "/admin/v1/kpi/targets/import"
    limit = IMPORT_LIMIT
    what = "目标表"

    def initialize(self, cadres: CadreService, targets: KpiTargets) -> None:  # type: ignore[override]
        super().initialize(cadres, targets)
        self.start_upload()

    async def prepare(self) -> None:
        await super().prepare()
        self.actor.require(MANAGE)
        self.check_declared()

    async def post(self) -> None:
        self.write_json(await self.targets.import_xlsx(self.actor, self.upload_body()))


def routes(cadres: CadreService, targets: KpiTargets) -> list:
    return route_table((TableHandler, HistoryHandler, WorkbookHandler, ImportHandler),
                       {"cadres": cadres, "targets": targets})
