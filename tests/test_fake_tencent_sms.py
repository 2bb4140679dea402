"""The fake Tencent Cloud SMS must accept exactly what Tencent accepts, or the sender tests prove nothing.

Tencent's own SDK is the independent judge: whatever it signs must pass the fake's verification,
and a wrong key, a skewed clock or a request altered after signing must not.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from tests.conftest import SMS_APP_ID, SMS_SECRET_ID, SMS_SECRET_KEY, SMS_SIGN, SMS_TEMPLATE
from tests.fakes import FakeTencentSms


def sdk_send(
    tencent_sms: FakeTencentSms,
    phones: list[str],
    *,
    secret_id: str = SMS_SECRET_ID,
    secret_key: str = SMS_SECRET_KEY,
    sign: str = SMS_SIGN,
    params: list[str] | None = None,
) -> models.SendSmsResponse:
    """SendSms exactly as the production sender issues it, through the official SDK."""
    http = HttpProfile(protocol="http", endpoint=tencent_sms.endpoint, reqMethod="POST", reqTimeout=3)
    client = sms_client.SmsClient(
        credential.Credential(secret_id, secret_key), "ap-guangzhou", ClientProfile(httpProfile=http)
    )
    request = models.SendSmsRequest()
    request.PhoneNumberSet = phones
    request.SmsSdkAppId = SMS_APP_ID
    request.SignName = sign
    request.TemplateId = SMS_TEMPLATE
    request.TemplateParamSet = params if params is not None else ["123456", "5"]
    return client.SendSms(request)


async def test_sdk_request_is_accepted_and_recorded(tencent_sms: FakeTencentSms) -> None:
    response = await asyncio.to_thread(sdk_send, tencent_sms, ["+8613800138000", "13900139000"])

    ok, plain = response.SendStatusSet
    assert (ok.Code, ok.Message, ok.IsoCode, ok.Fee) == ("Ok", "send success", "CN", 1)
    assert ok.PhoneNumber == "+8613800138000"
    assert plain.PhoneNumber == "+8613900139000"  # an 11-digit number is taken as +86
    assert ok.SerialNo.startswith("2640:") and ok.SerialNo != plain.SerialNo
    assert response.RequestId
    assert tencent_sms.sent[0] == {
        "phone": "+8613800138000",
        "sign_name": SMS_SIGN,
        "template_id": SMS_TEMPLATE,
        "params": ["123456", "5"],
        "sdk_app_id": SMS_APP_ID,
    }
    assert len(tencent_sms.sent_at) == len(tencent_sms.sent) and isinstance(tencent_sms.sent_at[0], float)
    assert tencent_sms.last_code("13800138000") == "123456"
    assert tencent_sms.last_code("+8613900139000") == "123456"
    assert tencent_sms.last_code("13700137000") is None
    assert [r.error for r in tencent_sms.requests] == [None]
    headers = tencent_sms.requests[0].headers
    assert headers["X-Tc-Action"] == "SendSms" and headers["X-Tc-Version"] == "2021-01-11"


async def test_wrong_key_and_unknown_secret_id_are_refused(tencent_sms: FakeTencentSms) -> None:
    with pytest.raises(TencentCloudSDKException) as wrong_key:
        await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"], secret_key="not-the-key")
    assert wrong_key.value.get_code() == "AuthFailure.SignatureFailure"
    assert wrong_key.value.get_request_id()

    with pytest.raises(TencentCloudSDKException) as unknown_id:
        await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"], secret_id="AKIDsomebodyElse")
    assert unknown_id.value.get_code() == "AuthFailure.SecretIdNotFound"
    assert tencent_sms.sent == []
    assert [r.error for r in tencent_sms.requests] == [
        "AuthFailure.SignatureFailure",
        "AuthFailure.SecretIdNotFound",
    ]


async def test_skewed_clock_is_refused(tencent_sms: FakeTencentSms) -> None:
    tencent_sms.clock = lambda: time.time() + 301
    with pytest.raises(TencentCloudSDKException) as skewed:
        await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"])
    assert skewed.value.get_code() == "AuthFailure.SignatureExpire"
    tencent_sms.clock = lambda: time.time() - 200  # inside the five minutes
    await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"])
    assert len(tencent_sms.sent) == 1


async def test_request_altered_after_signing_is_refused(tencent_sms: FakeTencentSms) -> None:
    await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"], params=["111111", "5"])
    signed = tencent_sms.requests[0]
    headers = {k: v for k, v in signed.headers.items() if k.lower() not in ("content-length", "host")}

    async def replay(body: bytes, **changed: str) -> dict:
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            resp = await client.post(
                tencent_sms.base_url,
                content=body,
                headers={**headers, "Host": tencent_sms.endpoint, **changed},
            )
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == "application/json"
        return resp.json()["Response"]

    # The untouched request verifies again; the signature is over the request, not the moment.
    assert "SendStatusSet" in await replay(signed.body)
    forged = json.loads(signed.body)
    forged["TemplateParamSet"] = ["999999", "5"]
    answer = await replay(json.dumps(forged).encode())
    assert answer["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert (await replay(signed.body, Host="sms.tencentcloudapi.com"))["Error"]["Code"] == (
        "AuthFailure.SignatureFailure"
    )
    # X-TC-Action is not among the signed headers, so a changed action passes the signature
    # check and is refused for what it is.
    assert (await replay(signed.body, **{"X-TC-Action": "PullSmsSendStatus"}))["Error"]["Code"] == (
        "InvalidAction"
    )
    assert (await replay(signed.body, **{"X-TC-Version": "2019-07-11"}))["Error"]["Code"] == (
        "NoSuchVersion"
    )
    garbled = await replay(signed.body, Authorization="TC3-HMAC-SHA256 Credential=x")
    assert garbled["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    assert [m["params"][0] for m in tencent_sms.sent] == ["111111", "111111"]


async def test_injected_failures_and_approval_checks(tencent_sms: FakeTencentSms) -> None:
    tencent_sms.fail_next("LimitExceeded.PhoneNumberThirtySecondLimit")
    limited = (await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"])).SendStatusSet[0]
    assert limited.Code == "LimitExceeded.PhoneNumberThirtySecondLimit"
    assert (limited.Fee, limited.SerialNo) == (0, "")
    assert tencent_sms.sent == []

    bad_number = (await asyncio.to_thread(sdk_send, tencent_sms, ["12345"])).SendStatusSet[0]
    assert bad_number.Code == "InvalidParameterValue.IncorrectPhoneNumber"

    tencent_sms.error_next("InternalError", "backend busy")
    with pytest.raises(TencentCloudSDKException) as internal:
        await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"])
    assert (internal.value.get_code(), internal.value.get_message()) == ("InternalError", "backend busy")

    with pytest.raises(TencentCloudSDKException) as unsigned:
        await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"], sign="别的签名")
    assert unsigned.value.get_code() == "FailedOperation.SignatureIncorrectOrUnapproved"

    await asyncio.to_thread(sdk_send, tencent_sms, ["13800138000"])
    assert tencent_sms.last_code("13800138000") == "123456"
    tencent_sms.reset()
    assert tencent_sms.sent == [] and tencent_sms.requests == []
