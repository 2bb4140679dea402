"""Article HTML: WeChat-editor and Word formatting kept, anything active dropped."""

from __future__ import annotations

from wxbackend.services.channels.sanitizing import clean_body, clean_style
from wxbackend.services.channels.search_terms import document_terms, query_terms

OWN = "/media/" + "ab" * 32 + ".jpg"

# What WeChat's editor puts on the clipboard: sections with inline styles everywhere.
WECHAT = ('<section style="margin: 0px 0px 16px; padding: 0px; box-sizing: border-box; '
          'color: rgb(62, 62, 62); font-size: 15px; line-height: 1.75em; text-align: justify;">'
          '<span style="color: rgb(192, 0, 0); font-weight: bold;">一、大赛安排</span></section>'
          '<p style="text-align:center"><img src="' + OWN + '" style="width: 100%;"></p>')
# What Word puts there: classes, mso- properties, o:p tags and conditional comments.
WORD = ('<p class=MsoNormal style="text-indent:21.0pt;mso-char-indent-count:2.0;'
        'line-height:150%"><span lang=EN-US style="font-family:宋体;mso-bidi-font-family:Arial">'
        '职工之家<o:p></o:p></span></p><!--[if gte mso 9]><xml><o:OfficeDocumentSettings>'
        '</o:OfficeDocumentSettings></xml><![endif]-->'
        '<table class=MsoTableGrid border=1><tr><td width=200 colspan=2 '
        'style="border:solid windowtext 1.0pt">'
        '单元格</td></tr></table>')


def test_wechat_editor_formatting_survives() -> None:
    clean = clean_body(WECHAT)
    assert clean.html.startswith('<section style="margin:0px 0px 16px;padding:0px;box-sizing:border-box;'
                                 'color:rgb(62, 62, 62);font-size:15px;line-height:1.75em;'
                                 'text-align:justify">')
    assert '<span style="color:rgb(192, 0, 0);font-weight:bold">一、大赛安排</span>' in clean.html
    assert f'<img src="{OWN}" style="width:100%">' in clean.html
    assert clean.images == (OWN,) and clean.dropped_images == 0


def test_word_formatting_survives_without_its_office_markup() -> None:
    clean = clean_body(WORD)
    assert 'style="text-indent:21.0pt;line-height:150%"' in clean.html
    assert "font-family:宋体" in clean.html
    assert "mso" not in clean.html and "o:p" not in clean.html and "xml" not in clean.html
    assert 'colspan="2"' in clean.html and "border:solid windowtext 1.0pt" in clean.html
    assert clean.text == "职工之家 单元格"


def test_scripts_handlers_and_dangerous_urls_are_dropped() -> None:
    clean = clean_body(
        '<p onmouseover="x()">a</p><script>steal()</script><img src=x onerror=alert(1)>'
        '<a href="javascript:alert(1)">b</a><a href="JaVaScRiPt&#58;alert(1)">c</a>'
        '<a href="data:text/html,<script>alert(1)</script>">d</a>'
        '<iframe src="https://evil.example/"></iframe><object data="x.swf"></object>'
        '<form action="https://evil.example"><input name=p></form><style>body{}</style>'
        '<div style="width: expression(alert(1)); background: url(javascript:alert(1)); '
        'position: fixed; color: red">e</div><a href="https://www.acftu.org/">f</a>')
    html = clean.html.lower()
    for bad in ("onmouseover", "onerror", "script", "javascript", "data:", "evil", "object",
                "form", "input", "expression", "url(", "position"):
        assert bad not in html, bad
    assert '<div style="color:red">e</div>' in clean.html
    assert '<a href="https://www.acftu.org/" rel="noopener noreferrer">f</a>' in clean.html
    assert clean.dropped_frames == 1


def test_only_tencent_video_may_be_embedded() -> None:
    frame = '<iframe src="https://v.qq.com/txp/iframe/player.html?vid=x0012abcd"></iframe>'
    clean = clean_body(frame)
    assert 'src="https://v.qq.com/txp/iframe/player.html?vid=x0012abcd"' in clean.html
    assert 'sandbox="allow-scripts allow-same-origin"' in clean.html


def test_style_values_are_filtered_per_declaration() -> None:
    assert clean_style("color: red; behavior: url(x.htc); display: grid; display: block") == \
        "color:red;display:block"
    assert clean_style("font-size: 12px\\3b position: fixed") is None


def test_chinese_search_terms_are_characters_and_pairs() -> None:
    terms = document_terms("川工之家 App ２０２６")
    assert {"川", "川工", "工之", "之家", "家", "app", "2026"} <= set(terms)
    assert query_terms("工会  之家") == (["之家", "工会"], ["工会", "之家"])
    assert query_terms("会") == (["会"], ["会"])
    assert query_terms("   ") == ([], [])
