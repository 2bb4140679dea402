"""Channels and articles over HTTP: a writer uploads a photo and writes in the console API, a
second cadre reviews, the article is published; readers open the H5 page (with its ETag) and
the Mini Program's JSON; bad uploads and bad requests get a clear 4xx with nothing written."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.api.test_admin import sign_in
from tests.api.test_openapi import ADMIN_DOC, MP_DOC, Contract
from tests.services.cadres.test_cadres import PASSWORD, org_id, otp
from tests.services.channels.conftest import jpeg


async def _cadre(server, rt, creator, db, username: str, code: str, role: str,
                 permissions: set[str], duty: str = "business") -> httpx.AsyncClient:
    account = await rt.cadres.create_account(
        creator, username=username, display_name=username, org_id=await org_id(db, code),
        role=role, duty=duty, password=PASSWORD, permissions=permissions)
    # Only super admins carry a second factor; cadres sign in with their password.
    browser, csrf = await sign_in(server, username, otp(account.totp_uri) if account.totp_uri else "")
    browser.headers["X-CSRF-Token"] = csrf
    return browser


@pytest.fixture
async def desk(server, rt, db):
    """The Chengdu union's writer (its super admin) and reviewer, and a Dazhou writer, each
    signed in over HTTP."""
    office = await rt.cadres.create_operator(username="office", display_name="平台", password=PASSWORD)
    office_actor = (await rt.cadres.login(username="office", password=PASSWORD,
                                          totp=otp(office.totp_uri), ip="10.0.0.1",
                                          user_agent="test")).actor
    perms = {"channel.publish", "channel.review", "account.manage"}
    writer = await _cadre(server, rt, office_actor, db, "liuxie", "SC-510100", "super_admin", perms,
                          duty="system")
    chengdu_admin = await rt.cadres.authenticate(writer.cookies.get("wx_admin"), "127.0.0.1")
    reviewer = await _cadre(server, rt, chengdu_admin[0], db, "chenshen", "SC-510100", "cadre",
                            {"channel.review"})
    dazhou = await _cadre(server, rt, office_actor, db, "dazhou", "SC-511700", "super_admin",
                          {"channel.publish", "channel.review"})
    yield {"writer": writer, "reviewer": reviewer, "dazhou": dazhou}
    for client in (writer, reviewer, dazhou):
        await client.aclose()


WECHAT_UA = "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50 miniProgram"


def _photo() -> bytes:
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (30.0, 39.0, 0.0), 3: "E", 4: (104.0, 4.0, 0.0)})
    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), "orange").save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()



async def declare_upload(server: str, path: str, length: int, headers: dict[str, str]) -> tuple[bytes, dict]:
    """POST that declares ``length`` bytes and sends none: the status line and the JSON answer,
    which must come from the declared size alone, before the body."""
    url = urlsplit(server)
    reader, stream = await asyncio.open_connection(url.hostname, url.port)
    try:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        stream.write(f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{lines}"
                     f"Content-Length: {length}\r\n\r\n".encode())
        await stream.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        stream.close()
    head, _, answer = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(answer)

async def test_write_review_publish_and_read_end_to_end(server, rt, db, desk, http) -> None:
    admin, mp = Contract(ADMIN_DOC), Contract(MP_DOC)
    writer, reviewer = desk["writer"], desk["reviewer"]
    channels = admin.check("/admin/v1/channels", "get", await writer.get(f"{server}/admin/v1/channels"))
    chengdu = next(c for c in channels["channels"] if c["slug"] == "510100")
    assert [c["slug"] for c in channels["channels"]] == ["510100"]  # its own subtree only

    uploaded = await writer.post(f"{server}/admin/v1/media/images?filename=现场.jpg", content=_photo(),
                                 headers={"Content-Type": "image/jpeg"})
    image = admin.check("/admin/v1/media/images", "post", uploaded)["media"]
    assert uploaded.status_code == 201 and image["width"] == 1080
    stored = await http.get(f"{server}{image['url']}")
    assert stored.status_code == 200 and stored.headers["Content-Type"] == "image/jpeg"
    assert "immutable" in stored.headers["Cache-Control"]
    assert not Image.open(io.BytesIO(stored.content)).getexif()  # no GPS left
    again = await writer.post(f"{server}/admin/v1/media/images", content=_photo())
    assert again.json()["media"]["id"] == image["id"]  # the same upload, done once

    pdf = await writer.post(f"{server}/admin/v1/media/attachments?filename=通知.pdf",
                            content=b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF")
    attachment = admin.check("/admin/v1/media/attachments", "post", pdf)["media"]

    body = {"title": "职工技能大赛开幕", "author": "宣传部", "cover_id": image["id"],
            "attachments": [attachment["id"]],
            "body": f'<p style="text-align:center"><img src="{image["url"]}"></p>'
                    '<p onclick="x()">焊工、电工同台竞技</p><script>alert(1)</script>'}
    active = await writer.post(f"{server}/admin/v1/channels/{chengdu['id']}/articles", json=body)
    assert active.status_code == 400 and active.json()["error"]["code"] == "body_active_content"
    assert "<script>" in active.json()["error"]["message"]
    body["body"] = body["body"].replace(' onclick="x()"', "").replace("<script>alert(1)</script>", "")
    created = await writer.post(f"{server}/admin/v1/channels/{chengdu['id']}/articles", json=body)
    article = admin.check("/admin/v1/channels/{channel_id}/articles", "post", created)["article"]
    assert "script" not in article["working"]["body"] and "onclick" not in article["working"]["body"]
    aid = article["id"]

    own_review = await writer.post(f"{server}/admin/v1/articles/{aid}/submit")
    admin.check("/admin/v1/articles/{article_id}/submit", "post", own_review)
    refused = await writer.post(f"{server}/admin/v1/articles/{aid}/review", json={"approve": True})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "self_review"
    reviewed = await reviewer.post(f"{server}/admin/v1/articles/{aid}/review", json={"approve": True})
    reviewed = admin.check("/admin/v1/articles/{article_id}/review", "post", reviewed)
    assert reviewed["article"]["stage"] == "approved"
    published = await writer.post(f"{server}/admin/v1/articles/{aid}/publish", json={})
    assert admin.check("/admin/v1/articles/{article_id}/publish", "post",
                       published)["article"]["live_revision"] == 1

    page = await http.get(f"{server}/h5/a/{aid}", headers={"User-Agent": "MicroMessenger"})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "职工技能大赛开幕" in page.text and "焊工、电工同台竞技" in page.text
    assert "<script>alert" not in page.text and "通知.pdf" in page.text
    assert "script-src 'self' https://res.wx.qq.com" in page.headers["Content-Security-Policy"]
    etag = page.headers["ETag"]
    cached = await http.get(f"{server}/h5/a/{aid}", headers={"If-None-Match": etag,
                                                              "User-Agent": "MicroMessenger"})
    assert cached.status_code == 304 and not cached.content

    article_json = mp.check("/mp/v1/articles/{article_id}", "get",
                            await http.get(f"{server}/mp/v1/articles/{aid}",
                                           headers={"User-Agent": WECHAT_UA}))["article"]
    assert article_json["cover"].startswith("http") and f'src="{rt.settings.server.public_url}/media/' \
        in article_json["body"]
    listed = mp.check("/mp/v1/channels/{slug}/articles", "get",
                      await http.get(f"{server}/mp/v1/channels/510100/articles"))
    assert [a["id"] for a in listed["articles"]] == [aid]
    found = mp.check("/mp/v1/articles", "get", await http.get(f"{server}/mp/v1/articles",
                                                              params={"q": "技能"}))
    assert [a["id"] for a in found["articles"]] == [aid]
    mp.check("/mp/v1/channels", "get", await http.get(f"{server}/mp/v1/channels"))
    search_page = await http.get(f"{server}/h5/search", params={"q": "焊工"})
    assert search_page.status_code == 200 and f"/h5/a/{aid}" in search_page.text
    channel_page = await http.get(f"{server}/h5/c/510100")
    assert "职工技能大赛开幕" in channel_page.text

    await rt.visits.flush()
    await rt.visit_stats.roll_up()
    stats = admin.check("/admin/v1/channels/{channel_id}/stats", "get",
                        await writer.get(f"{server}/admin/v1/channels/{chengdu['id']}/stats"))
    assert stats["stats"]["views"] == 3  # two page opens (one a 304) and the Mini Program's

    withdrawn = await writer.post(f"{server}/admin/v1/articles/{aid}/withdraw", json={"reason": "重复发布"})
    admin.check("/admin/v1/articles/{article_id}/withdraw", "post", withdrawn)
    gone = await http.get(f"{server}/h5/a/{aid}")
    assert gone.status_code == 404 and "文章不存在或已撤回" in gone.text
    assert gone.headers["Content-Type"].startswith("text/html")


async def test_bad_uploads_are_refused_and_nothing_is_kept(server, rt, db, desk) -> None:
    admin = Contract(ADMIN_DOC)
    writer = desk["writer"]
    cases = [
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', 415, "image_format"),
        (b"MZ\x90\x00 this is a program named photo.jpg", 415, "image_format"),
        (jpeg()[:100], 400, "image_invalid"),
        (b"", 400, "upload_empty"),
    ]
    for data, status, code in cases:
        answer = await writer.post(f"{server}/admin/v1/media/images?filename=photo.jpg", content=data)
        admin.check("/admin/v1/media/images", "post", answer)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    # Declared over the limit: answered from the Content-Length, before a byte of the body.
    status, answer = await declare_upload(server, "/admin/v1/media/images", (20 << 20) + 1, {
        "Cookie": f"wx_admin={writer.cookies['wx_admin']}", "X-CSRF-Token": writer.headers["X-CSRF-Token"]})
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert answer["error"] == {"code": "upload_too_large", "message": "图片不能超过 20 MB"}
    docm = io.BytesIO()
    with zipfile.ZipFile(docm, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        archive.writestr("word/vbaProject.bin", b"macro")
    macro = await writer.post(f"{server}/admin/v1/media/attachments?filename=a.docx",
                              content=docm.getvalue())
    assert (macro.status_code, macro.json()["error"]["code"]) == (415, "attachment_macro")
    assert await db.fetchval("SELECT count(*) FROM media") == 0
    anonymous = await httpx.AsyncClient(trust_env=False).post(f"{server}/admin/v1/media/images",
                                                               content=jpeg())
    assert anonymous.status_code == 401


async def test_another_unions_channel_and_article_are_refused(server, rt, db, desk) -> None:
    chengdu = await db.fetchval("SELECT id FROM channels WHERE slug = '510100'")
    body = {"title": "标题", "body": "<p>正文</p>"}
    elsewhere = await desk["dazhou"].post(f"{server}/admin/v1/channels/{chengdu}/articles", json=body)
    assert elsewhere.status_code == 403
    mine = await desk["writer"].post(f"{server}/admin/v1/channels/{chengdu}/articles", json=body)
    aid = mine.json()["article"]["id"]
    for method, path, payload in (("GET", f"/admin/v1/articles/{aid}", None),
                                  ("PUT", f"/admin/v1/articles/{aid}", body),
                                  ("POST", f"/admin/v1/articles/{aid}/submit", None)):
        answer = await desk["dazhou"].request(method, f"{server}{path}", json=payload)
        assert answer.status_code == 404, (method, path)
    too_long = await desk["writer"].post(f"{server}/admin/v1/channels/{chengdu}/articles",
                                         json={"title": "标" * 33, "body": "<p>正文</p>"})
    assert too_long.status_code == 400 and "32" in too_long.json()["error"]["message"]
    assert await db.fetchval("SELECT count(*) FROM articles") == 1
