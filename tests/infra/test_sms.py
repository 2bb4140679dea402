"""The SMS senders: the Tencent one over real HTTP against the fake Tencent Cloud API.

Failures must surface as SmsError with Tencent's code and an honest ``retryable``, because the
verification-code service decides from it whether to tell the member "try again later"; and no
log line or error text may carry the full phone number or the code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any

import pytest
from tornado.testing import bind_unused_port

from tests.conftest import SMS_APP_ID, SMS_SECRET_ID, SMS_SECRET_KEY, SMS_SIGN, SMS_TEMPLATE
from tests.fakes import FakeTencentSms
from wxbackend.config import ConfigError, Secret, SmsSettings
from wxbackend.infra.sms import (
    ConsoleSmsSender,
    SmsError,
    SmsSender,
    TencentSmsSender,
    create_sms_sender,
)

PHONE = "13812345678"
CODE = "480213"


def tencent_settings(endpoint: str, **changes: Any) -> SmsSettings:
    values: dict[str, Any] = {
        "provider": "tencent",
        "tencent_secret_id": Secret(SMS_SECRET_ID),
        "tencent_secret_key": Secret(SMS_SECRET_KEY),
        "sdk_app_id": SMS_APP_ID,
        "sign_name": SMS_SIGN,
        "template_id": SMS_TEMPLATE,
        "endpoint": endpoint,
        "scheme": "http",
        "timeout": 2.0,
    }
    return SmsSettings(**(values | changes))


def assert_no_personal_data(text: str) -> None:
    assert PHONE not in text and CODE not in text


async def test_code_is_sent_through_the_sdk(
    tencent_sms: FakeTencentSms, caplog: pytest.LogCaptureFixture
) -> None:
    sender = TencentSmsSender(tencent_settings(tencent_sms.endpoint))
    await sender.send_code(PHONE, CODE, 5)

    assert tencent_sms.sent == [
        {
            "phone": "+8613812345678",
            "sign_name": SMS_SIGN,
            "template_id": SMS_TEMPLATE,
            "params": [CODE, "5"],
            "sdk_app_id": SMS_APP_ID,
        }
    ]
    assert tencent_sms.last_code(PHONE) == CODE
    assert tencent_sms.requests[0].headers["X-Tc-Region"] == "ap-guangzhou"
    sms_logs = [r.getMessage() for r in caplog.records if r.name == "wxbackend.sms"]
    assert sms_logs and "138****5678" in sms_logs[0]
    for record in caplog.records:
        assert_no_personal_data(record.getMessage())


async def test_per_number_failure_raises_with_tencents_code(tencent_sms: FakeTencentSms) -> None:
    sender = TencentSmsSender(tencent_settings(tencent_sms.endpoint))
    tencent_sms.fail_next("LimitExceeded.PhoneNumberDailyLimit")
    with pytest.raises(SmsError) as failed:
        await sender.send_code(PHONE, CODE, 5)
    assert failed.value.code == "LimitExceeded.PhoneNumberDailyLimit"
    assert failed.value.retryable is False
    assert "LimitExceeded.PhoneNumberDailyLimit" in str(failed.value)
    assert_no_personal_data(str(failed.value))
    assert tencent_sms.sent == []


async def test_wrong_key_raises_signature_failure(tencent_sms: FakeTencentSms) -> None:
    sender = TencentSmsSender(
        tencent_settings(tencent_sms.endpoint, tencent_secret_key=Secret("not-the-key"))
    )
    with pytest.raises(SmsError) as failed:
        await sender.send_code(PHONE, CODE, 5)
    assert failed.value.code == "AuthFailure.SignatureFailure"
    assert failed.value.retryable is False
    assert "tencent_secret_key" in str(failed.value)  # tells the operator what to fix
    assert "not-the-key" not in str(failed.value)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ("InternalError", True),
        ("RequestLimitExceeded", True),
        ("FailedOperation.InsufficientBalanceInSmsPackage", False),
    ],
)
async def test_request_errors_map_to_retryable(
    tencent_sms: FakeTencentSms, error: str, retryable: bool
) -> None:
    tencent_sms.error_next(error, f"number {PHONE} in the message")
    with pytest.raises(SmsError) as failed:
        await TencentSmsSender(tencent_settings(tencent_sms.endpoint)).send_code(PHONE, CODE, 5)
    assert (failed.value.code, failed.value.retryable) == (error, retryable)
    assert "138****5678" in str(failed.value)
    assert_no_personal_data(str(failed.value))


async def test_unreachable_and_slow_gateways_are_retryable(tencent_sms: FakeTencentSms) -> None:
    sock, port = bind_unused_port()
    sock.close()  # nothing listens there any more
    closed = TencentSmsSender(tencent_settings(f"127.0.0.1:{port}"))
    with pytest.raises(SmsError) as refused:
        await closed.send_code(PHONE, CODE, 5)
    assert (refused.value.code, refused.value.retryable) == ("ClientNetworkError", True)

    tencent_sms.set_delay(2.0)
    slow = TencentSmsSender(tencent_settings(tencent_sms.endpoint, timeout=0.3))
    started = time.monotonic()
    with pytest.raises(SmsError) as timed_out:
        await slow.send_code(PHONE, CODE, 5)
    assert time.monotonic() - started < 1.5
    assert (timed_out.value.code, timed_out.value.retryable) == ("ClientNetworkError", True)


async def test_whole_call_is_bounded_even_if_the_sdk_hangs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    sender = TencentSmsSender(tencent_settings("127.0.0.1:9", timeout=0.1), executor)
    release = threading.Event()
    # Stands in for a stall the SDK's socket timeout does not cover (DNS, a stuck pool).
    monkeypatch.setattr(sender, "_send_blocking", lambda *args: release.wait(10))
    started = time.monotonic()
    try:
        with pytest.raises(SmsError) as stalled:
            await sender.send_code(PHONE, CODE, 5)
        assert 1.0 <= time.monotonic() - started < 3.0  # timeout + 1 s
        assert (stalled.value.code, stalled.value.retryable) == ("ClientTimeout", True)
    finally:
        release.set()
        executor.shutdown(wait=True)


async def test_invalid_phone_is_refused_before_any_request(tencent_sms: FakeTencentSms) -> None:
    sender = TencentSmsSender(tencent_settings(tencent_sms.endpoint))
    with pytest.raises(SmsError) as failed:
        await sender.send_code("12345", CODE, 5)
    assert failed.value.code == "InvalidParameterValue.IncorrectPhoneNumber"
    assert tencent_sms.requests == []
    await sender.send_code("+86 138-1234-5678", CODE, 5)  # normalised, not refused
    assert tencent_sms.last_code(PHONE) == CODE


async def test_console_sender_logs_the_code_and_a_masked_phone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await ConsoleSmsSender().send_code(PHONE, CODE, 5)
    [record] = [r for r in caplog.records if r.name == "wxbackend.sms"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"短信验证码 {CODE} 已发往 138****5678（console 发送方式，仅用于本地调试）"
    )
    assert PHONE not in record.getMessage()


def test_create_sms_sender_picks_the_provider() -> None:
    console = create_sms_sender(SmsSettings())
    assert isinstance(console, ConsoleSmsSender) and isinstance(console, SmsSender)
    tencent = create_sms_sender(tencent_settings("sms.tencentcloudapi.com"))
    assert isinstance(tencent, TencentSmsSender) and isinstance(tencent, SmsSender)
    with pytest.raises(ConfigError):
        create_sms_sender(SmsSettings(provider="carrier-pigeon"))


async def test_concurrent_sends_share_nothing(tencent_sms: FakeTencentSms) -> None:
    sender = TencentSmsSender(tencent_settings(tencent_sms.endpoint))
    phones = [f"1390000{i:04d}" for i in range(8)]
    await asyncio.gather(*(sender.send_code(p, f"{i:06d}", 5) for i, p in enumerate(phones)))
    assert [tencent_sms.last_code(p) for p in phones] == [f"{i:06d}" for i in range(8)]
