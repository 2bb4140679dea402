"""The one image pipeline: an upload becomes a page-sized image and a thumbnail, or is refused.

CPU-bound and synchronous on purpose: :class:`wxbackend.services.channels.media.MediaLibrary`
runs it in an executor. What is kept is always re-encoded by Pillow, never the uploaded bytes:
that removes EXIF (photos carry the place they were taken), anything appended after the image
(polyglot files) and anything a decoder would trip on later.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from wxbackend.services.errors import InvalidInput, TooLarge, UnsupportedType

try:  # iPhone photos are HEIC; the wheel is a dependency, but a missing one must not stop the server
    from pillow_heif import register_heif_opener
except ImportError:  # pragma: no cover - the dependency is declared
    register_heif_opener = None
else:
    register_heif_opener()

# The formats decided from the bytes: Pillow tries only these decoders (GHSA-whj4-6x5x-4v2j: a
# FITS "image" could be a decompression bomb; an allowlist keeps every other decoder out).
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "HEIF")
MAX_PIXELS = 50_000_000        # a 48-megapixel phone photo passes; a bomb's header does not
MAX_UPLOAD_BYTES = 20 << 20
PAGE_WIDTH = 1080              # the widest a phone shows an article at 3× density
THUMB_SIDE = 360
MAX_GIF_FRAMES = 300
JPEG_QUALITY = 85

# A decompression-bomb warning is an error everywhere in this process, not only here.
warnings.simplefilter("error", Image.DecompressionBombWarning)


@dataclass(frozen=True)
class Variant:
    data: bytes
    content_type: str
    ext: str
    width: int
    height: int


@dataclass(frozen=True)
class Processed:
    source_format: str
    width: int
    height: int
    variants: dict[str, Variant]   # "page", "thumb"


def _refuse(message: str, code: str = "image_invalid") -> InvalidInput:
    return InvalidInput(message, code=code)


def _looks_like_markup(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith((b"<?xml", b"<svg", b"<!doctype", b"<html")) or b"<svg" in head


def process_image(data: bytes) -> Processed:
    """Decode, check and re-encode ``data``. Raises :class:`InvalidInput` (not an image, SVG,
    unsupported format, broken file) or :class:`TooLarge` (bytes or pixels)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(f"图片不能超过 {MAX_UPLOAD_BYTES >> 20} MB", code="image_too_large")
    if _looks_like_markup(data):
        raise UnsupportedType("不支持 SVG 等矢量或网页格式的图片，请上传 JPG、PNG、WebP、GIF 或 HEIC",
                              code="image_format")
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise UnsupportedType("无法识别的图片：只支持 JPG、PNG、WebP、GIF 和 HEIC",
                              code="image_format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge("图片像素过多", code="image_too_large") from None
    except (OSError, ValueError, SyntaxError):
        raise _refuse("图片文件已损坏或不完整") from None
    with im:
        width, height = im.size
        if width < 1 or height < 1 or width * height > MAX_PIXELS:
            raise TooLarge(f"图片像素过多（最多 {MAX_PIXELS // 1_000_000} 百万像素）",
                           code="image_too_large")
        source = im.format or ""
        try:
            if source == "GIF" and getattr(im, "n_frames", 1) > 1:
                variants = _animated(im)
            else:
                variants = _still(im)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise TooLarge("图片像素过多", code="image_too_large") from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise _refuse("图片文件已损坏或不完整") from None
    page = variants["page"]
    return Processed(source_format=source, width=page.width, height=page.height, variants=variants)


def _still(im: Image.Image) -> dict[str, Variant]:
    if im.format == "JPEG":
        # Decode at a reduced scale straight from the DCT: a 12-megapixel photo needs a quarter
        # of the memory and time to become a 1080-pixel page image.
        im.draft("RGB", (PAGE_WIDTH, PAGE_WIDTH))
    im.load()
    icc = im.info.get("icc_profile")
    im = ImageOps.exif_transpose(im)  # turn it upright before the orientation tag goes
    alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA" if alpha else "RGB")
    page = _fit(im, PAGE_WIDTH, by_width=True)
    thumb = _fit(page, THUMB_SIDE, by_width=False)
    return {"page": _encode(page, alpha, icc), "thumb": _encode(thumb, alpha, icc)}


def _fit(im: Image.Image, limit: int, *, by_width: bool) -> Image.Image:
    w, h = im.size
    side = w if by_width else max(w, h)
    if side <= limit:
        return im
    scale = limit / side
    return im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def _encode(im: Image.Image, alpha: bool, icc: bytes | None) -> Variant:
    out = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    if alpha:
        im.save(out, "PNG", optimize=True, **extra)
        kind, ext = "image/png", "png"
    else:
        im.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True, **extra)
        kind, ext = "image/jpeg", "jpg"
    return Variant(out.getvalue(), kind, ext, im.width, im.height)


def _animated(im: Image.Image) -> dict[str, Variant]:
    """An animated GIF stays animated when it is small enough to show as it is; otherwise its
    first frame stands for it."""
    if im.width > PAGE_WIDTH or im.n_frames > MAX_GIF_FRAMES:
        im.seek(0)
        return _still(im)
    frames = []
    durations = []
    for index in range(im.n_frames):
        im.seek(index)
        frames.append(im.convert("RGBA"))
        durations.append(im.info.get("duration", 100))
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=durations,
                   loop=im.info.get("loop", 0), disposal=2, optimize=False)
    first = frames[0]
    thumb = _fit(first.convert("RGB"), THUMB_SIDE, by_width=False)
    return {"page": Variant(out.getvalue(), "image/gif", "gif", first.width, first.height),
            "thumb": _encode(thumb, False, None)}


def for_wechat(data: bytes, limit: int) -> bytes:
    """A page image as WeChat takes it in an article body: JPEG or PNG under ``limit`` bytes.
    Ours are already one of the two; a large one (or a GIF) is re-encoded as a JPEG, smaller
    until it fits."""
    if data.startswith((b"\xff\xd8\xff", b"\x89PNG")) and len(data) < limit:
        return data
    with Image.open(io.BytesIO(data), formats=("JPEG", "PNG", "GIF")) as im:
        im.seek(0)
        im = im.convert("RGB")
        for quality in (85, 75, 65, 50):
            out = io.BytesIO()
            im.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() < limit:
                return out.getvalue()
            im = _fit(im, int(im.width * 0.8), by_width=True)
    raise TooLarge("图片压缩后仍超过公众号的大小限制", code="oa_image_too_large")
