"""Builds the Tornado application: every module's route list, with its services injected."""

from __future__ import annotations

import tornado.httpserver
import tornado.iostream
import tornado.web

from wxbackend.handlers import admin, health, oa, openapi, static
from wxbackend.handlers.activities import items, quiz_and_vote, verifier, worker
from wxbackend.handlers.base import NotFoundHandler, log_access
from wxbackend.handlers.casework import appeals, calendar, proposals, work
from wxbackend.handlers.channels import admin as channel_admin
from wxbackend.handlers.channels import media, mp, pages
from wxbackend.handlers.edge import Tarpit, TrustedProxies
from wxbackend.handlers.identity import accounts, platform_api, wechat_login
from wxbackend.handlers.kpi import briefings as kpi_briefings
from wxbackend.handlers.kpi import platform as kpi_platform
from wxbackend.handlers.kpi import reports as kpi_reports
from wxbackend.handlers.kpi import targets as kpi_targets
from wxbackend.handlers.ledger import admin as ledger_admin
from wxbackend.handlers.ledger import platform as ledger_platform
from wxbackend.handlers.ledger import tiles as ledger_tiles
from wxbackend.handlers.membership import membership, reviews, rosters
from wxbackend.handlers.office import business as office_business
from wxbackend.handlers.office import documents as office_documents
from wxbackend.handlers.office import info_reports
from wxbackend.handlers.office import meetings as office_meetings
from wxbackend.handlers.office import notices as office_notices
from wxbackend.handlers.office import usage as office_usage
from wxbackend.handlers.sandbox import pages as sandbox_pages
from wxbackend.handlers.sandbox.banner import SandboxBanner
from wxbackend.infra.logging import request_id
from wxbackend.runtime import Runtime
from wxbackend.sandbox.kit import Sandbox


def _log_request(handler: tornado.web.RequestHandler) -> None:
    request = handler.request
    log_access(request.method or "", request.path, handler.get_status(), request.request_time(),
               request.remote_ip, getattr(handler, "_request_id", None) or request_id.get())


