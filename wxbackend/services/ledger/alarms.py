"""Ledger alarms on the province's console: what the province saw while collecting cosignatures
and what the city nodes reported (a fork, a log that shrank, a tile or entry that does not
verify). Each is counted in a metric, logged, and kept until a cadre clears it."""

from __future__ import annotations

import json
import logging

import asyncpg

from wxbackend.infra.metrics import LEDGER_ALARMS
from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import Clock, china_now
from wxbackend.services.errors import Forbidden, InvalidInput, NotFound
from wxbackend.store.ledger import log as store

log = logging.getLogger(__name__)

PERMISSION = "basedata.ledger"
NODE_KINDS = {"fork", "log_shrank", "bad_tile", "bad_entry", "outside_subtree", "bad_signature",
              "unknown_key", "unknown_origin", "inconsistent", "bad_empty_root", "bad_proof"}
MAX_EVIDENCE = 64 * 1024


def _json_size(value: dict) -> int:
    """The length of ``value`` as JSON text; over any limit when it holds NaN or Infinity, which
    Python's parser takes from ``1e999`` or ``NaN`` but jsonb refuses."""
    try:
        return len(json.dumps(value, ensure_ascii=False, allow_nan=False))
    except ValueError:
        return MAX_EVIDENCE + 1


class LedgerAlarms:
    def __init__(self, pool: asyncpg.Pool, *, audit: AuditTrail | None = None,
                 clock: Clock = china_now) -> None:
        self.pool = pool
        self.audit = audit
        self.clock = clock

    async def raise_alarm(self, *, source: str, kind: str, message: str, evidence: dict) -> int:
        LEDGER_ALARMS.labels(source, kind).inc()
        log.error("ledger alarm from %s (%s): %s", source, kind, message)
        async with self.pool.acquire() as conn:
            return await store.add_alarm(conn, source=source, kind=kind, message=message, evidence=evidence,
                                         at=self.clock())

    async def from_node(self, node: str, payload: object) -> int:
        """An alarm a node reports through the platform API."""
        if not isinstance(payload, dict):
            raise InvalidInput("请求体应为 JSON 对象", code="invalid_body")
        kind, message, evidence = payload.get("kind"), payload.get("message"), payload.get("evidence", {})
        if not isinstance(kind, str) or kind not in NODE_KINDS:     # a list or an object is unhashable
            raise InvalidInput(f"未知的告警类型：{kind}", code="invalid_kind")
        if not isinstance(message, str) or not 0 < len(message) <= 500:
            raise InvalidInput("告警说明应为 1 至 500 个字符", code="invalid_message")
        if not isinstance(evidence, dict) or _json_size(evidence) > MAX_EVIDENCE:
            raise InvalidInput("证据应为不超过 64 KB 的 JSON 对象", code="invalid_evidence")
        return await self.raise_alarm(source=node, kind=kind, message=message, evidence=evidence)

    @staticmethod
    def require_watcher(actor: Actor) -> None:
        """The ledger is watched by the province's cadres holding ``basedata.ledger``."""
        actor.require(PERMISSION)
        if "." in actor.org_path:
            raise Forbidden("基础数据账本由省总工会监看", code="province_only")

    async def list(self, actor: Actor, *, open_only: bool = True, limit: int = 100) -> list[dict]:
        self.require_watcher(actor)
        async with self.pool.acquire() as conn:
            rows = await store.alarms(conn, open_only=open_only, limit=limit)
        return [{"id": r["id"], "source": r["source"], "kind": r["kind"], "message": r["message"],
                 "evidence": r["evidence"], "raised_at": r["raised_at"].isoformat(),
                 "cleared_at": r["cleared_at"].isoformat() if r["cleared_at"] else None} for r in rows]

    async def clear(self, actor: Actor, alarm_id: int, note: str) -> None:
        self.require_watcher(actor)
        if not note.strip():
            raise InvalidInput("请写明处理情况", code="note_required")
        async with self.pool.acquire() as conn, conn.transaction():
            if not await store.clear_alarm(conn, alarm_id, actor.id, self.clock()):
                raise NotFound("告警不存在或已处理", code="alarm_not_found")
            if self.audit is not None:
                await self.audit.acted(conn, actor, "ledger.alarm_cleared", f"ledger_alarm:{alarm_id}",
                                       {"note": note.strip()[:500]})
