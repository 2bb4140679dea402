"""The ledger's text formats: signed notes, checkpoints, witness cosignatures and offline proofs.

These are the C2SP formats every transparency-log tool speaks (c2sp.org/signed-note,
tlog-checkpoint, tlog-cosignature v1, tlog-proof@v1), so the province log's checkpoints can be
checked by a city node, by a third-party witness or by the Go tooling without anything of ours.
Everything here is a pure function over bytes; storage and HTTP live elsewhere.

A signed note is UTF-8 text ending in a newline, a blank line, then one line per signature::

    <text>

    — <key name> base64(key ID (4 bytes) || signature)

The key ID is ``SHA-256(name || "\\n" || type || public key)[:4]``. Two signature types are
implemented, both Ed25519: ``0x01`` (plain note signatures: the province log signs its checkpoints
with one) and ``0x04`` (timestamped cosignatures over a checkpoint: the city nodes' witness
statement). Keys travel as text: a verifier key is ``name+hex(key ID)+base64(type || public key)``,
a signer key is ``PRIVATE+KEY+name+hex(key ID)+base64(type || seed)`` as Go's sumdb/note writes it.

Verification follows the spec: signatures from keys we do not know are ignored (a note may carry
cosignatures from witnesses outside our policy, or a rotated key's line), a signature line whose
name and key ID match a known key must verify or the whole note is refused, and a note with no
verified signature is refused. At most 100 signature lines are read (the spec asks for at least
16). Base64 must be canonical (what every encoder writes), so a line has one spelling only.

SM2 is not implemented: ``cryptography`` has no SM2 and the spec has no byte for it. The spec
reserves type ``0xff`` for such cases, followed by a longer identifier of our own, so an SM2 line
would be keyed as ``SHA-256(name || "\\n" || 0xff || identifier || public key)[:4]`` and its vkey's
key material would start with the same bytes. Because verifiers ignore signatures from keys they
were not configured with, an SM2 line can later be added beside the Ed25519 one without breaking
any existing reader; adding it is additive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
KINDS = (ED25519, COSIGNATURE_V1)

MAX_SIGNATURES = 100  # Go's sumdb/note limit; the spec requires accepting at least 16
MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: the u64 timestamp must not exceed this
MAX_PROOF_HASHES = 64  # an inclusion path in a tree of fewer than 2^64 leaves

PROOF_HEADER = b"c2sp.org/tlog-proof@v1"
_COSIGNATURE_HEADER = b"cosignature/v1\n"
_SIG_PREFIX = "— "  # U+2014 EM DASH, space
_KEY_ID_LEN = 4
_ED25519_LEN = 32
_COSIG_LEN = 8 + 64  # u64 timestamp || Ed25519 signature
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)  # no sign, no leading zeros, no other digits
_HEX8 = re.compile(r"[0-9a-f]{8}", re.ASCII)
_CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f]")  # ASCII control characters other than "\n"


class NoteError(ValueError):
    """A note, key, checkpoint or proof that cannot be accepted; ``code`` says why, for the caller
    to map (a witness answers 400 for ``malformed``, 403 for ``unknown_key`` / ``bad_signature``)."""

    code = "malformed"
    message = "签名文本格式不正确"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        if code:
            self.code = code


class MalformedNote(NoteError):
    code = "malformed"
    message = "签名文本格式不正确"


class UnknownKey(NoteError):
    code = "unknown_key"
    message = "没有来自可信密钥的有效签名"


class BadSignature(NoteError):
    code = "bad_signature"
    message = "签名验证未通过"

    def __init__(self, name: str, key_id: bytes) -> None:
        super().__init__(f"密钥 {name}+{key_id.hex()} 的签名验证未通过")
        self.name = name
        self.key_id = key_id


def _b64decode(text: str | bytes, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedNote(f"{what}不是有效的 Base64") from None
    expected = text.encode("ascii") if isinstance(text, str) else text
    if base64.b64encode(raw) != expected:
        raise MalformedNote(f"{what}的 Base64 写法不规范")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def valid_name(name: str) -> bool:
    """A key name: non-empty, no Unicode space, no "+", no ASCII control character."""
    return (bool(name) and "+" not in name and not any(c.isspace() for c in name)
            and not any(ord(c) < 0x20 for c in name))


def _check_text(text: bytes, what: str) -> str:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedNote(f"{what}不是有效的 UTF-8") from None
    if _CONTROL.search(text):
        raise MalformedNote(f"{what}含有控制字符")
    return decoded


def compute_key_id(name: str, kind: int, public: bytes) -> bytes:
    """The 4-byte key ID: ``SHA-256(name || "\\n" || kind || public)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([kind]) + public).digest()[:_KEY_ID_LEN]


