"""A fake Tencent Cloud API (``sms.tencentcloudapi.com``) served over real HTTP on 127.0.0.1.

The sender under test uses Tencent's official SDK unchanged, pointed at this server with scheme
``http``. The fake checks the TC3-HMAC-SHA256 signature with its own implementation of Tencent's
documented algorithm — not the SDK's — so a wrong key, a skewed clock or a tampered body fails
here as it would against Tencent. Answers have Tencent's real shape (``fixtures/tencent_sms/``):
HTTP 200 with ``Content-Type: application/json`` and either ``Response.SendStatusSet`` or
``Response.Error``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import tornado.httputil
import tornado.web

from ._server import FakeServer
from .wechat_api import fixture

__all__ = ["FakeSmsRequest", "FakeTencentSms"]

ACTION = "SendSms"
VERSION = "2021-01-11"
SERVICE = "sms"
_BAD_NUMBER = "InvalidParameterValue.IncorrectPhoneNumber"
# Tencent refuses a request whose X-TC-Timestamp is further than this from its clock.
MAX_SKEW = 300

_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<secret_id>[^/\s,]+)/(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P<service>[a-z0-9]+)/tc3_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
_MESSAGES = {
    "AuthFailure.InvalidAuthorization": "Authorization header format error.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your SecretId is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp comparison failed.",
    "AuthFailure.SignatureFailure": (
        "The provided credentials could not be validated. Please check your signature is correct."
    ),
    "FailedOperation.FailResolvePacket": "Failed to parse the request body.",
    "FailedOperation.SignatureIncorrectOrUnapproved": "The signature is incorrect or unapproved.",
    "FailedOperation.TemplateIncorrectOrUnapproved": "The template is incorrect or unapproved.",
    "InvalidParameterValue.SdkAppIdNotExist": "SdkAppId does not exist.",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect phone number",
    "LimitExceeded.PhoneNumberCountLimit": "The number of phone numbers exceeds 200.",
    "LimitExceeded.PhoneNumberThirtySecondLimit": (
        "the number of sms messages sent from a single mobile number within 30 seconds exceeds the limit"
    ),
    "LimitExceeded.PhoneNumberOneHourLimit": (
        "the number of sms messages sent from a single mobile number within 1 hour exceeds the limit"
    ),
    "LimitExceeded.PhoneNumberDailyLimit": (
        "the number of sms messages sent from a single mobile number every day exceeds the limit"
    ),
    "RequestLimitExceeded": "Your current request times equals to `3000` in a second.",
    "InternalError": "An internal error has occurred.",
}


class _TcError(Exception):
    """Ends request handling with a ``Response.Error`` answer."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message or _MESSAGES.get(code, code)


@dataclass
class FakeSmsRequest:
    """One request as it arrived; ``error`` is the ``Error.Code`` answered, None if accepted."""

    method: str
    headers: dict[str, str]
    body: bytes
    at: float
    error: str | None = None


