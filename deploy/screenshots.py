"""The README's screenshots, taken from the training sandbox in Chromium.

    .venv/bin/python deploy/screenshots.py        # writes docs/screenshots/*.png

It starts ``wxbackend demo`` on a fresh data directory (its own embedded databases, a small demo
province), waits until the sandbox answers, then takes each picture as a trainee would see it:
the sandbox page, a tour beside the console signed in, the city's usage dashboard, and the phone
simulator after a chat with the Official Account. The server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
VIEWPORT = {"width": 1366, "height": 820}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data_dir: Path, port: int) -> subprocess.Popen:
    config = data_dir / "sandbox.toml"
    config.write_text(f'[server]\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    log = open(data_dir / "demo.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WXBACKEND__")}
    return subprocess.Popen(  # noqa: S603 - our own command
        [str(ROOT / ".venv" / "bin" / "wxbackend"), "--config", str(config), "demo", "--port", str(port),
         "--workers", "400", "--grassroots", "60"], stdout=log, stderr=subprocess.STDOUT, env=env)


def wait(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("wxbackend demo stopped before it answered")
        try:
            if httpx.get(f"{url}/sandbox/api/people", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the sandbox did not answer within {seconds:.0f} s")


async def shoot(url: str) -> list[Path]:
    from playwright.async_api import async_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    taken = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=["--no-sandbox", "--disable-gpu"])
        context = await browser.new_context(base_url=url, viewport=VIEWPORT, locale="zh-CN",
                                            timezone_id="Asia/Shanghai")
        context.set_default_timeout(20_000)
        page = await context.new_page()

        async def save(name: str) -> None:
            path = OUT / f"{name}.png"
            await page.screenshot(path=str(path))
            taken.append(path)

        await page.goto("/sandbox/")
        await page.locator("#cadres tbody tr").first.wait_for()
        await save("sandbox")

        # The city tour: signed in with the account the tour shows, then its usage dashboard.
        await page.goto("/sandbox/tour.html?tour=city")
        await page.locator("#tour-username").wait_for()
        frame = page.frame_locator("#tour-frame")
        form = frame.locator("#signin-form")
        await form.get_by_label("用户名").fill(await page.locator("#tour-username").inner_text())
        await form.get_by_label("密码", exact=True).fill(await page.locator("#tour-password").inner_text())
        await form.get_by_label("动态验证码").fill(await page.locator("#tour-totp").inner_text())
        await form.get_by_role("button", name="登录", exact=True).click()
        await frame.locator("#topbar-logout").wait_for()
        for _ in range(4):
            await page.locator("#tour-next").click()
        await frame.locator("#kpi-dashboard .kpi-card").first.wait_for()
        await page.wait_for_timeout(800)       # the charts' last drawing
        await save("tour-city-dashboard")

        # The phone: a worker follows, asks for help and opens the activities page.
        await page.goto("/sandbox/phone.html")
        await page.locator("#worker option").nth(1).wait_for(state="attached")
        await page.locator("#worker").select_option(index=1)
        await page.locator("#follow").click()
        await page.locator("#messages li", has_text="欢迎关注").wait_for()
        await page.locator("#text").fill("帮助")
        await page.locator("#text").press("Enter")
        await page.locator("#messages li", has_text="可以为您办理").wait_for()
        await save("phone-chat")
        await page.locator("#menu button", has_text="工会服务").click()
        await page.locator("#menu .sub button", has_text="活动报名").click()
        await page.frame_locator("#web").locator("#content").wait_for()
        await page.wait_for_timeout(500)
        await save("phone-activities")
        await browser.close()
    return taken


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    # Without a Chinese font Chromium draws every character as a box.
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)  # noqa: S607
    if not fonts.stdout.strip():
        raise SystemExit("no Chinese font for Chromium: apt-get install fonts-noto-cjk")
    data_dir = Path(tempfile.mkdtemp(prefix="sandbox-shots-"))
    port = free_port()
    proc = start(data_dir, port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait(url, proc)
        for path in asyncio.run(shoot(url)):
            print(f"wrote {path.relative_to(ROOT)}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
