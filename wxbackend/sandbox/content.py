"""What the demo province's people did: activities and inclusive services (open now through the
catalogue service; past ones, with their sign-ups, back-dated in bulk), articles in the union
channels, and the channels' daily page views."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from wxbackend.runtime import Runtime
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.channels.articles import revision_etag, searchable
from wxbackend.services.clock import CHINA
from wxbackend.store import sandbox as store

HISTORY_DAYS = 365
THEMES = ("职工健步走", "劳模工匠进企业", "普法宣传", "女职工关爱", "夏送清凉", "金秋助学", "技能竞赛",
          "心理健康讲座", "青年联谊", "职工书屋读书", "安康杯知识竞赛", "困难职工帮扶",
          "新就业形态劳动者入会")
SERVICES = (("coupon", "职工观影优惠券"), ("ticket", "景区门票惠购"), ("checkup", "职工健康体检"),
            ("discount", "职工超市九折"), ("coupon", "职工餐厅餐券"))


def _iso(at: datetime) -> str:
    return at.astimezone(CHINA).isoformat()


async def generate(rt: Runtime, rng: random.Random, now: datetime, *, actors: dict[str, Actor],
                   unions: list[int], accounts: list[int]) -> dict[str, int]:
    counts = await _open_offerings(rt, now, actors)
    counts.update(await _past_offerings(rt, rng, now, actors, unions, accounts))
    counts.update(await _articles(rt, rng, now, actors))
    return counts


async def _open_offerings(rt: Runtime, now: datetime, actors: dict[str, Actor]) -> dict[str, int]:
    """Open for sign-up now (and one opening in a few days): created and published as a cadre does."""
    day = timedelta(days=1)
    plans = [
        (actors["city"], {"kind": "activity", "form": "offline", "title": "成都市职工健步走（演示）",
                          "summary": "沿锦江绿道健步走，完赛职工可领取纪念品。", "place": "成都市锦江绿道",
                          "stock": 300}, -2, 12, 15),
        (actors["city"], {"kind": "activity", "form": "offline", "title": "劳模工匠进企业宣讲（演示）",
                          "summary": "全国劳模分享成长经历与技能心得。", "place": "成都市工人文化宫",
                          "stock": 120}, -1, 8, 10),
        (actors["city"], {"kind": "activity", "form": "offline", "title": "职工篮球联赛报名（演示）",
                          "summary": "以基层工会为单位组队参赛。", "place": "成都市职工体育馆",
                          "stock": 32}, 3, 20, 30),
        (actors["grassroots"], {"kind": "activity", "form": "offline", "title": "职工读书分享会（演示）",
                                "summary": "职工书屋每月一次的读书分享。", "place": "公司职工之家",
                                "stock": 40}, -3, 5, 7),
        (actors["grassroots"], {"kind": "service", "form": "coupon", "title": "职工观影优惠券（演示）",
                                "summary": "会员凭券在合作影院观影立减 20 元。", "place": "合作影院",
                                "stock": 200}, -1, 25, 0),
        (actors["grassroots"], {"kind": "service", "form": "discount", "title": "职工超市九折（演示）",
                                "summary": "会员在合作超市购物享九折。", "place": "合作超市",
                                "stock": 500}, -5, 30, 0),
    ]
    made = 0
    for actor, body, opens, closes, starts in plans:
        opens_at = (now + opens * day).replace(hour=9, minute=0, second=0)
        closes_at = (now + closes * day).replace(hour=18, minute=0, second=0)
        times = {"opens_at": _iso(opens_at), "closes_at": _iso(closes_at)}
        if starts:
            starts_at = (now + starts * day).replace(hour=9, minute=0, second=0)
            times |= {"starts_at": _iso(starts_at), "ends_at": _iso(starts_at + timedelta(hours=3))}
        item = await rt.catalogue.create(actor, {**body, **times, "mode": "first_come", "per_person": 1})
        await rt.catalogue.set_status(actor, item["id"], "published")
        made += 1
    return {"offerings_open": made}


async def _past_offerings(rt: Runtime, rng: random.Random, now: datetime, actors: dict[str, Actor],
                          unions: list[int], accounts: list[int]) -> dict[str, int]:
    """Activities and services of the last year, over, with their places taken and used."""
    n = max(12, len(unions) // 6)
    rows, shapes = [], []
    for k in range(n):
        organiser = actors["city"] if k % 5 == 0 else actors["grassroots"] if k % 5 == 1 else None
        org_id = organiser.org_id if organiser else rng.choice(unions)
        published = now - timedelta(days=HISTORY_DAYS) + timedelta(
            days=rng.uniform(0, HISTORY_DAYS - 20))
        published = published.replace(hour=rng.randint(9, 17), microsecond=0)
        closes = published + timedelta(days=rng.randint(5, 12))
        if k % 3 == 2:
            form, title = rng.choice(SERVICES)
            kind, place, starts, ends = "service", "合作商户", closes, closes + timedelta(days=30)
        else:
            kind, form, title = "activity", "offline", rng.choice(THEMES)
            place = "职工之家"
            starts = closes + timedelta(days=rng.randint(1, 4))
            ends = starts + timedelta(hours=3)
        stock = rng.choice((30, 50, 80, 100))
        rows.append((kind, form, org_id, f"{title}（演示）", "往期活动，供演示。", place, starts, ends,
                     published, closes, stock, organiser.id if organiser else None, published, "closed"))
        shapes.append((kind, stock, published, closes, ends))
    ids = await _in_transaction(rt, store.insert_offerings, rows)
    claims = []
    for offering_id, (kind, stock, opened, closes, ends) in zip(ids, shapes, strict=True):
        for account_id in rng.sample(accounts, min(len(accounts), rng.randint(stock // 4, stock))):
            at = opened + (closes - opened) * rng.random()
            if rng.random() < 0.8:
                used = at + (ends - at) * rng.random() if kind == "service" else ends - timedelta(hours=2)
                by = "核销员 shop" if kind == "service" else "现场签到"
                claims.append((offering_id, account_id, "used", at, min(used, now), by))
            else:
                claims.append((offering_id, account_id, "lapsed" if kind == "service" else "missed",
                               at, None, None))
    if claims:
        await _in_transaction(rt, store.insert_claims, claims)
    return {"offerings_past": len(ids), "sign_ups": len(claims)}


async def _in_transaction(rt: Runtime, fn, *args):
    async with rt.pool.acquire() as conn, conn.transaction():
        return await fn(conn, *args)


async def _articles(rt: Runtime, rng: random.Random, now: datetime,
                    actors: dict[str, Actor]) -> dict[str, int]:
    """Articles in the province's and the cities' channels (成都 and 绵阳 the busiest), and every
    channel's page views of every day of the year."""
    async with rt.pool.acquire() as conn:
        channels = await store.channels_of(conn)
    cities = [c for c in channels if c["kind"] == "city"]
    busy = [c for c in cities if c["division_code"] in ("510100", "510700")]
    made = 0
    async with rt.pool.acquire() as conn, conn.transaction():
        for k in range(60):
            channel = busy[k % 2] if k % 3 else rng.choice(cities)
            author = actors["city"] if channel["division_code"] == "510100" else actors["office"]
            theme = rng.choice(THEMES)
            published = (now - timedelta(days=rng.uniform(0.2, HISTORY_DAYS))).replace(microsecond=0)
            fields = {"title": f"{theme}活动圆满举办（演示）", "author": "演示通讯员",
                      "summary": f"演示文章：{theme}活动的开展情况。", "cover_id": None,
                      "body": f"<p>为丰富职工文化生活，近日组织开展了{theme}活动。</p>"
                              "<p>本文为培训演示数据，所述单位与人物均为虚构。</p>",
                      "attachments": []}
            terms, text = searchable(fields)
            await store.insert_article(
                conn, channel_id=channel["id"], author_id=author.id, fields=fields,
                published_at=published, search_terms=terms, search_text=text,
                etag_of=lambda article_id, f=fields, at=published: revision_etag(article_id, f, at))
            made += 1
        today = now.astimezone(CHINA).date()
        visits = []
        for channel in channels:
            scale = 3000 if channel in busy else 800 if channel["kind"] in ("city", "province") else 200
            for d in range(HISTORY_DAYS, 0, -1):
                views = int(scale * (0.4 + 0.8 * (1 - d / HISTORY_DAYS)) * rng.uniform(0.7, 1.3))
                visits.append((channel["id"], today - timedelta(days=d), views, views // 3))
        await store.insert_channel_visits(conn, visits)
    return {"articles": made, "channel_visit_days": len(visits)}

