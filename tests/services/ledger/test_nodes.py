"""A city node against the real province server: it mirrors its subtree's entries verified against
the signed checkpoint, refuses forged or truncated tiles, foreign keys, replayed and forked
checkpoints and mismatched entries (keeping the evidence and reporting it), resumes a sync that
was cut off without losing or doubling an entry; the province collects cosignatures, knows when
a checkpoint is final, and issues receipts that verify offline."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable

import httpx
import pytest
import tornado.httpserver
import tornado.testing

from tests.conftest import LEDGER_ORIGIN, LEDGER_SIGNER
from tests.services.cadres.test_cadres import org_id
from wxbackend import cli
from wxbackend.config import ConfigError, load_settings
from wxbackend.handlers.ledger.node import MAX_SUBMISSION, make_node_app
from wxbackend.node import Node, node_keys
from wxbackend.services.ledger import mirror as mirror_module
from wxbackend.services.ledger import tlog
from wxbackend.services.ledger.client import ProvinceClient, ProvinceUnavailable
from wxbackend.services.ledger.cosigning import Cosigning, WitnessEndpoint, receipt
from wxbackend.services.ledger.entries import decode
from wxbackend.services.ledger.mirror import Mirror, Refused
from wxbackend.services.ledger.notes import COSIGNATURE_V1, Checkpoint, Signer, Verifier, sign_note
from wxbackend.services.ledger.verify import VerifyError, verify_receipt
from wxbackend.services.ledger.witness import Witness
from wxbackend.store.identity.accounts import log_change

# Refusals are logged as alarms at ERROR: expected here (the happy paths assert no evidence).
pytestmark = pytest.mark.expected_errors(r"ledger alarm", r"answered a bad cosignature")

CHENGDU = ["SC", "SC-510100"]

Rewrite = Callable[[httpx.Request, bytes], bytes]


class Tampering(httpx.AsyncBaseTransport):
    """The network between node and province, rewriting what the province answers."""

    def __init__(self, rewrite: Rewrite | None = None, *, fail_after_entries: int | None = None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.rewrite = rewrite
        self.fail_after_entries = fail_after_entries
        self.entry_calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ledger/entries"):
            self.entry_calls += 1
            if self.fail_after_entries is not None and self.entry_calls > self.fail_after_entries:
                raise httpx.ConnectError("the node was cut off")
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        if self.rewrite is not None:
            body = self.rewrite(request, body)
        return httpx.Response(response.status_code, headers={k: v for k, v in response.headers.items()
                                                             if k.lower() != "content-length"},
                              content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def node_app(rt) -> tuple[str, str]:
    app, secret = await rt.apps.create_app(app_id="node-chengdu", name="成都市总工会节点",
                                           org_code="SC-510100", scopes=["ledger.node"], redirect_uris=[])
    return app.app_id, secret


def make_mirror(rt, server: str, node_app, transport: httpx.AsyncBaseTransport | None = None) -> Mirror:
    client = ProvinceClient(server, app_id=node_app[0], secret=node_app[1], clock=rt.clock,
                            transport=transport)
    return Mirror(rt.pool, client, name="chengdu.node", origin=LEDGER_ORIGIN,
                  log_keys=[LEDGER_SIGNER.verifier()],
                  codes=CHENGDU, org="SC-510100", clock=rt.clock)


async def spread(db, n: int) -> dict[str, int]:
    """``n`` changes spread over Chengdu, Dazhou and the province, plus an audit head."""
    where = [await org_id(db, c) for c in ("SC-510100", "SC-511700", "SC")]
    for i in range(n):
        await log_change(db, "org", str(where[i % 3]), "updated", "test", {"n": i})
    return {"chengdu": (n + 2) // 3}


async def publish_head(rt) -> None:
    async with rt.pool.acquire() as conn, conn.transaction():
        await rt.audit.record(conn, actor_id=None, actor="cli", org_id=None, action="test.action")
    async with rt.pool.acquire() as conn:
        await rt.audit.publish_head(conn)


async def test_a_node_holds_its_subtree_verified_against_the_checkpoint(rt, db, server, node_app) -> None:
    counts = await spread(db, 30)
    await publish_head(rt)
    signed = await rt.ledger.integrate_all()
    mirror = make_mirror(rt, server, node_app)
    try:
        state = await mirror.sync()
        assert (state.size, state.root) == (signed.size, signed.root) == (31, signed.root)
        held = await mirror.entries(0, 1000)
        kinds = [decode(b)["type"] for _, b in held]
        assert kinds.count("change") == counts["chengdu"] and kinds.count("audit_head") == 1
        assert all(decode(b)["org"][:2] == CHENGDU for _, b in held if decode(b)["type"] == "change")
        # Every held entry is the one at its index in the province's log.
        for idx, body in held:
            assert body == bytes(await db.fetchval("SELECT body FROM ledger_entries WHERE idx = $1", idx))

        await spread(db, 6)
        newer = await rt.ledger.integrate_all()
        assert (await mirror.sync()).size == newer.size == 37
        assert (await mirror.sync()).size == 37                         # nothing new: nothing done
        assert await db.fetchval("SELECT count(*) FROM node_evidence") == 0
    finally:
        await mirror.client.close()


def flip_tile_byte(request: httpx.Request, body: bytes) -> bytes:
    if "/ledger/v1/tile/0/" in request.url.path:
        return bytes([body[0] ^ 1]) + body[1:]
    return body


def truncate_tile(request: httpx.Request, body: bytes) -> bytes:
    return body[:-32] if "/ledger/v1/tile/0/" in request.url.path else body


@pytest.mark.parametrize("rewrite", [flip_tile_byte, truncate_tile], ids=["forged", "truncated"])
async def test_a_forged_or_truncated_tile_is_refused_and_reported(rt, db, server, node_app, rewrite) -> None:
    await spread(db, 12)
    await rt.ledger.integrate_all()
    mirror = make_mirror(rt, server, node_app, Tampering(rewrite))
    try:
        with pytest.raises(Refused) as refused:
            await mirror.sync()
        assert refused.value.kind == "bad_tile" and "数据块" in str(refused.value)
        assert (await mirror.state()).size == 0 and (await mirror.state()).entries == 0
        evidence = await db.fetchrow("SELECT kind, evidence FROM node_evidence")
        assert evidence["kind"] == "bad_tile" and LEDGER_ORIGIN in evidence["evidence"]["checkpoint"]
        assert await mirror.report() == 1
        assert await mirror.report() == 0                               # each reported once
        alarm = await db.fetchrow("SELECT source, kind, message FROM ledger_alarms")
        assert (alarm["source"], alarm["kind"]) == ("node-chengdu", "bad_tile")
    finally:
        await mirror.client.close()
    honest = make_mirror(rt, server, node_app)
    try:
        assert (await honest.sync()).size == 12                        # the honest tiles are accepted
    finally:
        await honest.client.close()


async def test_foreign_replayed_and_forked_checkpoints_are_refused(rt, db, server, node_app) -> None:
    await spread(db, 5)
    old = await rt.ledger.integrate_all()
    await spread(db, 5)
    new = await rt.ledger.integrate_all()
    mirror = make_mirror(rt, server, node_app)
    try:
        stranger = Signer.generate(LEDGER_ORIGIN)                        # same name, another key
        with pytest.raises(Refused) as refused:
            await mirror.sync(sign_note(Checkpoint(LEDGER_ORIGIN, new.size, new.root).body(), stranger))
        assert refused.value.kind == "unknown_key"
        assert (await mirror.sync()).size == 10

        with pytest.raises(Refused) as refused:
            await mirror.sync(old.note)                                 # replayed: the log would shrink
        assert refused.value.kind == "log_shrank"
        forked = sign_note(Checkpoint(LEDGER_ORIGIN, 10, tlog.leaf_hash(b"another history")).body(),
                           LEDGER_SIGNER)
        with pytest.raises(Refused) as refused:
            await mirror.sync(forked)
        assert refused.value.kind == "fork" and "分叉" in str(refused.value)
        kinds = [r["kind"] for r in await db.fetch("SELECT kind FROM node_evidence ORDER BY id")]
        assert kinds == ["unknown_key", "log_shrank", "fork"]
        fork = await db.fetchval("SELECT evidence FROM node_evidence WHERE kind = 'fork'")
        assert fork["held_root"] == base64.b64encode(new.root).decode()
        assert fork["checkpoint"] == forked.decode()
        assert (await mirror.state()).size == 10
    finally:
        await mirror.client.close()


async def test_an_entry_that_does_not_match_the_verified_hash_is_refused(rt, db, server, node_app) -> None:
    await spread(db, 9)
    await rt.ledger.integrate_all()

    def alter_entry(request: httpx.Request, body: bytes) -> bytes:
        if request.url.path.endswith("/ledger/entries"):
            page = json.loads(body)
            entry = json.loads(base64.b64decode(page["entries"][0]["entry"]))
            entry["action"] = "deleted"
            page["entries"][0]["entry"] = base64.b64encode(json.dumps(entry).encode()).decode()
            return json.dumps(page).encode()
        return body

    mirror = make_mirror(rt, server, node_app, Tampering(alter_entry))
    try:
        with pytest.raises(Refused) as refused:
            await mirror.sync()
        assert refused.value.kind == "bad_entry"
        assert (await mirror.state()).size == 0
    finally:
        await mirror.client.close()


async def test_a_node_cut_off_mid_sync_resumes_without_loss_or_duplicates(rt, db, server, node_app,
                                                                            monkeypatch) -> None:
    monkeypatch.setattr(mirror_module, "CHUNK", 256)
    await spread(db, 1000)
    signed = await rt.ledger.integrate_all()
    cut = make_mirror(rt, server, node_app, Tampering(fail_after_entries=2))
    try:
        with pytest.raises(ProvinceUnavailable):
            await cut.sync()
        assert (await cut.state()).size == 512                         # two whole chunks kept
    finally:
        await cut.client.close()
    mirror = make_mirror(rt, server, node_app)
    try:
        state = await mirror.sync()
        assert (state.size, state.root) == (1000, signed.root)
        held = await db.fetch("SELECT idx FROM node_entries ORDER BY idx")
        expected = await db.fetch(
            """SELECT idx FROM ledger_entries WHERE scope <@ (SELECT path FROM orgs WHERE code = 'SC-510100')
               OR scope IS NULL ORDER BY idx""")
        assert [r["idx"] for r in held] == [r["idx"] for r in expected]
    finally:
        await mirror.client.close()


async def test_a_node_gets_nothing_outside_its_subtree(rt, db, server, http, node_app) -> None:
    await spread(db, 6)
    await rt.ledger.integrate_all()
    client = ProvinceClient(server, app_id=node_app[0], secret=node_app[1], clock=rt.clock)
    try:
        with pytest.raises(ProvinceUnavailable, match="403"):
            await client.entries(0, 6, org="SC-511700")
        mine, _ = await client.entries(0, 6, org="SC-510100")
        assert len(mine) == 2
        bundle = await client._get("/ledger/v1/" + tlog.tile_path("entries", 0, 6), signed=True)
        assert bundle.status_code == 403 and bundle.json()["error"]["code"] == "outside_subtree"
    finally:
        await client.close()
    unsigned = await http.get(server + "/api/v1/ledger/entries?start=0")
    assert unsigned.status_code == 401
    tile = await http.get(server + "/ledger/v1/" + tlog.tile_path(0, 0, 6))     # hashes are public
    assert tile.status_code == 200 and len(tile.content) == 6 * 32
    assert (await http.get(server + "/ledger/v1/tile/0/x000")).status_code == 404


@pytest.fixture
async def witness_server(rt):
    """A city node's witness on its own port (sharing the test database)."""
    signer = Signer.generate("chengdu.node", COSIGNATURE_V1)
    witness = Witness(rt.pool, signer=signer, logs={LEDGER_ORIGIN: [LEDGER_SIGNER.verifier()]},
                      clock=rt.clock)
    mirror = make_mirror(rt, "http://127.0.0.1:9", ("unused", "unused"))
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(make_node_app(witness, mirror), max_body_size=MAX_SUBMISSION)
    server.add_sockets([sock])
    yield signer, f"http://127.0.0.1:{port}/witness"
    server.stop()
    await mirror.client.close()


