"""What WeChat's servers send to our message endpoint, byte for byte.

The crypto here is a second, independent implementation of the WXBizMsgCrypt scheme (hashlib and
``cryptography`` only, no wechatpy), so a test that pushes through :class:`FakePusher` into a server
built on wechatpy checks two implementations against each other instead of one against itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import random
import secrets
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as defused

__all__ = ["FakePusher", "FieldValue"]

MODES = ("plain", "compat", "safe")
_BLOCK = 32  # WXBizMsgCrypt pads to 32 bytes, not to the AES block size of 16
_RANDOM_PREFIX = 16
_LENGTH = struct.Struct(">I")

FieldValue: TypeAlias = (
    "str | int | float | Mapping[str, FieldValue] | Sequence[Mapping[str, FieldValue]]"
)

# Real MsgIds are 64-bit integers with 17-19 digits; one process-wide counter keeps them unique
# across pushers, so dedup logic in the server never sees an accidental collision.
_msg_ids = itertools.count(random.randint(24_000_000_000_000_000, 25_000_000_000_000_000))


def _sha1_sorted(*parts: str) -> str:
    """WeChat signs by sorting the parts as plain strings and hashing their concatenation."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()  # noqa: S324 - WeChat's scheme


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside one CDATA section; WeChat splits it across two.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(tag: str, value: FieldValue) -> str:
    """Render one field the way WeChat does: strings in CDATA, numbers bare, dicts nested."""
    if isinstance(value, bool):
        raise TypeError(f"{tag}: WeChat has no boolean fields; pass an int or a str")
    if isinstance(value, str):
        return f"<{tag}>{_cdata(value)}</{tag}>"
    if isinstance(value, int | float):
        return f"<{tag}>{value}</{tag}>"
    if isinstance(value, Mapping):
        inner = "".join(_element(k, v) for k, v in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, Sequence):
        # A repeated element, e.g. several <List> entries of subscribe_msg_popup_event.
        return "".join(_element(tag, item) for item in value)
    raise TypeError(f"{tag}: unsupported field value {value!r}")


def _document(fields: Sequence[tuple[str, FieldValue]]) -> str:
    # WeChat separates the top-level elements with newlines and no indentation.
    return "<xml>" + "\n".join(_element(tag, value) for tag, value in fields) + "</xml>"


