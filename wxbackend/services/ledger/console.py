"""What the province's console shows of the ledger: where the log stands, which checkpoints the
city nodes cosigned and which one is final, and a record's entries with their receipts."""

from __future__ import annotations

import base64

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.errors import NotFound
from wxbackend.services.ledger.alarms import LedgerAlarms
from wxbackend.services.ledger.cosigning import Cosigning
from wxbackend.services.ledger.entries import decode
from wxbackend.store.ledger import log as store


class LedgerConsole:
    def __init__(self, cosigning: Cosigning, alarms: LedgerAlarms) -> None:
        self.cosigning = cosigning
        self.alarms = alarms
        self.pool = cosigning.pool

    async def status(self, actor: Actor) -> dict:
        LedgerAlarms.require_watcher(actor)
        async with self.pool.acquire() as conn:
            latest = await store.latest_checkpoint(conn)
            queued = await store.queued(conn)
            sizes = await store.witness_sizes(conn)
            final = await store.final_size(conn, self.cosigning.quorum)
            alarms = await store.alarms(conn, open_only=True, limit=1000)
        ledger = self.cosigning.ledger
        return {"enabled": ledger.enabled, "origin": ledger.origin,
                "public_key": ledger.signer.verifier().vkey() if ledger.signer else None,
                "size": latest["size"] if latest else 0,
                "root": base64.b64encode(bytes(latest["root"])).decode() if latest else None,
                "signed_at": latest["signed_at"].isoformat() if latest else None,
                "queued": queued, "quorum": self.cosigning.quorum, "final_size": final,
                "witnesses": [{"name": w.name, "public_key": w.verifier.vkey(), "url": w.url,
                               "cosigned_size": sizes.get(w.name)} for w in self.cosigning.witnesses],
                "open_alarms": len(alarms)}

    async def checkpoints(self, actor: Actor, limit: int = 50) -> list[dict]:
        LedgerAlarms.require_watcher(actor)
        async with self.pool.acquire() as conn:
            rows = await store.checkpoints(conn, max(1, min(limit, 500)))
        quorum = self.cosigning.quorum
        return [{"size": r["size"], "root": base64.b64encode(bytes(r["root"])).decode(),
                 "signed_at": r["signed_at"].isoformat(), "witnesses": list(r["witnesses"]),
                 "final": len(r["witnesses"]) >= quorum} for r in rows]

    async def entry(self, actor: Actor, idx: int) -> dict:
        LedgerAlarms.require_watcher(actor)
        async with self.pool.acquire() as conn:
            row = await store.entry(conn, idx)
        if row is None:
            raise NotFound(f"账本中没有序号为 {idx} 的条目", code="entry_not_found")
        return {"index": row["idx"], "kind": row["kind"], "entry": decode(bytes(row["body"]))}
