"""How modules that do not run on the engine report into its events, so one completion rate
covers them: the membership reviews (join, certification disputes, transfers, foundings) report
an application's intake with its time limit, and its decision or withdrawal."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from wxbackend.services.casework.modules import MEMBERSHIP_REVIEWS
from wxbackend.store.casework import events as store


async def application_filed(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    """``row``: the application as filed (``application_rows``), inside the filing's transaction."""
    ref = f"application:{row['id']}"
    common = {"ref": ref, "item_id": None, "module": MEMBERSHIP_REVIEWS.code,
              "org_path": row["org_path"], "at": row["created_at"],
              "actor_account_id": row["account_id"], "detail": {"kind": row["kind"]}}
    await store.append(conn, kind="opened", **common)
    await store.append(conn, kind="due", due_at=row["due_at"], **common)


async def application_finished(conn: asyncpg.Connection, row: asyncpg.Record, *,
                               actor_cadre_id: int | None = None, at: datetime | None = None) -> None:
    """Decided (approved or rejected: closed, at its review time) or withdrawn by the worker at
    ``at`` (cancelled: it leaves the denominator, like a withdrawn hotline call)."""
    withdrawn = row["status"] == "withdrawn"
    at = at if withdrawn and at is not None else row["reviewed_at"]
    await store.append(
        conn, ref=f"application:{row['id']}", item_id=None, module=MEMBERSHIP_REVIEWS.code,
        org_path=row["org_path"], kind="cancelled" if withdrawn else "closed", at=at,
        actor_cadre_id=actor_cadre_id,
        detail={"kind": row["kind"], "outcome": row["status"],
                "on_time": not withdrawn and at <= row["due_at"]})
