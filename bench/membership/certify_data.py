"""Made-up member records for ``bench/membership/certify.py``: the same record for the same index
in every process, so the driver knows member k's ID number, name and phone without reading them
back, and a pool of worker processes can seal 5 million of them in parallel.

Member k (0 <= k < N) gets a valid resident ID number (GB 11643): a Sichuan county code from
``wxbackend/data/sichuan_regions.csv``, a birth date from 1960-01-01 to 2005-12-31, a sequence
number 000–799 and the check digit, laid out by an affine permutation of all such numbers, so the
N numbers are distinct and spread over every county and day. Misses (valid numbers that are in
no record) take the sequence numbers 800–999 the same way, so they can never collide with a
member. 70 % of members have a phone (13x–17x, distinct, also a permutation); phones for accounts
with no member to match come from 18x–19x. Names are a common surname and one or two common given
characters (2–3 CJK characters; names repeat, as they do). Sealed values and blind indexes come from
the real :class:`wxbackend.infra.pii.PersonalData`, columns ``members.id_number`` and
``members.phone``, exactly as :mod:`wxbackend.services.membership.membership` computes them.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from wxbackend.infra.pii import PersonalData, parse_keyring
from wxbackend.services.membership.idnumbers import id_check_char

ROOT = Path(__file__).resolve().parents[2]
GENERATOR_VERSION = 1  # bump when a record's content changes: cached databases are rebuilt

ID_COLUMN = "members.id_number"
PHONE_COLUMN = "members.phone"

with (ROOT / "wxbackend" / "data" / "sichuan_regions.csv").open(encoding="utf-8") as _fh:
    _rows = list(csv.DictReader(line for line in _fh if not line.startswith("#")))
COUNTIES = [r["code"] for r in _rows if r["level"] == "county"]
CITIES = {r["code"]: r["name"] for r in _rows if r["level"] == "city"}
COUNTIES_OF = {c: [r["code"] for r in _rows if r["level"] == "county" and r["city_code"] == c]
               for c in CITIES}
del _rows

DAY0 = date(1960, 1, 1)
DAYS = (date(2005, 12, 31) - DAY0).days + 1
MEMBER_SEQ = 800  # sequence numbers 000-799: members
MISS_SEQ = 200    # 800-999: valid numbers in no record
MEMBER_SPACE = len(COUNTIES) * DAYS * MEMBER_SEQ
MISS_SPACE = len(COUNTIES) * DAYS * MISS_SEQ
PHONE_SPACE = 5_000_000_000   # 130 0000 0000 - 179 9999 9999: members' phones
SPARE_PHONES = 2_000_000_000  # 180 0000 0000 - 199 9999 9999: accounts' own phones

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
            "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾"
            "毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国玉红梅志文辉海燕俊峰鹏飞丹萍"
         "波宇浩凯婷雪琳晨欣怡佳嘉颖鑫龙斌林德成福贵荣珍凤琴云莉蓉倩梦雨思涵子轩博宏亮庆春秋")
ETHNICITIES = ("汉族",) * 94 + ("彝族",) * 3 + ("藏族",) * 2 + ("羌族",)
EDUCATION = ("初中", "高中", "中专", "大专", "大学本科", "硕士研究生")
POLITICAL = ("群众",) * 6 + ("中共党员", "共青团员")

COLUMNS = ("org_id", "member_no", "name", "id_number_enc", "id_number_bidx", "phone_enc",
           "phone_bidx", "gender", "birth_date", "ethnicity", "education", "political_status",
           "household_type", "migrant_worker", "employer", "status", "source", "joined_on",
           "roster_digest")

_M64 = (1 << 64) - 1


def mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def coprime(space: int, near: float = 0.6180339887) -> int:
    """A multiplier coprime with ``space``: ``(a * k + c) % space`` is then a permutation."""
    a = max(1, int(space * near))
    while math.gcd(a, space) != 1:
        a += 1
    return a


_A_MEMBER = coprime(MEMBER_SPACE)
_A_MISS = coprime(MISS_SPACE, 0.4142135623)
_A_PHONE = coprime(PHONE_SPACE, 0.7320508075)


def _id_number(slot: int, seq_base: int, seq_n: int) -> tuple[str, date]:
    county = slot % len(COUNTIES)
    rest = slot // len(COUNTIES)
    born = DAY0 + timedelta(days=rest % DAYS)
    first17 = f"{COUNTIES[county]}{born:%Y%m%d}{seq_base + rest // DAYS % seq_n:03d}"
    return first17 + id_check_char(first17), born


def _name(h: int) -> str:
    surname = SURNAMES[h % len(SURNAMES)]
    h //= len(SURNAMES)
    given = GIVEN[h % len(GIVEN)]
    h //= len(GIVEN)
    if h % 4:  # three characters for three in four
        given += GIVEN[(h // 4) % len(GIVEN)]
    return surname + given


@dataclass(frozen=True)
class Member:
    k: int
    id_number: str
    name: str
    phone: str | None
    gender: int
    birth_date: date
    member_no: str
    org_slot: int
    joined_on: date
    h: int


def member(k: int) -> Member:
    number, born = _id_number((_A_MEMBER * k + 7_919) % MEMBER_SPACE, 0, MEMBER_SEQ)
    h = mix(k ^ 0x5C17_C0DE)
    phone = str(13_000_000_000 + (_A_PHONE * k + 104_729) % PHONE_SPACE) \
        if (h >> 40) % 10 < 7 else None
    start = max(date(born.year + 18, 1, 1), date(1990, 1, 1))
    joined = min(start + timedelta(days=(h >> 8) % 9000), date(2026, 10, 31))
    return Member(k=k, id_number=number, name=_name(h >> 12), phone=phone,
                  gender=1 if int(number[16]) % 2 else 2, birth_date=born,
                  member_no=f"SC{joined.year}{k + 1:09d}", org_slot=(h >> 48), joined_on=joined,
                  h=h)


def miss(j: int) -> tuple[str, str]:
    """The j-th miss: a valid ID number that no member has, and a name."""
    number, _ = _id_number((_A_MISS * j + 3_571) % MISS_SPACE, MEMBER_SEQ, MISS_SEQ)
    return number, _name(mix(j ^ 0x0DD_BA11) >> 7)


def spare_phone(j: int) -> str:
    """The j-th phone that no member has (for accounts whose member has none, and the rest)."""
    if not 0 <= j < SPARE_PHONES:
        raise ValueError("out of spare phones")
    return str(18_000_000_000 + j)


def pick(j: int, n: int) -> int:
    """The member used for the j-th first certification: a permutation of 0..n-1, so picks are
    spread over the whole table (and its pages) and never repeat."""
    return (coprime(n, 0.3819660113) * j + 12_345) % n


# --- sealing, in worker processes -----------------------------------------------------------
_PII: PersonalData | None = None


def init_worker(field_keys: str, current: int, index_key: bytes, cores: set[int]) -> None:
    """Pool initializer: the keys, and both cores (the driver itself is pinned to one)."""
    global _PII
    _PII = PersonalData(parse_keyring(field_keys), current, index_key)
    os.sched_setaffinity(0, cores)


def rows(start: int, stop: int, orgs: list[tuple[int, str]]) -> list[tuple]:
    """COPY records (``COLUMNS``) for members start..stop-1; ``orgs``: (id, employer name)."""
    pii = _PII
    assert pii is not None, "init_worker first"
    out = []
    for k in range(start, stop):
        m = member(k)
        h = m.h
        org_id, employer = orgs[m.org_slot % len(orgs)]
        rural = (h >> 4) % 3 == 0
        out.append((
            org_id, m.member_no, m.name,
            pii.encrypt(m.id_number, ID_COLUMN), pii.blind_index(m.id_number, ID_COLUMN),
            pii.encrypt(m.phone, PHONE_COLUMN) if m.phone else None,
            pii.blind_index(m.phone, PHONE_COLUMN) if m.phone else None,
            m.gender, m.birth_date, ETHNICITIES[(h >> 20) % len(ETHNICITIES)],
            EDUCATION[(h >> 28) % len(EDUCATION)], POLITICAL[(h >> 32) % len(POLITICAL)],
            "农村" if rural else "城镇", rural and (h >> 36) % 2 == 0, employer, "active", "roster",
            m.joined_on, hashlib.sha256(f"roster:{m.member_no}:{m.name}".encode()).digest(),
        ))
    return out
