"""The base-data ledger over HTTP: the province's console (status, checkpoints and cosignatures, an
entry and its receipt, alarms and their audited clearing, refused to a city's cadre), the shared
platform API for the city nodes (their subtree's entries page by page, inclusion and consistency
proofs checked against the signed checkpoints' roots, receipts, alarms) and the public tlog-tiles
layout (the signed checkpoint, immutable full tiles). Every console and API answer matches its
OpenAPI document."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import httpx
import pytest

from tests.api.test_admin import sign_in
from tests.api.test_identity import make_app, signed
from tests.api.test_openapi import ADMIN_DOC, API_DOC, Contract
from tests.conftest import LEDGER_ORIGIN, LEDGER_SIGNER
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from wxbackend.services.ledger import notes, tlog
from wxbackend.services.ledger.entries import decode
from wxbackend.services.ledger.log import Signed
from wxbackend.services.ledger.verify import verify_receipt
from wxbackend.store.identity.accounts import log_change
from wxbackend.store.ledger import log as store

ENTRIES = "/api/v1/ledger/entries"
INCLUSION = "/api/v1/ledger/proof/inclusion"
CONSISTENCY = "/api/v1/ledger/proof/consistency"
RECEIPT = "/api/v1/ledger/receipt"
ALARMS = "/api/v1/ledger/alarms"
IMMUTABLE = "public, max-age=31536000, immutable"
CHENGDU = ["SC", "SC-510100"]


async def spread(db, n: int) -> None:
    """``n`` changes of unions, in turn Chengdu's, Dazhou's and the province's."""
    where = [await org_id(db, code) for code in ("SC-510100", "SC-511700", "SC")]
    for i in range(n):
        await log_change(db, "org", str(where[i % 3]), "updated", "test", {"n": i})


async def bodies(db) -> list[bytes]:
    return [bytes(r["body"]) for r in await db.fetch("SELECT body FROM ledger_entries ORDER BY idx")]


def root_of(note: bytes) -> tuple[int, bytes]:
    """A checkpoint note's (size, root), once the province's signature on it verifies."""
    parsed, verified = notes.verify_note(note, [LEDGER_SIGNER.verifier()])
    assert verified == [LEDGER_SIGNER.verifier()]
    checkpoint = notes.Checkpoint.parse(parsed.text)
    assert checkpoint.origin == LEDGER_ORIGIN
    return checkpoint.size, checkpoint.root


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


async def cosign(rt, signed_cp: Signed, witness: notes.Signer) -> None:
    """A city node's cosignature on a checkpoint, stored as the province keeps the ones it collects."""
    note = notes.sign_note(notes.parse_note(signed_cp.note).text, witness, timestamp=int(time.time()))
    line = notes.parse_note(note).signatures[0].line()
    async with rt.pool.acquire() as conn:
        await store.add_cosignature(conn, signed_cp.size, witness.name, line, rt.clock())


class Node:
    """An entrance of the shared platform API signing its requests."""

    def __init__(self, http: httpx.AsyncClient, server: str, app_id: str, secret: str) -> None:
        self.http, self.server, self.app_id, self.secret = http, server, app_id, secret

    async def get(self, path: str, **params: object) -> httpx.Response:
        query = urlencode(params)
        headers = signed("GET", path, b"", self.app_id, self.secret, query=query)
        return await self.http.get(f"{self.server}{path}" + (f"?{query}" if query else ""), headers=headers)

    async def post(self, path: str, body: bytes) -> httpx.Response:
        headers = signed("POST", path, body, self.app_id, self.secret)
        return await self.http.post(f"{self.server}{path}", content=body, headers=headers)


@pytest.fixture
async def node(rt, http, server) -> Node:
    """Chengdu's city node: an entrance of 成都市总工会 with the ``ledger.node`` scope."""
    app, secret = await rt.apps.create_app(app_id="node-chengdu", name="成都市总工会节点",
                                           org_code="SC-510100", scopes=["ledger.node"], redirect_uris=[])
    return Node(http, server, app.app_id, secret)


