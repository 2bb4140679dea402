"""The electronic member card: its token cannot be forged or replayed late, and its picture shows
the member's data in real Chinese glyphs with a QR that encodes exactly the payload."""

from __future__ import annotations

import base64
import io
import struct
from datetime import date

import pytest
import segno
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw

from wxbackend.services.errors import InvalidInput
from wxbackend.services.membership import member_card as mc

KEY = b"member-card-key-for-tests-0123456789"
OTHER_KEY = b"another-member-card-key-9876543210"
NOW = 1_780_000_000
MAX_AGE = 600
ZHANGSAN_ID = 123  # 职工 张三
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
UNION_40 = "四川省成都市锦江区春熙路街道总府路社区联合工会委员会成都某某科技有限公司第一分会"
ZHANGSAN = mc.CardData(
    name="张三丰",
    member_no="SC2026000000123",
    union_name="成都市锦江区春熙路街道联合工会",
    joined_on=date(2026, 3, 8),
    status_label="正常",
)


def token() -> str:
    return mc.issue_token(KEY, ZHANGSAN_ID, NOW)


def assert_rejected(tok: object, code: str = "card_invalid", *, key: bytes = KEY, now: int = NOW) -> None:
    with pytest.raises(InvalidInput) as caught:
        mc.read_token(key, tok, now, MAX_AGE)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert caught.value.status == 400


# --- the token -------------------------------------------------------------------------------

def test_a_token_round_trips_and_stays_short() -> None:
    tok = token()
    assert len(tok) == 38
    assert set(tok) <= set(ALPHABET)
    assert mc.read_token(KEY, tok, NOW + MAX_AGE, MAX_AGE) == ZHANGSAN_ID
    big = mc.issue_token(KEY, 2**64 - 1, NOW)
    assert mc.read_token(KEY, big, NOW, MAX_AGE) == 2**64 - 1


