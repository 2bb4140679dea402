"""Usage figures for the shared platform's entrances (``GET /api/v1/kpi/...``): a signed request
and the ``kpi.read`` scope; the entrance reads the subtree of the union that owns it."""

from __future__ import annotations

from wxbackend.handlers.base import route_table
from wxbackend.handlers.identity.platform_api import SignedHandler
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.platform import PlatformApps
from wxbackend.services.identity.sso import SingleSignOn
from wxbackend.services.kpi.reports import KpiReports


class EntranceKpiHandler(SignedHandler):
    def initialize(self, apps: PlatformApps, accounts: AccountService, sso: SingleSignOn,  # type: ignore[override]
                   reports: KpiReports) -> None:
        super().initialize(apps, accounts, sso)
        self.reports = reports

    async def prepare(self) -> None:
        await super().prepare()
        self.app.require("kpi.read")


class ReportHandler(EntranceKpiHandler):
    route = "/api/v1/kpi/report"

    async def get(self) -> None:
        scope = await self.reports.entrance_scope(self.app.org_id)
        self.write_json({"report": await self.reports.report(
            scope, self.get_query_argument("period", ""), org_id=self.int_argument("org_id"))})


class TrendHandler(EntranceKpiHandler):
    route = "/api/v1/kpi/trend"

    async def get(self) -> None:
        scope = await self.reports.entrance_scope(self.app.org_id)
        self.write_json({"trend": await self.reports.trend(
            scope, self.get_query_argument("indicator", ""),
            months=self.int_argument("months", 12) or 12, org_id=self.int_argument("org_id"))})


def routes(apps: PlatformApps, accounts: AccountService, sso: SingleSignOn, reports: KpiReports) -> list:
    return route_table((ReportHandler, TrendHandler),
                       {"apps": apps, "accounts": accounts, "sso": sso, "reports": reports})
