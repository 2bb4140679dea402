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


def test_a_poster_carries_exactly_one_code() -> None:
    with pytest.raises(ValueError):
        posters.render_poster("职工运动会", "2027年05月01日 09:00", "成都", "成都市总工会", None, None)
    with pytest.raises(ValueError):
        posters.render_poster("职工运动会", "2027年05月01日 09:00", "成都", "成都市总工会",
                              b"\xff\xd8", "https://example.cn/h5/")


@pytest.mark.parametrize("title", [
    "四川省总工会2027年职工文化艺术节开幕式暨线上文艺汇演",
    "第十二届“川工杯”职工技能大赛（电工、焊工、数控车工、茶艺师、养老护理员）成都赛区报名" * 3,
    "ＡＢＣ" * 40 + "长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长长",
])
async def test_long_titles_wrap_inside_the_margins_and_the_qr_stays_whole(title: str) -> None:
    url = "https://example.cn/h5/activities.html#item-42"
    png = await posters.poster_png(title, "2027年05月01日 09:00 至 12:00",
                                   "成都市锦江区红星路二段85号四川省职工服务中心", "成都市总工会",
                                   qr_text=url)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (posters.WIDTH, posters.HEIGHT)
    margin = posters._MARGIN - 4  # glyphs' side bearings may reach a little past the text box
    body = image.crop((0, 180, posters.WIDTH, posters.HEIGHT - posters._CODE_BOX - 160))
    for x in [*range(0, margin), *range(posters.WIDTH - margin, posters.WIDTH)]:
        assert {body.getpixel((x, y)) for y in range(body.height)} == {(255, 255, 255)}, x
    expected = qr_image(url, posters._CODE_BOX)
    assert code_area(png, expected.width).tobytes() == expected.tobytes()
