"""Uploads of article images and attachments (``/admin/v1/media/*``), and the files themselves
(``/media/<sha256>.<ext>``), which never change and are cached for a year.

Uploads are streamed: the size a client declares is checked once the cadre is known, before a
byte of the body is read, and the body is cut off at the limit whatever it declared.
"""

from __future__ import annotations

from urllib.parse import quote

import tornado.web

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import DEFAULT_HEADERS, BaseHandler, QuietRequestLog, tag_request
from wxbackend.handlers.uploads import StreamedUpload
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.channels import attachments, images
from wxbackend.services.channels.attachments import attachment_name
from wxbackend.services.channels.media import ATTACHING, PERMISSION, MediaLibrary
from wxbackend.services.channels.media_store import (
    KEY,
    TYPES,
    FileStore,
    MediaMissing,
    S3Store,
    fan_out,
)
from wxbackend.services.errors import NotFound


@tornado.web.stream_request_body
class UploadHandler(StreamedUpload, AdminHandler):
    permissions: frozenset[str] = frozenset({PERMISSION})   # any one of them may upload

    def initialize(self, cadres: CadreService, media: MediaLibrary) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.media = media
        self.start_upload()

    async def prepare(self) -> None:
        await super().prepare()
        if not self.permissions & self.actor.permissions:
            self.actor.require(PERMISSION)
        self.check_declared()

    def _body(self) -> bytes:
        return self.upload_body()


class ImageUploadHandler(UploadHandler):
    route = "/admin/v1/media/images"
    limit = images.MAX_UPLOAD_BYTES
    what = "图片"

    async def post(self) -> None:
        self.write_json({"media": await self.media.upload_image(
            self.actor, self._body(), self.get_query_argument("filename", ""))}, 201)


class AttachmentUploadHandler(UploadHandler):
    route = "/admin/v1/media/attachments"
    permissions = ATTACHING
    limit = attachments.MAX_BYTES
    what = "附件"

    async def post(self) -> None:
        self.write_json({"media": await self.media.upload_attachment(
            self.actor, self._body(), self.get_query_argument("filename", ""))}, 201)


DOWNLOADS = {"pdf", "docx", "xlsx"}


class MediaFileHandler(QuietRequestLog, tornado.web.StaticFileHandler):
    """``/media/<key>``: a content-addressed file. Documents are always downloads, under the
    name the page gives in ``?name=``; nothing here is ever run or shown as a page."""

    route = "/media/{key}"

    def initialize(self, files: FileStore) -> None:  # type: ignore[override]
        super().initialize(path=str(files.root))
        self.files = files

    def prepare(self) -> None:
        tag_request(self)

    def set_default_headers(self) -> None:
        for name, value in DEFAULT_HEADERS:
            self.set_header(name, value)
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")

    def parse_url_path(self, url_path: str) -> str:
        if not KEY.match(url_path):
            raise tornado.web.HTTPError(404)
        return self.files.relative(url_path)

    def get_cache_time(self, path: str, modified: object, mime_type: str) -> int:
        return 365 * 86400

    def set_extra_headers(self, path: str) -> None:
        _download_headers(self, path.rsplit("/", 1)[-1])


def _download_headers(handler: tornado.web.RequestHandler, key: str) -> None:
    handler.set_header("Cache-Control", "public, max-age=31536000, immutable")
    ext = key.rsplit(".", 1)[-1]
    if ext in DOWNLOADS:
        name = attachment_name(handler.get_query_argument("name", ""), ext)
        handler.set_header("Content-Disposition",
                           f"attachment; filename=\"file.{ext}\"; filename*=UTF-8''{quote(name)}")


class StoredMediaHandler(BaseHandler):
    """``/media/<key>`` when files are in an object store: a redirect to where readers fetch them
    (``s3_public_url``), or, without one, the file relayed from the bucket."""

    route = "/media/{key}"

    def initialize(self, files: S3Store) -> None:  # type: ignore[override]
        self.files = files

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")

    async def get(self, key: str) -> None:
        if not KEY.match(key):
            raise NotFound("文件不存在", code="media_not_found")
        if self.files.public_base:
            self.set_header("Cache-Control", "public, max-age=31536000, immutable")
            self.redirect(f"{self.files.public_base}/{fan_out(key)}", status=301)
            return
        if self.request.headers.get("If-None-Match") == f'"{key}"':
            self.set_status(304)
            self.finish()
            return
        try:
            data = await self.files.get(key)
        except MediaMissing:
            raise NotFound("文件不存在", code="media_not_found") from None
        self.set_header("Content-Type", TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream"))
        self.set_header("ETag", f'"{key}"')
        _download_headers(self, key)
        self.finish(data)


def routes(cadres: CadreService, media: MediaLibrary) -> list:
    files = media.files
    serve = (MediaFileHandler, {"files": files}) if isinstance(files, FileStore) \
        else (StoredMediaHandler, {"files": files})
    return [
        (ImageUploadHandler.route, ImageUploadHandler, {"cadres": cadres, "media": media}),
        (AttachmentUploadHandler.route, AttachmentUploadHandler, {"cadres": cadres, "media": media}),
        (r"/media/([^/]+)", *serve),
    ]
