"""Membership in a real browser against the real server: a worker's H5 pages inside WeChat
(入会, 会员认证 and its 申诉, 我的会员 with the member card, transfers and withdrawals) on a phone
screen, and the cadre console's 会员审核, 会员名册 (roster import and export) and 会员卡核验,
including the page a member card's QR code opens. Everything is done by clicking and typing, and
checked on the page and in the database."""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path

import pytest

from tests.browser import test_console as console
from tests.browser.conftest import PASSWORD, Page, expect, otp, require_browser
from tests.conftest import INDEX_KEY, late_evening
from wxbackend.services.clock import unix_time
from wxbackend.services.identity.accounts import WeChatIdentity
from wxbackend.services.membership import member_card
from wxbackend.services.membership.idnumbers import id_check_char, uscc_check_char
from wxbackend.services.membership.member_forms import (
    EDUCATION,
    ETHNICITIES,
    HOUSEHOLD_TYPES,
    POLITICAL_STATUS,
)
from wxbackend.services.membership.membership import card_key
from wxbackend.store.membership import orgs as org_store

require_browser()

PHONE = {"width": 390, "height": 844}
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0.0.0 Mobile Safari/537.36 MicroMessenger/8.0.47.2560(0x28002F3B) NetType/WIFI")
TIANFU = "成都天府软件有限公司工会"
JINJIANG = "锦江宾馆工会"


def id_number(born: str = "19900307", seq: str = "131") -> str:
    head = "510104" + born + seq
    return head + id_check_char(head)


ZHANG_ID = id_number()
LI_ID = id_number(born="19951120", seq="242")
BAD_ID = ZHANG_ID[:17] + ("0" if ZHANG_ID[17] != "0" else "1")   # a wrong check character


async def snap(page: Page, name: str) -> None:
    """With BROWSER_SCREENSHOTS=<dir>, keep a full-page screenshot to look at the layout."""
    folder = os.environ.get("BROWSER_SCREENSHOTS")
    if folder:
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


# --- people and unions -------------------------------------------------------------------------
async def grassroots(db, chengdu: int, name: str) -> dict:
    row = await org_store.create_grassroots(db, parent_id=chengdu, name=name, credit_code=None,
                                            employer_name=name.removesuffix("工会"), region_code=None,
                                            founded_via_platform=False)
    return dict(row)


async def worker(rt, openid: str, phone: str) -> int:
    """A worker who signed in through the Official Account and verified a phone."""
    account = await rt.accounts.sign_in_wechat(WeChatIdentity("oa_openid", rt.settings.wechat.appid, openid))
    await rt.accounts.verify_phone(account.id, phone, "sms")
    return account.id


def join_form(union_id: int, name: str, number: str) -> dict:
    return {"union_id": union_id, "name": name, "id_number": number, "ethnicity": "汉族",
            "education": "本科", "political_status": "群众", "household_type": "城镇",
            "migrant_worker": False, "employer": "成都天府软件有限公司", "privacy_version": "2026-11"}


async def wangwu_and_lisi(rt, chengdu: int, lisi_permissions: set[str]):
    """王五, super admin of 成都市总工会 (signed in through the service: his actor decides
    applications in set-ups), and 李四, a cadre of 成都 who signs in without a second factor."""
    _, wangwu = await console.office_and_wangwu(
        rt, chengdu, {"account.manage", "member.review", "member.import", "member.export"})
    actor = (await rt.cadres.login(username="wangwu", password=PASSWORD, totp=otp(wangwu.totp_uri),
                                   ip="", user_agent="")).actor
    await rt.cadres.create_account(actor, username="lisi", display_name="李四", org_id=chengdu, role="cadre",
                                   duty="business", permissions=lisi_permissions, password=PASSWORD)
    return actor


async def member_of(rt, actor, union_id: int, account_id: int, name: str, number: str) -> dict:
    """A worker who joined through the platform and was approved."""
    application = await rt.membership.apply_join(account_id, join_form(union_id, name, number))
    return await rt.reviews.approve(actor, application["id"])


