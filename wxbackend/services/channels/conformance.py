"""The automated part of a self-built channel's acceptance (验收): does its entrance work with the
shared platform API exactly as it was approved?

The entrance proves itself by using the platform: during acceptance the union's developers make
a signed call to ``/api/v1`` and sign a worker in through the platform's SSO from the entrance.
The platform records both as they happen (the time of the entrance's last accepted signed
request; the sign-ins per entrance), so the report checks what really happened since approval,
not what the union says. The registration itself is compared with the approved plan: the scopes
granted, and redirect addresses that are HTTPS, on the entrance's own host, and exactly those
approved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as aioredis

from wxbackend.services.clock import china_now
from wxbackend.services.identity.platform import PlatformApps, signed_call_key


def _check(name: str, title: str, passed: bool, detail: str) -> dict:
    return {"name": name, "title": title, "passed": passed, "detail": detail}


class ConformanceCheck:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, apps: PlatformApps, *,
                 now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._redis = redis
        self._apps = apps
        self._now = now

    async def report(self, application: asyncpg.Record, approved_at: datetime) -> dict:
        plan = application["plan"]
        app_id = application["platform_app_id"]
        app = await self._apps.get_app(app_id) if app_id else None
        checks = [_check("app_registered", "已登记为平台接入入口且处于启用状态",
                         app is not None and app.active,
                         f"接入入口 {app_id}" if app else "没有登记的接入入口")]
        entrance = urlsplit(plan["entrance_url"])
        checks.append(_check("entrance_https", "频道入口使用 HTTPS", entrance.scheme == "https",
                             plan["entrance_url"]))
        if app is not None:
            granted, approved = sorted(app.scopes), sorted(plan["scopes"])
            checks.append(_check("scopes_as_approved", "接口权限与批准的一致", granted == approved,
                                 f"登记：{', '.join(granted)}；批准：{', '.join(approved)}"))
            uris = list(app.redirect_uris)
            on_host = all(urlsplit(u).scheme == "https" and urlsplit(u).hostname == entrance.hostname
                          and not urlsplit(u).fragment for u in uris)
            checks.append(_check("redirect_uris_as_registered",
                                 "单点登录回调地址与批准的一致，均为入口域名下的 HTTPS 地址",
                                 uris == list(plan["redirect_uris"]) and bool(uris) and on_host,
                                 "；".join(uris) or "未登记回调地址"))
            signed = await self._redis.get(signed_call_key(app_id))
            signed_at = int(signed) if signed else None
            checks.append(_check(
                "signed_call", "批准后以本入口的密钥签名调用平台接口成功",
                signed_at is not None and signed_at >= int(approved_at.timestamp()),
                f"最近一次：{datetime.fromtimestamp(signed_at, approved_at.tzinfo).isoformat()}"
                if signed_at else "尚无签名调用"))
            async with self._pool.acquire() as conn:
                last_sso = await conn.fetchval(
                    "SELECT max(last_at) FROM platform_sign_ins WHERE app_id = $1", app_id)
            checks.append(_check("sso_sign_in", "批准后经平台单点登录进入频道成功",
                                 last_sso is not None and last_sso >= approved_at,
                                 f"最近一次：{last_sso.isoformat()}" if last_sso else "尚无单点登录"))
        return {"at": self._now().isoformat(), "passed": all(c["passed"] for c in checks),
                "checks": checks}
