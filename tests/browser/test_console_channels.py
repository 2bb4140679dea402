"""The console's 频道与文章 view in a real browser: a writer pastes formatted text and inserts a
photo in the editor, sets a cover and submits; a reviewer reads it and approves; the writer
publishes, and the page readers open keeps the formatting and the photo."""

from __future__ import annotations

import io

from PIL import Image

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in, with_lisi
from tests.services.channels.test_self_built import application
from wxbackend.services.cadres.permissions import Actor

require_browser()

# What a paste from WeChat's editor inserts: sections and spans with inline styles.
PASTED = ('<section style="margin: 0 0 16px; color: rgb(62, 62, 62); text-align: justify;">'
          '<span style="color: rgb(192, 0, 0); font-weight: bold;">一、大赛安排</span></section>'
          '<p style="text-indent: 2em;">全市五百名职工参加技能比武。</p>')


def _jpeg(color: str) -> dict:
    out = io.BytesIO()
    Image.new("RGB", (800, 500), color).save(out, "JPEG")
    return {"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}


async def test_write_review_and_publish_in_the_console(new_page, rt, db, chengdu) -> None:
    _, wangwu = await office_and_wangwu(rt, chengdu, {"account.manage", "channel.publish",
                                                      "channel.review"})
    await with_lisi(rt, wangwu, chengdu, {"channel.review"})
    writer = await new_page()
    await sign_in(writer, "wangwu", otp(wangwu.totp_uri, ahead=30))
    await open_view(writer, "频道与文章")
    await expect(writer.locator("#channels-table")).to_contain_text("成都市总工会")
    await writer.get_by_role("button", name="写文章", exact=True).first.click()
    form = writer.locator("#article-form")
    await form.get_by_label("标题（32 字以内）").fill("职工技能大赛开幕")
    await form.get_by_label("作者（16 字以内）").fill("宣传部")
    editor = writer.frame_locator("#ar-body-frame")
    await expect(editor.locator("body")).to_be_visible()
    frame = writer.frame(url=lambda url: url.endswith("/admin/editor.html"))
    await frame.evaluate("html => { document.body.focus(); document.execCommand('selectAll');"
                         " document.execCommand('insertHTML', false, html); }", PASTED)
    await form.locator("#ar-image-file").set_input_files(_jpeg("teal"))
    await expect(editor.locator("img")).to_have_count(1)
    await form.locator("#ar-cover-file").set_input_files(_jpeg("navy"))
    await expect(form.locator("#ar-cover")).to_be_visible()
    await form.get_by_role("button", name="保存", exact=True).click()
    await expect(writer.locator("#notices")).to_contain_text("已保存为草稿")
    working = await db.fetchval("SELECT working FROM articles")
    assert "color:rgb(192, 0, 0)" in working["body"] and 'src="/media/' in working["body"]
    assert working["cover_id"] is not None

    row = writer.locator("#articles-table tbody tr", has_text="职工技能大赛开幕")
    await row.get_by_role("button", name="送审").click()
    await expect(row).to_contain_text("待初审")

    # The union's own self-built application: news to its other reviewers when they sign in.
    path = await db.fetchval("SELECT path::text FROM orgs WHERE id = $1", chengdu)
    applicant = Actor(id=await db.fetchval("SELECT id FROM cadres WHERE username = 'wangwu'"),
                      username="wangwu", org_id=chengdu, org_path=path, role="super_admin",
                      duty="system", permissions=frozenset({"channel.review"}))
    await rt.self_built.apply(applicant, await db.fetchval("SELECT id FROM channels WHERE slug = '510100'"),
                              application())

    reviewer = await new_page()
    await sign_in(reviewer, "lisi")
    await expect(reviewer.locator("#notices")).to_contain_text("自建频道申请有新进展：成都市总工会（已申请）")
    await open_view(reviewer, "频道与文章")
    await reviewer.locator("#articles-table tbody tr", has_text="职工技能大赛开幕").get_by_role(
        "button", name="审核").click()
    await expect(reviewer.frame_locator("#article-review-frame").locator("body")).to_contain_text(
        "全市五百名职工参加技能比武")
    await reviewer.get_by_role("button", name="通过", exact=True).click()
    await expect(reviewer.locator("#notices")).to_contain_text("审核通过")

    await writer.get_by_role("button", name="刷新").click()
    await row.get_by_role("button", name="发布", exact=True).click()
    await expect(row).to_contain_text("已发布")
    article_id = await db.fetchval("SELECT id FROM articles")
    page = await new_page()
    await page.goto(f"/h5/a/{article_id}")
    await expect(page.locator("h1")).to_have_text("职工技能大赛开幕")
    heading = page.locator(".body span", has_text="一、大赛安排")
    await expect(heading).to_have_css("color", "rgb(192, 0, 0)")
    await expect(page.locator(".body img")).to_have_count(1)
