"""The sandbox's own page (``/sandbox/``) and what it reads. Mounted only by ``wxbackend demo``:
a production server never builds these routes."""

from __future__ import annotations

from pathlib import Path

from wxbackend.handlers.base import BaseHandler
from wxbackend.handlers.sandbox import phone
from wxbackend.handlers.static import STATIC_ROOT, PageHandler
from wxbackend.sandbox.guide import Guide
from wxbackend.sandbox.kit import Sandbox
from wxbackend.sandbox.tours import as_data


class PeopleHandler(BaseHandler):
    route = "/sandbox/api/people"

    def initialize(self, guide: Guide) -> None:
        self.guide = guide

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write_json(self.guide.people())


class ToursHandler(BaseHandler):
    route = "/sandbox/api/tours"

    def get(self) -> None:
        self.write_json({"tours": as_data()})


def routes(sandbox: Sandbox, static_root: Path = STATIC_ROOT) -> list:
    return [
        (r"/sandbox/api/people", PeopleHandler, {"guide": sandbox.guide}),
        (r"/sandbox/api/tours", ToursHandler),
        *phone.routes(sandbox),
        (r"/sandbox/()", PageHandler, {"path": str(static_root / "sandbox"),
                                       "default_filename": "index.html"}),
        (r"/sandbox/([a-z]+\.(?:html|js|css))", PageHandler, {"path": str(static_root / "sandbox")}),
    ]
