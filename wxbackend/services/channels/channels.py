"""The channels (频道) cadres run: the province's, one per city (市州) union and one per
provincial industry union, made by ``wxbackend seed``. A channel belongs to its union; its
cadres see and manage it inside their subtree, and the union above sees it too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import china_now
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.store.channels import channels as store

MANAGE = frozenset({"channel.publish", "channel.review"})
MODE_NAMES = {"common": "通用版", "self_built": "自建（已接入）"}


def manage_view(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "slug": row["slug"], "name": row["name"], "org_id": row["org_id"],
            "org_name": row["org_name"], "org_kind": row["org_kind"], "mode": row["mode"],
            "mode_name": MODE_NAMES[row["mode"]],
            "entrance_url": row["entrance_url"], "second_review": row["second_review"],
            "page": f"/h5/c/{row['slug']}"}


class Channels:
    def __init__(self, pool: asyncpg.Pool, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._audit = audit
        self._now = now

    @staticmethod
    def require_any(actor: Actor) -> None:
        if not actor.permissions & MANAGE:
            actor.require("channel.publish")

    async def manage_list(self, actor: Actor) -> list[dict]:
        """The channels of unions in the actor's subtree (a city's cadres see their city's; the
        platform office sees every one)."""
        self.require_any(actor)
        async with self._pool.acquire() as conn:
            rows = await store.listed(conn, actor.org_path)
        return [manage_view(r) for r in rows]

    async def owned(self, conn: asyncpg.Connection, actor: Actor, channel_id: int, *,
                    lock: bool = False) -> asyncpg.Record:
        row = await store.get(conn, channel_id, lock=lock)
        if row is None or not actor.covers(row["org_path"]):
            raise NotFound("频道不存在", code="channel_not_found")
        return row

    async def get(self, actor: Actor, channel_id: int) -> dict:
        self.require_any(actor)
        async with self._pool.acquire() as conn:
            return manage_view(await self.owned(conn, actor, channel_id))

    async def configure(self, actor: Actor, channel_id: int, body: dict) -> dict:
        """``second_review``: whether articles need a second review level (三审) before
        publishing. Decided by the channel's reviewers."""
        actor.require("channel.review")
        if not isinstance(body, dict) or set(body) != {"second_review"} or not isinstance(
                body["second_review"], bool):
            raise InvalidInput("只能设置 second_review（true 或 false）", code="invalid_channel_settings")
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self.owned(conn, actor, channel_id, lock=True)
            await store.set_settings(conn, channel_id, second_review=body["second_review"],
                                     now=self._now())
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=row["org_id"], action="channel.configure",
                                     target=f"channel:{channel_id}",
                                     detail={"second_review": body["second_review"]}, ip=actor.ip)
            return manage_view(await store.get(conn, channel_id))
