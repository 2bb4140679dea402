"""A worker's membership over the H5 pages (``/h5/api/v1``) and the Mini Program (``/mp/v1``):
the same services as :mod:`wxbackend.handlers.identity.accounts`, with the same sessions."""

from __future__ import annotations

from wxbackend.handlers.identity.accounts import WorkerHandler, worker_routes
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.wechat_login import WeChatLogin
from wxbackend.services.membership.membership import MembershipService


class MembershipHandler(WorkerHandler):
    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   membership: MembershipService) -> None:
        super().initialize(accounts, login, auth)
        self.membership = membership


class UnionSearchHandler(MembershipHandler):
    route = "unions"

    async def get(self) -> None:
        self.write_json({"unions": await self.membership.search_unions(
            text=self.get_query_argument("q", ""), region_code=self.get_query_argument("region", ""),
            credit_code=self.get_query_argument("credit_code", ""))})


class UpperUnionsHandler(MembershipHandler):
    route = "unions/upper"

    async def get(self) -> None:
        self.write_json({"unions": await self.membership.upper_unions(self.get_query_argument("region", ""))})


class OverviewHandler(MembershipHandler):
    route = "membership"

    async def get(self) -> None:
        self.write_json(await self.membership.overview(self.account_id))


class JoinHandler(MembershipHandler):
    route = "membership/join"

    async def post(self) -> None:
        application = await self.membership.apply_join(self.account_id, self.json_body())
        self.write_json({"application": application}, 201)


class WithdrawHandler(MembershipHandler):
    route = "membership/applications/{id}/withdraw"

    async def post(self, application_id: str) -> None:
        application = await self.membership.withdraw(self.account_id, int(application_id))
        self.write_json({"application": application})


class CertifyHandler(MembershipHandler):
    route = "membership/certify"

    async def post(self) -> None:
        member = await self.membership.certify(self.account_id, self.json_body(),
                                               self.request.remote_ip or "-")
        self.write_json({"member": member})


class DisputeHandler(MembershipHandler):
    route = "membership/certify/dispute"

    async def post(self) -> None:
        application = await self.membership.dispute(self.account_id, self.json_body())
        self.write_json({"application": application}, 201)


class TransferHandler(MembershipHandler):
    route = "membership/transfer"

    async def post(self) -> None:
        application = await self.membership.request_transfer(self.account_id, self.json_body())
        self.write_json({"application": application}, 201)


class FoundHandler(MembershipHandler):
    route = "unions/found"

    async def post(self) -> None:
        application = await self.membership.apply_found(self.account_id, self.json_body())
        self.write_json({"application": application}, 201)


class CardHandler(MembershipHandler):
    route = "membership/card.png"

    async def get(self) -> None:
        png = await self.membership.member_card(self.account_id)
        self.set_header("Content-Type", "image/png")
        self.finish(png)


_HANDLERS = (UnionSearchHandler, UpperUnionsHandler, OverviewHandler, JoinHandler, WithdrawHandler,
             CertifyHandler, DisputeHandler, TransferHandler, FoundHandler, CardHandler)


def routes(accounts: AccountService, login: WeChatLogin, membership: MembershipService) -> list:
    return worker_routes(_HANDLERS, accounts=accounts, login=login, membership=membership)
