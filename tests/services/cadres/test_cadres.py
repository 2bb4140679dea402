"""Cadre accounts and sign-in: who may create whom, grant what, and how sign-in holds up."""

from __future__ import annotations

import asyncio
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from wxbackend.services.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated

PASSWORD = "Sichuan-Union-2026"
UA = "Mozilla/5.0 (console test)"


def otp(uri: str | None, step_offset: int = 0) -> str:
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    return pyotp.TOTP(secret).at(int(time.time()) + 30 * step_offset)


async def org_id(db, code: str) -> int:
    return await db.fetchval("SELECT id FROM orgs WHERE code = $1", code)


@pytest.fixture
async def office(rt, db):
    """The platform office's operator, signed in."""
    account = await rt.cadres.create_operator(username="office", display_name="平台办公室",
                                              password=PASSWORD)
    session = await rt.cadres.login(username="office", password=PASSWORD, totp=otp(account.totp_uri),
                                    ip="10.0.0.1", user_agent=UA)
    return session.actor


@pytest.fixture
async def wangwu(rt, db, office):
    """超级管理员 王五 of the Chengdu union, signed in."""
    account = await rt.cadres.create_account(
        office, username="wangwu", display_name="王五", org_id=await org_id(db, "SC-510100"),
        role="super_admin", duty="system", password=PASSWORD,
        permissions={"account.manage", "member.review", "kpi.read", "channel.publish"})
    session = await rt.cadres.login(username="wangwu", password=PASSWORD, totp=otp(account.totp_uri),
                                    ip="10.0.0.2", user_agent=UA)
    return session.actor


async def test_the_super_admin_creates_cadres_of_its_own_union_only(rt, db, wangwu) -> None:
    lisi = await rt.cadres.create_account(
        wangwu, username="lisi", display_name="李四", org_id=wangwu.org_id, role="cadre",
        duty="business", password=PASSWORD, permissions={"member.review"})
    assert lisi.totp_uri is None  # cadres need TOTP only when configured
    with pytest.raises(Forbidden) as other_union:
        await rt.cadres.create_account(
            wangwu, username="x1", display_name="某", org_id=await org_id(db, "SC-510300"),
            role="cadre", duty="business", password=PASSWORD, permissions=set())
    assert other_union.value.code == "outside_subtree"
    with pytest.raises(Forbidden) as beyond:
        await rt.cadres.create_account(
            wangwu, username="x2", display_name="某", org_id=wangwu.org_id, role="cadre",
            duty="business", password=PASSWORD, permissions={"member.export"})
    assert beyond.value.code == "grant_beyond_own"
    with pytest.raises(Forbidden) as admin:
        await rt.cadres.create_account(
            wangwu, username="x3", display_name="某", org_id=wangwu.org_id, role="super_admin",
            duty="system", password=PASSWORD, permissions=set())
    assert admin.value.code == "super_admin_by_platform"
    names = [c["username"] for c in await rt.cadres.list_cadres(wangwu)]
    assert names == ["wangwu", "lisi"]  # the province's operator is outside his subtree
    assert await db.fetchval("SELECT count(*) FROM cadres WHERE username LIKE 'x%'") == 0


async def test_changing_a_super_admin_is_filed_and_visible_above(rt, db, office, wangwu) -> None:
    [session] = [k for k in await rt.redis.keys("admin:current:*") if k.endswith(f":{wangwu.id}")]
    wangwu_token_digest = await rt.redis.get(session)
    with pytest.raises(Conflict):
        await rt.cadres.create_account(office, username="zhaoliu", display_name="赵六",
                                       org_id=wangwu.org_id, role="super_admin", duty="system",
                                       password=PASSWORD, permissions={"account.manage"})
    await rt.cadres.create_account(office, username="zhaoliu", display_name="赵六",
                                   org_id=wangwu.org_id, role="super_admin", duty="system",
                                   password=PASSWORD, permissions={"account.manage"}, replace=True)
    filings = await rt.cadres.filings(office)
    assert [(f["username"], f["action"]) for f in filings] == [("wangwu", "appointed"),
                                                               ("zhaoliu", "replaced")]
    assert await db.fetchval("SELECT status FROM cadres WHERE username = 'wangwu'") == "disabled"
    # his open session ended with the change, and says why
    assert await rt.redis.get(f"admin:sess:{wangwu_token_digest}") is None
    assert await rt.redis.get(f"admin:ended:{wangwu_token_digest}") == "replaced"


