"""ID numbers and credit codes are ASCII: Python's ``\\d`` and ``int()`` also take the digits of
other scripts, which must never reach a blind index or a check-digit sum."""

from __future__ import annotations

from datetime import date

import pytest

from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership.idnumbers import id_check_char, parse_credit_code, parse_id_number

TODAY = date(2026, 12, 31)
ASCII_ID = "11010519491231002" + id_check_char("11010519491231002")
TO_ARABIC_INDIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")


def test_an_ascii_id_number_parses() -> None:
    assert parse_id_number(ASCII_ID, TODAY).number == ASCII_ID


@pytest.mark.parametrize("number", [
    ASCII_ID[0] + ASCII_ID[1:].translate(TO_ARABIC_INDIC),
    ASCII_ID[:5] + "\u0663" + ASCII_ID[6:],
])
def test_digits_of_other_scripts_are_not_an_id_number(number: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_id_number(number, TODAY)
    assert refused.value.code == "id_number_invalid"


def test_digits_of_other_scripts_are_not_a_credit_code() -> None:
    with pytest.raises(InvalidInput):
        parse_credit_code("91510100" + "\u0661" * 9 + "X")
