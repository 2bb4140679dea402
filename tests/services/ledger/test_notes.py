"""Signed notes, checkpoints, cosignatures and tlog proofs against published vectors.

Sources: Go's golang.org/x/mod sumdb/note/note_test.go (the PeterNeumann and EnochRoot keys and
notes), the C2SP specs signed-note.md, tlog-checkpoint.md, tlog-cosignature.md and tlog-proof.md
(C2SP/C2SP at 5ba5ee8), transparency-dev/formats note/note_cosigv1_test.go (a native cosignature
vkey and cosignature timestamps) and RFC 8032 section 7.1 test 1 (an Ed25519 key and signature).
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wxbackend.services.ledger.notes import (
    COSIGNATURE_V1,
    ED25519,
    MAX_SIGNATURES,
    BadSignature,
    Checkpoint,
    MalformedNote,
    Note,
    NoteError,
    Proof,
    Signature,
    Signer,
    UnknownKey,
    Verifier,
    add_signatures,
    cosignature_message,
    cosignature_time,
    parse_note,
    parse_signature_lines,
    sign_note,
    verify_note,
)

# golang.org/x/mod/sumdb/note/note_test.go
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = ("— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq"
             "fqdngotpRZb6KE6RyyBwJnAM=\n")
ENOCH_SIG = ("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWL"
             "ox33WWd1RvMc+QQ=\n")

# c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature examples
SOFA_BODY = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_LOG_SIG = ("— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
                "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n")
SOFA_WITNESS_SIG = ("— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dl"
                    "rDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n")
SOFA_COSIGNED_MESSAGE = (b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
                         b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")

# RFC 8032 section 7.1, test 1
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


@pytest.fixture
def peter() -> Verifier:
    return Verifier.parse(PETER_VKEY)


@pytest.fixture
def enoch() -> Verifier:
    return Verifier.parse(ENOCH_VKEY)


def sig_of(line: str) -> Signature:
    return Signature.parse_line(line)


# --- keys -------------------------------------------------------------------------------------

def test_go_vkeys_parse_and_print_back(peter: Verifier, enoch: Verifier) -> None:
    assert (peter.name, peter.key_id.hex(), peter.kind) == ("PeterNeumann", "c74f20a3", ED25519)
    assert (enoch.name, enoch.key_id.hex(), enoch.kind) == ("EnochRoot", "af0cfe78", ED25519)
    assert peter.vkey() == PETER_VKEY and enoch.vkey() == ENOCH_VKEY


def test_go_skey_matches_its_vkey_and_prints_back() -> None:
    signer = Signer.parse(PETER_SKEY)
    assert signer.verifier() == Verifier.parse(PETER_VKEY)
    assert signer.skey() == PETER_SKEY
    assert "AYEKFALV" not in repr(signer)  # the seed stays out of logs


def _manglings(key: str) -> list[str]:
    """Every proper substring and every one-byte increment, as Go's TestNewVerifier/TestNewSigner."""
    raw = key.encode("ascii")
    n = len(raw)
    out = [raw[i:j] for i in range(n + 1) for j in range(i + 1, n + 1) if (i, j) != (0, n)]
    out += [raw[:i] + bytes([raw[i] + 1]) + raw[i + 1:] for i in range(len(raw))]
    return [m.decode("ascii") for m in out]


def test_go_vkey_manglings_are_refused() -> None:
    for bad in _manglings(PETER_VKEY):
        with pytest.raises(MalformedNote):
            Verifier.parse(bad)
    # Wrong key length and an unknown algorithm byte, each with a key ID recomputed to match.
    for bad in ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"):
        with pytest.raises(MalformedNote):
            Verifier.parse(bad)


def test_go_skey_manglings_are_refused() -> None:
    for bad in _manglings(PETER_SKEY):
        with pytest.raises(MalformedNote):
            Signer.parse(bad)


