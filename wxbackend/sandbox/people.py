"""Obviously fictitious people for the demo province: names, resident ID numbers, phones and
Official Account openids, all drawn from a seeded :class:`random.Random`, so a seed gives the
same people every time.

* Names: a common surname and one or two common given-name characters (names repeat, as they do).
* ID numbers (GB 11643) carry a real Sichuan county code and a valid check digit, so the
  product's own validator accepts them, but come from one reserved block: birth dates from
  1970-01-01 to 2000-12-31 and sequence codes 990–999 only. A demo number is recognisable by
  its sequence code (digits 15–17 from 990).
* Phones all come from the block 199 00xx xxxx (``19900000000`` – ``19900999999``), which the
  product's phone check (``^1[3-9]\\d{9}$``) accepts.
* Openids look like the Official Account's (28 characters from ``o``) and start ``oDEMO``.
"""

from __future__ import annotations

import random
import string
from datetime import date, timedelta

from wxbackend.services.membership.idnumbers import id_check_char, uscc_check_char

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
            "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾")
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国玉红梅志文辉海燕俊峰鹏飞丹萍"
         "波宇浩凯婷雪琳晨欣怡佳嘉颖鑫龙斌林德成福贵荣珍凤琴云莉蓉倩梦雨思涵子轩博宏亮庆春秋")
BIRTH_FIRST = date(1970, 1, 1)
BIRTH_LAST = date(2000, 12, 31)
SEQUENCE_CODES = range(990, 1000)     # the reserved block: no real number is issued from it here
PHONE_FIRST = 19_900_000_000
PHONE_BLOCK = 1_000_000               # 199 00xx xxxx
_OPENID_CHARS = string.ascii_letters + string.digits + "-_"


def unionid_of(openid: str) -> str:
    """The demo worker's unionid (the Open Platform's id joining their Official Account and Mini
    Program openids): derived from the openid, so the phone simulator finds it without a lookup."""
    return "u" + openid[1:]


def mp_openid_of(openid: str) -> str:
    """The same person's openid under the Mini Program (WeChat gives each app its own)."""
    return "m" + openid[1:]


def is_demo_phone(phone: str) -> bool:
    return phone.isdigit() and PHONE_FIRST <= int(phone) < PHONE_FIRST + PHONE_BLOCK


def is_demo_id_number(number: str) -> bool:
    return len(number) == 18 and int(number[14:17]) in SEQUENCE_CODES and \
        BIRTH_FIRST <= date(int(number[6:10]), int(number[10:12]), int(number[12:14])) <= BIRTH_LAST


class People:
    """Draws distinct fictitious identities from ``rng`` (no ID number or phone twice)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ids: set[str] = set()
        self._phones: set[int] = set()
        self._openids: set[str] = set()
        self._credit_codes: set[str] = set()

    def name(self) -> str:
        rng = self._rng
        given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.75 else "")
        return rng.choice(SURNAMES) + given

    def id_number(self, county: str) -> tuple[str, date, int]:
        """A number from the reserved block for a person registered in ``county`` (a division
        code); with the birth date and GB/T 2261.1 gender (1 male, 2 female) it encodes."""
        span = (BIRTH_LAST - BIRTH_FIRST).days
        while True:
            born = BIRTH_FIRST + timedelta(days=self._rng.randint(0, span))
            first17 = f"{county}{born:%Y%m%d}{self._rng.choice(SEQUENCE_CODES):03d}"
            number = first17 + id_check_char(first17)
            if number not in self._ids:
                self._ids.add(number)
                return number, born, 1 if int(number[16]) % 2 else 2

    def phone(self) -> str:
        if len(self._phones) >= PHONE_BLOCK:
            raise ValueError("the demo phone block is used up")
        while True:
            n = PHONE_FIRST + self._rng.randrange(PHONE_BLOCK)
            if n not in self._phones:
                self._phones.add(n)
                return str(n)

    def openid(self) -> str:
        while True:
            openid = "oDEMO" + "".join(self._rng.choice(_OPENID_CHARS) for _ in range(23))
            if openid not in self._openids:
                self._openids.add(openid)
                return openid

    def credit_code(self, county: str) -> str:
        """A unified social credit code (GB 32100) of an enterprise in ``county``, with a valid
        check character; its organisation-code part starts ``99`` (the demo block)."""
        while True:
            first17 = f"91{county}99{self._rng.randrange(10 ** 7):07d}"
            code = first17 + uscc_check_char(first17)
            if code not in self._credit_codes:
                self._credit_codes.add(code)
                return code


# Parts of fictitious employers' names: a made-up brand, a trade, a company form.
BRANDS = ("蓉川", "锦程", "天府", "涪江", "富乐", "蜀光", "峨眉", "青城", "巴山", "岷江", "嘉陵", "金沙",
          "星桥", "玉垒", "云锦", "雪宝", "翠屏", "明月", "龙泉", "沱江")
TRADES = ("软件", "物流", "机械", "食品", "电子", "建设", "医药", "纺织", "商贸", "新能源", "环保", "家居",
          "汽车服务", "文化传媒", "酒店管理", "农业科技")
FORMS = ("有限公司", "有限责任公司", "股份有限公司")


def employer_name(rng: random.Random, place: str) -> str:
    return f"{place}{rng.choice(BRANDS)}{rng.choice(TRADES)}{rng.choice(FORMS)}"
