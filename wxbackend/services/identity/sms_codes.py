"""SMS verification codes for H5 registration: short-lived, single use, rate-limited.

Limits (all in config ``[sms]``): one code per phone per ``resend_seconds``; at most
``max_per_phone_day`` per phone per day and ``max_per_ip_hour`` per client IP per hour; a code
lives ``code_ttl`` seconds and dies after ``max_attempts`` wrong guesses (so a 6-digit code
cannot be guessed: 5 tries in 10^6). Redis keys carry a keyed hash of the phone, never the
number, and the code is stored hashed. Checking a code is one Lua script: two requests racing
with the right code cannot both succeed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime

import redis.asyncio as aioredis

from wxbackend.config import SmsSettings
from wxbackend.infra.pii import PersonalData, mask_phone, normalise_phone
from wxbackend.infra.redis import WindowCounter, day_window, hour_window, retry_after
from wxbackend.infra.sms import SmsError, SmsSender
from wxbackend.services.clock import china_now
from wxbackend.services.errors import InvalidInput, TooManyRequests, Unavailable

log = logging.getLogger(__name__)

_CHECK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if redis.call('HGET', KEYS[1], 'code') == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
end
if attempts >= tonumber(ARGV[2]) then
    redis.call('DEL', KEYS[1])
    return -2
end
return 0
"""


class SmsCodeService:
    def __init__(self, redis: aioredis.Redis, sender: SmsSender, pii: PersonalData,
                 settings: SmsSettings, *, now: Callable[[], datetime] = china_now) -> None:
        self._redis = redis
        self._sender = sender
        self._pii = pii
        self._s = settings
        self._now = now     # hours and days are counted in China time
        self._counter = WindowCounter(redis)
        self._check = redis.register_script(_CHECK)

    def _phone_key(self, phone: str) -> str:
        return self._pii.blind_index(phone, "sms.phone").hex()[:32]

    @staticmethod
    def _code_digest(key: str, code: str) -> str:
        return hashlib.sha256(f"{key}:{code}".encode()).hexdigest()

    @staticmethod
    def _phone(raw: str) -> str:
        phone = normalise_phone(raw)
        if phone is None:
            raise InvalidInput("请输入正确的 11 位手机号码", code="invalid_phone")
        return phone

    async def send(self, raw_phone: str, client_ip: str) -> dict:
        phone = self._phone(raw_phone)
        key = self._phone_key(phone)
        if not await self._redis.set(f"sms:cool:{key}", 1, nx=True, ex=self._s.resend_seconds):
            wait = max(1, await self._redis.ttl(f"sms:cool:{key}"))
            raise TooManyRequests(f"验证码已发送，请 {wait} 秒后再试", code="sms_cooldown",
                                  headers={"Retry-After": str(wait)})
        now = self._now()
        hour, hour_ends = hour_window(now)
        day, day_ends = day_window(now)
        # Two counts, the phone's only once the network's allows: a blocked network uses no phone's quota.
        [ip_count] = await self._counter.hit({f"sms:ip:{client_ip}:{hour}": hour_ends})
        if ip_count > self._s.max_per_ip_hour:
            raise TooManyRequests("当前网络发送验证码过于频繁，请稍后再试", code="sms_ip_limit",
                                  headers={"Retry-After": retry_after(hour_ends, now)})
        [phone_count] = await self._counter.hit({f"sms:day:{key}:{day}": day_ends})
        if phone_count > self._s.max_per_phone_day:
            raise TooManyRequests("该手机号今日获取验证码次数已达上限，请明天再试", code="sms_daily_limit",
                                  headers={"Retry-After": retry_after(day_ends, now)})
        code = f"{secrets.randbelow(1_000_000):06d}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"sms:code:{key}")
            pipe.hset(f"sms:code:{key}", mapping={"code": self._code_digest(key, code), "attempts": 0})
            pipe.expire(f"sms:code:{key}", self._s.code_ttl)
            await pipe.execute()
        minutes = max(1, self._s.code_ttl // 60)
        try:
            await self._sender.send_code(phone, code, minutes)
        except SmsError as exc:
            await self._redis.delete(f"sms:code:{key}", f"sms:cool:{key}")
            log.warning("SMS to %s failed: %s", mask_phone(phone), exc)
            raise Unavailable("短信发送失败，请稍后再试", code="sms_send_failed") from exc
        return {"expires_in": self._s.code_ttl, "resend_after": self._s.resend_seconds}

    async def verify(self, raw_phone: str, code: str) -> str:
        """Consume a code; return the normalised phone it proves. Raises on a wrong, expired
        or exhausted code."""
        phone = self._phone(raw_phone)
        if not code or len(code) != 6 or not code.isdigit():
            raise InvalidInput("请输入 6 位数字验证码", code="sms_code_invalid")
        key = self._phone_key(phone)
        result = await self._check(keys=[f"sms:code:{key}"],
                                   args=[self._code_digest(key, code), self._s.max_attempts])
        if result == 1:
            return phone
        if result == -1:
            raise InvalidInput("验证码已过期或未获取，请重新获取", code="sms_code_expired")
        if result == -2:
            raise TooManyRequests("验证码错误次数过多，请重新获取", code="sms_too_many_attempts")
        raise InvalidInput("验证码错误", code="sms_code_invalid")
