"""Values for the typed keywords of Official Account category templates and Mini Program
subscribe messages. WeChat refuses a whole message (47003) when one value breaks its keyword's
rule, so values are fitted here before a message is queued: a ``thing`` too long is cut with an
ellipsis (it is free text); anything else that does not fit is a bug in the caller and raises.

Rules (WeChat's documentation of subscribe messages; OA category templates share them): the
keyword's name is its type and a number, e.g. ``thing1``, ``phrase2``, ``time3``. ``time`` is a
24-hour time, optionally after a date; ``date`` is a date, optionally followed by a time; both may
be a range joined by ``~``. A ``name`` is 10 characters when it has Chinese in it and 20 letters
otherwise in a Mini Program; an Official Account's category templates take 20 either way.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\U00020000-\U0002ebef]")
_KEY = re.compile(r"^([a-z_]+?)(\d+)$")
_DAY = r"\d{4}(?:年\d{1,2}月\d{1,2}日|-\d{1,2}-\d{1,2}|/\d{1,2}/\d{1,2})"
_CLOCK = r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?"
_TIME_POINT = rf"(?:{_DAY}\s?)?{_CLOCK}"
_DATE_POINT = rf"{_DAY}(?:\s?{_CLOCK})?"
_LIMITS = {"thing": 20, "number": 32, "letter": 32, "symbol": 5, "character_string": 32,
           "phone_number": 17, "car_number": 8, "phrase": 5, "amount": 14, "time": 40, "date": 40,
           "name": 20, "const": 20}
_SHAPES = {
    "number": re.compile(r"^[0-9.]+$"),
    "letter": re.compile(r"^[A-Za-z]+$"),
    "character_string": re.compile(r"^[\x21-\x7e]+$"),  # digits, letters, symbols; no Chinese
    "phone_number": re.compile(r"^[0-9+\- ]+$"),
    "amount": re.compile(r"^[¥￥$]?[0-9]{1,10}(\.[0-9]{1,2})?元?$"),
    "symbol": re.compile(r"^[^\w\s]+$"),
    "car_number": re.compile(r"^[\u4e00-\u9fff]?[A-Za-z0-9]+[\u4e00-\u9fff]?$"),
    "time": re.compile(rf"^{_TIME_POINT}(?:\s?~\s?{_TIME_POINT})?$"),
    "date": re.compile(rf"^{_DATE_POINT}(?:\s?~\s?{_DATE_POINT})?$"),
    "name": re.compile(r"^[^\d\s](?:[^\d]*[^\d\s])?$"),  # letters, Chinese, · and spaces
}


class FieldError(ValueError):
    """A value its keyword's type cannot carry."""


def fit(key: str, value: object, *, official_account: bool = False) -> str:
    """``value`` made acceptable for keyword ``key``, or FieldError. ``official_account`` for an
    Official Account category template (its ``name`` rule is looser)."""
    match = _KEY.match(key)
    if match is None or match.group(1) not in _LIMITS:
        raise FieldError(f"unknown keyword type: {key}")
    kind, text = match.group(1), " ".join(str(value).split())  # no line breaks in any value
    if not text:
        raise FieldError(f"{key}: empty value")
    limit = _LIMITS[kind]
    if kind == "thing" and len(text) > limit:
        return text[:limit - 1] + "…"
    if len(text) > limit:
        raise FieldError(f"{key}: longer than {limit} characters")
    if kind == "phrase" and not all(_CJK.match(ch) for ch in text):
        raise FieldError(f"{key}: a phrase is Chinese characters only")
    if kind == "name" and not official_account and _CJK.search(text) and len(text) > 10:
        raise FieldError(f"{key}: a Chinese name is at most 10 characters")
    shape = _SHAPES.get(kind)
    if shape is not None and not shape.match(text):
        raise FieldError(f"{key}: not a {kind}")
    return text


def data(values: dict[str, object], *,
         official_account: bool = False) -> dict[str, dict[str, str]]:
    """A message's ``data`` object: ``{"thing1": {"value": "…"}, …}``."""
    return {key: {"value": fit(key, value, official_account=official_account)}
            for key, value in values.items()}
