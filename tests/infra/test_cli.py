"""The ``wxbackend`` command as an operator runs it: real processes, real signals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.conftest import AES_KEY, APPID, AUDIT_KEY, FIELD_KEYS, INDEX_KEY, ORIGINAL_ID, SECRET, TOKEN
from tests.fakes import FakePusher, FakeWeChat
from tests.services.cadres.test_cadres import PASSWORD
from wxbackend.infra.embedded import _free_port

WXBACKEND = [sys.executable, "-m", "wxbackend.cli"]


def config(tmp_path: Path, api_base: str = "http://127.0.0.1:9", **extra: str) -> Path:
    lines = [
        "[server]", f'data_dir = "{tmp_path / "var"}"', 'public_url = "https://wx.example.org"',
        "[wechat]", f'appid = "{APPID}"', f'secret = "{SECRET}"', f'token = "{TOKEN}"',
        f'encoding_aes_key = "{AES_KEY}"', f'original_id = "{ORIGINAL_ID}"',
        f'api_base = "{api_base}"',
        "[security]", f'field_keys = "{FIELD_KEYS}"', f'index_key = "{INDEX_KEY}"',
        f'audit_key = "{AUDIT_KEY}"',
        "[logging]", 'level = "INFO"', "json = true",
    ]
    for key, value in extra.items():
        lines.append(f"# {key}\n{value}")
    path = tmp_path / "wx.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def run(*args: str, env: dict | None = None, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *WXBACKEND, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL, env={**os.environ, **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def children(self) -> list[int]:
        return [int(p) for p in re.findall(r"\(pid (\d+)\)", self.log.read_text())]


async def serve(cfg: Path, tmp_path: Path, env: dict | None = None) -> Served:
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    fh = open(log, "wb")
    proc = await asyncio.create_subprocess_exec(
        *WXBACKEND, "--config", str(cfg), "serve", "--port", str(port),
        stdout=fh, stderr=fh, env={**os.environ, **(env or {})})
    fh.close()
    await answering(proc, f"http://127.0.0.1:{port}/healthz", log)
    return Served(proc, port, log)


async def answering(proc: asyncio.subprocess.Process, url: str, log: Path, seconds: float = 30) -> None:
    """Wait until ``url`` answers 200; the process's log in the failure if it stops or never does."""
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(int(seconds * 10)):
            if proc.returncode is not None:
                raise AssertionError(f"exited early:\n{log.read_text()}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{url} did not answer:\n{log.read_text()}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.split(") ", 1)[1][0] != "Z"


async def wait_dead(pids: list[int], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if alive(p)]}"
        await asyncio.sleep(0.1)


async def test_migrate_and_seed_are_idempotent(tmp_path) -> None:
    cfg = config(tmp_path)
    code, out, _ = await run("--config", str(cfg), "migrate")
    assert code == 0 and "migrations applied: [1, 2" in out
    code, out, _ = await run("--config", str(cfg), "migrate")
    assert code == 0 and "up to date" in out
    for new_rules in ("9 new keyword rules", "0 new keyword rules"):
        code, out, _ = await run("--config", str(cfg), "seed")
        assert code == 0 and "'city': 21" in out and new_rules in out and "204 regions" in out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_stop_signals_leave_no_orphans(tmp_path, sig) -> None:
    cfg = config(tmp_path)
    assert (await run("--config", str(cfg), "migrate"))[0] == 0
    served = await serve(cfg, tmp_path)
    children = served.children()
    assert len(children) == 2 and all(alive(p) for p in children)
    served.proc.send_signal(sig)
    assert await asyncio.wait_for(served.proc.wait(), 30) == 0
    await wait_dead(children)
    assert "stopped" in served.log.read_text()


