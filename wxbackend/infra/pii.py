"""Personal data at rest: SM4-GCM field encryption, HMAC-SM3 blind indexes, masking.

MLPS level 3 and the commercial-cryptography rules expect SM algorithms for personal data.
A stored value is ``version(1) ‖ key_id(1) ‖ nonce(12) ‖ ciphertext ‖ tag(16)``; the column name
is bound in as associated data, so a phone ciphertext pasted into another column fails to
decrypt. The key id lets old rows be read after a key change and re-encrypted later (see
docs/security.md, "key rotation"). Equality lookups use a blind index — a keyed hash of the
normalised value — so the database never holds a searchable plaintext.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_VERSION = 1
_NONCE = 12
_TAG = 16


class SealError(ValueError):
    """A configured key is malformed, or a stored value names a key we do not have."""


def parse_keyring(spec: str) -> dict[int, bytes]:
    """``"1:<base64 16 bytes>,2:<base64 16 bytes>"`` → {1: key, 2: key}."""
    keys: dict[int, bytes] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        ident, _, encoded = part.partition(":")
        try:
            key_id, key = int(ident), base64.b64decode(encoded, validate=True)
        except ValueError:
            raise SealError("field keys look like 1:<base64>,2:<base64>") from None
        if not 1 <= key_id <= 255 or len(key) != 16:
            raise SealError(f"field key {ident}: id 1–255 and 16 bytes (SM4-128) expected")
        keys[key_id] = key
    return keys


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


@dataclass(frozen=True)
class Sealed:
    key_id: int
    blob: bytes


class PersonalData:
    def __init__(self, keys: dict[int, bytes], current: int, index_key: bytes) -> None:
        if current not in keys:
            raise SealError(f"the current field key {current} is not in the keyring")
        if len(index_key) < 16:
            raise SealError("the blind-index key needs at least 16 bytes")
        # Built once: making the cipher object checks the key, half the cost of sealing a short
        # value (the Official Account seals every push).
        self._ciphers = {key_id: algorithms.SM4(key) for key_id, key in keys.items()}
        self._current = current
        self._index_key = index_key

    def encrypt(self, value: str, column: str) -> bytes:
        return self.encrypt_bytes(value.encode(), column)

    def encrypt_bytes(self, value: bytes, column: str) -> bytes:
        """A file's bytes, sealed like a field (an appeal's photos and documents)."""
        nonce = os.urandom(_NONCE)
        enc = Cipher(self._ciphers[self._current], modes.GCM(nonce)).encryptor()
        enc.authenticate_additional_data(column.encode())
        body = enc.update(value) + enc.finalize()
        return bytes([_VERSION, self._current]) + nonce + body + enc.tag

    def decrypt(self, blob: bytes, column: str) -> str:
        return self.decrypt_bytes(blob, column).decode()

    def decrypt_bytes(self, blob: bytes, column: str) -> bytes:
        if len(blob) < 2 + _NONCE + _TAG or blob[0] != _VERSION:
            raise SealError("not a sealed value")
        cipher = self._ciphers.get(blob[1])
        if cipher is None:
            raise SealError(f"sealed with key {blob[1]}, which is not configured")
        nonce, body, tag = blob[2:2 + _NONCE], blob[2 + _NONCE:-_TAG], blob[-_TAG:]
        dec = Cipher(cipher, modes.GCM(nonce, tag)).decryptor()
        dec.authenticate_additional_data(column.encode())
        try:
            return dec.update(body) + dec.finalize()
        except InvalidTag:
            raise SealError("sealed value fails authentication (wrong column or tampered)") from None

    @property
    def current_key(self) -> int:
        return self._current

    @staticmethod
    def key_id_of(blob: bytes) -> int:
        return blob[1]

    def reseal(self, blob: bytes, column: str) -> bytes:
        """Re-encrypt under the current key (key rotation); unchanged if already current."""
        if blob[1] == self._current:
            return blob
        return self.encrypt(self.decrypt(blob, column), column)

    def blind_index(self, value: str, column: str) -> bytes:
        mac = crypto_hmac.HMAC(self._index_key, hashes.SM3())
        mac.update(column.encode() + b"\x00" + value.encode())
        return mac.finalize()


_PHONE = re.compile(r"^1[3-9]\d{9}$", re.ASCII)


def normalise_phone(raw: str) -> str | None:
    """A mainland mobile number as 11 digits, or None. Accepts +86 / 0086 / spaces / dashes."""
    digits = re.sub(r"[\s-]", "", raw or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return digits if _PHONE.match(digits) else None


def mask_phone(phone: str | None) -> str | None:
    return f"{phone[:3]}****{phone[-4:]}" if phone else None


def mask_id_number(number: str | None) -> str | None:
    """A resident ID number with its province and city (first four) and the end of its sequence
    with the check character (last four) visible, enough to tell two records apart; the county,
    the birth date and the rest of the sequence are hidden. Logs mask the same way."""
    return f"{number[:4]}**********{number[-4:]}" if number else None


# Personal data inside free text (log lines): a resident ID number, and a mobile number however
# it was typed (+86 / 0086 / 86 in front, spaces or dashes inside).
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_PHONE_IN_TEXT = re.compile(
    r"(?<![0-9])((?:\+|00)?86[ -]?)?(1[3-9]\d[ -]?\d{4}[ -]?\d{4})(?![0-9])")


def mask_text(text: str) -> str:
    """``text`` with every ID number and mobile number in it masked as the pages mask them."""
    text = _ID_IN_TEXT.sub(lambda m: mask_id_number(m[0]) or "", text)
    return _PHONE_IN_TEXT.sub(
        lambda m: (m[1] or "") + (mask_phone(re.sub(r"[ -]", "", m[2])) or ""), text)
