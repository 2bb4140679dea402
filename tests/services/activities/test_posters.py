"""Posters: a PNG with the item and a code to it — the Mini Program's code, asked of WeChat once
per item and kept, or a QR of the H5 page; only for items the caller may see."""

from __future__ import annotations

import asyncio
import hashlib
import io

import pytest
from PIL import Image

from tests.services.activities.conftest import published
from wxbackend.services.activities import posters
from wxbackend.services.drawing import qr_image
from wxbackend.services.errors import NotFound

CODE = "/wxa/getwxacodeunlimit"


def code_area(png: bytes, side: int) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.size == (posters.WIDTH, posters.HEIGHT) and image.format == "PNG"
    left, top = (posters.WIDTH - side) // 2, posters.HEIGHT - posters._CODE_BOX - 150
    return image.convert("RGB").crop((left, top, left + side, top + side))


async def test_the_mini_program_code_is_asked_for_once_and_drawn_in(rt, fake_wechat, organiser) -> None:
    item = await published(rt, organiser, title="四川省总工会2027年职工文化艺术节开幕式暨线上文艺汇演")
    first, second = await asyncio.gather(rt.posters.for_cadre(organiser, item["id"], "mp"),
                                         rt.posters.for_worker(item["id"], "mp"))
    again = await rt.posters.for_worker(item["id"], "mp")
    assert fake_wechat.count(CODE) == 1
    assert fake_wechat.bodies(CODE)[0]["scene"] == f"o={item['id']}"
    # The fake draws each code in its own colour: that colour fills the code's square.
    shade = tuple(hashlib.sha256(f"{posters.MP_PAGE}?scene=o={item['id']}".encode()).digest()[:3])
    centre = code_area(first, posters._CODE_BOX).getpixel((180, 180))
    assert all(abs(a - b) <= 3 for a, b in zip(centre, shade, strict=True))  # JPEG rounding
    assert first == second == again


async def test_the_h5_poster_carries_the_items_page(rt, fake_wechat, organiser) -> None:
    item = await published(rt, organiser, kind="activity", form="offline", title="职工运动会")
    png = await rt.posters.for_worker(item["id"], "h5")
    expected = qr_image(f"{rt.h5_base}/activities.html#item-{item['id']}", posters._CODE_BOX)
    assert code_area(png, expected.width).tobytes() == expected.tobytes()
    assert fake_wechat.count(CODE) == 0


async def test_posters_only_for_items_in_reach(rt, db, unions, organiser) -> None:
    other = await db.fetchval(
        """INSERT INTO offerings (kind, form, org_id, org_path, title, opens_at, closes_at, mode,
                                  stock, audience, status)
           SELECT 'service', 'coupon', id, path, '达州券', now(), now() + interval '1 day',
                  'first_come', 5, '{}', 'draft' FROM orgs WHERE id = $1 RETURNING id""",
        unions["dazhou_city"])
    with pytest.raises(NotFound):
        await rt.posters.for_cadre(organiser, other, "mp")
    with pytest.raises(NotFound):
        await rt.posters.for_worker(other, "mp")  # a draft is not out yet