async def test_a_killed_server_takes_its_databases_along_and_restarts_cleanly(tmp_path) -> None:
    cfg = config(tmp_path)
    assert (await run("--config", str(cfg), "migrate"))[0] == 0
    served = await serve(cfg, tmp_path)
    children = served.children()
    served.proc.kill()
    await served.proc.wait()
    await wait_dead(children)  # the kernel told them: no orphans
    # Now the harder case: PostgreSQL itself killed (OOM killer), its pid file left behind.
    served = await serve(cfg, tmp_path)
    pg_pid = served.children()[0]
    os.kill(pg_pid, signal.SIGKILL)
    await wait_dead([pg_pid])
    served.proc.kill()
    await served.proc.wait()
    await wait_dead(served.children())
    assert (tmp_path / "var" / "postgres" / "postmaster.pid").exists()
    again = await serve(cfg, tmp_path)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            health = (await client.get(f"{again.url}/healthz")).json()
        assert health == {"status": "ok", "postgres": "ok", "redis": "ok"}
    finally:
        again.proc.terminate()
        await again.proc.wait()
        await wait_dead(again.children())


async def test_a_second_server_on_the_same_data_dir_is_refused(tmp_path) -> None:
    cfg = config(tmp_path)
    assert (await run("--config", str(cfg), "migrate"))[0] == 0
    served = await serve(cfg, tmp_path)
    try:
        code, _, err = await run("--config", str(cfg), "serve", "--port", str(_free_port()))
        assert code == 2 and "already run there" in err
    finally:
        served.proc.terminate()
        await served.proc.wait()


async def test_the_first_operator_is_created_while_the_server_runs(tmp_path) -> None:
    cfg = config(tmp_path)
    for step in ("migrate", "seed"):          # as `make run` does
        assert (await run("--config", str(cfg), step))[0] == 0
    served = await serve(cfg, tmp_path)
    try:
        # The server says what to do next, with the command to run.
        steps = served.log.read_text()
        assert f"http://127.0.0.1:{served.port}/admin/" in steps
        assert f"--config {cfg} admin create-operator office" in steps
        code, out, err = await run("--config", str(cfg), "admin", "create-operator", "office",
                                   "--name", "平台办公室", env={"WXBACKEND_OPERATOR_PASSWORD": PASSWORD})
        assert code == 0, err
        totp = pyotp.parse_uri(re.search(r"otpauth://\S+", out).group(0)).now()
        # The running server's database holds the operator: the console's sign-in takes it.
        async with httpx.AsyncClient(trust_env=False) as client:
            signed = await client.post(f"{served.url}/admin/v1/login",
                                       json={"username": "office", "password": PASSWORD, "totp": totp})
        assert signed.status_code == 200, signed.text
    finally:
        served.proc.terminate()
        await served.proc.wait()
    # Stopped: the next command starts its own embedded servers again.
    code, out, _ = await run("--config", str(cfg), "migrate")
    assert code == 0 and "up to date" in out


async def test_no_terminal_for_the_password_names_the_variable(tmp_path) -> None:
    code, _, err = await run("--config", str(config(tmp_path)), "admin", "create-operator", "office",
                             "--name", "平台办公室")
    assert code == 2 and "WXBACKEND_OPERATOR_PASSWORD" in err and "Traceback" not in err


async def test_configured_servers_start_nothing_embedded_and_logs_hide_secrets(
        tmp_path, backing) -> None:
    cfg = config(tmp_path)
    env = {"WXBACKEND__DATABASE__DSN": backing.dsn, "WXBACKEND__REDIS__URL": backing.redis_url}
    served = await serve(cfg, tmp_path, env)
    try:
        pusher = FakePusher(TOKEN, AES_KEY, APPID, ORIGINAL_ID)
        query, body = pusher.request(pusher.text("oZhangSan", "帮助 13812345678"))
        async with httpx.AsyncClient(trust_env=False) as client:
            response = await client.post(f"{served.url}/wechat/oa", params=query, content=body,
                                         headers={"X-Request-Id": "req-abc-123"})
        assert response.status_code == 200
        assert response.headers["X-Request-Id"] == "req-abc-123"
    finally:
        served.proc.terminate()
        await served.proc.wait()
    log = served.log.read_text()
    assert served.children() == []
    assert not (tmp_path / "var" / "postgres").exists()
    for secret in (SECRET, TOKEN, AES_KEY, FIELD_KEYS.split(",")[0][2:], INDEX_KEY, AUDIT_KEY,
                   query["signature"], query["msg_signature"]):
        assert secret not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [e for e in lines if e["logger"] == "wxbackend.access"]
    assert access and access[-1]["request_id"] == "req-abc-123"
    assert access[-1]["msg"] == "POST /wechat/oa 200"


