"""What an article's working copy may hold, checked in one place. The limits are WeChat's
(draft/add), so whatever passes here can also go to the Official Account unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from wxbackend.services.channels.sanitizing import CleanBody, active_content, clean_body
from wxbackend.services.errors import InvalidInput, TooLarge
from wxbackend.wechat.api import (
    OA_AUTHOR_MAX,
    OA_CONTENT_MAX_BYTES,
    OA_CONTENT_MAX_CHARS,
    OA_DIGEST_MAX,
    OA_TITLE_MAX,
)

FIELDS = ("title", "author", "summary", "cover_id", "body", "attachments")
MAX_ATTACHMENTS = 10
RAW_BODY_MAX = 4 << 20    # what a paste may weigh before cleaning (Word's HTML is verbose)
AUTO_SUMMARY = 54         # WeChat's default digest: the first 54 characters


def invalid(message: str, code: str = "invalid_article") -> InvalidInput:
    return InvalidInput(message, code=code)


def _text(body: dict, key: str, limit: int, name: str, *, required: bool = False) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise invalid(f"{name}须为文字")
    value = " ".join(value.split())
    if required and not value:
        raise invalid(f"请填写{name}", code=f"{key}_missing")
    if len(value) > limit:
        raise invalid(f"{name}不能超过 {limit} 个字（微信公众号的限制）", code=f"{key}_too_long")
    return value


def _ids(value: object, name: str, limit: int) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise invalid(f"{name}须为至多 {limit} 个编号的列表")
    return list(dict.fromkeys(value))


@dataclass(frozen=True)
class Working:
    fields: dict          # what is stored as the working copy
    cleaned: CleanBody

    def warnings(self) -> list[str]:
        notes = []
        if self.cleaned.dropped_images:
            notes.append(f"已移除 {self.cleaned.dropped_images} 张外部图片：请先保存到本机，"
                         "再用“插入图片”上传")
        if self.cleaned.dropped_frames:
            notes.append(f"已移除 {self.cleaned.dropped_frames} 个外部嵌入内容（只保留腾讯视频）")
        return notes


def clean_article(body: dict) -> Working:
    """A whole working copy from a cadre's form: every field, each checked."""
    if not isinstance(body, dict):
        raise invalid("请求内容须为 JSON 对象")
    unknown = set(body) - set(FIELDS)
    if unknown:
        raise invalid(f"未知的字段：{', '.join(sorted(unknown))}", code="unknown_field")
    title = _text(body, "title", OA_TITLE_MAX, "标题", required=True)
    author = _text(body, "author", OA_AUTHOR_MAX, "作者")
    raw = body.get("body", "")
    if not isinstance(raw, str):
        raise invalid("正文须为 HTML 文字")
    if len(raw.encode()) > RAW_BODY_MAX:
        raise TooLarge("粘贴的正文过大，请分篇发布或删去多余的格式", code="body_too_large")
    active = active_content(raw)
    if active:
        raise invalid(f"正文含有可执行的内容（{'、'.join(active)}），不能保存；请删除后再提交",
                      code="body_active_content")
    cleaned = clean_body(raw)
    if not cleaned.text and not cleaned.images:
        raise invalid("请填写正文", code="body_missing")
    if len(cleaned.html) >= OA_CONTENT_MAX_CHARS or len(cleaned.html.encode()) >= OA_CONTENT_MAX_BYTES:
        raise TooLarge("正文（含格式）须少于 2 万字且小于 1 MB（微信公众号的限制），请删减或分篇",
                       code="body_too_long")
    summary = _text(body, "summary", OA_DIGEST_MAX, "摘要") or cleaned.text[:AUTO_SUMMARY]
    cover = body.get("cover_id")
    if cover is not None and (not isinstance(cover, int) or isinstance(cover, bool) or cover < 1):
        raise invalid("封面图片编号无效", code="invalid_media")
    fields = {"title": title, "author": author, "summary": summary, "cover_id": cover,
              "body": cleaned.html, "attachments": _ids(body.get("attachments"), "附件",
                                                        MAX_ATTACHMENTS)}
    return Working(fields, cleaned)
