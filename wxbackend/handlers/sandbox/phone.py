"""The phone simulator's calls (``/sandbox/api/phone/…``): each action of the worker goes to the
product the way WeChat would carry it (:mod:`wxbackend.sandbox.phone`)."""

from __future__ import annotations

from wxbackend.handlers.base import BaseHandler
from wxbackend.sandbox.kit import Sandbox
from wxbackend.sandbox.phone import Phone
from wxbackend.services.errors import InvalidInput

OPENID_COOKIE = "sandbox_openid"


class _PhoneHandler(BaseHandler):
    def initialize(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.phone: Phone = sandbox.phone

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")


class PushHandler(_PhoneHandler):
    route = "/sandbox/api/phone/push"

    async def post(self) -> None:
        body = self.json_body()
        reply = await self.phone.push(body.get("openid"), body.get("action"), body.get("value") or "")
        self.write_json({"reply": reply})


class MessagesHandler(_PhoneHandler):
    route = "/sandbox/api/phone/messages"

    def get(self) -> None:
        self.write_json({"messages": self.phone.messages(self.get_query_argument("openid", ""),
                                                         self.get_query_argument("phone", ""))})


class UsersHandler(_PhoneHandler):
    route = "/sandbox/api/phone/users"

    def post(self) -> None:
        self.write_json({"openid": self.phone.new_user()}, 201)


class CodesHandler(_PhoneHandler):
    """The codes the Mini Program's ``wx.login`` and phone-number button would get."""
    route = "/sandbox/api/phone/codes"

    def post(self) -> None:
        body = self.json_body()
        if isinstance(body.get("openid"), str):
            self.write_json({"code": self.phone.mp_code(body["openid"])})
        elif isinstance(body.get("phone"), str):
            self.write_json({"code": self.phone.phone_code(body["phone"])})
        else:
            raise InvalidInput("请给出 openid 或 phone", code="invalid_input")


class MenuHandler(_PhoneHandler):
    route = "/sandbox/api/phone/menu"

    def get(self) -> None:
        self.write_json(self.phone.menu())


class AuthorizeHandler(_PhoneHandler):
    """WeChat's sign-in page as the sandbox shows it: the worker chosen on the phone (a cookie of
    this origin) signs in as on the simulated WeChat's page, on this origin (the phone's frame
    may show no other); with none chosen, the page to choose one."""
    route = "/sandbox/wechat/authorize"

    def get(self) -> None:
        openid = self.get_cookie(OPENID_COOKIE, "")
        query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        if not openid or not self.phone.knows(openid):
            asked = self.request.query
            self.redirect("/sandbox/authorize.html" + (f"?{asked}" if asked else ""))
            return
        self.redirect(self.phone.authorize(query, openid))


def routes(sandbox: Sandbox) -> list:
    return [(h.route, h, {"sandbox": sandbox})
            for h in (PushHandler, MessagesHandler, UsersHandler, CodesHandler, MenuHandler,
                      AuthorizeHandler)]
