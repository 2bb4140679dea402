"""Every documented API fuzzed from its OpenAPI document: ``/mp/v1``, ``/h5/api/v1`` (the same
operations as the Mini Program's, on the H5 session), ``/api/v1`` and ``/admin/v1``.

Schemathesis generates requests from each operation's parameters and body, valid and invalid
ones, and sends them to the real server on the real PostgreSQL and Redis, signed in where the
operation needs it. Every answer must be a documented status (no 5xx) whose body matches the
documented schema. The runs are derandomised: the same requests every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import APPID, MP_APPID, MP_SECRET, SECRET, make_settings, reset_database, start_server
from tests.fakes import FakeWeChat
from tests.services.cadres.test_cadres import PASSWORD, otp
from wxbackend.infra.embedded import EmbeddedServers
from wxbackend.runtime import Runtime, open_runtime
from wxbackend.services.identity.platform import SCOPES, sign

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = {"mp": "miniprogram_api/openapi.json", "api": "wxbackend/data/openapi_api_v1.json",
             "admin": "wxbackend/data/openapi_admin_v1.json"}
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
# Examples per operation and mode: about a minute and a half for the four APIs on two cores.
# FUZZ_EXAMPLES=500 fuzzes longer; FUZZ_SEED=7 fuzzes other (still reproducible) requests.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
SEED = os.environ.get("FUZZ_SEED")
# Operations that end the session they are called with: each example gets a session of its own
# (on a throwaway account or cadre), so the rest of the run keeps its sign-in.
SESSION_ENDING = {"/mp/v1/logout", "/mp/v1/me/cancel", "/h5/api/v1/logout", "/h5/api/v1/me/cancel",
                  "/admin/v1/logout"}


def load(name: str) -> dict:
    return json.loads((ROOT / DOCUMENTS[name]).read_text(encoding="utf-8"))


def h5_document() -> dict:
    """``/h5/api/v1`` serves the Mini Program's account and membership operations on the H5
    session (a cookie, and the CSRF token on writes); its ``GET me`` also returns that token.
    The Mini Program's own sign-in (``session``, ``phone``) is not served there; the H5 pages'
    own (``sms/send``, ``phone/verify``) has no document yet, so it is not fuzzed."""
    doc = load("mp")
    doc["components"]["securitySchemes"] = {
        "h5Session": {"type": "apiKey", "in": "cookie", "name": "wx_h5"},
        "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"}}
    paths = {}
    for path, item in doc["paths"].items():
        rest = path.removeprefix("/mp/v1/")
        if rest in ("session", "phone", "openapi.json"):
            continue
        for method, op in item.items():
            if op.get("security"):
                write = method != "get"
                op["security"] = [{"h5Session": [], "csrfToken": []} if write else {"h5Session": []}]
        paths[f"/h5/api/v1/{rest}"] = item
    me = paths["/h5/api/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    me["properties"]["csrf_token"] = {"type": "string"}
    me["required"].append("csrf_token")
    doc["paths"] = paths
    return doc


def documents() -> dict[str, dict]:
    return {"mp": load("mp"), "h5": h5_document(), "api": load("api"), "admin": load("admin")}


# --- the server, once for the module, in a thread of its own ----------------------------------
@dataclass
class Auth:
    """What one API's requests carry to be signed in. The documents name these headers and
    cookies as security schemes; the fuzzer is given them fixed, or it would make up (or leave
    out) sessions and CSRF tokens and fuzz little more than the sign-in check."""
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    auth: requests.auth.AuthBase | None = None


class Signed(requests.auth.AuthBase):
    """An ``/api/v1`` entrance's signature over the request exactly as it is sent."""

    def __init__(self, app_id: str, secret: str) -> None:
        self.app_id, self.secret = app_id, secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url)
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        signature = sign(self.secret, request.method or "", url.path, url.query, timestamp, nonce, body)
        request.headers.update({"X-App-Id": self.app_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
                                "X-Signature": signature})
        return request


