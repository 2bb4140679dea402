"""Briefings (情况通报) in the console: ``/admin/v1/kpi/briefings`` — the list, one briefing's
snapshot (for the printable page ``/static/admin/kpi/briefing.html``), its workbook, and issuing
one on demand."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.kpi.briefings import Briefings


class BriefingHandler(AdminHandler):
    def initialize(self, cadres: CadreService, briefings: Briefings) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.briefings = briefings


class BriefingsHandler(BriefingHandler):
    route = "/admin/v1/kpi/briefings"

    async def get(self) -> None:
        self.write_json(await self.briefings.briefings(self.actor))

    async def post(self) -> None:
        self.write_json({"briefing": await self.briefings.issue(self.actor, self.json_body())}, 201)


class OneBriefingHandler(BriefingHandler):
    route = "/admin/v1/kpi/briefings/{id}"

    async def get(self, briefing_id: str) -> None:
        self.write_json({"briefing": await self.briefings.briefing(self.actor, int(briefing_id))})


class WorkbookHandler(BriefingHandler):
    route = "/admin/v1/kpi/briefings/{id}/briefing.xlsx"

    async def get(self, briefing_id: str) -> None:
        data, filename = await self.briefings.workbook(self.actor, int(briefing_id))
        self.send_xlsx_headers(filename)
        self.finish(data)


def routes(cadres: CadreService, briefings: Briefings) -> list:
    return route_table((BriefingsHandler, OneBriefingHandler, WorkbookHandler),
                       {"cadres": cadres, "briefings": briefings})
