"""Opaque, revocable session tokens kept in Redis (Mini Program and H5 sign-ins).

The token itself is 32 random bytes handed to the client; Redis holds only its SHA-256, so a
copy of Redis does not yield usable tokens. Each account's tokens are listed in a set so that
all of them can be revoked at once (sign-out everywhere, account cancellation, merge).
"""

from __future__ import annotations

import hashlib
import json
import secrets

import redis.asyncio as aioredis

from wxbackend.services.clock import Clock, china_now, unix_time


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: aioredis.Redis, *, kind: str, ttl: int, now: Clock = china_now) -> None:
        self._redis = redis
        self._now = now
        self._kind = kind
        self._ttl = ttl

    def _key(self, token: str) -> str:
        return f"sess:{self._kind}:{_digest(token)}"

    def _account_key(self, account_id: int) -> str:
        return f"sess:{self._kind}:account:{account_id}"

    @property
    def ttl(self) -> int:
        return self._ttl

    async def create(self, account_id: int, data: dict | None = None) -> str:
        token = secrets.token_urlsafe(32)
        record = {"account_id": account_id, "created": unix_time(self._now), **(data or {})}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(token), json.dumps(record), ex=self._ttl)
            pipe.sadd(self._account_key(account_id), _digest(token))
            pipe.expire(self._account_key(account_id), self._ttl)
            await pipe.execute()
        return token

    async def get(self, token: str | None) -> dict | None:
        if not token or len(token) > 128:
            return None
        raw = await self._redis.get(self._key(token))
        return json.loads(raw) if raw else None

    async def revoke(self, token: str) -> None:
        record = await self.get(token)
        await self._redis.delete(self._key(token))
        if record:
            await self._redis.srem(self._account_key(record["account_id"]), _digest(token))

    async def revoke_account(self, account_id: int) -> int:
        digests = await self._redis.smembers(self._account_key(account_id))
        keys = [f"sess:{self._kind}:{d}" for d in digests]
        if keys:
            await self._redis.delete(*keys)
        await self._redis.delete(self._account_key(account_id))
        return len(keys)
