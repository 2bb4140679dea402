"""The cadre console at ``/admin/`` in a real browser against the real server: sign-in with a
second factor, accounts, permissions, periodic verification, filings, the audit view, password
change, and one session per account. Everything is done by clicking and typing, and checked on
the page and in the database."""

from __future__ import annotations

import re

from tests.browser.conftest import PASSWORD, Page, expect, otp, require_browser

require_browser()


# --- helpers ---------------------------------------------------------------------------------
async def sign_in(page: Page, username: str, totp: str = "", password: str = PASSWORD) -> None:
    form = page.locator("#signin-form")
    await expect(form).to_be_visible()
    await form.get_by_label("用户名").fill(username)
    await form.get_by_label("密码", exact=True).fill(password)
    await form.get_by_label("动态验证码").fill(totp)
    await form.get_by_role("button", name="登录", exact=True).click()


def menu(page: Page, name: str):
    return page.locator("#menu").get_by_role("link", name=name, exact=True)


async def open_view(page: Page, name: str) -> None:
    await menu(page, name).click()
    await expect(page.locator("main .view:visible h2")).to_have_text(name)


async def office_and_wangwu(rt, chengdu: int, permissions: set[str]):
    """The platform office (signed in through the service, so its current code is used up) and
    王五, super admin of 成都市总工会 with ``permissions``."""
    office = await rt.cadres.create_operator(username="office", display_name="平台办公室", password=PASSWORD)
    actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                   ip="", user_agent="")).actor
    wangwu = await rt.cadres.create_account(actor, username="wangwu", display_name="王五", org_id=chengdu,
                                            role="super_admin", duty="system", permissions=permissions,
                                            password=PASSWORD)
    return office, wangwu


async def with_lisi(rt, wangwu, chengdu: int, permissions: set[str]) -> int:
    """李四, a cadre of 成都 created by 王五 (whose current code this uses up: sign 王五 in with
    ``otp(uri, ahead=30)`` afterwards)."""
    actor = (await rt.cadres.login(username="wangwu", password=PASSWORD, totp=otp(wangwu.totp_uri),
                                   ip="", user_agent="")).actor
    lisi = await rt.cadres.create_account(actor, username="lisi", display_name="李四", org_id=chengdu,
                                          role="cadre", duty="business", permissions=permissions,
                                          password=PASSWORD)
    return lisi.id


async def grants(db, username: str) -> set[str]:
    rows = await db.fetch("""SELECT g.permission FROM cadre_grants g JOIN cadres c ON c.id = g.cadre_id
                             WHERE c.username = $1""", username)
    return {r["permission"] for r in rows}


# --- 1. sign-in --------------------------------------------------------------------------------
async def test_sign_in_with_a_second_factor(new_page, rt, db) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台办公室", password=PASSWORD)
    page = await new_page()
    await expect(page).to_have_title(re.compile("工会干部工作台"))
    await expect(page.locator("#signin-notice")).to_be_hidden()  # a first visit: nothing to explain

    await sign_in(page, "office", otp(office.totp_uri), password="Wrong-Password-2026")
    await expect(page.locator("#signin-error")).to_have_text(
        "用户名、密码或动态验证码错误；若多次失败请稍后再试")
    await expect(page.locator("#shell")).to_be_hidden()

    await sign_in(page, "office", otp(office.totp_uri))
    await expect(menu(page, "账号管理")).to_be_visible()
    await expect(menu(page, "定期核实")).to_be_visible()
    await expect(menu(page, "备案记录")).to_be_visible()
    await expect(menu(page, "审计记录")).to_be_hidden()      # the system duty does not read the trail
    await expect(page.locator("#notices")).to_contain_text("检测到新的登录设备，已记录")
    await expect(page.locator("#who-name")).to_have_text("office")
    await expect(page.locator("#who-role")).to_have_text("平台管理员 · 系统管理")
    await expect(page.locator("#view-accounts h2")).to_have_text("账号管理")
    await expect(page.locator("#accounts-table tr[data-username=office]")).to_contain_text("平台办公室")

    actions = await db.fetch("SELECT action, ip FROM audit_log WHERE actor = 'office' ORDER BY id")
    assert [r["action"] for r in actions] == ["login.failed", "login.new_device"]
    assert actions[1]["ip"] == "127.0.0.1"

    # reloading keeps the session (HttpOnly cookie); 退出 ends it
    await page.reload()
    await expect(menu(page, "账号管理")).to_be_visible()
    await page.locator("#menu-logout").click()
    await expect(page.locator("#signin-notice")).to_have_text("您已退出登录。")
    await page.reload()
    await expect(page.locator("#signin-form")).to_be_visible()
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'logout'") == 1


