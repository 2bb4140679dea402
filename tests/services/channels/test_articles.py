"""Writing, review (三审), publishing, revisions and withdrawal of channel articles."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.services.channels.conftest import T0, article_body, channel_of, live_article
from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge


@pytest.fixture
async def chengdu(db) -> int:
    return await channel_of(db, "SC-510100")


async def test_the_seed_gives_the_province_every_city_and_industry_union_a_channel(db) -> None:
    kinds = {r["kind"]: r["n"] for r in await db.fetch(
        """SELECT g.kind, count(*) AS n FROM channels c JOIN orgs g ON g.id = c.org_id
           GROUP BY g.kind""")}
    assert kinds == {"province": 1, "city": 21, "industry": 3}
    assert await db.fetchval("SELECT slug FROM channels c JOIN orgs g ON g.id = c.org_id "
                             "WHERE g.code = 'SC-510100'") == "510100"


async def test_an_article_goes_through_review_before_it_is_public(rt, db, cadres, chengdu) -> None:
    writer, reviewer = cadres["writer"], cadres["reviewer"]
    article = await rt.articles.create(writer, chengdu, article_body())
    assert article["stage"] == "draft" and article["live_revision"] is None
    with pytest.raises(Conflict) as early:
        await rt.articles.publish(writer, article["id"])
    assert early.value.code == "article_not_approved"
    with pytest.raises(Forbidden):  # a writer without channel.review cannot review
        await rt.articles.review(writer, article["id"], approve=True)
    await rt.articles.submit(writer, article["id"])
    returned = await rt.articles.review(reviewer, article["id"], approve=False, reason="数字需核实")
    assert returned["stage"] == "returned"
    last = returned["history"][-1]
    assert (last["step"], last["reason"], last["actor"]) == ("return", "数字需核实", "chenshen")
    assert datetime.fromisoformat(last["at"]) == T0
    await rt.articles.submit(writer, article["id"])
    approved = await rt.articles.review(reviewer, article["id"], approve=True)
    assert approved["stage"] == "approved"
    live = await rt.articles.publish(writer, article["id"])
    assert live["stage"] == "live" and live["live_revision"] == 1
    steps = [h["step"] for h in live["history"]]
    assert steps == ["create", "submit", "return", "submit", "approve", "publish"]
    actions = [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", f"article:{article['id']}")]
    assert actions == ["article.create", "article.submit", "article.return", "article.submit",
                       "article.approve", "article.publish"]


async def test_a_reject_needs_a_reason(rt, cadres, chengdu) -> None:
    article = await rt.articles.create(cadres["writer"], chengdu, article_body())
    await rt.articles.submit(cadres["writer"], article["id"])
    with pytest.raises(InvalidInput) as refused:
        await rt.articles.review(cadres["reviewer"], article["id"], approve=False, reason="  ")
    assert refused.value.code == "reason_missing"


async def test_nobody_reviews_their_own_article(rt, db, cadres, chengdu) -> None:
    second = cadres["second"]  # may write and review
    article = await rt.articles.create(second, chengdu, article_body())
    await rt.articles.submit(second, article["id"])
    with pytest.raises(Forbidden) as own:
        await rt.articles.review(second, article["id"], approve=True)
    assert own.value.code == "self_review"
    # nor one they submitted for someone else
    other = await rt.articles.create(cadres["writer"], chengdu, article_body())
    await rt.articles.submit(second, other["id"])
    with pytest.raises(Forbidden):
        await rt.articles.review(second, other["id"], approve=True)
    assert await db.fetchval("SELECT stage FROM articles WHERE id = $1", other["id"]) == "submitted"


async def test_a_second_review_level_needs_a_second_person(rt, cadres, chengdu) -> None:
    await rt.channels.configure(cadres["reviewer"], chengdu, {"second_review": True})
    article = await rt.articles.create(cadres["writer"], chengdu, article_body())
    await rt.articles.submit(cadres["writer"], article["id"])
    first = await rt.articles.review(cadres["reviewer"], article["id"], approve=True)
    assert first["stage"] == "first_passed"
    with pytest.raises(Conflict):
        await rt.articles.publish(cadres["writer"], article["id"])
    with pytest.raises(Forbidden) as same:
        await rt.articles.review(cadres["reviewer"], article["id"], approve=True)
    assert same.value.code == "same_reviewer"
    final = await rt.articles.review(cadres["second"], article["id"], approve=True, reason="同意")
    assert final["stage"] == "approved"
    assert [h["step"] for h in final["history"]][-2:] == ["first_approve", "second_approve"]


async def test_an_edit_after_publishing_is_a_new_revision_the_old_one_kept(rt, db, cadres,
                                                                            chengdu) -> None:
    live = await live_article(rt, cadres, chengdu)
    first_body = await db.fetchval(
        "SELECT body FROM article_revisions WHERE article_id = $1 AND number = 1", live["id"])
    edited = await rt.articles.update(cadres["writer"], live["id"],
                                      article_body(body="<p>更正后的正文</p>"))
    assert edited["stage"] == "draft" and edited["live_revision"] == 1
    page = await rt.reading.article(live["id"])
    assert "五百名" in page["body"]  # the page still shows what was approved
    await rt.articles.submit(cadres["writer"], live["id"])
    await rt.articles.review(cadres["reviewer"], live["id"], approve=True)
    second = await rt.articles.publish(cadres["writer"], live["id"])
    assert second["live_revision"] == 2
    assert [r["number"] for r in second["revisions"]] == [1, 2]
    assert await db.fetchval("SELECT body FROM article_revisions WHERE article_id = $1 AND number = 1",
                             live["id"]) == first_body
    page = await rt.reading.article(live["id"])
    assert "更正后的正文" in page["body"] and page["revision"] == 2


async def test_an_edit_during_review_sends_it_back_to_draft(rt, cadres, chengdu) -> None:
    article = await rt.articles.create(cadres["writer"], chengdu, article_body())
    await rt.articles.submit(cadres["writer"], article["id"])
    await rt.articles.review(cadres["reviewer"], article["id"], approve=True)
    edited = await rt.articles.update(cadres["writer"], article["id"], article_body(title="新标题"))
    assert edited["stage"] == "draft"
    with pytest.raises(Conflict):
        await rt.articles.publish(cadres["writer"], article["id"])


async def test_scheduled_publishing_happens_at_its_time(rt, cadres, chengdu, clock) -> None:
    article = await rt.articles.create(cadres["writer"], chengdu, article_body())
    await rt.articles.submit(cadres["writer"], article["id"])
    await rt.articles.review(cadres["reviewer"], article["id"], approve=True)
    at = T0 + timedelta(hours=2)
    with pytest.raises(InvalidInput) as too_far:
        await rt.articles.publish(cadres["writer"], article["id"], at=T0 + timedelta(days=200))
    assert too_far.value.code == "schedule_too_far"
    scheduled = await rt.articles.publish(cadres["writer"], article["id"], at=at)
    assert scheduled["stage"] == "scheduled" and datetime.fromisoformat(scheduled["publish_at"]) == at
    assert await rt.articles.publish_due() == 0
    with pytest.raises(NotFound):
        await rt.reading.article(article["id"])
    clock.set(at + timedelta(seconds=1))
    assert await rt.articles.publish_due() == 1
    assert (await rt.reading.article(article["id"]))["title"] == article_body()["title"]
    assert await rt.articles.publish_due() == 0


async def test_a_scheduled_article_can_be_taken_back_before_its_time(rt, cadres, chengdu, clock) -> None:
    article = await rt.articles.create(cadres["writer"], chengdu, article_body())
    await rt.articles.submit(cadres["writer"], article["id"])
    await rt.articles.review(cadres["reviewer"], article["id"], approve=True)
    await rt.articles.publish(cadres["writer"], article["id"], at=T0 + timedelta(hours=1))
    assert (await rt.articles.unschedule(cadres["writer"], article["id"]))["stage"] == "approved"
    clock.set(T0 + timedelta(hours=2))
    assert await rt.articles.publish_due() == 0


async def test_withdrawal_takes_the_page_down_with_a_reason(rt, db, cadres, chengdu) -> None:
    live = await live_article(rt, cadres, chengdu)
    await rt.reading.article(live["id"])
    with pytest.raises(InvalidInput):
        await rt.articles.withdraw(cadres["writer"], live["id"], "")
    gone = await rt.articles.withdraw(cadres["writer"], live["id"], "信息有误")
    assert gone["live_revision"] is None and gone["withdrawn_reason"] == "信息有误"
    with pytest.raises(NotFound):
        await rt.reading.article(live["id"])  # the cache of this process forgot it at once
    assert await db.fetchval("SELECT count(*) FROM article_revisions WHERE article_id = $1",
                             live["id"]) == 1


async def test_another_unions_channel_and_articles_are_out_of_reach(rt, db, cadres, chengdu) -> None:
    with pytest.raises(Forbidden) as elsewhere:  # channels are public; writing in one is not
        await rt.articles.create(cadres["dazhou"], chengdu, article_body())
    assert elsewhere.value.code == "outside_subtree"
    live = await live_article(rt, cadres, chengdu)
    for call in (rt.articles.get(cadres["dazhou"], live["id"]),
                 rt.articles.update(cadres["dazhou"], live["id"], article_body()),
                 rt.articles.withdraw(cadres["dazhou"], live["id"], "不该撤")):
        with pytest.raises(NotFound):
            await call
    assert [a["id"] for a in await rt.articles.manage_list(cadres["dazhou"], channel_id=None,
                                                           stage=None, before_id=None)] == []
    # the province, above everyone, sees it (the list without bodies: they come with the article)
    listed = await rt.articles.manage_list(cadres["province"], channel_id=None, stage=None,
                                           before_id=None)
    assert [a["id"] for a in listed] == [live["id"]] and "body" not in listed[0]["working"]


async def test_bad_articles_are_refused_and_nothing_is_written(rt, db, cadres, chengdu) -> None:
    writer = cadres["writer"]
    cases = [
        (article_body(title="标" * 33), InvalidInput, "title_too_long"),
        (article_body(title=""), InvalidInput, "title_missing"),
        (article_body(author="作" * 17), InvalidInput, "author_too_long"),
        (article_body(body="<p><br></p>"), InvalidInput, "body_missing"),
        (article_body(body="<p>" + "字" * 20_000 + "</p>"), TooLarge, "body_too_long"),
        (article_body(cover_id=999_999), NotFound, "media_not_found"),
        (article_body(attachments=["x"]), InvalidInput, "invalid_article"),
        ({**article_body(), "status": "live"}, InvalidInput, "unknown_field"),
    ]
    for body, error, code in cases:
        with pytest.raises(error) as refused:
            await rt.articles.create(writer, chengdu, body)
        assert refused.value.code == code, body
    assert await db.fetchval("SELECT count(*) FROM articles") == 0


async def test_a_body_is_sanitised_and_foreign_images_are_reported(rt, cadres, chengdu) -> None:
    article = await rt.articles.create(cadres["writer"], chengdu, article_body(
        body='<p style="position:fixed;color:red">正文<img src="https://mmbiz.qpic.cn/x.png"></p>'
             '<o:p></o:p><a href="https://www.acftu.org/">链接</a>'
             "<p>讲解 javascript: 和 onclick= 的文字</p>"))
    body = article["working"]["body"]
    assert "mmbiz" not in body and "position" not in body and "o:p" not in body
    assert '<p style="color:red">' in body and "讲解 javascript: 和 onclick= 的文字" in body
    assert article["warnings"] and "1 张外部图片" in article["warnings"][0]
    assert article["working"]["summary"] == "正文 链接 讲解 javascript: 和 onclick= 的文字"


@pytest.mark.parametrize(("body", "named"), [
    ('<p onclick="steal()">正文</p>', "事件属性 onclick"),
    ("<p>正文</p><script>alert(1)</script>", "<script>"),
    ('<a href="JaVa&#x09;script:alert(1)">链接</a>', "javascript: 等脚本链接"),
    ('<img src="/media/x.jpg" onerror="alert(1)">', "事件属性 onerror"),
    ('<div style="width: expression(alert(1))">正文</div>', "CSS expression"),
    ('<form action="https://evil.example"><input name="p"></form>', "<form>"),
])
async def test_a_body_with_active_content_is_refused_and_nothing_written(rt, db, cadres, chengdu,
                                                                        body, named) -> None:
    with pytest.raises(InvalidInput) as refused:
        await rt.articles.create(cadres["writer"], chengdu, article_body(body=body))
    assert refused.value.code == "body_active_content" and named in refused.value.message
    assert await db.fetchval("SELECT count(*) FROM articles") == 0
