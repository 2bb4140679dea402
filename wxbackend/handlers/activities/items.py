"""``/admin/v1/offerings``, ``/admin/v1/campaigns``: cadres run activities and inclusive
services (permissions and subtree checked in :mod:`wxbackend.services.activities.catalogue`)."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import BaseHandler, route_table
from wxbackend.services.activities.catalogue import Catalogue
from wxbackend.services.activities.lottery import Lottery
from wxbackend.services.activities.participants import Participants
from wxbackend.services.activities.posters import Posters
from wxbackend.services.activities.redemption import Redemption
from wxbackend.services.activities.registrations import Registrations
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.errors import InvalidInput


class ItemsHandler(AdminHandler):
    def initialize(self, cadres: CadreService, catalogue: Catalogue,  # type: ignore[override]
                   participants: Participants, lottery: Lottery,
                   registrations: Registrations, redemption: Redemption, posters: Posters) -> None:
        super().initialize(cadres)
        self.posters = posters
        self.redemption = redemption
        self.catalogue = catalogue
        self.participants = participants
        self.lottery = lottery
        self.registrations = registrations


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


class DrawHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/draw"

    async def post(self, offering_id: str) -> None:
        self.write_json({"draw": await self.lottery.draw(self.actor, int(offering_id))})


class ApproveSignupHandler(ItemsHandler):
    route = "/admin/v1/signups/{id}/approve"

    async def post(self, signup_id: str) -> None:
        self.write_json({"signup": await self.registrations.approve(self.actor, int(signup_id))})


class RejectSignupHandler(ItemsHandler):
    route = "/admin/v1/signups/{id}/reject"

    async def post(self, signup_id: str) -> None:
        reason = str(self.json_body().get("reason", ""))
        self.write_json({"signup": await self.registrations.reject(self.actor, int(signup_id), reason)})


class VerifiersHandler(ItemsHandler):
    route = "/admin/v1/verifiers"

    async def get(self) -> None:
        self.write_json({"verifiers": await self.redemption.verifiers(self.actor)})

    async def post(self) -> None:
        self.write_json(await self.redemption.create_verifier(self.actor, self.json_body()), 201)


class DisableVerifierHandler(ItemsHandler):
    route = "/admin/v1/verifiers/{id}/disable"

    async def post(self, verifier_id: str) -> None:
        self.write_json({"verifier": await self.redemption.disable_verifier(self.actor, int(verifier_id))})


class CheckInHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/checkin"

    async def post(self, offering_id: str) -> None:
        code = str(self.json_body().get("code", ""))
        self.write_json(await self.redemption.check_in_by_cadre(self.actor, int(offering_id), code))


class VenueCodeHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/venue-code"

    async def get(self, offering_id: str) -> None:
        self.write_json(await self.redemption.venue_code(self.actor, int(offering_id)))


class VenueCodeImageHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/venue-code.png"

    async def get(self, offering_id: str) -> None:
        png = await self.redemption.venue_code_png(self.actor, int(offering_id))
        self.set_header("Content-Type", "image/png")
        self.finish(png)


class PosterHandler(ItemsHandler):
    route = "/admin/v1/offerings/{id}/poster.png"

    async def get(self, offering_id: str) -> None:
        png = await self.posters.for_cadre(self.actor, int(offering_id), poster_target(self))
        self.set_header("Content-Type", "image/png")
        self.finish(png)


def poster_target(handler: BaseHandler) -> str:
    """``?for=mp`` (the Mini Program's code, the default) or ``?for=h5`` (a QR of the H5 page)."""
    target = handler.get_query_argument("for", "mp")
    if target not in ("mp", "h5"):
        raise InvalidInput("for 只能是 mp 或 h5", code="invalid_input")
    return target


def routes(cadres: CadreService, catalogue: Catalogue, participants: Participants,
           lottery: Lottery, registrations: Registrations, redemption: Redemption,
           posters: Posters) -> list:
    return route_table((OfferingsHandler, OfferingHandler, PublishHandler, CloseHandler,
                        CampaignsHandler, ParticipantsHandler, ParticipantsBookHandler, DrawHandler,
                        ApproveSignupHandler, RejectSignupHandler, VerifiersHandler,
                        DisableVerifierHandler, CheckInHandler, VenueCodeHandler, VenueCodeImageHandler,
                        PosterHandler),
                       {"cadres": cadres, "catalogue": catalogue, "participants": participants,
                        "lottery": lottery, "registrations": registrations,
                        "redemption": redemption, "posters": posters})
