"""The base-data ledger on one machine: the province and three city nodes (成都, 绵阳, 达州).

    make ledger-demo                      # or: .venv/bin/python deploy/ledger_demo.py [--keep]

It starts the province's server (embedded PostgreSQL and Redis under ``var/ledger-demo``, the
ledger signing every 0.2 s and pushing each checkpoint to the nodes), registers each city node as
an access entrance with the ``ledger.node`` scope, starts the three nodes (``wxbackend node``,
each with its own embedded PostgreSQL), makes changes through the product (the platform office's
operator, a super administrator for each city, workers signing in through WeChat and choosing
their city), then shows what each node cosigned and holds, the newest checkpoint with its
cosignatures, and a receipt checked offline with the public keys alone. ``--keep`` leaves
everything running until Ctrl-C (the province on :8090, the nodes on :8101–8103).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from wxbackend.app import make_server  # noqa: E402
from wxbackend.cli import _background_jobs  # noqa: E402
from wxbackend.config import Settings, load_settings  # noqa: E402
from wxbackend.infra.db import connect  # noqa: E402
from wxbackend.infra.embedded import EmbeddedServers  # noqa: E402
from wxbackend.infra.migrations import migrate  # noqa: E402
from wxbackend.infra.pii import new_key  # noqa: E402
from wxbackend.runtime import Runtime, open_runtime  # noqa: E402
from wxbackend.services.cadres.permissions import DUTY_LIMITS, Actor  # noqa: E402
from wxbackend.services.identity.accounts import WeChatIdentity  # noqa: E402
from wxbackend.services.ledger.notes import COSIGNATURE_V1, Signer  # noqa: E402
from wxbackend.services.ledger.verify import verify_receipt  # noqa: E402
from wxbackend.services.seed import seed  # noqa: E402

ORIGIN = "chuangongzhijia.local/base-data"
PROVINCE_PORT = 8090
# (name, union code, one of its counties for the workers' region, port)
CITIES = [("chengdu", "SC-510100", "510104", 8101), ("mianyang", "SC-510700", "510703", 8102),
          ("dazhou", "SC-511700", "511702", 8103)]
QUORUM = 2
DEMO_PASSWORD = "Demo-Ledger-2026!"  # noqa: S105 - accounts of a throw-away demo database


@dataclass
class CityNode:
    name: str
    code: str
    region: str
    port: int
    signer: Signer
    app_secret: str = ""
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def province_settings(base: Path, key: Signer, nodes: list[CityNode]) -> Settings:
    return load_settings(None, environ={}).replace(
        server={"data_dir": str(base / "province"), "public_url": f"http://127.0.0.1:{PROVINCE_PORT}"},
        wechat={"appid": "wxledgerdemo0000", "secret": "0" * 32, "token": "ledgerdemo",
                "encoding_aes_key": "a" * 43, "original_id": "gh_ledgerdemo0"},
        security={"field_keys": f"1:{new_key()}", "field_key_current": 1,
                  "index_key": base64.b64encode(os.urandom(32)).decode(),
                  "audit_key": base64.b64encode(os.urandom(32)).decode()},
        ledger={"origin": ORIGIN, "signing_key": key.skey(), "quorum": QUORUM,
                "witnesses": [f"{n.signer.verifier().vkey()} {n.url}/witness" for n in nodes]},
        logging={"level": "WARNING", "json": False})


def node_config(base: Path, node: CityNode, log_key: str) -> Path:
    path = base / f"{node.name}.toml"
    path.write_text(f"""# A city node of the ledger demo.
[server]
data_dir = "{base / node.name}"
address = "127.0.0.1"

[node]
signing_key = "{node.signer.skey()}"
province_url = "http://127.0.0.1:{PROVINCE_PORT}"
log_key = "{log_key}"
origin = "{ORIGIN}"
app_id = "node-{node.name}"
app_secret = "{node.app_secret}"
subtree = ["SC", "{node.code}"]
sync_seconds = 2
port = {node.port}

