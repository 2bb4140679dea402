"""Builds the Tornado application: every module's route list, with its services injected."""

from __future__ import annotations

import logging

import tornado.web

from wxbackend.handlers import (
    accounts,
    admin,
    health,
    membership,
    oa,
    openapi,
    platform_api,
    reviews,
    rosters,
    static,
    wechat_login,
)
from wxbackend.handlers.base import NotFoundHandler
from wxbackend.infra.logging import request_id
from wxbackend.runtime import Runtime

access_log = logging.getLogger("wxbackend.access")


def _log_request(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    # Only the path: query strings may carry signatures, codes or tokens.
    access_log.log(level, "%s %s %d", handler.request.method, handler.request.path, status,
                   extra={"status": status, "duration_ms": round(1000 * handler.request.request_time(), 2),
                          "remote_ip": handler.request.remote_ip,
                          "request_id": getattr(handler, "_request_id", request_id.get())})


def make_app(rt: Runtime) -> tornado.web.Application:
    routes = [
        *oa.routes(rt.envelope, rt.inbox),
        *wechat_login.routes(rt.login),
        *accounts.routes(rt.accounts, rt.login, rt.sms),
        *platform_api.routes(rt.apps, rt.accounts, rt.sso, rt.login.h5_sessions,
                             rt.settings.server.public_url),
        *admin.routes(rt.cadres),
        *membership.routes(rt.accounts, rt.login, rt.membership),
        *reviews.routes(rt.cadres, rt.reviews),
        *rosters.routes(rt.cadres, rt.rosters),
        *openapi.routes(),
        *health.routes(rt.pool, rt.redis),
        *static.routes(),
    ]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        log_function=_log_request,
        xsrf_cookies=False,  # the cadre console sets its own CSRF scheme per handler
        compress_response=False,  # nginx compresses; not per request in Python
        debug=rt.settings.server.debug,
        secure_cookies=rt.settings.sessions.secure_cookies,
    )
