"""The city node process (``wxbackend node``): a witness that cosigns the province's checkpoints
and a mirror that keeps a verified copy of its subtree's base data, on its own database (an
embedded PostgreSQL under its ``data_dir`` by default, like the main server).

It catches up by itself: a pushed checkpoint wakes the mirror at once, and it also asks the
province for the newest checkpoint every ``[node] sync_seconds``, so a node that was down, or
missed pushes, follows on from its last verified chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import httpx

from wxbackend.config import ConfigError, Settings
from wxbackend.infra.db import create_pool
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.ledger.client import ProvinceClient, ProvinceUnavailable
from wxbackend.services.ledger.cosigning import wake_or_stop
from wxbackend.services.ledger.mirror import Mirror, Refused
from wxbackend.services.ledger.notes import COSIGNATURE_V1, Checkpoint, NoteError, Signer, Verifier
from wxbackend.services.ledger.witness import Witness

log = logging.getLogger(__name__)


def node_keys(settings: Settings) -> tuple[Signer, Verifier]:
    """The node's cosigning key and the province's log key, or a ConfigError naming what is wrong."""
    ns = settings.node
    missing = [f"[node] {name}" for name, value in (
        ("signing_key", ns.signing_key.reveal()), ("province_url", ns.province_url), ("log_key", ns.log_key),
        ("app_id", ns.app_id), ("app_secret", ns.app_secret.reveal()), ("subtree", ns.subtree)) if not value]
    if missing:
        raise ConfigError("节点配置不完整 / the node's configuration lacks: " + ", ".join(missing)
                          + "（可用 wxbackend ledger node-config 生成）")
    try:
        signer, log_key = Signer.parse(ns.signing_key.reveal()), Verifier.parse(ns.log_key)
    except NoteError as exc:
        raise ConfigError(f"[node] 密钥格式错误 / bad key: {exc}") from None
    if signer.kind != COSIGNATURE_V1:
        raise ConfigError("[node] signing_key 应为联署（cosignature, 0x04）密钥 / must be a cosignature key")
    return signer, log_key


@dataclass
class Node:
    witness: Witness
    mirror: Mirror
    sync_seconds: float
    _pushed: list[tuple[bytes, float]] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def cosigned(self, cp: Checkpoint, note: bytes) -> None:
        """The witness cosigned a checkpoint: copy up to it now."""
        self._pushed.append((note, asyncio.get_running_loop().time()))
        self._wake.set()

    async def sync_once(self) -> None:
        pushed, self._pushed = self._pushed, []
        note = pushed[-1][0] if pushed else None
        try:
            await self.mirror.sync(note)
        except ProvinceUnavailable as exc:
            log.warning("ledger node: %s", exc)
        except Refused:
            pass                        # kept as evidence and reported
        except (httpx.HTTPError, asyncpg.PostgresError, OSError) as exc:
            log.warning("ledger node sync failed: %s", exc.__class__.__name__)

    async def run(self, stop: asyncio.Event) -> None:
        last_report = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await self.sync_once()
            if loop.time() - last_report > 10:
                with contextlib.suppress(ProvinceUnavailable):
                    await self.mirror.report()
                last_report = loop.time()
            await wake_or_stop(self._wake, stop, self.sync_seconds)
            self._wake.clear()


@contextlib.asynccontextmanager
async def open_node(settings: Settings, dsn: str, *, clock: Clock = china_now,
                    transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Node]:
    signer, log_key = node_keys(settings)
    ns = settings.node
    pool = await create_pool(dsn, settings.database, min_size=1, max_size=6)
    client = ProvinceClient(ns.province_url, app_id=ns.app_id, secret=ns.app_secret.reveal(), clock=clock,
                            transport=transport)
    try:
        mirror = Mirror(pool, client, name=signer.name, origin=ns.origin, log_keys=[log_key],
                        codes=list(ns.subtree), org=ns.subtree[-1], clock=clock)
        node = Node(witness=Witness(pool, signer=signer, logs={ns.origin: [log_key]}, clock=clock),
                    mirror=mirror, sync_seconds=ns.sync_seconds)
        node.witness.on_cosigned = node.cosigned
        yield node
    finally:
        await client.close()
        await pool.close()
