"""The ``wxbackend`` command: serve, migrate, seed, worker, wechat menu push, init-config."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import logging
import os
import secrets
import signal
import string
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from wxbackend.cli_demo import add_parsers as demo_parsers
from wxbackend.cli_ledger import add_parsers as ledger_parsers
from wxbackend.config import ConfigError, Settings, load_settings, require_security, require_wechat
from wxbackend.infra import embedded
from wxbackend.infra.db import connect
from wxbackend.infra.embedded import EmbeddedError, EmbeddedServers
from wxbackend.infra.files import write_private
from wxbackend.infra.logging import setup_logging
from wxbackend.infra.migrations import MigrationError, migrate
from wxbackend.infra.pii import new_key
from wxbackend.services.errors import DomainError

if TYPE_CHECKING:
    from wxbackend.runtime import Runtime
    from wxbackend.sandbox.kit import Sandbox

log = logging.getLogger("wxbackend")


def run_async(coro):
    """Run a command's coroutine on uvloop where installed: the event loop's own overhead is a
    large share of a message's cost, and uvloop roughly halves it."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@contextlib.contextmanager
def backing_services(settings: Settings, *, share: bool = True) -> Iterator[tuple[str, str]]:
    """(dsn, redis_url): the configured servers, or embedded ones under ``data_dir`` that stop
    when this block ends. Nothing embedded starts when both are configured. ``share``: when a
    server already runs the embedded ones (``make run`` in another terminal), use them; a
    second server (``share`` False) is refused instead."""
    if not settings.embedded_database and not settings.embedded_redis:
        yield settings.database.dsn.reveal(), settings.redis.url.reveal()
        return
    found = embedded.running(settings.data_dir) if share else None
    if found is not None:
        log.info("using the embedded servers of the process running under %s", settings.data_dir)
        yield found[0] or settings.database.dsn.reveal(), found[1] or settings.redis.url.reveal()
        return
    servers = EmbeddedServers(settings.data_dir, want_postgres=settings.embedded_database,
                              want_redis=settings.embedded_redis)
    with servers:
        yield (servers.dsn or settings.database.dsn.reveal(),
               servers.redis_url or settings.redis.url.reveal())


# --- commands ------------------------------------------------------------------------------
async def _migrate(dsn: str) -> list[int]:
    conn = await connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with backing_services(settings) as (dsn, _):
        applied = run_async(_migrate(dsn))
    print(f"migrations applied: {applied or 'none (up to date)'}")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from wxbackend.services.seed import seed, seed_demo

    async def run(dsn: str):
        conn = await connect(dsn)
        try:
            report = await seed(conn)
            return report, (await seed_demo(conn) if args.demo else 0)
        except asyncpg.UndefinedTableError:
            raise ConfigError("数据库尚未初始化，请先运行 wxbackend migrate") from None
        finally:
            await conn.close()

    with backing_services(settings) as (dsn, _):
        report, demo = run_async(run(dsn))
    print(f"seeded orgs {report.orgs}, {report.targets} yearly targets, "
          f"{report.new_keyword_rules} new keyword rules, {report.regions} regions, "
          f"{report.channels} channels, {report.calendar_years} calendar years, "
          f"{report.processes} process definitions"
          + (f", {demo} example grassroots unions" if args.demo else ""))
    return 0