async def test_cosignatures_make_a_checkpoint_final_and_receipts_verify_offline(
        rt, db, witness_server, tmp_path, capsys) -> None:
    signer, url = witness_server
    endpoint = WitnessEndpoint(signer.verifier(), url)
    cosigning = Cosigning(rt.pool, rt.ledger, rt.ledger_alarms, [endpoint], http=rt.http, quorum=1,
                          clock=rt.clock)
    await spread(db, 20)
    first = await rt.ledger.integrate_all()
    with pytest.raises(Exception, match="联署"):
        await receipt(cosigning, 3)                                     # not final yet
    assert await cosigning.push(endpoint, first) is True
    await spread(db, 7)
    second = await rt.ledger.integrate_all()
    assert await cosigning.push(endpoint, second) is True              # with a consistency proof
    assert await cosigning.final() == 27

    entry = bytes(await db.fetchval("SELECT body FROM ledger_entries WHERE idx = 3"))
    proof = await receipt(cosigning, 3)
    result = verify_receipt(entry, proof, log_key=LEDGER_SIGNER.verifier(), witnesses=[signer.verifier()],
                            quorum=1)
    assert (result.index, result.size, result.cosigned_by) == (3, 27, ("chengdu.node",))
    with pytest.raises(VerifyError, match="联署"):
        verify_receipt(entry, proof, log_key=LEDGER_SIGNER.verifier(), witnesses=[signer.verifier()],
                       quorum=2)
    with pytest.raises(VerifyError, match="包含证明"):
        verify_receipt(entry + b" ", proof, log_key=LEDGER_SIGNER.verifier(), witnesses=[signer.verifier()],
                       quorum=1)

    (tmp_path / "entry").write_bytes(entry)
    (tmp_path / "receipt").write_bytes(proof)
    argv = ["ledger", "verify", "--entry", str(tmp_path / "entry"), "--receipt", str(tmp_path / "receipt"),
            "--log-key", LEDGER_SIGNER.verifier().vkey(), "--witness-key", signer.verifier().vkey()]
    assert cli.main(argv) == 0 and "通过" in capsys.readouterr().out
    (tmp_path / "entry").write_bytes(entry.replace(b"updated", b"deleted"))
    assert cli.main(argv) == 1 and "未通过" in capsys.readouterr().err

    # The province forgot what the witness holds: the witness's 409 tells it, and it catches up.
    cosigning._sizes = {}
    await spread(db, 3)
    third = await rt.ledger.integrate_all()
    assert await cosigning.push(endpoint, third) is True
    assert await cosigning.final() == 30


