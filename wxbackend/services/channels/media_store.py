"""Where image and attachment files live: content-addressed, by the SHA-256 of the bytes kept,
so a file is written once, never changed, and can be cached forever.

Files go under ``[server] data_dir``/media in a two-level fan-out (``ab/cd/abcd….jpg``), so no
directory grows to millions of entries. Writes are atomic (a temporary file renamed), which makes
two processes storing the same file at once harmless.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

KEY = re.compile(r"^([0-9a-f]{2})([0-9a-f]{2})[0-9a-f]{60}\.(?:jpg|png|webp|gif|pdf|docx|xlsx)$")


def key_for(data: bytes, ext: str) -> str:
    return f"{hashlib.sha256(data).hexdigest()}.{ext}"


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def relative(self, key: str) -> str:
        """The file's path under the root, for ``key`` (``None`` when it is not a key)."""
        match = KEY.match(key)
        if match is None:
            raise ValueError("not a media key")
        return f"{match.group(1)}/{match.group(2)}/{key}"

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
        return (self.root / self.relative(key)).read_bytes()

    async def get(self, key: str) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(None, self._read, key)