def test_key_id_mismatch_is_refused() -> None:
    with pytest.raises(MalformedNote, match="密钥编号"):
        Verifier.parse(PETER_VKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(MalformedNote, match="密钥编号"):
        Signer.parse(PETER_SKEY.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(MalformedNote):  # the spec writes key IDs in lowercase hex
        Verifier.parse(PETER_VKEY.replace("c74f20a3", "C74F20A3"))


def test_transparency_dev_vkeys() -> None:
    native = Verifier.parse("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
    assert native.kind == COSIGNATURE_V1
    assert native.vkey() == "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    assert Verifier.parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").kind == ED25519
    for bad in ("bananas.sigstore.dev+12344556", "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
                "rekor.sigstore.dev+12345678+AwEB"):
        with pytest.raises(MalformedNote):
            Verifier.parse(bad)


def test_rfc8032_vector_through_a_verifier() -> None:
    v = Verifier.from_public_key("rfc8032.example", RFC8032_PUBLIC)
    assert v.verify(b"", RFC8032_SIG)
    assert not v.verify(b"\x00", RFC8032_SIG)
    assert not v.verify(b"", RFC8032_SIG[:-1] + bytes([RFC8032_SIG[-1] ^ 1]))
    assert not v.verify(b"", RFC8032_SIG[:-1])
    signer = Signer.parse(f"PRIVATE+KEY+rfc8032.example+{v.key_id.hex()}+"
                          + base64.b64encode(b"\x01" + RFC8032_SEED).decode())
    assert signer.sign(b"") == RFC8032_SIG


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u3000b", "a\tb", "a\nb", "a\x01b", "\x00"])
def test_bad_key_names_are_refused(name: str) -> None:
    with pytest.raises(MalformedNote):
        Signer.generate(name)
    with pytest.raises(MalformedNote):
        Verifier.from_public_key(name, RFC8032_PUBLIC)


@pytest.mark.parametrize("kind", [ED25519, COSIGNATURE_V1])
def test_generated_keys_round_trip(kind: int) -> None:
    signer = Signer.generate("sc.example/成都", kind)
    assert Signer.parse(signer.skey()) == signer
    assert Signer.parse(signer.skey()).skey() == signer.skey()
    assert Verifier.parse(signer.verifier().vkey()) == signer.verifier()
    assert base64.b64decode(signer.skey().split("+", 4)[4])[0] == kind


def test_unsupported_kind_is_refused() -> None:
    with pytest.raises(MalformedNote, match="不支持"):
        Signer.generate("sc.example/log", 0xFF)


# --- signed notes -----------------------------------------------------------------------------

def test_sign_reproduces_go_note(peter: Verifier) -> None:
    note = sign_note(TEXT.encode(), Signer.parse(PETER_SKEY))
    assert note == (TEXT + "\n" + PETER_SIG).encode()
    parsed, verified = verify_note(note, [peter])
    assert parsed.text == TEXT.encode() and verified == [peter]


def test_signed_note_spec_example() -> None:
    v = Verifier.parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
    note = ("This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2O"
            "NncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n").encode()
    parsed, verified = verify_note(note, [v])
    assert verified == [v] and parsed.text == b"This is an example message.\n"
    assert parsed.encode() == note
    with pytest.raises(BadSignature):
        verify_note(note.replace(b"example message", b"example massage"), [v])


def test_text_is_split_at_the_last_blank_line() -> None:
    text = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    poem = (text + "\n— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJK"
            "ONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n").encode()
    note = parse_note(poem)
    assert note.text == text.encode()
    assert [(s.name, s.key_id.hex()) for s in note.signatures] == [
        ("quasimodo.example/salvatore", "367ba04b")]
    assert note.encode() == poem
    with pytest.raises(UnknownKey) as info:
        verify_note(poem, [Verifier.parse(PETER_VKEY)])
    assert info.value.code == "unknown_key"


def test_go_open_one_known_one_unknown(peter: Verifier, enoch: Verifier) -> None:
    data = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    note, verified = verify_note(data, [peter])
    assert verified == [peter]
    assert note.signatures == (sig_of(PETER_SIG), sig_of(ENOCH_SIG))  # the unknown line is kept, not trusted
    note, verified = verify_note(data, [enoch, peter])
    assert verified == [peter, enoch]
    with pytest.raises(UnknownKey):
        verify_note(data, [])


def test_go_open_duplicated_lines(peter: Verifier) -> None:
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    data = (TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd).encode()
    note, verified = verify_note(data, [peter])
    assert verified == [peter]
    assert note.signatures == (sig_of(PETER_SIG), sig_of(ENOCH_SIG), sig_of(enoch_abcd))


def test_duplicated_verifier_is_harmless_but_a_colliding_one_is_not(peter: Verifier, enoch: Verifier) -> None:
    _, verified = verify_note((TEXT + "\n" + PETER_SIG).encode(), [enoch, peter, enoch])
    assert verified == [peter]
    impostor = Verifier.__new__(Verifier)  # same name and ID, other key: only a broken policy has this
    object.__setattr__(impostor, "name", peter.name)
    object.__setattr__(impostor, "key_id", peter.key_id)
    object.__setattr__(impostor, "kind", ED25519)
    object.__setattr__(impostor, "public", enoch.public)
    with pytest.raises(NoteError) as info:
        verify_note((TEXT + "\n" + PETER_SIG).encode(), [peter, impostor])
    assert info.value.code == "ambiguous_key"


def test_go_open_invalid_signature_is_refused(peter: Verifier) -> None:
    data = (TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]).encode()
    with pytest.raises(BadSignature) as info:
        verify_note(data, [peter])
    assert info.value.code == "bad_signature" and info.value.key_id.hex() == "c74f20a3"
    assert "PeterNeumann+c74f20a3" in str(info.value)
    # A bad line from a known key spoils the note even when another line of that key verifies.
    with pytest.raises(BadSignature):
        verify_note((TEXT + "\n" + PETER_SIG).encode() + data.split(b"\n\n")[1], [peter])


def test_unknown_keys_sharing_only_name_or_only_id_are_ignored(peter: Verifier) -> None:
    misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    wrong_id = PETER_SIG.replace("x08g", "xxxx")
    for line in (misnamed, wrong_id):
        with pytest.raises(UnknownKey):
            verify_note((TEXT + "\n" + line).encode(), [peter])
    note, verified = verify_note((TEXT + "\n" + misnamed + wrong_id + PETER_SIG).encode(), [peter])
    assert verified == [peter] and len(note.signatures) == 3


@pytest.mark.parametrize("data", [
    TEXT,                                                   # no signature block
    TEXT + "\n",                                            # empty signature block
    TEXT + "\n" + PETER_SIG[:-1],                           # last line without its newline
    "\x01" + TEXT + "\n" + PETER_SIG,                       # control character
    TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,       # carriage return
    TEXT + "\t\n" + PETER_SIG,                              # tab
    TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
    TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    TEXT + "\n" + PETER_SIG.replace("—", "-"),              # hyphen instead of U+2014
    TEXT + "\n" + PETER_SIG.replace(" x08g", "  x08g"),     # two spaces
    TEXT + "\n" + "— PeterNeumann \n",                      # empty signature
    TEXT + "\n" + "— PeterNeumann x08gow==\n",              # a key ID and no signature
    TEXT + "\n" + "— PeterNeumann x08go/Z=\n",              # non-canonical base64
    TEXT + "\n" + PETER_SIG.replace("AM=", "AM"),           # missing padding
    TEXT + "\n" + PETER_SIG + "\n",                         # blank line after the signatures
])
def test_go_malformed_notes_are_refused(peter: Verifier, data: str) -> None:
    with pytest.raises(MalformedNote) as info:
        verify_note(data.encode(), [peter])
    assert info.value.code == "malformed"


def test_non_utf8_is_refused(peter: Verifier) -> None:
    good = (TEXT + "\n" + PETER_SIG).encode()
    for data in (b"\xff" + good, good[:-2] + b"\xc3\n", good.replace(b"you", b"\xed\xa0\x80", 1)):
        with pytest.raises(MalformedNote, match="UTF-8"):
            verify_note(data, [peter])


def test_signature_count_limit(peter: Verifier) -> None:
    for known in ([peter], []):
        with pytest.raises(MalformedNote, match="上限"):
            verify_note((TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1)).encode(), known)
    others = [Signer.generate(f"witness{i}.example") for i in range(MAX_SIGNATURES)]
    note = add_signatures((TEXT + "\n" + PETER_SIG).encode(),
                          [Signature(s.name, s.key_id, s.sign(TEXT.encode())) for s in others[:-1]])
    parsed, verified = verify_note(note, [peter, *(s.verifier() for s in others[:16])])
    assert len(parsed.signatures) == MAX_SIGNATURES and len(verified) == 17
    with pytest.raises(MalformedNote):
        add_signatures(note, [Signature(others[-1].name, others[-1].key_id, others[-1].sign(TEXT.encode()))])