# Every session the fuzzer uses is a sign-in from 127.0.0.1: the sign-in throttles (tested in
# tests/services/cadres/test_cadre_signin.py) must not end the run early.
UNTHROTTLED = {"login_per_ip_minute": 10**9, "login_per_username_hour": 10**9}


class Live:
    """The real application on a port, served by an event loop in a background thread while the
    fuzzer (synchronous) sends its requests from the test."""

    def __init__(self, backing: EmbeddedServers) -> None:
        self.backing = backing
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzzed-server", daemon=True)
        self.stack = contextlib.AsyncExitStack()
        self.rt: Runtime
        self.fake: FakeWeChat
        self.url = ""
        self.auth: dict[str, Auth] = {}
        self._throwaways = 0

    def run(self, coro: Coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def __enter__(self) -> Live:
        self.thread.start()
        try:
            self.run(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _start(self) -> None:
        self.fake = FakeWeChat(APPID, SECRET)
        self.fake.add_app(MP_APPID, MP_SECRET)
        await self.fake.start()
        self.stack.push_async_callback(self.fake.stop)
        await reset_database(self.backing.dsn)
        self.rt = await self.stack.enter_async_context(
            open_runtime(make_settings(self.fake.base_url, admin=UNTHROTTLED), self.backing.dsn,
                         self.backing.redis_url))
        await self.rt.redis.flushdb()
        server, self.url = await start_server(self.rt)
        self.stack.push_async_callback(server.close_all_connections)
        self.stack.callback(server.stop)

        self.auth["mp"] = await self._mp("o-fuzz-worker")
        self.auth["h5"] = await self._h5("13800000001")
        app, secret = await self.rt.apps.create_app(
            app_id="fuzz-entrance", name="接口模糊测试", org_code="SC", scopes=sorted(SCOPES),
            redirect_uris=["https://entrance.example.org/cb"])
        # The signature headers are replaced by Signed as each request is sent.
        unsigned = dict.fromkeys(("X-App-Id", "X-Timestamp", "X-Nonce", "X-Signature"), "-")
        self.auth["api"] = Auth(headers=unsigned, cookies=self.auth["h5"].cookies,
                                auth=Signed(app.app_id, secret))
        # The platform office's operator holds every permission its duty allows, over the whole tree.
        office = await self.rt.cadres.create_operator(username="fuzz-office", display_name="平台",
                                                      password=PASSWORD)
        session = await self.rt.cadres.login(username="fuzz-office", password=PASSWORD,
                                             totp=otp(office.totp_uri), ip="127.0.0.1", user_agent="fuzz")
        self.auth["admin"] = Auth(headers={"X-CSRF-Token": session.csrf}, cookies={"wx_admin": session.token})
        # The audit trail is read by the audit administrator only (三权分立).
        auditor = await self.rt.cadres.create_operator(username="fuzz-auditor", display_name="审计",
                                                       password=PASSWORD, duty="audit")
        audit = await self.rt.cadres.login(username="fuzz-auditor", password=PASSWORD,
                                           totp=otp(auditor.totp_uri), ip="127.0.0.1", user_agent="fuzz")
        self.auth["audit"] = Auth(headers={"X-CSRF-Token": audit.csrf}, cookies={"wx_admin": audit.token})
        # A cadre without a second factor: the one whose sessions the logout examples end.
        province = await self.rt.cadres.create_account(
            session.actor, username="fuzz-admin", display_name="省总管理员", org_id=session.actor.org_id,
            role="super_admin", duty="system", permissions={"account.manage"}, password=PASSWORD)
        assert province.totp_uri  # a super admin signs in with a code: it only creates the cadre
        admin = await self.rt.cadres.login(username="fuzz-admin", password=PASSWORD,
                                           totp=otp(province.totp_uri), ip="127.0.0.1", user_agent="fuzz")
        await self.rt.cadres.create_account(
            admin.actor, username="fuzz-leaver", display_name="退出测试", org_id=session.actor.org_id,
            role="cadre", duty="business", permissions=set(), password=PASSWORD)

    async def _stop(self) -> None:
        await self.rt.rosters.drain()
        await self.rt.inbox.drain()
        await self.stack.aclose()

    async def _mp(self, openid: str) -> Auth:
        self.fake.mp_user(openid, unionid=f"union-{openid}")
        signed = await self.rt.login.mp_session(self.fake.issue_js_code(openid, MP_APPID))
        return Auth(headers={"Authorization": f"Bearer {signed.token}"})

    async def _h5(self, phone: str) -> Auth:
        signed = await self.rt.login.h5_sign_in_by_phone(phone)
        csrf = (await self.rt.login.h5_sessions.get(signed.token))["csrf"]
        return Auth(headers={"X-CSRF-Token": csrf}, cookies={"wx_h5": signed.token})

    async def _cadre(self) -> Auth:
        session = await self.rt.cadres.login(username="fuzz-leaver", password=PASSWORD, totp="",
                                             ip="127.0.0.1", user_agent="fuzz")
        return Auth(headers={"X-CSRF-Token": session.csrf}, cookies={"wx_admin": session.token})

    def throwaway(self, api: str) -> Auth:
        """A fresh session, on an account or cadre of its own, for one session-ending example."""
        self._throwaways += 1
        n = self._throwaways
        factory: Callable[[], Coroutine] = {
            "mp": lambda: self._mp(f"o-fuzz-leaver-{n}"), "h5": lambda: self._h5(f"139{n:08d}"),
            "admin": self._cadre}[api]
        return self.run(factory())


@pytest.fixture(scope="module")
def live(backing: EmbeddedServers) -> Iterator[Live]:
    with Live(backing) as server:
        yield server


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    return {name: schemathesis.openapi.from_dict(doc) for name, doc in documents().items()}


# --- one test per API, operation and mode -----------------------------------------------------
def _operations() -> Iterator[Any]:
    for api, doc in documents().items():
        for path, item in doc["paths"].items():
            for method, op in item.items():
                has_input = bool(op.get("parameters") or op.get("requestBody"))
                for mode in MODES:
                    if mode is schemathesis.GenerationMode.NEGATIVE and not has_input:
                        continue  # nothing of the request can be invalid
                    # A node's alarm is logged at ERROR by design: a valid one is expected there.
                    marks = [pytest.mark.expected_errors(r"ledger alarm")] \
                        if path == "/api/v1/ledger/alarms" else []
                    yield pytest.param(api, path, method, mode, id=f"{api}-{method}-{path}-{mode.value}",
                                       marks=marks)


@pytest.mark.parametrize(("api", "path", "method", "mode"), list(_operations()))
def test_fuzzed_requests_get_documented_answers(live: Live, schemas: dict, api: str, path: str,
                                                method: str, mode: schemathesis.GenerationMode) -> None:
    operation = schemas[api][path][method.upper()]
    signed_in = live.auth["audit" if path == "/admin/v1/audit" else api]
    session = requests.Session()
    session.trust_env = False

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None, print_blob=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, headers=signed_in.headers,
                                      cookies=signed_in.cookies))
    def fuzz(case: schemathesis.Case) -> None:
        if path in SESSION_ENDING:
            fresh = live.throwaway(api)
            case.headers = {**(case.headers or {}), **fresh.headers}
            case.cookies = {**(case.cookies or {}), **fresh.cookies}
        response = case.call(base_url=live.url, session=session, auth=signed_in.auth, timeout=20)
        case.validate_response(response, checks=CHECKS)

    if SEED is not None:
        fuzz = seed(int(SEED))(fuzz)
    try:
        fuzz()
    finally:
        session.close()