# --- 2. creating a cadre account ---------------------------------------------------------------
async def test_super_admin_creates_a_cadre_through_the_form(new_page, rt, db, chengdu) -> None:
    _, wangwu = await office_and_wangwu(rt, chengdu, {"account.manage", "kpi.read", "member.review"})
    page = await new_page()
    await sign_in(page, "wangwu", otp(wangwu.totp_uri))
    await expect(page.locator("#who-org")).to_have_text("成都市总工会")

    await page.get_by_role("button", name="新建账号").click()
    form = page.locator("#create-form")
    await form.get_by_label("用户名").fill("lisi")
    await form.get_by_label("姓名").fill("李四")
    await expect(form.get_by_label("角色")).to_have_value("cadre")
    await expect(form.get_by_label("所属工会")).to_be_disabled()    # a super admin's own union only
    await expect(form.get_by_label("所属工会").locator("option:checked")).to_have_text("成都市总工会")
    await form.get_by_label("岗位").select_option("business")
    await expect(form.get_by_label("会员导出（含个人信息）")).to_be_disabled()  # 王五 does not hold it
    await form.get_by_label("查看使用情况指标").check()
    await form.get_by_label("会员审核").check()

    await form.get_by_label("初始密码").fill("short")
    await form.get_by_role("button", name="创建账号").click()
    await expect(page.locator("#create-error")).to_contain_text("密码至少 12 位")
    assert await db.fetchval("SELECT count(*) FROM cadres WHERE username = 'lisi'") == 0

    await form.get_by_label("初始密码").fill("Chengdu-Cadre-2026")
    await form.get_by_role("button", name="创建账号").click()
    created = page.locator("#created")
    await expect(created).to_contain_text("账号已创建")
    await expect(page.locator("#created-username")).to_have_text("lisi")
    await expect(page.locator("#created-no-totp")).to_be_visible()  # cadres sign in without a code here
    row = page.locator("#accounts-table tr[data-username=lisi]")
    await expect(row).to_contain_text("李四")
    await expect(row).to_contain_text("成都市总工会")
    await expect(row).to_contain_text("工会干部")
    await expect(row).to_contain_text("查看使用情况指标")

    stored = await db.fetchrow("SELECT * FROM cadres WHERE username = 'lisi'")
    assert (stored["display_name"], stored["org_id"], stored["role"], stored["duty"], stored["created_by"]) \
        == ("李四", chengdu, "cadre", "business", wangwu.id)
    assert await grants(db, "lisi") == {"kpi.read", "member.review"}
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'cadre.create'") == 1

    # the same username again: the server's message is shown, nothing is written
    await page.locator("#created-close").click()
    await page.get_by_role("button", name="新建账号").click()
    await form.get_by_label("用户名").fill("lisi")
    await form.get_by_label("姓名").fill("另一个李四")
    await form.get_by_role("button", name="随机生成").click()
    await form.get_by_role("button", name="创建账号").click()
    await expect(page.locator("#create-error")).to_have_text("该用户名已被使用")
    assert await db.fetchval("SELECT count(*) FROM cadres WHERE username = 'lisi'") == 1


