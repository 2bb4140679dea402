"""Cadres of the Chengdu and Dazhou unions for the channel tests: made through the cadre
service (the articles name them), acting without a signed-in session."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from PIL import Image

from tests.services.cadres.test_cadres import org_id
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import CHINA

T0 = datetime(2030, 6, 3, 9, 0, tzinfo=CHINA)

# Who does what: a writer, two reviewers of the Chengdu union, a writer of the Dazhou union.
CADRES = {
    "writer": ("SC-510100", "liuxie", {"channel.publish"}),
    "reviewer": ("SC-510100", "chenshen", {"channel.review"}),
    "second": ("SC-510100", "fushen", {"channel.review", "channel.publish"}),
    "dazhou": ("SC-511700", "dazhouxie", {"channel.publish", "channel.review"}),
    "province": ("SC", "shengzong", {"channel.publish", "channel.review"}),
}


@pytest.fixture
async def cadres(db, clock) -> dict[str, Actor]:
    """The services take an actor; the rows exist for the names and the foreign keys (signing in
    is the cadre tests' subject, and the API tests sign in for real)."""
    out = {}
    for key, (code, username, permissions) in CADRES.items():
        union = await org_id(db, code)
        cadre_id = await db.fetchval(
            """INSERT INTO cadres (username, display_name, org_id, role, duty, password_hash)
               VALUES ($1, $1, $2, 'cadre', 'business', 'unused') RETURNING id""", username, union)
        path = await db.fetchval("SELECT path::text FROM orgs WHERE id = $1", union)
        out[key] = Actor(id=cadre_id, username=username, org_id=union, org_path=path,
                         role="cadre", duty="business", permissions=frozenset(permissions),
                         ip="10.0.0.9")
    clock.set(T0, frozen=True)
    return out


async def channel_of(db, code: str) -> int:
    return await db.fetchval(
        "SELECT c.id FROM channels c JOIN orgs g ON g.id = c.org_id WHERE g.code = $1", code)


def jpeg(width: int = 64, height: int = 48, color: str = "red", **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG", **save)
    return out.getvalue()


def article_body(**overrides) -> dict:
    body = {"title": "成都市总工会开展职工技能大赛", "author": "宣传部",
            "body": "<p style=\"text-indent:2em\">本次大赛共有来自全市的<strong>五百名</strong>"
                    "职工参加。</p>"}
    body.update(overrides)
    return body


async def live_article(rt, cadres, channel_id: int, **overrides) -> dict:
    """Written, reviewed and published in the Chengdu channel."""
    article = await rt.articles.create(cadres["writer"], channel_id, article_body(**overrides))
    await rt.articles.submit(cadres["writer"], article["id"])
    await rt.articles.review(cadres["reviewer"], article["id"], approve=True)
    return await rt.articles.publish(cadres["writer"], article["id"])
