"""Cadre sign-in under attack: one answer for every failure, lockouts that cost the attacker
more than the cadre, throttles before any hashing, no pooled connection held while hashing, and
the one-session rule over long days. The clock is set by the tests."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from argon2 import PasswordHasher

from tests.conftest import TestClock
from tests.services.cadres.test_cadres import PASSWORD, UA, office, org_id, otp, wangwu  # noqa: F401
from wxbackend.services.cadres.cadres import CadreService
from wxbackend.services.cadres.passwords import PasswordHashing
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import TooManyRequests, Unauthenticated, Unavailable

WRONG = "Not-The-Password-1"
START = datetime(2030, 3, 1, 9, 0, tzinfo=CHINA)  # after every key's expiry time as Redis sees it


def frozen_clock(at: datetime = START) -> TestClock:
    clock = TestClock()
    clock.set(at, frozen=True)
    return clock


def service(rt, clock: TestClock, **admin) -> CadreService:
    return CadreService(rt.pool, rt.redis, rt.pii, dataclasses.replace(rt.settings.admin, **admin),
                        audit=rt.audit, now=clock)


def code_at(uri: str | None, clock: TestClock) -> str:
    return pyotp.TOTP(parse_qs(urlsplit(uri).query)["secret"][0]).at(int(clock().timestamp()))


async def city_admin(rt, db, office) -> tuple[int, str | None]:  # noqa: F811
    account = await rt.cadres.create_account(
        office, username="zhouqi", display_name="周七", org_id=await org_id(db, "SC-510300"),
        role="super_admin", duty="system", password=PASSWORD, permissions={"kpi.read"})
    return account.id, account.totp_uri


async def failing(svc: CadreService, username: str, ip: str, user_agent: str = UA,
                  password: str = WRONG, totp: str = "000000") -> Unauthenticated:
    with pytest.raises(Unauthenticated) as failed:
        await svc.login(username=username, password=password, totp=totp, ip=ip, user_agent=user_agent)
    return failed.value


async def test_unknown_locked_disabled_and_wrong_answer_alike(rt, db, office) -> None:  # noqa: F811
    clock = frozen_clock()
    svc = service(rt, clock)
    cadre_id, uri = await city_admin(rt, db, office)
    answers = [await failing(svc, "nobody", "10.1.0.1", password=PASSWORD),
               await failing(svc, "zhouqi", "10.1.0.2")]
    for _ in range(4):
        await failing(svc, "zhouqi", "10.1.0.2")
    answers.append(await failing(svc, "zhouqi", "10.1.0.2", password=PASSWORD, totp=code_at(uri, clock)))
    await db.execute("UPDATE cadres SET status = 'disabled' WHERE id = $1", cadre_id)
    clock.advance(timedelta(minutes=1))
    answers.append(await failing(svc, "zhouqi", "10.1.0.3", password=PASSWORD, totp=code_at(uri, clock)))
    assert {(a.status, a.code, a.message) for a in answers} == {
        (401, "login_failed", "用户名、密码或动态验证码错误；若多次失败请稍后再试")}


async def test_a_locked_device_does_not_lock_the_cadre_out(rt, db, office) -> None:  # noqa: F811
    clock = frozen_clock()
    svc = service(rt, clock)
    _, uri = await city_admin(rt, db, office)
    for _ in range(5):
        await failing(svc, "zhouqi", "203.0.113.9", user_agent="curl/8")
    await failing(svc, "zhouqi", "203.0.113.9", user_agent="curl/8", password=PASSWORD,
                  totp=code_at(uri, clock))  # the attacker's device is locked out, even if right
    session = await svc.login(username="zhouqi", password=PASSWORD, totp=code_at(uri, clock),
                              ip="10.2.0.1", user_agent=UA)  # the cadre, from the office
    assert session.failed_attempts == 6  # told after signing in
    assert await db.fetchval("SELECT locked_until FROM cadres WHERE username = 'zhouqi'") is None
    clock.advance(timedelta(minutes=14, seconds=59))
    await failing(svc, "zhouqi", "203.0.113.9", user_agent="curl/8", password=PASSWORD,
                  totp=code_at(uri, clock))
    clock.advance(1)  # fifteen minutes after the fifth failure the lock lapses
    again = await svc.login(username="zhouqi", password=PASSWORD, totp=code_at(uri, clock),
                            ip="203.0.113.9", user_agent="curl/8")
    assert again.failed_attempts == 1


async def test_many_failures_from_anywhere_lock_the_account_for_everyone(rt, db, office) -> None:  # noqa: F811
    clock = frozen_clock()
    svc = service(rt, clock, account_lockout_failures=8, account_lockout_minutes=30)
    _, uri = await city_admin(rt, db, office)
    for n in range(8):  # two tries from each of four addresses: no device reaches its limit
        await failing(svc, "zhouqi", f"198.51.100.{n // 2}")
    until = await db.fetchval("SELECT locked_until FROM cadres WHERE username = 'zhouqi'")
    assert until == START + timedelta(minutes=30)
    clock.advance(timedelta(minutes=29))
    await failing(svc, "zhouqi", "10.2.0.1", password=PASSWORD, totp=code_at(uri, clock))
    clock.advance(timedelta(minutes=1, seconds=31))
    session = await svc.login(username="zhouqi", password=PASSWORD, totp=code_at(uri, clock),
                              ip="10.2.0.1", user_agent=UA)
    assert session.actor.username == "zhouqi"
    events = await db.fetch("SELECT detail FROM audit_log WHERE action = 'login.failed' ORDER BY id")
    assert [e["detail"]["account_locked"] for e in events] == [False] * 7 + [True, False]
    assert events[-1]["detail"]["while_locked"]  # ... and the try while locked did not extend it


async def test_sign_in_is_throttled_per_address_then_per_username_before_hashing(rt, db) -> None:
    clock = frozen_clock(START + timedelta(seconds=10))
    hashed: list[int] = []
    svc = service(rt, clock, login_per_ip_minute=3, login_per_username_hour=5)
    real = svc._hashing.matches

    async def counting(stored: str | None, password: str) -> bool:
        hashed.append(1)
        return await real(stored, password)
    svc._hashing.matches = counting  # type: ignore[method-assign]
    for _ in range(3):
        await failing(svc, "nobody", "10.3.0.1")
    with pytest.raises(TooManyRequests) as by_address:
        await svc.login(username="someone", password="x", totp="", ip="10.3.0.1", user_agent=UA)
    assert by_address.value.code == "login_throttled" and by_address.value.status == 429
    assert by_address.value.headers["Retry-After"] == "50"  # to the end of the minute
    assert len(hashed) == 3
    await failing(svc, "nobody", "10.3.0.2")
    await failing(svc, "nobody", "10.3.0.2")  # five for "nobody" in this hour
    with pytest.raises(TooManyRequests) as by_name:
        await svc.login(username="Nobody ", password="x", totp="", ip="10.3.0.3", user_agent=UA)
    assert by_name.value.headers["Retry-After"] == str(3600 - 10)
    assert len(hashed) == 5
    await failing(svc, "somebody", "10.3.0.3")  # other usernames from other addresses go on



async def test_a_refused_address_is_remembered_for_the_rest_of_its_minute(rt, db) -> None:
    clock = frozen_clock(START + timedelta(seconds=10))
    svc = service(rt, clock, login_per_ip_minute=2, login_per_username_hour=2)
    for _ in range(2):
        await failing(svc, "nobody", "10.4.0.1")
    assert svc.refusal("10.4.0.1") is None  # at the limit, not over it: the counters decide
    with pytest.raises(TooManyRequests):
        await svc.login(username="nobody", password="x", totp="", ip="10.4.0.1", user_agent=UA)
    clock.advance(timedelta(seconds=20))
    error, times = svc.refusal("10.4.0.1")
    assert (error.code, error.status, times) == ("login_throttled", 429, 1)
    assert error.headers["Retry-After"] == "30"
    assert svc.refusal("10.4.0.1")[1] == 2
    assert svc.refusal("10.4.0.2") is None
    # over the limit for a username: that address may go on with other usernames
    with pytest.raises(TooManyRequests):
        await svc.login(username="nobody", password="x", totp="", ip="10.4.0.3", user_agent=UA)
    assert svc.refusal("10.4.0.3") is None
    clock.advance(timedelta(seconds=30))  # the minute is over
    assert svc.refusal("10.4.0.1") is None
    await failing(svc, "somebody", "10.4.0.1")


@pytest.fixture
def slow_hashing(rt, monkeypatch):
    """Argon2 slowed down, noting how many pooled connections are checked out meanwhile."""
    held: list[int] = []
    pool = rt.pool

    def in_use() -> int:
        return sum(h._in_use is not None for h in pool._holders)  # asyncpg's pool slots

    for name in ("hash", "verify"):
        original = getattr(PasswordHasher, name)

        def slow(self, *args, _original=original, **kwargs):
            held.append(in_use())
            time.sleep(0.2)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(PasswordHasher, name, slow)
    return held


async def test_no_pooled_connection_is_held_while_a_password_is_hashed(rt, db, slow_hashing) -> None:
    account = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_actor = (await rt.cadres.login(username="office", password=PASSWORD,
                                          totp=otp(account.totp_uri), ip="10.4.0.1",
                                          user_agent=UA)).actor
    await rt.cadres.create_account(office_actor, username="wangwu", display_name="王五",
                                   org_id=await org_id(db, "SC-510100"), role="super_admin",
                                   duty="system", password=PASSWORD, permissions={"kpi.read"})
    with pytest.raises(Unauthenticated):
        await rt.cadres.login(username="nobody", password=PASSWORD, totp="", ip="10.4.0.2", user_agent=UA)
    with pytest.raises(Unauthenticated):
        await rt.cadres.login(username="office", password="Wrong-Password-99", totp="", ip="10.4.0.2",
                              user_agent=UA)
    await rt.cadres.change_password(office_actor, PASSWORD, "Another-Strong-Pass-1")
    assert len(slow_hashing) >= 8 and set(slow_hashing) == {0}


async def test_a_sign_in_flood_queues_for_hashing_and_overflows_quickly() -> None:
    class Slow(PasswordHasher):
        def verify(self, *args, **kwargs):
            time.sleep(0.3)
            return False

    hashing = PasswordHashing(concurrency=1, queue=2, hasher=Slow())
    hashing._decoy = "decoy"
    started = time.monotonic()
    results = await asyncio.gather(*(hashing.matches(None, "x") for _ in range(3)), return_exceptions=True)
    busy = [r for r in results if isinstance(r, Unavailable)]
    assert len(busy) == 1 and busy[0].code == "signin_busy" and busy[0].headers["Retry-After"]
    assert results.count(False) == 2
    assert time.monotonic() - started < 1.5   # the two admitted ran one at a time: ~0.6 s


async def test_a_turned_away_sign_in_is_held_back_before_its_503() -> None:
    """Turned away at once, a flood's sign-ins come back at once: their 503 waits a random half
    to all of ``busy_delay``, unless ``busy_held`` are waiting already."""
    class Slow(PasswordHasher):
        def verify(self, *args, **kwargs):
            time.sleep(0.8)
            return False

    hashing = PasswordHashing(concurrency=1, queue=1, hasher=Slow(), busy_delay=0.4, busy_held=1)
    hashing._decoy = "decoy"
    admitted = asyncio.create_task(hashing.matches(None, "x"))
    await asyncio.sleep(0.05)
    began = time.monotonic()
    held = asyncio.create_task(hashing.matches(None, "x"))
    await asyncio.sleep(0)
    with pytest.raises(Unavailable):
        await hashing.matches(None, "x")  # the hold is full: answered at once…
    assert not held.done()                # …while the first still waits
    with pytest.raises(Unavailable) as busy:
        await held
    assert busy.value.code == "signin_busy" and time.monotonic() - began >= 0.2
    assert await admitted is False


async def test_hashing_runs_at_the_lowest_priority_outside_the_loops_executor() -> None:
    import os
    import threading
    hashing = PasswordHashing(concurrency=1)
    where = await hashing._run(lambda: (os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
                                        threading.current_thread().name))
    assert where[0] == 19 and where[1].startswith("argon2")


async def test_one_session_rule_holds_past_a_day_of_use(rt, db) -> None:
    account = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    first = await rt.cadres.login(username="office", password=PASSWORD, totp=otp(account.totp_uri),
                                  ip="10.5.0.1", user_agent=UA)
    pointer = f"admin:current:{first.actor.id}"
    await rt.redis.delete(pointer)  # as after 24 hours of requests under the old fixed lifetime
    await rt.cadres.authenticate(first.token)  # a request slides the session and its pointer
    assert 0 < await rt.redis.ttl(pointer) <= rt.settings.admin.session_idle_minutes * 60
    second = await rt.cadres.login(username="office", password=PASSWORD, totp=otp(account.totp_uri, 1),
                                   ip="10.5.0.2", user_agent=UA)
    assert second.replaced_other
    with pytest.raises(Unauthenticated) as ended:
        await rt.cadres.authenticate(first.token)
    assert ended.value.code == "session_replaced"


async def test_an_appointment_from_above_is_in_the_city_records(rt, db, office, wangwu) -> None:  # noqa: F811
    chen = await rt.cadres.create_account(wangwu, username="chen", display_name="陈审计",
                                          org_id=wangwu.org_id, role="cadre", duty="audit",
                                          password=PASSWORD, permissions=set())
    await rt.cadres.set_permissions(office, chen.id, {"audit.read"})
    auditor = (await rt.cadres.login(username="chen", password=PASSWORD, totp="", ip="10.6.0.1",
                                     user_agent=UA)).actor
    seen = {(r["action"], r["target"]) for r in (await rt.cadres.audit_records(auditor, None))["records"]}
    assert ("super_admin.create", f"cadre:{wangwu.id}") in seen
    assert ("permissions.set", f"cadre:{chen.id}") in seen
    assert not {a for a, _ in seen} & {"operator.create"}  # the province's own records stay its own
    from io import BytesIO

    from openpyxl import load_workbook
    data, _ = await rt.cadres.ledger_xlsx(wangwu)
    actions = [row[3] for row in load_workbook(BytesIO(data)).active.iter_rows(min_row=5, values_only=True)]
    assert "创建超级管理员" in actions and "创建平台账号" not in actions