def test_sign_note_refuses_bad_text() -> None:
    signer = Signer.parse(PETER_SKEY)
    for text in (b"abc", b"", b"a\x00b\n", b"\xff\n"):
        with pytest.raises(MalformedNote):
            sign_note(text, signer)
    with pytest.raises(ValueError):
        sign_note(TEXT.encode())


def test_generate_sign_verify_round_trip() -> None:
    log, other = Signer.generate("sc.example/ledger"), Signer.generate("sc.example/ledger")
    note = sign_note("四川省总工会\n".encode(), log)
    assert verify_note(note, [log.verifier()])[1] == [log.verifier()]
    assert log.key_id != other.key_id or log.verifier() != other.verifier()
    with pytest.raises((BadSignature, UnknownKey)):
        verify_note(note, [other.verifier()])


def test_note_and_signature_lines_round_trip() -> None:
    data = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    note = parse_note(data)
    assert note.encode() == data
    assert "".join(s.line() + "\n" for s in note.signatures) == PETER_SIG + ENOCH_SIG
    assert parse_signature_lines((PETER_SIG + ENOCH_SIG + PETER_SIG).encode()) == note.signatures
    with pytest.raises(MalformedNote):
        parse_signature_lines(PETER_SIG[:-1].encode())
    with pytest.raises(MalformedNote, match="上限"):
        parse_signature_lines((PETER_SIG * (MAX_SIGNATURES + 1)).encode())
    with pytest.raises(MalformedNote):
        Note(TEXT.encode(), ()).encode()