# --- 3. editing permissions --------------------------------------------------------------------
async def test_edit_permissions_with_checkboxes(new_page, rt, db, chengdu) -> None:
    _, wangwu = await office_and_wangwu(rt, chengdu, {"account.manage", "kpi.read", "member.review"})
    await with_lisi(rt, wangwu, chengdu, {"kpi.read"})
    page = await new_page()
    await sign_in(page, "wangwu", otp(wangwu.totp_uri, ahead=30))

    row = page.locator("#accounts-table tr[data-username=lisi]")
    await row.get_by_role("button", name="编辑权限").click()
    dialog = page.locator("#permissions-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("李四（lisi）")
    await expect(dialog.get_by_label("查看使用情况指标")).to_be_checked()
    await expect(dialog.get_by_label("会员导出（含个人信息）")).to_be_disabled()
    await dialog.get_by_label("查看使用情况指标").uncheck()
    await dialog.get_by_label("会员审核").check()
    await dialog.get_by_role("button", name="保存").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#notices")).to_contain_text("已更新 李四（lisi）的权限：会员审核")
    await expect(row).to_contain_text("会员审核")
    await expect(row).not_to_contain_text("查看使用情况指标")
    assert await grants(db, "lisi") == {"member.review"}

    # a grant the duty may not hold is refused with the server's reason, and nothing changes
    await row.get_by_role("button", name="编辑权限").click()
    await dialog.get_by_label("账号与权限管理").check()
    await dialog.get_by_role("button", name="保存").click()
    await expect(page.locator("#permissions-error")).to_contain_text("三权分立")
    await dialog.get_by_role("button", name="取消").click()
    assert await grants(db, "lisi") == {"member.review"}
    # no button to grant oneself
    await expect(page.locator("#accounts-table tr[data-username=wangwu] button")).to_have_count(0)


# --- 4. periodic verification -------------------------------------------------------------------
async def test_verification_queue_marks_an_overdue_account(new_page, rt, db, chengdu) -> None:
    _, wangwu = await office_and_wangwu(rt, chengdu, {"account.manage", "kpi.read"})
    lisi = await with_lisi(rt, wangwu, chengdu, {"kpi.read"})
    await db.execute("UPDATE cadres SET verified_at = now() - interval '100 days' WHERE id = $1", lisi)
    page = await new_page()
    await sign_in(page, "wangwu", otp(wangwu.totp_uri, ahead=30))

    await open_view(page, "定期核实")
    await expect(page.locator("#verification-intro")).to_contain_text("每 90 天核实一次")
    row = page.locator("#verification-table tr[data-username=lisi]")
    await expect(row.locator(".badge")).to_have_text("已逾期")
    await expect(page.locator("#verification-summary")).to_contain_text("已逾期 1 个")
    await row.get_by_role("button", name="核实").click()
    dialog = page.locator("#verify-dialog")
    await expect(dialog).to_contain_text("李四（lisi）")
    await dialog.get_by_role("button", name="确认核实").click()
    await expect(dialog).to_be_hidden()
    await expect(row.locator(".badge")).to_have_text("正常")
    await expect(page.locator("#verification-summary")).to_contain_text("已逾期 0 个")
    await expect(page.locator("#notices")).to_contain_text("已核实 李四（lisi）")

    assert await db.fetchval("SELECT now() - verified_at < interval '1 minute' FROM cadres WHERE id = $1",
                             lisi)
    assert await db.fetchval("SELECT target FROM audit_log WHERE action = 'cadre.verify'") == f"cadre:{lisi}"


# --- 5. the audit view -------------------------------------------------------------------------
async def test_audit_view_only_for_the_audit_duty(new_page, rt, db) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台办公室", password=PASSWORD)
    auditor = await rt.cadres.create_operator(username="auditor", display_name="审计员", password=PASSWORD,
                                              duty="audit")
    system_page = await new_page()
    await sign_in(system_page, "office", otp(office.totp_uri))
    await expect(menu(system_page, "账号管理")).to_be_visible()
    await expect(menu(system_page, "审计记录")).to_be_hidden()
    await system_page.goto("/admin/#audit")          # typing the address does not open it either
    await expect(system_page.locator("#view-accounts")).to_be_visible()
    await expect(system_page.locator("#view-audit")).to_be_hidden()

    page = await new_page()
    await sign_in(page, "auditor", otp(auditor.totp_uri))
    await expect(menu(page, "审计记录")).to_be_visible()
    await expect(menu(page, "账号管理")).to_be_hidden()
    await expect(page.locator("#view-audit h2")).to_have_text("审计记录")
    table = page.locator("#audit-table")
    office_login = table.locator("tr[data-action='login.new_device']", has_text="office")
    await expect(office_login).to_contain_text("新设备登录")
    await expect(office_login).to_contain_text("127.0.0.1")
    await expect(table.locator("tr[data-action='login.new_device']", has_text="auditor")).to_be_visible()
    await expect(table.locator("tr[data-action='operator.create']")).to_have_count(2)
    await expect(page.locator("#audit-more")).to_be_hidden()
    await expect(page.locator("#view-audit button", has_text=re.compile("删除|修改"))).to_have_count(0)

    # more than one page: 加载更多 fetches the older records
    province = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC'")
    async with db.transaction():
        for n in range(60):
            await rt.audit.record(db, actor_id=None, actor="system", org_id=province,
                                  action="cadre.disable_overdue", target=f"cadre:{1000 + n}")
    await open_view(page, "审计记录")
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(50)
    await page.get_by_role("button", name="加载更多").click()
    total = await db.fetchval("SELECT count(*) FROM audit_log")
    await expect(rows).to_have_count(total)
    await expect(page.locator("#audit-more")).to_be_hidden()
    await expect(rows.last).to_contain_text("创建平台账号")
    ids = [int(i) for i in await table.locator("tbody tr td:first-child").all_inner_texts()]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == total


# --- 6. one session per account ----------------------------------------------------------------
async def test_a_second_sign_in_ends_the_first_session(new_page, rt, db) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台办公室", password=PASSWORD)
    first = await new_page()
    await sign_in(first, "office", otp(office.totp_uri))
    await expect(menu(first, "账号管理")).to_be_visible()

    elsewhere = await new_page()
    await sign_in(elsewhere, "office", otp(office.totp_uri, ahead=30))
    await expect(menu(elsewhere, "账号管理")).to_be_visible()
    await expect(elsewhere.locator("#notices")).to_contain_text("您在其他地方的登录已被结束")

    await menu(first, "定期核实").click()
    await expect(first.locator("#signin-notice")).to_contain_text("您的账号已在其他地方登录")
    await expect(first.locator("#signin-form")).to_be_visible()
    await expect(first.locator("#shell")).to_be_hidden()
    await expect(first.locator("#signin-username")).to_have_value("office")

    await open_view(elsewhere, "定期核实")                       # the new session goes on
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE actor = 'office' "
                             "AND action IN ('login', 'login.new_device')") == 2


