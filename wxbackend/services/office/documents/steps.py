"""What the outgoing and incoming desks share: finding the task of a step, and completing it."""

from __future__ import annotations

import asyncpg

from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.casework.engine import Engine, Step
from wxbackend.services.casework.operations import Operations
from wxbackend.services.errors import Conflict, Forbidden
from wxbackend.services.membership.membership import row_id

PERMISSION = "document.handle"


class StepDesk:
    def __init__(self, engine: Engine, ops: Operations) -> None:
        self.engine = engine
        self.ops = ops

    async def task(self, conn: asyncpg.Connection, step: Step, actor: Actor, nodes: set[str],
                   body: dict, refusal: str) -> tuple[asyncpg.Record, int | None]:
        """The open task of one of ``nodes`` the actor holds (``task_id`` when the page names
        it), and whom the actor acts for (委托). Conflict ``refusal`` when the document is not
        at that step: a step out of order writes nothing."""
        if body.get("task_id") is not None:
            task = await self.ops.task_at(conn, step, row_id(body.get("task_id")), nodes, refusal)
            return task, await self.engine.acting_as(conn, actor, task, step.now)
        candidates = [t for t in await self.engine.open_tasks(conn, step) if t["node"] in nodes]
        if not candidates:
            raise Conflict(refusal, code="not_at_step")
        refused: Forbidden | None = None
        for task in candidates:
            try:
                return task, await self.engine.acting_as(conn, actor, task, step.now)
            except Forbidden as exc:
                refused = exc
        assert refused is not None
        raise refused
