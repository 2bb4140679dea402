"""Business modules put online by configuration: the platform office and the leading group
(``/admin/v1/business-modules``), cadres applying and handling (``/admin/v1/business-services``,
``/admin/v1/business-applications``), and workers applying from WeChat (``/h5/api/v1``,
``/mp/v1``: ``business-services``, ``business-applications``)."""

from __future__ import annotations

import tornado.web

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.handlers.identity.accounts import WorkerHandler, worker_routes
from wxbackend.handlers.uploads import FILE_LIMIT, StreamedUpload, send_file
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.wechat_login import WeChatLogin
from wxbackend.services.office.business.applications import BusinessApplications
from wxbackend.services.office.business.configuration import BusinessModules

FORM_BODY = 262_144


class BusinessHandler(AdminHandler):
    def initialize(self, cadres: CadreService, business: BusinessModules,  # type: ignore[override]
                   applications: BusinessApplications) -> None:
        super().initialize(cadres)
        self.business = business
        self.applications = applications


class ModulesHandler(BusinessHandler):
    route = "/admin/v1/business-modules"

    async def get(self) -> None:
        self.write_json(await self.business.list(self.actor))

    async def post(self) -> None:
        self.write_json({"module": await self.business.create(self.actor, self.json_body(FORM_BODY))}, 201)


class ModuleHandler(BusinessHandler):
    route = "/admin/v1/business-modules/{id}"

    async def get(self, module_id: str) -> None:
        self.write_json({"module": await self.business.get(self.actor, int(module_id))})

    async def put(self, module_id: str) -> None:
        self.write_json({"module": await self.business.update(self.actor, int(module_id),
                                                              self.json_body(FORM_BODY))})


class RequestHandler(BusinessHandler):
    route = "/admin/v1/business-modules/{id}/request"

    async def post(self, module_id: str) -> None:
        self.write_json({"module": await self.business.request(self.actor, int(module_id), self.json_body())})


class DecisionHandler(BusinessHandler):
    route = "/admin/v1/business-modules/{id}/decision"

    async def post(self, module_id: str) -> None:
        self.write_json({"module": await self.business.decide(self.actor, int(module_id), self.json_body())})


class RetireHandler(BusinessHandler):
    route = "/admin/v1/business-modules/{id}/retire"

    async def post(self, module_id: str) -> None:
        self.write_json({"module": await self.business.retire(self.actor, int(module_id), self.json_body())})


class ExampleHandler(BusinessHandler):
    route = "/admin/v1/business-examples/hardship"

    async def get(self) -> None:
        self.write_json(await self.business.example(self.actor, "hardship"))


class CadreServicesHandler(BusinessHandler):
    route = "/admin/v1/business-services"

    async def get(self) -> None:
        self.write_json(await self.applications.offered_to_cadre(self.actor))


class CadreApplyHandler(BusinessHandler):
    route = "/admin/v1/business-services/{id}/applications"

    async def post(self, module_id: str) -> None:
        self.write_json({"application": await self.applications.apply_as_cadre(
            self.actor, int(module_id), self.json_body(FORM_BODY))}, 201)


class DeskHandler(BusinessHandler):
    route = "/admin/v1/business-applications/{id}"

    async def get(self, item_id: str) -> None:
        self.write_json({"item": await self.applications.desk_view(self.actor, int(item_id))})


class StepHandler(BusinessHandler):
    route = "/admin/v1/business-applications/{id}/steps"

    async def post(self, item_id: str) -> None:
        self.write_json({"result": await self.applications.act(self.actor, int(item_id),
                                                               self.json_body(FORM_BODY))})


class DeskFileHandler(BusinessHandler):
    route = "/admin/v1/business-files/{id}"

    async def get(self, file_id: str) -> None:
        send_file(self, *await self.applications.cadre_file(self.actor, int(file_id)))


def admin_routes(cadres: CadreService, business: BusinessModules,
                 applications: BusinessApplications) -> list:
    return route_table((ModulesHandler, ModuleHandler, RequestHandler, DecisionHandler, RetireHandler,
                        ExampleHandler, CadreServicesHandler, CadreApplyHandler, DeskHandler, StepHandler,
                        DeskFileHandler),
                       {"cadres": cadres, "business": business, "applications": applications})


# --- workers ------------------------------------------------------------------------------------
class ApplicantHandler(WorkerHandler):
    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   applications: BusinessApplications) -> None:
        super().initialize(accounts, login, auth)
        self.applications = applications


class ServicesHandler(ApplicantHandler):
    route = "business-services"

    async def get(self) -> None:
        self.write_json(await self.applications.offered_to_worker(self.account_id, self.auth))


class ApplyHandler(ApplicantHandler):
    route = "business-services/{id}/applications"

    async def post(self, module_id: str) -> None:
        self.write_json({"application": await self.applications.apply_as_worker(
            self.account_id, self.auth, int(module_id), self.json_body(FORM_BODY))}, 201)


class MineHandler(ApplicantHandler):
    route = "business-applications"

    async def get(self) -> None:
        self.write_json(await self.applications.mine(self.account_id))


class OneHandler(ApplicantHandler):
    route = "business-applications/{id}"

    async def get(self, item_id: str) -> None:
        self.write_json({"application": await self.applications.worker_view(self.account_id, int(item_id))})


@tornado.web.stream_request_body
class FileUploadHandler(StreamedUpload, ApplicantHandler):
    """A photo or document for an application about to be filed (its id goes in the answers)."""
    route = "business-files"
    limit = FILE_LIMIT

    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   applications: BusinessApplications) -> None:
        super().initialize(accounts, login, auth, applications)
        self.start_upload()

    async def prepare(self) -> None:
        await super().prepare()
        self.check_declared()

    async def post(self) -> None:
        self.write_json({"file": await self.applications.upload(
            self.account_id, self.upload_body(), self.get_query_argument("filename", ""),
            self.get_query_argument("kind", "image"))}, 201)


class FileHandler(ApplicantHandler):
    route = "business-files/{id}"

    async def get(self, file_id: str) -> None:
        send_file(self, *await self.applications.worker_file(self.account_id, int(file_id)))


# Streamed uploads check their own size: the front's general body limit does not apply.
FILE_UPLOAD_ROUTES = ("/h5/api/v1/business-files", "/mp/v1/business-files")


def applicant_routes(accounts: AccountService, login: WeChatLogin,
                     applications: BusinessApplications) -> list:
    return worker_routes((ServicesHandler, ApplyHandler, MineHandler, OneHandler, FileUploadHandler,
                          FileHandler), accounts=accounts,
                         login=login, applications=applications)
