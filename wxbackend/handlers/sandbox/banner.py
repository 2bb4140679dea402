"""Every page of the sandbox says it is one: the banner "演示环境，数据均为虚构" goes into each
HTML page as it leaves the server (the pages themselves stay those of production), and the pages
may be framed by the sandbox's own phone page (production's refuse every frame)."""

from __future__ import annotations

import tornado.web
from tornado.httputil import HTTPHeaders, HTTPServerRequest

BANNER_TEXT = "演示环境，数据均为虚构"
_STYLE = b'<link rel="stylesheet" href="/static/shared/sandbox-banner.css">'
_BANNER = ('<div class="sandbox-banner" role="note">' + BANNER_TEXT + "</div>").encode()


class SandboxBanner(tornado.web.OutputTransform):
    def __init__(self, request: HTTPServerRequest) -> None:
        pass

    def transform_first_chunk(self, status_code: int, headers: HTTPHeaders, chunk: bytes,
                              finishing: bool) -> tuple[int, HTTPHeaders, bytes]:
        if status_code != 200 or not headers.get("Content-Type", "").startswith("text/html"):
            return status_code, headers, chunk
        # The phone simulator shows the worker's pages in a frame of the sandbox's own page.
        if headers.get("X-Frame-Options") == "DENY":
            headers["X-Frame-Options"] = "SAMEORIGIN"
        if "Content-Security-Policy" in headers:
            headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
                "frame-ancestors 'none'", "frame-ancestors 'self'")
        changed = _with_banner(chunk)
        if changed != chunk:
            # A page read in pieces (a static file) announced its length with the first piece.
            if "Content-Length" in headers:
                headers["Content-Length"] = str(int(headers["Content-Length"]) + len(changed) - len(chunk))
            headers.pop("Etag", None)
        return status_code, headers, changed

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        return chunk


def _with_banner(page: bytes) -> bytes:
    head = page.find(b"</head>")
    body = page.find(b"<body")
    if head < 0 or body < 0:
        return page
    body_end = page.find(b">", body)
    if body_end < 0:
        return page
    return page[:head] + _STYLE + page[head:body_end + 1] + _BANNER + page[body_end + 1:]
