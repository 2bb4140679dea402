"""The electronic member card (电子会员卡): its picture and the QR token a cadre scans to verify it.

The token is what makes the card verifiable: a screenshot of someone else's card is only good
until the token expires, and nobody without the server key can mint one. It carries the member
id and the issue time in the clear and an HMAC-SM3 over both, so the verifier needs no database
row per token and any server process can check a token another process issued.

The picture is drawn here, without a database and without Tornado, so that it can be tested pixel
by pixel. The font is Noto Sans CJK from the ``manimgx-fonts-cjk`` wheel: servers and CI have no
CJK system fonts, and a card showing tofu boxes instead of the member's name is worthless.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import segno
from PIL import Image, ImageDraw

from wxbackend.services import signed_tokens
from wxbackend.services.drawing import FittedText, fit_text, load_font, qr_symbol
from wxbackend.services.signed_tokens import TokenKind

__all__ = [
    "BACKGROUND",
    "CARD_HEIGHT",
    "CARD_WIDTH",
    "HEADER_HEIGHT",
    "NAME_BASELINE",
    "QR_BORDER",
    "QR_ERROR",
    "TEXT_RIGHT",
    "UNION_RED",
    "VALUE_LEFT",
    "VALUE_WIDTH",
    "CardData",
    "FittedText",
    "QrPlacement",
    "fit_text",
    "fit_union_name",
    "issue_token",
    "load_font",
    "qr_placement",
    "read_token",
    "render_card",
]


@dataclass(frozen=True)
class CardData:
    name: str            # the member's full name (shown in full on their own card)
    member_no: str       # e.g. "SC2026000000123"
    union_name: str      # the grassroots union; long names are wrapped, then shrunk
    joined_on: date
    status_label: str    # e.g. "正常"


# --- the token -------------------------------------------------------------------------------

_CARD = TokenKind(
    domain=b"member-card\x00",
    invalid=("会员卡二维码无效，请会员出示本人的电子会员卡", "card_invalid"),
    expired=("会员卡二维码已过期，请会员刷新电子会员卡", "card_expired"))


def issue_token(key: bytes, member_id: int, issued_at: int) -> str:
    """A 38-character URL-safe token for ``member_id``, valid from ``issued_at`` (unix seconds)."""
    return signed_tokens.issue(key, _CARD, member_id, issued_at)


def read_token(key: bytes, token: str, now: int, max_age: int) -> int:
    """The member id in ``token`` if it was issued with ``key`` and is still fresh; raises
    InvalidInput ``card_invalid`` or ``card_expired`` (see :func:`signed_tokens.read`)."""
    return signed_tokens.read(key, _CARD, token, now, max_age)[0]


# --- the picture -----------------------------------------------------------------------------

# The layout, in pixels of the PNG. 1000 × 630 is a bank card's 85.6 × 54 mm and about one pixel
# per device pixel across a phone screen, so the image needs no scaling to stay sharp.
CARD_WIDTH, CARD_HEIGHT = 1000, 630
HEADER_HEIGHT = 150
BACKGROUND = (255, 255, 255)
UNION_RED = (200, 22, 29)
_GOLD = (230, 180, 34)
_TITLE_COLOUR = (255, 255, 255)
_SUBTITLE_COLOUR = (255, 231, 176)
_LABEL_COLOUR = (128, 128, 128)
_VALUE_COLOUR = (34, 34, 34)

_MARGIN = 56
_LABEL_SIZE = 24
VALUE_LEFT = _MARGIN + 120  # after a four-character label
QR_ERROR = "M"
QR_BORDER = 4  # the standard quiet zone; scanners that find the symbol fast rely on it
_QR_BOX = 300  # the square the symbol (quiet zone included) must fit into
_QR_LEFT = CARD_WIDTH - 48 - _QR_BOX
_QR_TOP = HEADER_HEIGHT + 36
_MIN_MODULE_PX = 3  # smaller modules blur once a phone camera sees them on another phone's screen
TEXT_RIGHT = _QR_LEFT - 28  # no text may cross this column
VALUE_WIDTH = TEXT_RIGHT - VALUE_LEFT

NAME_BASELINE = 222
_MEMBER_NO_BASELINE = 282
_UNION_BASELINE = 342
_JOINED_BASELINE = 432
_STATUS_BASELINE = 492
_FOOTER_BASELINE = 590


@dataclass(frozen=True)
class QrPlacement:
    left: int         # where the symbol's quiet zone starts, in card pixels
    top: int
    module_px: int    # every module is a module_px × module_px square
    modules: int      # modules per side, quiet zone included


def _make_qr(payload: str) -> segno.QRCode:
    # The level is pinned (no segno error boosting) so a verifier can rebuild the exact symbol.
    return segno.make(payload, error=QR_ERROR, micro=False, boost_error=False)


def _placement(qr: segno.QRCode) -> QrPlacement:
    modules = qr.symbol_size(scale=1, border=QR_BORDER)[0]
    module_px = _QR_BOX // modules
    if module_px < _MIN_MODULE_PX:
        raise ValueError(f"QR payload too long for the member card ({modules} modules)")
    offset = (_QR_BOX - modules * module_px) // 2
    return QrPlacement(_QR_LEFT + offset, _QR_TOP + offset, module_px, modules)


def qr_placement(qr_payload: str) -> QrPlacement:
    """Where render_card draws the QR for ``qr_payload``: integer-pixel modules, centred in a
    fixed square on the right of the card."""
    return _placement(_make_qr(qr_payload))


def _qr_image(qr: segno.QRCode, place: QrPlacement) -> Image.Image:
    return qr_symbol(qr, place.module_px, QR_BORDER)


def fit_union_name(union_name: str) -> FittedText:
    """How the card sets the union's name: grassroots union names run to 40 characters
    (street, community, company, 联合工会委员会), which take two lines at 22 px."""
    return fit_text(union_name, VALUE_WIDTH, max_lines=2, largest=30, smallest=18)


def _format_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def render_card(data: CardData, qr_payload: str) -> bytes:
    """The member card as PNG bytes, with ``qr_payload`` encoded verbatim in its QR code.

    This is synchronous CPU work (a few tens of milliseconds, most of it PNG compression): callers
    run it in an executor, never on the event loop.
    Raises ValueError if the payload needs a QR too dense for the card."""
    qr = _make_qr(qr_payload)
    place = _placement(qr)

    card = Image.new("RGB", (CARD_WIDTH, CARD_HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(card)

    draw.rectangle((0, 0, CARD_WIDTH - 1, HEADER_HEIGHT - 1), fill=UNION_RED)
    draw.rectangle((0, HEADER_HEIGHT, CARD_WIDTH - 1, HEADER_HEIGHT + 5), fill=_GOLD)
    draw.text((_MARGIN, 78), "中华全国总工会会员卡", font=load_font(46, bold=True),
              fill=_TITLE_COLOUR, anchor="ls")
    draw.text((_MARGIN, 122), "四川省总工会 · 川工之家", font=load_font(26),
              fill=_SUBTITLE_COLOUR, anchor="ls")

    label_font = load_font(_LABEL_SIZE)
    rows = [
        (NAME_BASELINE, "姓　　名", fit_text(data.name, VALUE_WIDTH, max_lines=1, largest=36,
                                           smallest=24, bold=True)),
        (_MEMBER_NO_BASELINE, "会员编号", fit_text(data.member_no, VALUE_WIDTH, max_lines=1,
                                               largest=30, smallest=20)),
        (_UNION_BASELINE, "所属工会", fit_union_name(data.union_name)),
        (_JOINED_BASELINE, "入会日期", fit_text(_format_date(data.joined_on), VALUE_WIDTH,
                                           max_lines=1, largest=30, smallest=20)),
        (_STATUS_BASELINE, "会籍状态", fit_text(data.status_label, VALUE_WIDTH, max_lines=1,
                                           largest=30, smallest=20)),
    ]
    for baseline, label, value in rows:
        draw.text((_MARGIN, baseline), label, font=label_font, fill=_LABEL_COLOUR, anchor="ls")
        line_height = round(value.font.size * 1.35)
        for i, line in enumerate(value.lines):
            draw.text((VALUE_LEFT, baseline + i * line_height), line, font=value.font,
                      fill=_VALUE_COLOUR, anchor="ls")

    card.paste(_qr_image(qr, place), (place.left, place.top))
    draw.text((_QR_LEFT + _QR_BOX // 2, _QR_TOP + _QR_BOX + 30), "出示此码供工会核验",
              font=load_font(20), fill=_LABEL_COLOUR, anchor="ms")
    draw.text((_MARGIN, _FOOTER_BASELINE), "本卡仅限本人使用 · 二维码限时有效，截图转发无效",
              font=load_font(20), fill=_LABEL_COLOUR, anchor="ls")

    out = io.BytesIO()
    card.save(out, "PNG")
    return out.getvalue()