# --- the platform office appoints and replaces a super admin; the filings ------------------------
async def test_operator_appoints_and_replaces_a_super_admin(new_page, rt, db, chengdu) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台办公室", password=PASSWORD)
    page = await new_page()
    await sign_in(page, "office", otp(office.totp_uri))

    async def appoint(username: str, name: str) -> None:
        await page.get_by_role("button", name="新建账号").click()
        form = page.locator("#create-form")
        await form.get_by_label("用户名").fill(username)
        await form.get_by_label("姓名").fill(name)
        await expect(form.get_by_label("角色")).to_have_value("super_admin")
        await form.get_by_label("所属工会").select_option(value=str(chengdu))
        await form.get_by_label("账号与权限管理").check()
        await form.get_by_label("初始密码").fill("Chengdu-Admin-2026")
        await form.get_by_role("button", name="创建账号").click()

    await appoint("wangwu", "王五")
    await expect(page.locator("#created-username")).to_have_text("wangwu")
    uri = await page.locator("#created-uri").input_value()
    assert uri.startswith("otpauth://totp/")
    await expect(page.locator("#created-secret")).to_have_value(re.compile(r"^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$"))
    await expect(page.locator("#created-qr svg")).to_be_visible()
    await expect(page.locator("#created")).to_contain_text("只显示这一次")
    # the code from the shown secret signs 王五 in
    assert (await rt.cadres.login(username="wangwu", password="Chengdu-Admin-2026", totp=otp(uri),
                                  ip="", user_agent="")).actor.role == "super_admin"
    await page.locator("#created-close").click()
    await expect(page.locator("#created-uri")).to_have_value("")

    await appoint("zhaoliu", "赵六")
    await expect(page.locator("#create-error")).to_contain_text("该工会已有超级管理员")
    assert await db.fetchval("SELECT count(*) FROM cadres WHERE username = 'zhaoliu'") == 0
    await page.locator("#create-replace").get_by_role("button", name="更换").click()
    await expect(page.locator("#created-username")).to_have_text("zhaoliu")
    await expect(page.locator("#accounts-table tr[data-username=wangwu] .badge")).to_have_text("已停用")

    await open_view(page, "备案记录")
    rows = page.locator("#filings-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#filings-table")).to_contain_text("任命")
    await expect(rows.filter(has_text="赵六")).to_contain_text("更换")
    await expect(rows.filter(has_text="赵六")).to_contain_text("成都市总工会")
    assert [r["action"] for r in await db.fetch("SELECT action FROM super_admin_filings ORDER BY id")] \
        == ["appointed", "replaced"]

    await open_view(page, "账号管理")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="导出工作台账").click()
    download = await download_info.value
    assert re.fullmatch(r"工作台账-\d{14}\.xlsx", download.suggested_filename)
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'ledger.export'") == 1


