"""A worker's activity and service pages and a merchant's redemption page, in a real browser."""

from __future__ import annotations

from datetime import timedelta

from tests.browser.conftest import expect, require_browser
from tests.browser.test_membership_pages import h5_page  # noqa: F401 - a fixture
from tests.services.activities.conftest import make_workers
from wxbackend.store.membership import orgs as org_store

require_browser()


async def union(db) -> int:
    chengdu = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
    row = await org_store.create_grassroots(db, parent_id=chengdu, name="天府软件工会", credit_code=None,
                                            employer_name="天府软件", region_code=None,
                                            founded_via_platform=False)
    return row["id"]


async def item(rt, db, union_id: int, **fields) -> int:
    """A published first-come coupon open to certified members of ``union_id``."""
    now = rt.clock()
    return await db.fetchval(
        """INSERT INTO offerings (kind, form, org_id, org_path, title, opens_at, closes_at, mode,
                                  stock, audience, status, place)
           SELECT $2, $3, id, path, $4, $5, $6, 'first_come', $7,
                  jsonb_build_object('level', 'certified', 'orgs', jsonb_build_array($1::bigint)),
                  'published', '锦江区' FROM orgs WHERE code = 'SC-510100' RETURNING id""",
        union_id, fields.get("kind", "service"), fields.get("form", "coupon"), fields["title"],
        now - timedelta(minutes=1), now + timedelta(days=1), fields.get("stock", 1))


async def test_a_worker_claims_confirms_shows_a_code_and_a_merchant_redeems_it(h5_page, browser, server, rt,  # noqa: F811
                                                                                  db) -> None:
    members_union = await union(db)
    coupon = await item(rt, db, members_union, title="一元观影券")
    first, second = await make_workers(db, 2, members_union, pii=rt.pii)
    [outsider] = await make_workers(db, 1, None, pii=rt.pii)

    page = await h5_page(first, "/h5/services.html")
    card = page.locator(f"#item-{coupon}")
    await expect(card).to_contain_text("一元观影券")
    await card.get_by_role("button", name="立即抢").click()
    await expect(card.locator(".ok")).to_contain_text("已为您保留名额")

    other = await h5_page(second, "/h5/services.html")
    late = other.locator(f"#item-{coupon}")
    await late.get_by_role("button", name="立即抢").click()
    await expect(late.locator(".error")).to_have_text("已抢完")
    await expect(late.get_by_role("button", name="立即抢")).to_be_disabled()

    stranger = await h5_page(outsider, "/h5/services.html")
    await expect(stranger.locator(f"#item-{coupon} .notice")).to_contain_text("不能参加")
    await expect(stranger.locator(f"#item-{coupon} button")).to_have_count(0)

    await page.goto("/h5/signups.html")
    await page.get_by_role("button", name="确认名额").click()
    await page.get_by_role("button", name="出示券码").click()
    image = page.locator("img.code")
    await expect(image).to_be_visible()
    await page.wait_for_function(  # the QR drawn by the server, loaded
        "() => { const i = document.querySelector('img.code'); return i.complete && i.naturalWidth > 100; }")

    code = (await rt.redemption.code_for(first, await db.fetchval(
        "SELECT id FROM offering_claims WHERE account_id = $1", first)))["code"]
    actor = await _organiser(rt, db)
    made = await rt.redemption.create_verifier(actor, {"username": "cinema01", "display_name": "影院前台",
                                                       "offering_ids": [coupon]})
    context = await browser.new_context(base_url=server, locale="zh-CN")
    desk = await context.new_page()
    await desk.goto(f"/verify/#code={code}")
    await desk.fill("#username", "cinema01")
    await desk.fill("#password", made["password"])
    await desk.get_by_role("button", name="登录").click()
    await desk.get_by_role("button", name="确认核销").click()
    await expect(desk.locator("#result-ok")).to_contain_text("核销成功：一元观影券")
    await desk.goto(f"/verify/#code={code}x")  # scanned again (another page load)
    await desk.reload()
    await desk.get_by_role("button", name="确认核销").click()
    await expect(desk.locator("#result-error")).to_be_visible()
    await context.close()
    assert await db.fetchval("SELECT status FROM offering_claims WHERE account_id = $1", first) == "used"


async def _organiser(rt, db):
    from tests.services.cadres.test_cadres import PASSWORD, UA, otp
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                          ip="10.0.0.1", user_agent=UA)).actor
    chengdu = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
    cadre = await rt.cadres.create_account(office_actor, username="zhaoliu", display_name="赵六",
                                           org_id=chengdu, role="super_admin", duty="business",
                                           password=PASSWORD,
                                           permissions={"activity.manage", "service.manage"})
    return (await rt.cadres.login(username="zhaoliu", password=PASSWORD, totp=otp(cadre.totp_uri),
                                  ip="10.0.0.2", user_agent=UA)).actor
