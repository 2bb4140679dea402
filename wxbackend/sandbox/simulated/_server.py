"""What every simulated service shares: a Tornado server on a free 127.0.0.1 port of the running
loop.

A fake subclasses :class:`FakeServer` and implements ``_serve``, which answers every request
(GET or POST, any path) while it counts as in flight. Handlers that hold an answer wait with
:meth:`FakeServer._hold`, so ``stop`` can wake them and no task outlives the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

import tornado.httpserver
import tornado.web
from tornado.netutil import bind_sockets

__all__ = ["FakeServer"]


class _Handler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeServer) -> None:
        self.fake = fake

    def compute_etag(self) -> None:
        return None

    async def get(self) -> None:
        await self.fake._handle(self)

    async def post(self) -> None:
        await self.fake._handle(self)


class FakeServer:
    """Lifecycle of a fake served over real HTTP: ``start``/``stop`` or ``async with``."""

    def __init__(self) -> None:
        self.base_url = ""
        self.endpoint = ""
        self._server: tornado.httpserver.HTTPServer | None = None
        self._closing = asyncio.Event()
        self._inflight: set[asyncio.Task[Any]] = set()

    async def start(self) -> str:
        """Listen on a free 127.0.0.1 port and return the base URL (``endpoint`` is host:port)."""
        if self._server is not None:
            return self.base_url
        [sock] = bind_sockets(0, "127.0.0.1")
        port = sock.getsockname()[1]
        app = tornado.web.Application([(r"/.*", _Handler, {"fake": self})])
        self._closing = asyncio.Event()
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets([sock])
        self.endpoint = f"127.0.0.1:{port}"
        self.base_url = f"http://{self.endpoint}"
        return self.base_url

    async def stop(self) -> None:
        """Close the socket and wake delayed handlers, so no task outlives the loop."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.stop()
        self._closing.set()
        await server.close_all_connections()
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=5)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _handle(self, handler: tornado.web.RequestHandler) -> None:
        """Answer with ``_serve``, counted as in flight until it ends (``stop`` waits for it)."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        await self._serve(handler)

    async def _hold(self, seconds: float) -> None:
        """Wait ``seconds`` before answering, or less if the server stops meanwhile."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            pass

    async def _serve(self, handler: tornado.web.RequestHandler) -> None:
        """Answer one request; each fake implements it."""
        raise NotImplementedError
