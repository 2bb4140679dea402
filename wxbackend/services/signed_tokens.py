"""Short-lived tokens a server issues and any server process can check without a database row:
an id and an issue time in the clear, and an HMAC-SM3 over both under a key and a domain of the
token's own (a MAC made for one kind of token never verifies as another). Member cards, the codes
workers show at a merchant or a venue, and the rotating check-in code on a venue's screen are all
such tokens; each kind names its domain and its Chinese answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from wxbackend.services.errors import InvalidInput

_FIELDS = struct.Struct(">QI")  # subject id (uint64), issued_at (uint32 unix seconds, good to 2106)
_MAC_LEN = 16  # 128 bits stops forgery; the full 32 bytes would only grow the QR
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{38}")  # base64url of 12 + 16 bytes, unpadded
MAX_CLOCK_SKEW = 300
_MIN_KEY_LEN = 16


@dataclass(frozen=True)
class TokenKind:
    domain: bytes                # e.g. b"member-card\x00"
    invalid: tuple[str, str]     # (message, code): a malformed or forged token
    expired: tuple[str, str]     # (message, code): one too old (or dated too far ahead)

    def refuse(self, which: tuple[str, str]) -> InvalidInput:
        return InvalidInput(which[0], code=which[1])  # a new error each time: tracebacks must not pile up


def derived_key(index_key: bytes, label: bytes) -> bytes:
    """A token kind's key, derived from the blind-index key: nothing new to configure or rotate."""
    return hmac.new(index_key, label, hashlib.sha256).digest()


def _mac(key: bytes, kind: TokenKind, body: bytes) -> bytes:
    if len(key) < _MIN_KEY_LEN:
        # A short key is a configuration mistake, not bad user input: fail loudly, not with a 400.
        raise ValueError(f"token key must be at least {_MIN_KEY_LEN} bytes")
    h = HMAC(key, hashes.SM3())
    h.update(kind.domain + body)
    return h.finalize()[:_MAC_LEN]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def issue(key: bytes, kind: TokenKind, subject: int, issued_at: int) -> str:
    """A 38-character URL-safe token for ``subject``, valid from ``issued_at`` (unix seconds).

    Raises ValueError for values the token cannot carry; those are bugs in the caller."""
    if not 0 <= subject < 2**64:
        raise ValueError("subject out of range for a token")
    if not 0 <= issued_at < 2**32:
        raise ValueError("issued_at out of range for a token")
    body = _FIELDS.pack(subject, issued_at)
    return _b64(body + _mac(key, kind, body))


def read(key: bytes, kind: TokenKind, token: str, now: int, max_age: int) -> tuple[int, int]:
    """(subject, issued_at) of ``token`` if it was issued with ``key`` for ``kind`` and is fresh.

    Raises ``kind.invalid`` for anything malformed or forged and ``kind.expired`` when it is older
    than ``max_age`` seconds or dated more than five minutes ahead of ``now`` (clocks of different
    servers drift; a token from further ahead was not issued by us honestly). The MAC is checked
    before the times, so a tampered time field reads as forged, not expired."""
    if not isinstance(token, str) or not _TOKEN_SHAPE.fullmatch(token):
        raise kind.refuse(kind.invalid)
    raw = base64.urlsafe_b64decode(token + "==")
    # The decoder ignores the last character's spare bits; accept one spelling per token only.
    if _b64(raw) != token:
        raise kind.refuse(kind.invalid)
    body, mac = raw[:_FIELDS.size], raw[_FIELDS.size:]
    if not hmac.compare_digest(mac, _mac(key, kind, body)):
        raise kind.refuse(kind.invalid)
    subject, issued_at = _FIELDS.unpack(body)
    if issued_at - now > MAX_CLOCK_SKEW or now - issued_at > max_age:
        raise kind.refuse(kind.expired)
    return subject, issued_at
