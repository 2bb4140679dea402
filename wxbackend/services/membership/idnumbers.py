"""Resident ID numbers (GB 11643) and unified social credit codes (GB 32100): validated before
anything is written, with a message a worker or cadre can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from wxbackend.services.errors import InvalidInput

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^[1-9]\d{16}[\dX]$", re.ASCII)
MIN_WORKING_AGE = 16   # the Labour Law's minimum age of employment

_USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$", re.ASCII)


@dataclass(frozen=True)
class IdNumber:
    number: str
    birth_date: date
    gender: int          # GB/T 2261.1: 1 male, 2 female

    def age_on(self, day: date) -> int:
        return day.year - self.birth_date.year - ((day.month, day.day) < (self.birth_date.month,
                                                                           self.birth_date.day))


def id_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def parse_id_number(raw: str, today: date, *, min_age: int = MIN_WORKING_AGE) -> IdNumber:
    number = (raw or "").strip().upper().replace(" ", "")
    if not _ID_SHAPE.match(number):
        raise InvalidInput("身份证号码应为 18 位，最后一位可以是数字或 X", code="id_number_invalid")
    if id_check_char(number[:17]) != number[17]:
        raise InvalidInput("身份证号码校验位不正确，请核对后重新输入", code="id_number_checksum")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidInput("身份证号码中的出生日期不存在", code="id_number_birth_date") from None
    if born.year < 1900 or born > today:
        raise InvalidInput("身份证号码中的出生日期不合理", code="id_number_birth_date")
    parsed = IdNumber(number, born, 1 if int(number[16]) % 2 else 2)
    if parsed.age_on(today) < min_age:
        raise InvalidInput(f"未满 {min_age} 周岁，暂不能办理", code="id_number_under_age")
    return parsed


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_CHARSET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARSET[(31 - total % 31) % 31]


def parse_credit_code(raw: str) -> str:
    code = (raw or "").strip().upper().replace(" ", "")
    if not _USCC_SHAPE.match(code):
        raise InvalidInput("统一社会信用代码应为 18 位数字或大写字母（不含 I、O、Z、S、V）",
                           code="credit_code_invalid")
    if uscc_check_char(code[:17]) != code[17]:
        raise InvalidInput("统一社会信用代码校验位不正确，请核对后重新输入", code="credit_code_checksum")
    return code


def mask_name(name: str | None) -> str | None:
    """The family name only (张**): what someone checking a member card may see."""
    return name[0] + "*" * (len(name) - 1) if name else name
