"""Personal data at rest: SM4-GCM sealing, HMAC-SM3 blind indexes, key rotation, masking."""

from __future__ import annotations

import base64

import pytest

from wxbackend.infra.pii import PersonalData, SealError, mask_phone, new_key, normalise_phone, parse_keyring

K1, K2 = new_key(), new_key()
INDEX = base64.b64decode(base64.b64encode(b"i" * 32))


def pii(current: int = 1, keys: str = f"1:{K1},2:{K2}") -> PersonalData:
    return PersonalData(parse_keyring(keys), current, INDEX)


def test_a_sealed_value_opens_only_in_its_own_column() -> None:
    sealed = pii().encrypt("13800000001", "accounts.phone")
    assert b"13800000001" not in sealed
    assert pii().decrypt(sealed, "accounts.phone") == "13800000001"
    with pytest.raises(SealError, match="authentication"):
        pii().decrypt(sealed, "members.phone")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        pii().decrypt(tampered, "accounts.phone")


def test_same_value_seals_differently_but_indexes_the_same() -> None:
    a, b = pii().encrypt("x", "c"), pii().encrypt("x", "c")
    assert a != b
    assert pii().blind_index("x", "c") == pii().blind_index("x", "c")
    assert pii().blind_index("x", "c") != pii().blind_index("x", "other")
    assert len(pii().blind_index("x", "c")) == 32  # SM3


def test_key_rotation_keeps_old_values_readable_and_reseals_them() -> None:
    old = pii(current=1).encrypt("13800000001", "accounts.phone")
    rotated = pii(current=2)
    assert rotated.decrypt(old, "accounts.phone") == "13800000001"
    resealed = rotated.reseal(old, "accounts.phone")
    assert PersonalData.key_id_of(resealed) == 2
    assert rotated.reseal(resealed, "accounts.phone") is resealed
    retired = pii(current=2, keys=f"2:{K2}")
    assert retired.decrypt(resealed, "accounts.phone") == "13800000001"
    with pytest.raises(SealError, match="key 1"):
        retired.decrypt(old, "accounts.phone")


@pytest.mark.parametrize("spec", ["1:short", "x:" + K1, "0:" + K1, "1:not base64!"])
def test_bad_keyrings_are_refused(spec: str) -> None:
    with pytest.raises(SealError):
        parse_keyring(spec)


def test_current_key_must_exist_and_index_key_be_long_enough() -> None:
    with pytest.raises(SealError):
        PersonalData(parse_keyring(f"1:{K1}"), 2, INDEX)
    with pytest.raises(SealError):
        PersonalData(parse_keyring(f"1:{K1}"), 1, b"short")


@pytest.mark.parametrize(("raw", "normal"), [
    ("13800000001", "13800000001"), ("+86 138-0000-0001", "13800000001"),
    ("008613800000001", "13800000001"), ("12800000001", None), ("1380000000", None), ("", None),
    # digits of other scripts are digits to Python's \d, never to a phone
    ("1380000\u06630001", None), ("138" + "\uff10" * 7 + "\uff11", None),
])
def test_phone_normalisation(raw: str, normal: str | None) -> None:
    assert normalise_phone(raw) == normal


def test_masking() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone(None) is None
