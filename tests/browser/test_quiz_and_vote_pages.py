"""A worker answers a quiz round and votes on the H5 pages, then signs up from the same page."""

from __future__ import annotations

from datetime import timedelta

from tests.browser.conftest import expect, require_browser
from tests.browser.test_activity_pages import _organiser, union
from tests.browser.test_membership_pages import h5_page  # noqa: F401 - a fixture
from tests.services.activities.conftest import make_workers
from tests.services.activities.test_quizzes import BANK

require_browser()


async def gated_item(rt, actor, union_id: int, form: str, mode: str, document: dict) -> int:
    now = rt.clock()
    item = await rt.catalogue.create(actor, {
        "kind": "activity", "form": form, "mode": mode,
        "title": "安康杯知识竞赛" if form == "quiz" else "最美职工评选",
        "opens_at": (now + timedelta(seconds=2)).isoformat(),
        "closes_at": (now + timedelta(days=1)).isoformat(), "stock": 5,
        "audience": {"level": "certified", "orgs": [union_id]}})
    save = rt.quizzes.save if form == "quiz" else rt.polls.save
    await save(actor, item["id"], document)
    await rt.catalogue.set_status(actor, item["id"], "published")
    rt.clock.advance(timedelta(seconds=3))
    return item["id"]


async def test_a_worker_passes_a_round_and_then_enters_the_draw(h5_page, rt, db) -> None:  # noqa: F811
    members = await union(db)
    actor = await _organiser(rt, db)
    quiz = await gated_item(rt, actor, members, "quiz", "lottery",
                            {"per_round": 3, "pass_mark": 2, "questions": BANK})
    [worker] = await make_workers(db, 1, members, pii=rt.pii)

    page = await h5_page(worker, "/h5/activities.html")
    await page.locator(f"#item-{quiz}").get_by_role("link", name="去答题").click()
    await expect(page.locator("#item-title")).to_have_text("安康杯知识竞赛")
    await expect(page.locator("#item-signup")).to_contain_text("答题通过后即可报名")
    await page.get_by_role("button", name="开始答题").click()
    questions = page.locator("#quiz-questions > li")
    await expect(questions).to_have_count(3)
    await expect(page.locator("#quiz-clock")).to_contain_text("剩余 ")
    for n in range(3):
        prompt = await questions.nth(n).locator(".prompt").inner_text()
        source = next(b for b in BANK if b["prompt"] in prompt)
        for right in source["answer"]:
            await questions.nth(n).get_by_text(source["options"][right], exact=False).click()
    await page.get_by_role("button", name="交卷").click()
    await expect(page.locator("#quiz-result h2")).to_have_text("恭喜，本轮通过")
    await expect(page.locator("#quiz-result")).to_contain_text("答对 3 题")
    await expect(page.locator("#quiz-history li")).to_have_count(1)
    await page.locator("#item-signup").get_by_role("button", name="报名参加抽签").click()
    await expect(page.locator("#item-signup .ok")).to_contain_text("等待抽签")
    assert await db.fetchval("SELECT status FROM offering_claims WHERE account_id = $1", worker) == "entered"


async def test_a_worker_votes_and_then_claims(h5_page, rt, db) -> None:  # noqa: F811
    members = await union(db)
    actor = await _organiser(rt, db)
    vote = await gated_item(rt, actor, members, "vote", "first_come",
                            {"votes_per_day": 1, "options": [{"label": "张师傅", "summary": "公交驾驶员"},
                                                             {"label": "李护士"}]})
    [worker] = await make_workers(db, 1, members, pii=rt.pii)
    page = await h5_page(worker, f"/h5/vote.html#o={vote}")
    await expect(page.locator("#vote-rules")).to_contain_text("今日还可投 1 票")
    await page.get_by_role("button", name="投票").click()
    await expect(page.locator("#vote-error")).to_have_text("请先选择要投票的选项")
    await page.get_by_text("李护士").click()
    await page.get_by_role("button", name="投票").click()
    await expect(page.locator("#vote-ok")).to_contain_text("投票成功")
    await expect(page.locator("#vote-options li").nth(1)).to_contain_text("1 票")
    await expect(page.locator("#vote-options li").nth(1)).to_contain_text("今日已投")
    await expect(page.get_by_role("button", name="投票")).to_be_hidden()
    await page.locator("#item-signup").get_by_role("button", name="立即抢").click()
    await expect(page.locator("#item-signup .ok")).to_contain_text("已为您保留名额")
    assert await db.fetchval("SELECT count(*) FROM poll_votes") == 1
