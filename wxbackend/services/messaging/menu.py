"""The Official Account's custom menu, defined in config (``[wechat.menu]``) and pushed with
``wxbackend wechat menu push``. Checked here first so a bad menu fails with a clear message
instead of WeChat's 40016/40017/40018."""

from __future__ import annotations

from wxbackend.services.errors import InvalidInput
from wxbackend.wechat.api import WeChatAPI

_NEEDS = {"click": ("key",), "view": ("url",), "miniprogram": ("appid", "pagepath", "url"),
          "scancode_push": ("key",), "scancode_waitmsg": ("key",), "pic_sysphoto": ("key",),
          "pic_photo_or_album": ("key",), "pic_weixin": ("key",), "location_select": ("key",),
          "article_id": ("article_id",), "article_view_limited": ("article_id",)}


def validate_menu(menu: dict, h5_base: str) -> dict:
    """Return the menu WeChat should get ({h5} in URLs expanded), or raise InvalidInput."""
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise InvalidInput("菜单需要 1 到 3 个一级按钮")
    out = []
    for button in buttons:
        out.append(_button(button, h5_base, top=True))
    return {"button": out}


def _button(button: dict, h5_base: str, *, top: bool) -> dict:
    name = str(button.get("name", ""))
    limit = 16 if top else 60
    if not name or len(name.encode()) > limit:
        raise InvalidInput(f"菜单名称“{name}”为空或超过 {limit} 字节")
    subs = button.get("sub_button")
    if subs:
        if not top or len(subs) > 5:
            raise InvalidInput(f"菜单“{name}”最多 5 个二级按钮，且二级按钮不能再分级")
        return {"name": name, "sub_button": [_button(s, h5_base, top=False) for s in subs]}
    kind = button.get("type")
    if kind not in _NEEDS:
        raise InvalidInput(f"菜单“{name}”的类型 {kind!r} 不被支持")
    out = {"type": kind, "name": name}
    for field in _NEEDS[kind]:
        value = button.get(field)
        if not value:
            raise InvalidInput(f"菜单“{name}”缺少 {field}")
        out[field] = str(value).replace("{h5}", h5_base.rstrip("/"))
    return out


async def push_menu(api: WeChatAPI, menu: dict, h5_base: str) -> dict:
    checked = validate_menu(menu, h5_base)
    await api.create_menu(checked)
    return checked
