"""What the HTTP server decides for every request before any handler runs: who the client is
(forwarded headers are believed only from our own proxies) and whether its body is too large to
read (answered with the JSON 413, not a dropped connection).
"""

from __future__ import annotations

import functools
import ipaddress
import secrets
import socket
import time
from collections.abc import Iterable

import tornado.httputil
import tornado.ioloop

from wxbackend.handlers.base import DEFAULT_HEADERS, error_response, log_access, new_request_id
from wxbackend.infra.metrics import observe_request
from wxbackend.services.errors import DomainError

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The client address and scheme of a request, from the socket peer and, only when that peer
    is one of our proxies, from the headers it sets.

    ``X-Real-IP`` names the client as the proxy next to us saw it; when it names one of our own
    proxies (nginx behind a load balancer), the right-most ``X-Forwarded-For`` hop that is not one
    of ours is the client. Hops left of it were written by the client and prove nothing.
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(n.strip(), strict=False) for n in networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one instance per process, few distinct peers
    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d
        return any(ip in network for network in self._networks)

    def client(self, peer: str, headers: tornado.httputil.HTTPHeaders) -> str:
        """The client's address: ``peer`` unless ``peer`` is one of our proxies."""
        if not self.trusts(peer):
            return peer
        real = _address(headers.get("X-Real-Ip", ""))
        if real and not self.trusts(real):
            return real
        hops = [hop for hop in (_address(h) for h in headers.get("X-Forwarded-For", "").split(","))]
        for hop in reversed(hops):
            if not hop:
                break  # a malformed hop: what lies left of it cannot be placed
            if not self.trusts(hop):
                return hop
        return real or peer

    def protocol(self, peer: str, own: str, headers: tornado.httputil.HTTPHeaders) -> str:
        """``https`` when our proxy says the client spoke TLS to it."""
        if not self.trusts(peer):
            return own
        sent = headers.get("X-Forwarded-Proto", headers.get("X-Scheme", "")).split(",")[-1].strip()
        return sent if sent in ("http", "https") else own

    def apply(self, context: object, headers: tornado.httputil.HTTPHeaders) -> None:
        """Sets the connection's ``remote_ip`` and ``protocol`` for this request (Tornado's own
        ``xheaders`` is off: it believes anyone). Each request starts again from the socket."""
        if not self._networks or getattr(context, "address_family", None) not in (
                socket.AF_INET, socket.AF_INET6):
            return
        peer = context.address[0]  # type: ignore[attr-defined]
        own = getattr(context, "_orig_protocol", "http")  # Tornado keeps the socket's scheme here
        context.remote_ip = self.client(peer, headers)  # type: ignore[attr-defined]
        context.protocol = self.protocol(peer, own, headers)  # type: ignore[attr-defined]


def _address(text: str) -> str:
    """A forwarded address as a plain IP (``[::1]:80`` and ``1.2.3.4:80`` forms too), or ``""``."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def write_answer(connection: tornado.httputil.HTTPConnection, status: int, body: bytes,
                 own: Iterable[tuple[str, str]], rid: str) -> None:
    """Writes a whole answer straight to the connection: the common headers, then the answer's
    ``own`` (its content type, and an error's extra headers)."""
    headers = tornado.httputil.HTTPHeaders()
    for name, value in (("Content-Length", str(len(body))), ("Date", _http_date(int(time.time()))),
                        ("X-Request-Id", rid), *DEFAULT_HEADERS, *own):
        headers[name] = value
    start = tornado.httputil.ResponseStartLine(
        "HTTP/1.1", status, tornado.httputil.responses.get(status, "Unknown"))
    connection.write_headers(start, headers, body)
    connection.finish()


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    """The ``Date`` header, formatted once per second rather than once per answer."""
    return tornado.httputil.format_timestamp(second)


# A body over the limit is read and dropped up to this many times the limit, so that the client,
# which sends it all before reading, gets the 413 rather than a reset connection; beyond that,
# or when the client waits for ``100 Continue``, the 413 goes out at once and the connection closes.
DRAIN_FACTOR = 4


class Tarpit:
    """Answers to a flood's repeats, each held back a random while (between half of
    ``max_delay`` and all of it) before it is written. A flood's attackers are answered within
    milliseconds of each other and come back together, so their next tries arrive as one burst
    that every other request then queues behind; held back at random, they come back spread out,
    and each attacker at half the pace. At most ``max_held`` answers wait at once in a process;
    beyond that they are written at once."""

    def __init__(self, max_delay: float, max_held: int = 2000) -> None:
        self.max_delay = max_delay
        self.max_held = max_held
        self.held = 0

    def hold(self) -> float:
        """How long to hold the next answer back (0: write it now), counted as held."""
        if self.max_delay <= 0 or self.held >= self.max_held:
            return 0.0
        self.held += 1
        half = self.max_delay / 2
        return half + half * secrets.randbelow(1001) / 1000

    def release(self) -> None:
        self.held -= 1


class Refused(tornado.httputil.HTTPMessageDelegate):
    """A request answered at the front with an error, its body dropped: one whose body is over
    the limit (the JSON 413), or one from an address already refused for the rest of a window
    (``error``, a 429 with its Retry-After). ``logged`` is False for the repeats of a flood, which
    would bury the access log; the metrics count every one. With a ``tarpit``, the answer waits
    there first."""

    def __init__(self, connection: tornado.httputil.HTTPConnection, method: str, path: str,
                 headers: tornado.httputil.HTTPHeaders, remote_ip: str | None, *,
                 status: int = 413, error: DomainError | None = None, logged: bool = True,
                 tarpit: Tarpit | None = None) -> None:
        self._tarpit = tarpit
        self._held: object | None = None
        self._connection = connection
        self._method = method
        self._path = path
        self._incoming_id = headers.get("X-Request-Id", "")
        self._remote_ip = remote_ip
        self._status = status
        self._error = error
        self._logged = logged
        self._started = time.monotonic()
        self._answered = False

    def answer(self, close: bool = False) -> None:
        if self._answered:
            return
        self._answered = True
        rid = new_request_id(self._incoming_id)
        body, own = error_response(self._status, self._error)
        write_answer(self._connection, self._status, body.encode(),
                     (*own, ("Connection", "close")) if close else own, rid)
        seconds = time.monotonic() - self._started
        observe_request("refused", self._method, self._status, seconds)
        if self._logged:
            log_access(self._method, self._path, self._status, seconds, self._remote_ip, rid)

    def data_received(self, chunk: bytes) -> None:
        return None

    def finish(self) -> None:
        delay = self._tarpit.hold() if self._tarpit is not None else 0.0
        if delay:
            self._held = tornado.ioloop.IOLoop.current().call_later(delay, self._let_go)
        else:
            self.answer()

    def _let_go(self) -> None:
        self._held = None
        self._tarpit.release()  # type: ignore[union-attr]
        self.answer()

    def on_connection_close(self) -> None:
        self._answered = True
        if self._held is not None:
            tornado.ioloop.IOLoop.current().remove_timeout(self._held)
            self._held = None
            self._tarpit.release()  # type: ignore[union-attr]
