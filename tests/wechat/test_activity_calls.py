"""The calls activities need that wechatpy 1.8.18 lacks: Mini Program codes (an image, or JSON
on failure), Mini Program subscribe messages (one send per grant), and typed template values."""

from __future__ import annotations

import pytest

from wxbackend.services.errors import InvalidInput
from wxbackend.wechat import template_fields
from wxbackend.wechat.api import BAD_VALUE, NO_GRANT, WeChatAPIError


async def test_a_mini_program_code_is_an_image_and_failures_are_errors(rt, fake_wechat) -> None:
    image = await rt.mp_api.get_wxacode_unlimited("o=42", "pages/item/item")
    assert image[:2] == b"\xff\xd8"
    sent = fake_wechat.bodies("/wxa/getwxacodeunlimit")[-1]
    assert sent == {"scene": "o=42", "page": "pages/item/item", "width": 430, "check_path": False,
                    "env_version": "release"}
    with pytest.raises(WeChatAPIError) as unreleased:
        await rt.mp_api.get_wxacode_unlimited("o=42", "pages/new/new", check_path=True)
    assert unreleased.value.errcode == 41030
    fake_wechat.invalidate_tokens()  # a token WeChat no longer takes is replaced once
    assert (await rt.mp_api.get_wxacode_unlimited("o=43", "pages/item/item"))[:2] == b"\xff\xd8"


async def test_a_subscribe_message_needs_a_grant_per_send(rt, fake_wechat) -> None:
    message = {"touser": "mp-zhang", "template_id": "TPL-RESULT",
               "data": template_fields.data({"thing1": "职工运动会", "phrase2": "已中签"})}
    with pytest.raises(WeChatAPIError) as refused:
        await rt.mp_api.send_mp_subscribe(message)
    assert refused.value.errcode == NO_GRANT
    fake_wechat.grant_subscribe("mp-zhang", "TPL-RESULT")
    await rt.mp_api.send_mp_subscribe(message)
    assert fake_wechat.delivered("/cgi-bin/message/subscribe/send") == [message]
    fake_wechat.grant_subscribe("mp-zhang", "TPL-RESULT")
    with pytest.raises(WeChatAPIError) as bad:
        await rt.mp_api.send_mp_subscribe({**message, "data": {"phrase2": {"value": "won"}}})
    assert bad.value.errcode == BAD_VALUE


def test_template_values_are_fitted_to_their_types() -> None:
    long_title = "四川省总工会二〇二七年职工文化艺术节开幕式暨文艺汇演"
    fitted = template_fields.data({"thing1": long_title, "phrase2": "已中签",
                                   "character_string3": "A12-345", "time4": "2027-05-01 09:00"})
    assert fitted["thing1"]["value"] == long_title[:19] + "…" and len(fitted["thing1"]["value"]) == 20
    assert fitted["phrase2"] == {"value": "已中签"}
    assert template_fields.fit("thing5", "第一行\n第二行") == "第一行 第二行"
    for key, value in (("phrase1", "中签了吗？"), ("phrase1", "六个汉字啊啊"), ("character_string1", "编号1"),
                       ("number1", "12a"), ("unknown1", "x"), ("thing1", "  ")):
        with pytest.raises(template_fields.FieldError):
            template_fields.fit(key, value)


@pytest.mark.parametrize("scene", ["", "o=" + "9" * 31, "活动=1", "o 42", "o=42%"])
async def test_a_scene_wechat_would_refuse_is_refused_before_calling(rt, fake_wechat, scene) -> None:
    with pytest.raises(InvalidInput) as refused:
        await rt.mp_api.get_wxacode_unlimited(scene, "pages/item/item")
    assert "32" in refused.value.message
    assert fake_wechat.bodies("/wxa/getwxacodeunlimit") == []


async def test_over_the_minute_quota_is_an_error_not_an_image(rt, fake_wechat) -> None:
    fake_wechat.fail_next("/wxa/getwxacodeunlimit", 45009)
    with pytest.raises(WeChatAPIError) as quota:
        await rt.mp_api.get_wxacode_unlimited("o=7", "pages/item/item")
    assert quota.value.errcode == 45009 and not quota.value.no_grant
    assert (await rt.mp_api.get_wxacode_unlimited("o=7", "pages/item/item"))[:2] == b"\xff\xd8"


async def test_callers_tell_a_refused_grant_and_a_bad_value_from_other_failures(rt, fake_wechat) -> None:
    message = {"touser": "mp-li", "template_id": "TPL-REMIND",
               "data": template_fields.data({"thing1": "川剧进社区", "time2": "2027-05-01 09:00"})}
    with pytest.raises(WeChatAPIError) as refused:
        await rt.mp_api.send_mp_subscribe(message)
    assert refused.value.no_grant and not refused.value.bad_value
    fake_wechat.fail_next("/cgi-bin/message/template/send", BAD_VALUE)
    with pytest.raises(WeChatAPIError) as bad:
        await rt.api.send_template({"touser": "oa-li", "template_id": "TPL-OA",
                                    "data": {"thing1": {"value": "职工疗休养"}}})
    assert bad.value.bad_value and not bad.value.no_grant