# --- the province's console ------------------------------------------------------------------
@pytest.fixture
async def office(server, rt):
    """The platform office's operator (``basedata.ledger`` through its duty), signed in."""
    operator = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    browser, csrf = await sign_in(server, "office", otp(operator.totp_uri))
    yield browser, csrf
    await browser.aclose()


async def test_the_console_shows_checkpoints_cosignatures_entries_and_receipts(server, rt, db,
                                                                               office) -> None:
    admin = Contract(ADMIN_DOC)
    browser, _ = office
    base = f"{server}/admin/v1/ledger"
    # Entry 0 is the operator's own account (a base-data change too); the unions' follow.
    assert (await rt.ledger.integrate_all()).size == 1
    await spread(db, 5)
    first = await rt.ledger.integrate_all()
    await spread(db, 3)
    second = await rt.ledger.integrate_all()
    assert (first.size, second.size) == (6, 9)
    leaves = [tlog.leaf_hash(b) for b in await bodies(db)]

    status = admin.check("/admin/v1/ledger/status", "get", await browser.get(f"{base}/status"))
    assert status["enabled"] and (status["origin"], status["size"]) == (LEDGER_ORIGIN, 9)
    assert status["public_key"] == LEDGER_SIGNER.verifier().vkey()
    assert status["root"] == b64(tlog.root_of(leaves))
    assert (status["queued"], status["final_size"], status["open_alarms"]) == (0, None, 0)

    checkpoints = admin.check("/admin/v1/ledger/checkpoints", "get",
                              await browser.get(f"{base}/checkpoints"))["checkpoints"]
    assert [(c["size"], c["root"], c["final"], c["witnesses"]) for c in checkpoints] == [
        (9, b64(tlog.root_of(leaves)), False, []), (6, b64(tlog.root_of(leaves[:6])), False, []),
        (1, b64(tlog.root_of(leaves[:1])), False, [])]

    one = "/admin/v1/ledger/entries/{idx}"
    entry = admin.check(one, "get", await browser.get(f"{base}/entries/1"))
    chengdu = await org_id(db, "SC-510100")
    assert (entry["index"], entry["kind"]) == (1, "change")
    assert {k: entry["entry"][k] for k in ("type", "entity", "id", "action", "data", "org")} == {
        "type": "change", "entity": "org", "id": str(chengdu), "action": "updated", "data": {"n": 0},
        "org": CHENGDU}
    missing = await browser.get(f"{base}/entries/9")
    assert missing.status_code == 404
    assert admin.check(one, "get", missing)["error"]["code"] == "entry_not_found"

    receipt = one + "/receipt"
    early = await browser.get(f"{base}/entries/3/receipt")
    assert early.status_code == 409
    assert admin.check(receipt, "get", early)["error"]["code"] == "not_final"
    assert "Content-Disposition" not in early.headers

    # Chengdu's node cosigns the newest checkpoint: it becomes final and receipts verify offline.
    witness = notes.Signer.generate("chengdu.node", notes.COSIGNATURE_V1)
    await cosign(rt, second, witness)
    issued = await browser.get(f"{base}/entries/3/receipt")
    assert issued.status_code == 200
    proof = admin.check(receipt, "get", issued)
    assert issued.headers["Content-Disposition"] == 'attachment; filename="ledger-receipt-3.txt"'
    body = (await bodies(db))[3]
    result = verify_receipt(body, proof, log_key=LEDGER_SIGNER.verifier(), witnesses=[witness.verifier()],
                            quorum=1)
    assert (result.index, result.size, result.cosigned_by) == (3, 9, ("chengdu.node",))
    checkpoints = admin.check("/admin/v1/ledger/checkpoints", "get",
                              await browser.get(f"{base}/checkpoints", params={"limit": 1}))["checkpoints"]
    assert [(c["size"], c["final"], c["witnesses"]) for c in checkpoints] == [(9, True, ["chengdu.node"])]
    status = admin.check("/admin/v1/ledger/status", "get", await browser.get(f"{base}/status"))
    assert status["final_size"] == 9
    assert (await browser.get(f"{base}/entries/9/receipt")).json()["error"]["code"] == "entry_not_found"


