"""The Official Account's article calls that wechatpy 1.8.18 lacks: images for article bodies and
covers (multipart uploads), the draft box, publishing (which ends later), and the mass send to all
followers (four a month, deduplicated by clientmsgid). What WeChat would refuse is refused first,
in Chinese; the fake refuses it too, so a check we forget still fails a test."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import httpx
import pytest
from PIL import Image

from tests.fakes import FakePusher
from wxbackend.services.clock import CHINA
from wxbackend.services.errors import InvalidInput
from wxbackend.wechat.api import (
    CLIENT_MSG_ID_EXISTS,
    NO_MASS_QUOTA,
    OA_CONTENT_MAX_CHARS,
    OA_IMAGE_MAX_BYTES,
    OA_MATERIAL_IMAGE_MAX_BYTES,
    OA_TITLE_MAX,
    PUBLISH_RUNNING,
    PUBLISH_SUCCESS,
    WeChatAPIError,
)

UPLOADIMG = "/cgi-bin/media/uploadimg"
ADD_MATERIAL = "/cgi-bin/material/add_material"
DRAFT_ADD = "/cgi-bin/draft/add"
SENDALL = "/cgi-bin/message/mass/sendall"
TITLE = "川工之家：2027 年职工疗休养报名开始"


def image(fmt: str = "JPEG", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 30, 40)).save(buffer, fmt)
    return buffer.getvalue()


async def cover(rt) -> str:
    return await rt.api.add_permanent_image(image("PNG"), "cover.png")


def article(thumb: str, **fields: object) -> dict:
    return {"title": TITLE, "author": "市总工会", "digest": "报名截至 5 月 31 日",
            "content": "<p>各基层工会：</p><p>今年的职工疗休养开始报名。</p>",
            "thumb_media_id": thumb, **fields}


async def raw_post(http: httpx.AsyncClient, rt, fake_wechat, path: str, **kwargs) -> dict:
    """A request made by hand with a valid token, to see what the fake does with what our
    client would never send."""
    params = {"access_token": await rt.api.tokens.get(), **kwargs.pop("params", {})}
    response = await http.post(fake_wechat.base_url + path, params=params, **kwargs)
    return response.json()


# --- images -------------------------------------------------------------------------------------
async def test_article_images_are_jpeg_or_png_under_1_mb(rt, fake_wechat) -> None:
    jpeg, png = image("JPEG"), image("PNG")
    url = await rt.api.upload_article_image(jpeg, "photo.jpeg")
    assert url.startswith("http://mmbiz.qpic.cn/mmbiz_jpg/") and url.endswith("/0")
    assert fake_wechat.article_images[url] == jpeg
    png_url = await rt.api.upload_article_image(png, "chart")  # named by its bytes: chart.png
    assert png_url.startswith("http://mmbiz.qpic.cn/mmbiz_png/")
    assert fake_wechat.calls[-1].files["media"][0].filename == "chart.png"

    too_big = jpeg + bytes(OA_IMAGE_MAX_BYTES)  # still a JPEG by its first bytes
    for refused in (image("GIF"), image("BMP"), b"not an image", too_big):
        with pytest.raises(InvalidInput) as invalid:
            await rt.api.upload_article_image(refused, "photo.jpg")
        assert invalid.value.message == "正文图片须为 1 MB 以内的 JPG 或 PNG"
        assert invalid.value.code == "oa_image_invalid"
    assert fake_wechat.count(UPLOADIMG) == 2


async def test_the_fake_refuses_uploads_like_wechat(rt, fake_wechat, http) -> None:
    gif = {"media": ("a.gif", image("GIF"), "image/gif")}
    assert (await raw_post(http, rt, fake_wechat, UPLOADIMG, files=gif))["errcode"] == 40005
    big = {"media": ("a.jpg", image() + bytes(OA_IMAGE_MAX_BYTES), "image/jpeg")}
    assert (await raw_post(http, rt, fake_wechat, UPLOADIMG, files=big))["errcode"] == 40009
    nothing = {"other": ("a.jpg", image(), "image/jpeg")}
    assert (await raw_post(http, rt, fake_wechat, UPLOADIMG, files=nothing))["errcode"] == 41005
    jpeg = {"media": ("a.jpg", image(), "image/jpeg")}
    assert (await raw_post(http, rt, fake_wechat, ADD_MATERIAL, files=jpeg))["errcode"] == 40004
    answer = await raw_post(http, rt, fake_wechat, ADD_MATERIAL, files=gif,
                            params={"type": "image"})
    assert answer["media_id"] in fake_wechat.materials and answer["url"].startswith("http://mmbiz")
    assert fake_wechat.article_images == {}


async def test_a_cover_is_a_permanent_image(rt, fake_wechat) -> None:
    gif = image("GIF")
    media_id = await rt.api.add_permanent_image(gif, "cover.gif")
    assert fake_wechat.materials[media_id] == gif
    assert fake_wechat.calls[-1].query["type"] == "image"
    for refused in (b"%PDF-1.7", image() + bytes(OA_MATERIAL_IMAGE_MAX_BYTES)):
        with pytest.raises(InvalidInput) as invalid:
            await rt.api.add_permanent_image(refused, "cover.jpg")
        assert invalid.value.code == "oa_image_invalid"
    assert fake_wechat.count(ADD_MATERIAL) == 1


async def test_a_rejected_token_is_replaced_once_on_an_upload(rt, fake_wechat) -> None:
    await rt.api.upload_article_image(image(), "a.jpg")
    fake_wechat.invalidate_tokens()
    url = await rt.api.upload_article_image(image("PNG"), "b.png")
    assert url in fake_wechat.article_images
    answers = [call.files["media"][0].filename for call in fake_wechat.calls if call.path == UPLOADIMG]
    assert answers == ["a.jpg", "b.png", "b.png"]  # the file went again with the new token
    fake_wechat.expire_tokens()
    assert await rt.api.add_permanent_image(image(), "c.jpg") in fake_wechat.materials
    assert fake_wechat.count(ADD_MATERIAL) == 2


# --- drafts -------------------------------------------------------------------------------------
async def test_a_draft_goes_as_real_utf8_and_wechat_cleans_its_content(rt, fake_wechat) -> None:
    thumb = await cover(rt)
    own = await rt.api.upload_article_image(image(), "inline.jpg")
    content = (f'<p>报名方式见下图。</p><img src="{own}"><script>alert("x")</script>'
               '<img src="https://example.org/elsewhere.jpg"><p>咨询：028-12345678</p>')
    media_id = await rt.api.draft_add([article(thumb, content=content, author=None)])
    raw = fake_wechat.raw_bodies(DRAFT_ADD)[-1]
    assert TITLE.encode("utf-8") in raw and b"\\u" not in raw
    assert "author" not in fake_wechat.bodies(DRAFT_ADD)[-1]["articles"][0]  # None is left out
    stored = fake_wechat.drafts[media_id][0]
    assert stored["title"] == TITLE
    assert stored["content"] == f'<p>报名方式见下图。</p><img src="{own}"><p>咨询：028-12345678</p>'


@pytest.mark.parametrize(("fields", "code", "words"), [
    ({"title": "职" * (OA_TITLE_MAX + 1)}, "oa_title_too_long", "标题不能超过 32 个字"),
    ({"title": "  "}, "oa_title_missing", "标题"),
    ({"author": "四川省总工会宣传教育部新媒体中心组"}, "oa_author_too_long", "作者不能超过 16 个字"),
    ({"digest": "摘" * 129}, "oa_digest_too_long", "摘要不能超过 128 个字"),
    ({"content": ""}, "oa_content_missing", "正文不能为空"),
    ({"content": "字" * OA_CONTENT_MAX_CHARS}, "oa_content_too_long",
     "正文超过公众号的长度限制（2 万字、1 MB）"),
    ({"content_source_url": "https://example.org/?" + "a" * 1024}, "oa_source_url_too_long", "原文链接"),
    ({"thumb_media_id": ""}, "oa_thumb_missing", "封面"),
    ({"title": 42}, "oa_article_invalid", "格式"),
], ids=["title", "no-title", "author", "digest", "no-content", "content", "source-url", "no-thumb",
        "not-text"])
async def test_an_article_wechat_would_refuse_is_refused_in_chinese_first(
        rt, fake_wechat, fields, code, words) -> None:
    thumb = await cover(rt)
    with pytest.raises(InvalidInput) as invalid:
        await rt.api.draft_add([article(thumb, **fields)])
    assert invalid.value.code == code and words in invalid.value.message
    with pytest.raises(InvalidInput) as second:  # which one, when there are several
        await rt.api.draft_add([article(thumb), article(thumb, **fields)])
    assert second.value.message.startswith("第 2 篇：")
    with pytest.raises(InvalidInput):
        await rt.api.draft_add([article(thumb)] * 9)
    assert fake_wechat.count(DRAFT_ADD) == 0 and fake_wechat.drafts == {}


@pytest.mark.parametrize(("fields", "errcode"), [
    ({"title": "职" * (OA_TITLE_MAX + 1)}, 45003),
    ({"author": "作" * 17}, 45110),
    ({"digest": "摘" * 129}, 45004),
    ({"content": ""}, 44003),
    ({"content": "字" * OA_CONTENT_MAX_CHARS}, 45002),
    ({"thumb_media_id": "never-uploaded"}, 40007),
], ids=["title", "author", "digest", "no-content", "content", "thumb"])
async def test_the_fake_enforces_the_limits_itself(rt, fake_wechat, fields, errcode) -> None:
    thumb = await cover(rt)
    with pytest.raises(WeChatAPIError) as refused:  # call() skips our checks
        await rt.api.call("POST", DRAFT_ADD, json={"articles": [article(thumb, **fields)]})
    assert refused.value.errcode == errcode
    assert fake_wechat.drafts == {}


# --- publishing ---------------------------------------------------------------------------------
async def test_a_draft_is_published_and_ends_a_little_later(rt, fake_wechat) -> None:
    media_id = await rt.api.draft_add([article(await cover(rt)), article(await cover(rt))])
    submitted = await rt.api.freepublish_submit(media_id)
    assert submitted["publish_id"].isdigit() and isinstance(submitted["msg_data_id"], int)
    assert media_id not in fake_wechat.drafts  # it left the draft box
    first = await rt.api.freepublish_get(submitted["publish_id"])
    assert first["publish_status"] == PUBLISH_RUNNING and "article_id" not in first
    done = await rt.api.freepublish_get(submitted["publish_id"])
    assert done["publish_status"] == PUBLISH_SUCCESS and done["fail_idx"] == []
    items = done["article_detail"]["item"]
    assert done["article_detail"]["count"] == 2 and [i["idx"] for i in items] == [1, 2]
    assert all(i["article_url"].startswith("https://mp.weixin.qq.com/s/") for i in items)
    assert fake_wechat.published[done["article_id"]][0]["title"] == TITLE

    with pytest.raises(WeChatAPIError) as gone:
        await rt.api.freepublish_submit(media_id)
    assert gone.value.errcode == 40007
    with pytest.raises(WeChatAPIError) as unknown:
        await rt.api.freepublish_get("2247000000")
    assert unknown.value.errcode == 53600


async def test_a_publish_can_be_made_to_fail(rt, fake_wechat) -> None:
    media_id = await rt.api.draft_add([article(await cover(rt))])
    fake_wechat.fail_publish(4)  # the platform's review rejects it
    publish_id = (await rt.api.freepublish_submit(media_id))["publish_id"]
    fake_wechat.finish_publishing()
    failed = await rt.api.freepublish_get(publish_id)
    assert failed["publish_status"] == 4 and failed["fail_idx"] == [1]
    assert "article_id" not in failed and fake_wechat.published == {}
    assert media_id in fake_wechat.drafts  # back in the draft box, to be fixed and retried

    fake_wechat.fail_publish(3)
    publish_id = (await rt.api.freepublish_submit(media_id))["publish_id"]
    event = fake_wechat.publish_job_finish_event(publish_id)
    assert event["PublishEventInfo"] == {"publish_id": int(publish_id), "publish_status": 3}
    assert (await rt.api.freepublish_get(publish_id))["publish_status"] == 3
    with pytest.raises(ValueError):
        fake_wechat.fail_publish(0)


async def test_the_publish_finished_event_can_be_pushed(rt, fake_wechat) -> None:
    media_id = await rt.api.draft_add([article(await cover(rt))])
    publish_id = (await rt.api.freepublish_submit(media_id))["publish_id"]
    event = fake_wechat.publish_job_finish_event(publish_id, original_id="gh_0123456789ab")
    info = event["PublishEventInfo"]
    assert event["MsgType"] == "event" and event["Event"] == "PUBLISHJOBFINISH"
    assert info["publish_status"] == PUBLISH_SUCCESS and info["article_id"]
    done = await rt.api.freepublish_get(publish_id)  # the event ended it: no "publishing" first
    assert done["article_id"] == info["article_id"]
    assert info["article_detail"] == done["article_detail"]
    pusher = FakePusher("token", "a" * 43, rt.api.appid, event["ToUserName"], mode="plain")
    xml = pusher.event(event["FromUserName"], event["Event"], create_time=event["CreateTime"],
                       PublishEventInfo=info)
    assert f"<publish_id>{publish_id}</publish_id><publish_status>0</publish_status>" in xml
    assert "<item><idx>1</idx><article_url><![CDATA[https://mp.weixin.qq.com/s/" in xml


# --- mass send ----------------------------------------------------------------------------------
def pin_month(fake_wechat, when: datetime) -> None:
    """Freeze the fake's clock at ``when`` (China time), so a month boundary cannot fall mid-test.
    Absolute, not relative to the clock's present reading: a second pin must land where it says
    whatever day the suite runs on."""
    fake_wechat.freeze_at(when)


async def test_followers_get_four_mass_sends_a_month(rt, fake_wechat) -> None:
    this_month = datetime.now(CHINA).replace(day=15, hour=12)
    pin_month(fake_wechat, this_month)
    thumb = await cover(rt)
    drafts = [await rt.api.draft_add([article(thumb)]) for _ in range(5)]
    for n, media_id in enumerate(drafts[:4]):
        sent = await rt.api.mass_send_all(media_id, client_msg_id=f"issue-{n}")
        assert sent["errcode"] == 0 and isinstance(sent["msg_id"], int) and sent["msg_data_id"]
        assert media_id not in fake_wechat.drafts
    with pytest.raises(WeChatAPIError) as quota:
        await rt.api.mass_send_all(drafts[4], client_msg_id="issue-4")
    assert quota.value.errcode == NO_MASS_QUOTA
    assert drafts[4] in fake_wechat.drafts and fake_wechat.mass_sends_this_month() == 4
    assert fake_wechat.bodies(SENDALL)[0] == {
        "filter": {"is_to_all": True}, "mpnews": {"media_id": drafts[0]}, "msgtype": "mpnews",
        "send_ignore_reprint": 0, "clientmsgid": "issue-0"}

    pin_month(fake_wechat, this_month + timedelta(days=31))  # a new month: four more
    await rt.api.mass_send_all(drafts[4], client_msg_id="issue-4")
    assert fake_wechat.mass_sends_this_month() == 1
    assert len(fake_wechat.delivered(SENDALL)) == 5


async def test_a_repeated_clientmsgid_sends_nothing_more(rt, fake_wechat) -> None:
    media_id = await rt.api.draft_add([article(await cover(rt))])
    first = await rt.api.mass_send_all(media_id, client_msg_id="issue-2027-05")
    again = await rt.api.mass_send_all(media_id, client_msg_id="issue-2027-05")
    assert again["errcode"] == CLIENT_MSG_ID_EXISTS and again["msg_id"] == first["msg_id"]
    assert len(fake_wechat.delivered(SENDALL)) == 1 and fake_wechat.mass_sends_this_month() == 1
    with pytest.raises(WeChatAPIError) as unknown:
        await rt.api.mass_send_all(media_id, client_msg_id="issue-2027-06")
    assert unknown.value.errcode == 40007
