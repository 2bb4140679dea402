"""The console's quiz bank and vote editors in a real browser: a cadre pastes questions from a
document, publishes, reads the statistics; sets the options of a vote and, once it is open, sees
the counts with the editor locked."""

from __future__ import annotations

from datetime import timedelta

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in
from tests.services.activities.conftest import make_workers
from wxbackend.services.clock import CHINA
from wxbackend.store.membership import orgs as org_store

require_browser()

PASTED = """1. 《工会法》规定，工会会员享有哪些权利？
A. 选举权
B. 被选举权
C. 罚款权
答案：AB
解析：见《中国工会章程》第三条

2、职工发生工伤后应当向谁申请工伤认定？
A．社会保险行政部门
B．居委会
答案：A

3. 川工之家的主办单位是？
A. 四川省总工会
B. 某公司
答案：A"""


async def console_with_union(new_page, rt, db, union_name: str):
    """The 活动与普惠 view of a Chengdu cadre holding activity.manage, and a union under Chengdu."""
    chengdu = await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
    _, wangwu = await office_and_wangwu(rt, chengdu, {"activity.manage"})
    union = (await org_store.create_grassroots(db, parent_id=chengdu, name=union_name, credit_code=None,
                                               employer_name=union_name.removesuffix("工会"),
                                               region_code=None, founded_via_platform=False))["id"]
    page = await new_page()
    await sign_in(page, "wangwu", otp(wangwu.totp_uri))
    await open_view(page, "活动与普惠")
    return page, union


async def new_item(page, rt, form_name: str, title: str) -> None:
    await page.get_by_role("button", name="新建").click()
    form = page.locator("#offering-form")
    now = rt.clock().astimezone(CHINA)
    await form.get_by_label("形式").select_option(form_name)
    await form.get_by_label("名称").fill(title)
    await form.get_by_label("报名开始").fill((now + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_label("报名截止").fill((now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_role("button", name="保存草稿").click()


async def test_a_cadre_pastes_a_bank_publishes_and_reads_the_results(new_page, rt, db) -> None:
    page, union = await console_with_union(new_page, rt, db, "天府软件工会")
    await new_item(page, rt, "quiz", "安全生产知识竞赛")
    row = page.locator("#offerings-table tbody tr", has_text="安全生产知识竞赛")
    await row.get_by_role("button", name="题库").click()
    bank = page.locator("#quiz-form")
    await bank.get_by_label("每轮题数").fill("2")
    await bank.get_by_label("及格题数").fill("1")
    await bank.locator("#qz-questions").fill(PASTED.replace("答案：A\n\n3.", "\n\n3."))
    await bank.get_by_role("button", name="保存题库").click()
    await expect(bank.locator("#quiz-form-error")).to_contain_text("第 2 题缺少“答案：”一行")
    await bank.locator("#qz-questions").fill(PASTED)
    await bank.get_by_role("button", name="保存题库").click()
    await expect(page.locator("#notices")).to_contain_text("共 3 题")
    item_id = await db.fetchval("SELECT id FROM offerings WHERE title = '安全生产知识竞赛'")
    rows = await db.fetch("SELECT prompt, options, answer, explanation FROM quiz_questions ORDER BY position")
    assert [(r["prompt"], list(r["answer"])) for r in rows] == [
        ("《工会法》规定，工会会员享有哪些权利？", [0, 1]), ("职工发生工伤后应当向谁申请工伤认定？", [0]),
        ("川工之家的主办单位是？", [0])]
    assert list(rows[1]["options"]) == ["社会保险行政部门", "居委会"]
    assert rows[0]["explanation"] == "见《中国工会章程》第三条"

    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="发布").click()
    await expect(row).to_contain_text("未开始")
    rt.clock.advance(timedelta(minutes=3))
    [worker] = await make_workers(db, 1, union)
    shown = await rt.quizzes.start(worker, item_id)
    await rt.quizzes.submit(worker, shown["id"], [[] for _ in shown["questions"]])
    await row.get_by_role("button", name="统计").click()
    stats = page.locator("#quiz-stats")
    await expect(stats.locator("#quiz-stats-totals")).to_contain_text("参与人数1")
    await expect(stats.locator("#quiz-stats-unions tbody tr")).to_have_text(["天府软件工会101"])
    await row.get_by_role("button", name="题库").click()
    await expect(bank.locator("#quiz-form-error")).to_contain_text("题库不能再修改")
    await expect(bank.get_by_role("button", name="保存题库")).to_be_hidden()


async def test_a_cadre_sets_vote_options_and_reads_the_counts(new_page, rt, db) -> None:
    page, union = await console_with_union(new_page, rt, db, "锦江宾馆工会")
    await new_item(page, rt, "vote", "最美职工评选")
    row = page.locator("#offerings-table tbody tr", has_text="最美职工评选")
    await row.get_by_role("button", name="投票选项").click()
    editor = page.locator("#poll-form")
    await editor.get_by_label("每人每日票数（同一选项每天一票）").fill("2")
    await editor.locator("#pl-options").fill("张师傅｜公交驾驶员\n李护士|急诊科\n\n王老师")
    await editor.get_by_role("button", name="保存选项").click()
    await expect(page.locator("#notices")).to_contain_text("共 3 项")
    page.once("dialog", lambda dialog: dialog.accept())
    await row.get_by_role("button", name="发布").click()
    await expect(row).to_contain_text("未开始")
    rt.clock.advance(timedelta(minutes=3))
    item_id = await db.fetchval("SELECT id FROM offerings WHERE title = '最美职工评选'")
    [worker] = await make_workers(db, 1, union)
    options = (await rt.polls.view(worker, item_id))["options"]
    assert [(o["label"], o["summary"]) for o in options] == [("张师傅", "公交驾驶员"), ("李护士", "急诊科"),
                                                             ("王老师", "")]
    await rt.polls.cast(worker, item_id, [options[1]["id"]])
    await row.get_by_role("button", name="投票选项").click()
    await expect(editor.locator("#poll-counts tbody tr")).to_have_text(["张师傅0", "李护士1", "王老师0"])
    await expect(editor.locator("#poll-voters")).to_have_text("共 1 人参与投票。")
    await expect(editor.locator("#pl-options")).to_be_disabled()