@pytest.mark.expected_errors(r"ledger alarm")
async def test_an_alarm_is_cleared_once_with_a_note_and_audited(server, rt, db, office) -> None:
    admin = Contract(ADMIN_DOC)
    browser, csrf = office
    base = f"{server}/admin/v1/ledger"
    alarm_id = await rt.ledger_alarms.raise_alarm(source="chengdu.node", kind="fork", message="检查点分叉",
                                                  evidence={"size": 8})
    listed = admin.check("/admin/v1/ledger/alarms", "get", await browser.get(f"{base}/alarms"))["alarms"]
    assert [(a["id"], a["source"], a["kind"], a["evidence"], a["cleared_at"]) for a in listed] == [
        (alarm_id, "chengdu.node", "fork", {"size": 8}, None)]
    status = admin.check("/admin/v1/ledger/status", "get", await browser.get(f"{base}/status"))
    assert status["open_alarms"] == 1

    clear = "/admin/v1/ledger/alarms/{alarm_id}/clear"
    url = f"{base}/alarms/{alarm_id}/clear"
    forged = await browser.post(url, json={"note": "已核实"})
    assert admin.check(clear, "post", forged)["error"]["code"] == "csrf_failed"
    write = {"X-CSRF-Token": csrf}
    blank = await browser.post(url, headers=write, json={"note": "  "})
    assert blank.status_code == 400
    assert admin.check(clear, "post", blank)["error"]["code"] == "note_required"
    assert await db.fetchval("SELECT cleared_at FROM ledger_alarms WHERE id = $1", alarm_id) is None

    cleared = await browser.post(url, headers=write, json={"note": "已与成都节点核实，系网络中断后重放"})
    assert cleared.status_code == 200 and admin.check(clear, "post", cleared) == {"cleared": True}
    audit = await db.fetch("SELECT actor, target, detail FROM audit_log"
                           " WHERE action = 'ledger.alarm_cleared'")
    assert [(a["actor"], a["target"], a["detail"]) for a in audit] == [
        ("office", f"ledger_alarm:{alarm_id}", {"note": "已与成都节点核实，系网络中断后重放"})]
    again = await browser.post(url, headers=write, json={"note": "再次处理"})
    assert again.status_code == 404
    assert admin.check(clear, "post", again)["error"]["code"] == "alarm_not_found"
    assert len(await db.fetch("SELECT 1 FROM audit_log WHERE action = 'ledger.alarm_cleared'")) == 1

    assert admin.check("/admin/v1/ledger/alarms", "get", await browser.get(f"{base}/alarms"))["alarms"] == []
    every = admin.check("/admin/v1/ledger/alarms", "get",
                        await browser.get(f"{base}/alarms", params={"all": "1"}))["alarms"]
    assert [a["id"] for a in every] == [alarm_id] and every[0]["cleared_at"] is not None


