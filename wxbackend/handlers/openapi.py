"""``/api/v1/openapi.json``, ``/mp/v1/openapi.json`` and ``/admin/v1/openapi.json``: the API
contracts, served as written."""

from __future__ import annotations

from importlib import resources

from wxbackend.handlers.base import BaseHandler

DOCUMENTS = {
    "/api/v1/openapi.json": ("wxbackend.data", "openapi_api_v1.json"),
    "/mp/v1/openapi.json": ("miniprogram_api", "openapi.json"),
    "/admin/v1/openapi.json": ("wxbackend.data", "openapi_admin_v1.json"),
}


def load(path: str) -> bytes:
    package, name = DOCUMENTS[path]
    return resources.files(package).joinpath(name).read_bytes()


class OpenAPIHandler(BaseHandler):
    def initialize(self, document: bytes) -> None:
        self.document = document

    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(self.document)


def routes() -> list:
    return [(path, type("OpenAPI", (OpenAPIHandler,), {"route": path}), {"document": load(path)})
            for path in DOCUMENTS]
