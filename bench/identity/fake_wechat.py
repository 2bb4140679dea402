"""The tests' fake WeChat API (``tests.fakes.FakeWeChat``) in a process of its own, for
``bench/identity/run.py``.

    .venv/bin/python bench/identity/fake_wechat.py --control-port PORT --mp-appid APPID \\
        --mp-secret SECRET [--oa-appid APPID --oa-secret SECRET]

The fake itself listens on a free 127.0.0.1 port (``FakeWeChat.start``) and plays
``api.weixin.qq.com`` for the server under test: ``/sns/jscode2session`` exchanges a single-use
``wx.login`` code for the user's openid, session_key and unionid, as WeChat does. The driver talks
to a small control server on ``--control-port`` (127.0.0.1 only):

``GET /bench/info``
    ``{"base_url": ..., "jscode2session": N}``: where the fake answers (the server's
    ``[wechat] api_base``) and how many ``/sns/jscode2session`` calls reached it since the last
    reset.
``GET /bench/codes?prefix=P&users=U&n=N``
    Registers the Mini Program users ``P``·0 … ``P``·(U-1) the first time they are named (each
    with an openid and a unionid shaped like WeChat's), then issues N single-use ``wx.login``
    codes for them in rotation (code i belongs to user i mod U). Codes live five minutes on the
    fake's clock, so the driver asks for them right before a run. Answers
    ``{"codes": [...], "users": [[openid, unionid], ...]}``.
``POST /bench/reset``
    Forgets the calls the fake recorded (``FakeWeChat.reset``), so a long benchmark does not
    grow its memory without bound.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import signal
import sys
from pathlib import Path

import tornado.httpserver
import tornado.web

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes import FakeWeChat  # noqa: E402

MAX_CODES = 200_000  # per request
MAX_USERS = 100_000  # per prefix


def wechat_id(kind: str, prefix: str, index: int) -> str:
    """28 characters shaped like WeChat's openids and unionids ("o" + 27 url-safe characters),
    the same for the same (kind, prefix, index) in every process."""
    digest = hashlib.sha256(f"{kind}:{prefix}:{index}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


class Users:
    """The Mini Program users registered with the fake, by prefix."""

    def __init__(self, fake: FakeWeChat, mp_appid: str) -> None:
        self.fake = fake
        self.mp_appid = mp_appid
        self.by_prefix: dict[str, list[tuple[str, str]]] = {}

    def ensure(self, prefix: str, n: int) -> list[tuple[str, str]]:
        users = self.by_prefix.setdefault(prefix, [])
        for i in range(len(users), n):
            openid, unionid = wechat_id("openid", prefix, i), wechat_id("unionid", prefix, i)
            self.fake.mp_user(openid, unionid=unionid)
            users.append((openid, unionid))
        return users[:n]

    def codes(self, prefix: str, users: int, n: int) -> dict:
        people = self.ensure(prefix, users)
        codes = [self.fake.issue_js_code(people[i % users][0], self.mp_appid) for i in range(n)]
        return {"codes": codes, "users": people}


class _Control(tornado.web.RequestHandler):
    def initialize(self, fake: FakeWeChat, users: Users) -> None:
        self.fake = fake
        self.users = users

    def _int(self, name: str, low: int, high: int) -> int:
        try:
            value = int(self.get_query_argument(name))
        except (tornado.web.MissingArgumentError, ValueError):
            raise tornado.web.HTTPError(400, f"{name}: an integer expected") from None
        if not low <= value <= high:
            raise tornado.web.HTTPError(400, f"{name}: {low}..{high}")
        return value

    def get(self, what: str) -> None:
        if what == "info":
            self.finish({"base_url": self.fake.base_url,
                         "jscode2session": self.fake.count("/sns/jscode2session")})
        elif what == "codes":
            prefix = self.get_query_argument("prefix", "bench")
            if not prefix.isalnum() or len(prefix) > 32:
                raise tornado.web.HTTPError(400, "prefix: up to 32 letters or digits")
            users = self._int("users", 1, MAX_USERS)
            n = self._int("n", 1, MAX_CODES)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(self.users.codes(prefix, users, n)))
        else:
            raise tornado.web.HTTPError(404)

    def post(self, what: str) -> None:
        if what != "reset":
            raise tornado.web.HTTPError(404)
        self.fake.reset()
        self.finish({"reset": True})


async def serve(args: argparse.Namespace) -> None:
    fake = FakeWeChat(args.oa_appid, args.oa_secret)
    fake.add_app(args.mp_appid, args.mp_secret)
    await fake.start()
    users = Users(fake, args.mp_appid)
    control = tornado.httpserver.HTTPServer(tornado.web.Application(
        [(r"/bench/(\w+)", _Control, {"fake": fake, "users": users})]))
    control.listen(args.control_port, "127.0.0.1")
    print(f"fake WeChat on {fake.base_url}; control on 127.0.0.1:{args.control_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    control.stop()
    await fake.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="The tests' fake WeChat API, for benchmarks.")
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--mp-appid", required=True)
    parser.add_argument("--mp-secret", required=True)
    parser.add_argument("--oa-appid", default="wx0123456789abcdef")
    parser.add_argument("--oa-secret", default="fake-secret")
    asyncio.run(serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
