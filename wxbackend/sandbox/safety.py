"""What keeps the sandbox away from real people: it runs on its own embedded databases and its
own simulated WeChat, with keys it makes itself. A configuration that names a real database or
real WeChat or SMS credentials looks like production's, so the demo refuses it unless forced."""

from __future__ import annotations

from wxbackend.config import Settings


def refusals(settings: Settings) -> list[str]:
    """Why ``settings`` (the configuration the demo was started with) must not run the demo."""
    found = []
    if settings.database.dsn.reveal() or settings.redis.url.reveal():
        found.append("演示环境只使用内置的 PostgreSQL 和 Redis，配置中的 [database] dsn 或 [redis] url "
                     "可能是生产数据库（the config names a database or Redis: possibly production's）")
    if settings.wechat.appid or settings.wechat.secret.reveal() or settings.miniprogram.appid:
        found.append("演示环境只连接模拟的微信，配置中有公众号或小程序的 AppID/AppSecret "
                     "（the config holds WeChat credentials: the demo makes its own）")
    if settings.sms.provider != "console" or settings.sms.tencent_secret_id.reveal():
        found.append("演示环境只用模拟的短信，配置中有短信服务的凭据（the config holds SMS credentials）")
    return found
