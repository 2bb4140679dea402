"""Workers and an organiser for the activity tests: many workers are made straight in SQL (their
sealed personal data plays no part here), the organiser through the cadre service."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.services.cadres.test_cadres import PASSWORD, UA, org_id, otp
from wxbackend.services.clock import CHINA
from wxbackend.services.identity.accounts import PHONE_COLUMN
from wxbackend.store.membership import orgs as org_store

# A Monday morning well ahead of Redis's own clock, so keys that expire at a China day's end live.
T0 = datetime(2030, 6, 3, 9, 0, tzinfo=CHINA)


async def make_workers(db, n: int, union_id: int | None, *, level: str = "certified",
                       home_code: str = "SC-510100", pii=None, **member) -> list[int]:
    """``n`` registered accounts with a verified phone and a home union; with ``union_id`` each
    also has a linked member record there (``level`` "member": retained, not active). The
    phones are placeholders unless ``pii`` is given (pages that show the account need real ones)."""
    home = await org_id(db, home_code)
    ids = [r["id"] for r in await db.fetch(
        """INSERT INTO accounts (registered_at, home_org_id, phone_enc, phone_bidx, phone_verified_at)
           SELECT now(), $1, '\\x00'::bytea, uuid_send(gen_random_uuid()), now() FROM generate_series(1, $2)
           RETURNING id""", home, n)]
    if pii is not None:
        await db.executemany("UPDATE accounts SET phone_enc = $2 WHERE id = $1",
                             [(a, pii.encrypt(f"139{a:08d}", PHONE_COLUMN)) for a in ids])
    if union_id is not None:
        await db.executemany(
            """INSERT INTO members (org_id, member_no, name, id_number_enc, id_number_bidx, gender,
                   birth_date, source, joined_on, account_id, certified_at, status, migrant_worker,
                   household_type, job)
               VALUES ($1, 'T' || $2::bigint, '测试', '\\x00', uuid_send(gen_random_uuid()), 1, '1990-01-01',
                       'roster', '2020-01-01', $2::bigint, now(), $3, $4, $5, $6)""",
            [(union_id, a, "active" if level == "certified" else "retained",
              member.get("migrant_worker", False), member.get("household_type"), member.get("job"))
             for a in ids])
    return ids


@pytest.fixture
async def unions(rt, db) -> dict:
    chengdu, dazhou = await org_id(db, "SC-510100"), await org_id(db, "SC-511700")
    out = {"chengdu": chengdu, "dazhou_city": dazhou}
    for key, parent, name in (("tianfu", chengdu, "成都天府软件有限公司工会"),
                              ("jinjiang", chengdu, "锦江宾馆工会"), ("dazhou", dazhou, "达州钢铁工会")):
        row = await org_store.create_grassroots(db, parent_id=parent, name=name, credit_code=None,
                                                employer_name=name.removesuffix("工会"),
                                                region_code=None, founded_via_platform=False)
        out[key] = row["id"]
    return out


@pytest.fixture
async def organiser(rt, db, clock):
    """A Chengdu cadre holding activity.manage and service.manage, signed in (at the real time,
    for its one-time codes); then the clock moves to ``T0``."""
    office_account = await rt.cadres.create_operator(username="office", display_name="平台",
                                                     password=PASSWORD)
    office = (await rt.cadres.login(username="office", password=PASSWORD,
                                    totp=otp(office_account.totp_uri),
                                    ip="10.0.0.1", user_agent=UA)).actor
    account = await rt.cadres.create_account(
        office, username="zhaoliu", display_name="赵六", org_id=await org_id(db, "SC-510100"),
        role="super_admin", duty="business", password=PASSWORD,
        permissions={"activity.manage", "service.manage"})
    actor = (await rt.cadres.login(username="zhaoliu", password=PASSWORD, totp=otp(account.totp_uri),
                                   ip="10.0.0.2", user_agent=UA)).actor
    clock.set(T0)
    return actor


def item_body(**overrides) -> dict:
    """A first-come coupon open from T0 for a day."""
    body = {"kind": "service", "form": "coupon", "mode": "first_come", "title": "电影优惠券",
            "summary": "每人一张", "place": "成都", "opens_at": T0.isoformat(),
            "closes_at": (T0 + timedelta(days=1)).isoformat(), "stock": 20, "per_person": 1,
            "hold_minutes": 30, "audience": {"level": "certified"}}
    body.update(overrides)
    return body


async def published(rt, organiser, **overrides) -> dict:
    item = await rt.catalogue.create(organiser, item_body(**overrides))
    return await rt.catalogue.set_status(organiser, item["id"], "published")

