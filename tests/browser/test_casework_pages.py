"""Casework in a real browser: a worker files an appeal with a photo on the H5 page and follows
it; the union's desk finds it in 我的待办, accepts it and replies from the item page; the worker
rates the reply; the desk binds its WeChat for reminders and reads the completion rates."""

from __future__ import annotations

import io

from PIL import Image

from tests.browser.conftest import expect, otp, require_browser
from tests.browser.test_console import office_and_wangwu, open_view, sign_in
from tests.browser.test_membership_pages import h5_page  # noqa: F401 (fixture)
from tests.services.activities.conftest import make_workers

require_browser()

STORY = "公司拖欠三个月工资，多次协商无果，请求工会帮助。"


def _photo() -> dict:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), "orange").save(out, "JPEG")
    return {"name": "欠条.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}


async def test_an_appeal_filed_on_the_phone_is_accepted_and_answered_in_the_console(
        h5_page, new_page, rt, db, chengdu) -> None:  # noqa: F811
    [worker] = await make_workers(db, 1, None, pii=rt.pii)
    await db.execute("UPDATE accounts SET region_code = '510104' WHERE id = $1", worker)
    phone = await h5_page(worker, "/h5/appeals.html")
    await phone.get_by_role("button", name="提交新的诉求").click()
    form = phone.locator("#appeal-form")
    await form.get_by_label("类别").select_option("法律援助")
    # The unions of the worker's county and city are offered; any other is found by name.
    await expect(form.locator("#ap-union")).to_contain_text("成都市总工会")
    await form.locator("#ap-union").select_option(label="成都市总工会")
    await form.get_by_label("诉求内容（10 至 2000 字）").fill(STORY)
    await form.locator("#ap-files").set_input_files(_photo())
    await expect(form.locator("#ap-file-list")).to_contain_text("已上传")
    await form.get_by_role("button", name="提交", exact=True).click()
    detail = phone.locator("#appeal-detail")
    await expect(detail).to_contain_text("待受理")
    await expect(detail).to_contain_text(STORY)
    item = await db.fetchval("SELECT item_id FROM appeals")
    assert await db.fetchval("SELECT org_id FROM work_items WHERE id = $1", item) == chengdu

    # The desk of the union above (成都) sees it in 我的待办 and handles it from the item page.
    _, wangwu = await office_and_wangwu(rt, chengdu, {"account.manage", "appeal.handle", "kpi.read"})
    desk = await new_page()
    await sign_in(desk, "wangwu", otp(wangwu.totp_uri))
    await open_view(desk, "事项办理")
    row = desk.locator("#work-table tbody tr", has_text="法律援助")
    await expect(row).to_contain_text("登记受理")
    await row.get_by_role("button", name="办理").click()
    panel = desk.locator("#work-item")
    await expect(panel.locator("#wi-appeal")).to_contain_text(STORY)
    await panel.get_by_role("button", name="受理", exact=True).click()
    await expect(panel.locator("#wi-timeline")).to_contain_text("受理")
    await panel.get_by_label("答复内容（书面答复，职工可见）").fill("已协调公司于本月补发拖欠工资。")
    await panel.get_by_role("button", name="答复并办结").click()
    await expect(panel.locator("#wi-facts")).to_contain_text("已办结")
    await expect(desk.locator("#work-empty")).to_be_visible()

    await desk.get_by_role("button", name="生成绑定二维码").click()
    await expect(desk.locator("#wechat-qr svg")).to_be_visible()
    await desk.locator("#rates-form").get_by_role("button", name="查询").click()
    await expect(desk.locator("#rates-table")).to_contain_text("本单位及下级合计")

    await phone.reload()
    await expect(detail).to_contain_text("已协调公司")
    await detail.get_by_role("button", name="满意", exact=True).click()
    # Once rated, the buttons give way to the rating in the progress.
    await expect(detail.get_by_role("button", name="满意", exact=True)).to_have_count(0)
    await expect(detail.locator("ol.timeline")).to_contain_text("评价")
    assert await db.fetchval("SELECT rating FROM appeals") == "satisfied"
