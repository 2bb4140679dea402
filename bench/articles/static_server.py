"""The yardstick for the article page: Tornado serving a directory of static files, nothing else.

    python bench/articles/static_server.py DIRECTORY PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys

import tornado.web


async def main(root: str, port: int) -> None:
    app = tornado.web.Application([(r"/(.*)", tornado.web.StaticFileHandler, {"path": root})])
    server = app.listen(port, "127.0.0.1", xheaders=False)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


if __name__ == "__main__":
    try:
        import uvloop  # the server under test runs on uvloop too
    except ImportError:
        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    else:
        uvloop.run(main(sys.argv[1], int(sys.argv[2])))
