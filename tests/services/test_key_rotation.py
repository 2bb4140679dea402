"""Field-key rotation on a populated database: every sealed column is re-encrypted under the new
key, the old key can then be retired, and the product keeps working (lookups by blind index are
unaffected)."""

from __future__ import annotations

from tests.conftest import make_settings
from tests.services.membership.test_membership import LI_ID, ZHANG_ID, join_form, roster_member, worker
from wxbackend.infra.pii import PersonalData
from wxbackend.runtime import open_runtime, personal_data
from wxbackend.services.key_rotation import reseal_all

OLD, NEW = "MDEyMzQ1Njc4OWFiY2RlZg==", "bmV3LWtleS0yMDI2LTExIQ=="


async def key_ids(db) -> dict[str, set[int]]:
    return {
        "accounts.phone": set(await db.fetchval(
            "SELECT array_agg(DISTINCT get_byte(phone_enc, 1)) FROM accounts WHERE phone_enc IS NOT NULL")),
        "members.id_number": set(await db.fetchval(
            "SELECT array_agg(DISTINCT get_byte(id_number_enc, 1)) FROM members")),
        "applications.id_number": set(await db.fetchval(
            "SELECT array_agg(DISTINCT get_byte(id_number_enc, 1)) FROM applications")),
        "cadres.totp_secret": set(await db.fetchval(
            "SELECT array_agg(DISTINCT get_byte(totp_secret_enc, 1)) FROM cadres")),
    }


async def test_reseal_moves_everything_to_the_new_key(rt, db, unions, backing, fake_wechat) -> None:
    member_id = await roster_member(rt, db, unions["tianfu"], "张三", ZHANG_ID, "13800000001")
    zhang = await worker(rt, "oZhang")
    li = await worker(rt, "oLi", "13900000002")
    await rt.membership.apply_join(li, join_form(unions["jinjiang"], name="李四", number=LI_ID))
    await rt.cadres.create_operator(username="office", display_name="平台", password="Sichuan-Union-2026")
    assert set().union(*(await key_ids(db)).values()) == {1}

    rotated = make_settings(fake_wechat.base_url,
                            security={"field_keys": f"1:{OLD},2:{NEW}", "field_key_current": 2})
    async with open_runtime(rotated, backing.dsn, backing.redis_url) as new_rt:
        done = await reseal_all(new_rt.pool, new_rt.pii, batch=1)   # many small batches
        assert done["accounts.phone"] == 2 and done["members.id_number"] == 1
        assert done["applications.id_number"] == 1 and done["cadres.totp_secret"] == 1
        assert all(ids == {2} for ids in (await key_ids(db)).values())
        assert set((await reseal_all(new_rt.pool, new_rt.pii)).values()) == {0}   # nothing left

    # the old key retired: everything still reads, and certification still finds the record
    retired = make_settings(fake_wechat.base_url,
                            security={"field_keys": f"2:{NEW}", "field_key_current": 2})
    only_new: PersonalData = personal_data(retired)
    row = await db.fetchrow("SELECT id_number_enc, phone_enc FROM members")
    assert only_new.decrypt(row["id_number_enc"], "members.id_number") == ZHANG_ID
    async with open_runtime(retired, backing.dsn, backing.redis_url) as last_rt:
        member = await last_rt.membership.certify(zhang, {"name": "张三", "id_number": ZHANG_ID},
                                                  "10.9.9.9")
        assert member["id"] == member_id and member["phone"] == "138****0001"
