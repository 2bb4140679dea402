"""The base handler: request id, one JSON error shape, metrics. Every handler derives from it."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import asyncpg
import redis.exceptions
import tornado.web

from wxbackend.infra.logging import request_id
from wxbackend.infra.metrics import observe_request
from wxbackend.services.errors import DomainError, InvalidInput, Unavailable

log = logging.getLogger(__name__)
access_log = logging.getLogger("wxbackend.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DIGITS = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() also takes "²", which int() refuses
# A JSON escape for U+0000: "\u0000" after an even number of backslashes (an odd one would make
# it the text "\u0000"). A raw NUL byte is not valid JSON in the first place.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_INTERNAL = ("internal_error", "服务器内部错误，请稍后再试")
_STATUS_MESSAGES = {
    400: ("bad_request", "请求格式有误"),
    403: ("forbidden", "没有权限进行此操作"),
    404: ("not_found", "未找到相应的内容"),
    405: ("method_not_allowed", "不支持该请求方式"),
    413: ("too_large", "提交的内容过大"),
    429: ("too_many_requests", "操作过于频繁，请稍后再试"),
    503: ("unavailable", "服务暂时不可用，请稍后再试"),
}


# Request ids only need to be unique, not secret: a random prefix per process and a counter
# (no system call per request).
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


# Sent with every answer, whichever way it is written (handlers, pages, the push endpoint).
DEFAULT_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"),
                   ("Server", "wxbackend"))
JSON_TYPE = "application/json; charset=UTF-8"

# A numeric id in a URL. A handler's ``route`` (its metrics label) writes it as ``{id}``.
ID = r"([0-9]{1,12})"


def url_pattern(route: str) -> str:
    """The URL pattern for a route: each ``{id}`` becomes a numeric capture group."""
    return route.replace("{id}", ID)


def route_table(handlers: Iterable[type[BaseHandler]], kwargs: dict) -> list:
    """Tornado's URL rules for handlers, each at its ``route`` (``{id}`` for a numeric id)."""
    return [(url_pattern(handler.route), handler, kwargs) for handler in handlers]


def new_request_id(incoming: str) -> str:
    """The request's id for logs and the response header: the caller's, if sane, else ours; it
    also becomes the current request id of the running task."""
    rid = incoming if _REQUEST_ID.match(incoming) else f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"
    request_id.set(rid)
    return rid


def tag_request(handler: tornado.web.RequestHandler) -> None:
    rid = new_request_id(handler.request.headers.get("X-Request-Id", ""))
    handler._request_id = rid  # type: ignore[attr-defined]
    handler.set_header("X-Request-Id", rid)


def log_access(method: str, path: str, status: int, seconds: float, remote_ip: str | None,
               rid: str) -> None:
    """One access-log line per answered request."""
    # 409 is the state of things saying no (sold out, over a cap, already decided), an answer as
    # ordinary as a 200: a drop gives thousands a second, which must not bury the warnings.
    level = logging.INFO if status < 400 or status == 409 else \
        logging.WARNING if status < 500 else logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    # Only the path: query strings may carry signatures, codes or tokens.
    access_log.log(level, "%s %s %d", method, path, status,
                   extra={"status": status, "duration_ms": round(1000 * seconds, 2),
                          "remote_ip": remote_ip, "request_id": rid})


def error_body(status: int, exc: BaseException | None = None) -> str:
    """The one JSON error shape: a domain error's own code and message, else the status's."""
    if isinstance(exc, DomainError):
        code, message = exc.code, exc.message
    else:
        code, message = _STATUS_MESSAGES.get(status, _INTERNAL)
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)


def error_response(status: int, exc: BaseException | None = None) -> tuple[str, tuple[tuple[str, str], ...]]:
    """An error answer's body and headers: a domain error's own headers (``Retry-After``,
    ``WWW-Authenticate``), then the JSON content type."""
    extra = tuple(exc.headers.items()) if isinstance(exc, DomainError) else ()
    return error_body(status, exc), (*extra, ("Content-Type", JSON_TYPE))


# A backing server that is down or overloaded: the request may well work in a moment, so the
# answer is a 503 with Retry-After, not an internal error.
_OUTAGES = (
    ((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError),
     Unavailable("缓存服务暂时不可用，请稍后再试", code="cache_unavailable",
                 headers={"Retry-After": "10"})),
    ((asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
      asyncpg.TooManyConnectionsError, asyncpg.InterfaceError, ConnectionError, TimeoutError),
     Unavailable("数据库暂时不可用，请稍后再试", code="database_unavailable",
                 headers={"Retry-After": "10"})),
)


