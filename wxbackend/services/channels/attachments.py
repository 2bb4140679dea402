"""Article attachments: PDF, Word (DOCX) and Excel (XLSX), decided from the bytes.

Old binary Office files and macro-enabled ones (a ``vbaProject.bin`` inside) are refused: they are
how documents carry code. The bytes are kept as uploaded (a document cannot be re-encoded the way
an image is) and always served as a download, never shown inline.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from wxbackend.services.errors import InvalidInput, TooLarge, UnsupportedType

MAX_BYTES = 20 << 20
TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


@dataclass(frozen=True)
class Checked:
    ext: str
    content_type: str
    filename: str


def _office_kind(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise UnsupportedType("不能上传含宏的 Office 文件", code="attachment_macro")
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return None


def check_attachment(data: bytes, filename: str) -> Checked:
    if len(data) > MAX_BYTES:
        raise TooLarge(f"附件不能超过 {MAX_BYTES >> 20} MB", code="attachment_too_large")
    if not data:
        raise InvalidInput("附件是空文件", code="attachment_empty")
    ext = "pdf" if data.startswith(b"%PDF-") else _office_kind(data)
    if ext is None:
        raise UnsupportedType("附件只支持 PDF、Word（.docx）和 Excel（.xlsx）文件",
                              code="attachment_type")
    return Checked(ext, TYPES[ext], attachment_name(filename, ext))


def attachment_name(filename: str, ext: str) -> str:
    """A name safe to show and to send in Content-Disposition, ending in the real type."""
    base = _UNSAFE_NAME.sub("", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip(" .")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return f"{(stem or '附件')[:100]}.{ext}"
