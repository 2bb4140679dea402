"""H5 registration by SMS code, through the real endpoint and a fake Tencent Cloud SMS API
that checks TC3 signatures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.test_identity import h5_sign_in
from tests.conftest import make_settings, reset_database, start_server
from wxbackend.runtime import Runtime, open_runtime
from wxbackend.sandbox.simulated.tencent_sms import FakeTencentSms

PHONE = "13800000001"


@pytest.fixture
async def fake_sms() -> AsyncIterator[FakeTencentSms]:
    fake = FakeTencentSms(sign_name="四川省总工会", template_id="2100001")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sms_rt(fake_wechat, fake_sms, backing) -> AsyncIterator[Runtime]:
    endpoint = urlsplit(fake_sms.base_url).netloc
    settings = make_settings(fake_wechat.base_url, sms={
        "provider": "tencent", "tencent_secret_id": fake_sms.secret_id,
        "tencent_secret_key": fake_sms.secret_key, "sdk_app_id": fake_sms.sdk_app_id,
        "sign_name": "四川省总工会", "template_id": "2100001", "endpoint": endpoint,
        "scheme": "http", "max_per_ip_hour": 6})
    await reset_database(backing.dsn)
    async with open_runtime(settings, backing.dsn, backing.redis_url) as rt:
        await rt.redis.flushdb()
        yield rt


@pytest.fixture
async def sms_server(sms_rt) -> AsyncIterator[str]:
    srv, url = await start_server(sms_rt)
    yield url
    srv.stop()


async def test_outside_wechat_a_phone_code_signs_in(sms_server, fake_sms, db) -> None:
    async with httpx.AsyncClient(trust_env=False) as browser:
        sent = await browser.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": PHONE})
        assert sent.status_code == 200 and sent.json() == {"expires_in": 300, "resend_after": 60}
        assert fake_sms.sent[-1]["params"][1] == "5"  # minutes
        code = fake_sms.last_code(PHONE)
        verified = await browser.post(f"{sms_server}/h5/api/v1/phone/verify",
                                      json={"phone": PHONE, "code": code})
        assert verified.status_code == 200, verified.text
        assert verified.json()["account"]["phone"] == "138****0001"
        me = await browser.get(f"{sms_server}/h5/api/v1/me")
        assert me.status_code == 200
        csrf = {"X-CSRF-Token": me.json()["csrf_token"]}  # signed in now: writes need it
        forged = await browser.post(f"{sms_server}/h5/api/v1/phone/verify",
                                    json={"phone": PHONE, "code": code})
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
        again = await browser.post(f"{sms_server}/h5/api/v1/phone/verify",
                                   json={"phone": PHONE, "code": code}, headers=csrf)
        assert again.json()["error"]["code"] == "sms_code_expired"  # single use
    assert await db.fetchval("SELECT count(*) FROM accounts") == 1


async def test_inside_wechat_the_phone_joins_the_oauth_account(sms_server, fake_wechat, fake_sms, db) -> None:
    browser = await h5_sign_in(sms_server, fake_wechat, "oZhang")
    csrf = (await browser.get(f"{sms_server}/h5/api/v1/me")).json()["csrf_token"]
    await browser.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": PHONE},
                       headers={"X-CSRF-Token": csrf})
    verified = await browser.post(f"{sms_server}/h5/api/v1/phone/verify",
                                  json={"phone": PHONE, "code": fake_sms.last_code(PHONE)},
                                  headers={"X-CSRF-Token": csrf})
    assert verified.status_code == 200
    assert await db.fetchval("""SELECT count(*) FROM accounts a JOIN account_identities i
                                ON i.account_id = a.id WHERE i.subject = 'oZhang'
                                AND a.phone_bidx IS NOT NULL""") == 1
    await browser.aclose()


async def test_codes_cannot_be_guessed(sms_server, fake_sms, db) -> None:
    async with httpx.AsyncClient(trust_env=False) as attacker:
        await attacker.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": PHONE})
        real = fake_sms.last_code(PHONE)
        wrong = [f"{(int(real) + i) % 1_000_000:06d}" for i in range(1, 6)]
        answers = [await attacker.post(f"{sms_server}/h5/api/v1/phone/verify",
                                       json={"phone": PHONE, "code": c}) for c in wrong]
        assert [a.json()["error"]["code"] for a in answers] == \
            ["sms_code_invalid"] * 4 + ["sms_too_many_attempts"]
        late = await attacker.post(f"{sms_server}/h5/api/v1/phone/verify",
                                   json={"phone": PHONE, "code": real})
        assert late.json()["error"]["code"] == "sms_code_expired"  # the code died
    assert await db.fetchval("SELECT count(*) FROM accounts") == 0


async def test_resend_phone_day_and_ip_limits(sms_server, fake_sms, sms_rt) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        first = await client.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": PHONE})
        assert first.status_code == 200
        soon = await client.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": PHONE})
        assert soon.status_code == 429 and soon.json()["error"]["code"] == "sms_cooldown"
        assert 0 < int(soon.headers["Retry-After"]) <= 60
        for i in range(2, 7):  # max_per_ip_hour = 6 in this test's settings
            ok = await client.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": f"1380000000{i}"})
            assert ok.status_code == 200
        blocked = await client.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": "13800000009"})
        assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "sms_ip_limit"
    assert len(fake_sms.sent) == 6


@pytest.mark.expected_errors(r"POST /h5/api/v1/sms/send 503")
async def test_provider_failure_is_a_clear_503_and_allows_a_retry(sms_server, fake_sms) -> None:
    fake_sms.fail_next("LimitExceeded.PhoneNumberThirtySecondLimit")
    async with httpx.AsyncClient(trust_env=False) as client:
        failed = await client.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": PHONE})
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "sms_send_failed"
        retry = await client.post(f"{sms_server}/h5/api/v1/sms/send", json={"phone": PHONE})
        assert retry.status_code == 200


@pytest.mark.parametrize(("payload", "code"), [
    ({"phone": "12345"}, "invalid_phone"), ({"phone": "23800000001"}, "invalid_phone"), ({}, "invalid_phone"),
])
async def test_bad_phone_numbers(sms_server, fake_sms, payload, code) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(f"{sms_server}/h5/api/v1/sms/send", json=payload)
        assert response.status_code == 400 and response.json()["error"]["code"] == code
        junk = await client.post(f"{sms_server}/h5/api/v1/sms/send", content=b"not json")
        assert junk.status_code == 400 and junk.json()["error"]["code"] == "invalid_json"
    assert fake_sms.sent == []
