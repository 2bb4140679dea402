"""Sending verification codes by SMS: Tencent Cloud SMS in production, the log on a laptop.

Tencent's official SDK is used rather than our own HTTP client because the TC3-HMAC-SHA256
request signing is easy to get subtly wrong and the SDK tracks API changes. The SDK is blocking
(``requests``), so every call runs in an executor and is bounded by ``asyncio.wait_for``: a stuck
SMS gateway must never hold up the event loop or the request that asked for a code.

Phone numbers and codes are personal data: nothing here logs a full phone number (only
``138****5678``), and only the console sender — whose whole purpose is to show the code to the
developer — logs the code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import re
from typing import Any, Protocol, runtime_checkable

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models, sms_client

from wxbackend.config import ConfigError, SmsSettings
from wxbackend.infra.logging import mask
from wxbackend.infra.pii import mask_phone, normalise_phone

__all__ = [
    "ConsoleSmsSender",
    "SmsError",
    "SmsSender",
    "TencentSmsSender",
    "create_sms_sender",
    "mask_phone",
]

log = logging.getLogger("wxbackend.sms")

_E164_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")
# Error families worth another try later: our side of the network, Tencent's internal errors and
# its API rate limiting. Everything else (credentials, signature/template approval, per-number
# frequency limits, balance, bad numbers) fails the same way until a person changes something.
_RETRYABLE = frozenset(
    {"ClientNetworkError", "ServerNetworkError", "ClientTimeout", "InternalError", "RequestLimitExceeded"}
)
# What an operator should check, for the codes a misconfigured or busy deployment actually meets.
_HINTS = {
    "AuthFailure.SignatureFailure": "SecretKey 与 SecretId 不匹配，请核对 [sms] tencent_secret_key",
    "AuthFailure.SecretIdNotFound": "SecretId 不存在或已停用，请核对 [sms] tencent_secret_id",
    "AuthFailure.SignatureExpire": "服务器时间与标准时间相差超过 5 分钟，请检查 NTP",
    "AuthFailure.UnauthorizedOperation": "该密钥的 CAM 权限不含短信发送",
    "InvalidParameterValue.SdkAppIdNotExist": "[sms] sdk_app_id 不存在",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "[sms] sdk_app_id 校验失败",
    "FailedOperation.SignatureIncorrectOrUnapproved": "短信签名未审核通过或与 [sms] sign_name 不一致",
    "FailedOperation.TemplateIncorrectOrUnapproved": "模板未审核通过，或 [sms] template_id / 参数个数不符",
    "FailedOperation.InsufficientBalanceInSmsPackage": "短信套餐包余量不足",
    "FailedOperation.PhoneNumberInBlacklist": "该号码在免打扰名单中",
    "InvalidParameterValue.IncorrectPhoneNumber": "不是有效的中国大陆手机号",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "同一号码 30 秒内发送过多",
    "LimitExceeded.PhoneNumberOneHourLimit": "同一号码 1 小时内发送过多",
    "LimitExceeded.PhoneNumberDailyLimit": "同一号码当日发送已达上限",
    "LimitExceeded.DeliveryFrequencyLimit": "触发控制台配置的发送频率限制",
    "ClientNetworkError": "无法连接腾讯云短信接口（网络、DNS 或超时）",
    "ServerNetworkError": "腾讯云短信接口返回了非 200 响应",
    "ClientTimeout": "腾讯云短信接口未在超时时间内返回，短信可能已发出",
    "RequestLimitExceeded": "API 调用频率超限",
}


class SmsError(Exception):
    """An SMS was not sent. ``code`` is the provider's error code, for alerting and support.

    ``retryable`` tells the caller whether the same request may succeed later without anyone
    changing configuration. ``str()`` is meant for operators (logs, alerts): it names the code,
    a hint where one is known and the provider's message, never the phone number or the code.
    """

    def __init__(self, code: str, message: str = "", *, retryable: bool = False) -> None:
        self.code = code
        self.message = _scrub(message)
        self.retryable = retryable
        text = f"SMS not sent [{code}]"
        if code in _HINTS:
            text += f" {_HINTS[code]}"
        if self.message:
            text += f" — {self.message}"
        super().__init__(text)


@runtime_checkable
class SmsSender(Protocol):
    """What the verification-code service needs from an SMS provider."""

    async def send_code(self, phone: str, code: str, minutes: int) -> None:
        """Send ``code`` (valid ``minutes``) to the 11-digit ``phone``; raise SmsError on failure."""
        ...


def _national(phone: str) -> str:
    """The 11-digit mainland number (the one normaliser, ``infra.pii``), or an SmsError."""
    digits = normalise_phone(phone)
    if digits is None:
        raise SmsError("InvalidParameterValue.IncorrectPhoneNumber", retryable=False)
    return digits


def _scrub(text: str) -> str:
    """Mask phone numbers in provider messages, including the +86 form Tencent echoes back."""
    return mask(_E164_MOBILE.sub(r"\1****\2", text))


def _is_retryable(code: str) -> bool:
    return code.split(".", 1)[0] in _RETRYABLE


class TencentSmsSender:
    """Tencent Cloud SMS (API 2021-01-11, action SendSms) with one approved template.

    The template is expected to take two parameters, the code and its lifetime in minutes, e.g.
    "验证码 {1}，{2} 分钟内有效". ``executor`` runs the blocking SDK call; None means the loop's
    default executor.
    """

    def __init__(
        self, settings: SmsSettings, executor: concurrent.futures.Executor | None = None
    ) -> None:
        self._settings = settings
        self._executor = executor
        # The SDK logs whole request bodies — phone number and code — at DEBUG. Keep that out of
        # the logs unless an operator has set the SDK's level on purpose.
        sdk_log = logging.getLogger("tencentcloud_sdk_common")
        if sdk_log.level == logging.NOTSET:
            sdk_log.setLevel(logging.INFO)

    async def send_code(self, phone: str, code: str, minutes: int) -> None:
        """Send one code; SmsError carries Tencent's code and whether a retry may help."""
        number = "+86" + _national(phone)
        loop = asyncio.get_running_loop()
        blocking = functools.partial(self._send_blocking, number, [code, str(minutes)])
        try:
            # The SDK has its own socket timeout; this bound also covers DNS and connection-pool
            # waits, which requests' timeout does not.
            status = await asyncio.wait_for(
                loop.run_in_executor(self._executor, blocking), self._settings.timeout + 1
            )
        except TimeoutError:
            raise SmsError(
                "ClientTimeout", f"no answer within {self._settings.timeout + 1:g} s", retryable=True
            ) from None
        except TencentCloudSDKException as exc:
            code_name = str(exc.get_code() or "ClientError")
            message = exc.get_message()
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            detail = str(message or "")[:300]
            if exc.get_request_id():
                detail = f"{detail} (RequestId {exc.get_request_id()})"
            raise SmsError(code_name, detail, retryable=_is_retryable(code_name)) from None
        log.info(
            "SMS code sent to %s (SerialNo %s, fee %s)",
            mask_phone(number[3:]),
            getattr(status, "SerialNo", ""),
            getattr(status, "Fee", ""),
        )

    def _send_blocking(self, number: str, params: list[str]) -> Any:
        """Runs in the executor; a fresh client per call, so threads never share a requests session."""
        s = self._settings
        http = HttpProfile(
            protocol=s.scheme, endpoint=s.endpoint, reqMethod="POST", reqTimeout=s.timeout
        )
        cred = credential.Credential(s.tencent_secret_id.reveal(), s.tencent_secret_key.reveal())
        client = sms_client.SmsClient(cred, s.region, ClientProfile(httpProfile=http))
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [number]
        request.SmsSdkAppId = s.sdk_app_id
        request.SignName = s.sign_name
        request.TemplateId = s.template_id
        request.TemplateParamSet = params
        response = client.SendSms(request)
        statuses = response.SendStatusSet or []
        if not statuses:
            raise SmsError(
                "FailedOperation", f"answer without SendStatusSet (RequestId {response.RequestId})"
            )
        status = statuses[0]
        if status.Code != "Ok":
            # A per-number refusal (frequency limits, blacklist, bad number, …).
            raise SmsError(
                status.Code or "FailedOperation",
                f"{status.Message or ''} (RequestId {response.RequestId})",
                retryable=_is_retryable(status.Code or ""),
            )
        return status


class ConsoleSmsSender:
    """For a laptop run without an SMS account: the code goes to the log instead of a phone."""

    async def send_code(self, phone: str, code: str, minutes: int) -> None:
        """Log the code at WARNING, so it stands out and is visible at the default log level."""
        masked = mask_phone(_national(phone))
        log.warning("短信验证码 %s 已发往 %s（console 发送方式，仅用于本地调试）", code, masked)


def create_sms_sender(settings: SmsSettings) -> SmsSender:
    """The sender ``[sms] provider`` asks for."""
    if settings.provider == "tencent":
        return TencentSmsSender(settings)
    if settings.provider == "console":
        return ConsoleSmsSender()
    raise ConfigError(f"[sms] provider must be console or tencent, not {settings.provider!r}")
