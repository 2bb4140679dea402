"""Notices in a real browser: 王五 of Chengdu finds a province notice unread in 通知公告, opens it,
answers its receipt from the form the shared renderer draws, and drafts a notice of his own."""

from __future__ import annotations

from datetime import timedelta

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in
from tests.services.cadres.test_cadres import org_id
from tests.services.casework.conftest import make_cadre

require_browser()

RECEIPT = {"fields": [
    {"key": "attend", "label": "是否参加", "type": "choice", "required": True,
     "choices": ["参加", "不参加"]}]}


async def test_a_notice_is_read_answered_and_drafted_in_the_console(new_page, rt, db, chengdu) -> None:
    _, wangwu = await office_and_wangwu(rt, chengdu, {"account.manage", "notice.publish"})
    province = await org_id(db, "SC")
    lisi = await make_cadre(db, province, "lisi", {"notice.publish"})
    zhaoliu = await make_cadre(db, province, "zhaoliu", {"notice.publish"})
    notices = rt.office_notices
    notice = await notices.create(lisi, {
        "title": "关于召开全省工会网上工作平台推进会的通知",
        "body": "定于3月10日召开。\n请各市州总工会派员参加。",
        "targets": {"scope": "levels", "levels": ["city"]},
        "receipt": {"form": RECEIPT, "due_at": (rt.clock() + timedelta(days=5)).isoformat()}})
    await notices.submit(lisi, notice["id"])
    await notices.review(zhaoliu, notice["id"], {"decision": "approve"})

    page = await new_page()
    await sign_in(page, "wangwu", otp(wangwu.totp_uri))
    await open_view(page, "通知公告")
    row = page.locator("#nt-inbox tbody tr", has_text="推进会")
    await expect(row).to_contain_text("未读")
    await row.get_by_role("button", name="打开").click()
    detail = page.locator("#nt-detail")
    await expect(detail.locator("#nt-d-body")).to_contain_text("请各市州总工会派员参加")
    await expect(row).to_contain_text("已读")
    await detail.locator("#nt-receipt-form").get_by_label("是否参加").select_option("参加")
    await detail.get_by_role("button", name="提交回执").click()
    await expect(detail.locator("#nt-receipt-state")).to_contain_text("已于")
    assert await db.fetchval("SELECT receipt FROM notice_recipients") == {"attend": "参加"}

    compose = page.locator("#nt-compose")
    await compose.get_by_label("标题").fill("关于报送一季度工作信息的通知")
    await compose.get_by_label("正文").fill("请各县区总工会于月底前报送。")
    await compose.get_by_label("接收范围").select_option("unions")
    await compose.get_by_label("工会编号（逗号分隔）").fill(str(chengdu))
    await compose.get_by_role("button", name="保存草稿").click()
    await expect(page.locator("#nt-sent-table")).to_contain_text("关于报送一季度工作信息的通知")
    assert await db.fetchval("""SELECT n.targets FROM notices n JOIN cadres c ON c.id = n.created_by
                                WHERE c.username = 'wangwu'""") == {"scope": "unions", "unions": [chengdu]}
