"""The demo province generator: the same seed gives the same province, its cadres sign in, its
personal data is fictitious and valid, and the dashboards have figures."""

from __future__ import annotations

import hashlib
from datetime import datetime

import pyotp

from tests.conftest import reset_database
from wxbackend.sandbox.people import is_demo_id_number, is_demo_phone, mp_openid_of, unionid_of
from wxbackend.sandbox.province import DEMO_PASSWORD, Demo, generate
from wxbackend.services.clock import CHINA
from wxbackend.services.identity.accounts import PHONE_COLUMN as ACCOUNT_PHONE
from wxbackend.services.identity.accounts import WeChatIdentity
from wxbackend.services.membership.idnumbers import parse_id_number
from wxbackend.services.membership.membership import ID_COLUMN

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=CHINA)
SIZES = {"workers": 200, "grassroots": 30}
TABLES = ("orgs", "accounts", "account_identities", "members", "cadres", "cadre_grants", "offerings",
          "offering_claims", "articles", "article_revisions", "channel_visits", "work_items",
          "base_data_changes", "kpi_daily", "offering_verifiers", "info_reports", "documents",
          "meetings", "proposals")
# What the digest reads: only what production does not randomise (sealed values' nonces,
# password hashes, TOTP secrets and public ids are random in production too).
DIGESTS = (
    "SELECT kind || ':' || name || ':' || path::text || ':' || created_at::text FROM orgs"
    " WHERE kind IN ('county', 'grassroots')",
    "SELECT encode(phone_bidx, 'hex') || ':' || coalesce(region_code, '') || ':'"
    " || coalesce(registered_at::text, '') FROM accounts",
    "SELECT kind || ':' || issuer || ':' || subject FROM account_identities",
    "SELECT member_no || ':' || name || ':' || encode(id_number_bidx, 'hex') || ':' || source"
    " || ':' || joined_on::text || ':' || coalesce(certified_at::text, '') FROM members",
    "SELECT username || ':' || role || ':' || duty FROM cadres",
    "SELECT title || ':' || published_at::text || ':' || taken FROM offerings",
    "SELECT o.title || ':' || c.status || ':' || encode(a.phone_bidx, 'hex') FROM offering_claims c"
    " JOIN offerings o ON o.id = c.offering_id JOIN accounts a ON a.id = c.account_id"
    " WHERE o.status = 'published'",
    "SELECT v.username || ':' || o.title FROM offering_verifiers v"
    " JOIN offering_verifier_items i ON i.verifier_id = v.id JOIN offerings o ON o.id = i.offering_id",
    "SELECT a.title || ':' || a.published_at::text FROM article_revisions a",
    "SELECT module || ':' || status || ':' || opened_at::text || ':' || coalesce(closed_at::text, '')"
    " FROM work_items",
    "SELECT org_id || ':' || day::text || ':' || counter || ':' || value FROM kpi_daily",
)


async def digest(db) -> tuple[dict[str, int], str]:
    counts = {t: await db.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}  # noqa: S608
    hashes = []
    for query in DIGESTS:
        h = hashlib.sha256()
        for value in sorted(r[0] for r in await db.fetch(query)):
            h.update(value.encode() + b"\n")
        hashes.append(h.hexdigest()[:16])
    return counts, hashes


async def test_the_same_seed_gives_the_same_province(rt, db, clock, clean_db) -> None:
    clock.set(NOW, frozen=True)
    first_demo = await generate(rt, seed=7, **SIZES)
    first = await digest(db)
    await reset_database(clean_db)
    await rt.redis.flushdb()
    second_demo = await generate(rt, seed=7, **SIZES)
    assert await digest(db) == first
    assert first_demo.counts == second_demo.counts
    assert [(w.name, w.phone, w.openid, w.member) for w in first_demo.workers] == \
        [(w.name, w.phone, w.openid, w.member) for w in second_demo.workers]
    assert [(v.username, v.offerings) for v in first_demo.verifiers] == \
        [(v.username, v.offerings) for v in second_demo.verifiers]
    counts, _ = first
    assert counts["accounts"] == 200 and counts["orgs"] > 30 + 183
    assert counts["members"] > 100 and counts["offerings"] > 0 and counts["articles"] > 0
    assert counts["work_items"] > 0
    # Another seed, another province.
    await reset_database(clean_db)
    await rt.redis.flushdb()
    await generate(rt, seed=8, **SIZES)
    assert (await digest(db))[1] != first[1]


