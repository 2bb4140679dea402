"""Configured business in a real browser: a member applies for hardship assistance on the H5 page,
whose form is drawn from the module's definition (a field appears only for 其他); the union's
handler opens the application in the console's 业务配置 view and passes the verification."""

from __future__ import annotations

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in
from tests.browser.test_membership_pages import h5_page  # noqa: F401 (fixture)
from tests.services.activities.conftest import make_workers
from tests.services.casework.conftest import make_cadre
from tests.services.office.test_business import ANSWERS
from wxbackend.services.office.business.definitions import example

require_browser()


async def test_a_member_applies_on_the_phone_and_the_union_verifies_in_the_console(
        h5_page, new_page, rt, db, chengdu) -> None:  # noqa: F811
    root = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC'")
    designer = await make_cadre(db, root, "shejiban", {"business.configure"})
    approver = await make_cadre(db, root, "lingdao", {"business.approve"})
    draft = await rt.business.create(designer, example("hardship", [root]))
    await rt.business.request(designer, draft["id"], {})
    await rt.business.decide(approver, draft["id"], {"approve": True})

    [member] = await make_workers(db, 1, chengdu, pii=rt.pii)
    phone = await h5_page(member, "/h5/business.html")
    await phone.get_by_role("link", name="困难职工帮扶申请").click()
    form = phone.locator("#apply-form")
    await form.get_by_label("申请人姓名").fill(ANSWERS["name"])
    await form.get_by_label("身份证号码").fill(ANSWERS["id_number"])
    await form.get_by_label("联系电话").fill(ANSWERS["phone"])
    explain = form.get_by_label("其他困难说明")
    await expect(explain).to_be_hidden()
    await form.get_by_label("困难类型").select_option("其他")
    await expect(explain).to_be_visible()
    await explain.fill("房屋漏雨需修缮")
    await form.get_by_label("家庭人口").fill("3")
    await form.get_by_label("家庭人均月收入（元）").fill("800")
    await form.get_by_label("申请帮扶金额（元）").fill("3000")
    await form.get_by_label("家庭困难情况").fill(ANSWERS["situation"])
    await form.get_by_label("收款银行卡号").fill(ANSWERS["bank_account"])
    await form.get_by_role("button", name="提交申请").click()
    detail = phone.locator("#application-detail")
    await expect(detail).to_contain_text("办理中")
    await expect(detail).to_contain_text("139****5678")       # masked on the phone too
    await expect(detail).not_to_contain_text(ANSWERS["id_number"])
    item = await db.fetchval("SELECT item_id FROM business_applications")

    _, wangwu = await office_and_wangwu(rt, chengdu, {"account.manage", "business.handle"})
    desk = await new_page()
    await sign_in(desk, "wangwu", otp(wangwu.totp_uri))
    await open_view(desk, "业务配置")
    await desk.get_by_label("事项编号").fill(str(item))
    await desk.get_by_role("button", name="打开").click()
    application = desk.locator("#biz-application")
    await expect(application).to_contain_text(ANSWERS["id_number"])   # the handler sees it in full
    await expect(application).to_contain_text("房屋漏雨需修缮")
    await expect(desk.locator("#biz-step-title")).to_contain_text("基层工会核实")
    await desk.get_by_role("button", name="通过", exact=True).click()
    await expect(desk.locator("#biz-step-title")).to_be_hidden()
    review = await db.fetchval(
        "SELECT count(*) FROM work_steps WHERE item_id = $1 AND node = 'review' AND status = 'open'", item)
    assert review == 1
