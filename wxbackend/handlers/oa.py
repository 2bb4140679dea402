"""``/wechat/oa``: the Official Account message endpoint (URL verification and pushes).

Pushes (POST) are the platform's hottest path: every follower's message and menu tap, in bursts.
They are answered by :class:`PushExchange`, a Tornado ``HTTPMessageDelegate`` that the HTTP
server hands the request to directly (:class:`Front`), before Tornado builds a request object
and routes it: a push needs none of a ``RequestHandler``'s machinery (cookies, XSRF, output
transforms, header objects and flushing per request), nor the deep copy of the query string
that every ``HTTPServerRequest`` makes, and together they were 40% of Tornado's own time per
push. It keeps what every answer of ours has: the request id, the default headers, the JSON
error shape, the access log and the request metrics. URL verification (GET) and every other
request go to the application as usual.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import unquote_plus

import tornado.httputil
import tornado.web

from wxbackend.handlers.base import BaseHandler, error_response, log_access, new_request_id
from wxbackend.handlers.edge import DRAIN_FACTOR, Refused, Tarpit, TrustedProxies, write_answer
from wxbackend.infra.metrics import WECHAT_PUSHES, observe_request
from wxbackend.services.errors import DomainError
from wxbackend.services.messaging.oa_inbox import OAInbox
from wxbackend.wechat.envelope import Envelope, PushRejected

log = logging.getLogger(__name__)

ROUTE = "/wechat/oa"
_PARAMS = ("signature", "timestamp", "nonce", "openid", "encrypt_type", "msg_signature", "echostr")
_TEXT_TYPE = "text/plain; charset=UTF-8"
_TEXT = (("Content-Type", _TEXT_TYPE),)
_XML = (("Content-Type", "application/xml; charset=UTF-8"),)
_REJECTED = WECHAT_PUSHES.labels("rejected")


def _query(query: str) -> dict[str, str]:
    """WeChat's parameters from a query string (the last of repeated ones; empty ones left out).
    Only these few are wanted, so the query is not parsed into Tornado's argument lists."""
    out: dict[str, str] = {}
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name in _PARAMS and value:
            out[name] = unquote_plus(value) if "%" in value or "+" in value else value
    return out


def _rejected(exc: PushRejected) -> None:
    _REJECTED.inc()
    log.warning("push rejected: %s", exc.reason, extra={"status": exc.status})


class OAHandler(BaseHandler):
    """URL verification; any method but GET and POST is a 405."""
    route = ROUTE

    def initialize(self, envelope: Envelope) -> None:
        self.envelope = envelope

    def get(self) -> None:
        try:
            echostr = self.envelope.verify_url(_query(self.request.query))
        except PushRejected as exc:
            _rejected(exc)
            raise tornado.web.HTTPError(exc.status, reason=None) from None
        self.set_header("Content-Type", _TEXT_TYPE)
        self.finish(echostr)