def test_the_token_format_is_pinned() -> None:
    # Another service (or a later release) must be able to verify today's tokens.
    mac = HMAC(KEY, hashes.SM3())
    mac.update(b"member-card\x00" + struct.pack(">QI", ZHANGSAN_ID, NOW))
    raw = struct.pack(">QI", ZHANGSAN_ID, NOW) + mac.finalize()[:16]
    assert token() == base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_flipped_bit_anywhere_is_rejected_as_invalid() -> None:
    raw = bytearray(base64.urlsafe_b64decode(token() + "=="))
    for i in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[i // 8] ^= 1 << (i % 8)
        assert_rejected(base64.urlsafe_b64encode(flipped).rstrip(b"=").decode())


def test_any_changed_character_is_rejected_as_invalid() -> None:
    # Includes the last character, whose two low bits carry no data for the base64 decoder.
    tok = token()
    for i, original in enumerate(tok):
        for ch in ALPHABET.replace(original, ""):
            assert_rejected(tok[:i] + ch + tok[i + 1:])


def test_a_token_from_another_key_is_rejected() -> None:
    assert_rejected(mc.issue_token(OTHER_KEY, ZHANGSAN_ID, NOW))
    assert_rejected(token(), key=OTHER_KEY)


def test_an_old_token_has_expired() -> None:
    tok = token()
    assert mc.read_token(KEY, tok, NOW + MAX_AGE, MAX_AGE) == ZHANGSAN_ID
    assert_rejected(tok, "card_expired", now=NOW + MAX_AGE + 1)
    with pytest.raises(InvalidInput, match="已过期"):
        mc.read_token(KEY, tok, NOW + 86_400, MAX_AGE)


def test_a_token_dated_in_the_future_is_rejected() -> None:
    assert mc.read_token(KEY, mc.issue_token(KEY, ZHANGSAN_ID, NOW + 300), NOW, MAX_AGE) == ZHANGSAN_ID
    assert_rejected(mc.issue_token(KEY, ZHANGSAN_ID, NOW + 301), "card_expired")


@pytest.mark.parametrize("garbage", [
    "", "=", token() + "=", token() + "\n", token()[:-1], token() + "A", token().upper(),
    " " + token()[1:], token()[:-1] + "é", "https://wx.example.org/h5/card?t=" + token(),
    None, 123, token().encode(),
])
def test_malformed_tokens_are_invalid(garbage: object) -> None:
    assert_rejected(garbage)


@given(st.text(max_size=80))
def test_any_string_is_rejected_only_with_invalid_input(garbage: str) -> None:
    assert_rejected(garbage)


@given(st.binary(min_size=28, max_size=28))
def test_well_formed_but_unsigned_tokens_are_invalid(raw: bytes) -> None:
    assert_rejected(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


# --- the picture -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def payload() -> str:
    return "https://wx.example.org/h5/card/verify?t=" + token()


@pytest.fixture(scope="module")
def card(payload: str) -> Image.Image:
    png = mc.render_card(ZHANGSAN, payload)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    image.load()
    return image


def ink(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """How many pixels in ``box`` differ from the card background."""
    region = image.crop(box).convert("RGB")
    diff = ImageChops.difference(region, Image.new("RGB", region.size, mc.BACKGROUND))
    red, green, blue = diff.split()
    most = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    return sum(most.histogram()[1:])


def test_the_card_is_a_png_of_bank_card_shape(card: Image.Image) -> None:
    assert card.size == (mc.CARD_WIDTH, mc.CARD_HEIGHT) == (1000, 630)
    assert card.mode == "RGB"
    assert card.getpixel((5, 5)) == mc.UNION_RED


@pytest.mark.parametrize("which", ["url", "token", "short"])
def test_the_qr_encodes_the_payload_module_by_module(which: str, payload: str) -> None:
    # "short" fits a higher error level in the same version: the level must still be M.
    payload = {"url": payload, "token": token(), "short": "SC2026000000123"}[which]
    card = Image.open(io.BytesIO(mc.render_card(ZHANGSAN, payload)))
    expected = segno.make(payload, error="m", micro=False, boost_error=False)
    assert expected.error == "M"
    matrix = [list(row) for row in expected.matrix_iter(scale=1, border=mc.QR_BORDER)]
    place = mc.qr_placement(payload)
    assert place.modules == len(matrix)
    assert place.module_px >= 3
    right = place.left + place.modules * place.module_px
    bottom = place.top + place.modules * place.module_px
    assert mc.TEXT_RIGHT < place.left and right <= mc.CARD_WIDTH
    assert mc.HEADER_HEIGHT < place.top and bottom <= mc.CARD_HEIGHT

    grey = card.convert("L")
    half = place.module_px // 2
    px = place.module_px
    seen = [[grey.getpixel((place.left + c * px + half, place.top + r * px + half)) < 128
             for c in range(place.modules)] for r in range(place.modules)]
    assert seen == [[bool(dark) for dark in row] for row in matrix]
    # Modules are solid squares, not blurred by scaling: their corners agree with their centres.
    corner = [[grey.getpixel((place.left + c * px, place.top + r * px)) < 128
               for c in range(place.modules)] for r in range(place.modules)]
    assert corner == seen


def test_the_qr_differs_for_another_payload(payload: str) -> None:
    # Guards the test above: were the sampling blind to content, it would pass for any payload.
    other = mc.render_card(ZHANGSAN, payload[:-1] + ("A" if payload[-1] != "A" else "B"))
    mine = mc.render_card(ZHANGSAN, payload)
    assert other != mine


def glyph(char: str, size: int = 64) -> bytes:
    image = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(image).text((size // 2, size // 2), char, font=mc.load_font(size), fill=255)
    return image.tobytes()


def test_the_font_is_the_simplified_chinese_face_at_a_real_weight() -> None:
    assert mc.load_font(30).getname() == ("Noto Sans CJK SC", "Regular")
    assert mc.load_font(30, bold=True).getname() == ("Noto Sans CJK SC", "Bold")
    assert mc.load_font(30) is mc.load_font(30)  # loaded once, not per card


@pytest.mark.parametrize("char", [*"张三丰犇鑫川工会员籍", "·", "（"])
def test_chinese_characters_have_real_glyphs(char: str) -> None:
    missing = glyph("\U0010fffd")  # unassigned: the font's .notdef box
    drawn = glyph(char)
    assert any(drawn), f"{char} rendered nothing"
    assert drawn != missing, f"{char} rendered as .notdef"


def test_the_name_is_drawn_where_the_card_says(card: Image.Image) -> None:
    box = (mc.VALUE_LEFT, mc.NAME_BASELINE - 42, mc.TEXT_RIGHT, mc.NAME_BASELINE + 10)
    assert ink(card, box) > 300
    nameless = Image.open(io.BytesIO(mc.render_card(
        mc.CardData("", ZHANGSAN.member_no, ZHANGSAN.union_name, ZHANGSAN.joined_on, "正常"), "x")))
    assert ink(nameless, box) == 0


def test_a_forty_character_union_name_fits_in_two_lines_without_cutting() -> None:
    assert len(UNION_40) == 40
    fitted = mc.fit_union_name(UNION_40)
    assert len(fitted.lines) == 2
    assert "".join(fitted.lines) == UNION_40
    assert all(fitted.font.getlength(line) <= mc.VALUE_WIDTH for line in fitted.lines)
    assert fitted.font.size >= 18
    assert len(mc.fit_union_name("成都市总工会").lines) == 1


def test_an_absurdly_long_union_name_is_cut_with_an_ellipsis() -> None:
    fitted = mc.fit_union_name(UNION_40 * 2)
    assert len(fitted.lines) == 2
    assert fitted.lines[-1].endswith("…")
    assert all(fitted.font.getlength(line) <= mc.VALUE_WIDTH for line in fitted.lines)


@pytest.mark.parametrize("union_name", [UNION_40, UNION_40 * 2, "W" * 40])
def test_a_long_union_name_stays_left_of_the_qr(union_name: str) -> None:
    data = mc.CardData("阿卜杜热合曼·买买提艾力江·库尔班尼亚孜", "SC2026000000123", union_name,
                       date(2026, 12, 31), "正常")
    image = Image.open(io.BytesIO(mc.render_card(data, "x")))
    body_top = mc.HEADER_HEIGHT + 6
    place = mc.qr_placement("x")
    # The gutter between the text column and the QR, and the card's right margin, stay empty.
    assert ink(image, (mc.TEXT_RIGHT, body_top, place.left, mc.CARD_HEIGHT)) == 0
    assert ink(image, (mc.CARD_WIDTH - 40, body_top, mc.CARD_WIDTH, mc.CARD_HEIGHT)) == 0
    # ... and the union name really uses the column up to near its edge (two full lines).
    assert ink(image, (mc.TEXT_RIGHT - 60, 300, mc.TEXT_RIGHT, 400)) > 0


def test_a_payload_too_long_for_the_card_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        mc.render_card(ZHANGSAN, "x" * 1000)
