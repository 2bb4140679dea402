"""Drawing Chinese text and QR codes with Pillow, for the member card and activity posters.

The font is Noto Sans CJK from the ``manimgx-fonts-cjk`` wheel: servers and CI have no CJK
system fonts, and a picture showing tofu boxes instead of a name is worthless. Everything here is
CPU work: callers run it in an executor.
"""

from __future__ import annotations

import functools
import importlib.resources
import io
from dataclasses import dataclass

import segno
from PIL import Image, ImageFont

_FONT_PACKAGE = "manimgx_fonts_cjk"
_FONT_FILE = "NotoSansCJK-VF.otf.ttc"


@functools.cache
def _font_path() -> str:
    path = importlib.resources.files(_FONT_PACKAGE) / _FONT_FILE
    if not path.is_file():
        raise RuntimeError(f"{_FONT_FILE} is missing from the {_FONT_PACKAGE} package; reinstall it")
    return str(path)


@functools.cache
def _face_index() -> int:
    # The collection holds JP, KR, SC, TC and HK faces whose glyph shapes differ for the same code
    # point; the order is the font vendor's choice, so look the face up by name.
    path, index = _font_path(), 0
    while True:
        try:
            family, _style = ImageFont.truetype(path, 12, index=index).getname()
        except OSError:
            break
        if family and family.endswith(" SC"):
            return index
        index += 1
    raise RuntimeError(f"no Simplified Chinese (SC) face in {path}")


@functools.lru_cache(maxsize=64)
def load_font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Noto Sans CJK SC at ``size`` px, Regular or Bold; cached per (size, weight).

    The default instance of this variable font is Thin, so the weight is always set. Sharing
    one cached face between executor threads is safe: Pillow holds the GIL (or, on free-threaded
    builds from 12.2, a per-font lock) while FreeType works on it."""
    font = ImageFont.truetype(_font_path(), size, index=_face_index())
    try:
        font.set_variation_by_name("Bold" if bold else "Regular")
    except (OSError, ValueError):
        pass  # FreeType without variation support: the default instance is still legible
    return font


@dataclass(frozen=True)
class FittedText:
    font: ImageFont.FreeTypeFont
    lines: list[str]


_NO_LINE_START = frozenset("）)」』】〉》，,。．.、；;：:！!？?…—·")


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    # Chinese has no spaces to break at, so break between any two characters, but never put
    # closing punctuation at the start of a line (中文排版的避头尾).
    lines: list[str] = []
    line = ""
    for ch in text:
        if not line or font.getlength(line + ch) <= width:
            line += ch
            continue
        if ch in _NO_LINE_START and len(line) > 1:
            lines.append(line[:-1])
            line = line[-1] + ch
        else:
            lines.append(line)
            line = ch
    if line:
        lines.append(line)
    return lines


def fit_text(text: str, width: int, *, max_lines: int, largest: int, smallest: int,
             bold: bool = False) -> FittedText:
    """``text`` in at most ``max_lines`` lines no wider than ``width`` px: wrapped at the largest
    size that fits, shrunk down to ``smallest``, and only then cut with an ellipsis."""
    for size in range(largest, smallest - 1, -1):
        font = load_font(size, bold=bold)
        lines = _wrap(text, font, width)
        if len(lines) <= max_lines:
            return FittedText(font, lines)
    font = load_font(smallest, bold=bold)
    lines = _wrap(text, font, width)[:max_lines]
    last = lines[-1]
    while last and font.getlength(last + "…") > width:
        last = last[:-1]
    lines[-1] = last + "…"
    return FittedText(font, lines)




def qr_symbol(qr: segno.QRCode, module_px: int, border: int = 4) -> Image.Image:
    """``qr`` drawn with ``module_px`` × ``module_px`` modules, quiet zone included."""
    modules = qr.symbol_size(scale=1, border=border)[0]
    data = bytes(0 if dark else 255 for row in qr.matrix_iter(scale=1, border=border) for dark in row)
    symbol = Image.frombytes("L", (modules, modules), data)
    side = modules * module_px
    return symbol.resize((side, side), Image.Resampling.NEAREST).convert("RGB")


def qr_png(payload: str, box: int = 480) -> bytes:
    """:func:`qr_image` as PNG bytes (CPU work: run it in an executor)."""
    out = io.BytesIO()
    qr_image(payload, box).save(out, "PNG")
    return out.getvalue()


def qr_image(payload: str, box: int, *, error: str = "M", border: int = 4) -> Image.Image:
    """A QR symbol for ``payload`` with integer-pixel modules, as large as fits in ``box`` px."""
    qr = segno.make(payload, error=error, micro=False, boost_error=False)
    modules = qr.symbol_size(scale=1, border=border)[0]
    return qr_symbol(qr, max(1, box // modules), border)
