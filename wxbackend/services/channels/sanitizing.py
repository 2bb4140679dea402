"""Article bodies: the HTML a cadre pastes (from WeChat's editor, from Word) cut down to what is
safe to show inside WeChat's browser, with its formatting kept.

nh3 (Rust's ammonia) does the parsing and the tag and attribute allowlists; inline styles are
filtered here, declaration by declaration, because ammonia filters property names only and keeps
values such as ``expression(…)``. Images must be our own (``/media/…``): pictures hot-linked from
WeChat's servers do not show outside WeChat, and any other address would let a reader's phone be
tracked; those are removed and counted, so the console can say what to upload.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import nh3

TAGS = frozenset({
    "a", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "del", "div", "em",
    "figcaption", "figure", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "iframe", "img",
    "ins", "li", "mark", "ol", "p", "pre", "s", "section", "small", "span", "strike", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
ATTRIBUTES = {
    "*": {"style", "align", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "valign", "width"},
    "th": {"colspan", "rowspan", "valign", "width"},
    "col": {"span", "width"},
    "ol": {"start", "type"},
    "font": {"color", "size"},
    "iframe": {"src", "width", "height", "allowfullscreen"},
}
# WeChat-editor and Word formatting: text, colour, spacing, borders, simple boxes. No position,
# no background images, no behaviour.
STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font-size", "font-weight", "font-style", "font-family",
    "text-align", "text-decoration", "text-indent", "text-transform", "line-height",
    "letter-spacing", "word-spacing", "white-space", "word-break", "word-wrap", "overflow-wrap",
    "vertical-align", "width", "max-width", "min-width", "height", "max-height", "min-height",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-radius", "border-collapse", "border-spacing",
    "box-sizing", "display", "list-style-type", "table-layout", "float", "clear",
})
_UNSAFE_VALUE = re.compile(r"expression|url\s*\(|javascript:|vbscript:|@import|behaviou?r|[\\<>]",
                           re.IGNORECASE)
_DISPLAY = frozenset({"block", "inline", "inline-block", "none", "table", "table-cell", "flex",
                      "list-item"})
OWN_IMAGE = re.compile(r"^/media/[0-9a-f]{64}\.(?:jpg|png|webp|gif)$")
# The video player WeChat articles embed; every other frame is foreign.
OWN_FRAME = re.compile(r"^https://v\.qq\.com/txp/iframe/player\.html\?vid=[0-9A-Za-z]{1,32}$")
_IMG_WITHOUT_SRC = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>")
_IFRAME_WITHOUT_SRC = re.compile(r"<iframe(?![^>]*\ssrc=)[^>]*>\s*</iframe>")
_SPACE = re.compile(r"\s+")


def clean_style(value: str) -> str | None:
    kept = []
    for declaration in value.split(";"):
        name, colon, val = declaration.partition(":")
        name, val = name.strip().lower(), val.strip()
        if not colon or name not in STYLE_PROPERTIES or not val or _UNSAFE_VALUE.search(val):
            continue
        if name == "display" and val.lower() not in _DISPLAY:
            continue
        kept.append(f"{name}:{val}")
    return ";".join(kept) or None


class _Filter:
    """Counts what it removes, so one article's clean-up can report it."""

    def __init__(self) -> None:
        self.dropped_images = 0
        self.dropped_frames = 0

    def __call__(self, tag: str, attribute: str, value: str) -> str | None:
        if attribute == "style":
            return clean_style(value)
        if tag == "img" and attribute == "src":
            if OWN_IMAGE.match(value):
                return value
            self.dropped_images += 1
            return None
        if tag == "iframe" and attribute == "src":
            if OWN_FRAME.match(value):
                return value
            self.dropped_frames += 1
            return None
        return value


@dataclass(frozen=True)
class CleanBody:
    html: str
    text: str               # the words, for search, summaries and length checks
    dropped_images: int     # foreign images removed
    dropped_frames: int     # foreign frames removed
    images: tuple[str, ...]  # our image addresses, in order


_OWN_SRC = re.compile(r'<img[^>]*\ssrc="(/media/[0-9a-f]{64}\.(?:jpg|png|webp|gif))"')


def clean_body(raw: str) -> CleanBody:
    found = _Filter()
    cleaned = nh3.clean(
        raw, tags=set(TAGS), attributes={k: set(v) for k, v in ATTRIBUTES.items()},
        attribute_filter=found, clean_content_tags={"script", "style", "noscript", "template",
                                                    "object", "embed", "svg", "math", "title"},
        url_schemes={"https", "http", "mailto", "tel"}, link_rel="noopener noreferrer",
        strip_comments=True,
        set_tag_attribute_values={"iframe": {"sandbox": "allow-scripts allow-same-origin"}})
    cleaned = _IFRAME_WITHOUT_SRC.sub("", _IMG_WITHOUT_SRC.sub("", cleaned)).strip()
    return CleanBody(html=cleaned, text=plain_text(cleaned), dropped_images=found.dropped_images,
                     dropped_frames=found.dropped_frames, images=tuple(_OWN_SRC.findall(cleaned)))


_BLOCK_EDGE = re.compile(r"</?(?:p|div|section|h[1-6]|li|tr|td|th|blockquote|figure)\b[^>]*>|<br\s*/?>",
                         re.IGNORECASE)


def plain_text(cleaned: str) -> str:
    """The words of sanitised HTML, blocks separated by spaces."""
    spaced = _BLOCK_EDGE.sub(lambda m: " " + m.group(0) + " ", cleaned)
    return _SPACE.sub(" ", html.unescape(nh3.clean(spaced, tags=set()))).strip()


# What makes HTML active: refused outright (a cadre's paste never needs it), not quietly removed.
_ACTIVE_TAGS = frozenset({"script", "object", "embed", "applet", "base", "meta", "form"})
_ACTIVE_URL = re.compile(r"^\s*(?:javascript|vbscript|data:text/html)", re.IGNORECASE)
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data", "xlink:href"})


class _ActiveFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _ACTIVE_TAGS:
            self.found.add(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.found.add(f"事件属性 {name}")
            elif name in _URL_ATTRIBUTES and _ACTIVE_URL.match(re.sub(r"[\t\n\r]", "", value)):
                self.found.add("javascript: 等脚本链接")
            elif name == "style" and _UNSAFE_VALUE.search(value) and "expression" in value.lower():
                self.found.add("CSS expression")

    handle_startendtag = handle_starttag


def active_content(raw: str) -> list[str]:
    """Scripts, event handlers, script links and CSS expressions in ``raw``, as a cadre would be
    told of them (empty: none). Text that merely mentions them is not counted."""
    finder = _ActiveFinder()
    finder.feed(raw)
    finder.close()
    return sorted(finder.found)