# --- checkpoints ------------------------------------------------------------------------------

def test_checkpoint_spec_example() -> None:
    cp = Checkpoint.parse(parse_note(SOFA_BODY + b"\n" + SOFA_LOG_SIG.encode()).text)
    assert cp.origin == "example.com/behind-the-sofa" and cp.size == 20852163
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=") and cp.extensions == ()
    assert cp.body() == SOFA_BODY
    assert sig_of(SOFA_LOG_SIG).key_id.hex() == "033de0ae"


def test_checkpoint_extension_lines_are_kept() -> None:
    text = SOFA_BODY + b"Extendo\nanother line\n"
    cp = Checkpoint.parse(text)
    assert cp.extensions == ("Extendo", "another line") and cp.body() == text
    assert Checkpoint.parse(b"example.com/empty\n0\n" + base64.b64encode(bytes(32)) + b"\n").size == 0


@pytest.mark.parametrize("text", [
    SOFA_BODY[:-1],                                          # no final newline
    SOFA_BODY.replace(b"20852163", b"020852163"),            # leading zero
    SOFA_BODY.replace(b"20852163", b"+20852163"),
    SOFA_BODY.replace(b"20852163", b"2085_2163"),
    SOFA_BODY.replace(b"20852163", "٢٠".encode()),          # non-ASCII digits
    SOFA_BODY.replace(b"20852163", b"18446744073709551616"),  # 2^64
    SOFA_BODY.replace(b"20852163\n", b""),                   # two lines
    SOFA_BODY.replace(b"example.com/behind-the-sofa", b""),  # empty origin
    SOFA_BODY.replace(b"I=\n", b"=\n"),                      # 31-byte root
    SOFA_BODY.replace(b"2I=", b"2J="),                       # non-canonical base64
    SOFA_BODY + b"\n",                                       # empty extension line
    SOFA_BODY + b"ext\r\n",
])
def test_malformed_checkpoints_are_refused(text: bytes) -> None:
    with pytest.raises(MalformedNote):
        Checkpoint.parse(text)


# --- cosignatures -----------------------------------------------------------------------------

def test_cosignature_message_is_the_spec_example() -> None:
    assert cosignature_message(SOFA_BODY, 1679315147) == SOFA_COSIGNED_MESSAGE
    for bad in (-1, 2**63):
        with pytest.raises(ValueError):
            cosignature_message(SOFA_BODY, bad)


