"""The usage dashboard in the console: a city cadre with ``kpi.read`` reads each indicator against
its standard, sees a union below standard in red in the ranking and by name, drills down to a
county and back up through the breadcrumb, and sees the trend; the page raises no error."""

from __future__ import annotations

import re
from datetime import date

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in
from tests.services.kpi.test_reports import NOW
from tests.services.kpi.test_rollups import tree, write

require_browser()


async def test_the_dashboard_ranks_drills_down_and_comes_back(new_page, rt, db, chengdu, clock) -> None:
    _, wangwu = await office_and_wangwu(rt, chengdu, {"kpi.read"})
    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
            if response.status >= 500 else None)
    # Signed in on the wall clock (codes are time-based); then the server and the browser both
    # live in March 2026, so "this month" is the month the figures are counted for.
    await sign_in(page, "wangwu", otp(wangwu.totp_uri))
    await expect(page.locator("#menu")).to_be_visible()
    clock.set(NOW, frozen=True)
    await page.clock.set_fixed_time(NOW)
    unions = await tree(db)   # province, Chengdu, 锦江区 under it, 锦江宾馆工会 under that, Dazhou
    await write(db, unions, [("registered", 3, 2, 10), ("registered", 2, 3, 10), ("registered", 3, 4, 9),
                             ("joined_platform", 3, 5, 9), ("joined_roster", 3, 6, 9)])
    await rt.kpi_rollups.backfill(date(2026, 3, 1))

    await open_view(page, "使用情况")
    dashboard = page.locator("#kpi-dashboard")
    await expect(dashboard.locator("#kpi-period")).to_have_value("2026-03")
    await expect(dashboard.locator("#kpi-counted")).to_contain_text("数据截至 2026-03-20")
    await expect(dashboard.locator("#kpi-crumbs")).to_have_text("成都市总工会")
    registered = dashboard.locator(".kpi-card[data-code=registered]")
    await expect(registered.locator(".kpi-card-value")).to_have_text("3 人")
    await expect(registered.locator("svg[role=img] title")).to_have_count(1)
    # No article in March against 50 a month: the card says so, in red.
    articles = dashboard.locator(".kpi-card[data-code=articles]")
    await expect(articles).to_have_class(re.compile(r"\bbelow\b"))
    await expect(articles).to_contain_text("标准 50 篇")
    await expect(articles).to_contain_text("未达标")

    # The ranking of 频道发布信息: 锦江区 is below standard, a red bar, and named in red below.
    await articles.click()
    await expect(dashboard.locator("#kpi-rank-title")).to_have_text("下级工会排名：频道发布信息")
    bar = dashboard.locator("#kpi-rank-chart .chart-row", has_text="锦江区总工会")
    await expect(bar.locator(".chart-bar.below")).to_have_count(1)
    await expect(bar.locator(".chart-standard")).to_have_count(1)
    await expect(dashboard.locator("#kpi-below .kpi-link.bad", has_text="锦江区总工会")).to_be_visible()
    trend = dashboard.locator("#kpi-trend-title")
    await expect(trend).to_have_text("频道发布信息：近 12 个月（成都市总工会）")
    await expect(dashboard.locator("#kpi-trend svg path.chart-line")).to_have_count(1)

    # Down to the county: its figures, its grassroots union ranked; then back up.
    await bar.click()
    await expect(dashboard.locator("#kpi-crumbs")).to_contain_text("锦江区总工会")
    await expect(dashboard.locator("#kpi-crumbs button", has_text="成都市总工会")).to_be_visible()
    await expect(registered.locator(".kpi-card-value")).to_have_text("3 人")
    await expect(dashboard.locator("#kpi-rank tbody tr").first).to_contain_text("锦江宾馆工会")
    await expect(trend).to_contain_text("锦江区总工会")
    await dashboard.locator("#kpi-crumbs button", has_text="成都市总工会").click()
    await expect(dashboard.locator("#kpi-crumbs")).to_have_text("成都市总工会")
    await expect(dashboard.locator("#kpi-rank tbody tr").first).to_contain_text("锦江区总工会")

    # A quarter: the same month's union, the period picker follows (2026-03 → 2026-Q1).
    await dashboard.locator("#kpi-kind").select_option("quarter")
    await expect(dashboard.locator("#kpi-period")).to_have_value("2026-Q1")
    await expect(dashboard.locator("#kpi-counted")).to_contain_text("2026年第一季度")
    await expect(articles).to_contain_text("标准 150 篇")
    assert errors == []
