"""The Official Account push envelope: signatures, safe-mode AES, hostile XML, size and age.

wechatpy does the cryptography and renders replies; this module decides what to trust. Order
matters: cheap checks that need no parsing come first (size, timestamp, signature), then the XML
is parsed by expat hardened the way defusedxml hardens it: any DTD, entity declaration or external
entity reference stops the parse before expat can expand it (billion laughs, XXE). Only then is
the ciphertext decrypted and the inner document parsed — once, by the same hardened parser; its
fields are the message (wechatpy's ``parse_message`` would parse it a second time with
xmltodict, and rewrites ``Event``/``EventKey`` of QR-code follows).

The parser calls expat directly and builds the fields as it goes, rather than going through
defusedxml's ElementTree, whose pure-Python parser class and tree cost twice as much per push
(13 against 6 µs for a text message), on the platform's busiest path.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from xml.parsers import expat

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.replies import TextReply

from wxbackend.config import WeChatSettings


class PushRejected(Exception):
    """A push we refuse. ``status`` is the HTTP status to answer with; ``reason`` is for logs."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class OpenedPush:
    fields: dict      # the push's elements as WeChat sent them (nested ones as dicts)
    encrypted: bool
    key_index: int    # which EncodingAESKey opened it (0 = current, 1 = previous); replies use it

    @property
    def source(self) -> str:
        """The sender's openid."""
        return self.fields["FromUserName"]

    @property
    def target(self) -> str:
        """Our account's original id (gh_…)."""
        return self.fields["ToUserName"]

    @property
    def create_time(self) -> int:
        return int(self.fields["CreateTime"])

    @property
    def msg_type(self) -> str:
        return self.fields["MsgType"]


def text_reply(push: OpenedPush, content: str) -> str:
    """A passive text reply to ``push`` (wechatpy renders it)."""
    return TextReply(source=push.target, target=push.source, content=content).render()


class _Prp(PrpCrypto):
    """wechatpy's cipher with a CSPRNG for the 16-byte random prefix (wechatpy uses ``random``).

    The prefixes are cut from a buffer of ``os.urandom`` filled 512 at a time: one system call
    per reply was a measurable share of a reply's cost. A forked child drops the buffer it
    inherited, so no two processes use the same prefix."""

    _BATCH = 512

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self._random = ""
        self._next = 0
        _PRPS.add(self)

    def get_random_string(self) -> str:
        start = self._next
        if start >= len(self._random):
            self._random, start = secrets.token_hex(8 * self._BATCH), 0
        self._next = start + 16
        return self._random[start:start + 16]

    def forget_random(self) -> None:
        self._random, self._next = "", 0


_PRPS: weakref.WeakSet[_Prp] = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [prp.forget_random() for prp in list(_PRPS)])


