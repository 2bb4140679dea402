"""The province's log as tlog-tiles serves it (``/ledger/v1/``): the newest checkpoint with its
cosignatures, hash tiles and entry bundles. Hash tiles carry nothing but hashes and are public
and cacheable (a full tile never changes); entry bundles hold every union's base data and go
only to the entrances the platform office trusts with the whole province."""

from __future__ import annotations

from wxbackend.handlers.base import BaseHandler, route_table
from wxbackend.handlers.identity.platform_api import SignedHandler
from wxbackend.services.errors import Forbidden, NotFound
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.platform import PlatformApps
from wxbackend.services.identity.sso import SingleSignOn
from wxbackend.services.ledger import tlog
from wxbackend.services.ledger.cosigning import Cosigning
from wxbackend.services.ledger.log import LedgerLog

TEXT = "text/plain; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"


class CheckpointHandler(BaseHandler):
    route = "/ledger/v1/checkpoint"

    def initialize(self, ledger: LedgerLog, cosigning: Cosigning) -> None:
        self.ledger = ledger
        self.cosigning = cosigning

    async def get(self) -> None:
        latest = await self.ledger.latest()
        if latest is None:
            raise NotFound("基础数据账本尚未开始", code="ledger_empty")
        self.set_header("Content-Type", TEXT)
        self.set_header("Cache-Control", "no-cache")
        self.write(await self.cosigning.cosigned(latest.size))


def _tile(path: str) -> tuple[int | str, int, int]:
    try:
        level, index, width = tlog.parse_tile_path("tile/" + path)
    except ValueError as exc:
        raise NotFound(f"数据块路径无效：{exc}", code="tile_not_found") from None
    # No log reaches 2^63 entries (a bigint index): a tile beyond is not there, and its number
    # would not fit the database's integers.
    if index << (tlog.TILE_HEIGHT * ((0 if level == "entries" else int(level)) + 1)) >= 2**63:
        raise NotFound("该数据块尚不存在", code="tile_not_found")
    return level, index, width


class HashTileHandler(BaseHandler):
    route = "/ledger/v1/tile/{level}/{index}"      # the metrics label; the pattern below
    pattern = r"/ledger/v1/tile/([0-9]+/.+)"

    def initialize(self, ledger: LedgerLog) -> None:
        self.ledger = ledger

    async def get(self, path: str) -> None:
        level, index, width = _tile(path)
        data = await self.ledger.tile(int(level), index, width)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Cache-Control", IMMUTABLE if width == tlog.TILE_WIDTH else "no-cache")
        self.write(data)


class EntryBundleHandler(SignedHandler):
    route = "/ledger/v1/tile/entries/{index}"
    pattern = r"/ledger/v1/tile/entries/(.+)"

    def initialize(self, apps: PlatformApps, accounts: AccountService, sso: SingleSignOn,  # type: ignore[override]
                   ledger: LedgerLog) -> None:
        super().initialize(apps, accounts, sso)
        self.ledger = ledger

    async def get(self, path: str) -> None:
        self.app.require("ledger.node")
        if not self.app.province_scope:
            raise Forbidden("完整的条目数据块只提供给全省范围的节点；城市节点请读取本辖区的条目",
                            code="outside_subtree")
        _, index, width = _tile("entries/" + path)
        self.set_header("Content-Type", "application/octet-stream")
        self.write(await self.ledger.bundle(index, width))


def routes(ledger: LedgerLog, cosigning: Cosigning, apps: PlatformApps, accounts: AccountService,
           sso: SingleSignOn) -> list:
    return [*route_table((CheckpointHandler,), {"ledger": ledger, "cosigning": cosigning}),
            (EntryBundleHandler.pattern, EntryBundleHandler, {"apps": apps, "accounts": accounts,
                                                              "sso": sso, "ledger": ledger}),
            (HashTileHandler.pattern, HashTileHandler, {"ledger": ledger})]