def outage(exc: BaseException) -> Unavailable | None:
    """The 503 for an exception that means Redis or PostgreSQL is unreachable, else None."""
    for kinds, answer in _OUTAGES:
        if isinstance(exc, kinds):
            return answer
    return None


class _OutageLog:
    """One warning per backing server per ``every`` seconds while it is down, with how many
    requests failed since the last one: an outage under load must not bury the log."""

    def __init__(self, every: float = 10.0) -> None:
        self._every = every
        self._next: dict[str, float] = {}
        self._missed: dict[str, int] = {}

    def report(self, code: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now < self._next.get(code, 0.0):
            self._missed[code] = self._missed.get(code, 0) + 1
            return
        self._next[code] = now + self._every
        missed = self._missed.pop(code, 0)
        log.warning("%s: %s: %s (%d more requests failed since the last report)",
                    code, type(exc).__name__, exc, missed)


_outage_log = _OutageLog()


def _safe_args(args: Iterable[Any]) -> tuple:
    """An HTTPError's log arguments without raw bytes: Tornado passes the start of a badly
    encoded query argument's value, which is the caller's data."""
    return tuple(f"<{len(a)} bytes>" if isinstance(a, bytes | bytearray) else a for a in args)


class QuietRequestLog:
    """Log lines about a request name its method and path only: a query string may carry an
    OAuth code, a signature or a token (Tornado's own lines carry the whole URI)."""

    request: Any

    def _request_summary(self) -> str:
        return f"{self.request.method} {self.request.path}"

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                message = value.log_message % _safe_args(value.args) if value.args else value.log_message
                log.warning("%d %s: %s", value.status_code, self._request_summary(), message)
            return
        log.error("uncaught exception in %s", self._request_summary(), exc_info=(typ, value, tb))


class BaseHandler(QuietRequestLog, tornado.web.RequestHandler):
    route = "other"  # metrics label: the route pattern, never the raw path

    def prepare(self) -> None:
        tag_request(self)

    def set_default_headers(self) -> None:
        for name, value in DEFAULT_HEADERS:
            self.set_header(name, value)

    def set_private_cookie(self, name: str, value: str, *, samesite: str, path: str,
                           max_age: int) -> None:
        """A session-like cookie: never readable by scripts, SameSite, and Secure whenever the
        request came over TLS (``secure_cookies = "auto"``, behind nginx via X-Forwarded-Proto)."""
        mode = self.settings.get("secure_cookies", "auto")
        secure = mode == "always" or (mode == "auto" and self.request.protocol == "https")
        self.set_cookie(name, value, httponly=True, secure=secure, samesite=samesite, path=path,
                        max_age=max_age)

    def json_body(self, limit: int = 16_384) -> dict:
        """The request's JSON object, or an InvalidInput the worker can read."""
        body = self.request.body
        if len(body) > limit:
            raise DomainError("提交的内容过大", code="too_large")
        try:
            data = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: arrays or objects nested thousands deep
            raise DomainError("请求内容不是有效的 JSON", code="invalid_json") from None
        if not isinstance(data, dict):
            raise DomainError("请求内容应为 JSON 对象", code="invalid_json")
        if _NUL_ESCAPE.search(body):  # PostgreSQL text cannot hold U+0000 (Tornado strips it from forms)
            raise DomainError("请求内容含有不允许的控制字符", code="invalid_json")
        return data

    def int_argument(self, name: str, default: int | None = None) -> int | None:
        """A non-negative integer query argument (an id, a page size), or ``default``."""
        value = self.get_query_argument(name, "")
        if not value:
            return default
        if not _DIGITS.fullmatch(value):
            raise InvalidInput(f"{name} 应为数字", code="invalid_input")
        return int(value)

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(data, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        body, headers = error_response(status_code, kwargs.get("exc_info", (None, None, None))[1])
        for name, value in headers:
            self.set_header(name, value)
        self.finish(body)

    def _handle_request_exception(self, e: BaseException) -> None:
        unavailable = outage(e)
        if unavailable is not None:
            _outage_log.report(unavailable.code, e)
            e = unavailable
        if isinstance(e, DomainError):
            if self._finished:
                return
            if self._headers_written:
                self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))  # closes it
                return
            # Tornado's send_error first resets every header to the defaults (clear()); for an
            # answer of ours nothing a handler sets before failing needs undoing except what it
            # wrote, and losers of a drop are thousands of these a second.
            self._write_buffer = []
            self.clear_header("Content-Disposition")  # a download that failed before its body
            self.set_status(e.status)
            self.write_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def on_finish(self) -> None:
        observe_request(self.route, self.request.method or "", self.get_status(),
                        self.request.request_time())


class NotFoundHandler(BaseHandler):
    route = "not_found"

    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404)