async def test_grants_go_to_own_cadres_or_lower_super_admins_only(rt, db, office, wangwu) -> None:
    lisi = await rt.cadres.create_account(wangwu, username="lisi", display_name="李四",
                                          org_id=wangwu.org_id, role="cadre", duty="business",
                                          password=PASSWORD, permissions=set())
    assert await rt.cadres.set_permissions(wangwu, lisi.id, {"kpi.read"}) == ["kpi.read"]
    with pytest.raises(Forbidden):
        await rt.cadres.set_permissions(wangwu, lisi.id, {"audit.read"})
    office_id = await db.fetchval("SELECT id FROM cadres WHERE username = 'office'")
    with pytest.raises(NotFound):  # outside the subtree looks like nothing at all
        await rt.cadres.set_permissions(wangwu, office_id, set())
    with pytest.raises(Forbidden) as own:
        await rt.cadres.set_permissions(wangwu, wangwu.id, {"member.export"})
    assert own.value.code == "self_grant"


async def test_passwords_are_argon2id_strong_and_not_reused(rt, db, wangwu) -> None:
    stored = await db.fetchval("SELECT password_hash FROM cadres WHERE username = 'wangwu'")
    assert stored.startswith("$argon2id$")
    for weak in ("short1A!", "alllowercaseletters", "wangwu-Password-1"):
        with pytest.raises(InvalidInput):
            rt.cadres.check_password_rules(weak, "wangwu")
    await rt.cadres.change_password(wangwu, PASSWORD, "Another-Strong-Pass-1")
    with pytest.raises(InvalidInput) as reused:
        await rt.cadres.change_password(wangwu, "Another-Strong-Pass-1", PASSWORD)
    assert reused.value.code == "password_reused"


async def test_wrong_factors_lock_the_device_out_with_one_answer_for_all(rt, db, office, wangwu) -> None:
    for _ in range(5):
        with pytest.raises(Unauthenticated) as wrong:
            await rt.cadres.login(username="wangwu", password="Not-The-Password-1", totp="000000",
                                  ip="10.9.9.9", user_agent=UA)
        assert wrong.value.code == "login_failed"
    with pytest.raises(Unauthenticated) as locked:  # the right password: locked, but not said so
        await rt.cadres.login(username="wangwu", password=PASSWORD, totp="000000", ip="10.9.9.9",
                              user_agent=UA)
    assert (locked.value.code, locked.value.status) == ("login_failed", 401)
    failures = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'login.failed'")
    assert failures == 6
    with pytest.raises(Unauthenticated) as unknown:  # unknown users get the same answer
        await rt.cadres.login(username="nobody", password=PASSWORD, totp="", ip="", user_agent=UA)
    assert (unknown.value.code, unknown.value.message) == (locked.value.code, locked.value.message)


async def test_a_totp_code_works_once(rt, db) -> None:
    account = await rt.cadres.create_operator(username="office2", display_name="平台", password=PASSWORD)
    code = otp(account.totp_uri)
    await rt.cadres.login(username="office2", password=PASSWORD, totp=code, ip="1", user_agent=UA)
    with pytest.raises(Unauthenticated):
        await rt.cadres.login(username="office2", password=PASSWORD, totp=code, ip="1", user_agent=UA)


async def test_one_session_per_account_and_idle_timeout(rt, db) -> None:
    account = await rt.cadres.create_operator(username="office3", display_name="平台", password=PASSWORD)
    first = await rt.cadres.login(username="office3", password=PASSWORD, totp=otp(account.totp_uri),
                                  ip="1.1.1.1", user_agent=UA)
    assert first.new_device
    second = await rt.cadres.login(username="office3", password=PASSWORD,
                                   totp=otp(account.totp_uri, 1), ip="2.2.2.2", user_agent="Other")
    assert second.replaced_other and second.new_device
    with pytest.raises(Unauthenticated) as ended:
        await rt.cadres.authenticate(first.token)
    assert ended.value.code == "session_replaced"
    actor, _ = await rt.cadres.authenticate(second.token)
    assert actor.username == "office3"
    ttl = await rt.redis.ttl(f"admin:sess:{hashlib.sha256(second.token.encode()).hexdigest()}")
    assert 29 * 60 < ttl <= 30 * 60  # idle timeout, refreshed by each request
    await rt.redis.expire(f"admin:sess:{hashlib.sha256(second.token.encode()).hexdigest()}", 1)
    await asyncio.sleep(1.2)
    with pytest.raises(Unauthenticated) as idle:
        await rt.cadres.authenticate(second.token)
    assert idle.value.code == "session_expired"


