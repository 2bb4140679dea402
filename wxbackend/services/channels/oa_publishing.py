"""Articles to the Official Account: published (``freepublish``: a permanent article URL for
menus and replies, pushed to nobody) or mass-sent (群发: pushed to every follower, at most
``[channels] mass_sends_per_month`` a month — a service account's followers get 4).

Only a live revision goes, and each revision goes once each way. WeChat takes body images only
from its own servers, so each of ours is uploaded once (``media/uploadimg``) and the body's
addresses rewritten; the cover becomes a permanent image. The calls to WeChat run with no pooled
connection held. Publishing finishes later at WeChat: the worker polls ``freepublish/get``, and
the ``PUBLISHJOBFINISH`` event only makes it look sooner.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.clock import CHINA, china_now
from wxbackend.services.errors import Conflict, InvalidInput, NotFound, Unavailable
from wxbackend.store.channels import articles as articles_store
from wxbackend.store.channels import media as media_store
from wxbackend.store.channels import oa as store
from wxbackend.wechat.api import (
    CLIENT_MSG_ID_EXISTS,
    NO_MASS_QUOTA,
    OA_IMAGE_MAX_BYTES,
    PUBLISH_RUNNING,
    PUBLISH_SUCCESS,
    WeChatAPI,
    WeChatAPIError,
    WeChatUnreachable,
)

log = logging.getLogger(__name__)

PUBLISH = "channel.publish"
FAILED_STATUS = {2: "原创声明失败", 3: "发布失败", 4: "平台审核不通过", 5: "已被用户删除",
                 6: "已被系统封禁"}
_OWN_IMAGE = re.compile(r'src="/media/([0-9a-f]{64}\.(?:jpg|png|webp|gif))"')


def publication_view(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "revision": row["revision"], "mass_send": row["mass_send"],
            "status": row["status"], "article_url": row["article_url"], "failure": row["failure"],
            "month": row["month"], "updated_at": row["updated_at"].isoformat()}


class OAPublishing:
    def __init__(self, pool: asyncpg.Pool, api: WeChatAPI, media: MediaLibrary, *,
                 audit: AuditTrail, public_url: str, mass_sends_per_month: int,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._api = api
        self._media = media
        self._audit = audit
        self._public = public_url.rstrip("/")
        self._allowance = mass_sends_per_month
        self._now = now

    async def send(self, actor: Actor, article_id: int, *, mass_send: bool) -> dict:
        actor.require(PUBLISH)
        now = self._now()
        month = now.astimezone(CHINA).strftime("%Y-%m")
        async with self._pool.acquire() as conn, conn.transaction():
            article = await articles_store.get(conn, article_id, lock=True)
            if article is None or not actor.covers(article["org_path"]):
                raise NotFound("文章不存在", code="article_not_found")
            page = await articles_store.live_page(conn, article_id)
            if page is None:
                raise Conflict("只有已发布的文章才能发到公众号", code="article_not_live")
            if page["cover_id"] is None:
                raise InvalidInput("发到公众号的文章须有封面图片", code="oa_cover_missing")
            if mass_send:
                # Locking the article row above does not serialise two articles: the count
                # and the claim happen under one advisory lock for the month.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('oa-mass-send'))")
                if await store.mass_sends_in(conn, month) >= self._allowance:
                    raise Conflict(f"本月的群发次数已用完（每月 {self._allowance} 次）",
                                   code="oa_mass_send_used_up")
            row = await store.claim(conn, article_id=article_id, revision=page["revision"],
                                    mass_send=mass_send, month=month, created_by=actor.id, now=now)
            if row is None:
                raise Conflict("这一版本已经" + ("群发过" if mass_send else "发布到公众号"),
                               code="oa_already_sent")
            cover = (await media_store.many(conn, [page["cover_id"]]))[0]
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=article["org_id"],
                                     action="article.oa_mass_send" if mass_send else "article.oa_publish",
                                     target=f"article:{article_id}",
                                     detail={"revision": page["revision"]}, ip=actor.ip)
        try:
            draft = await self._draft(page, cover)
            if mass_send:
                answer = await self._api.mass_send_all(
                    draft, client_msg_id=f"article-{article_id}-r{page['revision']}")
                fields = {"status": "sent", "draft_media_id": draft, "msg_id": answer.get("msg_id")}
                if answer.get("errcode") == CLIENT_MSG_ID_EXISTS:
                    log.info("mass send of article %s was already made", article_id)
            else:
                answer = await self._api.freepublish_submit(draft)
                fields = {"status": "publishing", "draft_media_id": draft,
                          "publish_id": str(answer["publish_id"])}
        except (WeChatAPIError, WeChatUnreachable, InvalidInput) as exc:
            await self._set(row["id"], status="failed", failure=_failure(exc))
            raise _refusal(exc) from None
        await self._set(row["id"], **fields)
        async with self._pool.acquire() as conn:
            return publication_view(next(r for r in await store.of_article(conn, article_id)
                                         if r["id"] == row["id"]))

    async def _draft(self, page: asyncpg.Record, cover: asyncpg.Record) -> str:
        body = page["body"]
        for key in dict.fromkeys(_OWN_IMAGE.findall(body)):
            body = body.replace(f'src="/media/{key}"', f'src="{await self._oa_image(key)}"')
        thumb = cover["oa_media_id"]
        if thumb is None:
            data = await self._media.wechat_copy(cover["variants"]["page"]["key"], 10 << 20)
            thumb = await self._api.add_permanent_image(data, cover["filename"])
            async with self._pool.acquire() as conn:
                await media_store.set_oa(conn, cover["id"], oa_media_id=thumb)
        return await self._api.draft_add([{
            "article_type": "news", "title": page["title"], "author": page["author"] or None,
            "digest": page["summary"] or None, "content": body,
            "content_source_url": f"{self._public}/h5/a/{page['id']}", "thumb_media_id": thumb,
            "need_open_comment": 0, "only_fans_can_comment": 0}])

    async def _oa_image(self, key: str) -> str:
        """The WeChat address of one of our body images, uploaded once."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, oa_url FROM media WHERE variants->'page'->>'key' = $1 LIMIT 1", key)
        if row is not None and row["oa_url"]:
            return row["oa_url"]
        url = await self._api.upload_article_image(
            await self._media.wechat_copy(key, OA_IMAGE_MAX_BYTES), key)
        if row is not None:
            async with self._pool.acquire() as conn:
                await media_store.set_oa(conn, row["id"], oa_url=url)
        return url

    async def _set(self, row_id: int, **fields) -> None:
        async with self._pool.acquire() as conn:
            await store.update(conn, row_id, self._now(), **fields)

    async def poll(self) -> int:
        """Ask WeChat how the publications in progress ended; the worker calls this."""
        async with self._pool.acquire() as conn:
            pending = await store.publishing(conn)
        done = 0
        for row in pending:
            done += await self._check(row)
        return done

    async def publish_finished(self, publish_id: str) -> int:
        """The ``PUBLISHJOBFINISH`` event: look at that publication now (the event is a hint)."""
        async with self._pool.acquire() as conn:
            row = await store.by_publish_id(conn, publish_id)
        return await self._check(row) if row is not None and row["status"] == "publishing" else 0

    async def _check(self, row: asyncpg.Record) -> int:
        try:
            answer = await self._api.freepublish_get(row["publish_id"])
        except (WeChatAPIError, WeChatUnreachable) as exc:
            log.warning("freepublish/get %s failed: %s", row["publish_id"], exc)
            return 0
        status = int(answer.get("publish_status", PUBLISH_RUNNING))
        if status == PUBLISH_RUNNING:
            return 0
        if status == PUBLISH_SUCCESS:
            items = (answer.get("article_detail") or {}).get("item") or [{}]
            await self._set(row["id"], status="published", article_url=items[0].get("article_url"))
        else:
            await self._set(row["id"], status="failed",
                            failure=FAILED_STATUS.get(status, f"发布失败（状态 {status}）"))
        return 1

    async def of_article(self, actor: Actor, article_id: int) -> list[dict]:
        actor.require(PUBLISH)
        async with self._pool.acquire() as conn:
            article = await articles_store.get(conn, article_id)
            if article is None or not actor.covers(article["org_path"]):
                raise NotFound("文章不存在", code="article_not_found")
            return [publication_view(r) for r in await store.of_article(conn, article_id)]


def publish_id_of(fields: dict) -> str:
    """The publish_id of a ``PUBLISHJOBFINISH`` push (inside ``PublishEventInfo``)."""
    info = fields.get("PublishEventInfo")
    value = info.get("publish_id") if isinstance(info, dict) else fields.get("publish_id")
    return str(value or "")


def _failure(exc: Exception) -> str:
    if isinstance(exc, WeChatAPIError):
        return f"微信返回 {exc.errcode}：{exc.errmsg}"
    if isinstance(exc, InvalidInput):
        return exc.message
    return "微信接口无法访问"


def _refusal(exc: Exception) -> Exception:
    if isinstance(exc, InvalidInput):
        return exc
    if isinstance(exc, WeChatAPIError) and exc.errcode == NO_MASS_QUOTA:
        return Conflict("公众号本月的群发次数已用完", code="oa_mass_send_used_up")
    if isinstance(exc, WeChatAPIError):
        return Conflict(f"公众号拒绝了这篇文章：{_failure(exc)}", code="oa_refused")
    return Unavailable("暂时无法连接微信，请稍后再试", code="wechat_unreachable")
