"""The base-data ledger in the console: a province cadre with ``basedata.ledger`` sees the log's size,
what is final and queued, which city node lags (one never cosigned, in red), the checkpoints and
who cosigned them; looks an entry up and downloads a receipt that verifies offline; sees a node's
alarm in red, clears it with a note, and the view refreshes itself. A city cadre, even one granted
the permission, has no such menu entry, and the server refuses it the view."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import PASSWORD, expect, otp, require_browser
from tests.browser.test_console import menu, open_view, sign_in
from tests.conftest import LEDGER_ORIGIN, LEDGER_SIGNER, make_settings
from tests.services.cadres.test_cadres import org_id
from wxbackend.services.ledger.entries import decode
from wxbackend.services.ledger.notes import COSIGNATURE_V1, Signature, Signer, parse_note
from wxbackend.services.ledger.verify import verify_receipt
from wxbackend.store.identity.accounts import log_change
from wxbackend.store.ledger import log as store

require_browser()

CHENGDU_NODE = Signer.generate("chengdu.node", COSIGNATURE_V1)
DAZHOU_NODE = Signer.generate("dazhou.node", COSIGNATURE_V1)


@pytest.fixture
def settings(fake_wechat):
    """Two city nodes, one cosignature makes a checkpoint final. Nothing pushes to them in these
    tests (the cosigning loop runs in the worker), so their addresses are never called."""
    return make_settings(fake_wechat.base_url, ledger={
        "witnesses": (f"{CHENGDU_NODE.verifier().vkey()} http://127.0.0.1:9/chengdu",
                      f"{DAZHOU_NODE.verifier().vkey()} http://127.0.0.1:9/dazhou"),
        "quorum": 1})


async def changes(db, unions: list[int], n: int) -> None:
    for i in range(n):
        await log_change(db, "org", str(unions[i % len(unions)]), "updated", "test", {})


async def cosign(db, signer: Signer, size: int) -> None:
    """What the province keeps of a witness's answer: its cosignature line on that checkpoint."""
    note = parse_note(bytes(await db.fetchval("SELECT note FROM ledger_checkpoints WHERE size = $1", size)))
    line = Signature(signer.name, signer.key_id, signer.sign(note.text, timestamp=int(time.time()))).line()
    await store.add_cosignature(db, size, signer.name, line, await db.fetchval("SELECT now()"))


