"""Workers' appeals over the H5 pages (``/h5/api/v1``) and the Mini Program (``/mp/v1``), and the
union's desk (``/admin/v1/appeals``). Files are streamed: a body past the limit is cut off, and
the size a client declares is checked before a byte is read."""

from __future__ import annotations

import tornado.web

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.handlers.identity.accounts import WorkerHandler, worker_routes
from wxbackend.handlers.uploads import FILE_LIMIT, StreamedUpload, send_file
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.casework.appeals import Appeals
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.wechat_login import WeChatLogin


# --- the worker's side ----------------------------------------------------------------------------
class AppealHandler(WorkerHandler):
    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   appeals: Appeals) -> None:
        super().initialize(accounts, login, auth)
        self.appeals = appeals


class AppealsHandler(AppealHandler):
    route = "appeals"

    async def get(self) -> None:
        mine = await self.appeals.mine(self.account_id)
        self.write_json(mine | {"categories": [{"name": name, "anonymous": anonymous}
                                               for name, anonymous in self.appeals.categories.items()]})

    async def post(self) -> None:
        self.write_json({"appeal": await self.appeals.submit(self.account_id, self.json_body())}, 201)


class OneAppealHandler(AppealHandler):
    route = "appeals/{id}"

    async def get(self, item_id: str) -> None:
        self.write_json({"appeal": await self.appeals.worker_view(self.account_id, int(item_id))})


class RatingHandler(AppealHandler):
    route = "appeals/{id}/rating"

    async def post(self, item_id: str) -> None:
        self.write_json({"appeal": await self.appeals.rate(self.account_id, int(item_id),
                                                           self.json_body())})


class ReviewRequestHandler(AppealHandler):
    route = "appeals/{id}/review"

    async def post(self, item_id: str) -> None:
        self.write_json({"appeal": await self.appeals.request_review(self.account_id, int(item_id),
                                                                     self.json_body())})


@tornado.web.stream_request_body
class FileUploadHandler(StreamedUpload, AppealHandler):
    route = "appeal-files"
    limit = FILE_LIMIT

    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   appeals: Appeals) -> None:
        super().initialize(accounts, login, auth, appeals)
        self.start_upload()

    async def prepare(self) -> None:
        await super().prepare()
        self.check_declared()

    async def post(self) -> None:
        self.write_json({"file": await self.appeals.upload(
            self.account_id, self.upload_body(), self.get_query_argument("filename", ""),
            self.get_query_argument("kind", "image"))}, 201)


class FileHandler(AppealHandler):
    route = "appeal-files/{id}"

    async def get(self, file_id: str) -> None:
        send_file(self, *await self.appeals.worker_file(self.account_id, int(file_id)))


# Streamed uploads check their own size: the front's general body limit does not apply.
FILE_UPLOAD_ROUTES = ("/h5/api/v1/appeal-files", "/mp/v1/appeal-files")
_WORKER = (AppealsHandler, OneAppealHandler, RatingHandler, ReviewRequestHandler,
           FileUploadHandler, FileHandler)


def worker_appeal_routes(accounts: AccountService, login: WeChatLogin, appeals: Appeals) -> list:
    return worker_routes(_WORKER, accounts=accounts, login=login, appeals=appeals)


# --- the desk ---------------------------------------------------------------------------------------
class DeskHandler(AdminHandler):
    def initialize(self, cadres: CadreService, appeals: Appeals) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.appeals = appeals


class DeskAppealHandler(DeskHandler):
    route = "/admin/v1/appeals/{id}"

    async def get(self, item_id: str) -> None:
        self.write_json({"item": await self.appeals.desk_view(self.actor, int(item_id))})


class DecisionHandler(DeskHandler):
    route = "/admin/v1/appeals/{id}/decision"

    async def post(self, item_id: str) -> None:
        self.write_json({"result": await self.appeals.decide(self.actor, int(item_id), self.json_body())})


class ReplyHandler(DeskHandler):
    route = "/admin/v1/appeals/{id}/reply"

    async def post(self, item_id: str) -> None:
        self.write_json({"result": await self.appeals.reply(self.actor, int(item_id),
                                                            self.json_body(65_536))})


class RevisitHandler(DeskHandler):
    route = "/admin/v1/appeals/{id}/revisit"

    async def post(self, item_id: str) -> None:
        self.write_json({"result": await self.appeals.revisit(self.actor, int(item_id), self.json_body())})


class DeskFileHandler(DeskHandler):
    route = "/admin/v1/appeal-files/{id}"

    async def get(self, file_id: str) -> None:
        send_file(self, *await self.appeals.cadre_file(self.actor, int(file_id)))


def desk_routes(cadres: CadreService, appeals: Appeals) -> list:
    return route_table((DeskAppealHandler, DecisionHandler, ReplyHandler, RevisitHandler,
                        DeskFileHandler), {"cadres": cadres, "appeals": appeals})
