"""A city node's witness (c2sp.org/tlog-witness ``add-checkpoint``): it cosigns a checkpoint only
when it extends the one it last cosigned, answers every refusal with the status the specification
prescribes and a Chinese message, keeps what proves a fork as evidence, never rolls back under
concurrent submissions, never dates a cosignature earlier than the previous one, and speaks the
same over HTTP.

The Merkle arithmetic the tests feed the witness comes from the RFC 9162 definitions written out
below (MTH and SUBPROOF, §2.1.1 and §2.1.4.1), pinned to the published transparency-dev/merkle
vectors, so the witness is never checked against the code it runs itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import httpx
import pytest
import tornado.httpserver
import tornado.testing

from tests.conftest import TestClock
from wxbackend.handlers.ledger.node import MAX_SUBMISSION, make_node_app
from wxbackend.services.clock import CHINA
from wxbackend.services.ledger import notes, tlog
from wxbackend.services.ledger.client import ProvinceClient
from wxbackend.services.ledger.cosigning import submission
from wxbackend.services.ledger.mirror import Mirror
from wxbackend.services.ledger.witness import MAX_PROOF, Witness, WitnessRefused

# Refusals that prove a fork are logged as alarms at ERROR: expected here.
pytestmark = pytest.mark.expected_errors(r"ledger alarm")

ORIGIN = "sc.example/ledger/base-data"
LOG = notes.Signer.generate(ORIGIN)
WITNESS = notes.Signer.generate("chengdu.node", notes.COSIGNATURE_V1)
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=CHINA)
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- RFC 9162 straight from the definitions --------------------------------------------------
def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def mth(hashes: list[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 9162 §2.1.1)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


def _subproof(m: int, hashes: list[bytes], whole: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if whole else [mth(hashes)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], whole), mth(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), mth(hashes[:k])]


def consistency(m: int, n: int, hashes: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) (RFC 9162 §2.1.4.1); empty for m = 0 as tlog-witness sends it."""
    return _subproof(m, hashes[:n], True) if 0 < m < n else []


LEAVES = [tlog.leaf_hash(b"entry %d" % i) for i in range(200)]
# Another log's history: the same sizes, other entries.
FORKED = [tlog.leaf_hash(b"rewritten %d" % i) for i in range(200)]


