"""Files a person attaches to an item (an appeal's photos, an application's proof): checked and
cleaned like the media library's (photos re-encoded without their location, documents checked
for their type), then sealed with the personal-data key — never public media."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from wxbackend.infra.pii import PersonalData
from wxbackend.services.channels.media import MediaLibrary
from wxbackend.services.errors import InvalidInput


@dataclass(frozen=True)
class SealedFile:
    kind: str           # image, document
    filename: str
    content_type: str
    size: int           # of the cleaned file
    sealed: bytes


async def seal_upload(media: MediaLibrary, pii: PersonalData, data: bytes, filename: str, kind: str,
                      column: str, *, code: str) -> SealedFile:
    """``data`` cleaned (in the media library's workers) and sealed for ``column``; InvalidInput
    with ``code`` for a kind other than image or document."""
    if kind == "image":
        processed = await media.clean_image(data)
        page = processed.variants["page"]
        body, content_type, name = page.data, page.content_type, f"照片.{page.ext}"
    elif kind == "document":
        checked = await media.clean_attachment(data, filename)
        body, content_type, name = data, checked.content_type, checked.filename
    else:
        raise InvalidInput("文件类型应为 image（照片）或 document（文件）", code=code)
    sealed = await asyncio.get_running_loop().run_in_executor(None, pii.encrypt_bytes, body, column)
    return SealedFile(kind, name, content_type, len(body), sealed)