class FakePusher:
    """Builds the pushes (POST bodies plus query strings) an Official Account server receives.

    ``mode`` is the console's 消息加解密方式: ``plain`` (明文), ``compat`` (兼容) or
    ``safe`` (安全).
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        appid: str,
        original_id: str,
        mode: str = "safe",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if len(encoding_aes_key) != 43:
            raise ValueError("an EncodingAESKey is exactly 43 characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error as exc:
            raise ValueError(f"EncodingAESKey is not base64: {exc}") from exc
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.appid = appid
        self.original_id = original_id
        self.mode = mode
        self._key = key
        self._iv = key[:16]

    # -- plaintext messages ---------------------------------------------------------------------

    def text(
        self,
        openid: str,
        content: str,
        *,
        msg_id: int | None = None,
        create_time: int | None = None,
    ) -> str:
        """A user's text message, as WeChat's plaintext XML."""
        return self.message(openid, "text", msg_id=msg_id, create_time=create_time, Content=content)

    def event(
        self,
        openid: str,
        event: str,
        *,
        create_time: int | None = None,
        **fields: FieldValue,
    ) -> str:
        """An event push (subscribe, SCAN, CLICK, ...): no MsgId; fields keep the order given."""
        head = self._head(openid, "event", create_time)
        return _document([*head, ("Event", event), *fields.items()])

    def message(
        self,
        openid: str,
        msg_type: str,
        *,
        msg_id: int | None = None,
        create_time: int | None = None,
        **fields: FieldValue,
    ) -> str:
        """Any ordinary message (image, voice, location, link, ...); MsgId comes last, as sent."""
        head = self._head(openid, msg_type, create_time)
        msg_id = next(_msg_ids) if msg_id is None else msg_id
        return _document([*head, *fields.items(), ("MsgId", msg_id)])

    def _head(
        self, openid: str, msg_type: str, create_time: int | None
    ) -> list[tuple[str, FieldValue]]:
        return [
            ("ToUserName", self.original_id),
            ("FromUserName", openid),
            ("CreateTime", int(time.time()) if create_time is None else create_time),
            ("MsgType", msg_type),
        ]

    # -- the HTTP request WeChat makes ----------------------------------------------------------

    def request(
        self,
        xml: str,
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
        openid: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Query parameters and body of the POST carrying ``xml`` in this pusher's mode."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = self._nonce() if nonce is None else nonce
        params = {"signature": _sha1_sorted(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}
        if openid is not None:
            params["openid"] = openid
        if self.mode == "plain":
            return params, xml.encode("utf-8")

        encrypt = self.encrypt(xml)
        params["encrypt_type"] = "aes"
        params["msg_signature"] = _sha1_sorted(self.token, ts, nonce, encrypt)
        if self.mode == "safe":
            # The XML itself is never parsed here: tests push hostile documents on purpose.
            body = (
                f"<xml>\n    <ToUserName>{_cdata(self.original_id)}</ToUserName>\n"
                f"    <Encrypt>{_cdata(encrypt)}</Encrypt>\n</xml>"
            )
        else:
            # Compatible mode keeps every plaintext field and appends the ciphertext.
            end = xml.rstrip().rfind("</xml>")
            if end < 0:
                raise ValueError("compat mode needs an <xml>...</xml> document")
            body = f"{xml[:end]}\n<Encrypt>{_cdata(encrypt)}</Encrypt>\n</xml>"
        return params, body.encode("utf-8")

    def verification(
        self,
        echostr: str,
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
    ) -> dict[str, str]:
        """Query parameters of the GET sent when the admin presses "submit" in the console.

        For an Official Account the echostr is plaintext in every mode; only WeCom encrypts it.
        """
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = self._nonce() if nonce is None else nonce
        return {
            "signature": _sha1_sorted(self.token, ts, nonce),
            "echostr": echostr,
            "timestamp": ts,
            "nonce": nonce,
        }

    @staticmethod
    def _nonce() -> str:
        # WeChat's nonces are decimal digit strings, e.g. "1320562132".
        return str(secrets.randbelow(9 * 10**9) + 10**9)

    # -- crypto -----------------------------------------------------------------------------------

    def encrypt(self, xml: str, *, appid: str | None = None) -> str:
        """Base64 ciphertext of ``xml``; ``appid`` forges a message meant for another account."""
        msg = xml.encode("utf-8")
        plain = (
            secrets.token_bytes(_RANDOM_PREFIX)
            + _LENGTH.pack(len(msg))
            + msg
            + (self.appid if appid is None else appid).encode("utf-8")
        )
        pad = _BLOCK - len(plain) % _BLOCK
        plain += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypt: str) -> tuple[str, str]:
        """Plaintext XML and trailing AppID of a ciphertext; AssertionError if it is malformed."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except binascii.Error as exc:
            raise AssertionError(f"Encrypt is not valid base64: {exc}") from exc
        assert raw and len(raw) % 16 == 0, f"ciphertext length {len(raw)} is not a multiple of 16"
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        assert 1 <= pad <= _BLOCK and plain.endswith(bytes([pad]) * pad), (
            "bad PKCS#7 padding (wrong EncodingAESKey, or padded to 16 instead of 32 bytes?)"
        )
        content = plain[_RANDOM_PREFIX:-pad]
        assert len(content) >= _LENGTH.size, "plaintext shorter than its length prefix"
        (length,) = _LENGTH.unpack_from(content)
        body = content[_LENGTH.size :]
        assert length <= len(body), f"length prefix {length} exceeds the {len(body)} bytes left"
        try:
            return body[:length].decode("utf-8"), body[length:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AssertionError(f"decrypted message is not UTF-8: {exc}") from exc

    # -- what WeChat does with our answer ------------------------------------------------------

    def open_reply(
        self,
        body: bytes | str,
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """Check and open our server's passive reply the way WeChat would, returning plaintext.

        Empty and ``success`` come back unchanged. In compat/safe mode an encrypted envelope must
        carry a MsgSignature over (token, TimeStamp, Nonce, Encrypt) and the ciphertext must end in
        our AppID; any violation raises AssertionError, since WeChat would show the user
        "该公众号暂时无法提供服务". ``timestamp``/``nonce`` are used only when the envelope lacks
        its own TimeStamp/Nonce.
        """
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        if text.strip() in ("", "success"):
            return text.strip()
        if self.mode == "plain":
            return text

        root = self._root(text)
        encrypt = root.findtext("Encrypt")
        if encrypt is None:
            assert self.mode == "compat", (
                f"safe mode requires an encrypted reply envelope, got plaintext: {text[:200]!r}"
            )
            return text
        signature = root.findtext("MsgSignature")
        ts = root.findtext("TimeStamp") or timestamp
        env_nonce = root.findtext("Nonce") or nonce
        assert signature, "reply envelope has no MsgSignature"
        assert ts, "reply envelope has no TimeStamp"
        assert env_nonce, "reply envelope has no Nonce"
        expected = _sha1_sorted(self.token, ts.strip(), env_nonce.strip(), encrypt.strip())
        assert signature.strip() == expected, (
            f"MsgSignature mismatch: got {signature.strip()!r}, expected {expected!r} "
            "(sha1 of sorted token, TimeStamp, Nonce, Encrypt)"
        )
        xml, appid = self.decrypt(encrypt.strip())
        assert appid == self.appid, f"reply encrypted for AppID {appid!r}, expected {self.appid!r}"
        return xml

    @staticmethod
    def _root(xml: str) -> ET.Element:
        try:
            return defused.fromstring(xml)
        except ET.ParseError as exc:
            raise AssertionError(f"not well-formed XML ({exc}): {xml[:200]!r}") from exc

    @staticmethod
    def parse(xml: str) -> dict[str, str]:
        """Top-level elements of a plaintext message or reply; nested ones map to ""."""
        root = FakePusher._root(xml)
        return {child.tag: "" if len(child) else (child.text or "") for child in root}
