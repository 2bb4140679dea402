"""Shared fixtures: real PostgreSQL and Redis (embedded, one pair per test session), a fake
WeChat over real HTTP, the real server on a port, and a guard that fails a test on any
unexpected ERROR log."""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import tornado.httpserver
import tornado.testing

from tests.fakes import FakePusher, FakeTencentSms, FakeWeChat
from wxbackend.app import make_server
from wxbackend.config import Settings, load_settings
from wxbackend.infra.db import connect
from wxbackend.infra.embedded import EmbeddedServers
from wxbackend.infra.migrations import migrate
from wxbackend.runtime import Runtime, open_runtime
from wxbackend.services.clock import CHINA, china_now
from wxbackend.services.ledger.notes import Signer
from wxbackend.services.seed import seed
from wxbackend.store.reset import empty_everything

APPID = "wx0123456789abcdef"
SECRET = "fake-app-secret-0123456789abcdef"
TOKEN = "sctuTokenForTests2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
ORIGINAL_ID = "gh_0123456789ab"
PUBLIC_URL = "https://wx.example.org"
MP_APPID = "wxmp0123456789abc"
MP_SECRET = "fake-mp-secret-0123456789abcdef"
FIELD_KEYS = "1:MDEyMzQ1Njc4OWFiY2RlZg==,2:ZmVkY2JhOTg3NjU0MzIxMA=="
INDEX_KEY = "aW5kZXgta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5YWI="
AUDIT_KEY = "YXVkaXQta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5YWI="
LEDGER_ORIGIN = "test.ledger/base-data"
LEDGER_SIGNER = Signer.generate(LEDGER_ORIGIN)


# --- unexpected ERROR logs fail the test -----------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "expected_errors(*patterns): ERROR logs matching these regexes are expected")


@pytest.fixture(autouse=True)
def _no_unexpected_errors(request: pytest.FixtureRequest,
                          caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    marker = request.node.get_closest_marker("expected_errors")
    allowed = [re.compile(p) for p in (marker.args if marker else ())]
    unexpected = [r for r in caplog.get_records("call") + caplog.get_records("teardown")
                  if r.levelno >= logging.ERROR
                  and not any(p.search(r.getMessage()) for p in allowed)]
    if unexpected:
        pytest.fail("unexpected ERROR log: " + "; ".join(
            f"{r.name}: {r.getMessage()}" for r in unexpected), pytrace=False)


# --- real PostgreSQL and Redis ---------------------------------------------------------------
@pytest.fixture(scope="session")
def backing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServers]:
    servers = EmbeddedServers(tmp_path_factory.mktemp("embedded"))
    with servers:
        async def prepare() -> None:
            conn = await connect(servers.dsn)
            try:
                await migrate(conn)
            finally:
                await conn.close()

        asyncio.run(prepare())
        yield servers


async def reset_database(dsn: str) -> None:
    """Every table emptied (the sandbox's reset: no list of tables to keep up with the
    migrations), then the seed."""
    conn = await connect(dsn)
    try:
        await empty_everything(conn)
        await seed(conn)
    finally:
        await conn.close()


