"""``wxbackend demo`` as a trainer runs it: a real process on its own embedded databases, its demo
province generated on the first start, kept across a restart, and the same again after a reset."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx

from tests.infra.test_cli import WXBACKEND, answering
from wxbackend.handlers.sandbox.banner import BANNER_TEXT
from wxbackend.infra.embedded import _free_port


class Demo:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.proc, self.url, self.log = proc, f"http://127.0.0.1:{port}", log

    async def stop(self) -> None:
        self.proc.terminate()
        assert await asyncio.wait_for(self.proc.wait(), 30) == 0


async def demo(tmp_path: Path, *extra: str) -> Demo:
    config = tmp_path / "sandbox.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "var"}"\n', encoding="utf-8")
    port = _free_port()
    log = tmp_path / f"demo-{port}.log"
    with open(log, "wb") as fh:
        proc = await asyncio.create_subprocess_exec(
            *WXBACKEND, "--config", str(config), "demo", "--port", str(port), "--workers", "60",
            "--grassroots", "12", *extra, stdout=fh, stderr=fh, stdin=asyncio.subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("WXBACKEND__")})
    await answering(proc, f"http://127.0.0.1:{port}/sandbox/api/people", log, seconds=90)
    return Demo(proc, port, log)


async def test_the_demo_serves_a_province_keeps_it_and_resets_to_the_same(tmp_path) -> None:
    first = await demo(tmp_path)
    try:
        async with httpx.AsyncClient(trust_env=False, base_url=first.url) as client:
            people = (await client.get("/sandbox/api/people")).json()
            console = await client.get("/admin/")
            assert BANNER_TEXT in console.text
            # The accounts printed at start sign in to the console with the codes the page shows.
            intro = first.log.read_text()
            assert "演示环境，数据均为虚构" in intro and f"{first.url}/sandbox/" in intro
            city = next(c for c in people["cadres"] if c["tour"] == "city")
            assert city["username"] in intro
            signed = await client.post("/admin/v1/login", json={
                "username": city["username"], "password": people["password"], "totp": city["totp"]})
            assert signed.status_code == 200, signed.text
            # A worker's action reaches the Official Account endpoint as WeChat's push would.
            worker = people["workers"][0]
            reply = (await client.post("/sandbox/api/phone/push", json={
                "openid": worker["openid"], "action": "follow"})).json()["reply"]
            assert "欢迎关注川工之家" in reply["content"]
    finally:
        await first.stop()

    again = await demo(tmp_path)                 # a restart keeps what the trainees did
    try:
        async with httpx.AsyncClient(trust_env=False, base_url=again.url) as client:
            kept = (await client.get("/sandbox/api/people")).json()
        assert [w["openid"] for w in kept["workers"]] == [w["openid"] for w in people["workers"]]
        assert "generated in" not in again.log.read_text()
    finally:
        await again.stop()

    reset = await demo(tmp_path, "--reset")
    try:
        async with httpx.AsyncClient(trust_env=False, base_url=reset.url) as client:
            fresh = (await client.get("/sandbox/api/people")).json()
            assert "demo province generated in" in reset.log.read_text()
            # The same province: the same people, the same counts; new authenticator keys.
            assert fresh["workers"] == people["workers"] and fresh["counts"] == people["counts"]
            assert [c["username"] for c in fresh["cadres"]] == [c["username"] for c in people["cadres"]]
            office = next(c for c in fresh["cadres"] if c["tour"] == "office")
            signed = await client.post("/admin/v1/login", json={
                "username": "office", "password": fresh["password"], "totp": office["totp"]})
            assert signed.status_code == 200, signed.text
    finally:
        await reset.stop()
