"""``/wechat/oa``: the Official Account message endpoint (URL verification and pushes)."""

from __future__ import annotations

import logging

import tornado.web

from wxbackend.handlers.base import BaseHandler
from wxbackend.infra.metrics import WECHAT_PUSHES
from wxbackend.services.oa_inbox import OAInbox
from wxbackend.wechat.envelope import Envelope, PushRejected

log = logging.getLogger(__name__)

_PARAMS = ("signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature", "echostr")


class OAHandler(BaseHandler):
    route = "/wechat/oa"

    def initialize(self, envelope: Envelope, inbox: OAInbox) -> None:
        self.envelope = envelope
        self.inbox = inbox

    def _query(self) -> dict[str, str]:
        # Straight from the parsed query string: get_query_argument's per-call decoding and
        # stripping is a measurable share of a push's cost, and these values are ASCII.
        args = self.request.query_arguments
        return {k: v[-1].decode("latin-1") for k in _PARAMS if (v := args.get(k)) and v[-1]}

    def _reject(self, exc: PushRejected) -> None:
        WECHAT_PUSHES.labels("rejected").inc()
        log.warning("push rejected: %s", exc.reason, extra={"status": exc.status})
        raise tornado.web.HTTPError(exc.status, reason=None)

    def get(self) -> None:
        try:
            echostr = self.envelope.verify_url(self._query())
        except PushRejected as exc:
            self._reject(exc)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(echostr)

    async def post(self) -> None:
        query = self._query()
        try:
            opened = self.envelope.open(query, self.request.body)
        except PushRejected as exc:
            self._reject(exc)
        result = await self.inbox.handle(opened)
        body = self.envelope.seal(result.reply, opened, query)
        if body == "success":
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
        else:
            self.set_header("Content-Type", "application/xml; charset=UTF-8")
        self.finish(body)


def routes(envelope: Envelope, inbox: OAInbox) -> list:
    return [(r"/wechat/oa", OAHandler, {"envelope": envelope, "inbox": inbox})]
