"""Branch conditions are data: read safely, checked when saved, never eval/exec."""

from __future__ import annotations

import pytest

from wxbackend.services.casework.conditions import check, holds
from wxbackend.services.errors import InvalidInput

FIELDS = {"category", "amount", "anonymous", "union_kind"}


def test_conditions_decide_on_an_items_values() -> None:
    rule = check('category == "法律援助" and amount > 5000', FIELDS)
    assert holds(rule, {"category": "法律援助", "amount": 8000})
    assert not holds(rule, {"category": "法律援助", "amount": 100})
    assert holds('category in ("信访投诉", "法律援助") or not anonymous',
                 {"category": "咨询", "anonymous": False})
    assert holds("len(category) > 1 and max(amount, 10) == 10", {"category": "咨询", "amount": 3})


def test_a_value_that_does_not_fit_takes_the_default_path() -> None:
    assert not holds("amount > 5000", {"amount": "很多"})   # a type mismatch is false
    assert not holds("amount > 5000", {})                   # so is a missing field


@pytest.mark.parametrize("expression", [
    "().__class__.__bases__[0].__subclasses__()",   # the classic escape from eval
    "category.__class__",
    '__import__("os").system("id")',
    "open('/etc/passwd').read()",
    "amount ** 99999999",
    "randint(1, 2) == 1",                             # luck does not decide a branch
    "lambda: 1",
    "[x for x in range(10**9)]",
])
def test_anything_beyond_an_expression_of_the_fields_is_refused_when_saved(expression: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check(expression, FIELDS)
    assert refused.value.code == "invalid_condition"
    assert not holds(expression, {"category": "咨询", "amount": 2})


@pytest.mark.parametrize("expression", ["", "amount >", "salary > 1", "(" * 300 + "1" + ")" * 300])
def test_unreadable_or_unknown_conditions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidInput):
        check(expression, FIELDS)