async def test_only_the_province_with_the_permission_watches_the_ledger(server, rt, db) -> None:
    admin = Contract(ADMIN_DOC)
    operator = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(operator.totp_uri),
                                   ip="10.0.0.1", user_agent="test")).actor
    city = await rt.cadres.create_account(actor, username="chengdu", display_name="成都", role="super_admin",
                                          org_id=await org_id(db, "SC-510100"), duty="business",
                                          password=PASSWORD, permissions={"basedata.ledger"})
    clerk = await rt.cadres.create_account(actor, username="clerk", display_name="省总", role="super_admin",
                                           org_id=await org_id(db, "SC"), duty="business", password=PASSWORD,
                                           permissions={"kpi.read"})
    for made, code in ((city, "province_only"), (clerk, "permission_missing")):
        browser, csrf = await sign_in(server, made.username, otp(made.totp_uri))
        try:
            for path, template in (("status", "status"), ("checkpoints", "checkpoints"), ("alarms", "alarms"),
                                   ("entries/0", "entries/{idx}")):
                answer = await browser.get(f"{server}/admin/v1/ledger/{path}")
                assert answer.status_code == 403, (made.username, path)
                assert admin.check(f"/admin/v1/ledger/{template}", "get", answer)["error"]["code"] == code
            refused = await browser.post(f"{server}/admin/v1/ledger/alarms/1/clear",
                                         headers={"X-CSRF-Token": csrf}, json={"note": "x"})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == code
        finally:
            await browser.aclose()


# --- the shared platform API for the city nodes ------------------------------------------------
async def test_a_node_pages_through_its_subtree_and_checks_proofs_against_the_checkpoints(
        rt, db, node) -> None:
    api = Contract(API_DOC)
    await spread(db, 12)
    old = await rt.ledger.integrate_all()
    await spread(db, 9)
    new = await rt.ledger.integrate_all()
    assert (old.size, new.size) == (12, 21)
    held = await bodies(db)

    pages, start = [], 0
    while start is not None:
        answer = await node.get(ENTRIES, start=start, limit=3)
        assert answer.status_code == 200
        page = api.check(ENTRIES, "get", answer)
        assert (page["org"], page["codes"], page["size"]) == ("SC-510100", CHENGDU, 21)
        pages.append([e["index"] for e in page["entries"]])
        for e in page["entries"]:
            assert base64.b64decode(e["entry"]) == held[e["index"]]
        start = page["next"]
    assert pages == [[0, 3, 6], [9, 12, 15], [18]]          # Chengdu's every third change, three a page
    assert all(decode(held[i])["org"] == CHENGDU for page in pages for i in page)
    window = api.check(ENTRIES, "get", await node.get(ENTRIES, start=4, end=10))
    assert [e["index"] for e in window["entries"]] == [6, 9] and window["next"] is None

    outside = await node.get(ENTRIES, org="SC-511700")
    assert outside.status_code == 403
    assert api.check(ENTRIES, "get", outside)["error"]["code"] == "outside_subtree"
    unknown = await node.get(ENTRIES, org="SC-999999")
    assert api.check(ENTRIES, "get", unknown)["error"]["code"] == "org_not_found"
    backwards = await node.get(ENTRIES, start=5, end=2)
    assert backwards.status_code == 400
    assert api.check(ENTRIES, "get", backwards)["error"]["code"] == "invalid_range"

    # Inclusion proofs, in the newest tree and in an older signed one, against each signed root.
    roots = {size: root_of((await rt.ledger.signed(size)).note) for size in (12, 21)}
    for size, index in ((21, 0), (21, 13), (21, 20), (12, 11), (12, 6)):
        answer = await node.get(INCLUSION, index=index, size=size)
        assert answer.status_code == 200
        body = api.check(INCLUSION, "get", answer)
        assert (body["index"], body["size"]) == (index, size)
        path, root = unb64(body["proof"]), roots[size][1]
        assert tlog.verify_inclusion(tlog.leaf_hash(held[index]), index, size, path, root)
        assert not tlog.verify_inclusion(tlog.leaf_hash(held[index] + b" "), index, size, path, root)

    answer = await node.get(CONSISTENCY, old=12, new=21)
    consistency = unb64(api.check(CONSISTENCY, "get", answer)["proof"])
    assert tlog.verify_consistency(12, 21, roots[12][1], roots[21][1], consistency)
    assert not tlog.verify_consistency(12, 21, roots[21][1], roots[21][1], consistency)
    for a, b in ((0, 21), (21, 21)):
        assert api.check(CONSISTENCY, "get", await node.get(CONSISTENCY, old=a, new=b))["proof"] == []

    for path, params, status, code in (
            (INCLUSION, {"index": 0, "size": 13}, 404, "checkpoint_not_found"),      # never signed
            (INCLUSION, {"index": 21, "size": 21}, 400, "index_out_of_range"),
            (INCLUSION, {"index": 0, "size": 0}, 400, "invalid_size"),
            (INCLUSION, {"index": 0}, 400, "invalid_argument"),
            (INCLUSION, {"index": "-1", "size": 21}, 400, "invalid_input"),
            (CONSISTENCY, {"old": 12, "new": 13}, 404, "checkpoint_not_found"),
            (CONSISTENCY, {"old": 13, "new": 21}, 404, "checkpoint_not_found"),
            (CONSISTENCY, {"old": 21, "new": 12}, 400, "invalid_size"),
            (RECEIPT, {"index": 0}, 409, "not_final")):                           # nobody cosigned yet
        answer = await node.get(path, **params)
        assert answer.status_code == status, (path, params, answer.text)
        assert api.check(path, "get", answer)["error"]["code"] == code, (path, params)