@pytest.fixture
async def clean_db(backing: EmbeddedServers) -> str:
    """The shared servers as new: the database reset and seeded, Redis empty (an earlier test's
    cached WeChat token, sessions or counters would otherwise carry over)."""
    await reset_database(backing.dsn)
    redis = aioredis.from_url(backing.redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    return backing.dsn


@pytest.fixture
async def db(clean_db: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection for assertions about what was (not) written."""
    conn = await connect(clean_db)
    yield conn
    await conn.close()


# --- the services' clock ----------------------------------------------------------------------
class TestClock:
    """The clock the runtime hands to every service. It follows the system clock until a test
    sets it; a set clock runs on from the instant set (a frozen one stays there), so a test
    predicts what a service computes from this clock, never from the wall clock."""

    __test__ = False  # a fixture's class, not tests

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = None

    def __call__(self) -> datetime:
        return self._frozen if self._frozen is not None else china_now() + self._offset

    def set(self, when: datetime, *, frozen: bool = False) -> None:
        """From now on the clock reads ``when`` (an aware datetime, or naive China time)."""
        when = when if when.tzinfo else when.replace(tzinfo=CHINA)
        when = when.astimezone(CHINA)
        self._frozen = when if frozen else None
        self._offset = when - china_now()

    def advance(self, by: float | timedelta) -> None:
        """Move the clock on by ``by`` (seconds, or a timedelta)."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if self._frozen is not None:
            self._frozen += step
        self._offset += step


# The instants most often gotten wrong: China's date and year differ from UTC's eight hours a day.
NEW_YEAR = datetime(2027, 1, 1, 0, 30, tzinfo=CHINA)             # 16:30 UTC on 31 December


def late_evening(after: datetime) -> datetime:
    """23:30 China time (15:30 UTC, the same date) on the day after ``after``. Redis expires
    counters by its own clock, at the end of the China day the service computed: a day still
    ahead for Redis keeps them alive, whenever the suite runs."""
    return (after.astimezone(CHINA) + timedelta(days=1)).replace(hour=23, minute=30, second=0,
                                                                   microsecond=0)


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


# --- WeChat, faked over real HTTP ------------------------------------------------------------
@pytest.fixture
async def fake_wechat() -> AsyncIterator[FakeWeChat]:
    fake = FakeWeChat(APPID, SECRET)
    fake.add_app(MP_APPID, MP_SECRET)
    await fake.start()
    yield fake
    await fake.stop()


# --- Tencent Cloud SMS, faked over real HTTP -------------------------------------------------
# The account of the SMS sender tests; the fake approves only this signature and template.
SMS_SECRET_ID = "AKIDtestSecretId00000000000000000000"
SMS_SECRET_KEY = "testSecretKey000000000000000000a"
SMS_APP_ID = "1400012345"
SMS_SIGN = "川工之家"
SMS_TEMPLATE = "2000001"


@pytest.fixture
async def tencent_sms() -> AsyncIterator[FakeTencentSms]:
    async with FakeTencentSms(
        SMS_SECRET_ID, SMS_SECRET_KEY, sdk_app_id=SMS_APP_ID, sign_name=SMS_SIGN, template_id=SMS_TEMPLATE
    ) as server:
        yield server


MEDIA_DIR = tempfile.mkdtemp(prefix="wxbackend-media-")


def make_settings(api_base: str, **sections: dict) -> Settings:
    base = load_settings(None, environ={})
    wechat = {"appid": APPID, "secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY,
              "original_id": ORIGINAL_ID, "message_mode": "safe", "api_base": api_base,
              "oauth_authorize_url": f"{api_base}/connect/oauth2/authorize",
              "http_timeout": 2.0, "http_retries": 2}
    wechat.update(sections.pop("wechat", {}))
    server = {"public_url": PUBLIC_URL} | sections.pop("server", {})
    outbox = {"poll_interval": 0.05, "backoff_base": 1.0} | sections.pop("outbox", {})
    security = {"field_keys": FIELD_KEYS, "field_key_current": 1, "index_key": INDEX_KEY,
                "audit_key": AUDIT_KEY} \
        | sections.pop("security", {})
    miniprogram = {"appid": MP_APPID, "secret": MP_SECRET} | sections.pop("miniprogram", {})
    # A drop's sold-out memo reads the monotonic clock: off, so that what a test sees follows
    # from what it did; tests/services/activities/test_drops.py turns it on where it is the subject.
    activities = {"sold_out_memo_seconds": 0.0} | sections.pop("activities", {})
    # Refusals of a flooded sign-in are held back a random while: at once, unless a test is about it.
    admin = {"refused_delay_ms": 0} | sections.pop("admin", {})
    # Article images are stored by content: one directory for the whole run, never the repo's var/.
    channels = {"media_dir": MEDIA_DIR} | sections.pop("channels", {})
    ledger = {"origin": LEDGER_ORIGIN, "signing_key": LEDGER_SIGNER.skey()} | sections.pop("ledger", {})
    return base.replace(wechat=wechat, server=server, outbox=outbox, security=security,
                        miniprogram=miniprogram, activities=activities, admin=admin,
                        channels=channels, ledger=ledger, **sections)


@pytest.fixture
def settings(fake_wechat: FakeWeChat) -> Settings:
    return make_settings(fake_wechat.base_url)


@pytest.fixture
def pusher() -> FakePusher:
    return FakePusher(TOKEN, AES_KEY, APPID, ORIGINAL_ID, mode="safe")


@pytest.fixture
async def rt(settings: Settings, backing: EmbeddedServers, clean_db: str,
             clock: TestClock) -> AsyncIterator[Runtime]:
    async with open_runtime(settings, backing.dsn, backing.redis_url, now=clock) as runtime:
        await runtime.redis.flushdb()
        await runtime.apps.nonce_epoch()  # as at start-up: nonces are recorded from here
        yield runtime


async def start_server(runtime: Runtime, sandbox=None) -> tuple[tornado.httpserver.HTTPServer, str]:
    sock, port = tornado.testing.bind_unused_port()
    server = make_server(runtime, sandbox)
    server.add_sockets([sock])
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
async def server(rt: Runtime) -> AsyncIterator[str]:
    """The real application on a real port; yields its base URL."""
    srv, url = await start_server(rt)
    yield url
    srv.stop()
    await rt.inbox.drain()
    await srv.close_all_connections()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        yield client
