"""A cadre binds their WeChat to their console account so reminders reach them: the console
shows a QR code of a short-lived signed link; opened in WeChat (signed in through the Official
Account's web authorisation), it ties that WeChat's openid to the cadre. One WeChat per cadre and
one cadre per WeChat; unbinding is one click in the console."""

from __future__ import annotations

import asyncpg
import segno

from wxbackend.services.cadres.audit import AuditTrail
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import Clock, china_now, unix_time
from wxbackend.services.errors import Conflict, NotFound
from wxbackend.services.signed_tokens import TokenKind, issue, read
from wxbackend.store.casework import items as item_store
from wxbackend.store.casework import reminders as store
from wxbackend.store.identity import accounts as account_store

BIND = TokenKind(domain=b"cadre-wechat-bind\x00",
                 invalid=("绑定码无效，请在工作台重新生成", "bind_code_invalid"),
                 expired=("绑定码已过期，请在工作台重新生成", "bind_code_expired"))


class CadreWeChat:
    def __init__(self, pool: asyncpg.Pool, key: bytes, *, oa_appid: str, h5_base: str,
                 ttl: int, audit: AuditTrail, now: Clock = china_now) -> None:
        self._pool = pool
        self._key = key
        self._appid = oa_appid
        self._url = f"{h5_base.rstrip('/')}/bind.html"
        self._ttl = ttl
        self._audit = audit
        self._now = now

    async def status(self, actor: Actor) -> dict:
        async with self._pool.acquire() as conn:
            row = await store.binding(conn, actor.id)
        return {"bound": row is not None, "bound_at": row["bound_at"].isoformat() if row else None}

    def code(self, actor: Actor) -> dict:
        """A link (and its QR code as SVG) that binds the WeChat opening it, for ``ttl`` seconds."""
        token = issue(self._key, BIND, actor.id, unix_time(self._now))
        url = f"{self._url}#t={token}"
        svg = segno.make(url, error="m").svg_inline(scale=4, dark="#111", light="#fff")
        return {"url": url, "svg": svg, "expires_in": self._ttl}

    async def bind(self, account_id: int, token: str) -> dict:
        """From the H5 page: the account signed in there gives the openid."""
        cadre_id, _ = read(self._key, BIND, token, unix_time(self._now), self._ttl)
        async with self._pool.acquire() as conn, conn.transaction():
            openid = await account_store.oa_openid(conn, account_id, self._appid)
            if openid is None:
                raise Conflict("请在微信中关注公众号后打开此页面", code="no_official_account")
            cadre = await item_store.active_cadre(conn, cadre_id)
            if cadre is None:
                raise NotFound("干部账号不存在或已停用", code="cadre_not_found")
            await store.bind(conn, cadre_id, openid, self._now())
            await self._audit.record(conn, actor_id=cadre_id, actor=cadre["username"], org_id=cadre["org_id"],
                                     action="cadre.wechat_bind", target=f"cadre:{cadre_id}")
        return {"bound": True, "cadre": cadre["display_name"]}

    async def unbind(self, actor: Actor) -> dict:
        async with self._pool.acquire() as conn, conn.transaction():
            if not await store.unbind(conn, actor.id):
                raise NotFound("尚未绑定微信", code="not_bound")
            await self._audit.record(conn, actor_id=actor.id, actor=actor.username, org_id=actor.org_id,
                                     action="cadre.wechat_unbind", target=f"cadre:{actor.id}", ip=actor.ip)
        return {"bound": False, "bound_at": None}