class PushExchange(tornado.httputil.HTTPMessageDelegate):
    """One push and its answer."""

    def __init__(self, envelope: Envelope, inbox: OAInbox,
                 connection: tornado.httputil.HTTPConnection, target: str,
                 headers: tornado.httputil.HTTPHeaders) -> None:
        self._envelope = envelope
        self._inbox = inbox
        self._connection = connection
        self._target = target
        self._incoming_id = headers.get("X-Request-Id", "")
        # Read now: the connection's address is set again by the next request on it.
        self._remote_ip = getattr(getattr(connection, "context", None), "remote_ip", None)
        self._started = time.monotonic()
        self._chunks: list[bytes] = []
        self._answered = False
        self._rid = ""

    def data_received(self, chunk: bytes) -> None:
        # The body is bounded by the server's limit (:class:`Front`); the envelope has its own,
        # lower cap.
        self._chunks.append(chunk)

    def finish(self) -> None:
        body, self._chunks = b"".join(self._chunks), []
        asyncio.ensure_future(self._respond(body)).add_done_callback(self._done)

    def on_connection_close(self) -> None:
        self._answered = True  # the caller is gone: there is no one to answer

    @staticmethod
    def _done(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("push exchange failed", exc_info=task.exception())

    async def _respond(self, body: bytes) -> None:
        self._rid = new_request_id(self._incoming_id)
        try:
            query = _query(self._target.partition("?")[2])
            opened = self._envelope.open(query, body)
            result = await self._inbox.handle(opened, self._answer_now)
            if not self._answered:
                reply = self._envelope.seal(result.reply, opened, query)
                self._answer(200, reply.encode(), _TEXT if reply == "success" else _XML)
        except PushRejected as exc:
            _rejected(exc)
            self._answer_error(exc.status)
        except DomainError as exc:
            self._answer_error(exc.status, exc)
        except Exception as exc:
            log.exception("push not answered: %r", exc)
            self._answer_error(500)

    def _answer_now(self) -> None:
        """The reply budget ran out: answer ``success`` now; the reply goes out later."""
        self._answer(200, b"success", _TEXT)

    def _answer_error(self, status: int, exc: DomainError | None = None) -> None:
        body, headers = error_response(status, exc)
        self._answer(status, body.encode(), headers)

    def _answer(self, status: int, body: bytes, own: tuple[tuple[str, str], ...]) -> None:
        """Answers once: the common headers, then the answer's ``own`` (its content type, and an
        error's extra headers)."""
        if self._answered:
            return
        self._answered = True
        write_answer(self._connection, status, body, own, self._rid)
        seconds = time.monotonic() - self._started
        observe_request(ROUTE, "POST", status, seconds)
        log_access("POST", ROUTE, status, seconds, self._remote_ip, self._rid)


# An address -> the error it is still refused with and how many times so far, or None.
Refusal = Callable[[str], tuple[DomainError, int] | None]
# A path's match and the request's headers -> the error to answer at once, or None.
PatternRefusal = Callable[[re.Match, tornado.httputil.HTTPHeaders], DomainError | None]
# A flood's repeats answered at the front are logged once every this many (and the first).
REFUSALS_LOGGED_EVERY = 100


class Front(tornado.httputil.HTTPServerConnectionDelegate):
    """What the HTTP server calls for each request: it sets the client's address (believing
    forwarded headers from ``proxies`` only), answers a body over ``max_body`` with the JSON 413,
    and hands a push to a :class:`PushExchange`, anything else to the application. The paths in
    ``own_limits`` (streamed uploads) check their declared size themselves. ``refusals`` maps a
    POST path to what says whether a client address is still refused there (a sign-in flood);
    ``pattern_refusals`` pairs POST path patterns with what says whether a request is answered at
    once (an attempt on a sold-out item): such requests are answered here, before a handler is
    built. The refusals of a refused address wait in ``tarpit`` before they are written."""

    def __init__(self, app: tornado.httputil.HTTPServerConnectionDelegate, envelope: Envelope,
                 inbox: OAInbox, *, proxies: TrustedProxies | None = None,
                 max_body: int = 1_048_576, own_limits: frozenset[str] = frozenset(),
                 refusals: Mapping[str, Refusal] | None = None,
                 pattern_refusals: Sequence[tuple[re.Pattern, PatternRefusal]] = (),
                 tarpit: Tarpit | None = None) -> None:
        self.tarpit = tarpit
        self._app = app
        self._envelope = envelope
        self._inbox = inbox
        self.proxies = proxies or TrustedProxies(())
        self.max_body = max_body
        self.own_limits = own_limits
        self.refusals = dict(refusals or {})
        self.pattern_refusals = tuple(pattern_refusals)

    @property
    def server_max_body(self) -> int:
        """The HTTP server's own cut-off: beyond what is read and dropped for a 413."""
        return DRAIN_FACTOR * self.max_body

    def start_request(self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
                      ) -> tornado.httputil.HTTPMessageDelegate:
        return _Dispatch(self, server_conn, request_conn)

    def push_exchange(self, request_conn: tornado.httputil.HTTPConnection, target: str,
                      headers: tornado.httputil.HTTPHeaders) -> PushExchange:
        return PushExchange(self._envelope, self._inbox, request_conn, target, headers)

    def app_request(self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
                    ) -> tornado.httputil.HTTPMessageDelegate:
        return self._app.start_request(server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self._app.on_close(server_conn)


def _declared_length(headers: tornado.httputil.HTTPHeaders) -> int | None:
    value = headers.get("Content-Length", "")
    return int(value) if value.isascii() and value.isdigit() else None


class _Dispatch(tornado.httputil.HTTPMessageDelegate):
    """Chooses the delegate once the request line is read, then passes everything on."""

    def __init__(self, front: Front, server_conn: object,
                 request_conn: tornado.httputil.HTTPConnection) -> None:
        self._front = front
        self._server_conn = server_conn
        self._request_conn = request_conn
        self._delegate: tornado.httputil.HTTPMessageDelegate | None = None
        self._counting: tuple[str, str, tornado.httputil.HTTPHeaders] | None = None
        self._received = 0

    def headers_received(self, start_line: tornado.httputil.RequestStartLine,  # type: ignore[override]
                         headers: tornado.httputil.HTTPHeaders) -> Awaitable[None] | None:
        front, conn = self._front, self._request_conn
        front.proxies.apply(conn.context, headers)  # type: ignore[attr-defined]
        path = start_line.path.partition("?")[0]
        if path not in front.own_limits:
            declared = _declared_length(headers)
            if declared is not None and declared > front.max_body:
                self._refuse(start_line.method, path, headers, declared)
                return None
            if declared is None and "Transfer-Encoding" in headers:
                self._counting = (start_line.method, path, headers)
        if start_line.method == "POST" and path == ROUTE:
            self._delegate = front.push_exchange(conn, start_line.path, headers)
            return None
        if start_line.method == "POST" and path in front.refusals:
            remote_ip = getattr(getattr(conn, "context", None), "remote_ip", None) or ""
            refused = front.refusals[path](remote_ip)
            if refused is not None:
                error, times = refused
                self._delegate = Refused(conn, "POST", path, headers, remote_ip, status=error.status,
                                         error=error, logged=times % REFUSALS_LOGGED_EVERY == 1,
                                         tarpit=front.tarpit)
                return None
        if start_line.method == "POST":
            for pattern, refuse in front.pattern_refusals:
                match = pattern.match(path)
                error = refuse(match, headers) if match else None
                if error is not None:  # counted in the metrics; not worth a log line each
                    remote_ip = getattr(getattr(conn, "context", None), "remote_ip", None)
                    self._delegate = Refused(conn, "POST", path, headers, remote_ip,
                                             status=error.status, error=error, logged=False)
                    return None
        self._delegate = front.app_request(self._server_conn, conn)
        return self._delegate.headers_received(start_line, headers)

    def _refuse(self, method: str, path: str, headers: tornado.httputil.HTTPHeaders,
                declared: int | None) -> None:
        conn = self._request_conn
        refusal = Refused(conn, method, path, headers,
                           getattr(getattr(conn, "context", None), "remote_ip", None))
        self._delegate = refusal
        if declared is None:
            return  # a chunked body, already over: the rest is dropped as it comes
        # Tornado reads (and drops) the body only within its limit; beyond it, it would write
        # a bare 400 of its own after ours.
        conn.set_max_body_size(declared)  # type: ignore[attr-defined]
        if declared > self._front.server_max_body or \
                headers.get("Expect", "").lower() == "100-continue":
            refusal.answer(close=True)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self._delegate is not None
        if self._counting is not None:
            self._received += len(chunk)
            if self._received > self._front.max_body:
                self._delegate.on_connection_close()
                self._refuse(*self._counting, None)
                self._counting = None
        return self._delegate.data_received(chunk)

    def finish(self) -> None:
        assert self._delegate is not None
        self._delegate.finish()

    def on_connection_close(self) -> None:
        if self._delegate is not None:
            self._delegate.on_connection_close()


def routes(envelope: Envelope) -> list:
    return [(ROUTE, OAHandler, {"envelope": envelope})]
