"""The province's log: queued changes become entries, tiles and a signed checkpoint whose root is
the RFC 6962 root of the entries; nothing is lost when commits arrive out of order or an append
fails half-way; proofs from the tiles verify; entries carry no personal data and name their
union's path; audit heads enter the ledger."""

from __future__ import annotations

import asyncio
import os
import sys
from itertools import pairwise

import pytest

from tests.conftest import AUDIT_KEY, LEDGER_ORIGIN, LEDGER_SIGNER
from tests.services.kpi.test_rollups import tree
from wxbackend.services.errors import InvalidInput, NotFound
from wxbackend.services.ledger import tlog
from wxbackend.services.ledger.entries import decode
from wxbackend.services.ledger.log import LedgerLog
from wxbackend.services.ledger.notes import Checkpoint, verify_note
from wxbackend.store.identity.accounts import log_change
from wxbackend.store.ledger import log as store


async def changes(db, n: int, *, entity: str = "org", entity_id: str | None = None) -> None:
    for i in range(n):
        await log_change(db, entity, entity_id or str(i + 1), "updated", "test", {"n": i})


async def leaves(db) -> list[bytes]:
    rows = await db.fetch("SELECT body FROM ledger_entries ORDER BY idx")
    return [tlog.leaf_hash(bytes(r["body"])) for r in rows]


def checked(note: bytes) -> Checkpoint:
    parsed, verified = verify_note(note, [LEDGER_SIGNER.verifier()])
    assert verified == [LEDGER_SIGNER.verifier()]
    return Checkpoint.parse(parsed.text)


async def test_the_first_append_signs_the_empty_tree_then_each_batch_a_checkpoint(rt, db) -> None:
    ledger: LedgerLog = rt.ledger
    empty = await ledger.integrate()
    assert empty is not None and empty.size == 0 and empty.root == tlog.EMPTY_ROOT
    assert await ledger.integrate() is None                     # nothing queued: nothing signed

    await changes(db, 3)
    signed = await ledger.integrate()
    cp = checked(signed.note)
    assert (cp.origin, cp.size) == (LEDGER_ORIGIN, 3)
    assert cp.root == tlog.root_of(await leaves(db)) == signed.root
    assert await db.fetchval("SELECT count(*) FROM ledger_queue") == 0