async def _periodically(stop: asyncio.Event, seconds: float, job, name: str) -> None:
    """Run ``job`` now and then every ``seconds`` until ``stop``; a failure is logged, not fatal."""
    while not stop.is_set():
        try:
            await job()
        except Exception:
            log.exception("periodic job %s failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


def _background_jobs(rt, stop: asyncio.Event) -> list[asyncio.Task]:
    """What a worker runs: the outbox, the disabling of overdue cadre accounts, marking failed
    the roster imports whose process died, the retention of Official Account messages and
    publishing the audit trail's head (every process may run them: each is idempotent, in short
    transactions)."""

    async def publish_head() -> None:
        async with rt.pool.acquire() as conn:
            await rt.audit.publish_head(conn)

    async def integrate() -> None:
        # Each checkpoint goes to the nodes as soon as it is signed, and a round appends again
        # only after a full batch: under a steady stream of changes the queue is rarely empty,
        # and appending until it is would hold the pushers back (or sign a checkpoint for every
        # few changes).
        while (signed := await rt.ledger.integrate()) is not None:
            rt.cosigning.announce()
            if signed.appended < rt.ledger.batch:
                break

    ledger = [asyncio.create_task(_periodically(stop, rt.settings.ledger.interval, integrate, "ledger"))
              ] if rt.ledger.enabled else []
    if rt.ledger.enabled and rt.cosigning.witnesses:
        ledger.append(asyncio.create_task(rt.cosigning.run(stop)))

    return [*ledger, asyncio.create_task(rt.outbox.run(stop)),
            asyncio.create_task(_periodically(stop, rt.settings.security.audit_head_seconds,
                                              publish_head, "audit head")),
            asyncio.create_task(_periodically(stop, 6 * 3600, rt.cadres.sweep_overdue, "sweep")),
            asyncio.create_task(_periodically(stop, 3600, rt.inbox_retention.sweep,
                                              "inbound retention")),
            asyncio.create_task(_periodically(stop, 600, rt.rosters.mark_stale_imports_failed,
                                              "stale roster imports")),
            asyncio.create_task(_periodically(stop, rt.settings.activities.sweep_seconds,
                                              rt.signups.sweep, "activity holds")),
            asyncio.create_task(_periodically(stop, rt.settings.activities.sweep_seconds,
                                              rt.lottery.draw_due, "lottery draws")),
            asyncio.create_task(_periodically(stop, 600, rt.registrations.ban_no_shows,
                                              "no-show bans")),
            asyncio.create_task(_periodically(stop, 900, lambda: rt.notices.remind_tomorrow(rt.pool),
                                              "activity reminders")),
            asyncio.create_task(_periodically(stop, 15, rt.articles.publish_due,
                                              "scheduled articles")),
            asyncio.create_task(_periodically(stop, 30, rt.oa_publishing.poll,
                                              "Official Account publishing")),
            asyncio.create_task(_periodically(stop, rt.settings.channels.visits_rollup_seconds,
                                              rt.visit_stats.roll_up, "visit roll-up")),
            asyncio.create_task(_periodically(stop, rt.settings.casework.sweep_seconds,
                                              rt.deadlines.sweep, "casework deadlines")),
            asyncio.create_task(_periodically(stop, 3600, rt.appeals.drop_unfiled,
                                              "unfiled appeal files")),
            asyncio.create_task(_periodically(stop, 3600, rt.business_apps.drop_unfiled,
                                              "unfiled application files")),
            asyncio.create_task(_periodically(stop, 60, rt.business.reload, "configured modules")),
            asyncio.create_task(_periodically(stop, rt.settings.kpi.refresh_seconds, rt.kpi_rollups.refresh,
                                              "usage counters")),
            asyncio.create_task(_periodically(stop, 3600, rt.kpi_briefings.monthly, "monthly briefing")),
            asyncio.create_task(_periodically(stop, 600, rt.proposals.lapse, "proposal windows"))]


def next_steps(port: int, config_path: str | None, cadres: int) -> str:
    """What a newcomer does once the server answers (printed at start, in Chinese first)."""
    base = f"http://127.0.0.1:{port}"
    command = ".venv/bin/wxbackend" + (f" --config {config_path}" if config_path else "")
    lines = ["", "川工之家已启动 / serving:",
             f"  管理后台 console:      {base}/admin/",
             f"  职工页面 worker pages: {base}/h5/",
             f"  健康检查 health:       {base}/healthz", ""]
    if cadres == 0:
        lines += ["下一步 / next: 创建平台办公室的第一位操作员（服务运行时即可，在另一个终端运行）",
                  "  create the platform office's first operator (while this server runs, in another",
                  "  terminal):",
                  f"    {command} admin create-operator office --name 平台办公室",
                  "  输入两次密码，把显示的 otpauth:// 链接加入身份验证器（手机上的“身份验证器”类应用），",
                  "  再用用户名 office、密码和六位动态码登录管理后台。",
                  "  Add the printed otpauth:// link to an authenticator app, then sign in to the console",
                  "  with the user name, the password and the six-digit code.", ""]
    else:
        lines += [f"已有 {cadres} 个干部账号，可登录管理后台",
                  f"{cadres} cadre accounts exist: sign in to the console.", ""]
    lines += ["停止 / stop: Ctrl+C", ""]
    return "\n".join(lines)


async def _serve(settings: Settings, dsn: str, redis_url: str, port: int, worker: bool,
                 config_path: str | None = None) -> None:
    from wxbackend.runtime import open_runtime

    async with open_runtime(settings, dsn, redis_url) as rt:
        await run_server(rt, port, worker, next_steps(port, config_path, await rt.cadres.count()))


async def run_server(rt: Runtime, port: int, worker: bool, intro: str,
                     sandbox: Sandbox | None = None) -> None:
    """Serve ``rt`` on ``port`` until SIGTERM or SIGINT, saying ``intro`` once it listens."""
    from wxbackend.app import make_server

    settings = rt.settings
    server = make_server(rt, sandbox)
    server.listen(port, settings.server.address)
    # Start-up objects live as long as the process: keep them out of every collection, and
    # collect the young generation less often (a push allocates hundreds of objects).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Every serving process counts its page views and flushes them to Redis.
    tasks = [asyncio.create_task(rt.visits.run(stop)),
             *(_background_jobs(rt, stop) if worker else [])]
    log.info("serving on %s:%d (worker %s)", settings.server.address, port,
             "on" if worker else "off")
    print(intro, flush=True)
    await stop.wait()
    log.info("stopping")
    server.stop()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await rt.inbox.drain()
            await server.close_all_connections()
    await asyncio.gather(*tasks)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    require_wechat(settings)
    require_security(settings)
    port = args.port or settings.server.port
    worker = settings.server.run_worker and not args.no_worker
    with backing_services(settings, share=False) as (dsn, redis_url):
        run_async(_serve(settings, dsn, redis_url, port, worker, args.config))
    log.info("stopped")
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    require_wechat(settings)

    async def job(rt) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker running")
        await asyncio.gather(*_background_jobs(rt, stop))

    with_runtime(settings, job, share=False)
    return 0


def cmd_menu_push(settings: Settings, args: argparse.Namespace) -> int:
    require_wechat(settings)
    from wxbackend.services.messaging.menu import push_menu

    if not settings.wechat.menu:
        raise ConfigError("配置中没有 [wechat.menu]（no [wechat.menu] in the config）")

    async def job(rt) -> dict:
        return await push_menu(rt.api, settings.wechat.menu, rt.h5_base)

    menu = with_runtime(settings, job)
    print("菜单已推送 / menu pushed:")
    print(json.dumps(menu, ensure_ascii=False, indent=2))
    return 0


def with_runtime(settings: Settings, job, *, share: bool = True):
    """Run ``job(runtime)`` against the configured (or embedded) servers: the same runtime
    ``serve`` builds, so a command never wires services by hand."""
    require_security(settings)
    from wxbackend.runtime import open_runtime

    async def run(dsn: str, redis_url: str):
        async with open_runtime(settings, dsn, redis_url) as rt:
            return await job(rt)

    with backing_services(settings, share=share) as (dsn, redis_url):
        return run_async(run(dsn, redis_url))


def cmd_platform_app(settings: Settings, args: argparse.Namespace) -> int:
    """The platform office registers, lists and disables access entrances."""
    from wxbackend.store.identity import platform as store

    operator = os.environ.get("SUDO_USER") or os.environ.get("USER") or "?"

    async def job(rt) -> None:
        if args.app_command == "create":
            app, secret = await rt.apps.create_app(
                app_id=args.app_id, name=args.name, org_code=args.org,
                scopes=[s for s in args.scopes.split(",") if s], redirect_uris=args.redirect_uri or [],
                province_scope=args.province_scope, by=f"cli:{operator}")
            print(f"app_id: {app.app_id}\nsecret: {secret}\nscopes: {' '.join(sorted(app.scopes))}")
            if app.province_scope:
                print("province scope: 可查找全省的账号 / may resolve accounts of the whole province")
            print("请妥善保存 secret：它只显示这一次。/ Keep the secret: it is shown only once.")
        elif args.app_command == "disable":
            await rt.apps.set_status(args.app_id, active=False)
            print(f"{args.app_id} disabled")
        else:
            async with rt.pool.acquire() as conn:
                for row in await store.list_apps(conn):
                    reach = "province" if row["province_scope"] else "subtree"
                    print(f"{row['app_id']}\t{row['status']}\t{row['org_name']}\t{reach}\t"
                          f"{','.join(row['scopes'])}\t{row['name']}")

    with_runtime(settings, job)
    return 0


def cmd_conflicts(settings: Settings, args: argparse.Namespace) -> int:
    """Account conflicts (two verified phones, one person?) are resolved by a person."""

    async def job(rt) -> None:
        if args.conflict_command == "list":
            for c in await rt.accounts.list_conflicts():
                print(f"{c['id']}\t{c['reason']}\t{c['account']}\t{c['other']}\t{c['since']}")
        else:
            outcome = await rt.accounts.resolve_conflict(args.id, action=args.action,
                                                         keep=args.keep, by=args.by)
            print(f"conflict {args.id}: {outcome}")

    with_runtime(settings, job)
    return 0


def _audit_trail(settings: Settings):
    from wxbackend.services.cadres.audit import AuditKeyError, AuditTrail, parse_key

    try:
        return AuditTrail(parse_key(settings.security.audit_key.reveal()))
    except AuditKeyError as exc:
        raise ConfigError(f"{exc}（可用 wxbackend init-config 生成）") from None


async def _with_conn(dsn: str, job):
    conn = await connect(dsn)
    try:
        return await job(conn)
    finally:
        await conn.close()


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Walk the audit trail's MAC chain and compare its tail with the newest published head,
    the heads recorded in the base-data ledger (which the city nodes hold) and ``--head``, a head
    line from the shipped log; exit 1 and name every record that was edited, follows a deletion,
    or is missing from the tail."""
    from wxbackend.services.cadres.audit import Head

    trail = _audit_trail(settings)
    try:
        published = Head.parse(args.head) if args.head else None
    except (ValueError, KeyError, StopIteration):
        raise ConfigError("--head: expected a line 'audit head #N mac=… at=… sig=…'") from None

    async def check(conn) -> tuple[int, list]:
        from wxbackend.services.ledger.entries import audit_head
        from wxbackend.store.ledger.log import audit_head_entries

        recorded = [Head(*audit_head(body)) for body in await audit_head_entries(conn)]
        return await trail.verify(conn, published=published, recorded=recorded)

    with backing_services(settings) as (dsn, _):
        count, breaks = run_async(_with_conn(dsn, check))
    for b in breaks:
        print(f"record {b.record_id}: {b.problem}" + (f" ({b.note})" if b.note else ""))
    print(f"audit trail: {count} records checked, {len(breaks)} problems")
    return 1 if breaks else 0


def cmd_audit_head(settings: Settings, args: argparse.Namespace) -> int:
    """Publish the trail's signed head now (workers do it every [security] audit_head_seconds)."""
    trail = _audit_trail(settings)
    with backing_services(settings) as (dsn, _):
        head = run_async(_with_conn(dsn, trail.publish_head))
    print(head.line() if head else "audit trail is empty: no head to publish")
    return 0


def cmd_create_operator(settings: Settings, args: argparse.Namespace) -> int:
    """Bootstrap the platform office's first operator (asks for the password twice, or reads
    ``WXBACKEND_OPERATOR_PASSWORD`` where no one can type it)."""
    password = os.environ.get("WXBACKEND_OPERATOR_PASSWORD") or _ask_password()

    async def job(rt):
        return await rt.cadres.create_operator(username=args.username, display_name=args.name,
                                               password=password, duty=args.duty)

    account = with_runtime(settings, job)
    print(f"operator {account.username} created (id {account.id})")
    print("在身份验证器中添加（仅显示这一次）/ add to an authenticator app (shown once):")
    print(account.totp_uri)
    return 0


def _ask_password() -> str:
    import getpass

    if not sys.stdin.isatty():
        raise ConfigError(_NO_TERMINAL)
    try:
        password = getpass.getpass("密码 / password: ")
        again = getpass.getpass("再次输入 / again: ")
    except EOFError:
        raise ConfigError(_NO_TERMINAL) from None
    if again != password:
        raise ConfigError("两次输入的密码不一致 / passwords differ")
    return password


_NO_TERMINAL = ("没有可输入密码的终端：请把密码放在环境变量 WXBACKEND_OPERATOR_PASSWORD 中再运行"
                "（no terminal to type the password: set WXBACKEND_OPERATOR_PASSWORD）")


def cmd_admin_sweep(settings: Settings, args: argparse.Namespace) -> int:
    """Disable cadre accounts overdue for their periodic re-confirmation (workers also do this
    every six hours)."""

    async def job(rt) -> list[str]:
        return await rt.cadres.sweep_overdue(args.grace_days)

    disabled = with_runtime(settings, job)
    print(f"disabled {len(disabled)} overdue accounts: {', '.join(disabled) or '-'}")
    return 0


def cmd_kpi_backfill(settings: Settings, args: argparse.Namespace) -> int:
    """Count the usage figures' daily counters again for a range of days (the worker keeps the
    recent days current; this fills history, or repairs it after a data correction)."""
    from datetime import date

    from wxbackend.services.errors import InvalidInput

    try:
        first = date.fromisoformat(args.first) if args.first else None
        last = date.fromisoformat(args.last) if args.last else None
    except ValueError:
        print("日期应写作 2026-03-01 / dates look like 2026-03-01", file=sys.stderr)
        return 2

    async def job(rt) -> int:
        return await rt.kpi_rollups.backfill(first, last)

    try:
        written = with_runtime(settings, job)
    except InvalidInput as exc:
        print(exc.message, file=sys.stderr)
        return 2
    print(f"usage counters recounted from {args.first or '2020-01-01'} to {args.last or 'today'}: "
          f"{written} rows")
    return 0


def cmd_inbound_purge(settings: Settings, args: argparse.Namespace) -> int:
    """Drop the content of Official Account messages (received and sent) and followers' locations older than
    [privacy] inbound_retention_days, and seal any content still stored in clear (workers also
    do this hourly)."""

    async def job(rt) -> dict:
        return await rt.inbox_retention.sweep()

    done = with_runtime(settings, job)
    print(f"content dropped from {done['dropped']} messages older than "
          f"{settings.privacy.inbound_retention_days} days; {done['sealed']} sealed; "
          f"{done['sent']} sent messages emptied; {done['locations']} followers' locations dropped")
    return 0


def cmd_pii_reseal(settings: Settings, args: argparse.Namespace) -> int:
    """Re-encrypt personal data sealed under an older field key (after a key change)."""
    from wxbackend.services.key_rotation import reseal_all

    async def job(rt) -> dict[str, int]:
        return await reseal_all(rt.pool, rt.pii, batch=args.batch)

    done = with_runtime(settings, job)
    for column, count in done.items():
        print(f"{column}: {count} re-encrypted under key {settings.security.field_key_current}")
    return 0


LOCAL_CONFIG = """# Local configuration made by `wxbackend init-config` for running on this machine.
# The WeChat values below are placeholders generated at random: the server runs and answers
# pushes signed with them, but calls to WeChat fail until the real AppID, AppSecret, Token and
# EncodingAESKey of the union's Official Account are filled in. Every key: config.example.toml.

[server]
port = 8000
data_dir = "{data_dir}"
public_url = "http://localhost:8000"

[wechat]
appid = "wx{appid}"
secret = "{secret}"
token = "{token}"
encoding_aes_key = "{aes_key}"
original_id = "gh_{original}"
message_mode = "safe"

[security]
# Keys for personal data at rest (SM4 field encryption, HMAC-SM3 blind index). Losing them
# loses the phone numbers stored with them: back them up apart from the database.
field_keys = "1:{field_key}"
field_key_current = 1
index_key = "{index_key}"
# The audit trail's HMAC-SM3 chain key: without it the trail cannot be verified.
audit_key = "{audit_key}"

[ledger]
# The province's key signing the base-data ledger's checkpoints; the city nodes are given its
# public half (wxbackend ledger keygen makes a new pair).
signing_key = "{ledger_key}"

[sms]
provider = "console"   # prints codes to the log; use "tencent" with real credentials

[logging]
level = "INFO"
json = false
"""


def cmd_init_config(settings: Settings | None, args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"{path} already exists; keeping it (use --force to replace)")
        return 0
    write_local_config(path, path.parent.resolve())
    print(f"wrote {path}")
    return 0


def write_local_config(path: Path, data_dir: Path, extra: str = "") -> None:
    """A private config file with generated secrets and placeholder WeChat credentials.
    ``extra``: more TOML after it, whose ``{mp_appid}`` and ``{mp_secret}`` get a generated Mini
    Program's credentials (the sandbox's simulated one)."""
    from wxbackend.config import LedgerSettings
    from wxbackend.services.ledger.notes import Signer

    alnum = string.ascii_letters + string.digits

    def rand(n: int, alphabet: str = alnum) -> str:
        return "".join(secrets.choice(alphabet) for _ in range(n))

    text = LOCAL_CONFIG.format(
        data_dir=str(data_dir), appid=rand(16, "0123456789abcdef"),
        secret=rand(32, "0123456789abcdef"), token=rand(32), aes_key=rand(43),
        original=rand(12, "0123456789abcdef"), field_key=new_key(),
        index_key=base64.b64encode(os.urandom(32)).decode(),
        audit_key=base64.b64encode(os.urandom(32)).decode(),
        ledger_key=Signer.generate(LedgerSettings.origin).skey()) + extra.format(
            mp_appid=rand(16, "0123456789abcdef"), mp_secret=rand(32, "0123456789abcdef"))
    write_private(path, text)


# --- entry point ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wxbackend", description="川工之家 WeChat backend")
    parser.add_argument("--config", default=os.environ.get("WXBACKEND_CONFIG"),
                        help="TOML settings file (default: $WXBACKEND_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server (and the outbox worker)")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--no-worker", action="store_true", help="do not run the outbox worker here")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    seed = sub.add_parser("seed", help="load the union tree, targets and keyword rules")
    seed.add_argument("--demo", action="store_true",
                      help="also add three example grassroots unions (for a local run, never production)")
    seed.set_defaults(func=cmd_seed)
    sub.add_parser("worker", help="run only the outbox worker").set_defaults(func=cmd_worker)
    wechat = sub.add_parser("wechat", help="WeChat operations").add_subparsers(
        dest="wechat_command", required=True)
    menu = wechat.add_parser("menu", help="custom menu").add_subparsers(dest="menu_command",
                                                                         required=True)
    menu.add_parser("push", help="send [wechat.menu] to WeChat").set_defaults(func=cmd_menu_push)
    platform = sub.add_parser("platform", help="the shared platform API").add_subparsers(
        dest="platform_command", required=True)
    app = platform.add_parser("app", help="access entrances (apps)").add_subparsers(
        dest="app_command", required=True)
    create = app.add_parser("create", help="register an entrance; prints its secret once")
    create.add_argument("--app-id", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--org", required=True, help="owning union's code, e.g. SC-510100")
    create.add_argument("--scopes", required=True,
                        help="comma-separated: identity.resolve, identity.resolve_phone, "
                             "identity.link, profile.read, profile.phone, sso")
    create.add_argument("--redirect-uri", action="append", help="SSO redirect URI (repeatable)")
    create.add_argument("--province-scope", action="store_true",
                        help="let it resolve accounts of the whole province, not only those of its "
                             "union's subtree (an explicit grant, written to the audit trail)")
    create.set_defaults(func=cmd_platform_app)
    disable = app.add_parser("disable", help="stop accepting an entrance's requests")
    disable.add_argument("app_id")
    disable.set_defaults(func=cmd_platform_app)
    app.add_parser("list", help="list entrances").set_defaults(func=cmd_platform_app)
    acct = sub.add_parser("accounts", help="platform accounts").add_subparsers(
        dest="accounts_command", required=True)
    conflicts = acct.add_parser("conflicts", help="accounts that may be one person").add_subparsers(
        dest="conflict_command", required=True)
    conflicts.add_parser("list", help="open conflicts").set_defaults(func=cmd_conflicts)
    resolve = conflicts.add_parser("resolve", help="resolve one conflict")
    resolve.add_argument("id", type=int)
    resolve.add_argument("action", choices=("separate", "merge"))
    resolve.add_argument("--keep", help="merge: the public id of the account that survives")
    resolve.add_argument("--by", required=True, help="who decided (recorded)")
    resolve.set_defaults(func=cmd_conflicts)
    admin = sub.add_parser("admin", help="the cadre back office").add_subparsers(
        dest="admin_command", required=True)
    operator = admin.add_parser("create-operator", help="the platform office's first operator")
    operator.add_argument("username")
    operator.add_argument("--name", required=True, help="display name")
    operator.add_argument("--duty", default="system", choices=("system", "security", "audit"))
    operator.set_defaults(func=cmd_create_operator)
    sweep = admin.add_parser("sweep", help="disable accounts overdue for re-confirmation (daily)")
    sweep.add_argument("--grace-days", type=int, default=14)
    sweep.set_defaults(func=cmd_admin_sweep)
    kpi = sub.add_parser("kpi", help="usage monitoring").add_subparsers(dest="kpi_command", required=True)
    backfill = kpi.add_parser("backfill", help="recount the daily usage counters for a range of days")
    backfill.add_argument("--from", dest="first", help="first China day (default 2020-01-01)")
    backfill.add_argument("--to", dest="last", help="last China day (default today)")
    backfill.set_defaults(func=cmd_kpi_backfill)
    inbound = sub.add_parser("inbound", help="Official Account messages received").add_subparsers(
        dest="inbound_command", required=True)
    inbound.add_parser("purge", help="drop message content past [privacy] inbound_retention_days")\
        .set_defaults(func=cmd_inbound_purge)
    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="check the MAC chain and its tail; exit 1 on any break")
    verify.add_argument("--head", help="a head line from the shipped log to check the tail against")
    verify.set_defaults(func=cmd_audit_verify)
    audit.add_parser("head", help="publish the signed head now (to audit_heads and the log)")\
        .set_defaults(func=cmd_audit_head)
    pii = sub.add_parser("pii", help="personal data at rest").add_subparsers(
        dest="pii_command", required=True)
    reseal = pii.add_parser("reseal", help="re-encrypt values under the current field key")
    reseal.add_argument("--batch", type=int, default=1000)
    reseal.set_defaults(func=cmd_pii_reseal)
    ledger_parsers(sub)
    demo_parsers(sub)
    init = sub.add_parser("init-config", help="write a local config with generated secrets")
    init.add_argument("--path", required=True)
    init.add_argument("--force", action="store_true")
    init.set_defaults(func=cmd_init_config, no_settings=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "no_settings", False):
            return args.func(None, args)
        settings = load_settings(args.config)
        setup_logging(settings.logging.level, settings.logging.json)
        return args.func(settings, args)
    except (ConfigError, EmbeddedError, MigrationError, DomainError) as exc:
        if isinstance(exc, DomainError):
            exc = f"{exc.code}: {exc.message}"
        print(f"wxbackend: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
