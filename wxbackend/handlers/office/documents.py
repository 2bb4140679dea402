"""``/admin/v1/documents*`` and ``/admin/v1/document-office``: drafting and registering documents,
their own steps (送审, 签发, 编号, 用印, 分发; 登记, 批办), a document's page, the registry of a
year, a cadre's drafts and steps, and a union's document settings."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.office.documents import Documents

BODY_LIMIT = 262_144   # a document's text is at most 50,000 characters


class DocumentHandler(AdminHandler):
    def initialize(self, cadres: CadreService, documents: Documents) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.documents = documents


class OfficeHandler(DocumentHandler):
    route = "/admin/v1/document-office"

    async def get(self) -> None:
        self.write_json(await self.documents.office(self.actor))

    async def put(self) -> None:
        self.write_json(await self.documents.set_office(self.actor, self.json_body()))


class DocumentsHandler(DocumentHandler):
    route = "/admin/v1/documents"

    async def get(self) -> None:
        self.write_json(await self.documents.registry(
            self.actor, direction=self.get_query_argument("direction", "out"),
            year=self.int_argument("year"), org_id=self.int_argument("org_id"),
            search=self.get_query_argument("q", "") or None,
            limit=self.int_argument("limit", 50) or 50, offset=self.int_argument("offset", 0) or 0))

    async def post(self) -> None:
        self.write_json(await self.documents.draft(self.actor, self.json_body(BODY_LIMIT)), 201)


class IncomingHandler(DocumentHandler):
    route = "/admin/v1/documents/incoming"

    async def post(self) -> None:
        self.write_json(await self.documents.receive(self.actor, self.json_body(BODY_LIMIT)), 201)


class MineHandler(DocumentHandler):
    route = "/admin/v1/documents/mine"

    async def get(self) -> None:
        self.write_json(await self.documents.mine(self.actor))


class OneDocumentHandler(DocumentHandler):
    route = "/admin/v1/documents/{id}"

    async def get(self, document_id: str) -> None:
        self.write_json(await self.documents.view(self.actor, int(document_id)))

    async def put(self, document_id: str) -> None:
        self.write_json(await self.documents.edit(self.actor, int(document_id),
                                                  self.json_body(BODY_LIMIT)))


class DocumentActionHandler(DocumentHandler):
    route = "/admin/v1/documents/{id}/actions"

    async def post(self, document_id: str) -> None:
        self.write_json({"result": await self.documents.act(self.actor, int(document_id),
                                                            self.json_body(65_536))})


def routes(cadres: CadreService, documents: Documents) -> list:
    return route_table((OfficeHandler, DocumentsHandler, IncomingHandler, MineHandler,
                        OneDocumentHandler, DocumentActionHandler),
                       {"cadres": cadres, "documents": documents})
