"""The outside world of the sandbox: WeChat (the Official Account, its Mini Program, web sign-in)
and Tencent Cloud SMS, simulated on loopback ports of the server's own event loop, and the
settings that point the product at them. The product talks to them over real HTTP exactly as it
talks to WeChat, so what a trainee sees is what production does."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx

from wxbackend.config import Settings
from wxbackend.sandbox.guide import Guide
from wxbackend.sandbox.kit import Sandbox
from wxbackend.sandbox.people import unionid_of
from wxbackend.sandbox.phone import Phone
from wxbackend.sandbox.simulated import FakePusher, FakeTencentSms, FakeWeChat

SIGN_IN_PATH = "/sandbox/wechat/authorize"
SMS_SIGN = "四川省总工会"
SMS_TEMPLATE = "2100001"


class Simulation:
    """Starts and stops the simulated services for ``settings`` (whose WeChat credentials become
    the simulated apps' own)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        # Wall-clock time: the phone shows when each message arrived.
        self.wechat = FakeWeChat(settings.wechat.appid, settings.wechat.secret.reveal(), clock=time.time)
        if settings.miniprogram.appid:
            self.wechat.add_app(settings.miniprogram.appid, settings.miniprogram.secret.reveal())
        self.sms = FakeTencentSms(sign_name=SMS_SIGN, template_id=SMS_TEMPLATE)

    async def start(self) -> Settings:
        """Start both; the settings that send the product's calls to them."""
        await self.wechat.start()
        await self.sms.start()
        return self._settings.replace(
            # Sign-in pages go through the sandbox first: it asks which worker is signing in.
            wechat={"api_base": self.wechat.base_url,
                    "oauth_authorize_url": self._settings.server.public_url.rstrip("/") + SIGN_IN_PATH},
            sms={"provider": "tencent", "tencent_secret_id": self.sms.secret_id,
                 "tencent_secret_key": self.sms.secret_key, "sdk_app_id": self.sms.sdk_app_id,
                 "sign_name": SMS_SIGN, "template_id": SMS_TEMPLATE,
                 "endpoint": urlsplit(self.sms.base_url).netloc, "scheme": "http"})

    def sandbox(self, settings: Settings, http: httpx.AsyncClient, guide: Guide) -> Sandbox:
        """What the application serves in the sandbox, for the product running on ``settings``
        (those :meth:`start` returned)."""
        for worker in guide.workers:
            self.wechat.oauth_user(worker["openid"], unionid=unionid_of(worker["openid"]))
        wx = settings.wechat
        pusher = FakePusher(wx.token.reveal(), wx.encoding_aes_key.reveal(), wx.appid, wx.original_id,
                            mode=wx.message_mode)
        phone = Phone(http, settings.server.public_url, pusher, self.wechat, self.sms,
                      mp_appid=settings.miniprogram.appid)
        return Sandbox(guide=guide, phone=phone)

    async def stop(self) -> None:
        await self.sms.stop()
        await self.wechat.stop()
