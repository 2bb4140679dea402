"""``/admin/v1/offerings``, ``/admin/v1/campaigns``: cadres run activities and inclusive
services (permissions and subtree checked in :mod:`wxbackend.services.activities.catalogue`)."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.services.activities.catalogue import Catalogue
from wxbackend.services.activities.participants import Participants
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.errors import InvalidInput


class ItemsHandler(AdminHandler):
    def initialize(self, cadres: CadreService, catalogue: Catalogue,  # type: ignore[override]
                   participants: Participants) -> None:
        super().initialize(cadres)
        self.catalogue = catalogue
        self.participants = participants


class OfferingsHandler(ItemsHandler):
    route = "/admin/v1/offerings"

    async def get(self) -> None:
        status = self.get_query_argument("status", "") or None
        if status not in (None, "draft", "published", "closed"):
            raise InvalidInput("状态只能是 draft、published 或 closed", code="invalid_status")
        self.write_json({"offerings": await self.catalogue.manage_list(
            self.actor, kind=self.get_query_argument("kind", "") or None, status=status,
            before_id=self.int_argument("before"))})

    async def post(self) -> None:
        self.write_json({"offering": await self.catalogue.create(self.actor, self.json_body())}, 201)


class OfferingHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}"

    async def get(self, offering_id: str) -> None:
        self.write_json({"offering": await self.catalogue.manage_get(self.actor, int(offering_id))})

    async def patch(self, offering_id: str) -> None:
        self.write_json({"offering": await self.catalogue.update(self.actor, int(offering_id),
                                                                 self.json_body())})


class PublishHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/publish"

    async def post(self, offering_id: str) -> None:
        self.write_json({"offering": await self.catalogue.set_status(self.actor, int(offering_id),
                                                                     "published")})


class CloseHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/close"

    async def post(self, offering_id: str) -> None:
        self.write_json({"offering": await self.catalogue.set_status(self.actor, int(offering_id),
                                                                     "closed")})


class CampaignsHandler(ItemsHandler):
    route = "/admin/v1/campaigns"

    async def post(self) -> None:
        self.write_json({"campaign": await self.catalogue.create_campaign(self.actor, self.json_body())}, 201)


class ParticipantsHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/signups"

    async def get(self, offering_id: str) -> None:
        self.write_json({"signups": await self.participants.list(
            self.actor, int(offering_id), status=self.get_query_argument("status", "") or None,
            before_id=self.int_argument("before"))})


class ParticipantsBookHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/signups.xlsx"

    async def get(self, offering_id: str) -> None:
        data, filename = await self.participants.workbook(
            self.actor, int(offering_id), status=self.get_query_argument("status", "") or None,
            purpose=self.get_query_argument("purpose", "") or None)
        self.send_xlsx_headers(filename)
        self.finish(data)


def routes(cadres: CadreService, catalogue: Catalogue, participants: Participants) -> list:
    return route_table((OfferingsHandler, OfferingHandler, PublishHandler, CloseHandler,
                        CampaignsHandler, ParticipantsHandler, ParticipantsBookHandler),
                       {"cadres": cadres, "catalogue": catalogue, "participants": participants})
