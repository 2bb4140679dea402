"""Fixtures shared by the membership service tests: grassroots unions and a reviewing cadre."""

from __future__ import annotations

import pytest

from tests.services.cadres.test_cadres import PASSWORD, UA, org_id, otp
from wxbackend.store.membership import orgs as org_store


@pytest.fixture
async def unions(rt, db) -> dict:
    """Two grassroots unions under 成都, one under 达州 (outside a Chengdu cadre's subtree)."""
    chengdu, dazhou = await org_id(db, "SC-510100"), await org_id(db, "SC-511700")
    out = {}
    for key, parent, name in (("tianfu", chengdu, "成都天府软件有限公司工会"),
                              ("jinjiang", chengdu, "锦江宾馆工会"), ("dazhou", dazhou, "达州钢铁工会")):
        row = await org_store.create_grassroots(db, parent_id=parent, name=name, credit_code=None,
                                                employer_name=name.removesuffix("工会"),
                                                region_code=None, founded_via_platform=False)
        out[key] = row["id"]
    return out


@pytest.fixture
async def reviewer(rt, db):
    """A Chengdu super admin holding member.review (and org.manage), signed in."""
    office_account = await rt.cadres.create_operator(username="office", display_name="平台",
                                                     password=PASSWORD)
    office = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office_account.totp_uri),
                                    ip="10.0.0.1", user_agent=UA)).actor
    account = await rt.cadres.create_account(
        office, username="wangwu", display_name="王五", org_id=await org_id(db, "SC-510100"),
        role="super_admin", duty="system", password=PASSWORD,
        permissions={"member.review", "org.manage", "member.import", "member.export", "account.manage"})
    return (await rt.cadres.login(username="wangwu", password=PASSWORD, totp=otp(account.totp_uri),
                                  ip="10.0.0.2", user_agent=UA)).actor