async def test_batches_across_tile_boundaries_keep_the_rfc_6962_root(rt, db) -> None:
    ledger = LedgerLog(rt.pool, origin=LEDGER_ORIGIN, signer=LEDGER_SIGNER, batch=97)
    await changes(db, 70_000 // 100)                            # 700 entries: tile 0, 1 full, 2 partial
    sizes = []
    while (signed := await ledger.integrate()) is not None:
        sizes.append(signed.size)
        assert signed.root == tlog.root_of((await leaves(db))[:signed.size])
    assert sizes[-1] == 700 and all(b - a == 97 for a, b in pairwise(sizes[:-1]))

    hashes = await leaves(db)
    full = await store.tile(db, 0, 0)
    assert full == b"".join(hashes[:256])
    assert await store.tile(db, 0, 2) == b"".join(hashes[512:700])          # partial, width 188
    level1 = await store.tile(db, 1, 0)                                       # two full level-0 tiles
    assert level1 == tlog.perfect_root(hashes[:256]) + tlog.perfect_root(hashes[256:512])
    assert await ledger.tile(0, 2, 100) == b"".join(hashes[512:612])
    with pytest.raises(NotFound):
        await ledger.tile(0, 2, 189)                                          # not there yet
    bundle = tlog.parse_entry_bundle(await ledger.bundle(1, 256))
    assert [tlog.leaf_hash(b) for b in bundle] == hashes[256:512]


async def test_proofs_from_the_tiles_verify(rt, db) -> None:
    ledger = LedgerLog(rt.pool, origin=LEDGER_ORIGIN, signer=LEDGER_SIGNER, batch=131)
    await changes(db, 600)
    signed = {}
    while (s := await ledger.integrate()) is not None:
        signed[s.size] = s.root
    hashes = await leaves(db)
    for size, root in signed.items():
        for index in (0, size // 3, size - 1):
            proof = await ledger.inclusion(index, size)
            assert tlog.verify_inclusion(hashes[index], index, size, proof, root)
            assert not tlog.verify_inclusion(hashes[index], index + 1 if index + 1 < size else 0, size,
                                             proof, root)
    sizes = sorted(signed)
    for old, new in pairwise(sizes):
        proof = await ledger.consistency(old, new)
        assert tlog.verify_consistency(old, new, signed[old], signed[new], proof)
        assert not tlog.verify_consistency(old, new, signed[new], signed[old], proof)
    with pytest.raises(NotFound):
        await ledger.inclusion(0, 5)                  # no checkpoint of that size was signed
    with pytest.raises(InvalidInput):
        await ledger.inclusion(600, 600)
    with pytest.raises(InvalidInput):
        await ledger.consistency(600, 131)


async def test_a_change_committed_late_is_appended_once_when_it_commits(rt, db) -> None:
    ledger: LedgerLog = rt.ledger
    late = await rt.pool.acquire()
    try:
        tx = late.transaction()
        await tx.start()
        await log_change(late, "org", "1", "created", "slow import")        # the lower id, not committed
        await changes(db, 2, entity_id="2")
        first = await ledger.integrate_all()
        assert first.size == 2
        await tx.commit()
    finally:
        await rt.pool.release(late)
    second = await ledger.integrate_all()
    assert second.size == 3
    refs = await db.fetch("SELECT ref FROM ledger_entries ORDER BY idx")
    ids = await db.fetch("SELECT id FROM base_data_changes ORDER BY id")
    assert sorted(r["ref"] for r in refs) == [r["id"] for r in ids]    # each change once
    assert refs[-1]["ref"] == ids[0]["id"]                              # the late one last


async def test_an_append_that_fails_half_way_leaves_no_trace(rt, db, monkeypatch) -> None:
    ledger: LedgerLog = rt.ledger
    await changes(db, 5)
    real = store.put_tiles

    async def crash(conn, tiles):
        raise ConnectionResetError("the province went down mid-append")

    monkeypatch.setattr(store, "put_tiles", crash)
    with pytest.raises(ConnectionResetError):
        await ledger.integrate()
    assert await db.fetchval("SELECT count(*) FROM ledger_entries") == 0
    assert await db.fetchval("SELECT count(*) FROM ledger_checkpoints") == 0
    assert await db.fetchval("SELECT count(*) FROM ledger_queue") == 5
    monkeypatch.setattr(store, "put_tiles", real)
    signed = await ledger.integrate()
    assert signed.size == 5 and signed.root == tlog.root_of(await leaves(db))


async def test_two_integrators_never_append_the_same_change_twice(rt, db) -> None:
    await changes(db, 400)
    a = LedgerLog(rt.pool, origin=LEDGER_ORIGIN, signer=LEDGER_SIGNER, batch=50)
    b = LedgerLog(rt.pool, origin=LEDGER_ORIGIN, signer=LEDGER_SIGNER, batch=50)
    for _ in range(10):
        await asyncio.gather(a.integrate_all(), b.integrate_all())
    assert await db.fetchval("SELECT count(*) FROM ledger_entries") == 400
    assert await db.fetchval("SELECT count(DISTINCT ref) FROM ledger_entries") == 400
    latest = await a.latest()
    assert latest.size == 400 and latest.root == tlog.root_of(await leaves(db))


async def test_entries_name_the_union_path_and_hold_no_personal_data(rt, db) -> None:
    unions = await tree(db)
    grassroots = unions[3]
    member = await db.fetchval(
        """INSERT INTO members (org_id, member_no, name, id_number_enc, id_number_bidx, source, gender,
                                 joined_on,
                                 birth_date)
           VALUES ($1, 'M-1', '张三', '\\x00', '\\x01', 'roster', 1, '1990-01-01',
                   '2026-01-01') RETURNING id""",
        grassroots["id"])
    await log_change(db, "member", str(member), "created", "roster:1", {"member_no": "M-1"})
    await rt.ledger.integrate_all()
    body = bytes(await db.fetchval("SELECT body FROM ledger_entries ORDER BY idx DESC LIMIT 1"))
    entry = decode(body)
    assert entry["org"] == ["SC", "SC-510100", "SC-510104",
                            await db.fetchval("SELECT code FROM orgs WHERE id = $1", grassroots["id"])]
    assert (entry["entity"], entry["id"], entry["action"]) == ("member", str(member), "created")
    assert "张三" not in body.decode()
    assert await db.fetchval("SELECT scope::text FROM ledger_entries ORDER BY idx DESC LIMIT 1") \
        == grassroots["path"]
    with pytest.raises(ValueError):
        decode(body.replace(b'"v":1', b'"v": 1'))          # not the canonical encoding


async def test_published_audit_heads_enter_the_ledger(rt, db) -> None:
    async with rt.pool.acquire() as conn, conn.transaction():
        await rt.audit.record(conn, actor_id=None, actor="cli", org_id=None, action="test.action")
    async with rt.pool.acquire() as conn:
        head = await rt.audit.publish_head(conn)
    await rt.ledger.integrate_all()
    entry = decode(bytes(await db.fetchval("SELECT body FROM ledger_entries WHERE kind = 'audit_head'")))
    assert (entry["type"], entry["seq"], entry["record_mac"]) == ("audit_head", head.seq, head.digest.hex())
    assert await db.fetchval("SELECT scope FROM ledger_entries WHERE kind = 'audit_head'") is None


async def test_the_ledger_tables_refuse_rewrites(rt, db) -> None:
    await changes(db, 300)
    await rt.ledger.integrate_all()
    for sql in ("UPDATE ledger_entries SET body = '\\x00' WHERE idx = 0",
                "DELETE FROM ledger_entries WHERE idx = 299",
                "UPDATE ledger_checkpoints SET root = '\\x00' WHERE size = 300",
                "UPDATE ledger_tiles SET hashes = substring(hashes FROM 33) WHERE level = 0 AND idx = 1",
                "UPDATE ledger_tiles SET hashes = '\\x00'::bytea || substring(hashes FROM 2) "
                "WHERE level = 0 AND idx = 0"):
        with pytest.raises(Exception, match=r"append-only|only grows"):
            await db.execute(sql)


async def test_an_audit_trail_rewrite_shows_against_the_heads_in_the_ledger(rt, db, backing) -> None:
    for i in range(4):
        async with rt.pool.acquire() as conn, conn.transaction():
            await rt.audit.record(conn, actor_id=None, actor="cli", org_id=None, action=f"test.{i}")
    async with rt.pool.acquire() as conn:
        await rt.audit.publish_head(conn)
    await rt.ledger.integrate_all()
    # Someone with the owner's rights removes the newest records and the heads table with them:
    # the database alone no longer shows it, the ledger (held by the nodes too) does.
    await db.execute("SET session_replication_role = replica")
    await db.execute("DELETE FROM audit_log WHERE id > 2")
    await db.execute("DELETE FROM audit_heads")
    await db.execute("SET session_replication_role = DEFAULT")
    assert await rt.audit.verify(db) == (2, [])
    env = {**os.environ, "WXBACKEND__DATABASE__DSN": backing.dsn, "WXBACKEND__REDIS__URL": backing.redis_url,
           "WXBACKEND__SECURITY__AUDIT_KEY": AUDIT_KEY}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "wxbackend.cli", "audit", "verify",
                                                env=env, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 1 and "record 4: missing_tail" in out.decode()
