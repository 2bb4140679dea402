"""Articles to the Official Account through the fake WeChat: body images re-hosted at WeChat,
the cover made a permanent image, publishing polled (or hinted by PUBLISHJOBFINISH) until it
ends, mass sends counted against the month's allowance."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.test_oa_endpoint import push
from tests.services.channels.conftest import article_body, channel_of, jpeg, live_article
from wxbackend.services.errors import Conflict, InvalidInput, NotFound


@pytest.fixture
async def chengdu(db) -> int:
    return await channel_of(db, "SC-510100")


async def _illustrated(rt, cadres, chengdu, **overrides) -> dict:
    """A live article with a cover and a photo in its body."""
    photo = await rt.media.upload_image(cadres["writer"], jpeg(1600, 900, "teal"), "photo.jpg")
    cover = await rt.media.upload_image(cadres["writer"], jpeg(900, 500, "navy"), "cover.jpg")
    body = f'<p>大赛现场</p><p><img src="{photo["url"]}"></p><p><img src="{photo["url"]}"></p>'
    return await live_article(rt, cadres, chengdu, body=body, cover_id=cover["id"], **overrides)


async def test_publishing_rehosts_images_and_ends_with_the_article_url(rt, db, cadres, chengdu,
                                                                       fake_wechat) -> None:
    live = await _illustrated(rt, cadres, chengdu)
    sent = await rt.oa_publishing.send(cadres["writer"], live["id"], mass_send=False)
    assert sent["status"] == "publishing"
    assert fake_wechat.count("/cgi-bin/media/uploadimg") == 1       # one photo, used twice
    assert fake_wechat.count("/cgi-bin/material/add_material") == 1  # the cover
    [draft] = fake_wechat.bodies("/cgi-bin/draft/add")
    article = draft["articles"][0]
    assert article["title"] == article_body()["title"] and "/media/" not in article["content"]
    assert article["content"].count("mmbiz.qpic.cn") == 2
    assert article["content_source_url"].endswith(f"/h5/a/{live['id']}")
    assert await rt.oa_publishing.poll() == 0   # WeChat is still publishing
    assert await rt.oa_publishing.poll() == 1
    [done] = await rt.oa_publishing.of_article(cadres["writer"], live["id"])
    assert done["status"] == "published" and done["article_url"].startswith("https://mp.weixin.qq.com/s/")
    with pytest.raises(Conflict) as again:  # this revision went already
        await rt.oa_publishing.send(cadres["writer"], live["id"], mass_send=False)
    assert again.value.code == "oa_already_sent"
    # a second article reuses the uploads of the images it shares
    other = await _illustrated(rt, cadres, chengdu, title="第二篇")
    await rt.oa_publishing.send(cadres["writer"], other["id"], mass_send=False)
    assert fake_wechat.count("/cgi-bin/media/uploadimg") == 1
    assert fake_wechat.count("/cgi-bin/material/add_material") == 1


async def test_a_refused_publication_is_recorded_with_its_reason(rt, cadres, chengdu,
                                                                 fake_wechat) -> None:
    live = await _illustrated(rt, cadres, chengdu)
    fake_wechat.fail_publish(4)
    await rt.oa_publishing.send(cadres["writer"], live["id"], mass_send=False)
    fake_wechat.finish_publishing()
    assert await rt.oa_publishing.poll() == 1
    [failed] = await rt.oa_publishing.of_article(cadres["writer"], live["id"])
    assert (failed["status"], failed["failure"]) == ("failed", "平台审核不通过")
    # a failed one may be sent again
    assert (await rt.oa_publishing.send(cadres["writer"], live["id"], mass_send=False))["status"] \
        == "publishing"


async def test_the_publish_event_settles_it_at_once(rt, db, cadres, chengdu, fake_wechat, server,
                                                    http, pusher) -> None:
    live = await _illustrated(rt, cadres, chengdu)
    sent = await rt.oa_publishing.send(cadres["writer"], live["id"], mass_send=False)
    publish_id = await db.fetchval("SELECT publish_id FROM oa_publications WHERE id = $1", sent["id"])
    fields = fake_wechat.publish_job_finish_event(publish_id)
    response, _ = await push(http, server, pusher, pusher.event(
        fields["FromUserName"], "PUBLISHJOBFINISH", PublishEventInfo=fields["PublishEventInfo"]))
    assert response.status_code == 200
    await rt.inbox.drain()
    assert await db.fetchval("SELECT status FROM oa_publications WHERE id = $1", sent["id"]) == "published"


async def test_mass_sends_stop_at_the_months_allowance(rt, db, cadres, chengdu, fake_wechat) -> None:
    allowance = rt.settings.channels.mass_sends_per_month
    ids = [(await _illustrated(rt, cadres, chengdu, title=f"群发{n}"))["id"] for n in range(allowance + 1)]
    for article_id in ids[:allowance]:
        assert (await rt.oa_publishing.send(cadres["writer"], article_id, mass_send=True))["status"] == "sent"
    with pytest.raises(Conflict) as used_up:
        await rt.oa_publishing.send(cadres["writer"], ids[-1], mass_send=True)
    assert used_up.value.code == "oa_mass_send_used_up" and f"{allowance} 次" in used_up.value.message
    assert fake_wechat.count("/cgi-bin/message/mass/sendall") == allowance
    sends = fake_wechat.bodies("/cgi-bin/message/mass/sendall")
    assert sends[0]["clientmsgid"] == f"article-{ids[0]}-r1" and sends[0]["filter"] == {"is_to_all": True}


async def test_concurrent_mass_sends_do_not_overrun_the_allowance(rt, db, cadres, chengdu) -> None:
    allowance = rt.settings.channels.mass_sends_per_month
    ids = [(await _illustrated(rt, cadres, chengdu, title=f"并发{n}"))["id"] for n in range(allowance + 3)]
    results = await asyncio.gather(*(rt.oa_publishing.send(cadres["writer"], i, mass_send=True)
                                     for i in ids), return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == allowance
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, dict))


async def test_only_live_articles_with_a_cover_of_ones_own_union_go(rt, cadres, chengdu,
                                                                    fake_wechat) -> None:
    draft = await rt.articles.create(cadres["writer"], chengdu, article_body())
    with pytest.raises(Conflict):
        await rt.oa_publishing.send(cadres["writer"], draft["id"], mass_send=False)
    bare = await live_article(rt, cadres, chengdu)
    with pytest.raises(InvalidInput) as no_cover:
        await rt.oa_publishing.send(cadres["writer"], bare["id"], mass_send=False)
    assert no_cover.value.code == "oa_cover_missing"
    live = await _illustrated(rt, cadres, chengdu)
    with pytest.raises(NotFound):
        await rt.oa_publishing.send(cadres["dazhou"], live["id"], mass_send=False)
    assert fake_wechat.count("/cgi-bin/draft/add") == 0
