"""A worker's activities and services over the H5 pages (``/h5/api/v1``) and the Mini Program
(``/mp/v1``): what is open to them, sign-up or claim, their places, confirm and cancel."""

from __future__ import annotations

import re
from collections.abc import Callable

import tornado.httputil

from wxbackend.handlers.activities.items import poster_target
from wxbackend.handlers.identity.accounts import H5_COOKIE, WorkerHandler, worker_routes
from wxbackend.services.activities.catalogue import Catalogue
from wxbackend.services.activities.lottery import Lottery
from wxbackend.services.activities.posters import Posters
from wxbackend.services.activities.redemption import Redemption
from wxbackend.services.activities.signups import Signups
from wxbackend.services.errors import Conflict
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.wechat_login import WeChatLogin


class ActivityHandler(WorkerHandler):
    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   catalogue: Catalogue, signups: Signups, lottery: Lottery,
                   redemption: Redemption, posters: Posters) -> None:
        super().initialize(accounts, login, auth)
        self.posters = posters
        self.redemption = redemption
        self.catalogue = catalogue
        self.signups = signups
        self.lottery = lottery


class OpenItemsHandler(ActivityHandler):
    route = "offerings"

    async def get(self) -> None:
        self.write_json({"offerings": await self.catalogue.open_to(self.account_id)})


class ItemHandler(ActivityHandler):
    route = "offerings/{id}"

    async def get(self, offering_id: str) -> None:
        self.write_json({"offering": await self.catalogue.detail(self.account_id, int(offering_id))})


class SignUpHandler(ActivityHandler):
    route = "offerings/{id}/signup"

    async def post(self, offering_id: str) -> None:
        body = self.json_body() if self.request.body else {}
        self.write_json({"signup": await self.signups.sign_up(self.account_id, int(offering_id),
                                                              body.get("subscribed"))}, 201)


class DrawRecordHandler(ActivityHandler):
    route = "offerings/{id}/draw"

    async def get(self, offering_id: str) -> None:
        self.write_json({"draw": await self.lottery.record(int(offering_id))})


class MySignupsHandler(ActivityHandler):
    route = "signups"

    async def get(self) -> None:
        self.write_json({"signups": await self.signups.mine(self.account_id)})


class ConfirmHandler(ActivityHandler):
    route = "signups/{id}/confirm"

    async def post(self, signup_id: str) -> None:
        self.write_json({"signup": await self.signups.confirm(self.account_id, int(signup_id))})


class CancelHandler(ActivityHandler):
    route = "signups/{id}/cancel"

    async def post(self, signup_id: str) -> None:
        self.write_json({"signup": await self.signups.cancel(self.account_id, int(signup_id))})


class CodeHandler(ActivityHandler):
    route = "signups/{id}/code"

    async def get(self, signup_id: str) -> None:
        self.write_json(await self.redemption.code_for(self.account_id, int(signup_id)))


class CodeImageHandler(ActivityHandler):
    route = "signups/{id}/code.png"

    async def get(self, signup_id: str) -> None:
        png = await self.redemption.code_png(self.account_id, int(signup_id))
        self.set_header("Content-Type", "image/png")
        self.finish(png)


class VenueCheckInHandler(ActivityHandler):
    route = "offerings/{id}/checkin"

    async def post(self, offering_id: str) -> None:
        code = str(self.json_body().get("code", ""))
        self.write_json(await self.redemption.check_in_at_venue(self.account_id, int(offering_id), code))


class PosterHandler(ActivityHandler):
    route = "offerings/{id}/poster.png"

    async def get(self, offering_id: str) -> None:
        png = await self.posters.for_worker(int(offering_id), poster_target(self))
        self.set_header("Content-Type", "image/png")
        self.finish(png)


# A sign-up attempt, under either transport.
SIGNUP_PATH = re.compile(r"^/(?:mp/v1|h5/api/v1)/offerings/([0-9]{1,12})/signup$")


def sold_out_at_the_front(signups: Signups) -> Callable:
    """For the server's front: the 409 for an attempt on an item this process saw sold out a
    moment ago, without reading the session (a request with no credentials at all still goes on
    to the handler and its 401); the handler's own checks stay the record."""
    def refuse(match: re.Match, headers: tornado.httputil.HTTPHeaders) -> Conflict | None:
        if "Authorization" not in headers and H5_COOKIE not in headers.get("Cookie", ""):
            return None
        return signups.sold_out_now(int(match.group(1)))
    return refuse


_HANDLERS = (OpenItemsHandler, ItemHandler, SignUpHandler, DrawRecordHandler, MySignupsHandler,
             ConfirmHandler, CancelHandler, CodeHandler, CodeImageHandler, VenueCheckInHandler,
             PosterHandler)


def routes(accounts: AccountService, login: WeChatLogin, catalogue: Catalogue,
           signups: Signups, lottery: Lottery, redemption: Redemption, posters: Posters) -> list:
    return worker_routes(_HANDLERS, accounts=accounts, login=login, catalogue=catalogue,
                         signups=signups, lottery=lottery, redemption=redemption, posters=posters)
