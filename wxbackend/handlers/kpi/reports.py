"""Usage reports in the console: ``/admin/v1/kpi/report`` (each indicator against its standard,
the unions below ranked) and ``/admin/v1/kpi/trend`` (an indicator month by month)."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.kpi.reports import KpiReports


class KpiHandler(AdminHandler):
    def initialize(self, cadres: CadreService, reports: KpiReports) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.reports = reports


class ReportHandler(KpiHandler):
    route = "/admin/v1/kpi/report"

    async def get(self) -> None:
        self.write_json({"report": await self.reports.report(
            self.actor, self.get_query_argument("period", ""), org_id=self.int_argument("org_id"))})


class TrendHandler(KpiHandler):
    route = "/admin/v1/kpi/trend"

    async def get(self) -> None:
        self.write_json({"trend": await self.reports.trend(
            self.actor, self.get_query_argument("indicator", ""),
            months=self.int_argument("months", 12) or 12, org_id=self.int_argument("org_id"))})


def routes(cadres: CadreService, reports: KpiReports) -> list:
    return route_table((ReportHandler, TrendHandler), {"cadres": cadres, "reports": reports})
