"""Every guided tour walked end to end in Chromium against the sandbox, as a trainee walks it: the
tour page opens each step's page beside the steps, the trainee does what the step says (signs in
with the demo account the tour shows, or acts on the phone simulator) and sees what the step says
they will see."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator

import pytest
import tornado.testing

from tests.browser.conftest import VIEWPORT, expect, require_browser
from tests.conftest import MP_APPID, make_settings
from wxbackend.app import make_server
from wxbackend.runtime import open_runtime
from wxbackend.sandbox.guide import Guide
from wxbackend.sandbox.kit import Sandbox
from wxbackend.sandbox.people import unionid_of
from wxbackend.sandbox.phone import Phone
from wxbackend.sandbox.province import DEMO_PASSWORD, generate
from wxbackend.sandbox.simulated import FakePusher, FakeTencentSms
from wxbackend.sandbox.simulation import SIGN_IN_PATH
from wxbackend.sandbox.tours import TOURS, Step, Tour
from wxbackend.services.messaging.menu import push_menu

require_browser()


@pytest.fixture
async def sandbox(backing, clean_db, fake_wechat, pusher: FakePusher) -> AsyncIterator[str]:
    """A small demo province served as ``wxbackend demo`` serves it; yields the base URL."""
    sock, port = tornado.testing.bind_unused_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(fake_wechat.base_url, server={"public_url": url},
                             wechat={"oauth_authorize_url": url + SIGN_IN_PATH})
    async with open_runtime(settings, backing.dsn, backing.redis_url) as rt:
        await rt.redis.flushdb()
        demo = await generate(rt, seed=7, workers=40, grassroots=8)
        guide = Guide(dataclasses.asdict(demo), password=DEMO_PASSWORD, now=rt.clock)
        for worker in demo.workers:
            fake_wechat.oauth_user(worker.openid, unionid=unionid_of(worker.openid))
        phone = Phone(rt.http, url, pusher, fake_wechat, FakeTencentSms(), mp_appid=MP_APPID)
        await push_menu(rt.api, {"button": [{"name": "工会服务", "sub_button": [
            {"type": "view", "name": "活动报名", "url": "{h5}/activities.html"}]}]}, rt.h5_base)
        server = make_server(rt, Sandbox(guide=guide, phone=phone))
        server.add_sockets([sock])
        try:
            yield url
        finally:
            server.stop()
            await rt.inbox.drain()
            await server.close_all_connections()


async def act(page, frame, step: Step, held: dict) -> None:
    """Do what the step tells the trainee to do, in the page beside the steps (``held``: what the
    trainee carries from one step to the next, the code the worker showed)."""
    kind, _, value = step.action.partition(":")
    if kind == "sign_in":
        form = frame.locator("#signin-form")
        await expect(form).to_be_visible()
        await form.get_by_label("用户名").fill(await page.locator("#tour-username").inner_text())
        await form.get_by_label("密码", exact=True).fill(await page.locator("#tour-password").inner_text())
        if await page.locator("#tour-totp-line").is_visible():
            await form.get_by_label("动态验证码").fill(await page.locator("#tour-totp").inner_text())
        await form.get_by_role("button", name="登录", exact=True).click()
    elif kind in ("follow", "say", "menu"):
        if not await frame.locator("#worker").input_value():
            await frame.locator("#worker").select_option(index=1)       # the first demo worker
            await expect(frame.locator("#openid")).not_to_have_text("—")
        if kind == "follow":
            await frame.locator("#follow").click()
        elif kind == "say":
            await frame.locator("#text").fill(value)
            await frame.locator("#text").press("Enter")
        else:
            button, item = value.split("/")
            await frame.locator("#menu button", has_text=button).click()
            await frame.locator("#menu .sub button", has_text=item).click()
    elif kind == "verifier_sign_in":
        form = frame.locator("#login")
        await expect(form).to_be_visible()
        await form.locator("#username").fill(await page.locator("#tour-username").inner_text())
        await form.locator("#password").fill(await page.locator("#tour-password").inner_text())
        await form.get_by_role("button", name="登录").click()
    elif kind == "redeem":
        await frame.locator("#code").fill(held["code"])
        await frame.get_by_role("button", name="核销此券码").click()
        await frame.get_by_role("button", name="确认核销").click()
    elif kind == "mp" and value == "code":
        if not await frame.locator("#worker").input_value():
            await frame.locator("#worker").select_option(index=1)   # the first worker holds a place
        await frame.get_by_role("tab", name="小程序").click()
        await frame.locator("#mp-login").click()
        await expect(frame.locator("#mp-log")).to_contain_text("token")
        await frame.locator("#mp-signups").click()
        # The place on a service the merchant's desk redeems (the tour names it).
        people = await (await page.request.get("/sandbox/api/people")).json()
        service = people["verifiers"][0]["offerings"][0]
        await frame.locator("#mp-list li[data-status=confirmed]", has_text=service) \
            .get_by_role("button", name="出示核销码").click()
        held["code"] = (await frame.locator("#mp-list .claim-code").first.inner_text()).strip()
    elif kind == "mp":
        await frame.get_by_role("tab", name="小程序").click()
        await frame.locator(f"#mp-{value}").click()


async def sees(frame, step: Step) -> None:
    kind = step.action.partition(":")[0]
    if kind == "sign_in":
        await expect(frame.locator("#topbar-logout")).to_have_text(step.see)
        await expect(frame.locator("#menu")).to_be_visible()
    elif kind in ("follow", "say"):
        await expect(frame.locator("#messages")).to_contain_text(step.see)
    elif kind == "menu":
        web = frame.frame_locator("#web")
        await expect(web.locator("h1")).to_have_text(step.see)
        # Past WeChat's (simulated) sign-in: the worker's own list, not a sign-in prompt.
        await expect(web.locator("#content")).to_be_visible()
    elif step.action == "mp:code":
        await expect(frame.locator("#mp-list")).to_contain_text(step.see)
    elif kind == "mp":
        await expect(frame.locator("#mp-log")).to_contain_text(step.see)
    elif kind == "verifier_sign_in":
        await expect(frame.locator("#desk")).to_contain_text(step.see)
    elif kind == "redeem":
        await expect(frame.locator("#result-ok")).to_contain_text(step.see)
    else:
        await expect(frame.locator("main .view:visible h2")).to_have_text(step.see)


@pytest.mark.parametrize("tour", TOURS, ids=[t.id for t in TOURS])
async def test_each_tour_is_walked_to_its_end(sandbox, browser, tour: Tour) -> None:
    context = await browser.new_context(base_url=sandbox, viewport=VIEWPORT, locale="zh-CN",
                                        timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    context.on("response", lambda response: errors.append(f"{response.status} {response.url}")
               if response.status >= 500 else None)
    try:
        await page.goto(f"/sandbox/tour.html?tour={tour.id}")
        await expect(page.locator("#tour-title")).to_have_text(tour.title)
        await expect(page.locator(".sandbox-banner")).to_have_text("演示环境，数据均为虚构")
        frame = page.frame_locator("#tour-frame")
        held: dict = {}
        for number, step in enumerate(tour.steps, start=1):
            await expect(page.locator("#tour-steps li.current .step-title")).to_have_text(step.title)
            progress = f"第 {number} 步，共 {len(tour.steps)} 步"
            await expect(page.locator("#tour-progress")).to_have_text(progress)
            await expect(page.locator("#tour-frame")).to_have_attribute("src", step.page)
            if step.action:
                await act(page, frame, step, held)
            await sees(frame, step)
            if number < len(tour.steps):
                await page.locator("#tour-next").click()
        await expect(page.locator("#tour-next")).to_be_disabled()
        assert errors == []
    finally:
        await context.close()


def test_every_tour_has_its_demo_account_and_pages() -> None:
    assert {t.id for t in TOURS} == {"worker", "grassroots", "city", "merchant", "office"}
    for tour in TOURS:
        assert tour.steps and all(s.title and s.text and s.page.startswith("/") and s.see for s in tour.steps)
        assert (tour.steps[0].action == "sign_in") == (tour.account == "cadre")


async def test_the_sandbox_page_lists_the_tours_and_accounts_and_sign_in_asks_who(sandbox, browser) -> None:
    context = await browser.new_context(base_url=sandbox, viewport=VIEWPORT, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto("/sandbox/")
        await expect(page.locator("#tours li a")).to_have_count(len(TOURS))
        await expect(page.locator("#cadres tbody tr[data-username=chengdu] td.totp")).to_have_text(
            re.compile(r"^\d{6}$"))
        await expect(page.locator("#verifiers tbody tr")).to_have_count(1)
        # WeChat's sign-in with nobody holding the phone: the page asks which worker it is.
        await page.goto("/sandbox/wechat/authorize?appid=x&redirect_uri=http%3A%2F%2Fx.example%2Fcb")
        await expect(page).to_have_url(re.compile(r"/sandbox/authorize\.html\?appid=x"))
        await expect(page.locator("#workers li button").first).to_contain_text("会员")
    finally:
        await context.close()
