"""The console's 活动与普惠 view in a real browser: a cadre creates an item, publishes it, sees a
worker who signed up in its list and exports the list (masked)."""

from __future__ import annotations

from datetime import timedelta

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in
from tests.services.activities.conftest import make_workers
from wxbackend.services.clock import CHINA
from wxbackend.store.membership import orgs as org_store

require_browser()


async def test_a_cadre_creates_publishes_and_lists_participants(new_page, rt, db) -> None:
    chengdu = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
    _, wangwu = await office_and_wangwu(rt, chengdu, {"activity.manage", "service.manage"})
    union = (await org_store.create_grassroots(db, parent_id=chengdu, name="天府软件工会", credit_code=None,
                                               employer_name="天府软件", region_code=None,
                                               founded_via_platform=False))["id"]
    page = await new_page()
    await sign_in(page, "wangwu", otp(wangwu.totp_uri))
    await open_view(page, "活动与普惠")
    await page.get_by_role("button", name="新建").click()
    form = page.locator("#offering-form")
    now = rt.clock().astimezone(CHINA)
    await form.get_by_label("类型").select_option("service")
    await form.get_by_label("形式").select_option("coupon")
    await form.get_by_label("名称").fill("夏日送清凉饮品券")
    await form.get_by_label("报名开始").fill((now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_label("报名截止").fill((now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_label("名额 / 数量").fill("50")
    await form.get_by_role("button", name="保存草稿").click()
    row = page.locator("#offerings-table tbody tr", has_text="夏日送清凉饮品券")
    await expect(row).to_contain_text("草稿")
    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="发布").click()
    await expect(row).to_contain_text("报名中")

    # published: the text and the stock may change, the way workers take part may not
    await row.get_by_role("button", name="修改").click()
    await expect(form.get_by_label("参与方式")).to_be_disabled()
    await form.get_by_label("名称").fill("夏日送清凉冰饮券")
    await form.get_by_label("名额 / 数量").fill("80")
    await form.get_by_role("button", name="保存修改").click()
    row = page.locator("#offerings-table tbody tr", has_text="夏日送清凉冰饮券")
    await expect(row).to_contain_text("80 / 80")
    await page.get_by_label("专项活动名称").fill("夏日送清凉")
    await page.get_by_role("button", name="创建专项活动").click()
    await expect(page.locator("#notices")).to_contain_text("已创建专项活动“夏日送清凉”")
    assert await db.fetchval("SELECT per_person FROM campaigns WHERE title = '夏日送清凉'") == 2

    item_id = await db.fetchval("SELECT id FROM offerings WHERE title = '夏日送清凉冰饮券'")
    [worker] = await make_workers(db, 1, union, pii=rt.pii)
    await rt.signups.sign_up(worker, item_id)
    await row.get_by_role("button", name="名单").click()
    listed = page.locator("#participants-table tbody tr")
    await expect(listed).to_have_count(1)
    await expect(listed).to_contain_text("已保留")
    async with page.expect_download() as download:
        await page.get_by_role("button", name="导出名单").click()
    assert (await download.value).suggested_filename.endswith(".xlsx")
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'service.export'") == 1

    # a merchant's staff account bound to the coupon; its first password is shown once
    await page.get_by_label("核销员用户名").fill("drinks01")
    await page.get_by_label("核销员名称").fill("饮品店")
    await page.get_by_label("可核销的项目编号（逗号分隔）").fill(str(item_id))
    await page.get_by_role("button", name="创建核销员").click()
    await expect(page.locator("#verifier-created")).to_contain_text("初始密码")
    listed = page.locator("#verifiers-table tbody tr", has_text="drinks01")
    await expect(listed).to_contain_text("正常")
    page.once("dialog", lambda dialog: dialog.accept())
    await listed.get_by_role("button", name="停用").click()
    await expect(listed).to_contain_text("已停用")