# Published vectors: transparency-dev/merkle testonly/constants.go (LeafInputs, RootHashes) and
# proof/verify_test.go (consistencyProofs), the RFC 6962 reference tree of eight leaves.
VECTOR_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
VECTOR_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
VECTOR_PROOFS = {(m, n): [bytes.fromhex(h) for h in hashes] for (m, n), hashes in {
    (1, 8): ("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    (6, 8): ("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    (2, 5): ("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    (6, 7): ("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
}.items()}
VECTOR_LOGS = {f"vectors.example/{m}-{n}": notes.Signer.generate(f"vectors.example/{m}-{n}")
               for m, n in VECTOR_PROOFS}


def checkpoint(size: int, *, root: bytes | None = None, hashes: list[bytes] = LEAVES, origin: str = ORIGIN,
               signers: tuple[notes.Signer, ...] = (LOG,)) -> bytes:
    """The log's signed checkpoint of ``size`` leaves of ``hashes`` (or with ``root``)."""
    body = notes.Checkpoint(origin, size, mth(hashes[:size]) if root is None else root).body()
    return notes.sign_note(body, *signers)


def advance(old: int, new: int, hashes: list[bytes] = LEAVES) -> bytes:
    """The submission the log sends to move a witness from ``old`` to ``new``."""
    return submission(old, consistency(old, new, hashes), checkpoint(new, hashes=hashes))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def witness(rt, clock: TestClock) -> Witness:
    clock.set(T0, frozen=True)
    logs = {ORIGIN: [LOG.verifier()]} | {o: [s.verifier()] for o, s in VECTOR_LOGS.items()}
    return Witness(rt.pool, signer=WITNESS, logs=logs, clock=clock)


async def refused(witness: Witness, body: bytes, status: int) -> WitnessRefused:
    with pytest.raises(WitnessRefused) as info:
        await witness.add_checkpoint(body)
    assert info.value.status == status, (info.value.code, str(info.value))
    assert CJK.search(str(info.value)), str(info.value)
    return info.value


async def held(db: asyncpg.Connection, origin: str = ORIGIN) -> tuple[int, bytes] | None:
    row = await db.fetchrow("SELECT size, root FROM node_witness WHERE origin = $1", origin)
    return (row["size"], bytes(row["root"])) if row else None


async def kinds(db: asyncpg.Connection) -> list[str]:
    return [r["kind"] for r in await db.fetch("SELECT kind FROM node_evidence ORDER BY id")]


def cosigned(note: bytes, lines: bytes) -> notes.Signature:
    """The witness's one cosignature line, verified over ``note``'s checkpoint."""
    assert lines.endswith(b"\n") and lines.count(b"\n") == 1
    parsed, verified = notes.verify_note(note + lines, [WITNESS.verifier()])
    assert verified == [WITNESS.verifier()]
    return next(s for s in parsed.signatures if s.matches(WITNESS.verifier()))


# --- the test's own arithmetic against the published vectors (no database) --------------------
def test_the_reference_arithmetic_reproduces_the_published_vectors() -> None:
    hashes = [tlog.leaf_hash(leaf) for leaf in VECTOR_LEAVES]
    assert [mth(hashes[:n]) for n in range(9)] == VECTOR_ROOTS
    for (m, n), proof in VECTOR_PROOFS.items():
        assert consistency(m, n, hashes) == proof
        # The code under test agrees with the definitions on this tree too.
        assert tlog.root_of(hashes[:n]) == VECTOR_ROOTS[n]
        assert tlog.verify_consistency(m, n, VECTOR_ROOTS[m], VECTOR_ROOTS[n], proof)
    assert consistency(1, 1, hashes) == []


# --- cosigning -------------------------------------------------------------------------------
async def test_the_first_checkpoint_is_cosigned_from_old_zero(witness, db) -> None:
    seen: list[tuple[notes.Checkpoint, bytes]] = []
    witness.on_cosigned = lambda cp, note: seen.append((cp, note))
    stranger = notes.Signer.generate("someone.else/log")
    note = checkpoint(5, signers=(stranger, LOG))                 # a key it does not know: ignored
    lines = await witness.add_checkpoint(submission(0, [], note))

    line = cosigned(note, lines)
    assert line.name == "chengdu.node" and notes.cosignature_time(line) == int(T0.timestamp())
    assert lines.decode().startswith("— chengdu.node ")
    # The cosignature commits to this checkpoint: it does not verify over another one.
    with pytest.raises(notes.BadSignature):
        notes.verify_note(checkpoint(6) + lines, [WITNESS.verifier()])

    row = await db.fetchrow("SELECT size, root, note, updated_at FROM node_witness WHERE origin = $1", ORIGIN)
    assert (row["size"], bytes(row["root"]), bytes(row["note"])) == (5, mth(LEAVES[:5]), note)
    assert row["updated_at"] == T0
    assert [(cp.size, n) for cp, n in seen] == [(5, note)]
    assert await kinds(db) == []


async def test_each_consistent_checkpoint_is_cosigned_and_the_same_one_again(witness, db) -> None:
    for old, new in [(0, 5), (5, 12), (12, 16), (16, 16), (16, 45), (45, 45), (45, 128)]:
        note = checkpoint(new)
        lines = await witness.add_checkpoint(submission(old, consistency(old, new, LEAVES), note))
        cosigned(note, lines)
        assert await held(db) == (new, mth(LEAVES[:new]))
    assert await kinds(db) == []


async def test_the_published_vectors_are_accepted_and_a_corrupted_proof_is_not(witness, db) -> None:
    for (m, n), proof in VECTOR_PROOFS.items():
        origin, signer = next((o, s) for o, s in VECTOR_LOGS.items() if o.endswith(f"/{m}-{n}"))

        def note(size: int, origin: str = origin, signer: notes.Signer = signer) -> bytes:
            return checkpoint(size, root=VECTOR_ROOTS[size], origin=origin, signers=(signer,))

        await witness.add_checkpoint(submission(0, [], note(m)))
        flipped = [proof[0][:1] + bytes([proof[0][1] ^ 0x10]) + proof[0][2:], *proof[1:]]
        for bad in (flipped, proof[:-1], [*proof, VECTOR_ROOTS[n]], proof[::-1]):
            exc = await refused(witness, submission(m, bad, note(n)), 422)
            assert exc.code == "inconsistent"
        assert await held(db, origin) == (m, VECTOR_ROOTS[m])
        cosigned(note(n), await witness.add_checkpoint(submission(m, proof, note(n))))
        assert await held(db, origin) == (n, VECTOR_ROOTS[n])
    assert set(await kinds(db)) == {"inconsistent"} and len(await kinds(db)) == 4 * len(VECTOR_PROOFS)


# --- refusals --------------------------------------------------------------------------------
async def test_a_stale_old_size_gets_409_with_the_size_held(witness, db) -> None:
    exc = await refused(witness, advance(3, 5), 409)            # never cosigned: it holds 0
    assert (exc.code, exc.size) == ("size_mismatch", 0)
    assert await held(db) is None                              # the new origin's row rolled back

    await witness.add_checkpoint(advance(0, 12))
    for old in (0, 5, 11, 13):
        exc = await refused(witness, advance(old, 20), 409)
        assert exc.size == 12
    assert await held(db) == (12, mth(LEAVES[:12])) and await kinds(db) == []


async def test_unknown_origins_and_bad_signatures_are_refused_before_anything_is_kept(witness, db) -> None:
    other = notes.Signer.generate("other.example/log")
    foreign = checkpoint(5, origin="other.example/log", signers=(other,))
    exc = await refused(witness, submission(0, [], foreign), 404)
    assert exc.code == "unknown_origin"

    impostor = notes.Signer.generate(ORIGIN)                     # the log's name, another key
    exc = await refused(witness, submission(0, [], checkpoint(5, signers=(impostor,))), 403)
    assert exc.code == "bad_signature"

    genuine = checkpoint(5)
    tampered = genuine.replace(b64(mth(LEAVES[:5])).encode(), b64(mth(FORKED[:5])).encode())
    assert tampered != genuine
    exc = await refused(witness, submission(0, [], tampered), 403)
    assert exc.code == "bad_signature"
    # A failing line from the trusted key refuses the note even beside a valid one.
    valid = notes.parse_note(checkpoint(5, root=mth(FORKED[:5])))
    both = notes.Note(valid.text, valid.signatures + notes.parse_note(tampered).signatures).encode()
    await refused(witness, submission(0, [], both), 403)

    assert await db.fetchval("SELECT count(*) FROM node_witness") == 0
    assert await kinds(db) == []


async def test_an_old_size_beyond_the_checkpoint_is_400(witness, db) -> None:
    exc = await refused(witness, submission(7, [], checkpoint(5)), 400)
    assert exc.code == "old_too_large"
    assert await held(db) is None
    await witness.add_checkpoint(advance(0, 5))
    exc = await refused(witness, submission(9, [b"\x00" * 32], checkpoint(7)), 400)   # neither held nor ≤ 7
    assert exc.code == "old_too_large"
    assert await held(db) == (5, mth(LEAVES[:5])) and await kinds(db) == []


async def test_malformed_bodies_are_400_and_keep_nothing(witness, db) -> None:
    note = checkpoint(5)
    line = b64(b"\x01" * 32).encode() + b"\n"
    bodies = {
        "no blank line before the checkpoint": b"old 0\n" + note,
        "no blank line at all": b"old 0",
        "leading zero": b"old 01\n\n" + note,
        "more digits than any tree size": b"old " + b"9" * 5000 + b"\n\n" + note,
        "signed": b"old +1\n\n" + note,
        "no number": b"old \n\n" + note,
        "capitalised": b"Old 0\n\n" + note,
        "64 proof lines": b"old 0\n" + line * (MAX_PROOF + 1) + b"\n" + note,
        "not base64": b"old 0\n" + b"not*base64!\n\n" + note,
        "31-byte hash": b"old 0\n" + b64(b"\x01" * 31).encode() + b"\n\n" + note,
        "no signature": b"old 0\n\n" + notes.Checkpoint(ORIGIN, 5, mth(LEAVES[:5])).body(),
    }
    for what, body in bodies.items():
        exc = await refused(witness, body, 400)
        assert exc.code == "malformed", what
    assert await db.fetchval("SELECT count(*) FROM node_witness") == 0
    assert await kinds(db) == []

    # 63 proof lines is the limit, not a format error: that proof is merely wrong.
    await witness.add_checkpoint(advance(0, 5))
    exc = await refused(witness, b"old 5\n" + line * MAX_PROOF + b"\n" + checkpoint(12), 422)
    assert exc.code == "inconsistent"


async def test_a_wrong_consistency_proof_is_422_and_kept_as_evidence(witness, db) -> None:
    await witness.add_checkpoint(advance(0, 5))
    proof = consistency(5, 12, LEAVES)
    wrong = [proof[0], bytes(32), *proof[2:]]
    exc = await refused(witness, submission(5, wrong, checkpoint(12)), 422)
    assert exc.code == "inconsistent"
    # A log that rewrote its first five entries: a valid-looking proof of its own history.
    await refused(witness, advance(5, 12, FORKED), 422)

    assert await held(db) == (5, mth(LEAVES[:5]))
    rows = await db.fetch("SELECT origin, kind, message, evidence FROM node_evidence ORDER BY id")
    assert [(r["origin"], r["kind"]) for r in rows] == [(ORIGIN, "inconsistent")] * 2
    assert CJK.search(rows[0]["message"])
    # Ed25519 is deterministic: signing the checkpoint again gives the bytes that were submitted.
    assert rows[0]["evidence"] == {"old": 5, "proof": [b64(h) for h in wrong],
                                   "checkpoint": checkpoint(12).decode()}


async def test_two_roots_for_one_size_are_a_fork(witness, db) -> None:
    await witness.add_checkpoint(advance(0, 5))
    forked = checkpoint(5, hashes=FORKED)
    exc = await refused(witness, submission(5, [], forked), 422)
    assert exc.code == "fork"
    assert await held(db) == (5, mth(LEAVES[:5]))
    row = await db.fetchrow("SELECT kind, evidence FROM node_evidence")
    assert row["kind"] == "fork" and row["evidence"]["checkpoint"] == forked.decode()

    # The same size and root with proof lines: PROOF(m, D[m]) is empty, so those lines prove nothing.
    exc = await refused(witness, submission(5, [mth(LEAVES[:5])], checkpoint(5)), 422)
    assert exc.code == "inconsistent"
    assert await kinds(db) == ["fork", "inconsistent"]


async def test_size_zero_and_old_zero_rules(witness, db) -> None:
    exc = await refused(witness, submission(0, [], checkpoint(0, root=mth(LEAVES[:1]))), 422)
    assert exc.code == "bad_empty_root"
    exc = await refused(witness, submission(0, [mth(LEAVES[:1])], checkpoint(5)), 422)
    assert exc.code == "bad_proof"
    assert await held(db) is None
    assert await kinds(db) == ["bad_empty_root", "bad_proof"]

    empty = checkpoint(0)                                         # the empty tree's root: fine
    cosigned(empty, await witness.add_checkpoint(submission(0, [], empty)))
    assert await held(db) == (0, hashlib.sha256(b"").digest())


async def test_a_log_that_shrank_is_400_and_kept_as_evidence(witness, db) -> None:
    await witness.add_checkpoint(advance(0, 12))
    exc = await refused(witness, submission(12, [], checkpoint(5)), 400)
    assert exc.code == "log_shrank"
    assert await held(db) == (12, mth(LEAVES[:12]))
    assert await kinds(db) == ["log_shrank"]


# --- concurrency and time --------------------------------------------------------------------
async def test_concurrent_submissions_from_one_old_size_never_roll_the_witness_back(witness, db) -> None:
    size = 3
    await witness.add_checkpoint(advance(0, size))
    for round_ in range(20):
        pair = [advance(size, size + 5), advance(size, size + 9)]
        if round_ % 2:
            pair.reverse()
        results = await asyncio.gather(*(witness.add_checkpoint(b) for b in pair), return_exceptions=True)
        won = [r for r in results if isinstance(r, bytes)]
        lost = [r for r in results if isinstance(r, WitnessRefused)]
        assert len(won) == 1 and len(lost) == 1, results
        stored, root = await held(db)
        assert stored in (size + 5, size + 9) and root == mth(LEAVES[:stored])
        assert (lost[0].status, lost[0].size) == (409, stored)
        assert stored > size
        size = stored
    assert await kinds(db) == []


async def test_cosignature_times_never_go_backwards(witness, clock, db) -> None:
    times = []
    for old, new, at in [(0, 5, T0), (5, 9, T0 - timedelta(hours=2)), (9, 9, T0 - timedelta(days=1)),
                         (9, 20, T0 + timedelta(seconds=10))]:
        clock.set(at, frozen=True)
        note = checkpoint(new)
        times.append(notes.cosignature_time(cosigned(note, await witness.add_checkpoint(
            submission(old, consistency(old, new, LEAVES), note)))))
    t0 = int(T0.timestamp())
    assert times == [t0, t0, t0, t0 + 10]


async def test_cosignature_times_never_go_backwards_across_a_restart(witness, rt, clock) -> None:
    await witness.add_checkpoint(submission(0, [], checkpoint(5)))
    restarted = Witness(rt.pool, signer=WITNESS, logs=witness.logs, clock=clock)   # nothing in memory
    clock.set(T0 - timedelta(hours=3), frozen=True)                               # and its clock behind
    note = checkpoint(9)
    lines = await restarted.add_checkpoint(submission(5, consistency(5, 9, LEAVES), note))
    assert notes.cosignature_time(cosigned(note, lines)) == int(T0.timestamp())


# --- over HTTP -------------------------------------------------------------------------------
@pytest.fixture
async def node_url(rt, witness) -> AsyncIterator[str]:
    client = ProvinceClient("http://127.0.0.1:9", app_id="unused", secret="unused", clock=rt.clock)
    mirror = Mirror(rt.pool, client, name="chengdu.node", origin=ORIGIN, log_keys=[LOG.verifier()],
                    codes=["SC"], clock=rt.clock)
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(make_node_app(witness, mirror), max_body_size=MAX_SUBMISSION)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}/witness/add-checkpoint"
    server.stop()
    await server.close_all_connections()
    await client.close()


async def test_add_checkpoint_over_http(node_url, http, db) -> None:
    note = checkpoint(5)
    ok = await http.post(node_url, content=submission(0, [], note))
    assert ok.status_code == 200
    assert ok.content.endswith(b"\n") and all(line.startswith("— ") for line in ok.text.splitlines())
    cosigned(note, ok.content)

    stale = await http.post(node_url, content=submission(0, [], note))
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "text/x.tlog.size" and stale.text == "5\n"

    other = notes.Signer.generate("other.example/log")
    for status, body in [
            (404, submission(0, [], checkpoint(9, origin="other.example/log", signers=(other,)))),
            (403, submission(5, [], checkpoint(9, signers=(notes.Signer.generate(ORIGIN),)))),
            (400, b"old 05\n\n" + checkpoint(9)),
            (400, b"old " + b"9" * 5000 + b"\n\n" + checkpoint(9)),
            (422, submission(5, [bytes(32)], checkpoint(9)))]:
        answer = await http.post(node_url, content=body)
        assert answer.status_code == status and CJK.search(answer.text), (status, answer.text)
    assert await held(db) == (5, mth(LEAVES[:5]))


async def raw_exchange(url: str, head: bytes) -> bytes:
    """Send ``head`` (request line and headers, no body) and read the answer until the server closes."""
    port = httpx.URL(url).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_a_body_over_the_limit_is_refused_unread(node_url, http, db, caplog) -> None:
    # Tornado refuses from the declared length alone, with its bare 400 (not 413), and closes.
    for framing in (b"Content-Length: %d\r\n\r\n" % (MAX_SUBMISSION + 1),
                    b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (MAX_SUBMISSION + 1)):
        answer = await raw_exchange(node_url, b"POST /witness/add-checkpoint HTTP/1.1\r\n"
                                              b"Host: node\r\n" + framing)
        assert answer == b"HTTP/1.1 400 Bad Request\r\n\r\n"

    # A client that sends the whole body usually sees the connection reset before it can read
    # that 400 (the server closes with the unread body in its buffer).
    body = submission(0, [], checkpoint(5))
    body += b"x" * (MAX_SUBMISSION + 1 - len(body))
    try:
        status = (await http.post(node_url, content=body)).status_code
    except httpx.TransportError:
        status = None
    assert status in (None, 400)
    assert [r.getMessage() for r in caplog.records if "too" in r.getMessage()] == [
        f"Malformed HTTP message from 127.0.0.1: {why}"
        for why in ("Content-Length too long", "chunked body too large", "Content-Length too long")]
    assert await db.fetchval("SELECT count(*) FROM node_witness") == 0
    # The limit is on the size only: the same checkpoint within it is cosigned.
    assert (await http.post(node_url, content=submission(0, [], checkpoint(5)))).status_code == 200