def test_cosignature_times() -> None:
    spec = sig_of(SOFA_WITNESS_SIG)
    assert spec.key_id.hex() == "8d66cf3f" and cosignature_time(spec) == 1679315147
    td = base64.b64decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5g"
                          "xEHWWOworDcFiEBYJXORmnFBOBA==")
    assert cosignature_time(Signature("w", td[:4], td[4:])) == 1727964367
    plain = base64.b64decode("eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+M"
                             "UMLXpWs1hPb/W/4xkNQY=")
    with pytest.raises(MalformedNote):
        cosignature_time(Signature("w", plain[:4], plain[4:]))
    with pytest.raises(MalformedNote):
        cosignature_time(Signature("w", b"\0" * 4, b"\x80" + bytes(71)))


def _rfc8032_cosigner() -> Signer:
    private = Ed25519PrivateKey.from_private_bytes(RFC8032_SEED)
    verifier = Verifier.from_public_key("witness.example.com/w1", RFC8032_PUBLIC, COSIGNATURE_V1)
    return Signer(verifier.name, verifier.key_id, COSIGNATURE_V1, private)


def test_cosignature_signs_the_spec_message() -> None:
    cosigner = _rfc8032_cosigner()
    # Built straight from the spec's literal message, independently of cosignature_message.
    expected = (1679315147).to_bytes(8, "big") + Ed25519PrivateKey.from_private_bytes(RFC8032_SEED).sign(
        SOFA_COSIGNED_MESSAGE)
    assert cosigner.sign(SOFA_BODY, timestamp=1679315147) == expected
    line = Signature(cosigner.name, cosigner.key_id, expected)
    note = SOFA_BODY + b"\n" + SOFA_LOG_SIG.encode() + (line.line() + "\n").encode()
    parsed, verified = verify_note(note, [cosigner.verifier()])
    assert verified == [cosigner.verifier()] and cosignature_time(parsed.signatures[1]) == 1679315147


def test_two_cosignatures_of_one_witness_count_once() -> None:
    cosigner = _rfc8032_cosigner()
    lines = [Signature(cosigner.name, cosigner.key_id, cosigner.sign(SOFA_BODY, timestamp=t)).line() + "\n"
             for t in (1679315147, 1679315200)]
    note, verified = verify_note(SOFA_BODY + b"\n" + "".join(lines).encode(), [cosigner.verifier()])
    assert verified == [cosigner.verifier()] and len(note.signatures) == 2


def test_altered_cosignature_timestamp_is_refused() -> None:
    cosigner = _rfc8032_cosigner()
    good = cosigner.sign(SOFA_BODY, timestamp=1679315147)
    for ts in (1679315148, 0):
        forged = Signature(cosigner.name, cosigner.key_id, ts.to_bytes(8, "big") + good[8:])
        with pytest.raises(BadSignature):
            verify_note(SOFA_BODY + b"\n" + (forged.line() + "\n").encode(), [cosigner.verifier()])
    assert not cosigner.verifier().verify(SOFA_BODY, good[8:])  # a bare signature without its time
    assert not cosigner.verifier().verify(SOFA_BODY, b"\xff" * 8 + good[8:])


def test_cosignature_and_plain_keys_do_not_mix() -> None:
    private = Ed25519PrivateKey.from_private_bytes(RFC8032_SEED)
    plain_id = Verifier.from_public_key("w.example", RFC8032_PUBLIC, ED25519).key_id
    cosig_id = Verifier.from_public_key("w.example", RFC8032_PUBLIC, COSIGNATURE_V1).key_id
    plain = Signer("w.example", plain_id, ED25519, private)
    cosigner = Signer("w.example", cosig_id, COSIGNATURE_V1, private)
    assert plain.key_id != cosigner.key_id  # the type byte keeps one key's two uses apart
    note = sign_note(SOFA_BODY, cosigner, timestamp=1700000000)
    with pytest.raises(UnknownKey):
        verify_note(note, [plain.verifier()])
    assert verify_note(note, [cosigner.verifier()])[1] == [cosigner.verifier()]