async def test_every_action_is_in_an_intact_audit_trail(rt, db, wangwu) -> None:
    await rt.cadres.create_account(wangwu, username="lisi", display_name="李四", org_id=wangwu.org_id,
                                   role="cadre", duty="business", password=PASSWORD,
                                   permissions={"kpi.read"})
    actions = [r["action"] for r in await db.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["operator.create", "login.new_device", "super_admin.create",
                       "login.new_device", "cadre.create"]
    count, breaks = await rt.audit.verify(db)
    assert count == 5 and breaks == []


async def test_periodic_verification_flags_then_disables(rt, db, wangwu) -> None:
    lisi = await rt.cadres.create_account(wangwu, username="lisi", display_name="李四",
                                          org_id=wangwu.org_id, role="cadre", duty="business",
                                          password=PASSWORD, permissions=set())
    queue = await rt.cadres.verification_queue(wangwu)
    assert [(c["username"], c["state"]) for c in queue["cadres"]] == [("lisi", "ok")]
    await db.execute("UPDATE cadres SET verified_at = now() - interval '95 days' WHERE id = $1", lisi.id)
    assert (await rt.cadres.verification_queue(wangwu))["cadres"][0]["state"] == "overdue"
    assert await rt.cadres.sweep_overdue(grace_days=14) == []          # within the grace period
    await db.execute("UPDATE cadres SET verified_at = now() - interval '120 days' WHERE id = $1", lisi.id)
    assert await rt.cadres.sweep_overdue(grace_days=14) == ["lisi"]
    assert await db.fetchval("SELECT status FROM cadres WHERE id = $1", lisi.id) == "disabled"
    with pytest.raises(Forbidden):  # a disabled account is not re-confirmed back to life here
        await rt.cadres.verify(wangwu, lisi.id)


async def test_verification_resets_the_clock_and_is_audited(rt, db, wangwu) -> None:
    lisi = await rt.cadres.create_account(wangwu, username="lisi", display_name="李四",
                                          org_id=wangwu.org_id, role="cadre", duty="business",
                                          password=PASSWORD, permissions=set())
    await db.execute("UPDATE cadres SET verified_at = now() - interval '95 days' WHERE id = $1", lisi.id)
    await rt.cadres.verify(wangwu, lisi.id)
    assert (await rt.cadres.verification_queue(wangwu))["cadres"][0]["state"] == "ok"
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'cadre.verify'") == 1
    with pytest.raises(Forbidden):
        await rt.cadres.verify(wangwu, wangwu.id)


async def test_the_audit_view_is_for_the_audit_role_within_its_subtree(rt, db, office, wangwu) -> None:
    with pytest.raises(Forbidden):
        await rt.cadres.audit_records(wangwu, None)
    auditor = await rt.cadres.create_operator(username="auditor", display_name="审计员", password=PASSWORD,
                                              duty="audit")
    actor = (await rt.cadres.login(username="auditor", password=PASSWORD, totp=otp(auditor.totp_uri),
                                   ip="3.3.3.3", user_agent=UA)).actor
    assert actor.permissions == {"audit.read"}
    with pytest.raises(Forbidden):  # the audit role manages no accounts
        await rt.cadres.list_cadres(actor)
    page = await rt.cadres.audit_records(actor, None, limit=3)
    assert [r["action"] for r in page["records"]][:1] == ["login.new_device"]
    assert len(page["records"]) == 3 and page["next_before"] is not None
    rest = await rt.cadres.audit_records(actor, page["next_before"], limit=50)
    assert {r["id"] for r in rest["records"]}.isdisjoint({r["id"] for r in page["records"]})


async def test_the_work_ledger_is_watermarked_and_its_export_audited(rt, db, wangwu) -> None:
    from io import BytesIO

    from openpyxl import load_workbook
    await rt.cadres.create_account(wangwu, username="lisi", display_name="李四", org_id=wangwu.org_id,
                                   role="cadre", duty="business", password=PASSWORD,
                                   permissions={"kpi.read"})
    data, filename = await rt.cadres.ledger_xlsx(wangwu)
    assert filename.startswith("工作台账-") and filename.endswith(".xlsx")
    sheet = load_workbook(BytesIO(data)).active
    assert "导出人：wangwu" in sheet["A2"].value
    actions = [row[3] for row in sheet.iter_rows(min_row=5, values_only=True)]
    assert "创建干部账号" in actions
    assert "创建平台账号" not in actions  # the province is outside his subtree
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'ledger.export'") == 1


async def test_cadre_changes_are_in_the_base_data_change_log(rt, db, office, wangwu) -> None:
    changes = await db.fetch("SELECT entity_id, action, data, actor FROM base_data_changes "
                             "WHERE entity = 'cadre' ORDER BY id")
    who = [(c["action"], c["actor"]) for c in changes]
    assert who == [("created", "cli"), ("created", f"cadre:{office.id}")]
    assert changes[1]["entity_id"] == str(wangwu.id) and changes[1]["data"]["role"] == "super_admin"
    assert "王五" not in str([dict(c["data"]) for c in changes])     # no personal data
    await rt.cadres.set_permissions(office, wangwu.id, {"kpi.read"})
    last = await db.fetchrow("SELECT action, data FROM base_data_changes ORDER BY id DESC LIMIT 1")
    assert last["action"] == "permissions_changed" and last["data"]["permissions"] == ["kpi.read"]
