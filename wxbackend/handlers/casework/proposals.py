"""Proposals of congress sessions: the committee and the units (``/admin/v1/congress-sessions``,
``/admin/v1/proposals``) and the representatives (``/h5/api/v1``, ``/mp/v1``)."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.handlers.identity.accounts import WorkerHandler, worker_routes
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.casework.proposals import Proposals
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.wechat_login import WeChatLogin


class CommitteeHandler(AdminHandler):
    def initialize(self, cadres: CadreService, proposals: Proposals) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.proposals = proposals


class SessionsHandler(CommitteeHandler):
    route = "/admin/v1/congress-sessions"

    async def get(self) -> None:
        self.write_json(await self.proposals.sessions(self.actor))

    async def post(self) -> None:
        self.write_json({"session": await self.proposals.create_session(self.actor, self.json_body())}, 201)


class SessionHandler(CommitteeHandler):
    route = "/admin/v1/congress-sessions/{id}"

    async def get(self, session_id: str) -> None:
        self.write_json({"session": await self.proposals.session(self.actor, int(session_id))})


class RosterHandler(CommitteeHandler):
    route = "/admin/v1/congress-sessions/{id}/representatives"

    async def post(self, session_id: str) -> None:
        self.write_json({"session": await self.proposals.add_representatives(
            self.actor, int(session_id), self.json_body(262_144))})


class ReportHandler(CommitteeHandler):
    route = "/admin/v1/congress-sessions/{id}/report.xlsx"

    async def get(self, session_id: str) -> None:
        data, filename = await self.proposals.report_xlsx(self.actor, int(session_id))
        self.send_xlsx_headers(filename)
        self.finish(data)


class ProposalItemHandler(CommitteeHandler):
    route = "/admin/v1/proposal-items/{id}"

    async def get(self, item_id: str) -> None:
        self.write_json({"item": await self.proposals.desk_view(self.actor, int(item_id))})


class FilingHandler(CommitteeHandler):
    route = "/admin/v1/proposals/{id}/filing"

    async def post(self, proposal_id: str) -> None:
        self.write_json({"result": await self.proposals.file(self.actor, int(proposal_id), self.json_body())})


class ProposalReplyHandler(CommitteeHandler):
    route = "/admin/v1/proposals/{id}/reply"

    async def post(self, proposal_id: str) -> None:
        self.write_json({"result": await self.proposals.reply(self.actor, int(proposal_id),
                                                              self.json_body(65_536))})


def committee_routes(cadres: CadreService, proposals: Proposals) -> list:
    return route_table((SessionsHandler, SessionHandler, RosterHandler, ReportHandler,
                        ProposalItemHandler, FilingHandler, ProposalReplyHandler),
                       {"cadres": cadres, "proposals": proposals})


# --- representatives ----------------------------------------------------------------------------
class RepresentativeHandler(WorkerHandler):
    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   proposals: Proposals) -> None:
        super().initialize(accounts, login, auth)
        self.proposals = proposals


class MySessionsHandler(RepresentativeHandler):
    route = "congress-sessions"

    async def get(self) -> None:
        self.write_json(await self.proposals.my_sessions(self.account_id))


class SessionProposalsHandler(RepresentativeHandler):
    route = "congress-sessions/{id}/proposals"

    async def get(self, session_id: str) -> None:
        self.write_json(await self.proposals.session_proposals(self.account_id, int(session_id)))

    async def post(self, session_id: str) -> None:
        self.write_json({"proposal": await self.proposals.submit(self.account_id, int(session_id),
                                                                 self.json_body(65_536))}, 201)


class OneProposalHandler(RepresentativeHandler):
    route = "proposals/{id}"

    async def get(self, proposal_id: str) -> None:
        self.write_json({"proposal": await self.proposals.worker_view(self.account_id, int(proposal_id))})


class SecondHandler(RepresentativeHandler):
    route = "proposals/{id}/seconds"

    async def post(self, proposal_id: str) -> None:
        self.write_json({"proposal": await self.proposals.second(self.account_id, int(proposal_id))})


class ProposalRatingHandler(RepresentativeHandler):
    route = "proposals/{id}/rating"

    async def post(self, proposal_id: str) -> None:
        self.write_json({"proposal": await self.proposals.rate(self.account_id, int(proposal_id),
                                                               self.json_body())})


def representative_routes(accounts: AccountService, login: WeChatLogin, proposals: Proposals) -> list:
    return worker_routes((MySessionsHandler, SessionProposalsHandler, OneProposalHandler, SecondHandler,
                          ProposalRatingHandler), accounts=accounts, login=login, proposals=proposals)