def _check_timestamp(timestamp: int) -> None:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("cosignature timestamp out of range")


def cosignature_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    """What a v1 Ed25519 cosignature signs: the header and time lines, then the checkpoint body."""
    _check_timestamp(timestamp)
    return _COSIGNATURE_HEADER + b"time %d\n" % timestamp + checkpoint_body


@dataclass(frozen=True)
class Verifier:
    """A public key as configured in a policy: the log's key or a witness's cosigning key."""

    name: str
    key_id: bytes
    kind: int
    public: bytes

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise MalformedNote("密钥名称不合法")
        if self.kind not in KINDS:
            raise MalformedNote("不支持的签名类型")
        if len(self.public) != _ED25519_LEN:
            raise MalformedNote("公钥长度不正确")
        if self.key_id != compute_key_id(self.name, self.kind, self.public):
            raise MalformedNote("密钥编号与公钥不符")
        try:
            Ed25519PublicKey.from_public_bytes(self.public)
        except ValueError:
            raise MalformedNote("公钥无效") from None

    @classmethod
    def from_public_key(cls, name: str, public: bytes, kind: int = ED25519) -> Verifier:
        return cls(name, compute_key_id(name, kind, public), kind, public)

    def vkey(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([self.kind]) + self.public)}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Read ``name+hex8+base64(type || public key)``; any deviation raises MalformedNote."""
        name, _, rest = vkey.partition("+")
        hex8, _, material = rest.partition("+")
        if not _HEX8.fullmatch(hex8) or not material:
            raise MalformedNote("验证密钥格式不正确")
        raw = _b64decode(material, "验证密钥")
        if not raw:
            raise MalformedNote("验证密钥格式不正确")
        return cls(name, bytes.fromhex(hex8), raw[0], raw[1:])

    def verify(self, message: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (the bytes after the key ID) signs ``message``, which is the note text.

        For a cosignature key ``sig`` is ``u64 timestamp || signature`` and the signed message is
        built here from the timestamp and the checkpoint body, so callers treat both kinds alike."""
        if self.kind == COSIGNATURE_V1:
            if len(sig) != _COSIG_LEN:
                return False
            timestamp = int.from_bytes(sig[:8], "big")
            if timestamp > MAX_TIMESTAMP:
                return False
            message, sig = cosignature_message(message, timestamp), sig[8:]
        if len(sig) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(sig, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private key with its name: the province log's checkpoint key or a city node's witness key."""

    name: str
    key_id: bytes
    kind: int
    private: Ed25519PrivateKey = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise MalformedNote("密钥名称不合法")
        if self.kind not in KINDS:
            raise MalformedNote("不支持的签名类型")
        if self.key_id != compute_key_id(self.name, self.kind, self._public()):
            raise MalformedNote("密钥编号与私钥不符")

    def _public(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    @classmethod
    def generate(cls, name: str, kind: int = ED25519) -> Signer:
        private = Ed25519PrivateKey.generate()
        return cls(name, compute_key_id(name, kind, private.public_key().public_bytes_raw()), kind, private)

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Read Go's ``PRIVATE+KEY+name+hex8+base64(type || seed)``; the key ID is checked against
        the public key derived from the seed."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise MalformedNote("签名密钥格式不正确")
        name, hex8, material = parts[2], parts[3], parts[4]
        if not _HEX8.fullmatch(hex8) or not material:
            raise MalformedNote("签名密钥格式不正确")
        raw = _b64decode(material, "签名密钥")
        if len(raw) != 1 + _ED25519_LEN:
            raise MalformedNote("签名密钥长度不正确")
        return cls(name, bytes.fromhex(hex8), raw[0], Ed25519PrivateKey.from_private_bytes(raw[1:]))

    def skey(self) -> str:
        seed = self.private.private_bytes_raw()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{_b64(bytes([self.kind]) + seed)}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.kind, self._public())

    def sign(self, body: bytes, *, timestamp: int | None = None) -> bytes:
        """The signature bytes (without the key ID) over the note text ``body``.

        A cosignature key needs ``timestamp`` (unix seconds) and returns ``u64 timestamp || sig``;
        it only signs checkpoint bodies, so it cannot be made to vouch for anything else."""
        if self.kind == COSIGNATURE_V1:
            if timestamp is None:
                raise ValueError("a cosignature needs a timestamp")
            _check_timestamp(timestamp)
            Checkpoint.parse(body)
            return timestamp.to_bytes(8, "big") + self.private.sign(cosignature_message(body, timestamp))
        if timestamp is not None:
            raise ValueError("only cosignatures carry a timestamp")
        return self.private.sign(body)


@dataclass(frozen=True)
class Signature:
    """One signature line: ``sig`` is the signature proper, after the 4-byte key ID."""

    name: str
    key_id: bytes
    sig: bytes

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise MalformedNote("签名行的密钥名称不合法")
        if len(self.key_id) != _KEY_ID_LEN or not self.sig:
            raise MalformedNote("签名行格式不正确")

    def line(self) -> str:
        """The signature line without its final newline (a note ends every line with one)."""
        return f"{_SIG_PREFIX}{self.name} {_b64(self.key_id + self.sig)}"

    @classmethod
    def parse_line(cls, line: str) -> Signature:
        """Read one signature line, with or without its final newline."""
        line = line.removesuffix("\n")
        if not line.startswith(_SIG_PREFIX) or "\n" in line:
            raise MalformedNote("签名行格式不正确")
        name, _, encoded = line[len(_SIG_PREFIX):].partition(" ")
        if not valid_name(name) or not encoded:
            raise MalformedNote("签名行格式不正确")
        raw = _b64decode(encoded, "签名行")
        if len(raw) <= _KEY_ID_LEN:
            raise MalformedNote("签名行格式不正确")
        return cls(name, raw[:_KEY_ID_LEN], raw[_KEY_ID_LEN:])

    def matches(self, verifier: Verifier) -> bool:
        return self.name == verifier.name and self.key_id == verifier.key_id


def parse_signature_lines(data: bytes) -> tuple[Signature, ...]:
    """Signature lines on their own, each ending in a newline (a witness's answer to
    add-checkpoint); exact repeats are dropped."""
    if not data or not data.endswith(b"\n"):
        raise MalformedNote("签名行格式不正确")
    lines = _check_text(data, "签名行").split("\n")[:-1]
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"签名数量超过上限（{MAX_SIGNATURES}）")
    return tuple(dict.fromkeys(Signature.parse_line(line) for line in lines))


@dataclass(frozen=True)
class Note:
    """A note's text (ending in its newline, without the blank separator line) and its
    signatures in order."""

    text: bytes
    signatures: tuple[Signature, ...]

    def __post_init__(self) -> None:
        _check_text(self.text, "签名文本")
        if not self.text.endswith(b"\n"):
            raise MalformedNote("签名文本必须以换行结尾")
        if len(self.signatures) > MAX_SIGNATURES:
            raise MalformedNote(f"签名数量超过上限（{MAX_SIGNATURES}）")

    def encode(self) -> bytes:
        if not self.signatures:
            raise MalformedNote("签名文本没有签名")
        return self.text + b"\n" + "".join(s.line() + "\n" for s in self.signatures).encode("utf-8")


def parse_note(data: bytes) -> Note:
    """Split a signed note into text and signature lines without checking any signature.

    The text ends at the last blank line; every line after it must be a signature line.
    Identical repeated lines are kept once (they still count towards the limit)."""
    decoded = _check_text(data, "签名文本")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise MalformedNote("签名文本缺少签名")
    block = decoded[split + 2:]
    if not block or not block.endswith("\n"):
        raise MalformedNote("签名文本缺少签名或未以换行结尾")
    lines = block.split("\n")[:-1]
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"签名数量超过上限（{MAX_SIGNATURES}）")
    signatures = tuple(dict.fromkeys(Signature.parse_line(line) for line in lines))
    return Note(decoded[:split + 1].encode("utf-8"), signatures)


def _sign(signer: Signer, text: bytes, timestamp: int | None) -> bytes:
    return signer.sign(text, timestamp=timestamp if signer.kind == COSIGNATURE_V1 else None)


def sign_note(text: bytes, *signers: Signer, timestamp: int | None = None) -> bytes:
    """Sign ``text`` with each signer, in order; ``timestamp`` is used by cosignature keys only."""
    if not signers:
        raise ValueError("at least one signer is needed")
    note = Note(text, ())
    signatures = tuple(
        Signature(s.name, s.key_id, _sign(s, note.text, timestamp))
        for s in signers)
    return Note(note.text, signatures).encode()


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        held = known.setdefault((v.name, v.key_id), v)
        if held != v:
            # Two different keys under one name and ID: a broken policy, never something to guess about.
            raise NoteError(f"密钥 {v.name}+{v.key_id.hex()} 配置重复", code="ambiguous_key")
    return known


def verify_note(data: bytes, verifiers: Iterable[Verifier]) -> tuple[Note, list[Verifier]]:
    """Parse a signed note and check every signature made by a known key.

    Returns the note (all its signature lines, known or not) and the verifiers whose signature
    verified, in the order their lines appear. Raises MalformedNote for a note that does not parse,
    BadSignature when a known key's line does not verify, UnknownKey when no known key signed."""
    known = _index(verifiers)
    note = parse_note(data)
    verified: list[Verifier] = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(note.text, sig.sig):
            raise BadSignature(sig.name, sig.key_id)
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        raise UnknownKey()
    return note, verified


def add_signatures(note: bytes, lines: Iterable[Signature]) -> bytes:
    """The note with the given lines appended, skipping any whose key (name and ID) already signed.

    Nothing is verified here: check cosignatures with their witness's Verifier first."""
    parsed = parse_note(note)
    have = {(s.name, s.key_id) for s in parsed.signatures}
    merged = list(parsed.signatures)
    for sig in lines:
        if (sig.name, sig.key_id) not in have:
            have.add((sig.name, sig.key_id))
            merged.append(sig)
    return Note(parsed.text, tuple(merged)).encode()


def cosignature_time(sig: Signature) -> int:
    """The unix time a v1 Ed25519 cosignature line states (unverified until checked)."""
    if len(sig.sig) != _COSIG_LEN:
        raise MalformedNote("不是见证联署签名")
    timestamp = int.from_bytes(sig.sig[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedNote("联署签名的时间超出范围")
    return timestamp


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head as a note text: origin, tree size, base64 RFC 6962 root, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or _CONTROL.search(self.origin.encode("utf-8")) or "\n" in self.origin:
            raise MalformedNote("检查点的来源标识不合法")
        if not 0 <= self.size < 2**64:
            raise MalformedNote("检查点的树大小超出范围")
        if len(self.root) != 32:
            raise MalformedNote("检查点的根哈希长度不正确")
        for line in self.extensions:
            if not line or "\n" in line or _CONTROL.search(line.encode("utf-8")):
                raise MalformedNote("检查点的扩展行不合法")

    def body(self) -> bytes:
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def parse(cls, text: bytes) -> Checkpoint:
        """Read a checkpoint note text (not the signed note: pass ``parse_note(...).text``)."""
        decoded = _check_text(text, "检查点")
        if not decoded.endswith("\n"):
            raise MalformedNote("检查点必须以换行结尾")
        lines = decoded[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedNote("检查点至少需要三行")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise MalformedNote("检查点的树大小不是规范的十进制数")
        return cls(origin, int(size), _b64decode(root, "检查点的根哈希"), tuple(extensions))


@dataclass(frozen=True)
class Proof:
    """An offline receipt (c2sp.org/tlog-proof@v1): a leaf index, its inclusion path from the
    leaf's sibling up, and the signed (usually cosigned) checkpoint it leads to.

    ``extra`` is unauthenticated application data; never trust it without recomputing the leaf."""

    index: int
    path: tuple[bytes, ...]
    checkpoint: bytes
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if self.index < 0:
            raise MalformedNote("证明的序号不合法")
        if len(self.path) > MAX_PROOF_HASHES or any(len(h) != 32 for h in self.path):
            raise MalformedNote("证明的路径不合法")
        note = parse_note(self.checkpoint)
        if self.index >= Checkpoint.parse(note.text).size:
            raise MalformedNote("证明的序号超出检查点的树大小")

    def encode(self) -> bytes:
        head = [PROOF_HEADER.decode("ascii")]
        if self.extra is not None:
            head.append(f"extra {_b64(self.extra)}")
        head.append(f"index {self.index}")
        head.extend(_b64(h) for h in self.path)
        return ("\n".join(head) + "\n\n").encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, data: bytes) -> Proof:
        header, sep, checkpoint = data.partition(b"\n\n")
        if not sep:
            raise MalformedNote("证明缺少检查点")
        try:
            lines = header.decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise MalformedNote("证明格式不正确") from None
        if lines[0] != PROOF_HEADER.decode("ascii") or len(lines) < 2:
            raise MalformedNote("证明的首行不正确")
        rest = lines[1:]
        extra = None
        if rest[0].startswith("extra "):
            extra = _b64decode(rest[0][len("extra "):], "证明的附加数据")
            rest = rest[1:]
        if not rest or not rest[0].startswith("index ") or not _DECIMAL.fullmatch(rest[0][len("index "):]):
            raise MalformedNote("证明的序号行不正确")
        index = int(rest[0][len("index "):])
        hashes = rest[1:]
        if len(hashes) > MAX_PROOF_HASHES:
            raise MalformedNote("证明的路径过长")
        path = tuple(_b64decode(h, "证明的路径哈希") for h in hashes)
        return cls(index, path, checkpoint, extra)