class FakeTencentSms(FakeServer):
    """In-process stand-in for Tencent Cloud SMS ``SendSms`` that really checks signatures.

    ``sign_name`` and ``template_id`` default to None, meaning "whatever is sent is approved";
    give them to make a mismatch fail the way an unapproved signature/template does. ``clock``
    (wall-clock seconds) is what X-TC-Timestamp is compared with. Once started, ``endpoint``
    (host:port) goes in ``[sms] endpoint``.
    """

    def __init__(
        self,
        secret_id: str = "AKIDfakeTencentSecretId0123456789ab",  # noqa: S107 - the fake's own
        secret_key: str = "fakeTencentSecretKey0123456789ab",  # noqa: S107 - made-up key pair
        *,
        sdk_app_id: str = "1400000000",
        sign_name: str | None = None,
        template_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.template_id = template_id
        self.clock = clock
        self.sent: list[dict[str, Any]] = []
        self.sent_at: list[float] = []     # when each of ``sent`` arrived, on ``clock``
        self.requests: list[FakeSmsRequest] = []
        self._status_failures: list[tuple[str, str]] = []
        self._request_errors: list[tuple[str, str]] = []
        self._delay = 0.0

    # -- inspection and fault injection ---------------------------------------------------------

    def last_code(self, phone: str) -> str | None:
        """The first template parameter (the code) of the last message sent to ``phone``."""
        wanted = _e164(phone) or phone
        for message in reversed(self.sent):
            if message["phone"] == wanted:
                return message["params"][0] if message["params"] else None
        return None

    def fail_next(self, code: str, message: str = "") -> None:
        """Make every number of the next SendSms get status ``code`` instead of "Ok"."""
        self._status_failures.append((code, message or _MESSAGES.get(code, code)))

    def error_next(self, code: str, message: str = "") -> None:
        """Answer the next signed request with ``Response.Error`` ``code`` (e.g. InternalError)."""
        self._request_errors.append((code, message))

    def set_delay(self, seconds: float) -> None:
        """Hold every answer for ``seconds``, to drive client timeouts (0 clears)."""
        self._delay = max(0.0, seconds)

    def reset(self) -> None:
        """Forget sent messages, recorded requests, injected failures and the delay."""
        self.sent.clear()
        self.sent_at.clear()
        self.requests.clear()
        self._status_failures.clear()
        self._request_errors.clear()
        self._delay = 0.0

    # -- request handling -----------------------------------------------------------------------

    async def _serve(self, handler: tornado.web.RequestHandler) -> None:
        request = handler.request
        record = FakeSmsRequest(
            request.method or "", dict(request.headers.get_all()), request.body, self.clock()
        )
        self.requests.append(record)
        await self._hold(self._delay)
        try:
            answer = self._answer(request)
        except _TcError as error:
            record.error = error.code
            answer = fixture("tencent_sms/error.json")
            answer["Response"]["Error"] = {"Code": error.code, "Message": error.message}
        answer["Response"]["RequestId"] = str(uuid.uuid4())
        # Exactly this Content-Type: the SDK only looks for Response.Error when it sees it.
        handler.set_header("Content-Type", "application/json")
        handler.finish(json.dumps(answer, ensure_ascii=False))

    def _answer(self, request: tornado.httputil.HTTPServerRequest) -> dict:
        self._verify_signature(request)
        headers = request.headers
        action = headers.get("X-TC-Action", "")
        if action != ACTION:
            raise _TcError("InvalidAction", f"The requested action `{action}` does not exist.")
        version = headers.get("X-TC-Version", "")
        if version != VERSION:
            raise _TcError("NoSuchVersion", f"The requested version `{version}` of `sms` does not exist.")
        if not headers.get("X-TC-Region"):
            raise _missing("Region")
        if request.method != "POST" or not headers.get("Content-Type", "").startswith("application/json"):
            raise _TcError("InvalidParameter", "this fake serves POST with a JSON body only")
        try:
            params = json.loads(request.body)
        except (UnicodeDecodeError, ValueError):
            params = None
        if not isinstance(params, dict):
            raise _TcError("FailedOperation.FailResolvePacket")
        if self._request_errors:
            raise _TcError(*self._request_errors.pop(0))
        return self._send_sms(params)

    def _verify_signature(self, request: tornado.httputil.HTTPServerRequest) -> None:
        """TC3-HMAC-SHA256 as Tencent documents it for API 3.0 (签名方法 v3)."""
        headers = request.headers
        match = _AUTHORIZATION.fullmatch(headers.get("Authorization", "").strip())
        if match is None:
            raise _TcError("AuthFailure.InvalidAuthorization")
        if match["secret_id"] != self.secret_id:
            raise _TcError("AuthFailure.SecretIdNotFound")
        raw_timestamp = headers.get("X-TC-Timestamp", "")
        if not raw_timestamp.isdigit():
            raise _missing("Timestamp")
        timestamp = int(raw_timestamp)
        if abs(self.clock() - timestamp) > MAX_SKEW:
            raise _TcError("AuthFailure.SignatureExpire")
        signed = match["signed"].split(";")
        if "content-type" not in signed or "host" not in signed or signed != sorted(signed):
            raise _TcError("AuthFailure.SignatureFailure")

        # 1. Canonical request: lower-cased, trimmed signed headers in order; hashed payload.
        canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed)
        if headers.get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD":
            payload = b"UNSIGNED-PAYLOAD"
        else:
            payload = request.body
        canonical_request = "\n".join(
            [
                request.method or "",
                request.path,
                request.query,
                canonical_headers,
                match["signed"],
                hashlib.sha256(payload).hexdigest(),
            ]
        )
        # 2. String to sign over the credential scope date/service/tc3_request.
        scope = f"{match['date']}/{match['service']}/tc3_request"
        string_to_sign = "\n".join(
            [
                "TC3-HMAC-SHA256",
                raw_timestamp,
                scope,
                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
            ]
        )
        # 3. Derived keys: SecretDate -> SecretService -> SecretSigning.
        secret_date = _hmac(("TC3" + self.secret_key).encode("utf-8"), match["date"])
        secret_service = _hmac(secret_date, match["service"])
        secret_signing = _hmac(secret_service, "tc3_request")
        expected = hmac.new(secret_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            raise _TcError("AuthFailure.SignatureFailure")
        # The scope must name this service and the UTC date of the timestamp.
        utc_date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        if match["service"] != SERVICE or match["date"] != utc_date:
            raise _TcError("AuthFailure.SignatureFailure")

    def _send_sms(self, params: dict) -> dict:
        numbers = params.get("PhoneNumberSet")
        if not isinstance(numbers, list) or not numbers:
            raise _missing("PhoneNumberSet")
        if len(numbers) > 200:
            raise _TcError("LimitExceeded.PhoneNumberCountLimit")
        app_id = params.get("SmsSdkAppId")
        if not app_id:
            raise _missing("SmsSdkAppId")
        if app_id != self.sdk_app_id:
            raise _TcError("InvalidParameterValue.SdkAppIdNotExist")
        template_id = params.get("TemplateId")
        if not template_id:
            raise _missing("TemplateId")
        if self.template_id is not None and template_id != self.template_id:
            raise _TcError("FailedOperation.TemplateIncorrectOrUnapproved")
        sign_name = params.get("SignName") or ""
        if self.sign_name is not None and sign_name != self.sign_name:
            raise _TcError("FailedOperation.SignatureIncorrectOrUnapproved")
        template_params = params.get("TemplateParamSet") or []
        if not isinstance(template_params, list) or not all(isinstance(p, str) for p in template_params):
            raise _TcError("InvalidParameterValue", "TemplateParamSet must be a list of strings.")

        failure = self._status_failures.pop(0) if self._status_failures else None
        answer = fixture("tencent_sms/send_sms.json")
        template = answer["Response"]["SendStatusSet"][0]
        statuses = []
        for raw in numbers:
            status = copy.deepcopy(template)
            number = _e164(raw) if isinstance(raw, str) else None
            status.update(PhoneNumber=number or str(raw), SessionContext=params.get("SessionContext", ""))
            failed = failure if number is not None else (_BAD_NUMBER, _MESSAGES[_BAD_NUMBER])
            if failed is not None:
                status.update(SerialNo="", Fee=0, Code=failed[0], Message=failed[1])
            else:
                status.update(SerialNo=f"2640:{secrets.randbelow(10**28):028d}", Fee=1)
                self.sent.append(
                    {
                        "phone": number,
                        "sign_name": sign_name,
                        "template_id": template_id,
                        "params": list(template_params),
                        "sdk_app_id": app_id,
                    }
                )
                self.sent_at.append(self.clock())
            statuses.append(status)
        answer["Response"]["SendStatusSet"] = statuses
        return answer


def _missing(name: str) -> _TcError:
    return _TcError("MissingParameter", f"The request is missing a required parameter `{name}`.")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _e164(phone: str) -> str | None:
    """``+86`` plus 11 digits for a mainland mobile number in any form Tencent accepts, else None."""
    digits = phone.strip()
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return "+86" + digits if re.fullmatch(r"1[3-9]\d{9}", digits) else None
