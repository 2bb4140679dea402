"""SQL for ``wechat_followers``: who follows the Official Account, and what we last saw."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = """appid, openid, unionid, subscribed, first_subscribed_at, subscribed_at,
    unsubscribed_at, subscribe_scene, last_scan_scene, last_scan_at, latitude, longitude,
    location_precision, location_at, last_event, last_event_key, last_seen_at, created_at"""


async def subscribe(conn: asyncpg.Connection, appid: str, openid: str, at: datetime,
                    scene: str | None) -> None:
    await conn.execute(
        """INSERT INTO wechat_followers (appid, openid, subscribed, first_subscribed_at,
               subscribed_at, subscribe_scene, last_event, last_seen_at)
           VALUES ($1, $2, true, $3, $3, $4, 'subscribe', $3)
           ON CONFLICT (appid, openid) DO UPDATE SET
               subscribed = true, subscribed_at = $3, subscribe_scene = $4,
               first_subscribed_at = coalesce(wechat_followers.first_subscribed_at, $3),
               last_event = 'subscribe', last_event_key = NULL, last_seen_at = $3""",
        appid, openid, at, scene)


async def unsubscribe(conn: asyncpg.Connection, appid: str, openid: str, at: datetime) -> None:
    await conn.execute(
        """INSERT INTO wechat_followers (appid, openid, subscribed, unsubscribed_at, last_event,
               last_seen_at)
           VALUES ($1, $2, false, $3, 'unsubscribe', $3)
           ON CONFLICT (appid, openid) DO UPDATE SET
               subscribed = false, unsubscribed_at = $3, last_event = 'unsubscribe',
               last_event_key = NULL, last_seen_at = $3""",
        appid, openid, at)


async def record_scan(conn: asyncpg.Connection, appid: str, openid: str, at: datetime,
                      scene: str | None) -> None:
    await conn.execute(
        """INSERT INTO wechat_followers (appid, openid, subscribed, last_scan_scene, last_scan_at,
               last_event, last_event_key, last_seen_at)
           VALUES ($1, $2, true, $4, $3, 'SCAN', $4, $3)
           ON CONFLICT (appid, openid) DO UPDATE SET
               last_scan_scene = $4, last_scan_at = $3, last_event = 'SCAN',
               last_event_key = $4, last_seen_at = $3""",
        appid, openid, at, scene)


async def record_location(conn: asyncpg.Connection, appid: str, openid: str, at: datetime,
                          latitude: float, longitude: float, precision: float | None) -> None:
    await conn.execute(
        """INSERT INTO wechat_followers (appid, openid, subscribed, latitude, longitude,
               location_precision, location_at, last_event, last_seen_at)
           VALUES ($1, $2, true, $4, $5, $6, $3, 'LOCATION', $3)
           ON CONFLICT (appid, openid) DO UPDATE SET
               latitude = $4, longitude = $5, location_precision = $6, location_at = $3,
               last_event = 'LOCATION', last_event_key = NULL, last_seen_at = $3""",
        appid, openid, at, latitude, longitude, precision)


async def record_activity(conn: asyncpg.Connection, appid: str, openid: str, at: datetime,
                          event: str, event_key: str | None) -> None:
    """A message or a menu event: the sender follows us (WeChat only delivers followers')."""
    await conn.execute(
        """INSERT INTO wechat_followers (appid, openid, subscribed, last_event, last_event_key,
               last_seen_at)
           VALUES ($1, $2, true, $4, $5, $3)
           ON CONFLICT (appid, openid) DO UPDATE SET
               last_event = $4, last_event_key = $5, last_seen_at = $3""",
        appid, openid, at, event, event_key)


async def get(conn: asyncpg.Connection, appid: str, openid: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM wechat_followers WHERE appid = $1 AND openid = $2",  # noqa: S608
        appid, openid)
