"""Typed template keywords: what WeChat would refuse with 47003 is cut (``thing``) or refused
here, before a message is queued."""

from __future__ import annotations

import pytest

from wxbackend.wechat.template_fields import FieldError, data, fit


def test_a_long_thing_is_cut_with_an_ellipsis_at_twenty_characters() -> None:
    title = "成都市总工会2027年“五一”劳模工匠疗休养活动报名通知"
    assert fit("thing1", title) == title[:19] + "…"
    assert fit("thing1", "职工运动会") == "职工运动会"
    assert len(fit("thing12", "川" * 40)) == 20


@pytest.mark.parametrize(("key", "value"), [
    ("time2", "15:01"), ("time2", "2027年5月1日 09:00"), ("time2", "2027-05-01 09:00"),
    ("time2", "2027-05-01 09:00:30"), ("time2", "09:00~11:30"),
    ("date3", "2027年05月01日"), ("date3", "2027-05-01"), ("date3", "2027年5月1日 15:01"),
    ("date3", "2027年5月1日~2027年5月3日"),
    ("phrase4", "已中签"), ("phrase4", "候补中"), ("phrase4", "报名成功"),
    ("character_string5", "HD-2027-0501"), ("number6", "12.5"), ("letter7", "VIP"),
    ("amount8", "¥99.00"), ("amount8", "50元"), ("name9", "欧阳娜娜"), ("name9", "Zhang San"),
    ("phone_number10", "+86-028-86668888"), ("car_number11", "川A8Z888"), ("symbol12", "★"),
])
def test_values_of_each_type_that_wechat_takes_pass_unchanged(key: str, value: str) -> None:
    assert fit(key, value) == value


@pytest.mark.parametrize(("key", "value"), [
    ("phrase1", "报名已经成功"),           # six characters
    ("phrase1", "OK"), ("phrase1", "中签!"),
    ("character_string1", "编号A12"),     # no Chinese in a string
    ("character_string1", "A" * 33),
    ("number1", "十二"), ("number1", "1" * 33), ("letter1", "A1"),
    ("time1", "明天上午"), ("time1", "25:00"), ("time1", "2027年5月1日"),
    ("date1", "五月一日"), ("date1", "09:00"),
    ("amount1", "九十九元"), ("name1", "爱新觉罗·溥仪的后人之一"), ("name1", "张三1"),
    ("car_number1", "川A·8Z888"), ("symbol1", "abc"),
    ("thing1", ""), ("keyword1", "旧式模板"), ("Thing1", "大写"),
])
def test_values_wechat_would_refuse_raise(key: str, value: str) -> None:
    with pytest.raises(FieldError):
        fit(key, value)


def test_a_name_is_ten_chinese_characters_in_a_mini_program_and_twenty_in_an_account() -> None:
    long_name = "阿卜杜热合曼·买买提依明"  # 12 characters
    with pytest.raises(FieldError):
        fit("name1", long_name)
    assert fit("name1", long_name, official_account=True) == long_name
    with pytest.raises(FieldError):
        fit("name1", "名" * 21, official_account=True)


def test_a_message_data_object_keeps_its_keys_and_fits_each_value() -> None:
    assert data({"thing1": "川剧\n进社区", "phrase2": "已签到", "time3": "2027-05-01 09:00"}) == {
        "thing1": {"value": "川剧 进社区"}, "phrase2": {"value": "已签到"},
        "time3": {"value": "2027-05-01 09:00"}}