_REPLY_ENVELOPE = ("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
                   "<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
                   "<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


# Every push has these, as text; CreateTime in digits.
_REQUIRED = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
_DIGITS = re.compile(r"[0-9]{1,12}")  # str.isdigit() also takes "²", which int() refuses


class _Forbidden(Exception):
    pass


def _forbid(*_args: object) -> None:
    raise _Forbidden()


def _parse(data: bytes) -> tuple[str, dict]:
    """The root element's tag and its children: a leaf as its stripped text, an element with
    children as a dict of them (attributes ignored; of repeated names the last one wins)."""
    parser = expat.ParserCreate()
    # What defusedxml forbids, refused before anything is expanded or fetched.
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.buffer_text = True
    # One dict and one text list per open element; a list as the stack, so depth costs no
    # recursion.
    children: list[dict] = [{}]
    texts: list[list[str]] = [[]]

    def start(_tag: str, _attrs: dict) -> None:
        children.append({})
        texts.append([])

    def end(tag: str) -> None:
        own, text = children.pop(), texts.pop()
        children[-1][tag] = own or "".join(text).strip()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = lambda text: texts[-1].append(text)
    try:
        parser.Parse(data, True)
    except _Forbidden:
        raise PushRejected(400, "xml with dtd or entities") from None
    except (expat.ExpatError, ValueError):
        raise PushRejected(400, "malformed xml") from None
    [(root, fields)] = children[0].items()
    return root, fields if isinstance(fields, dict) else {}


class Envelope:
    """Verifies and opens pushes, and seals replies, for one Official Account."""

    def __init__(self, settings: WeChatSettings) -> None:
        self._token = settings.token.reveal()
        self._appid = settings.appid
        self._original_id = settings.original_id
        self._mode = settings.message_mode
        self._window = settings.timestamp_window
        self._max_bytes = settings.max_message_bytes
        keys = [settings.encoding_aes_key.reveal(), settings.previous_encoding_aes_key.reveal()]
        self._cryptos = [WeChatCrypto(self._token, k, self._appid) for k in keys if k]
        self._prps = [_Prp(c.key) for c in self._cryptos]

    # --- inbound -----------------------------------------------------------------------------
    def check_signature(self, query: Mapping[str, str], *, now: float | None = None) -> None:
        timestamp = query.get("timestamp", "")
        nonce = query.get("nonce", "")
        signature = query.get("signature", "")
        if not (timestamp and nonce and signature):
            raise PushRejected(400, "missing signature parameters")
        try:
            age = abs((now or time.time()) - int(timestamp))
        except ValueError:
            raise PushRejected(400, "timestamp is not a number") from None
        if age > self._window:
            raise PushRejected(403, "stale timestamp")
        if not hmac.compare_digest(_sha1(self._token, timestamp, nonce), signature):
            raise PushRejected(403, "bad signature")

    def verify_url(self, query: Mapping[str, str]) -> str:
        """GET URL verification: the echostr, returned as-is when the signature is right."""
        self.check_signature(query)
        echostr = query.get("echostr", "")
        if not echostr:
            raise PushRejected(400, "missing echostr")
        return echostr

    def open(self, query: Mapping[str, str], body: bytes, *, now: float | None = None) -> OpenedPush:
        if len(body) > self._max_bytes:
            raise PushRejected(413, "body too large")
        if not body:
            raise PushRejected(400, "empty body")
        self.check_signature(query, now=now)
        encrypted = query.get("encrypt_type", "raw").lower() == "aes"
        if self._mode == "safe" and not encrypted:
            raise PushRejected(403, "plaintext push in safe mode")
        if self._mode == "plain" and encrypted:
            raise PushRejected(400, "encrypted push in plaintext mode")
        root, fields = _parse(body)
        key_index = 0
        if encrypted:
            xml, key_index = self._decrypt(fields, query)
            root, fields = _parse(xml.encode())  # the inner document gets the same scrutiny
        if root != "xml" or not all(isinstance(fields.get(name), str) and fields[name]
                                    for name in _REQUIRED) or not _DIGITS.fullmatch(fields["CreateTime"]):
            raise PushRejected(400, "not a wechat message")
        if self._original_id and fields.get("ToUserName") != self._original_id:
            raise PushRejected(403, "push addressed to another account")
        return OpenedPush(fields=fields, encrypted=encrypted, key_index=key_index)

    def _decrypt(self, envelope: dict, query: Mapping[str, str]) -> tuple[str, int]:
        if not self._cryptos:
            raise PushRejected(400, "encrypted push but no EncodingAESKey configured")
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str):
            encrypt = ""
        msg_signature = query.get("msg_signature", "")
        if not encrypt or not msg_signature:
            raise PushRejected(400, "encrypted push without Encrypt or msg_signature")
        expected = _sha1(self._token, query["timestamp"], query["nonce"], encrypt)
        if not hmac.compare_digest(expected, msg_signature):
            raise PushRejected(403, "bad msg_signature")
        for index, prp in enumerate(self._prps):
            try:
                return prp.decrypt(encrypt, self._appid), index
            except InvalidAppIdException:
                continue  # wrong key (after a key change) or a push for another account
            except (ValueError, binascii.Error, UnicodeDecodeError, IndexError):
                continue
        raise PushRejected(403, "cannot decrypt for this appid")

    # --- outbound ----------------------------------------------------------------------------
    def seal(self, reply_xml: str, opened: OpenedPush, query: Mapping[str, str]) -> str:
        """Encrypt a passive reply when the push was encrypted, with the key that opened it
        (the same envelope as wechatpy's ``encrypt_message``, from a cipher made once)."""
        if not opened.encrypted or not reply_xml or reply_xml == "success":
            return reply_xml
        encrypt = self._prps[opened.key_index].encrypt(reply_xml, self._appid).decode()
        timestamp, nonce = query["timestamp"], query["nonce"]
        return _REPLY_ENVELOPE.format(encrypt=encrypt, timestamp=timestamp, nonce=nonce,
                                      signature=_sha1(self._token, timestamp, nonce, encrypt))

