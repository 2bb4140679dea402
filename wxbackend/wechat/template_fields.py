"""Values for the typed keywords of Official Account category templates and Mini Program
subscribe messages. WeChat refuses a whole message (47003) when one value breaks its keyword's
rule, so values are fitted here before a message is queued: a ``thing`` too long is cut with an
ellipsis (it is free text); anything else that does not fit is a bug in the caller and raises.

Rules (WeChat's documentation of subscribe messages; OA category templates share them): the
keyword's name is its type and a number, e.g. ``thing1``, ``phrase2``, ``time3``.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\U00020000-\U0002ebef]")
_KEY = re.compile(r"^([a-z_]+?)(\d+)$")
_LIMITS = {"thing": 20, "number": 32, "letter": 32, "symbol": 5, "character_string": 32,
           "phone_number": 17, "car_number": 8, "phrase": 5, "amount": 14, "time": 40, "date": 40,
           "name": 20, "const": 20}
_SHAPES = {
    "number": re.compile(r"^[0-9.]+$"),
    "letter": re.compile(r"^[A-Za-z]+$"),
    "character_string": re.compile(r"^[\x21-\x7e]+$"),  # digits, letters, symbols; no Chinese
    "phone_number": re.compile(r"^[0-9+\- ]+$"),
    "amount": re.compile(r"^[¥￥$]?[0-9]{1,10}(\.[0-9]{1,2})?元?$"),
}


class FieldError(ValueError):
    """A value its keyword's type cannot carry."""


def fit(key: str, value: object) -> str:
    """``value`` made acceptable for keyword ``key``, or FieldError."""
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
    if kind == "name" and _CJK.search(text) and len(text) > 10:
        raise FieldError(f"{key}: a Chinese name is at most 10 characters")
    shape = _SHAPES.get(kind)
    if shape is not None and not shape.match(text):
        raise FieldError(f"{key}: not a {kind}")
    return text


def data(values: dict[str, object]) -> dict[str, dict[str, str]]:
    """A message's ``data`` object: ``{"thing1": {"value": "…"}, …}``."""
    return {key: {"value": fit(key, value)} for key, value in values.items()}
