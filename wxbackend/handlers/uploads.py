"""Files in and out of the handlers.

Streamed uploads (``@tornado.web.stream_request_body``): the size a client declares is checked
before a byte is read, and the body is cut off at the limit whatever it declared — so an upload
route can take files larger than the front's general body limit without buffering a flood. And
sealed files going out to their one reader (:func:`send_file`)."""

from __future__ import annotations

from urllib.parse import quote

import tornado.web

from wxbackend.services.channels import attachments, images
from wxbackend.services.errors import InvalidInput, TooLarge

# A sealed file a person attaches to an item: a photo or a document.
FILE_LIMIT = max(images.MAX_UPLOAD_BYTES, attachments.MAX_BYTES)


class StreamedUpload:
    """Mixed into a handler (before the handler class) decorated with ``stream_request_body``.
    Call :meth:`start_upload` from ``initialize`` and :meth:`check_declared` from ``prepare``
    (after signing in); read the file with :meth:`upload_body`."""

    limit = 0           # bytes
    what = "文件"

    def start_upload(self) -> None:
        self._chunks: list[bytes] = []
        self._received = 0
        self._over = False

    def _too_large(self) -> TooLarge:
        return TooLarge(f"{self.what}不能超过 {self.limit >> 20} MB", code="upload_too_large")

    def check_declared(self) -> None:
        length = self.request.headers.get("Content-Length", "")  # type: ignore[attr-defined]
        if length.isascii() and length.isdigit() and int(length) > self.limit:
            raise self._too_large()
        self.request.connection.set_max_body_size(self.limit + 1)  # type: ignore[attr-defined]

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.limit:
            self._over = True
            self._chunks = []
        elif not self._over:
            self._chunks.append(chunk)

    def upload_body(self) -> bytes:
        if self._over:
            raise self._too_large()
        data = b"".join(self._chunks)
        self._chunks = []
        if not data:
            raise InvalidInput(f"请选择要上传的{self.what}", code="upload_empty")
        return data


def send_file(handler: tornado.web.RequestHandler, body: bytes, content_type: str, name: str) -> None:
    """A sealed file, opened for one reader: never cached, never run or shown as a page."""
    handler.set_header("Content-Type", content_type)
    handler.set_header("Cache-Control", "private, no-store")
    handler.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
    disposition = "inline" if content_type.startswith("image/") else "attachment"
    handler.set_header("Content-Disposition",
                       f"{disposition}; filename=\"file\"; filename*=UTF-8''{quote(name)}")
    handler.finish(body)