def make_app(rt: Runtime, sandbox: Sandbox | None = None) -> tornado.web.Application:
    """``sandbox``: the training sandbox, given by ``wxbackend demo`` alone: its pages and the
    banner on every page exist only then."""
    routes = [
        *oa.routes(rt.envelope),
        *wechat_login.routes(rt.login),
        *accounts.routes(rt.accounts, rt.login, rt.sms),
        *platform_api.routes(rt.apps, rt.accounts, rt.sso, rt.login.h5_sessions,
                             rt.settings.server.public_url),
        *admin.routes(rt.cadres),
        *membership.routes(rt.accounts, rt.login, rt.membership),
        *reviews.routes(rt.cadres, rt.reviews),
        *rosters.routes(rt.cadres, rt.rosters),
        *items.routes(rt.cadres, rt.catalogue, rt.participants, rt.lottery, rt.registrations,
                      rt.redemption, rt.posters),
        *verifier.routes(rt.redemption),
        *quiz_and_vote.routes(rt.cadres, rt.accounts, rt.login, rt.quizzes, rt.polls),
        *worker.routes(rt.accounts, rt.login, rt.catalogue, rt.signups, rt.lottery, rt.redemption,
                       rt.posters),
        *channel_admin.routes(rt.cadres, rt.channels, rt.articles, rt.visit_stats,
                              rt.oa_publishing, rt.self_built),
        *media.routes(rt.cadres, rt.media),
        *calendar.routes(rt.cadres, rt.calendar),
        *work.routes(rt.cadres, rt.work, rt.work_lists, rt.rates),
        *work.binding_routes(rt.cadres, rt.accounts, rt.login, rt.cadre_wechat),
        *appeals.desk_routes(rt.cadres, rt.appeals),
        *appeals.worker_appeal_routes(rt.accounts, rt.login, rt.appeals),
        *proposals.committee_routes(rt.cadres, rt.proposals),
        *proposals.representative_routes(rt.accounts, rt.login, rt.proposals),
        *info_reports.routes(rt.cadres, rt.info_reports),
        *office_notices.routes(rt.cadres, rt.office_notices),
        *office_business.admin_routes(rt.cadres, rt.business, rt.business_apps),
        *office_business.applicant_routes(rt.accounts, rt.login, rt.business_apps),
        *office_usage.routes(rt.cadres, rt.usage),
        *kpi_reports.routes(rt.cadres, rt.kpi_reports),
        *kpi_briefings.routes(rt.cadres, rt.kpi_briefings),
        *kpi_platform.routes(rt.apps, rt.accounts, rt.sso, rt.kpi_reports),
        *kpi_targets.routes(rt.cadres, rt.kpi_targets),
        *office_documents.routes(rt.cadres, rt.documents),
        *ledger_tiles.routes(rt.ledger, rt.cosigning, rt.apps, rt.accounts, rt.sso),
        *ledger_platform.routes(rt.apps, rt.accounts, rt.sso, rt.ledger, rt.cosigning, rt.ledger_alarms),
        *ledger_admin.routes(rt.cadres, rt.ledger, rt.cosigning, rt.ledger_alarms),
        *office_meetings.routes(rt.cadres, rt.meetings),
        *office_meetings.attendee_routes(rt.accounts, rt.login, rt.meetings),
        *pages.routes(rt.reading, rt.visits, rt.settings.server.public_url),
        *mp.routes(rt.reading, rt.visits, rt.settings.server.public_url),
        *openapi.routes(),
        *health.routes(rt.pool, rt.redis),
        *static.routes(),
    ]
    if sandbox is not None:
        routes[-1:-1] = sandbox_pages.routes(sandbox)     # before the catch-all static files
    return tornado.web.Application(
        routes,
        transforms=[SandboxBanner] if sandbox is not None else [],
        default_handler_class=NotFoundHandler,
        log_function=_log_request,
        xsrf_cookies=False,  # the cadre console sets its own CSRF scheme per handler
        compress_response=False,  # nginx compresses; not per request in Python
        debug=rt.settings.server.debug,
        secure_cookies=rt.settings.sessions.secure_cookies,
    )


def _nodelay_kept(value: bool) -> None:
    return None


class _Server(tornado.httpserver.HTTPServer):
    """Tornado's HTTP server with TCP_NODELAY set once per connection. Tornado switches it on
    and off around every response, two system calls per request; an answer of ours leaves in one
    write (headers with the body, or large chunks of a download), so there is nothing for
    Nagle's algorithm to gather anyway."""

    def handle_stream(self, stream: tornado.iostream.IOStream, address: tuple) -> None:
        stream.set_nodelay(True)
        stream.set_nodelay = _nodelay_kept  # type: ignore[method-assign]
        super().handle_stream(stream, address)


def make_server(rt: Runtime, sandbox: Sandbox | None = None) -> tornado.httpserver.HTTPServer:
    """The HTTP server for the application, with the limits from the settings. Tornado's own
    ``xheaders`` stays off: :class:`oa.Front` believes forwarded headers from our proxies only."""
    server = rt.settings.server
    front = oa.Front(make_app(rt, sandbox), rt.envelope, rt.inbox,
                     proxies=TrustedProxies(server.trusted_proxies), max_body=server.max_body_bytes,
                     own_limits=frozenset({rosters.ImportsHandler.route, media.ImageUploadHandler.route,
                                           media.AttachmentUploadHandler.route,
                                           *appeals.FILE_UPLOAD_ROUTES,
                                           *office_business.FILE_UPLOAD_ROUTES,
                                           info_reports.PictureUploadHandler.route,
                                           kpi_targets.ImportHandler.route,
                                           *office_meetings.UPLOAD_ROUTES}),
                     refusals={admin.LoginHandler.route: rt.cadres.refusal},
                     pattern_refusals=[(worker.SIGNUP_PATH, worker.sold_out_at_the_front(rt.signups))],
                     tarpit=Tarpit(rt.settings.admin.refused_delay_ms / 1000))
    return _Server(front, xheaders=False, max_body_size=front.server_max_body,
                   idle_connection_timeout=60)
