"""The Official Account push envelope: signatures, safe-mode AES, hostile XML, size and age.

wechatpy does the cryptography and the message parsing; this module decides what to trust.
Order matters: cheap checks that need no parsing come first (size, timestamp, signature), then
the XML is parsed once by defusedxml, which refuses any DTD or entity before expat can expand
it (billion laughs, XXE). Only then is the ciphertext decrypted and the inner XML parsed.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.messages import BaseMessage
from wechatpy.utils import to_text

from wxbackend.config import WeChatSettings


class PushRejected(Exception):
    """A push we refuse. ``status`` is the HTTP status to answer with; ``reason`` is for logs."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class OpenedPush:
    message: BaseMessage
    fields: dict  # the push as WeChat sent it (wechatpy rewrites Event/EventKey of QR follows)
    xml: str
    encrypted: bool
    key_index: int  # which EncodingAESKey opened it (0 = current, 1 = previous); replies use it


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's scheme


def _fields(node) -> dict:
    out: dict = {}
    for child in node:
        out[child.tag] = _fields(child) if len(child) else (child.text or "").strip()
    return out


def _safe_tree(data: bytes | str):
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException:
        raise PushRejected(400, "xml with dtd or entities") from None
    except (ParseError, ValueError):
        raise PushRejected(400, "malformed xml") from None


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
        self._prps = [PrpCrypto(c.key) for c in self._cryptos]

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
        envelope = _safe_tree(body)
        key_index = 0
        if encrypted:
            xml, key_index = self._decrypt(envelope, query)
            document = _safe_tree(xml.encode())  # the inner document gets the same scrutiny
        else:
            xml, document = to_text(body), envelope
        try:
            message = parse_message(xml)
        except Exception:  # wechatpy raises bare KeyError/ExpatError on odd documents
            raise PushRejected(400, "not a wechat message") from None
        if self._original_id and message.target != self._original_id:
            raise PushRejected(403, "push addressed to another account")
        if not message.source:
            raise PushRejected(400, "message without sender")
        return OpenedPush(message=message, fields=_fields(document), xml=xml,
                          encrypted=encrypted, key_index=key_index)

    def _decrypt(self, envelope, query: Mapping[str, str]) -> tuple[str, int]:
        if not self._cryptos:
            raise PushRejected(400, "encrypted push but no EncodingAESKey configured")
        node = envelope.find("Encrypt")
        encrypt = (node.text or "").strip() if node is not None else ""
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
        """Encrypt a passive reply when the push was encrypted, with the key that opened it."""
        if not opened.encrypted or not reply_xml or reply_xml == "success":
            return reply_xml
        return self._cryptos[opened.key_index].encrypt_message(
            reply_xml, query["nonce"], query["timestamp"])

