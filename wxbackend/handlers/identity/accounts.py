"""A worker's own account, over two transports with the same services:

* ``/h5/api/v1/*`` for the H5 pages inside WeChat: the session is an HttpOnly cookie set by the
  web-OAuth callback (or an SMS sign-in outside WeChat), and every write carries the session's
  CSRF token in ``X-CSRF-Token``;
* ``/mp/v1/*`` for the Mini Program: ``Authorization: Bearer <token>`` from ``POST /mp/v1/session``.
"""

from __future__ import annotations

import hmac

from wxbackend.handlers.base import BaseHandler, url_pattern
from wxbackend.services.errors import Forbidden, InvalidInput, Unauthenticated
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.sms_codes import SmsCodeService
from wxbackend.services.identity.wechat_login import WeChatLogin

H5_COOKIE = "wx_h5"


class WorkerHandler(BaseHandler):
    needs_session = True

    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,
                   sms: SmsCodeService | None = None) -> None:
        self.accounts = accounts
        self.login = login
        self.auth = auth
        self.sms = sms
        self.session: dict | None = None
        self.token: str | None = None

    @property
    def store(self):
        return self.login.mp_sessions if self.auth == "mp" else self.login.h5_sessions

    async def prepare(self) -> None:
        super().prepare()
        self.set_header("Cache-Control", "no-store")
        if self.auth == "mp":
            header = self.request.headers.get("Authorization", "")
            self.token = header[7:].strip() if header.lower().startswith("bearer ") else None
        else:
            self.token = self.get_cookie(H5_COOKIE)
        self.session = await self.store.get(self.token)
        if self.session is None and self.needs_session:
            raise Unauthenticated()
        if self.auth == "h5" and self.session and self.request.method not in ("GET", "HEAD"):
            sent = self.request.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(sent.encode(), str(self.session.get("csrf", "")).encode()):
                raise Forbidden("页面已过期，请刷新后重试", code="csrf_failed")

    @property
    def account_id(self) -> int:
        return int(self.session["account_id"])

    def set_session_cookie(self, token: str, max_age: int) -> None:
        self.set_private_cookie(H5_COOKIE, token, samesite="Lax", path="/", max_age=max_age)


class MeHandler(WorkerHandler):
    route = "me"

    async def get(self) -> None:
        account = await self.accounts.get_account(self.account_id)
        body = {"account": account.public(), "privacy_version": self.accounts.privacy_version}
        if self.auth == "h5":
            body["csrf_token"] = self.session.get("csrf")
        self.write_json(body)


class PrivacyHandler(WorkerHandler):
    route = "me/privacy"

    async def post(self) -> None:
        version = str(self.json_body().get("version", ""))
        account = await self.accounts.accept_privacy(self.account_id, version)
        self.write_json({"account": account.public()})


class RegionHandler(WorkerHandler):
    route = "me/region"

    async def put(self) -> None:
        code = str(self.json_body().get("region_code", ""))
        account = await self.accounts.set_region(self.account_id, code)
        self.write_json({"account": account.public()})


class RegionsHandler(WorkerHandler):
    route = "regions"
    needs_session = False

    async def get(self) -> None:
        self.set_header("Cache-Control", "public, max-age=3600")
        self.write_json({"regions": await self.accounts.list_regions()})


class DataHandler(WorkerHandler):
    route = "me/data"

    async def get(self) -> None:
        self.write_json(await self.accounts.export_data(self.account_id))


class CancelHandler(WorkerHandler):
    route = "me/cancel"

    async def post(self) -> None:
        if self.json_body().get("confirm") != "注销":
            raise InvalidInput("请输入“注销”确认注销账号", code="confirm_required")
        account_id = self.account_id
        public_id = await self.accounts.cancel(account_id)
        await self.login.mp_sessions.revoke_account(account_id)
        await self.login.h5_sessions.revoke_account(account_id)
        if self.auth == "h5":
            self.clear_cookie(H5_COOKIE, path="/")
        self.write_json({"cancelled": public_id})


class LogoutHandler(WorkerHandler):
    route = "logout"

    async def post(self) -> None:
        await self.store.revoke(self.token)
        if self.auth == "h5":
            self.clear_cookie(H5_COOKIE, path="/")
        self.write_json({"signed_out": True})


# --- H5 only: SMS verification ----------------------------------------------------------------
class SmsSendHandler(WorkerHandler):
    route = "sms/send"
    needs_session = False

    async def post(self) -> None:
        phone = str(self.json_body().get("phone", ""))
        self.write_json(await self.sms.send(phone, self.request.remote_ip or "-"))


class PhoneVerifyHandler(WorkerHandler):
    """In WeChat (signed in by OAuth): the phone joins the account. Outside WeChat: the phone
    signs the worker in (its account, or a new one)."""
    route = "phone/verify"
    needs_session = False

    async def post(self) -> None:
        body = self.json_body()
        phone = await self.sms.verify(str(body.get("phone", "")), str(body.get("code", "")))
        if self.session is not None:
            account = await self.accounts.verify_phone(self.account_id, phone, "sms")
            self.write_json({"account": account.public()})
            return
        signed = await self.login.h5_sign_in_by_phone(phone)
        self.set_session_cookie(signed.token, signed.expires_in)
        self.write_json({"account": signed.account.public()})


# --- Mini Program only ------------------------------------------------------------------------
class MpSessionHandler(WorkerHandler):
    route = "session"
    needs_session = False

    async def post(self) -> None:
        signed = await self.login.mp_session(str(self.json_body().get("code", "")))
        self.write_json({"token": signed.token, "expires_in": signed.expires_in,
                         "account": signed.account.public()})


class MpPhoneHandler(WorkerHandler):
    route = "phone"

    async def post(self) -> None:
        account = await self.login.mp_phone(self.account_id, str(self.json_body().get("code", "")))
        self.write_json({"account": account.public()})


_COMMON = (MeHandler, PrivacyHandler, RegionHandler, RegionsHandler, DataHandler, CancelHandler,
           LogoutHandler)


def worker_routes(common: tuple, *, h5: tuple = (), mp: tuple = (), **services) -> list:
    """The same handlers under both transports (``/h5/api/v1`` and ``/mp/v1``), plus each
    transport's own. A handler's ``route`` is relative (``{id}`` for a numeric id); under each
    transport it becomes the full route, which is also its metrics label."""
    out = []
    for prefix, auth, extra in (("/h5/api/v1", "h5", h5), ("/mp/v1", "mp", mp)):
        kwargs = {**services, "auth": auth}
        for handler in (*common, *extra):
            route = f"{prefix}/{handler.route}"
            out.append((url_pattern(route), type(handler.__name__, (handler,), {"route": route}), kwargs))
    return out


def routes(accounts: AccountService, login: WeChatLogin, sms: SmsCodeService) -> list:
    return worker_routes(_COMMON, h5=(SmsSendHandler, PhoneVerifyHandler),
                         mp=(MpSessionHandler, MpPhoneHandler), accounts=accounts, login=login, sms=sms)