async def test_missing_secret_stops_start_up_with_a_clear_message(tmp_path) -> None:
    cfg = config(tmp_path)
    code, _, err = await run("--config", str(cfg), "serve", env={"WXBACKEND__WECHAT__SECRET": ""})
    assert code == 2
    assert "缺少必需的公众号配置" in err and "[wechat] secret" in err
    code, _, err = await run("--config", str(cfg), "serve", env={"WXBACKEND__SECURITY__INDEX_KEY": ""})
    assert code == 2 and "[security] index_key" in err
    short = {"WXBACKEND__SECURITY__AUDIT_KEY": "c2hvcnQ="}
    code, _, err = await run("--config", str(cfg), "serve", env=short)
    assert code == 2 and "[security] audit_key" in err


async def test_menu_push_sends_the_configured_menu(tmp_path, backing, clean_db,
                                                   fake_wechat: FakeWeChat) -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    menu = example.read_text(encoding="utf-8").split("[[wechat.menu.button]]", 1)[1]
    menu = "[[wechat.menu.button]]" + menu.split("\n[miniprogram]", 1)[0]
    cfg = config(tmp_path, fake_wechat.base_url)
    text = cfg.read_text().replace("[logging]", menu + "\n[logging]")
    cfg.write_text(text, encoding="utf-8")
    env = {"WXBACKEND__DATABASE__DSN": backing.dsn, "WXBACKEND__REDIS__URL": backing.redis_url}
    code, _, err = await run("--config", str(cfg), "wechat", "menu", "push", env=env)
    assert code == 0, err
    assert fake_wechat.count("/cgi-bin/menu/create") == 1
    buttons = fake_wechat.menu["button"]
    assert [b["name"] for b in buttons] == ["川工之家", "工会服务", "帮助"]
    assert buttons[0]["sub_button"][0]["url"] == "https://wx.example.org/h5/register.html"
    assert buttons[2] == {"type": "click", "name": "帮助", "key": "HELP"}


async def test_init_config_writes_a_private_file_that_serves(tmp_path) -> None:
    path = tmp_path / "local.toml"
    code, out, _ = await run("init-config", "--path", str(path))
    assert code == 0 and path.exists()
    assert path.stat().st_mode & 0o077 == 0
    code, out, _ = await run("init-config", "--path", str(path))
    assert "keeping it" in out


async def test_platform_office_registers_lists_and_disables_an_entrance(tmp_path, backing, clean_db) -> None:
    cfg = config(tmp_path)
    env = {"WXBACKEND__DATABASE__DSN": backing.dsn, "WXBACKEND__REDIS__URL": backing.redis_url}
    code, out, err = await run("--config", str(cfg), "platform", "app", "create", "--app-id", "cd-channel",
                               "--name", "成都频道", "--org", "SC-510100", "--scopes",
                               "identity.resolve,sso", "--redirect-uri", "https://cd.example.org/cb",
                               env=env)
    assert code == 0, err
    secret = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("secret: "))
    assert len(secret) >= 40
    code, out, err = await run("--config", str(cfg), "platform", "app", "create", "--app-id", "my-wide",
                               "--name", "绵阳全省查找", "--org", "SC-510700", "--scopes",
                               "identity.resolve_phone", "--province-scope", env=env)
    assert code == 0 and "province scope" in out, err
    code, out, _ = await run("--config", str(cfg), "platform", "app", "list", env=env)
    assert "cd-channel\tactive\t成都市总工会\tsubtree\tidentity.resolve,sso" in out
    assert "my-wide\tactive\t绵阳市总工会\tprovince\tidentity.resolve_phone" in out
    assert secret not in out
    code, _, err = await run("--config", str(cfg), "platform", "app", "create", "--app-id", "cd-other",
                             "--name", "n", "--org", "SC-510100", "--scopes", "everything", env=env)
    assert code == 2 and "unknown or missing scopes" in err
    assert (await run("--config", str(cfg), "platform", "app", "disable", "cd-channel", env=env))[0] == 0
    code, out, _ = await run("--config", str(cfg), "platform", "app", "list", env=env)
    assert "cd-channel\tdisabled" in out
