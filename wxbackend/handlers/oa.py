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
        return {k: v for k in _PARAMS if (v := self.get_query_argument(k, ""))}

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
        result = await self.inbox.handle(opened.message, opened.fields)
        body = self.envelope.seal(result.reply, opened, query)
        if body == "success":
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
        else:
            self.set_header("Content-Type", "application/xml; charset=UTF-8")
        self.finish(body)


def routes(envelope: Envelope, inbox: OAInbox) -> list:
    return [(r"/wechat/oa", OAHandler, {"envelope": envelope, "inbox": inbox})]