@pytest.fixture
async def h5_page(browser, server: str, rt):
    """``await h5_page(account_id, path)``: the page in WeChat's browser on a phone, signed in as
    the worker (an H5 session made the way the sign-in handlers make one)."""
    contexts = []

    async def open_page(account_id: int, path: str) -> Page:
        token = await rt.login.h5_sessions.create(account_id, {"csrf": secrets.token_urlsafe(24)})
        context = await browser.new_context(base_url=server, viewport=PHONE, is_mobile=True, has_touch=True,
                                            user_agent=WECHAT_UA, locale="zh-CN", timezone_id="Asia/Shanghai")
        context.set_default_timeout(10_000)
        contexts.append(context)
        await context.add_cookies([{"name": "wx_h5", "value": token, "url": server, "httpOnly": True}])
        page = await context.new_page()
        await page.goto(path)
        return page

    yield open_page
    for context in contexts:
        await context.close()


async def choose_union(page: Page, box: str, text: str, name: str) -> None:
    search = page.locator(box)
    await search.get_by_label("工会或单位名称").fill(text)
    await search.get_by_role("button", name="查找工会").click()
    await search.locator(".union-option", has_text=name).click()
    await expect(search.locator(".chosen")).to_contain_text(f"已选择：{name}")


# --- 1. 会员审核 ---------------------------------------------------------------------------------
async def test_cadre_rejects_one_join_and_approves_another(new_page, rt, db, chengdu) -> None:
    tianfu = await grassroots(db, chengdu, TIANFU)
    zhang = await worker(rt, "oZhang", "13800000001")
    lina = await worker(rt, "oLiNa", "13800000002")
    first = await rt.membership.apply_join(zhang, join_form(tianfu["id"], "张三", ZHANG_ID))
    second = await rt.membership.apply_join(lina, join_form(tianfu["id"], "李娜", LI_ID))
    await wangwu_and_lisi(rt, chengdu, {"member.review"})

    page = await new_page()
    await console.sign_in(page, "lisi")
    await expect(console.menu(page, "会员审核")).to_be_visible()
    await expect(console.menu(page, "会员名册")).to_be_visible()      # the list needs member.review
    await expect(console.menu(page, "账号管理")).to_be_hidden()
    await expect(page.locator("#view-reviews h2")).to_have_text("会员审核")  # a reviewer starts here
    await expect(page.locator("#count-pending")).to_have_text("2")
    await expect(page.locator("#count-overdue")).to_have_text("0")
    table = page.locator("#reviews-table")
    await expect(table.locator("tbody tr")).to_have_count(2)
    zhang_row = table.locator(f"tr[data-id='{first['id']}']")
    await expect(zhang_row).to_contain_text("入会申请")
    await expect(zhang_row).to_contain_text(TIANFU)
    await expect(zhang_row.locator(".badge")).to_have_text("待审核")
    await snap(page, "console-reviews")

    # 张三: not approved, with a reason (none given first: asked for)
    await zhang_row.get_by_role("button", name="审核").click()
    dialog = page.locator("#application-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#application-title")).to_have_text("入会申请 · 张三")
    await expect(dialog).to_contain_text("5101**********" + ZHANG_ID[-4:])   # masked
    await expect(dialog).to_contain_text("138****0001")
    await expect(dialog).to_contain_text("男")                                # from the ID number
    await expect(dialog).to_contain_text("本科")
    await snap(page, "console-review-dialog")
    await dialog.get_by_role("button", name="不通过", exact=True).click()
    await expect(page.locator("#application-error")).to_have_text("请填写不通过的原因，申请人会收到这条说明")
    reason = "身份证号码与单位花名册不一致，请核对后重新申请"
    await dialog.get_by_label(re.compile("不通过的原因")).fill(reason)
    await dialog.get_by_role("button", name="不通过", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#notices")).to_contain_text("已驳回 张三 的入会申请")

    # 李娜: approved, a member record is created
    await table.locator(f"tr[data-id='{second['id']}']").get_by_role("button", name="审核").click()
    await dialog.get_by_role("button", name="通过", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#notices")).to_contain_text("已通过 李娜 的入会申请，会员编号")
    await expect(table.locator("tbody tr")).to_have_count(0)                   # nothing left pending
    await expect(page.locator("#reviews-empty")).to_be_visible()
    await expect(page.locator("#count-pending")).to_have_text("0")
    await expect(page.locator("#count-decided")).to_have_text("2")
    await expect(page.locator("#count-rate")).to_have_text("100%")

    await page.get_by_label("状态", exact=True).select_option(label="全部状态")
    await expect(table.locator(f"tr[data-id='{first['id']}'] .badge")).to_have_text("未通过")
    await expect(table.locator(f"tr[data-id='{second['id']}'] .badge")).to_have_text("已通过")
    await table.locator(f"tr[data-id='{first['id']}']").get_by_role("button", name="查看").click()
    await expect(dialog).to_contain_text("身份证号码与单位花名册不一致")
    await expect(dialog.get_by_role("button", name="通过", exact=True)).to_be_hidden()
    await dialog.get_by_role("button", name="关闭").click()

    rows = {r["id"]: r for r in await db.fetch("SELECT id, status, reason, member_id FROM applications")}
    assert rows[first["id"]]["status"] == "rejected"
    assert rows[first["id"]]["reason"] == reason
    assert rows[second["id"]]["status"] == "approved"
    member = await db.fetchrow("SELECT name, org_id, account_id, member_no FROM members")
    assert (member["name"], member["org_id"], member["account_id"]) == ("李娜", tianfu["id"], lina)
    assert [r["action"] for r in await db.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'application.%' ORDER BY id")] \
        == ["application.reject", "application.approve"]

    # the new member in 会员名册, masked
    await console.open_view(page, "会员名册")
    members = page.locator("#members-table")
    await expect(members.locator("tbody tr")).to_have_count(1)
    await expect(members).to_contain_text(member["member_no"])
    await expect(members).to_contain_text("5101**********" + LI_ID[-4:])
    await expect(members).to_contain_text("平台入会")
    await expect(page.locator("#import-panel")).to_be_hidden()                 # 李四 holds neither
    await expect(page.locator("#export-form")).to_be_hidden()


# --- 2. 申请入会 ---------------------------------------------------------------------------------
async def test_worker_joins_a_union_on_the_h5_page(h5_page, rt, db, chengdu) -> None:
    tianfu = await grassroots(db, chengdu, TIANFU)
    await grassroots(db, chengdu, JINJIANG)
    zhang = await worker(rt, "oZhang", "13800000001")
    page = await h5_page(zhang, "/h5/join.html")

    await expect(page.locator("#step-union")).to_be_visible()
    await expect(page.locator("#join-form")).to_be_hidden()
    search = page.locator("#union-search")
    await search.get_by_label("工会或单位名称").fill("不存在的单位")
    await search.get_by_role("button", name="查找工会").click()
    await expect(search.locator(".union-results")).to_contain_text("没有找到符合条件的工会")
    await choose_union(page, "#union-search", "天府软件", TIANFU)

    form = page.locator("#join-form")
    await expect(form).to_be_visible()
    await expect(form.get_by_label("工作单位")).to_have_value("成都天府软件有限公司")  # from the union
    await expect(form.locator("#phone")).to_have_text("138****0001")
    # the lists are the server's vocabularies
    assert await form.locator("#ethnicity option").all_inner_texts() == ["请选择民族", *ETHNICITIES]
    assert await form.locator("#education option").all_inner_texts() == ["请选择学历", *EDUCATION]
    assert await form.locator("#political-status option").all_inner_texts() \
        == ["请选择政治面貌", *POLITICAL_STATUS]
    assert await form.locator("#household-type option").all_inner_texts() \
        == ["请选择户籍类型", *HOUSEHOLD_TYPES]

    await form.get_by_label("姓名").fill("张三")
    await form.get_by_label("身份证号码").fill(BAD_ID)
    await form.get_by_label("民族").select_option("汉族")
    await form.get_by_label("学历").select_option("本科")
    await form.get_by_label("政治面貌").select_option("群众")
    await form.get_by_label("户籍类型").select_option("农村")
    await form.get_by_label(re.compile("我是农民工")).check()
    await form.get_by_label("职务/岗位（选填）").fill("工程师")
    submit = form.get_by_role("button", name="提交入会申请")
    await expect(submit).to_be_disabled()                                       # consent first
    privacy = form.get_by_role("link", name="《隐私政策》")
    await expect(privacy.first).to_have_attribute("href", "/h5/privacy.html")
    await form.get_by_label(re.compile("我已阅读并同意")).check()
    await snap(page, "h5-join-form")
    await submit.click()
    await expect(form.locator(".error")).to_have_text("身份证号码校验位不正确，请核对后重新输入")
    await expect(form.get_by_label("身份证号码")).to_have_attribute("aria-invalid", "true")
    assert await db.fetchval("SELECT count(*) FROM applications") == 0
    assert await db.fetchval("SELECT privacy_version FROM accounts WHERE id = $1", zhang) is None

    await form.get_by_label("身份证号码").fill(ZHANG_ID[:17] + ZHANG_ID[17].lower())
    await submit.click()
    submitted = page.locator("#submitted")
    await expect(submitted).to_be_visible()
    await expect(submitted).to_contain_text("待审核")
    await expect(submitted).to_contain_text(TIANFU)
    await expect(page.locator("#apply")).to_be_hidden()
    await snap(page, "h5-join-submitted")

    stored = await db.fetchrow(
        "SELECT kind, status, org_id, name, form FROM applications WHERE account_id = $1", zhang)
    assert (stored["kind"], stored["status"], stored["org_id"], stored["name"]) \
        == ("join", "pending", tianfu["id"], "张三")
    assert stored["form"]["household_type"] == "农村" and stored["form"]["migrant_worker"] is True
    assert stored["form"]["job"] == "工程师"
    assert await db.fetchval("SELECT privacy_version FROM accounts WHERE id = $1", zhang) == "2026-11"

    await page.reload()                                      # the state stays: no second form
    await expect(page.locator("#submitted")).to_contain_text("待审核")
    await expect(page.locator("#apply")).to_be_hidden()


# --- 3. 会员认证 ---------------------------------------------------------------------------------
async def test_certify_no_match_offers_a_dispute(h5_page, rt, db, chengdu, clock) -> None:
    tianfu = await grassroots(db, chengdu, TIANFU)
    zhang = await worker(rt, "oZhang", "13800000001")
    # 23:30 in China is still the same day there, 15:30 in UTC: the day is China's
    clock.set(late_evening(clock()))
    # four attempts already today: this page may try once more before the daily limit
    await rt.redis.set(f"certify:acct:{zhang}:{clock():%Y%m%d}", 4, ex=3600)
    page = await h5_page(zhang, "/h5/certify.html")

    form = page.locator("#certify-form")
    await form.get_by_label("姓名").fill("张三")
    await form.get_by_label("身份证号码").fill(ZHANG_ID)
    await form.get_by_role("button", name="开始认证").click()
    await expect(form.locator(".error")).to_contain_text("未能自动完成会员认证")
    dispute = page.locator("#dispute-form")
    await expect(dispute).to_be_visible()
    await expect(page.locator("#dispute-who")).to_have_text(
        f"张三（身份证号码 5101**********{ZHANG_ID[-4:]}）")
    await snap(page, "h5-certify-dispute")

    # once more: the daily limit (429) is shown and the button stays off
    await form.get_by_role("button", name="开始认证").click()
    await expect(form.locator(".error")).to_have_text("今日认证次数已用完，请明天再试或提交认证申诉")
    await expect(form.get_by_role("button", name="开始认证")).to_be_disabled()
    await expect(dispute).to_be_hidden()
    await form.get_by_role("button", name="提交认证申诉").click()
    await expect(dispute).to_be_visible()

    await choose_union(page, "#dispute-union", "天府", TIANFU)
    await dispute.get_by_label("补充说明（选填）").fill("2019 年在单位入会，当时登记的手机号已停用")
    send = dispute.get_by_role("button", name="提交申诉")
    await expect(send).to_be_disabled()
    await dispute.get_by_label(re.compile("我已阅读并同意")).check()
    await send.click()
    submitted = page.locator("#submitted")
    await expect(submitted).to_contain_text("会员认证申诉")
    await expect(submitted).to_contain_text("待审核")
    stored = await db.fetchrow(
        "SELECT kind, status, org_id, form FROM applications WHERE account_id = $1", zhang)
    assert (stored["kind"], stored["status"], stored["org_id"]) == ("certify", "pending", tianfu["id"])
    assert stored["form"]["note"] == "2019 年在单位入会，当时登记的手机号已停用"


# --- 4. 我的会员 ---------------------------------------------------------------------------------
async def test_member_sees_the_card_and_withdraws_a_transfer(h5_page, rt, db, chengdu) -> None:
    tianfu = await grassroots(db, chengdu, TIANFU)
    jinjiang = await grassroots(db, chengdu, JINJIANG)
    zhang = await worker(rt, "oZhang", "13800000001")
    wangwu = await wangwu_and_lisi(rt, chengdu, {"member.review"})
    approved = await member_of(rt, wangwu, tianfu["id"], zhang, "张三", ZHANG_ID)
    page = await h5_page(zhang, "/h5/membership.html")

    facts = page.locator("#member-facts")
    await expect(facts).to_contain_text(approved["member_no"])
    await expect(facts).to_contain_text("5101**********" + ZHANG_ID[-4:])
    await expect(facts).to_contain_text(TIANFU)
    # read as properties: the page's Content-Security-Policy forbids evaluating strings
    await expect(page.locator("#card-image")).to_have_js_property("naturalWidth", 1000)
    await page.get_by_role("button", name="刷新会员卡").click()
    await expect(page.locator("#card-image")).to_have_attribute("src", re.compile(r"card\.png\?t=\d+$"))
    await expect(page.locator("#card-image")).to_have_js_property("complete", True)
    await expect(page.locator("#card-image")).to_have_js_property("naturalWidth", 1000)
    applications = page.locator("#applications")
    await expect(applications).to_contain_text("入会申请")
    await expect(applications).to_contain_text("已通过")
    await snap(page, "h5-membership")

    transfer = page.locator("#transfer-form")
    await choose_union(page, "#transfer-union", "锦江", JINJIANG)
    await transfer.get_by_label("接转原因").fill("调动到锦江宾馆工作")
    await transfer.get_by_role("button", name="提交接转申请").click()
    moving = applications.locator(".application", has_text="会员关系接转")
    await expect(moving).to_contain_text("待审核")
    await expect(moving).to_contain_text(JINJIANG)
    await expect(moving).to_contain_text(TIANFU)                                # 转出工会
    await expect(transfer).to_be_hidden()                                       # one at a time

    await moving.get_by_role("button", name="撤回申请").click()
    await moving.get_by_role("button", name="确认撤回").click()
    await expect(moving).to_contain_text("已撤回")
    await expect(transfer).to_be_visible()
    row = await db.fetchrow("SELECT status, org_id, from_org_id FROM applications WHERE kind = 'transfer'")
    assert (row["status"], row["org_id"], row["from_org_id"]) == ("withdrawn", jinjiang["id"], tianfu["id"])


async def test_not_a_member_is_sent_to_certify_or_join(h5_page, rt) -> None:
    zhang = await worker(rt, "oZhang", "13800000001")
    page = await h5_page(zhang, "/h5/membership.html")
    await expect(page.locator("#not-member")).to_be_visible()
    await expect(page.locator("#card")).to_be_hidden()
    await expect(page.locator("#applications")).to_contain_text("暂无申请记录")
    await expect(page.locator("#not-member").get_by_role("link", name=re.compile("会员认证"))) \
        .to_have_attribute("href", "/h5/certify.html")


# --- 5. 会员卡核验 -------------------------------------------------------------------------------
async def test_card_page_signs_the_cadre_in_and_verifies(new_page, rt, db, chengdu) -> None:
    tianfu = await grassroots(db, chengdu, TIANFU)
    zhang = await worker(rt, "oZhang", "13800000001")
    wangwu = await wangwu_and_lisi(rt, chengdu, {"member.review"})
    approved = await member_of(rt, wangwu, tianfu["id"], zhang, "张三", ZHANG_ID)
    member_id = await db.fetchval("SELECT id FROM members")
    token = member_card.issue_token(card_key(base64.b64decode(INDEX_KEY)), member_id, unix_time(rt.clock))

    # The QR code opens /admin/card.html#<token>, as a cadre's phone would.
    page = await new_page()
    await page.goto(f"/admin/card.html#{token}")
    await expect(page.locator("#signin-notice")).to_have_text("请先登录，登录后将继续核验会员卡。")
    await console.sign_in(page, "lisi")
    await expect(page).to_have_url(re.compile(r"/admin/card\.html#"))
    outcome = page.locator("#card-outcome")
    await expect(outcome.locator(".verdict")).to_contain_text("会员卡有效")
    await expect(outcome).to_contain_text("张*")
    await expect(outcome).to_contain_text(approved["member_no"])
    await expect(outcome).to_contain_text(TIANFU)
    await expect(outcome).not_to_contain_text("张三")
    await snap(page, "admin-card")
    assert await db.fetchval("SELECT target FROM audit_log WHERE action = 'card.verify'") \
        == f"member:{member_id}"

    # signed in already: a forged code is refused on the spot
    await page.goto(f"/admin/card.html#{token[:-4]}AAAA")
    await expect(page.locator("#card-outcome .verdict")).to_contain_text("会员卡无效")
    await expect(page.locator("#card-outcome")).to_contain_text("会员卡二维码无效")

    # the console's view takes the scanned address pasted in
    await page.goto("/admin/#cards")
    form = page.locator("#cardcheck-form")
    await form.get_by_label("二维码内容").fill(f"https://wx.example.org/admin/card.html#{token}")
    await form.get_by_role("button", name="核验").click()
    await expect(page.locator("#cardcheck-result .verdict")).to_contain_text("会员卡有效")
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'card.verify'") == 2


# --- 6. 会员名册：导入和导出 ---------------------------------------------------------------------
async def test_roster_import_reports_rows_and_export_needs_a_purpose(new_page, rt, db, chengdu,
                                                                      tmp_path) -> None:
    tianfu = await grassroots(db, chengdu, TIANFU)
    await wangwu_and_lisi(rt, chengdu, {"member.review", "member.import", "member.export"})
    roster = tmp_path / "天府软件会员名册.csv"
    roster.write_text(
        "工会编码,姓名,身份证号码,手机号码,民族,学历,政治面貌,户籍类型,是否农民工,工作单位,职务,入会日期,会员编号\n"
        f"{tianfu['code']},王小红,{LI_ID},13900000001,汉族,大专,群众,城镇,否,成都天府软件有限公司,会计,2021-03-01,\n"
        f"{tianfu['code']},赵六,{BAD_ID},,汉族,本科,群众,城镇,否,成都天府软件有限公司,,2020-01-01,\n",
        encoding="utf-8")

    page = await new_page()
    await console.sign_in(page, "lisi")
    await console.open_view(page, "会员名册")
    panel = page.locator("#import-panel")
    await expect(panel.get_by_role("link", name="下载导入模板")).to_have_attribute(
        "href", "/admin/v1/rosters/template.xlsx")
    await panel.locator("summary").click()
    await expect(page.locator("#org-codes-table")).to_contain_text(tianfu["code"])
    await panel.get_by_role("button", name="上传并导入").click()
    await expect(page.locator("#import-error")).to_have_text("请选择要导入的名册文件（.xlsx 或 .csv）")

    await panel.get_by_label("名册文件").set_input_files(str(roster))
    await panel.get_by_role("button", name="上传并导入").click()
    report = page.locator("#import-report")
    await expect(report.locator("#import-status")).to_have_text("已完成")
    await expect(report.locator("#import-counts")).to_have_text(
        "共 2 行：新增 1，更新 0，无变化 0，未导入 1。")
    error_row = report.locator("#import-errors-table tbody tr")
    await expect(error_row).to_have_count(1)
    await expect(error_row).to_contain_text("第 3 行")
    await expect(error_row).to_contain_text("身份证号码校验位不正确")
    await expect(page.locator("#imports-table tbody tr")).to_have_count(1)
    await expect(page.locator("#members-table")).to_contain_text("王小红")
    await expect(page.locator("#members-table")).to_contain_text("名册导入")
    await snap(page, "console-members")
    assert await db.fetchval("SELECT count(*) FROM members") == 1
    assert await db.fetchval("SELECT status FROM roster_imports") == "done"

    export = page.locator("#export-form")
    await export.get_by_role("button", name="导出名册").click()
    await expect(page.locator("#export-error")).to_have_text("请填写导出用途")
    await export.get_by_label("导出用途").fill("年报")
    await export.get_by_role("button", name="导出名册").click()
    # the server's rule
    await expect(page.locator("#export-error")).to_have_text("请填写导出用途（至少 4 个字）")
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'roster.export'") == 0
    await export.get_by_label("导出用途").fill("2026 年度会员统计年报")
    async with page.expect_download() as download_info:
        await export.get_by_role("button", name="导出名册").click()
    download = await download_info.value
    assert re.fullmatch(r"会员名册-SC-510100-\d{14}\.xlsx", download.suggested_filename)
    await expect(page.locator("#notices")).to_contain_text("已导出会员名册")
    assert await db.fetchval("SELECT detail->>'purpose' FROM audit_log WHERE action = 'roster.export'") \
        == "2026 年度会员统计年报"


# --- 7. 申请建会 ---------------------------------------------------------------------------------
async def test_worker_applies_to_found_a_union(h5_page, rt, db, chengdu) -> None:
    zhang = await worker(rt, "oZhang", "13800000001")
    head = "91510104MA6" + "CXK2Q8"
    credit_code = head + uscc_check_char(head)
    page = await h5_page(zhang, "/h5/found.html")

    form = page.locator("#found-form")
    await form.get_by_label("拟建工会名称").fill("成都锦城餐饮有限公司工会委员会")
    await form.get_by_label("单位名称", exact=True).fill("成都锦城餐饮有限公司")
    await form.get_by_label("统一社会信用代码").fill(credit_code.lower())
    await form.get_by_label("单位职工人数").fill("32")
    await expect(page.locator("#headcount-hint")).to_contain_text("应建立工会委员会")
    await expect(form.get_by_label("上级工会", exact=True)).to_be_disabled()
    await form.get_by_label("市（州）").select_option(label="成都市")
    await form.get_by_label("区（县）").select_option(label="锦江区")
    upper = form.get_by_label("上级工会", exact=True)
    await expect(upper).to_be_enabled()
    await expect(upper.locator("option:checked")).to_have_text("成都市总工会")   # nearest first
    await form.get_by_label("申请人姓名").fill("张三")
    await form.get_by_label(re.compile("我已阅读并同意")).check()
    await snap(page, "h5-found-form")
    await form.get_by_role("button", name="提交建会申请").click()

    submitted = page.locator("#submitted")
    await expect(submitted).to_contain_text("建会申请")
    await expect(submitted).to_contain_text("待审核")
    await expect(submitted).to_contain_text("成都锦城餐饮有限公司工会委员会")
    stored = await db.fetchrow("SELECT kind, status, org_id, name, form FROM applications")
    assert (stored["kind"], stored["status"], stored["org_id"], stored["name"]) \
        == ("found", "pending", chengdu, "张三")
    assert (stored["form"]["credit_code"], stored["form"]["region_code"], stored["form"]["headcount"]) \
        == (credit_code, "510104", 32)
