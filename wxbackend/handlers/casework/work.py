"""``/admin/v1/casework/*``: 我的待办 across modules, an item's page and the operations on it, the
overdue board, proxies (委托), the completion rates and the process definitions."""

from __future__ import annotations

from datetime import datetime

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.handlers.identity.accounts import WorkerHandler, worker_routes
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.casework.binding import CadreWeChat
from wxbackend.services.casework.operations import Operations
from wxbackend.services.casework.rates import CompletionRates
from wxbackend.services.casework.worklists import WorkLists
from wxbackend.services.errors import InvalidInput
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.wechat_login import WeChatLogin


class WorkHandler(AdminHandler):
    def initialize(self, cadres: CadreService, work: Operations,  # type: ignore[override]
                   lists: WorkLists, rates: CompletionRates) -> None:
        super().initialize(cadres)
        self.work = work
        self.lists = lists
        self.rates = rates


class TodoHandler(WorkHandler):
    route = "/admin/v1/casework/todo"

    async def get(self) -> None:
        self.write_json(await self.lists.todo(
            self.actor, module=self.optional("module"), state=self.optional("state"),
            search=self.optional("q"), limit=self.int_argument("limit", 50) or 50,
            offset=self.int_argument("offset", 0) or 0))


class OverdueHandler(WorkHandler):
    route = "/admin/v1/casework/overdue"

    async def get(self) -> None:
        self.write_json(await self.lists.overdue(self.actor, module=self.optional("module")))


class ItemHandler(WorkHandler):
    route = "/admin/v1/casework/items/{id}"

    async def get(self, item_id: str) -> None:
        self.write_json({"item": await self.lists.item(self.actor, int(item_id))})


class ActionHandler(WorkHandler):
    route = "/admin/v1/casework/items/{id}/actions"

    async def post(self, item_id: str) -> None:
        self.write_json({"result": await self.work.act(self.actor, int(item_id), self.json_body())})


class ColleaguesHandler(WorkHandler):
    route = "/admin/v1/casework/colleagues"

    async def get(self) -> None:
        self.write_json(await self.lists.colleagues(self.actor))


class LedgerHandler(WorkHandler):
    route = "/admin/v1/casework/ledger.xlsx"

    async def get(self) -> None:
        data, filename = await self.lists.ledger_xlsx(self.actor, self.get_query_argument("module", ""),
                                                      self.get_query_argument("period", ""))
        self.send_xlsx_headers(filename)
        self.finish(data)


class ProxiesHandler(WorkHandler):
    route = "/admin/v1/casework/proxies"

    async def get(self) -> None:
        self.write_json(await self.lists.proxies(self.actor))

    async def post(self) -> None:
        self.write_json(await self.lists.add_proxy(self.actor, self.json_body()), 201)


class ProxyHandler(WorkHandler):
    route = "/admin/v1/casework/proxies/{id}"

    async def delete(self, proxy_id: str) -> None:
        self.write_json(await self.lists.revoke_proxy(self.actor, int(proxy_id)))


class RatesHandler(WorkHandler):
    route = "/admin/v1/casework/rates"

    async def get(self) -> None:
        as_of = self.optional("as_of")
        try:
            moment = datetime.fromisoformat(as_of) if as_of else None
        except ValueError:
            moment = None
        if as_of and (moment is None or moment.tzinfo is None):
            raise InvalidInput("as_of 应为带时区的时间，如 2027-04-01T00:00:00+08:00", code="invalid_period")
        self.write_json({"rates": await self.rates.rates(
            self.actor, self.get_query_argument("period", ""), module=self.optional("module"),
            as_of=moment)})


class ProcessHandler(WorkHandler):
    route = "/admin/v1/casework/processes/{module}"

    async def get(self, module: str) -> None:
        self.write_json({"process": await self.lists.definitions(self.actor, module)})

    async def post(self, module: str) -> None:
        self.write_json({"process": await self.lists.publish(self.actor, module,
                                                             self.json_body(262_144))}, 201)


def routes(cadres: CadreService, work: Operations, lists: WorkLists, rates: CompletionRates) -> list:
    table = route_table((TodoHandler, OverdueHandler, ItemHandler, ActionHandler, ColleaguesHandler,
                         LedgerHandler,
                         ProxiesHandler,
                         ProxyHandler, RatesHandler),
                        {"cadres": cadres, "work": work, "lists": lists, "rates": rates})
    return [*table, (r"/admin/v1/casework/processes/([a-z_]{1,32})", ProcessHandler,
                     {"cadres": cadres, "work": work, "lists": lists, "rates": rates})]


class WeChatBindingHandler(AdminHandler):
    """``/admin/v1/me/wechat``: whether reminders reach the cadre's WeChat; a code to bind it."""
    route = "/admin/v1/me/wechat"

    def initialize(self, cadres: CadreService, binding: CadreWeChat) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.binding = binding

    async def get(self) -> None:
        self.write_json(await self.binding.status(self.actor))

    async def post(self) -> None:
        self.write_json(self.binding.code(self.actor), 201)

    async def delete(self) -> None:
        self.write_json(await self.binding.unbind(self.actor))


class BindFromWeChatHandler(WorkerHandler):
    """The page the console's code opens, in WeChat: ties this WeChat to the cadre."""
    route = "cadre-binding"

    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   binding: CadreWeChat) -> None:
        super().initialize(accounts, login, auth)
        self.binding = binding

    async def post(self) -> None:
        self.write_json(await self.binding.bind(self.account_id, str(self.json_body().get("token", ""))))


def binding_routes(cadres: CadreService, accounts: AccountService, login: WeChatLogin,
                   binding: CadreWeChat) -> list:
    return [*route_table((WeChatBindingHandler,), {"cadres": cadres, "binding": binding}),
            *worker_routes((), h5=(BindFromWeChatHandler,), accounts=accounts, login=login,
                           binding=binding)]
