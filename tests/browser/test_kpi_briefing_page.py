"""A briefing in the console: the 使用情况 view lists it with its printable page, which lays out
the snapshot as issued (figures, ranking, units below standard by name)."""

from __future__ import annotations

from datetime import date

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in
from tests.services.kpi.test_rollups import tree, write

require_browser()


async def test_a_briefing_is_listed_and_printed(new_page, rt, db, chengdu) -> None:
    _, wangwu = await office_and_wangwu(rt, chengdu, {"kpi.read"})
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await sign_in(page, "wangwu", otp(wangwu.totp_uri))
    unions = await tree(db)
    await write(db, unions, [("registered", 3, 2, 10), ("joined_roster", 2, 3, 10)])
    await rt.kpi_rollups.backfill(date(2026, 3, 1), date(2026, 3, 31))

    await open_view(page, "使用情况")
    panel = page.locator("#kpi-briefings")
    await panel.get_by_label("期间").fill("2026-03")
    await panel.get_by_role("button", name="生成本单位通报").click()
    row = panel.locator("#kb-table tbody tr", has_text="2026-03")
    await expect(row).to_contain_text("专项通报")
    async with page.context.expect_page() as opened:
        await row.get_by_role("link", name="打印页").click()
    printed = await opened.value
    await expect(printed.locator("#bf-title")).to_have_text("成都市总工会网上工作平台使用情况专项通报")
    await expect(printed.locator("#bf-figures")).to_contain_text("注册用户（人）")
    await expect(printed.locator("#bf-below")).to_contain_text("锦江区总工会")
    assert errors == []
