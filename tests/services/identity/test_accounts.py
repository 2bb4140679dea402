"""One person, one account: the identity rules on real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tests.conftest import APPID, MP_APPID
from wxbackend.runtime import Runtime
from wxbackend.services.errors import Conflict, InvalidInput, NotFound
from wxbackend.services.identity.accounts import PHONE_COLUMN, WeChatIdentity
from wxbackend.services.messaging.outbox import custom_text
from wxbackend.store.messaging import outbox

ZHANGSAN_PHONE = "13800000001"  # 职工 张三


def oa(openid: str, unionid: str | None = None) -> WeChatIdentity:
    return WeChatIdentity("oa_openid", APPID, openid, unionid)


def mp(openid: str, unionid: str | None = None) -> WeChatIdentity:
    return WeChatIdentity("mp_openid", MP_APPID, openid, unionid)


async def register(rt: Runtime, account_id: int, phone: str = ZHANGSAN_PHONE):
    await rt.accounts.verify_phone(account_id, phone, "sms")
    await rt.accounts.set_region(account_id, "510104")
    return await rt.accounts.accept_privacy(account_id, rt.accounts.privacy_version)


async def test_the_same_openid_finds_the_same_account(rt) -> None:
    first = await rt.accounts.sign_in_wechat(oa("oZhang"))
    again = await rt.accounts.sign_in_wechat(oa("oZhang"))
    assert first.id == again.id
    assert not first.registered


async def test_unionid_joins_the_official_account_and_the_mini_program(rt, db) -> None:
    a = await rt.accounts.sign_in_wechat(oa("oZhang", "uZhang"))
    b = await rt.accounts.sign_in_wechat(mp("mZhang", "uZhang"))
    assert a.id == b.id
    kinds = {r["kind"] for r in await db.fetch(
        "SELECT kind FROM account_identities WHERE account_id = $1", a.id)}
    assert kinds == {"oa_openid", "mp_openid", "unionid"}


async def test_a_late_unionid_merges_two_accounts_of_one_person(rt, db) -> None:
    oa_only = await rt.accounts.sign_in_wechat(oa("oZhang"))            # snsapi_base: no unionid
    mp_acct = await rt.accounts.sign_in_wechat(mp("mZhang", "uZhang"))
    await register(rt, mp_acct.id)
    merged = await rt.accounts.sign_in_wechat(oa("oZhang", "uZhang"))  # now WeChat tells us
    assert merged.id == mp_acct.id and merged.registered
    old = await db.fetchrow("SELECT status, merged_into FROM accounts WHERE id = $1", oa_only.id)
    assert (old["status"], old["merged_into"]) == ("merged", mp_acct.id)
    assert (await rt.accounts.get_account(oa_only.id)).id == mp_acct.id  # old sessions follow
    log = await db.fetch("SELECT action FROM base_data_changes WHERE entity_id = $1", str(oa_only.id))
    assert "merged" in [r["action"] for r in log]


async def test_two_accounts_with_different_phones_are_never_merged(rt, db) -> None:
    a = await rt.accounts.sign_in_wechat(oa("oZhang"))
    await rt.accounts.verify_phone(a.id, "13800000001", "sms")
    b = await rt.accounts.sign_in_wechat(mp("mZhang", "uZhang"))
    await rt.accounts.verify_phone(b.id, "13900000002", "miniprogram")
    result = await rt.accounts.sign_in_wechat(oa("oZhang", "uZhang"))
    assert result.id == a.id
    assert await db.fetchval("SELECT count(*) FROM accounts WHERE status = 'active'") == 2
    conflict = await db.fetchrow("SELECT * FROM account_conflicts")
    assert conflict["reason"] == "unionid_links_two_accounts" and conflict["status"] == "open"


async def test_a_verified_phone_links_a_wechat_identity_to_an_existing_account(rt, db) -> None:
    app_user = await rt.accounts.account_for_phone(ZHANGSAN_PHONE)  # signed up on a website
    wechat = await rt.accounts.sign_in_wechat(oa("oZhang"))
    assert wechat.id != app_user.id
    linked = await rt.accounts.verify_phone(wechat.id, ZHANGSAN_PHONE, "sms")
    assert linked.id == app_user.id
    assert await db.fetchval(
        "SELECT account_id FROM account_identities WHERE subject = 'oZhang'") == app_user.id


async def test_a_phone_held_elsewhere_is_a_reported_conflict(rt, db) -> None:
    a = await rt.accounts.sign_in_wechat(oa("oZhang"))
    await rt.accounts.verify_phone(a.id, "13800000001", "sms")
    b = await rt.accounts.sign_in_wechat(oa("oLisi"))
    await rt.accounts.verify_phone(b.id, "13900000002", "sms")
    with pytest.raises(Conflict) as info:
        await rt.accounts.verify_phone(b.id, "13800000001", "sms")
    assert info.value.code == "phone_conflict"
    assert "工会工作人员" in info.value.message
    assert await db.fetchval("SELECT reason FROM account_conflicts") == "phone_held_by_another"
    assert (await rt.accounts.get_account(b.id)).phone_masked == "139****0002"


async def test_registration_needs_phone_privacy_and_region(rt, db) -> None:
    a = await rt.accounts.sign_in_wechat(oa("oZhang"))
    a = await rt.accounts.verify_phone(a.id, ZHANGSAN_PHONE, "sms")
    assert not a.registered
    a = await rt.accounts.set_region(a.id, "510104")
    assert not a.registered and a.region_name == "锦江区"
    a = await rt.accounts.accept_privacy(a.id, rt.accounts.privacy_version)
    assert a.registered
    row = await db.fetchrow("""SELECT a.privacy_version, a.privacy_accepted_at, o.name
                               FROM accounts a JOIN orgs o ON o.id = a.home_org_id WHERE a.id = $1""", a.id)
    assert row["name"] == "成都市总工会" and row["privacy_accepted_at"] is not None
    changes = [r["action"] for r in await db.fetch(
        "SELECT action FROM base_data_changes WHERE entity_id = $1 ORDER BY id", str(a.id))]
    assert changes == ["created", "registered"]


@pytest.mark.parametrize(("call", "arg", "code"), [
    ("verify_phone", "12345", "invalid_phone"),
    ("set_region", "110101", "invalid_region"),
    ("accept_privacy", "2019-01", "privacy_version_outdated"),
])
async def test_bad_input_changes_nothing(rt, db, call, arg, code) -> None:
    a = await rt.accounts.sign_in_wechat(oa("oZhang"))
    before = await db.fetchrow("SELECT * FROM accounts WHERE id = $1", a.id)
    with pytest.raises(InvalidInput) as info:
        if call == "verify_phone":
            await rt.accounts.verify_phone(a.id, arg, "sms")
        else:
            await getattr(rt.accounts, call)(a.id, arg)
    assert info.value.code == code
    assert await db.fetchrow("SELECT * FROM accounts WHERE id = $1", a.id) == before


async def test_phones_are_encrypted_and_found_by_blind_index(rt, db) -> None:
    a = await register(rt, (await rt.accounts.sign_in_wechat(oa("oZhang"))).id)
    row = await db.fetchrow("SELECT phone_enc, phone_bidx FROM accounts WHERE id = $1", a.id)
    assert ZHANGSAN_PHONE.encode() not in row["phone_enc"]
    assert rt.pii.decrypt(row["phone_enc"], PHONE_COLUMN) == ZHANGSAN_PHONE
    assert (await rt.accounts.resolve_phone("+86 138-0000-0001")).id == a.id
    assert a.phone_masked == "138****0001"


async def test_export_shows_what_is_held(rt) -> None:
    a = await register(rt, (await rt.accounts.sign_in_wechat(oa("oZhang", "uZhang"))).id)
    data = await rt.accounts.export_data(a.id)
    assert data["account"]["phone"] == ZHANGSAN_PHONE
    assert {i["kind"] for i in data["identities"]} == {"oa_openid", "unionid"}
    assert data["privacy_accepted_at"] is not None


async def test_cancellation_deletes_personal_data_and_keeps_the_kpi_facts(rt, db) -> None:
    a = await register(rt, (await rt.accounts.sign_in_wechat(oa("oZhang", "uZhang"))).id)
    await rt.accounts.cancel(a.id)
    row = await db.fetchrow("SELECT * FROM accounts WHERE id = $1", a.id)
    assert row["status"] == "cancelled"
    for column in ("phone_enc", "phone_bidx", "nickname", "region_code", "privacy_version"):
        assert row[column] is None, column
    assert row["registered_at"] is not None and row["home_org_id"] is not None
    assert await db.fetchval("SELECT count(*) FROM account_identities WHERE account_id = $1", a.id) == 0
    with pytest.raises(NotFound):
        await rt.accounts.get_account(a.id)
    again = await rt.accounts.sign_in_wechat(oa("oZhang", "uZhang"))  # a fresh start
    assert again.id != a.id and not again.registered
    with pytest.raises(asyncpg.RaiseError):  # the change log is append-only
        await db.execute("DELETE FROM base_data_changes")


async def test_concurrent_sign_ins_of_one_person_make_one_account(rt, db) -> None:
    results = await asyncio.gather(*(rt.accounts.sign_in_wechat(mp("mZhang", "uZhang"))
                                     for _ in range(5)), return_exceptions=True)
    ids = {r.id for r in results if not isinstance(r, BaseException)}
    assert len(ids) == 1
    assert await db.fetchval("SELECT count(*) FROM accounts WHERE status = 'active'") == 1


async def test_conflicts_are_resolved_explicitly(rt, db) -> None:
    a = await rt.accounts.sign_in_wechat(oa("oZhang"))
    await rt.accounts.verify_phone(a.id, "13800000001", "sms")
    b = await rt.accounts.sign_in_wechat(mp("mZhang", "uZhang"))
    await rt.accounts.verify_phone(b.id, "13900000002", "miniprogram")
    await rt.accounts.sign_in_wechat(oa("oZhang", "uZhang"))  # records the conflict
    [conflict] = await rt.accounts.list_conflicts()
    with pytest.raises(InvalidInput):
        await rt.accounts.resolve_conflict(conflict["id"], action="merge", keep="not-one-of-them",
                                           by="王五")
    outcome = await rt.accounts.resolve_conflict(conflict["id"], action="merge",
                                                 keep=conflict["other"], by="王五")
    assert outcome == "merged"
    survivor = await rt.accounts.by_public_id(conflict["other"])
    assert survivor.phone_masked == "139****0002"
    assert (await rt.accounts.get_account(a.id)).id == survivor.id  # the other one follows
    assert await rt.accounts.list_conflicts() == []
    row = await db.fetchrow("SELECT status, resolution FROM account_conflicts")
    assert row["status"] == "resolved" and "王五" in row["resolution"]
    with pytest.raises(NotFound):
        await rt.accounts.resolve_conflict(conflict["id"], action="separate", by="王五")


async def test_the_data_export_masks_the_member_id_number(rt, db) -> None:
    from tests.services.membership.test_membership import ZHANG_ID, roster_member
    from wxbackend.store.membership import orgs as org_store

    union = await org_store.create_grassroots(
        db, parent_id=await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'"),
        name="成都天府软件有限公司工会", credit_code=None, employer_name=None, region_code=None,
        founded_via_platform=False)
    await roster_member(rt, db, union["id"], "张三", ZHANG_ID, ZHANGSAN_PHONE)
    a = await register(rt, (await rt.accounts.sign_in_wechat(oa("oZhang"))).id)
    await rt.membership.certify(a.id, {"name": "张三", "id_number": ZHANG_ID}, "10.9.0.1")
    data = await rt.accounts.export_data(a.id)
    assert data["member"]["id_number"] == ZHANG_ID[:4] + "*" * 10 + ZHANG_ID[-4:]
    assert ZHANG_ID not in str(data)
    assert data["account"]["phone"] == ZHANGSAN_PHONE        # the verified phone: their own


async def test_cancellation_forgets_what_the_official_account_recorded(rt, db, pusher) -> None:
    a = await register(rt, (await rt.accounts.sign_in_wechat(oa("oZhang", "uZhang"))).id)
    pushes = [pusher.event("oZhang", "subscribe"),
              pusher.text("oZhang", "我的身份证号码是510104199003071316，手机13800000001"),
              pusher.event("oZhang", "LOCATION", Latitude="30.657", Longitude="104.066", Precision="65")]
    for xml in [*pushes, pusher.text("oOther", "入会")]:
        await rt.inbox.handle(rt.envelope.open(*pusher.request(xml)), lambda: None)
    assert await db.fetchval("SELECT latitude FROM wechat_followers WHERE openid = 'oZhang'") == 30.657
    for openid in ("oZhang", "oOther"):   # what we told each of them
        await outbox.enqueue(db, "custom", custom_text(openid, "您的入会申请已通过。"), f"decision:{openid}")
    await rt.accounts.cancel(a.id)
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE payload->>'touser' = 'oZhang'") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE payload->>'touser' = 'oOther'") == 1
    assert await db.fetchval("SELECT count(*) FROM wechat_followers WHERE openid = 'oZhang'") == 0
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound WHERE openid = 'oZhang'") == 0
    # another follower's records stay
    assert await db.fetchval("SELECT count(*) FROM wechat_inbound WHERE openid = 'oOther'") == 1
    assert await db.fetchval("SELECT count(*) FROM wechat_followers WHERE openid = 'oOther'") == 1