async def test_every_demo_cadre_signs_in_and_the_data_is_fictitious(rt, db, clock) -> None:
    clock.set(NOW, frozen=True)
    demo: Demo = await generate(rt, **SIZES)
    assert {c.tour for c in demo.cadres} == {"grassroots", "city", "merchant", "office", ""}
    assert [c.username for c in demo.cadres][:5] == ["jinjiang", "chengdu", "cdoffice", "shop", "office"]
    for cadre in demo.cadres:
        code = pyotp.TOTP(cadre.totp_secret).at(NOW) if cadre.totp_secret else ""
        session = await rt.cadres.login(username=cadre.username, password=DEMO_PASSWORD, totp=code,
                                        ip="127.0.0.1", user_agent="pytest")
        assert session.actor.username == cadre.username and session.actor.role == cadre.role
        assert cadre.display_name and cadre.org_name
    assert {c.role for c in demo.cadres} >= {"operator", "super_admin"}

    today = NOW.date()
    numbers = [rt.pii.decrypt(r["id_number_enc"], ID_COLUMN)
               for r in await db.fetch("SELECT id_number_enc FROM members")]
    assert len(numbers) == demo.counts["members"] > 0
    for number in numbers:
        assert parse_id_number(number, today).number == number and is_demo_id_number(number)
    phones = [rt.pii.decrypt(r["phone_enc"], ACCOUNT_PHONE)
              for r in await db.fetch("SELECT phone_enc FROM accounts")]
    assert len(phones) == len(demo.workers) == 200
    assert all(is_demo_phone(p) for p in phones)
    assert all(is_demo_phone(w.phone) and w.name and w.openid.startswith("oDEMO") for w in demo.workers)
    assert all(r["name"] for r in await db.fetch("SELECT name FROM members"))
    assert sum(w.member for w in demo.workers) == demo.counts["members"]

    # Casework in every state: answered, still open within its limit, and open past it.
    items = await db.fetch("SELECT status, due_at FROM work_items WHERE module = 'appeal'")
    assert {i["status"] for i in items} >= {"open", "closed"}
    assert any(i["status"] == "open" and i["due_at"] and i["due_at"] < NOW for i in items)
    assert await db.fetchval("SELECT count(*) FROM notices WHERE status = 'published'") == 1


async def test_the_province_report_has_figures(rt, clock) -> None:
    clock.set(NOW, frozen=True)
    demo = await generate(rt, **SIZES)
    office = next(c for c in demo.cadres if c.tour == "office")
    code = pyotp.TOTP(office.totp_secret).at(NOW)
    session = await rt.cadres.login(username=office.username, password=DEMO_PASSWORD, totp=code,
                                    ip="127.0.0.1", user_agent="pytest")
    report = await rt.kpi_reports.report(session.actor, "2026")
    figures = {i["code"]: i["value"] for i in report["indicators"]}
    assert figures["registered"] > 0
    assert figures["activities"] >= 1 and figures["services"] >= 1
    assert figures["articles"] >= 1 and figures["visits"] > 0


