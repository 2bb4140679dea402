"""Every office view opens in the console for a cadre holding its permissions: the scripts run
without an error and every call they make on opening is answered without a server fault."""

from __future__ import annotations

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in

require_browser()

PERMISSIONS = {"account.manage", "notice.publish", "info.report", "document.handle", "meeting.manage",
               "business.configure", "business.approve", "business.handle", "ledger.record", "kpi.read"}
VIEWS = ("通知公告", "信息报送", "公文流转", "会议", "业务配置", "线下台账", "事项办理", "使用情况")


async def test_the_office_views_open_without_errors(new_page, rt, chengdu) -> None:
    _, wangwu = await office_and_wangwu(rt, chengdu, PERMISSIONS)
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
            if response.status >= 500 else None)
    await sign_in(page, "wangwu", otp(wangwu.totp_uri))
    for name in VIEWS:
        await open_view(page, name)
        await page.wait_for_load_state("networkidle")
    # The usage view reads this month's rates for the union and each union below it.
    await open_view(page, "线下台账")
    await expect(page.locator("#lg-rates tbody tr").first).to_be_visible()
    assert errors == []
