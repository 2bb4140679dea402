"""How a node talks to the province: the public tlog-tiles reads, the signed platform API for its
subtree's entries and for raising alarms. Every call has a timeout."""

from __future__ import annotations

import base64
import json
import secrets
from urllib.parse import urlencode, urlsplit

import httpx

from wxbackend.services.clock import Clock, china_now, unix_time
from wxbackend.services.identity.platform import sign
from wxbackend.services.ledger import tlog


class ProvinceUnavailable(Exception):
    """The province did not answer as expected; the node tries again later."""


class ProvinceClient:
    def __init__(self, base_url: str, *, app_id: str, secret: str, timeout: float = 10.0,
                 clock: Clock = china_now, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.app_id = app_id
        self.secret = secret
        self.clock = clock
        self.http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self.http.aclose()

    def _signed(self, method: str, path: str, query: str, body: bytes) -> dict[str, str]:
        timestamp, nonce = str(unix_time(self.clock)), secrets.token_hex(12)
        return {"X-App-Id": self.app_id, "X-Timestamp": timestamp, "X-Nonce": nonce,
                "X-Signature": sign(self.secret, method, path, query, timestamp, nonce, body)}

    async def _get(self, path: str, *, signed: bool = False, params: dict | None = None) -> httpx.Response:
        query = urlencode(params or {})
        url = self.base + path + (f"?{query}" if query else "")
        headers = self._signed("GET", urlsplit(url).path, query, b"") if signed else {}
        try:
            response = await self.http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise ProvinceUnavailable(f"省级平台无法连接：{exc.__class__.__name__}") from exc
        return response

    async def checkpoint(self) -> bytes:
        response = await self._get("/ledger/v1/checkpoint")
        if response.status_code != 200:
            raise ProvinceUnavailable(f"读取检查点失败：HTTP {response.status_code}")
        return response.content

    async def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """The level-0 hashes of leaves [start, end), from the tiles that hold them."""
        out: list[bytes] = []
        for tile_index in range(start >> 8, ((end - 1) >> 8) + 1 if end > start else start >> 8):
            width = min(tlog.TILE_WIDTH, end - tile_index * tlog.TILE_WIDTH)
            response = await self._get("/ledger/v1/" + tlog.tile_path(0, tile_index, width))
            if response.status_code != 200:
                raise ProvinceUnavailable(f"读取数据块失败：HTTP {response.status_code}")
            data = response.content
            if len(data) != width * tlog.HASH_SIZE:
                raise TileMismatch(f"数据块 {tile_index} 的长度 {len(data)} 与宽度 {width} 不符")
            first = max(start - tile_index * tlog.TILE_WIDTH, 0)
            out.extend(data[i * 32:(i + 1) * 32] for i in range(first, width))
        return out

    async def entries(self, start: int, end: int, *, org: str | None = None,
                      limit: int = 5000) -> tuple[list[tuple[int, bytes]], int | None]:
        """This node's entries in [start, end): a page and where the next page starts."""
        params = {"start": start, "end": end, "limit": limit, **({"org": org} if org else {})}
        response = await self._get("/api/v1/ledger/entries", signed=True, params=params)
        if response.status_code != 200:
            raise ProvinceUnavailable(f"读取账本条目失败：HTTP {response.status_code} {response.text[:200]}")
        data = response.json()
        return ([(e["index"], base64.b64decode(e["entry"])) for e in data["entries"]], data.get("next"))

    async def raise_alarm(self, *, kind: str, message: str, evidence: dict) -> None:
        body = json.dumps({"kind": kind, "message": message, "evidence": evidence},
                          ensure_ascii=False).encode()
        path = "/api/v1/ledger/alarms"
        try:
            response = await self.http.post(self.base + path, content=body,
                                            headers={**self._signed("POST", path, "", body),
                                                     "Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            raise ProvinceUnavailable(f"省级平台无法连接：{exc.__class__.__name__}") from exc
        if response.status_code >= 300:
            raise ProvinceUnavailable(f"上报告警失败：HTTP {response.status_code}")


class TileMismatch(Exception):
    """A tile that cannot be what the checkpoint says (wrong length, wrong hashes)."""

