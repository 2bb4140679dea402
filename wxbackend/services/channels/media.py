"""Images and attachments cadres upload for their channel's articles.

An upload is checked and re-encoded with no pooled connection held (Pillow runs in this
library's own small thread pool, so a burst of 12-megapixel photos neither blocks the event loop
nor takes the threads other work uses), then stored by content and recorded in one short
transaction. The same upload by the same union is processed once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import asyncpg

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.channels.attachments import Checked, attachment_name, check_attachment
from wxbackend.services.channels.images import Processed, for_wechat, process_image
from wxbackend.services.channels.media_store import FileStore, S3Store, key_for
from wxbackend.services.clock import china_now
from wxbackend.services.errors import InvalidInput, NotFound, TooManyRequests
from wxbackend.store.channels import media as store

PERMISSION = "channel.publish"
# Attachments are also carried by notices and official documents.
ATTACHING = frozenset({PERMISSION, "notice.publish", "document.handle"})


def media_url(key: str) -> str:
    return f"/media/{key}"


def media_view(row: asyncpg.Record | dict) -> dict:
    variants = row["variants"]
    view = {"id": row["id"], "kind": row["kind"], "filename": row["filename"],
            "content_type": row["content_type"], "bytes": row["bytes"]}
    if row["kind"] == "image":
        view.update(width=row["width"], height=row["height"],
                    url=media_url(variants["page"]["key"]),
                    thumb_url=media_url(variants["thumb"]["key"]))
    else:
        view["url"] = media_url(variants["file"]["key"])
    return view


class MediaLibrary:
    def __init__(self, pool: asyncpg.Pool, files: FileStore | S3Store, *, audit: AuditTrail,
                 workers: int = 2, queue: int = 16,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self.files = files
        self._audit = audit
        self._now = now
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="images")
        # At most ``queue`` uploads wait for a thread; more are turned away, not queued forever.
        self._slots = asyncio.Semaphore(workers + queue)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn, *args):
        if self._slots.locked():
            raise TooManyRequests("上传的图片较多，请稍后再试", code="uploads_busy",
                                  headers={"Retry-After": "5"})
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def upload_image(self, actor: Actor, data: bytes, filename: str) -> dict:
        actor.require(PERMISSION)
        digest = hashlib.sha256(data).digest()
        async with self._pool.acquire() as conn:
            known = await store.by_upload(conn, actor.org_id, digest)
        if known is not None:
            return media_view(known)
        processed = await self._run(process_image, data)
        variants = {}
        for name, variant in processed.variants.items():
            key = key_for(variant.data, variant.ext)
            await self.files.put(key, variant.data)
            variants[name] = {"key": key, "type": variant.content_type, "width": variant.width,
                              "height": variant.height, "bytes": len(variant.data)}
        page = processed.variants["page"]
        name = attachment_name(filename or "图片", page.ext)
        return await self._record(actor, kind="image", digest=digest, filename=name,
                                  content_type=page.content_type, size=len(page.data),
                                  width=page.width, height=page.height, variants=variants)

    async def clean_image(self, data: bytes) -> Processed:
        """An uploaded photo checked and re-encoded (EXIF and location gone) on the image
        threads, for callers that keep it elsewhere (an appeal's photos are sealed, not public)."""
        return await self._run(process_image, data)

    async def clean_attachment(self, data: bytes, filename: str) -> Checked:
        return await self._run(check_attachment, data, filename)

    async def upload_attachment(self, actor: Actor, data: bytes, filename: str) -> dict:
        if not ATTACHING & actor.permissions:
            actor.require(PERMISSION)
        checked = check_attachment(data, filename)
        digest = hashlib.sha256(data).digest()
        key = key_for(data, checked.ext)
        await self.files.put(key, data)
        return await self._record(actor, kind="attachment", digest=digest,
                                  filename=checked.filename, content_type=checked.content_type,
                                  size=len(data), width=None, height=None,
                                  variants={"file": {"key": key, "type": checked.content_type,
                                                     "bytes": len(data)}})

    async def _record(self, actor: Actor, *, kind: str, digest: bytes, filename: str,
                      content_type: str, size: int, width: int | None, height: int | None,
                      variants: dict) -> dict:
        now = self._now()
        async with self._pool.acquire() as conn, conn.transaction():
            row = await store.insert(conn, kind=kind, upload_sha256=digest, org_id=actor.org_id,
                                     org_path=actor.org_path, filename=filename,
                                     content_type=content_type, size=size, width=width,
                                     height=height, variants=variants, uploaded_by=actor.id, now=now)
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username,
                                     org_id=actor.org_id, action=f"media.{kind}.upload",
                                     target=f"media:{row['id']}",
                                     detail={"bytes": size, "type": content_type}, ip=actor.ip)
        return media_view(row)

    async def wechat_copy(self, key: str, limit: int) -> bytes:
        """The stored file ``key`` as WeChat takes it in an article (JPEG/PNG under ``limit``)."""
        data = await self.files.get(key)
        return await self._run(for_wechat, data, limit)

    async def owned(self, conn: asyncpg.Connection, actor_path: str, ids: list[int],
                    kind: str) -> list[asyncpg.Record]:
        """The media ``ids`` of ``kind``, each uploaded inside the subtree at ``actor_path``."""
        if not ids:
            return []
        rows = {r["id"]: r for r in await store.many(conn, ids)}
        for media_id in ids:
            row = rows.get(media_id)
            if row is None or row["kind"] != kind or not (
                    row["org_path"] == actor_path or row["org_path"].startswith(actor_path + ".")):
                what = "图片" if kind == "image" else "附件"
                raise NotFound(f"{what} {media_id} 不存在或不属于本单位", code="media_not_found")
        return [rows[i] for i in ids]

    @staticmethod
    def require_kind(value: object, what: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidInput(f"{what}编号无效", code="invalid_media")
        return value