async def test_a_receipt_once_a_node_cosigned_verifies_offline(rt, db, node) -> None:
    api = Contract(API_DOC)
    await spread(db, 6)
    signed_cp = await rt.ledger.integrate_all()
    witness = notes.Signer.generate("chengdu.node", notes.COSIGNATURE_V1)
    await cosign(rt, signed_cp, witness)
    answer = await node.get(RECEIPT, index=3)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    proof = api.check(RECEIPT, "get", answer)
    assert proof.startswith(b"c2sp.org/tlog-proof@v1\nindex 3\n")
    result = verify_receipt((await bodies(db))[3], proof, log_key=LEDGER_SIGNER.verifier(),
                            witnesses=[witness.verifier()], quorum=1)
    assert (result.index, result.size) == (3, 6)
    beyond = await node.get(RECEIPT, index=6)
    assert api.check(RECEIPT, "get", beyond)["error"]["code"] == "not_final"


async def test_an_entrance_without_the_node_scope_or_signature_is_refused(rt, http, server, db) -> None:
    api = Contract(API_DOC)
    await spread(db, 3)
    await rt.ledger.integrate_all()
    app_id, secret = await make_app(rt, "chengdu-kpi", ("kpi.read",))
    other = Node(http, server, app_id, secret)
    for path, params in ((ENTRIES, {}), (INCLUSION, {"index": 0, "size": 3}),
                         (CONSISTENCY, {"old": 1, "new": 3}), (RECEIPT, {"index": 0})):
        refused = await other.get(path, **params)
        assert refused.status_code == 403
        assert api.check(path, "get", refused)["error"]["code"] == "scope_missing"
    posted = await other.post(ALARMS, json.dumps({"kind": "fork", "message": "分叉"}).encode())
    assert api.check(ALARMS, "post", posted)["error"]["code"] == "scope_missing"
    unsigned = await http.get(f"{server}{ENTRIES}")
    assert unsigned.status_code == 401
    assert api.check(ENTRIES, "get", unsigned)["error"]["code"] == "signature_missing"
    assert await db.fetchval("SELECT count(*) FROM ledger_alarms") == 0