[logging]
level = "WARNING"
json = false
""", encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def province(settings: Settings) -> AsyncIterator[Runtime]:
    servers = EmbeddedServers(settings.data_dir, want_postgres=True, want_redis=True).start()
    try:
        conn = await connect(servers.dsn)
        try:
            await migrate(conn)
            await seed(conn)
        finally:
            await conn.close()
        async with open_runtime(settings, servers.dsn, servers.redis_url) as rt:
            server = make_server(rt)
            server.listen(PROVINCE_PORT, "127.0.0.1")
            stop = asyncio.Event()
            jobs = _background_jobs(rt, stop)
            try:
                yield rt
            finally:
                stop.set()
                server.stop()
                await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        servers.stop()


async def wait_healthy(http: httpx.AsyncClient, url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(url + "/healthz")).status_code == 200:
                return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} did not start")


async def make_changes(rt: Runtime, nodes: list[CityNode]) -> None:
    """Through the product's services: the platform office's operator creates each city's super
    administrator; workers sign in through WeChat and choose a county of their city."""
    operator = await rt.cadres.create_operator(username="ledger.office", display_name="平台办（演示）",
                                               password=DEMO_PASSWORD)
    async with rt.pool.acquire() as conn:
        province = await conn.fetchrow("SELECT id, path::text AS path FROM orgs WHERE code = 'SC'")
        unions = {r["code"]: r["id"] for r in await conn.fetch(
            "SELECT code, id FROM orgs WHERE code = ANY($1::text[])", [n.code for n in nodes])}
    actor = Actor(id=operator.id, username="ledger.office", org_id=province["id"], org_path=province["path"],
                  role="operator", duty="system", permissions=DUTY_LIMITS["system"])
    for node in nodes:
        await rt.cadres.create_account(actor, username=f"{node.name}.admin",
                                       display_name=f"{node.name} 超级管理员", org_id=unions[node.code],
                                       role="super_admin", duty="system", permissions={"account.manage"},
                                       password=DEMO_PASSWORD)
        for i in range(5):
            account = await rt.accounts.sign_in_wechat(
                WeChatIdentity("oa_openid", "wxledgerdemo0000", f"o-demo-{node.name}-{i}"))
            await rt.accounts.set_region(account.id, node.region)


async def run(keep: bool) -> None:
    base = ROOT / "var" / "ledger-demo"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    key = Signer.generate(ORIGIN)
    nodes = [CityNode(name, code, region, port, Signer.generate(f"{name}.node", COSIGNATURE_V1))
             for name, code, region, port in CITIES]
    settings = province_settings(base, key, nodes)
    say(f"省级账本 {ORIGIN}，公钥 {key.verifier().vkey()}")
    async with province(settings) as rt, httpx.AsyncClient(timeout=10, trust_env=False) as http:
        for node in nodes:
            _, node.app_secret = await rt.apps.create_app(
                app_id=f"node-{node.name}", name=f"{node.name} 城市节点", org_code=node.code,
                scopes=["ledger.node"], redirect_uris=[])
            config = node_config(base, node, key.verifier().vkey())
            node.process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own command, started once
                [sys.executable, "-m", "wxbackend.cli", "--config", str(config), "node"], cwd=ROOT)
        try:
            for node in nodes:
                await wait_healthy(http, node.url)
            say("三个城市节点已启动（各自的嵌入式 PostgreSQL）；通过平台写入基础数据变更 …")
            await make_changes(rt, nodes)
            for _ in range(150):
                async with rt.pool.acquire() as conn:
                    queued = await conn.fetchval("SELECT count(*) FROM ledger_queue")
                final = await rt.cosigning.final()
                latest = await rt.ledger.latest()
                statuses = [(await http.get(n.url + "/node/status")).json() for n in nodes]
                if not queued and final == latest.size \
                        and all(s["verified_size"] == latest.size for s in statuses):
                    break
                await asyncio.sleep(0.2)
            say(f"账本共 {latest.size} 条，已定稿（{QUORUM}/{len(nodes)} 个节点联署）到 {final} 条")
            for node, status in zip(nodes, statuses, strict=True):
                say(f"  节点 {node.name}：已联署 {status['cosigned_size']}，"
                    f"已核验 {status['verified_size']}，持有本辖区条目 {status['entries_held']} 条，"
                    f"证据 {status['evidence']} 条")
            note = (await http.get(f"http://127.0.0.1:{PROVINCE_PORT}/ledger/v1/checkpoint")).text
            print("\n最新检查点（省级签名与城市节点联署）：\n" + note)
            async with rt.pool.acquire() as conn:
                idx, body = await conn.fetchrow(
                    """SELECT e.idx, e.body FROM ledger_entries e JOIN base_data_changes c ON c.id = e.ref
                       WHERE e.kind = 'change' AND c.entity = 'cadre' ORDER BY e.idx DESC LIMIT 1""")
            from wxbackend.services.ledger.cosigning import receipt
            proof = await receipt(rt.cosigning, idx)
            checked = verify_receipt(bytes(body), proof, log_key=key.verifier(),
                                     witnesses=[n.signer.verifier() for n in nodes], quorum=QUORUM)
            say(f"回执离线校验通过：{checked.summary()}")
            if keep:
                say(f"保持运行：省级 http://127.0.0.1:{PROVINCE_PORT}/ledger/v1/checkpoint，节点 "
                    + "，".join(f"{n.url}/node/status" for n in nodes) + "；Ctrl-C 结束")
                stop = asyncio.Event()
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
                await stop.wait()
        finally:
            for node in nodes:
                if node.process is not None:
                    node.process.terminate()
            for node in nodes:
                if node.process is not None:
                    node.process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the province and the nodes running")
    asyncio.run(run(parser.parse_args().keep))


if __name__ == "__main__":
    main()