def test_cosigner_refuses_what_it_must_not_sign() -> None:
    cosigner = Signer.generate("city.example/chengdu", COSIGNATURE_V1)
    with pytest.raises(ValueError):
        cosigner.sign(SOFA_BODY)
    with pytest.raises(ValueError):
        cosigner.sign(SOFA_BODY, timestamp=-1)
    with pytest.raises(MalformedNote):
        cosigner.sign(TEXT.encode(), timestamp=1700000000)  # not a checkpoint
    with pytest.raises(ValueError):
        Signer.generate("sc.example/log").sign(SOFA_BODY, timestamp=1700000000)


def test_add_signatures_merges_cosignatures_once() -> None:
    log = Signer.generate("sc.example/ledger")
    witnesses = [Signer.generate(f"{city}.sc.example/witness", COSIGNATURE_V1)
                 for city in ("chengdu", "dazhou")]
    note = sign_note(SOFA_BODY.replace(b"example.com/behind-the-sofa", b"sc.example/ledger"), log)
    text = parse_note(note).text
    cosigs = [Signature(w.name, w.key_id, w.sign(text, timestamp=1700000000 + i))
              for i, w in enumerate(witnesses)]
    merged = add_signatures(note, cosigs)
    again = add_signatures(merged, [*cosigs, Signature(witnesses[0].name, witnesses[0].key_id,
                                                       witnesses[0].sign(text, timestamp=1800000000))])
    assert again == merged  # a key already present is not added twice, even with a newer timestamp
    parsed, verified = verify_note(merged, [log.verifier(), *(w.verifier() for w in witnesses)])
    assert verified == [log.verifier(), *(w.verifier() for w in witnesses)]
    assert [cosignature_time(s) for s in parsed.signatures[1:]] == [1700000000, 1700000001]


# --- tlog-proof -------------------------------------------------------------------------------

SPEC_PROOF_HEAD = (b"c2sp.org/tlog-proof@v1\n"
                   b"extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
                   b"index 73894\n"
                   b"gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
                   b"B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
                   b"EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
                   b"RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
                   b"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
                   b"\n")
SPEC_PROOF_BODY = b"example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"


def test_proof_spec_example() -> None:
    checkpoint = sign_note(SPEC_PROOF_BODY, Signer.parse(PETER_SKEY))  # the spec elides its signatures
    data = SPEC_PROOF_HEAD + checkpoint
    proof = Proof.parse(data)
    assert proof.index == 73894 and proof.extra == base64.b64decode(SPEC_PROOF_HEAD.split(b"\n")[1][6:])
    assert proof.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert len(proof.path) == 5
    assert proof.path[0] == base64.b64decode("gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=")
    assert proof.checkpoint == checkpoint and proof.encode() == data
    no_extra = Proof(proof.index, proof.path, checkpoint)
    assert Proof.parse(no_extra.encode()) == no_extra
    assert no_extra.encode().startswith(b"c2sp.org/tlog-proof@v1\nindex 73894\ngSKy")
    assert Proof.parse(Proof(0, (), checkpoint).encode()).path == ()


def test_proof_with_the_specs_elided_signatures_is_refused() -> None:
    elided = (SPEC_PROOF_BODY + "\n— example.com/fancylog hI2DJw[...]1roloI=\n"
              "— witness1.example mJirIklj[...]qY9v2B/5bg==\n".encode())
    with pytest.raises(MalformedNote):
        Proof.parse(SPEC_PROOF_HEAD + elided)


@pytest.mark.parametrize(("old", "new"), [
    (b"c2sp.org/tlog-proof@v1\n", b"c2sp.org/tlog-proof@v2\n"),
    (b"index 73894", b"index 073894"),
    (b"index 73894", b"index  73894"),
    (b"index 73894\n", b""),
    (b"index 73894", b"index 109482"),                      # not inside the checkpointed tree
    (b"extra YWdl", b"extra !Wdl"),
    (b"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=", b"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5g=="),
    (b"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=", b"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vl="),
    (b"PlQ=\n", b"PlQ=\r\n"),
    (b"5vk=\n\n", b"5vk=\n"),                                 # no blank line before the checkpoint
])
def test_malformed_proofs_are_refused(old: bytes, new: bytes) -> None:
    data = SPEC_PROOF_HEAD + sign_note(SPEC_PROOF_BODY, Signer.parse(PETER_SKEY))
    assert old in data
    with pytest.raises(MalformedNote):
        Proof.parse(data.replace(old, new, 1))
