"""Posters (海报): a shareable image of an item with its title, time, place, organiser and a code
to it — the Mini Program's code (getwxacodeunlimit, asked for once per item and kept) when a Mini
Program is configured, else a QR of the item's H5 page for the Official Account.

Drawing is CPU work (tens of milliseconds) and runs in an executor; no pooled connection is held
while WeChat draws the code or Pillow draws the poster.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import datetime

import asyncpg
from PIL import Image, ImageDraw

from wxbackend.services.activities.catalogue import Catalogue
from wxbackend.services.cadres.permissions import Actor
from wxbackend.services.clock import CHINA, china_now
from wxbackend.services.drawing import fit_text, load_font, qr_image
from wxbackend.services.errors import NotFound
from wxbackend.services.wxa_codes import WxaCodes
from wxbackend.store.activities import offerings as offerings_store

WIDTH, HEIGHT = 750, 1200
_RED, _WHITE, _INK, _GREY = (200, 22, 29), (255, 255, 255), (34, 34, 34), (110, 110, 110)
_MARGIN = 56
_CODE_BOX = 360
MP_PAGE = "pages/offering/offering"  # the Mini Program's item page; it reads ``scene`` = "o=<id>"


def _when(item: dict) -> str:
    start, end = item.get("starts_at"), item.get("ends_at")
    if start is None:
        start, end = item["opens_at"], item["closes_at"]
    start, end = start.astimezone(CHINA), end.astimezone(CHINA) if end else None
    text = f"{start:%Y年%m月%d日 %H:%M}"
    if end is not None:
        text += f" 至 {end:%H:%M}" if end.date() == start.date() else f" 至 {end:%m月%d日 %H:%M}"
    return text


MP_CAPTION, H5_CAPTION = "长按识别小程序码，立即参加", "微信扫一扫，立即参加"


def render_poster(title: str, when: str, place: str, org_name: str, qr_png: bytes | None,
                  qr_text: str | None) -> bytes:
    """The poster as PNG bytes (CPU work: run it in an executor, see :func:`poster_png`).
    Exactly one of ``qr_png`` (the Mini Program code as WeChat drew it) and ``qr_text`` (the H5
    page's URL, drawn as a QR) is given."""
    if (qr_png is None) == (qr_text is None):
        raise ValueError("a poster carries exactly one of qr_png and qr_text")
    if qr_png is not None:
        code, caption = _code_from(qr_png), MP_CAPTION
    else:
        code, caption = qr_image(qr_text, _CODE_BOX), H5_CAPTION
    image = Image.new("RGB", (WIDTH, HEIGHT), _WHITE)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 170), fill=_RED)
    org = fit_text(org_name, WIDTH - 2 * _MARGIN, max_lines=1, largest=34, smallest=22, bold=True)
    draw.text((_MARGIN, 60), org.lines[0], font=org.font, fill=_WHITE)
    draw.text((_MARGIN, 112), "川工之家", font=load_font(26), fill=(255, 231, 176))
    heading = fit_text(title, WIDTH - 2 * _MARGIN, max_lines=3, largest=56, smallest=36, bold=True)
    y = 220
    for line in heading.lines:
        draw.text((_MARGIN, y), line, font=heading.font, fill=_INK)
        y += int(heading.font.size * 1.3)
    y += 20
    label = load_font(28)
    for name, text in (("时间", when), ("地点", place or "线上")):
        fitted = fit_text(text, WIDTH - 2 * _MARGIN - 90, max_lines=2, largest=30, smallest=24)
        draw.text((_MARGIN, y + 2), name, font=label, fill=_GREY)
        for line in fitted.lines:
            draw.text((_MARGIN + 90, y), line, font=fitted.font, fill=_INK)
            y += 44
        y += 16
    code = code.convert("RGB")
    code.thumbnail((_CODE_BOX, _CODE_BOX))
    left, top = (WIDTH - code.width) // 2, HEIGHT - _CODE_BOX - 150
    image.paste(code, (left, top))
    small = load_font(28)
    draw.text(((WIDTH - small.getlength(caption)) / 2, top + _CODE_BOX + 40), caption, font=small,
              fill=_GREY)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


def _code_from(image_bytes: bytes) -> Image.Image:
    with Image.open(io.BytesIO(image_bytes), formats=("JPEG", "PNG")) as opened:
        opened.load()
        return opened.copy()


async def poster_png(title: str, when: str, place: str, org_name: str, *,
                     qr_png: bytes | None = None, qr_text: str | None = None) -> bytes:
    """:func:`render_poster` off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(
        None, render_poster, title, when, place, org_name, qr_png, qr_text)


class Posters:
    def __init__(self, pool: asyncpg.Pool, catalogue: Catalogue, codes: WxaCodes | None, *,
                 h5_base: str, now: Callable[[], datetime] = china_now) -> None:
        self._pool = pool
        self._catalogue = catalogue
        self._codes = codes  # None without a Mini Program: posters carry the H5 page's QR
        self._h5_base = h5_base.rstrip("/")
        self._now = now

    async def _mp_code(self, offering_id: int) -> bytes:
        return await self._codes.png(MP_PAGE, f"o={offering_id}")

    async def _poster(self, item: dict, target: str) -> bytes:
        qr_png = qr_text = None
        if target == "mp" and self._codes is not None:
            qr_png = await self._mp_code(item["id"])
        else:
            page = "activities" if item["kind"] == "activity" else "services"
            qr_text = f"{self._h5_base}/{page}.html#item-{item['id']}"
        return await poster_png(item["title"], _when(item), item["place"], item["org_name"],
                                qr_png=qr_png, qr_text=qr_text)

    async def for_cadre(self, actor: Actor, offering_id: int, target: str) -> bytes:
        """A poster of an item in the cadre's subtree (drafts too, to check before publishing)."""
        await self._catalogue.manage_get(actor, offering_id)
        async with self._pool.acquire() as conn:
            row = await offerings_store.get(conn, offering_id)
        return await self._poster(dict(row), target)

    async def for_worker(self, offering_id: int, target: str) -> bytes:
        item = await self._catalogue.published(offering_id)
        if item is None:
            raise NotFound("未找到该活动或服务", code="item_not_found")
        return await self._poster(item, target)
