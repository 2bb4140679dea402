"""The image pipeline: formats decided from the bytes, bombs refused, EXIF gone, sizes made."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tests.services.channels.conftest import jpeg
from wxbackend.services.channels.images import MAX_PIXELS, PAGE_WIDTH, THUMB_SIDE, process_image
from wxbackend.services.errors import InvalidInput, TooLarge, UnsupportedType

GPS = 0x8825


def _photo_with_location(orientation: int = 1) -> bytes:
    """A phone photo: GPS position and an orientation tag in its EXIF."""
    im = Image.new("RGB", (400, 200), "blue")
    im.paste((255, 255, 0), (0, 0, 100, 200))  # a yellow stripe on the left
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Apple"
    exif.get_ifd(GPS).update({1: "N", 2: (30.0, 39.0, 0.0), 3: "E", 4: (104.0, 4.0, 0.0)})
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_exif_is_removed_after_the_photo_is_turned_upright() -> None:
    data = _photo_with_location(orientation=6)  # "rotate 90° clockwise to view"
    assert b"Apple" in data
    done = process_image(data)
    page = done.variants["page"]
    assert page.content_type == "image/jpeg"
    kept = Image.open(io.BytesIO(page.data))
    assert kept.size == (200, 400)  # turned upright
    assert not kept.getexif() and b"Apple" not in page.data
    assert kept.getpixel((100, 10))[2] < 100  # the yellow stripe is now at the top


def test_a_large_photo_gets_a_page_size_and_a_thumbnail() -> None:
    done = process_image(jpeg(4000, 3000, "green", quality=90))
    assert (done.variants["page"].width, done.variants["page"].height) == (PAGE_WIDTH, 810)
    thumb = done.variants["thumb"]
    assert max(thumb.width, thumb.height) == THUMB_SIDE


def test_the_format_comes_from_the_bytes_not_the_name() -> None:
    png = io.BytesIO()
    Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(png, "PNG")
    done = process_image(png.getvalue())
    assert done.source_format == "PNG" and done.variants["page"].content_type == "image/png"
    webp = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(webp, "WEBP")
    assert process_image(webp.getvalue()).variants["page"].content_type == "image/jpeg"


def test_heic_from_an_iphone_is_taken() -> None:
    heic = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(heic, "HEIF")
    done = process_image(heic.getvalue())
    assert done.source_format == "HEIF" and done.variants["page"].content_type == "image/jpeg"


def test_an_animated_gif_stays_animated() -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    page = process_image(out.getvalue()).variants["page"]
    assert page.content_type == "image/gif"
    assert Image.open(io.BytesIO(page.data)).n_frames == 3


@pytest.mark.parametrize("data", [
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    b'<?xml version="1.0"?><svg></svg>',
    b"<html><body>not an image</body></html>",
])
def test_svg_and_markup_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedType) as refused:
        process_image(data)
    assert refused.value.status == 415 and "SVG" in refused.value.message


def test_something_else_named_jpg_is_refused() -> None:
    with pytest.raises(UnsupportedType):
        process_image(b"MZ\x90\x00" + b"\x00" * 100)  # a Windows program
    with pytest.raises(UnsupportedType):
        process_image(b"%PDF-1.7 not an image")
    with pytest.raises(InvalidInput):
        process_image(jpeg()[:200])  # cut short


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims huge dimensions (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_an_image_bomb_is_refused_before_it_is_decoded() -> None:
    bomb = _png_header_only(60_000, 60_000)
    assert len(bomb) < 2000
    with pytest.raises(TooLarge) as refused:
        process_image(bomb)
    assert refused.value.status == 413
    with pytest.raises(TooLarge):  # just over our own cap, under Pillow's
        process_image(_png_header_only(MAX_PIXELS // 1000 + 1, 1000))


def test_a_polyglot_loses_what_follows_the_image() -> None:
    payload = b"<script>alert(document.cookie)</script>PK\x03\x04"
    done = process_image(jpeg() + payload)
    assert all(payload[:20] not in v.data for v in done.variants.values())


def test_oversized_uploads_are_refused() -> None:
    with pytest.raises(TooLarge):
        process_image(b"\xff\xd8\xff" + b"\x00" * (20 << 20))
