"""Cadres write, review (三审) and publish their channel's articles.

The working copy moves draft → submitted → (first_passed, when the channel has a second review
level) → approved → live, or scheduled and then live at its time. A reviewer sends it back
(``returned``) with a reason. Nobody reviews an article they wrote or submitted, and the second
review is by someone other than the first. Publishing writes a revision that is never changed
afterwards: an edit to a live article is a new working copy, reviewed again, and becomes the next
revision while the page keeps showing the current one. Every step is audited and kept in the
article's history. Permissions: ``channel.publish`` (write, submit, publish, withdraw) and
``channel.review`` (review), both inside the cadre's subtree; the channel's union decides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.channels.article_forms import Working, clean_article, invalid
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.channels.sanitizing import plain_text
from wxbackend.services.channels.search_terms import document_terms, normalise
from wxbackend.services.clock import china_now
from wxbackend.services.errors import Conflict, Forbidden, NotFound
from wxbackend.store.channels import articles as store
from wxbackend.store.channels import channels as channels_store

PUBLISH, REVIEW = "channel.publish", "channel.review"
STAGES = ("draft", "submitted", "first_passed", "approved", "scheduled", "returned", "live")
STAGE_NAMES = {"draft": "草稿", "submitted": "待初审", "first_passed": "待复审", "approved": "待发布",
               "scheduled": "定时发布", "returned": "已退回", "live": "已发布"}
MAX_REASON = 200
MAX_SCHEDULE_DAYS = 90
LIST_LIMIT = 50


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def article_view(row: asyncpg.Record, *, history: list | None = None,
                 revisions: list | None = None) -> dict:
    view = {
        "id": row["id"], "channel_id": row["channel_id"], "channel_name": row["channel_name"],
        "stage": row["stage"], "stage_name": STAGE_NAMES[row["stage"]],
        "working": row["working"], "created_by": row["created_by_name"],
        "second_review": row["second_review"], "publish_at": _iso(row["publish_at"]),
        "live_revision": row["live_revision"], "published_at": _iso(row["published_at"]),
        "first_published_at": _iso(row["first_published_at"]),
        "withdrawn_at": _iso(row["withdrawn_at"]), "withdrawn_reason": row["withdrawn_reason"],
        "updated_at": _iso(row["updated_at"]), "page": f"/h5/a/{row['id']}",
    }
    if history is not None:
        view["history"] = [{"step": h["step"], "reason": h["reason"], "actor": h["actor"],
                            "at": _iso(h["at"])} for h in history]
    if revisions is not None:
        view["revisions"] = [{"number": r["number"], "title": r["title"],
                              "published_by": r["published_by"], "published_at": _iso(r["published_at"])}
                             for r in revisions]
    return view


def _reason(value: object, required: bool = True) -> str:
    reason = " ".join(value.split()) if isinstance(value, str) else ""
    if required and not reason:
        raise invalid("请填写理由", code="reason_missing")
    if len(reason) > MAX_REASON:
        raise invalid(f"理由不能超过 {MAX_REASON} 个字", code="reason_too_long")
    return reason


def searchable(fields: dict) -> tuple[list[str], str]:
    """What the search reads of a live revision: its terms and its normalised text (title,
    summary and the body's words)."""
    text = f"{fields['title']} {fields['summary']} {plain_text(fields['body'])}"
    return document_terms(text), normalise(text)


def revision_etag(article_id: int, fields: dict, published_at: datetime) -> str:
    blob = json.dumps([article_id, published_at.isoformat(), fields], ensure_ascii=False,
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class Articles:
    def __init__(self, pool: asyncpg.Pool, media: MediaLibrary, *, audit: AuditTrail,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._media = media
        self._audit = audit
        self._now = now
        # Told after an article goes live or is withdrawn (the reading cache forgets it).
        self.on_change: list[Callable[[int], None]] = []

    # --- shared checks --------------------------------------------------------------------------
    async def _channel(self, conn: asyncpg.Connection, actor: Actor, channel_id: int) -> asyncpg.Record:
        channel = await channels_store.get(conn, channel_id)
        if channel is None:
            raise NotFound("频道不存在", code="channel_not_found")
        actor.require_within(channel["org_path"])
        return channel

    async def _owned(self, conn: asyncpg.Connection, actor: Actor, article_id: int, *,
                     lock: bool = True) -> asyncpg.Record:
        row = await store.get(conn, article_id, lock=lock)
        if row is None or not actor.covers(row["org_path"]):
            # Another union's article is not even confirmed to exist.
            raise NotFound("文章不存在", code="article_not_found")
        return row

    async def _check_media(self, conn: asyncpg.Connection, actor: Actor, working: Working) -> None:
        fields = working.fields
        if fields["cover_id"] is not None:
            await self._media.owned(conn, actor.org_path, [fields["cover_id"]], "image")
        await self._media.owned(conn, actor.org_path, fields["attachments"], "attachment")

    async def _step(self, conn: asyncpg.Connection, actor: Actor | None, row: asyncpg.Record,
                    step: str, reason: str = "", detail: dict | None = None) -> None:
        await store.add_step(conn, row["id"], step, reason=reason,
                             actor_id=actor.id if actor else row["scheduled_by"], now=self._now())
        await self._audit.record(
            conn, actor_id=actor.id if actor else None, actor=actor.username if actor else "system",
            org_id=row["org_id"], action=f"article.{step}", target=f"article:{row['id']}",
            detail={"reason": reason, **(detail or {})} if reason or detail else {},
            ip=actor.ip if actor else "")

    async def _view(self, conn: asyncpg.Connection, article_id: int, **extra) -> dict:
        row = await store.get(conn, article_id)
        return {**article_view(row, history=await store.steps(conn, article_id),
                               revisions=await store.revisions(conn, article_id)), **extra}

    # --- writing --------------------------------------------------------------------------------
    async def create(self, actor: Actor, channel_id: int, body: dict) -> dict:
        actor.require(PUBLISH)
        working = clean_article(body)
        async with self._pool.acquire() as conn, conn.transaction():
            channel = await self._channel(conn, actor, channel_id)
            await self._check_media(conn, actor, working)
            article_id = await store.insert(conn, channel_id=channel_id,
                                            org_path=channel["org_path"], created_by=actor.id,
                                            working=working.fields, now=self._now())
            row = await store.get(conn, article_id)
            await self._step(conn, actor, row, "create")
            return await self._view(conn, article_id, warnings=working.warnings())

    async def update(self, actor: Actor, article_id: int, body: dict) -> dict:
        """Replace the working copy. Whatever review it had passed is void: it is a draft again
        (a live article stays live, unchanged, until the new copy is published)."""
        actor.require(PUBLISH)
        working = clean_article(body)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._owned(conn, actor, article_id)
            await self._check_media(conn, actor, working)
            await store.set_working(conn, article_id, working.fields, self._now())
            await self._step(conn, actor, row, "edit", detail={"was": row["stage"]})
            return await self._view(conn, article_id, warnings=working.warnings())

    async def get(self, actor: Actor, article_id: int) -> dict:
        if not actor.permissions & {PUBLISH, REVIEW}:
            actor.require(PUBLISH)
        async with self._pool.acquire() as conn:
            await self._owned(conn, actor, article_id, lock=False)
            return await self._view(conn, article_id)

    async def manage_list(self, actor: Actor, *, channel_id: int | None, stage: str | None,
                          before_id: int | None) -> list[dict]:
        if not actor.permissions & {PUBLISH, REVIEW}:
            actor.require(PUBLISH)
        if stage is not None and stage not in STAGES:
            raise invalid("未知的状态", code="invalid_stage")
        async with self._pool.acquire() as conn:
            rows = await store.within(conn, actor.org_path, channel_id=channel_id, stage=stage,
                                      before_id=before_id, limit=LIST_LIMIT)
        # A list shows titles and stages; each body (up to 20,000 characters) comes with the article.
        return [{**view, "working": {k: v for k, v in view["working"].items() if k != "body"}}
                for view in map(article_view, rows)]

    # --- review -------------------------------------------------------------------------------
    async def submit(self, actor: Actor, article_id: int) -> dict:
        actor.require(PUBLISH)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._owned(conn, actor, article_id)
            if row["stage"] not in ("draft", "returned"):
                raise Conflict(f"文章{STAGE_NAMES[row['stage']]}，不能再次送审", code="article_stage")
            await store.set_stage(conn, article_id, "submitted", self._now(), submitted_by=actor.id)
            await self._step(conn, actor, row, "submit")
            return await self._view(conn, article_id)

    async def review(self, actor: Actor, article_id: int, *, approve: bool,
                     reason: object = "") -> dict:
        actor.require(REVIEW)
        text = _reason(reason, required=not approve)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._owned(conn, actor, article_id)
            if row["stage"] not in ("submitted", "first_passed"):
                raise Conflict("文章不在待审状态", code="article_stage")
            if actor.id in (row["created_by"], row["submitted_by"]):
                raise Forbidden("不能审核自己撰写或送审的文章", code="self_review")
            second = row["stage"] == "first_passed"
            if second and actor.id == row["first_reviewer"]:
                raise Forbidden("复审须由初审以外的人进行", code="same_reviewer")
            now = self._now()
            if not approve:
                await store.set_stage(conn, article_id, "returned", now)
                await self._step(conn, actor, row, "return", text)
            elif second or not row["second_review"]:
                await store.set_stage(conn, article_id, "approved", now,
                                      first_reviewer=None if second else actor.id)
                await self._step(conn, actor, row, "second_approve" if second else "approve", text)
            else:
                await store.set_stage(conn, article_id, "first_passed", now, first_reviewer=actor.id)
                await self._step(conn, actor, row, "first_approve", text)
            return await self._view(conn, article_id)

    # --- publishing ---------------------------------------------------------------------------
    async def publish(self, actor: Actor, article_id: int, *, at: datetime | None = None) -> dict:
        """Publish the approved copy now, or at ``at`` (China time, within 90 days)."""
        actor.require(PUBLISH)
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._owned(conn, actor, article_id)
            if row["stage"] != "approved":
                raise Conflict("文章须审核通过后才能发布", code="article_not_approved")
            if at is not None and at > now:
                if (at - now).days >= MAX_SCHEDULE_DAYS:
                    raise invalid(f"定时发布须在 {MAX_SCHEDULE_DAYS} 天以内", code="schedule_too_far")
                await store.set_stage(conn, article_id, "scheduled", now, publish_at=at,
                                      scheduled_by=actor.id)
                await self._step(conn, actor, row, "schedule", detail={"at": at.isoformat()})
            else:
                await self._go_live(conn, actor, row, now)
            view = await self._view(conn, article_id)
        self._changed(article_id)
        return view

    async def unschedule(self, actor: Actor, article_id: int) -> dict:
        actor.require(PUBLISH)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._owned(conn, actor, article_id)
            if row["stage"] != "scheduled":
                raise Conflict("文章没有定时发布", code="article_stage")
            await store.set_stage(conn, article_id, "approved", self._now())
            await self._step(conn, actor, row, "unschedule")
            return await self._view(conn, article_id)

    async def _go_live(self, conn: asyncpg.Connection, actor: Actor | None, row: asyncpg.Record,
                       now: datetime) -> int:
        fields = row["working"]
        published_by = actor.id if actor else row["scheduled_by"]
        revision = await store.add_revision(
            conn, row["id"], title=fields["title"], author=fields["author"],
            summary=fields["summary"], cover_id=fields["cover_id"], body=fields["body"],
            attachments=fields["attachments"], etag=revision_etag(row["id"], fields, now),
            published_by=published_by, now=now)
        terms, text = searchable(fields)
        await store.go_live(conn, row["id"], revision, search_terms=terms, search_text=text, now=now)
        await self._step(conn, actor, row, "publish", detail={"revision": revision})
        return revision

    async def publish_due(self) -> int:
        """Publish the scheduled articles whose time has come (the worker calls this)."""
        now = self._now()
        published = 0
        async with self._pool.acquire() as conn:
            due = await store.due(conn, now)
        for article_id in due:
            async with self._pool.acquire() as conn, conn.transaction():
                row = await store.get(conn, article_id, lock=True)
                if row is None or row["stage"] != "scheduled" or row["publish_at"] > now:
                    continue  # edited, cancelled or published by another worker meanwhile
                await self._go_live(conn, None, row, now)
            self._changed(article_id)
            published += 1
        return published

    async def withdraw(self, actor: Actor, article_id: int, reason: object) -> dict:
        if REVIEW not in actor.permissions:
            actor.require(PUBLISH)
        text = _reason(reason)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._owned(conn, actor, article_id)
            if row["live_revision"] is None:
                raise Conflict("文章没有发布，无需撤回", code="article_not_live")
            await store.withdraw(conn, article_id, text, self._now())
            await self._step(conn, actor, row, "withdraw", text,
                             detail={"revision": row["live_revision"]})
            view = await self._view(conn, article_id)
        self._changed(article_id)
        return view

    def _changed(self, article_id: int) -> None:
        for listener in self.on_change:
            listener(article_id)