@pytest.mark.expected_errors(r"ledger alarm")
async def test_the_province_watches_the_ledger_and_clears_an_alarm(new_page, rt, db, chengdu) -> None:
    office = await rt.cadres.create_operator(username="office", display_name="平台办公室", password=PASSWORD)
    actor = (await rt.cadres.login(username="office", password=PASSWORD, totp=otp(office.totp_uri),
                                   ip="", user_agent="")).actor
    province = await org_id(db, "SC")
    zhangsan = await rt.cadres.create_account(
        actor, username="zhangsan", display_name="张三", org_id=province, role="super_admin", duty="system",
        permissions={"basedata.ledger"}, password=PASSWORD)
    wangwu = await rt.cadres.create_account(
        actor, username="wangwu", display_name="王五", org_id=chengdu, role="super_admin", duty="system",
        permissions={"kpi.read", "basedata.ledger"}, password=PASSWORD)

    unions = [chengdu, await org_id(db, "SC-511700"), province]
    await changes(db, unions, 3)
    first = (await rt.ledger.integrate_all()).size
    await cosign(db, CHENGDU_NODE, first)             # final at ``first``; 达州 never answered
    await changes(db, unions, 2)
    second = (await rt.ledger.integrate_all()).size
    await changes(db, unions, 1)                      # queued, not yet in the log
    assert (first, second) == (6, 8)                  # the three accounts' creation came first
    await rt.ledger_alarms.raise_alarm(source="node-chengdu", kind="fork",
                                       message="同一树大小出现了两个不同的根哈希", evidence={})

    page = await new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
            if response.status >= 500 else None)
    await sign_in(page, "zhangsan", otp(zhangsan.totp_uri))
    await expect(menu(page, "基础数据账本")).to_be_visible()
    await page.clock.install()                        # the 10-second refresh, without waiting for it
    await open_view(page, "基础数据账本")
    view = page.locator("#view-basedata-ledger")

    await expect(view.locator("#bl-size")).to_have_text("8")
    await expect(view.locator("#bl-final")).to_have_text("6")
    await expect(view.locator("#bl-quorum")).to_have_text("定稿需 1/2 个节点联署")
    await expect(view.locator("#bl-queued")).to_have_text("1")
    await expect(view.locator("#bl-origin")).to_have_text(LEDGER_ORIGIN)
    await expect(view.locator("#bl-key")).to_have_value(LEDGER_SIGNER.verifier().vkey())
    root = await db.fetchval("SELECT encode(root, 'base64') FROM ledger_checkpoints WHERE size = 8")
    await expect(view.locator("#bl-root span[title]")).to_have_attribute("title", root)
    await expect(view.locator("#bl-root")).to_contain_text(root[:12] + "…")

    chengdu_row = view.locator("#bl-nodes tr[data-node='chengdu.node']")
    await expect(chengdu_row.locator("td").nth(2)).to_have_text("6")
    await expect(chengdu_row.locator("td").nth(3)).to_have_text("2")
    await expect(chengdu_row).not_to_have_class("overdue")
    dazhou_row = view.locator("#bl-nodes tr[data-node='dazhou.node']")
    await expect(dazhou_row).to_have_class("overdue")
    await expect(dazhou_row.locator(".badge.overdue")).to_have_text("从未联署")

    rows = view.locator("#bl-checkpoints tbody tr")
    await expect(rows).to_have_count(2)
    newest = ["8", re.compile(r"^\d{4}-\d\d-\d\d "), re.compile("…$"), "—", ""]
    await expect(rows.nth(0).locator("td")).to_have_text(newest)
    final_row = view.locator("#bl-checkpoints tr[data-size='6']")
    await expect(final_row.locator("td").nth(3)).to_have_text("chengdu.node")
    await expect(final_row.locator("td").nth(4)).to_have_text("✓")

    # The node's alarm: open, in red, named in Chinese; cleared with a note it leaves the list.
    alarm = view.locator("#bl-alarms tbody tr.bl-open")
    await expect(alarm).to_have_count(1)
    await expect(alarm.locator("td.bad")).to_have_text("日志分叉")
    await expect(alarm).to_contain_text("node-chengdu")
    await expect(alarm).to_contain_text("同一树大小出现了两个不同的根哈希")
    red = await alarm.locator("td").first.evaluate("(td) => getComputedStyle(td).backgroundColor")
    assert red != "rgba(0, 0, 0, 0)"
    await expect(view.locator("#bl-alarms-title")).to_have_text("告警（未处理 1 条）")
    await alarm.get_by_role("button", name="处理").click()
    form = view.locator("#bl-clear-form")
    await form.get_by_role("button", name="确认处理").click()
    await expect(form.locator("#bl-clear-error")).to_have_text("请写明处理情况")
    await form.get_by_label("处理情况").fill("成都节点重新同步后一致，系误报")
    await form.get_by_role("button", name="确认处理").click()
    await expect(view.locator("#bl-alarms-empty")).to_have_text("没有未处理的告警。")
    await expect(view.locator("#bl-alarms tbody tr")).to_have_count(0)
    await expect(view.locator("#bl-alarms-title")).to_have_text("告警")
    cleared = await db.fetchrow("SELECT cleared_at, cleared_by FROM ledger_alarms")
    assert cleared["cleared_at"] is not None and cleared["cleared_by"] == zhangsan.id
    # Cleared alarms stay on record, greyed, with when they were cleared.
    await view.get_by_label("同时显示已处理的告警").check()
    await expect(view.locator("#bl-alarms tbody tr.bl-cleared")).to_contain_text("已于")

    # Entry 0 (the platform office's account): its fields, and a receipt that verifies offline.
    await view.get_by_label("序号").fill("0")
    await view.get_by_role("button", name="查看").click()
    await expect(view.locator("#bl-entry-title")).to_have_text("条目 0（基础数据变更）")
    fields = view.locator("#bl-entry-fields")
    body = bytes(await db.fetchval("SELECT body FROM ledger_entries WHERE idx = 0"))
    entry = decode(body)
    assert (entry["entity"], entry["id"], entry["action"]) == ("cadre", str(office.id), "created")
    await expect(fields.locator("dd[data-field=entity]")).to_have_text("cadre")
    await expect(fields.locator("dd[data-field=id]")).to_have_text(str(office.id))
    await expect(fields.locator("dd[data-field=action]")).to_have_text("created")
    await expect(fields.locator("dd[data-field=actor]")).to_have_text(entry["actor"])
    await expect(fields.locator("dd[data-field=org]")).to_have_text(" › ".join(entry["org"]) or "—")
    await expect(fields.locator("dt")).to_have_count(len(entry))
    await expect(fields.locator("dt").first).to_have_text("条目类型")
    async with page.expect_download() as download_info:
        await view.get_by_role("link", name="下载回执").click()
    download = await download_info.value
    assert download.suggested_filename == "ledger-receipt-0.txt"
    receipt = (await download.path()).read_bytes()
    verified = verify_receipt(body, receipt, log_key=LEDGER_SIGNER.verifier(),
                              witnesses=[CHENGDU_NODE.verifier()], quorum=1)
    assert (verified.index, verified.size, verified.cosigned_by) == (0, 6, ("chengdu.node",))
    # Entry 7 is signed but not final: the server says so where the link is.
    await view.get_by_label("序号").fill("7")
    await view.get_by_role("button", name="查看").click()
    await expect(view.locator("#bl-receipt-note")).to_contain_text("尚未进入已定稿的检查点")
    await view.get_by_role("link", name="下载回执").click()
    await expect(view.locator("#bl-receipt-error")).to_contain_text("联署")

    # The view reads the ledger again every 10 seconds.
    await rt.ledger.integrate_all()
    await page.clock.run_for(10_500)
    await expect(view.locator("#bl-size")).to_have_text("9")
    await expect(view.locator("#bl-queued")).to_have_text("0")
    assert errors == []

    # A city cadre with the permission: no menu entry, and the server refuses the view itself.
    city = await new_page()
    await sign_in(city, "wangwu", otp(wangwu.totp_uri))
    await expect(menu(city, "使用情况")).to_be_visible()
    await expect(menu(city, "基础数据账本")).to_be_hidden()
    await city.evaluate("location.hash = 'basedata-ledger'")
    await expect(city.locator("#bl-error")).to_have_text("基础数据账本由省总工会监看")