async def test_the_merchant_tour_redeems_the_first_workers_place(rt, db, clock) -> None:
    clock.set(NOW, frozen=True)
    demo = await generate(rt, **SIZES)
    [verifier] = demo.verifiers
    assert verifier.username == "shopdesk" and verifier.offerings and verifier.org_name
    assert demo.counts["places_confirmed"] >= 6
    signed = await rt.redemption.sign_in(verifier.username, verifier.password, "127.0.0.1")
    assert signed["verifier"]["username"] == "shopdesk"
    me = await rt.redemption.verifier(signed["token"])

    # The first workers are members of the grassroots tour's union, each with confirmed places
    # on an open service and an open activity; the first one's service place is redeemable.
    home = next(c for c in demo.cadres if c.tour == "grassroots").org_name
    assert verifier.org_name == home
    for worker in demo.workers[:3]:
        assert worker.member
        places = [p for p in await rt.signups.mine(worker.account_id) if p["status"] == "confirmed"]
        assert {p["kind"] for p in places} == {"service", "activity"}
    first = demo.workers[0]
    place = next(p for p in await rt.signups.mine(first.account_id)
                 if p["status"] == "confirmed" and p["offering_id"] in me["offering_ids"])
    shown = await rt.redemption.code_for(first.account_id, place["id"])
    status, answer = await rt.redemption.redeem(me, shown["code"], "demo-redeem-0001")
    assert status == 200 and answer["redeemed"] and answer["signup_id"] == place["id"]
    status, again = await rt.redemption.redeem(me, shown["code"], "demo-redeem-0002")
    assert status == 409 and again["error"]["code"] == "already_used"


async def test_the_mini_program_finds_the_official_account_account(rt, db, clock) -> None:
    clock.set(NOW, frozen=True)
    demo = await generate(rt, **SIZES)
    first = demo.workers[0]
    assert await db.fetchval(
        "SELECT account_id FROM account_identities WHERE kind = 'unionid' AND issuer = 'open'"
        " AND subject = $1", unionid_of(first.openid)) == first.account_id
    assert await db.fetchval("SELECT count(*) FROM account_identities WHERE kind = 'unionid'") == 200
    # What /mp/v1/session does with the code's answer (another openid, the same unionid).
    account = await rt.accounts.sign_in_wechat(WeChatIdentity(
        "mp_openid", rt.settings.miniprogram.appid, mp_openid_of(first.openid), unionid_of(first.openid)))
    assert account.id == first.account_id and account.registered
    assert await db.fetchval("SELECT count(*) FROM accounts") == 200


async def test_the_office_has_work_in_every_state(rt, db, clock) -> None:
    clock.set(NOW, frozen=True)
    demo = await generate(rt, **SIZES)
    county = next(c for c in demo.cadres if c.username == "jjzgh")
    code = pyotp.TOTP(county.totp_secret).at(NOW)
    session = await rt.cadres.login(username="jjzgh", password=DEMO_PASSWORD, totp=code, ip="127.0.0.1",
                                    user_agent="pytest")
    assert session.actor.org_path.count(".") == 2     # 锦江区总工会, under 成都
    reviews = await db.fetch(
        "SELECT o.kind, r.verdict, r.passed_up_at IS NOT NULL AS up FROM info_report_reviews r"
        " JOIN orgs o ON o.id = r.org_id")
    assert sorted((r["kind"], r["verdict"] or "", r["up"]) for r in reviews) == [
        ("city", "", False), ("city", "adopted", True),
        ("province", "", False), ("province", "", False), ("province", "adopted", False)]
    assert await db.fetchval("SELECT count(*) FROM info_reports") == demo.counts["info_reports"] == 4
    assert await db.fetchval("SELECT count(*) FROM documents") == demo.counts["documents"] == 3
    assert await db.fetchval("SELECT count(*) FROM meetings WHERE starts_at > $1", NOW) == 2
    assert await db.fetchval("SELECT count(*) FROM meeting_invitees") == 4
    statuses = [r["status"] for r in await db.fetch("SELECT status FROM proposals ORDER BY id")]
    assert statuses == ["reviewing", "reviewing", "seconding"]
    # The first worker is a representative: the congress is on their page.
    assert (await rt.proposals.my_sessions(demo.workers[0].account_id))["sessions"]