async def test_a_witness_that_refuses_raises_an_alarm_at_the_province(rt, db, witness_server) -> None:
    _, url = witness_server
    stranger = Signer.generate("other.node", COSIGNATURE_V1)      # a key the witness does not use
    cosigning = Cosigning(rt.pool, rt.ledger, rt.ledger_alarms, [WitnessEndpoint(stranger.verifier(), url)],
                          http=rt.http, quorum=1, clock=rt.clock)
    await spread(db, 4)
    signed = await rt.ledger.integrate_all()
    assert await cosigning.push(cosigning.witnesses[0], signed) is False
    alarm = await db.fetchrow("SELECT source, kind FROM ledger_alarms")
    assert (alarm["source"], alarm["kind"]) == ("province", "bad_cosignature")
    assert await cosigning.final() is None


async def test_a_running_node_follows_the_province_as_checkpoints_are_pushed(rt, db, server,
                                                                           node_app) -> None:
    """The province's pusher and a node's loop together: a change is cosigned and held by the node
    moments after it is appended, without the node polling (its poll interval is long)."""
    signer = Signer.generate("chengdu.node", COSIGNATURE_V1)
    mirror = make_mirror(rt, server, node_app)
    node = Node(witness=Witness(rt.pool, signer=signer, logs={LEDGER_ORIGIN: [LEDGER_SIGNER.verifier()]},
                                clock=rt.clock), mirror=mirror, sync_seconds=60)
    node.witness.on_cosigned = node.cosigned
    sock, port = tornado.testing.bind_unused_port()
    http_server = tornado.httpserver.HTTPServer(make_node_app(node.witness, mirror),
                                                max_body_size=MAX_SUBMISSION)
    http_server.add_sockets([sock])
    endpoint = WitnessEndpoint(signer.verifier(), f"http://127.0.0.1:{port}/witness")
    cosigning = Cosigning(rt.pool, rt.ledger, rt.ledger_alarms, [endpoint], http=rt.http, quorum=1,
                          clock=rt.clock)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(node.run(stop)), asyncio.create_task(cosigning.run(stop, poll=60))]
    try:
        for round_ in range(3):
            await spread(db, 7)
            signed = await rt.ledger.integrate_all()
            cosigning.announce()
            async with asyncio.timeout(5):
                # Two other parties' progress, polled.
                while (await mirror.state()).size != signed.size \
                        or await cosigning.final() != signed.size:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert signed.size == 7 * (round_ + 1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        http_server.stop()
        await mirror.client.close()


def test_a_node_without_its_keys_or_with_the_wrong_key_type_does_not_start() -> None:
    settings = load_settings(None, environ={})
    with pytest.raises(ConfigError, match=r"\[node\] signing_key.*\[node\] subtree"):
        node_keys(settings)
    complete = settings.replace(node={
        "signing_key": Signer.generate("chengdu.node").skey(),          # a log key, not a cosigner's
        "province_url": "http://127.0.0.1:8000", "log_key": LEDGER_SIGNER.verifier().vkey(),
        "app_id": "node-chengdu", "app_secret": "s", "subtree": "SC,SC-510100"})
    with pytest.raises(ConfigError, match="cosignature"):
        node_keys(complete)
    cosigner = Signer.generate("chengdu.node", COSIGNATURE_V1)
    signer, log_key = node_keys(complete.replace(node={"signing_key": cosigner.skey()}))
    assert signer.verifier() == cosigner.verifier() and log_key == LEDGER_SIGNER.verifier()


def test_keygen_prints_a_pair_that_signs_and_verifies(capsys) -> None:
    assert cli.main(["ledger", "keygen", "--name", "chengdu.node", "--cosigner"]) == 0
    out = capsys.readouterr().out.splitlines()
    signer = Signer.parse(out[0].rsplit(" ", 1)[-1])
    verifier = Verifier.parse(out[1].rsplit(" ", 1)[-1])
    assert signer.kind == COSIGNATURE_V1 and signer.verifier() == verifier
    assert cli.main(["ledger", "keygen", "--name", "bad name"]) == 2
