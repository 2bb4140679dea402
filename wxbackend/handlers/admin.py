"""``/admin/v1``: the cadre back office API used by the console at ``/admin/``.

The session is an HttpOnly, SameSite=Strict cookie; every write also carries the session's CSRF
token in ``X-CSRF-Token``. Which unions and permissions a request may touch is decided in the
services (:mod:`wxbackend.services.cadres.permissions`), from the actor built here.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from wxbackend.handlers.base import BaseHandler, route_table
from wxbackend.infra.xlsx import XLSX_TYPE
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.errors import Forbidden, InvalidInput
from wxbackend.services.membership.membership import row_id

ADMIN_COOKIE = "wx_admin"


class AdminHandler(BaseHandler):
    needs_session = True

    def initialize(self, cadres: CadreService) -> None:
        self.cadres = cadres
        self.actor: Actor | None = None

    async def prepare(self) -> None:
        super().prepare()
        self.set_header("Cache-Control", "no-store")
        if not self.needs_session:
            return
        self.actor, csrf = await self.cadres.authenticate(self.get_cookie(ADMIN_COOKIE),
                                                          self.request.remote_ip or "")
        if self.request.method not in ("GET", "HEAD"):
            sent = self.request.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(sent.encode(), csrf.encode()):
                raise Forbidden("页面已过期，请刷新后重试", code="csrf_failed")
        self.csrf = csrf

    def optional(self, name: str) -> str | None:
        """A query argument, None when absent or empty."""
        return self.get_query_argument(name, "") or None

    def send_xlsx_headers(self, filename: str) -> None:
        """A workbook download under its own (Chinese) file name."""
        self.set_header("Content-Type", XLSX_TYPE)
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(filename)}")

    def me(self) -> dict:
        a = self.actor
        return {"id": a.id, "username": a.username, "org_id": a.org_id, "role": a.role,
                "duty": a.duty, "permissions": sorted(a.permissions)}


class LoginHandler(AdminHandler):
    route = "/admin/v1/login"
    needs_session = False

    async def post(self) -> None:
        body = self.json_body()
        session = await self.cadres.login(
            username=str(body.get("username", "")), password=str(body.get("password", "")),
            totp=str(body.get("totp", "")), ip=self.request.remote_ip or "",
            user_agent=self.request.headers.get("User-Agent", ""))
        self.set_private_cookie(ADMIN_COOKIE, session.token, samesite="Strict", path="/admin",
                                max_age=86_400)  # the idle timeout is enforced on the server
        self.actor = session.actor
        self.write_json({"me": self.me(), "csrf_token": session.csrf,
                         "notices": {"new_device": session.new_device,
                                     "ended_other_session": session.replaced_other,
                                     "failed_attempts": session.failed_attempts}})


class LogoutHandler(AdminHandler):
    route = "/admin/v1/logout"

    async def post(self) -> None:
        await self.cadres.logout(self.get_cookie(ADMIN_COOKIE), self.actor)
        self.clear_cookie(ADMIN_COOKIE, path="/admin")
        self.write_json({"signed_out": True})


class MeHandler(AdminHandler):
    route = "/admin/v1/me"

    async def get(self) -> None:
        self.write_json({"me": self.me(), "csrf_token": self.csrf,
                         "catalogue": self.cadres.catalogue()})


class PasswordHandler(AdminHandler):
    route = "/admin/v1/me/password"

    async def post(self) -> None:
        body = self.json_body()
        await self.cadres.change_password(self.actor, str(body.get("old", "")), str(body.get("new", "")))
        self.write_json({"changed": True})


class CadresHandler(AdminHandler):
    route = "/admin/v1/cadres"

    async def get(self) -> None:
        self.write_json({"cadres": await self.cadres.list_cadres(self.actor)})

    async def post(self) -> None:
        body = self.json_body()
        permissions = body.get("permissions", [])
        org_id = row_id(body.get("org_id"))  # a bool or an int past bigint is no org's id
        if not isinstance(permissions, list) or org_id is None:
            raise InvalidInput("org_id 应为数字，permissions 应为列表", code="invalid_input")
        account = await self.cadres.create_account(
            self.actor, username=str(body.get("username", "")),
            display_name=str(body.get("display_name", "")), org_id=org_id,
            role=str(body.get("role", "cadre")), duty=str(body.get("duty", "business")),
            permissions={str(p) for p in permissions}, password=str(body.get("password", "")),
            replace=bool(body.get("replace", False)))
        self.write_json({"id": account.id, "username": account.username,
                         "totp_uri": account.totp_uri}, 201)


class PermissionsHandler(AdminHandler):
    route = "/admin/v1/cadres/{id}/permissions"

    async def put(self, cadre_id: str) -> None:
        permissions = self.json_body().get("permissions", [])
        if not isinstance(permissions, list):
            raise InvalidInput("permissions 应为列表", code="invalid_input")
        granted = await self.cadres.set_permissions(self.actor, int(cadre_id), {str(p) for p in permissions})
        self.write_json({"permissions": granted})


class FilingsHandler(AdminHandler):
    route = "/admin/v1/filings"

    async def get(self) -> None:
        self.write_json({"filings": await self.cadres.filings(self.actor)})


class OrgsHandler(AdminHandler):
    route = "/admin/v1/orgs"

    async def get(self) -> None:
        self.write_json({"orgs": await self.cadres.list_orgs(self.actor)})


class VerificationHandler(AdminHandler):
    route = "/admin/v1/verification"

    async def get(self) -> None:
        self.write_json(await self.cadres.verification_queue(self.actor))


class VerifyHandler(AdminHandler):
    route = "/admin/v1/cadres/{id}/verify"

    async def post(self, cadre_id: str) -> None:
        self.write_json({"verified_at": await self.cadres.verify(self.actor, int(cadre_id))})


class AuditHandler(AdminHandler):
    route = "/admin/v1/audit"

    async def get(self) -> None:
        self.write_json(await self.cadres.audit_records(self.actor, self.int_argument("before"),
                                                        self.int_argument("limit", 50)))


class LedgerHandler(AdminHandler):
    route = "/admin/v1/ledger.xlsx"

    async def get(self) -> None:
        data, filename = await self.cadres.ledger_xlsx(self.actor)
        self.send_xlsx_headers(filename)
        self.finish(data)


def routes(cadres: CadreService) -> list:
    return route_table((LoginHandler, LogoutHandler, MeHandler, PasswordHandler, CadresHandler,
                        PermissionsHandler, FilingsHandler, OrgsHandler, VerificationHandler,
                        VerifyHandler, AuditHandler, LedgerHandler), {"cadres": cadres})
