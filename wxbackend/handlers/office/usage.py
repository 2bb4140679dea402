"""The offline ledger (台账), the usage rates (使用率) and their standards
(``/admin/v1/usage-ledger``, ``/admin/v1/usage-rates``, ``/admin/v1/usage-standards``)."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.membership.membership import row_id
from wxbackend.services.office.usage import UsageRates


class UsageHandler(AdminHandler):
    def initialize(self, cadres: CadreService, usage: UsageRates) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.usage = usage


class LedgerHandler(UsageHandler):
    route = "/admin/v1/usage-ledger"

    async def get(self) -> None:
        self.write_json(await self.usage.entries(self.actor, period=self.get_query_argument("period", ""),
                                                 module=self.optional("module")))

    async def post(self) -> None:
        self.write_json({"entry": await self.usage.record(self.actor, self.json_body())}, 201)


class VoidHandler(UsageHandler):
    route = "/admin/v1/usage-ledger/{id}/void"

    async def post(self, entry_id: str) -> None:
        self.write_json({"entry": await self.usage.void(self.actor, int(entry_id), self.json_body())})


class RatesHandler(UsageHandler):
    route = "/admin/v1/usage-rates"

    async def get(self) -> None:
        org = self.optional("org_id")
        self.write_json({"usage": await self.usage.rates(
            self.actor, period=self.get_query_argument("period", ""),
            org_id=row_id(org) if org is not None else None)})


class StandardsHandler(UsageHandler):
    route = "/admin/v1/usage-standards"

    async def get(self) -> None:
        self.write_json(await self.usage.standards(self.actor))

    async def put(self) -> None:
        self.write_json(await self.usage.set_standard(self.actor, self.json_body()))


def routes(cadres: CadreService, usage: UsageRates) -> list:
    return route_table((LedgerHandler, VoidHandler, RatesHandler, StandardsHandler),
                       {"cadres": cadres, "usage": usage})