@pytest.mark.expected_errors(r"ledger alarm")
async def test_a_node_reports_an_alarm_and_a_malformed_one_writes_nothing(rt, db, node) -> None:
    api = Contract(API_DOC)
    report = {"kind": "fork", "message": "同一树大小出现两个不同的根哈希",
              "evidence": {"size": 8, "notes": ["a", "b"]}}
    created = await node.post(ALARMS, json.dumps(report, ensure_ascii=False).encode())
    assert created.status_code == 201
    alarm_id = api.check(ALARMS, "post", created)["id"]
    row = await db.fetchrow("SELECT source, kind, message, evidence, cleared_at FROM ledger_alarms")
    assert dict(row) == {"source": "node-chengdu", "kind": "fork", "message": report["message"],
                         "evidence": report["evidence"], "cleared_at": None}
    assert await db.fetchval("SELECT id FROM ledger_alarms") == alarm_id

    for body, code in (
            ({"kind": "meteor", "message": "未知类型"}, "invalid_kind"),
            ({"kind": ["fork"], "message": "类型不是字符串"}, "invalid_kind"),
            ({"kind": "fork", "message": ""}, "invalid_message"),
            ({"kind": "fork", "message": "长" * 501}, "invalid_message"),
            ({"kind": "fork", "message": "证据不是对象", "evidence": [1]}, "invalid_evidence"),
            ({"kind": "fork", "message": "证据过大", "evidence": {"x": "0" * 70_000}}, "invalid_evidence"),
            ({"kind": "fork", "message": "证据不是 JSON 数", "evidence": {"x": 1e999}}, "invalid_evidence")):
        refused = await node.post(ALARMS, json.dumps(body).encode())
        assert refused.status_code == 400, (body, refused.text)
        assert api.check(ALARMS, "post", refused)["error"]["code"] == code
    not_json = await node.post(ALARMS, b"{kind: fork}")
    assert api.check(ALARMS, "post", not_json)["error"]["code"] == "invalid_json"
    assert await db.fetchval("SELECT count(*) FROM ledger_alarms") == 1


# --- the public tlog-tiles layout --------------------------------------------------------------
async def test_the_checkpoint_verifies_and_full_tiles_are_immutable(rt, db, http, server, node) -> None:
    base = f"{server}/ledger/v1"
    empty = await http.get(f"{base}/checkpoint")
    assert empty.status_code == 404 and empty.json()["error"]["code"] == "ledger_empty"
    await spread(db, 300)
    await rt.ledger.integrate_all()
    leaves = [tlog.leaf_hash(b) for b in await bodies(db)]

    checkpoint = await http.get(f"{base}/checkpoint")
    assert checkpoint.status_code == 200 and checkpoint.headers["Cache-Control"] == "no-cache"
    assert root_of(checkpoint.content) == (300, tlog.root_of(leaves))

    full = await http.get(f"{base}/tile/0/000")
    assert full.status_code == 200 and full.headers["Cache-Control"] == IMMUTABLE
    assert full.headers["Content-Type"] == "application/octet-stream"
    assert full.content == b"".join(leaves[:256])
    partial = await http.get(f"{base}/tile/0/001.p/44")
    assert partial.status_code == 200 and partial.headers["Cache-Control"] == "no-cache"
    assert partial.content == b"".join(leaves[256:300])
    upper = await http.get(f"{base}/tile/1/000.p/1")
    assert upper.content == tlog.perfect_root(leaves[:256])
    assert (await http.get(f"{base}/tile/0/001")).status_code == 404          # not full yet

    beyond = "x999/" * 7 + "999"                          # a tile past any bigint leaf index
    for malformed in ("tile/0/x000/000", "tile/0/0", "tile/00/000", "tile/0/000.p/0", "tile/0/000.p/256",
                      "tile/0/000.p/044", "tile/64/000", "tile/0/abc", f"tile/0/{beyond}",
                      f"tile/1/{beyond}.p/3"):
        answer = await http.get(f"{base}/{malformed}")
        assert answer.status_code == 404, malformed
        assert answer.json()["error"]["code"] in ("tile_not_found", "not_found"), malformed

    # Entry bundles hold every union's data: a city node reads its own subtree through the API.
    bundle = await node.get("/ledger/v1/tile/entries/000")
    assert bundle.status_code == 403 and bundle.json()["error"]["code"] == "outside_subtree"
