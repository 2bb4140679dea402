"""Fixtures for the cadre console in a real browser: Playwright driving the system's Chromium
(headless, offline). Without Playwright or Chromium these tests are skipped on a developer's
machine, and fail under CI (CI=true), where they always have to run."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

try:
    from playwright.async_api import Page, expect
except ImportError as exc:  # pragma: no cover - depends on the machine
    # Without Playwright the test modules stop at require_browser() before they use these.
    Page = expect = None
    _NO_PLAYWRIGHT = f"Playwright is not installed ({exc}): pip install playwright"
else:
    _NO_PLAYWRIGHT = ""

__all__ = ["CHROMIUM", "PASSWORD", "Page", "expect", "in_ci", "otp", "require_browser", "unavailable"]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "Sichuan-Union-2026"
VIEWPORT = {"width": 1366, "height": 860}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """Skip (a developer's machine without a browser) or fail (CI must run these tests); in a
    fixture, or at a test module's top."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_browser() -> None:
    """Called at the top of each browser test module: without Playwright or Chromium the whole
    module is skipped, or fails under CI."""
    if _NO_PLAYWRIGHT:  # pragma: no cover - depends on the machine
        unavailable(_NO_PLAYWRIGHT)
    if not os.access(CHROMIUM, os.X_OK):  # pragma: no cover - depends on the machine
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium")


def otp(totp_uri: str, ahead: float = 0) -> str:
    """The current code of an authenticator bound to ``totp_uri``; ``ahead=30`` gives the next
    one (a code is accepted once)."""
    secret = parse_qs(urlsplit(totp_uri).query)["secret"][0]
    return pyotp.TOTP(secret).at(time.time() + ahead)


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    try:
        from playwright.async_api import Error, async_playwright
    except ImportError as exc:
        unavailable(f"Playwright is not installed ({exc}): pip install playwright")
    async with async_playwright() as playwright:
        try:
            chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                        headless=True)
        except Error as exc:
            unavailable(f"Chromium at {CHROMIUM} cannot be started: {exc.message.splitlines()[0]}")
        # The pages run under a Content-Security-Policy: anything it blocks (an inline script or
        # style, a foreign image) shows as a console error, and fails the test.
        violations: list[str] = []

        def watch(page) -> None:
            page.on("console", lambda message: violations.append(message.text)
                    if "Content Security Policy" in message.text else None)

        opened = chromium.new_context

        async def new_context(**kwargs):
            context = await opened(**kwargs)
            context.on("page", watch)
            return context

        chromium.new_context = new_context
        try:
            yield chromium
        finally:
            await chromium.close()
        assert not violations, f"blocked by the Content-Security-Policy: {violations}"


@pytest.fixture
async def new_page(browser, server: str) -> AsyncIterator[Callable]:
    """``await new_page()`` opens the console in a fresh browser profile (its own cookies), as
    on another computer; Chinese locale and Beijing time."""
    contexts = []

    async def open_page():
        context = await browser.new_context(base_url=server, viewport=VIEWPORT, locale="zh-CN",
                                            timezone_id="Asia/Shanghai")
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = await context.new_page()
        await page.goto("/admin/")
        return page

    yield open_page
    for context in contexts:
        await context.close()


@pytest.fixture
async def chengdu(db) -> int:
    return await db.fetchval("SELECT id FROM orgs WHERE code = 'SC-510100'")