# --- changing one's password -------------------------------------------------------------------
async def test_change_password(new_page, rt, db) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台办公室", password=PASSWORD)
    page = await new_page()
    await sign_in(page, "office", otp(office.totp_uri))
    await open_view(page, "修改密码")
    form = page.locator("#password-form")

    await form.get_by_label("原密码").fill("Not-The-Password-1")
    await form.get_by_label("新密码", exact=True).fill("Chengdu-Office-2027")
    await form.get_by_label("再次输入新密码").fill("Chengdu-Office-2027")
    await form.get_by_role("button", name="确认修改").click()
    await expect(page.locator("#password-error")).to_have_text("原密码不正确")

    await form.get_by_label("原密码").fill(PASSWORD)
    await form.get_by_label("再次输入新密码").fill("Chengdu-Office-2028")
    await form.get_by_role("button", name="确认修改").click()
    await expect(page.locator("#password-error")).to_have_text("两次输入的新密码不一致")

    await form.get_by_label("再次输入新密码").fill("Chengdu-Office-2027")
    await form.get_by_role("button", name="确认修改").click()
    await expect(page.locator("#password-error")).to_have_text("密码不能包含用户名")  # the server's rule

    await form.get_by_label("原密码").fill(PASSWORD)
    await form.get_by_label("新密码", exact=True).fill("Tianfu-Square-2027")
    await form.get_by_label("再次输入新密码").fill("Tianfu-Square-2027")
    await form.get_by_role("button", name="确认修改").click()
    await expect(page.locator("#password-ok")).to_contain_text("密码已修改")
    await expect(page.locator("#password-error")).to_be_hidden()
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'password.change'") == 1

    await page.locator("#topbar-logout").click()
    await sign_in(page, "office", otp(office.totp_uri, ahead=30), password="Tianfu-Square-2027")
    await expect(menu(page, "账号管理")).to_be_visible()
