"""Where image and attachment files live: content-addressed, by the SHA-256 of the bytes kept,
so a file is written once, never changed, and can be cached forever.

By default files go under ``[server] data_dir``/media (:class:`FileStore`); with several servers
they go to an S3-compatible object store (:class:`S3Store`: the government cloud's, MinIO, …).
Either way a key lives at a two-level fan-out (``ab/cd/abcd….jpg``), so no directory or listing
grows to millions of entries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

KEY = re.compile(r"^([0-9a-f]{2})([0-9a-f]{2})[0-9a-f]{60}\.(?:jpg|png|webp|gif|pdf|docx|xlsx)$")


TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
         "pdf": "application/pdf",
         "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def key_for(data: bytes, ext: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}.{ext}"


def fan_out(key: str) -> str:
    """``abcd….jpg`` → ``ab/cd/abcd….jpg``; a ValueError for anything that is not a key."""
    match = KEY.match(key)
    if match is None:
        raise ValueError("not a media key")
    return f"{match.group(1)}/{match.group(2)}/{key}"


class MediaMissing(Exception):
    """The store has no file under this key."""


class FileStore:
    """Files under a directory. Writes are atomic (a temporary file renamed), which makes two
    processes storing the same file at once harmless."""

    public_base: str | None = None  # served by the application (or nginx) from the directory

    def __init__(self, root: Path) -> None:
        self.root = root

    def relative(self, key: str) -> str:
        return fan_out(key)

    def _write(self, key: str, data: bytes) -> None:
        path = self.root / self.relative(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._write, key, data)

    def _read(self, key: str) -> bytes:
        try:
            return (self.root / self.relative(key)).read_bytes()
        except FileNotFoundError:
            raise MediaMissing(key) from None

    async def get(self, key: str) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(None, self._read, key)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_authorization(*, method: str, url: str, headers: dict[str, str], payload_sha256: str,
                        access_key: str, secret_key: str, region: str, amz_date: str,
                        service: str = "s3") -> str:
    """The ``Authorization`` header of AWS Signature Version 4 for a request whose ``headers``
    (``host``, ``x-amz-date``, ``x-amz-content-sha256`` and any others to sign) are given.
    Written here rather than taking botocore and aiohttp in for two calls (PUT, GET); checked
    against AWS's published example (tests/services/channels/test_media_store.py)."""
    parts = urlsplit(url)
    path = quote(parts.path or "/", safe="/-_.~")
    query = "&".join(sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                            for k, _, v in (p.partition("=") for p in parts.query.split("&") if p)))
    signed = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    names = sorted(signed)
    canonical = "\n".join([method, path, query, *(f"{n}:{signed[n]}" for n in names), "",
                           ";".join(names), payload_sha256])
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service),
                "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, "
            f"Signature={signature}")


class S3Store:
    """An S3-compatible bucket (path-style addressing, which MinIO and the government clouds'
    object stores all take). ``public_base``: where readers fetch files directly (a CDN or the
    bucket's public address); without it the application serves them from the bucket."""

    def __init__(self, http: httpx.AsyncClient, *, endpoint: str, bucket: str, region: str,
                 access_key: str, secret_key: str, prefix: str = "media/",
                 public_base: str | None = None, timeout: float = 10.0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        # ``now`` signs requests: the store refuses a signature more than 15 minutes off its
        # own clock, so it is the real time in production.
        self._now = now
        self._http = http
        self._base = f"{endpoint.rstrip('/')}/{bucket}/{prefix}"
        self._region = region
        self._access = access_key
        self._secret = secret_key
        self._timeout = timeout
        self.public_base = public_base.rstrip("/") if public_base else None

    def url(self, key: str) -> str:
        return self._base + fan_out(key)

    def _headers(self, method: str, url: str, payload_sha256: str, extra: dict[str, str]) -> dict:
        amz_date = self._now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": urlsplit(url).netloc, "x-amz-date": amz_date,
                   "x-amz-content-sha256": payload_sha256, **extra}
        headers["Authorization"] = sigv4_authorization(
            method=method, url=url, headers=headers, payload_sha256=payload_sha256,
            access_key=self._access, secret_key=self._secret, region=self._region,
            amz_date=amz_date)
        return headers

    async def put(self, key: str, data: bytes) -> None:
        url = self.url(key)
        ext = key.rsplit(".", 1)[-1]
        headers = self._headers("PUT", url, hashlib.sha256(data).hexdigest(),
                                {"content-type": TYPES.get(ext, "application/octet-stream")})
        response = await self._http.put(url, content=data, headers=headers, timeout=self._timeout)
        if response.status_code != 200:
            raise OSError(f"object store PUT {response.status_code}: {response.text[:200]}")

    async def get(self, key: str) -> bytes:
        url = self.url(key)
        headers = self._headers("GET", url, hashlib.sha256(b"").hexdigest(), {})
        response = await self._http.get(url, headers=headers, timeout=self._timeout)
        if response.status_code == 404:
            raise MediaMissing(key)
        if response.status_code != 200:
            raise OSError(f"object store GET {response.status_code}: {response.text[:200]}")
        return response.content


def media_store(settings, http: httpx.AsyncClient) -> FileStore | S3Store:
    """The store ``[channels]`` chooses."""
    ch = settings.channels
    if ch.media_store == "s3":
        return S3Store(http, endpoint=ch.s3_endpoint, bucket=ch.s3_bucket, region=ch.s3_region,
                       access_key=ch.s3_access_key.reveal(), secret_key=ch.s3_secret_key.reveal(),
                       prefix=ch.s3_prefix, public_base=ch.s3_public_url or None)
    return FileStore(settings.media_dir)
