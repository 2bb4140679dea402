"""``/verify/v1``: the phone page of a merchant's or venue's staff (核销员): sign in, scan a
worker's code, redeem or check it in. The session is a bearer token the page keeps for the day
(no cookie, so no CSRF); only the items the organiser bound to the account can be acted on."""

from __future__ import annotations

from wxbackend.handlers.base import BaseHandler, route_table
from wxbackend.services.activities.redemption import Redemption


class VerifierHandler(BaseHandler):
    needs_session = True

    def initialize(self, redemption: Redemption) -> None:
        self.redemption = redemption
        self.verifier: dict | None = None
        self.token: str | None = None

    async def prepare(self) -> None:
        super().prepare()
        self.set_header("Cache-Control", "no-store")
        header = self.request.headers.get("Authorization", "")
        self.token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if self.needs_session:
            self.verifier = await self.redemption.verifier(self.token)


class LoginHandler(VerifierHandler):
    route = "/verify/v1/login"
    needs_session = False

    async def post(self) -> None:
        body = self.json_body()
        self.write_json(await self.redemption.sign_in(str(body.get("username", "")),
                                                      str(body.get("password", "")),
                                                      self.request.remote_ip or "-"))


class LogoutHandler(VerifierHandler):
    route = "/verify/v1/logout"

    async def post(self) -> None:
        await self.redemption.sign_out(self.token)
        self.write_json({"signed_out": True})


class MeHandler(VerifierHandler):
    route = "/verify/v1/me"

    async def get(self) -> None:
        self.write_json({"verifier": self.verifier})


class RedeemHandler(VerifierHandler):
    route = "/verify/v1/redeem"

    async def post(self) -> None:
        body = self.json_body()
        status, answer = await self.redemption.redeem(self.verifier, str(body.get("code", "")),
                                                      body.get("request_id"))
        self.write_json(answer, status)


def routes(redemption: Redemption) -> list:
    return route_table((LoginHandler, LogoutHandler, MeHandler, RedeemHandler),
                       {"redemption": redemption})
