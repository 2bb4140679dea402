"""Pages served from ``static/``: the H5 pages opened inside WeChat and the cadre console."""

from __future__ import annotations

from pathlib import Path

import tornado.web

from wxbackend.handlers.base import DEFAULT_HEADERS, NotFoundHandler, QuietRequestLog, tag_request

STATIC_ROOT = Path(__file__).resolve().parent.parent.parent / "static"

# The pages load only their own scripts and styles, from files (no inline code, no handlers in
# attributes), so an injected script or style cannot run; images may be data: URLs (the icons in
# the stylesheets) or blobs. No other site may frame them (clickjacking of the console).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
    "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'"))
PAGE_HEADERS = (("Content-Security-Policy", CONTENT_SECURITY_POLICY), ("X-Frame-Options", "DENY"))


class PageHandler(QuietRequestLog, tornado.web.StaticFileHandler):
    def prepare(self) -> None:
        tag_request(self)

    def set_default_headers(self) -> None:
        for name, value in (*DEFAULT_HEADERS, *PAGE_HEADERS):
            self.set_header(name, value)

    def set_extra_headers(self, path: str) -> None:
        if path.endswith(".html"):
            self.set_header("Cache-Control", "no-cache")


# The console's article editor is a same-origin frame: inline styles are what pasted articles
# are made of, so they may apply there; no script may run in it at all (the console drives it).
EDITOR_POLICY = "; ".join((
    "default-src 'none'", "img-src 'self' data: blob:", "style-src 'self' 'unsafe-inline'",
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'self'"))


class EditorPageHandler(PageHandler):
    def set_default_headers(self) -> None:
        for name, value in DEFAULT_HEADERS:
            self.set_header(name, value)
        self.set_header("Content-Security-Policy", EDITOR_POLICY)
        self.set_header("X-Frame-Options", "SAMEORIGIN")


def routes(static_root: Path = STATIC_ROOT) -> list:
    return [
        # The H5 pages' API is not a page: an unknown path there gets the JSON 404, never the
        # static handler's HTML 404 or 405.
        (r"/h5/api/.*", NotFoundHandler),
        (r"/h5/(.*)", PageHandler, {"path": str(static_root / "h5"),
                                    "default_filename": "index.html"}),
        (r"/admin/()", PageHandler, {"path": str(static_root / "admin"),
                                     "default_filename": "index.html"}),
        # what a member card's QR code opens
        (r"/admin/(card\.html)", PageHandler, {"path": str(static_root / "admin")}),
        # the article editor's frame
        (r"/admin/(editor\.html)", EditorPageHandler, {"path": str(static_root / "admin")}),
        # a venue's screen showing the rotating check-in code
        (r"/admin/(venue\.html)", PageHandler, {"path": str(static_root / "admin")}),
        # what a worker's redemption code opens: the phone page of the merchant's staff
        (r"/verify/()", PageHandler, {"path": str(static_root / "verify"),
                                      "default_filename": "index.html"}),
        (r"/static/(.*)", PageHandler, {"path": str(static_root)}),
    ]
