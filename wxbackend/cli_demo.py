"""``wxbackend demo``: the training sandbox (操作培训). The server on its own embedded databases under
``<data_dir>/demo``, with WeChat and SMS simulated in the same process, a demo province generated
on first start (or on ``--reset``), its page at ``/sandbox/`` and the banner on every page."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from wxbackend.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from wxbackend.sandbox.guide import Guide

log = logging.getLogger("wxbackend")

DEMO_CONFIG = "demo.toml"      # the sandbox's own keys and simulated credentials, made once
GENERATED = "demo.json"        # what the generation made: the people the sandbox page shows

# The Mini Program, and the Official Account's menu as the phone simulator shows it.
_EXTRA = """
[miniprogram]
appid = "wx{mp_appid}"
secret = "{mp_secret}"

[[wechat.menu.button]]
name = "川工之家"
[[wechat.menu.button.sub_button]]
type = "view"
name = "注册"
url = "{{h5}}/register.html"
[[wechat.menu.button.sub_button]]
type = "view"
name = "入会"
url = "{{h5}}/join.html"
[[wechat.menu.button.sub_button]]
type = "view"
name = "会员认证"
url = "{{h5}}/certify.html"

[[wechat.menu.button]]
name = "工会服务"
[[wechat.menu.button.sub_button]]
type = "view"
name = "活动报名"
url = "{{h5}}/activities.html"
[[wechat.menu.button.sub_button]]
type = "view"
name = "普惠服务"
url = "{{h5}}/services.html"

[[wechat.menu.button]]
type = "click"
name = "帮助"
key = "HELP"
"""


def demo_settings(settings: Settings, port: int, *, force: bool) -> Settings:
    """The sandbox's settings: its own generated config under ``<data_dir>/demo``; the database
    and Redis of ``settings`` only when forced."""
    from wxbackend.cli import write_local_config
    from wxbackend.sandbox.safety import refusals

    found = refusals(settings)
    if found and not force:
        raise ConfigError("演示环境拒绝启动 / the sandbox refuses to start:\n  " + "\n  ".join(found)
                          + "\n确需如此，加 --force / add --force if you mean it")
    home = settings.data_dir / "demo"
    config = home / DEMO_CONFIG
    if not config.exists():
        write_local_config(config, home, _EXTRA)
    # This machine only: the sandbox page publishes its accounts' passwords and codes.
    demo = load_settings(config, environ={}).replace(
        server={"port": port, "public_url": f"http://127.0.0.1:{port}", "address": "127.0.0.1"})
    if force and settings.database.dsn.reveal():
        demo = demo.replace(database={"dsn": settings.database.dsn.reveal()})
    if force and settings.redis.url.reveal():
        demo = demo.replace(redis={"url": settings.redis.url.reveal()})
    return demo


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from wxbackend.cli import backing_services, run_async
    from wxbackend.infra.logging import setup_logging

    demo = demo_settings(settings, args.port, force=args.force)
    setup_logging(demo.logging.level, demo.logging.json)      # a trainer reads them: plain text
    with backing_services(demo, share=False) as (dsn, redis_url):
        run_async(_demo(demo, dsn, redis_url, args))
    log.info("stopped")
    return 0


async def _demo(settings: Settings, dsn: str, redis_url: str, args: argparse.Namespace) -> None:
    from wxbackend.cli import run_server
    from wxbackend.infra.db import connect
    from wxbackend.infra.migrations import migrate
    from wxbackend.runtime import open_runtime
    from wxbackend.sandbox.guide import Guide
    from wxbackend.sandbox.province import DEMO_PASSWORD, generate
    from wxbackend.sandbox.simulation import Simulation
    from wxbackend.services.messaging.menu import push_menu
    from wxbackend.services.seed import seed
    from wxbackend.store.reset import empty_everything

    generated = settings.data_dir / GENERATED
    simulation = Simulation(settings)
    settings = await simulation.start()
    try:
        fresh = args.reset or not generated.exists()
        conn = await connect(dsn)
        try:
            await migrate(conn)
            if fresh:
                await empty_everything(conn)
                await seed(conn)
        finally:
            await conn.close()
        async with open_runtime(settings, dsn, redis_url) as rt:
            if fresh:
                generated.unlink(missing_ok=True)
                await rt.redis.flushdb()
                began = time.perf_counter()
                made = await generate(rt, seed=args.seed, workers=args.workers, grassroots=args.grassroots)
                Guide.save(generated, dataclasses.asdict(made))
                log.info("demo province generated in %.1f s: %s", time.perf_counter() - began, made.counts)
            # The simulated WeChat starts empty: the menu goes to it as an operator pushes it.
            if settings.wechat.menu:
                await push_menu(rt.api, settings.wechat.menu, rt.h5_base)
            guide = Guide.load(generated, password=DEMO_PASSWORD, now=rt.clock)
            await run_server(rt, args.port, True, intro(args.port, guide),
                             sandbox=simulation.sandbox(settings, rt.http, guide))
    finally:
        await simulation.stop()


def intro(port: int, guide: Guide) -> str:
    """What the sandbox says once it answers: where to go, and as whom."""
    base = f"http://127.0.0.1:{port}"
    lines = ["", "川工之家演示环境已启动（演示环境，数据均为虚构）/ the training sandbox is serving:",
             f"  演示说明 sandbox:      {base}/sandbox/   （演示账号、动态码、职工）",
             f"  管理后台 console:      {base}/admin/",
             f"  职工页面 worker pages: {base}/h5/", "",
             f"演示干部账号（密码均为 {guide.password}，动态码见 {base}/sandbox/）:"]
    lines += [f"  {c['username']:<12} {c['display_name']}（{c['org_name']}）" for c in guide.cadres]
    lines += ["", "恢复初始状态 / reset: 停止后运行 make demo-reset", "停止 / stop: Ctrl+C", ""]
    return "\n".join(lines)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="the training sandbox: a demo province, WeChat simulated")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--reset", action="store_true", help="generate the demo province again")
    demo.add_argument("--force", action="store_true",
                      help="start even though the config names a database or WeChat/SMS credentials")
    demo.add_argument("--seed", type=int, default=2026, help="the generation's random seed")
    demo.add_argument("--workers", type=int, default=3000, help="workers in the demo province")
    demo.add_argument("--grassroots", type=int, default=300, help="grassroots unions")
    demo.set_defaults(func=cmd_demo)
