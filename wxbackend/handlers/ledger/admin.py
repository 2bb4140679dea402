"""The ledger on the province's console (``/admin/v1/ledger/...``, ``basedata.ledger``): status,
checkpoints and cosignatures, entries, alarms and their clearing."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.ledger.alarms import LedgerAlarms
from wxbackend.services.ledger.console import LedgerConsole
from wxbackend.services.ledger.cosigning import Cosigning, receipt
from wxbackend.services.ledger.log import LedgerLog


class LedgerHandler(AdminHandler):
    def initialize(self, cadres: CadreService, console: LedgerConsole,  # type: ignore[override]
                   alarms: LedgerAlarms, cosigning: Cosigning) -> None:
        super().initialize(cadres)
        self.console = console
        self.alarms = alarms
        self.cosigning = cosigning


class StatusHandler(LedgerHandler):
    route = "/admin/v1/ledger/status"

    async def get(self) -> None:
        self.write_json(await self.console.status(self.actor))


class CheckpointsHandler(LedgerHandler):
    route = "/admin/v1/ledger/checkpoints"

    async def get(self) -> None:
        self.write_json({"checkpoints": await self.console.checkpoints(self.actor,
                                                                       self.int_argument("limit", 50) or 50)})


class EntryHandler(LedgerHandler):
    route = "/admin/v1/ledger/entries/{id}"

    async def get(self, idx: str) -> None:
        self.write_json(await self.console.entry(self.actor, int(idx)))


class ReceiptHandler(LedgerHandler):
    route = "/admin/v1/ledger/entries/{id}/receipt"

    async def get(self, idx: str) -> None:
        await self.console.entry(self.actor, int(idx))     # the permission check
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="ledger-receipt-{int(idx)}.txt"')
        self.write(await receipt(self.cosigning, int(idx)))


class AlarmsHandler(LedgerHandler):
    route = "/admin/v1/ledger/alarms"

    async def get(self) -> None:
        open_only = self.get_query_argument("all", "") not in ("1", "true")
        self.write_json({"alarms": await self.alarms.list(self.actor, open_only=open_only)})


class ClearHandler(LedgerHandler):
    route = "/admin/v1/ledger/alarms/{id}/clear"

    async def post(self, alarm_id: str) -> None:
        body = self.json_body()
        await self.alarms.clear(self.actor, int(alarm_id), str(body.get("note", "")))
        self.write_json({"cleared": True})


def routes(cadres: CadreService, ledger: LedgerLog, cosigning: Cosigning, alarms: LedgerAlarms) -> list:
    return route_table((StatusHandler, CheckpointsHandler, EntryHandler, ReceiptHandler, AlarmsHandler,
                        ClearHandler),
                       {"cadres": cadres, "console": LedgerConsole(cosigning, alarms), "alarms": alarms,
                        "cosigning": cosigning})
