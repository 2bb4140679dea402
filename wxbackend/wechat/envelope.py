"""The Official Account push envelope: signatures, safe-mode AES, hostile XML, size and age.

wechatpy does the cryptography and renders replies; this module decides what to trust. Order
matters: cheap checks that need no parsing come first (size, timestamp, signature), then the XML
is parsed by defusedxml, which refuses any DTD or entity before expat can expand it (billion
laughs, XXE). Only then is the ciphertext decrypted and the inner document parsed — once, by the
same hardened parser; its fields are the message (wechatpy's ``parse_message`` would parse it a
second time with xmltodict, and rewrites ``Event``/``EventKey`` of QR-code follows).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
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
    """wechatpy's cipher with a CSPRNG for the 16-byte random prefix (wechatpy uses ``random``)."""

    def get_random_string(self) -> str:
        return secrets.token_hex(8)


_REPLY_ENVELOPE = ("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
                   "<MsgSignature><![CDATA[{signature}]]></MsgSignature>"
                   "<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")


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
        envelope = _safe_tree(body)
        key_index = 0
        document = envelope
        if encrypted:
            xml, key_index = self._decrypt(envelope, query)
            document = _safe_tree(xml.encode())  # the inner document gets the same scrutiny
        fields = _fields(document)
        if document.tag != "xml" or not fields.get("MsgType") or not fields.get("FromUserName"):
            raise PushRejected(400, "not a wechat message")
        try:
            int(fields.get("CreateTime", ""))
        except ValueError:
            raise PushRejected(400, "not a wechat message") from None
        if self._original_id and fields.get("ToUserName") != self._original_id:
            raise PushRejected(403, "push addressed to another account")
        return OpenedPush(fields=fields, encrypted=encrypted, key_index=key_index)

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
        """Encrypt a passive reply when the push was encrypted, with the key that opened it
        (the same envelope as wechatpy's ``encrypt_message``, from a cipher made once)."""
        if not opened.encrypted or not reply_xml or reply_xml == "success":
            return reply_xml
        encrypt = self._prps[opened.key_index].encrypt(reply_xml, self._appid).decode()
        timestamp, nonce = query["timestamp"], query["nonce"]
        return _REPLY_ENVELOPE.format(encrypt=encrypt, timestamp=timestamp, nonce=nonce,
                                      signature=_sha1(self._token, timestamp, nonce, encrypt))

