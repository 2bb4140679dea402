"""SQL for ``wechat_followers``: who follows the Official Account, and what we last saw.

Each effect is a fragment that :mod:`wxbackend.store.messaging.inbound` runs inside the statement that
records a batch of pushes: it reads the CTE ``new`` (the pushes that were not recorded before,
with columns openid, created, effect, arg, lat, lng, prec, event_key) and ``$1`` (the appid), so
recording pushes and applying their effects is one atomic statement and one round trip.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

_UPSERT = "INSERT INTO wechat_followers AS f ({columns}) SELECT {values} FROM new " \
          "WHERE effect = '{effect}' ON CONFLICT (appid, openid) DO UPDATE SET {updates}"

EFFECTS: dict[str, str] = {
    "subscribe": _UPSERT.format(
        effect="subscribe",
        columns="appid, openid, subscribed, first_subscribed_at, subscribed_at, subscribe_scene, "
                "last_event, last_seen_at",
        values="$1, openid, true, created, created, arg, 'subscribe', created",
        updates="subscribed = true, subscribed_at = excluded.subscribed_at, "
                "subscribe_scene = excluded.subscribe_scene, "
                "first_subscribed_at = coalesce(f.first_subscribed_at, excluded.first_subscribed_at), "
                "last_event = 'subscribe', last_event_key = NULL, last_seen_at = excluded.last_seen_at"),
    "unsubscribe": _UPSERT.format(
        effect="unsubscribe",
        columns="appid, openid, subscribed, unsubscribed_at, last_event, last_seen_at",
        values="$1, openid, false, created, 'unsubscribe', created",
        updates="subscribed = false, unsubscribed_at = excluded.unsubscribed_at, "
                "last_event = 'unsubscribe', last_event_key = NULL, "
                "last_seen_at = excluded.last_seen_at"),
    "scan": _UPSERT.format(
        effect="scan",
        columns="appid, openid, subscribed, last_scan_scene, last_scan_at, last_event, "
                "last_event_key, last_seen_at",
        values="$1, openid, true, arg, created, 'SCAN', arg, created",
        updates="last_scan_scene = excluded.last_scan_scene, last_scan_at = excluded.last_scan_at, "
                "last_event = 'SCAN', last_event_key = excluded.last_event_key, "
                "last_seen_at = excluded.last_seen_at"),
    "location": _UPSERT.format(
        effect="location",
        columns="appid, openid, subscribed, latitude, longitude, location_precision, location_at, "
                "last_event, last_seen_at",
        values="$1, openid, true, lat, lng, prec, created, 'LOCATION', created",
        updates="latitude = excluded.latitude, longitude = excluded.longitude, "
                "location_precision = excluded.location_precision, "
                "location_at = excluded.location_at, last_event = 'LOCATION', "
                "last_event_key = NULL, last_seen_at = excluded.last_seen_at"),
    # A message or a menu event: the sender follows us (WeChat only delivers followers').
    "activity": _UPSERT.format(
        effect="activity",
        columns="appid, openid, subscribed, last_event, last_event_key, last_seen_at",
        values="$1, openid, true, arg, event_key, created",
        updates="last_event = excluded.last_event, last_event_key = excluded.last_event_key, "
                "last_seen_at = excluded.last_seen_at"),
}


async def get(conn: asyncpg.Connection, appid: str, openid: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM wechat_followers WHERE appid = $1 AND openid = $2", appid, openid)


async def forget_account(conn: asyncpg.Connection, account_id: int) -> None:
    """Cancellation: the follower rows of the account's Official Account openids (and unionid)
    go, last reported location included. Call before the account's identities are deleted."""
    await conn.execute(
        """DELETE FROM wechat_followers f USING account_identities i
           WHERE i.account_id = $1
             AND ((i.kind = 'oa_openid' AND f.appid = i.issuer AND f.openid = i.subject)
                  OR (i.kind = 'unionid' AND f.unionid = i.subject))""", account_id)


async def drop_locations(conn: asyncpg.Connection, reported_before: datetime) -> int:
    """Retention: last locations reported before ``reported_before`` go (a location is
    sensitive personal information); the follower row stays."""
    status = await conn.execute(
        """UPDATE wechat_followers SET latitude = NULL, longitude = NULL, location_precision = NULL
           WHERE location_at < $1 AND latitude IS NOT NULL""", reported_before)
    return int(status.split()[-1])
