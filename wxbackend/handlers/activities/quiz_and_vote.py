"""Online quizzes and votes: the organiser sets the bank or the options and reads the results
(``/admin/v1``); workers answer rounds and vote (``/h5/api/v1`` and ``/mp/v1``). Rules in
:mod:`wxbackend.services.activities.quizzes` and :mod:`wxbackend.services.activities.polls`."""

from __future__ import annotations

from wxbackend.handlers.admin import AdminHandler
from wxbackend.handlers.base import route_table
from wxbackend.handlers.identity.accounts import WorkerHandler, worker_routes
from wxbackend.services.activities.polls import Polls
from wxbackend.services.activities.quizzes import Quizzes
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.identity.accounts import AccountService
from wxbackend.services.identity.wechat_login import WeChatLogin

# A bank of 500 questions with 8 long options each fits.
DOCUMENT_LIMIT = 1_000_000


class OrganiserHandler(AdminHandler):
    def initialize(self, cadres: CadreService, quizzes: Quizzes, polls: Polls) -> None:  # type: ignore[override]
        super().initialize(cadres)
        self.quizzes = quizzes
        self.polls = polls


class QuizBankHandler(OrganiserHandler):
    route = "/admin/v1/offerings/{id}/quiz"

    async def get(self, offering_id: str) -> None:
        self.write_json({"quiz": await self.quizzes.manage_get(self.actor, int(offering_id))})

    async def put(self, offering_id: str) -> None:
        self.write_json({"quiz": await self.quizzes.save(self.actor, int(offering_id),
                                                         self.json_body(DOCUMENT_LIMIT))})


class QuizStatsHandler(OrganiserHandler):
    route = "/admin/v1/offerings/{id}/quiz/stats"

    async def get(self, offering_id: str) -> None:
        self.write_json({"stats": await self.quizzes.stats(self.actor, int(offering_id))})


class PollHandler(OrganiserHandler):
    route = "/admin/v1/offerings/{id}/poll"

    async def get(self, offering_id: str) -> None:
        self.write_json({"poll": await self.polls.manage_get(self.actor, int(offering_id))})

    async def put(self, offering_id: str) -> None:
        self.write_json({"poll": await self.polls.save(self.actor, int(offering_id), self.json_body())})


class ContestantHandler(WorkerHandler):
    def initialize(self, accounts: AccountService, login: WeChatLogin, auth: str,  # type: ignore[override]
                   quizzes: Quizzes, polls: Polls) -> None:
        super().initialize(accounts, login, auth)
        self.quizzes = quizzes
        self.polls = polls


class MyQuizHandler(ContestantHandler):
    route = "offerings/{id}/quiz"

    async def get(self, offering_id: str) -> None:
        self.write_json({"quiz": await self.quizzes.view(self.account_id, int(offering_id))})


class StartRoundHandler(ContestantHandler):
    route = "offerings/{id}/quiz/rounds"

    async def post(self, offering_id: str) -> None:
        self.write_json({"round": await self.quizzes.start(self.account_id, int(offering_id))}, 201)


class HandInHandler(ContestantHandler):
    route = "quiz-rounds/{id}/answers"

    async def post(self, round_id: str) -> None:
        answers = self.json_body().get("answers")
        self.write_json({"round": await self.quizzes.submit(self.account_id, int(round_id), answers)})


class MyPollHandler(ContestantHandler):
    route = "offerings/{id}/poll"

    async def get(self, offering_id: str) -> None:
        self.write_json({"poll": await self.polls.view(self.account_id, int(offering_id))})


class VoteHandler(ContestantHandler):
    route = "offerings/{id}/poll/votes"

    async def post(self, offering_id: str) -> None:
        chosen = self.json_body().get("option_ids")
        self.write_json({"poll": await self.polls.cast(self.account_id, int(offering_id), chosen)}, 201)


def routes(cadres: CadreService, accounts: AccountService, login: WeChatLogin, quizzes: Quizzes,
           polls: Polls) -> list:
    return [*route_table((QuizBankHandler, QuizStatsHandler, PollHandler),
                         {"cadres": cadres, "quizzes": quizzes, "polls": polls}),
            *worker_routes((MyQuizHandler, StartRoundHandler, HandInHandler, MyPollHandler, VoteHandler),
                           accounts=accounts, login=login, quizzes=quizzes, polls=polls)]
