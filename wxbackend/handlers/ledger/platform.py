"""The ledger in the shared platform API (``/api/v1/ledger/...``), for the city nodes and other
entrances with the ``ledger.node`` scope: their subtree's entries, proofs, receipts, and the
alarms a node raises."""

from __future__ import annotations

import base64

from wxbackend.handlers.base import route_table
from wxbackend.handlers.identity.platform_api import SignedHandler
from wxbackend.services.errors import InvalidInput
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.platform import PlatformApps
from wxbackend.services.identity.sso import SingleSignOn
from wxbackend.services.ledger.alarms import LedgerAlarms
from wxbackend.services.ledger.cosigning import Cosigning, receipt
from wxbackend.services.ledger.log import LedgerLog


class NodeHandler(SignedHandler):
    def initialize(self, apps: PlatformApps, accounts: AccountService, sso: SingleSignOn,  # type: ignore[override]
                   ledger: LedgerLog, cosigning: Cosigning, alarms: LedgerAlarms) -> None:
        super().initialize(apps, accounts, sso)
        self.ledger = ledger
        self.cosigning = cosigning
        self.alarms = alarms

    async def prepare(self) -> None:
        await super().prepare()
        self.app.require("ledger.node")

    def required_int(self, name: str) -> int:
        value = self.int_argument(name)
        if value is None:
            raise InvalidInput(f"缺少整数参数 {name}", code="invalid_argument")
        return value


def _hashes(values: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in values]


class EntriesHandler(NodeHandler):
    route = "/api/v1/ledger/entries"

    async def get(self) -> None:
        self.write_json(await self.ledger.node_entries(
            org_id=self.app.org_id, province_scope=self.app.province_scope,
            org_code=self.get_query_argument("org", "") or None, start=self.int_argument("start", 0) or 0,
            end=self.int_argument("end"), limit=self.int_argument("limit", 1000) or 1000))


class InclusionHandler(NodeHandler):
    route = "/api/v1/ledger/proof/inclusion"

    async def get(self) -> None:
        index, size = self.required_int("index"), self.required_int("size")
        self.write_json({"index": index, "size": size,
                         "proof": _hashes(await self.ledger.inclusion(index, size))})


class ConsistencyHandler(NodeHandler):
    route = "/api/v1/ledger/proof/consistency"

    async def get(self) -> None:
        old, new = self.required_int("old"), self.required_int("new")
        self.write_json({"old": old, "new": new, "proof": _hashes(await self.ledger.consistency(old, new))})


class ReceiptHandler(NodeHandler):
    route = "/api/v1/ledger/receipt"

    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(await receipt(self.cosigning, self.required_int("index")))


class AlarmsHandler(NodeHandler):
    route = "/api/v1/ledger/alarms"

    async def post(self) -> None:
        alarm = await self.alarms.from_node(self.app.app_id, self.json_body(limit=80_000))
        self.write_json({"id": alarm}, status=201)


def routes(apps: PlatformApps, accounts: AccountService, sso: SingleSignOn, ledger: LedgerLog,
           cosigning: Cosigning, alarms: LedgerAlarms) -> list:
    return route_table((EntriesHandler, InclusionHandler, ConsistencyHandler, ReceiptHandler, AlarmsHandler),
                       {"apps": apps, "accounts": accounts, "sso": sso, "ledger": ledger,
                        "cosigning": cosigning, "alarms": alarms})
