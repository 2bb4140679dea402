"""The push envelope: what is trusted, what is refused, and how replies are sealed."""

from __future__ import annotations

import time

import pytest

from tests.conftest import AES_KEY, APPID, OLD_AES_KEY, ORIGINAL_ID, TOKEN, make_settings
from tests.fakes import FakePusher
from wxbackend.wechat.envelope import Envelope, PushRejected, text_reply

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>o1</FromUserName>
<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>o1</FromUserName>
<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&x;</Content><MsgId>1</MsgId></xml>"""


def envelope(mode: str = "safe", **wechat) -> Envelope:
    return Envelope(make_settings("http://127.0.0.1:9", wechat={"message_mode": mode, **wechat}).wechat)


def pusher(mode: str = "safe", key: str = AES_KEY) -> FakePusher:
    return FakePusher(TOKEN, key, APPID, ORIGINAL_ID, mode=mode)


def rejected(fn, *args, **kwargs) -> PushRejected:
    with pytest.raises(PushRejected) as info:
        fn(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_each_mode_opens_what_wechat_sends(mode: str) -> None:
    p = pusher(mode)
    query, body = p.request(p.text("oWorker1", "注册"))
    opened = envelope(mode).open(query, body)
    assert opened.msg_type == "text"
    assert opened.fields["Content"] == "注册"
    assert opened.source == "oWorker1"
    assert opened.encrypted is (mode != "plain")


def test_url_verification_echoes_only_with_a_valid_signature() -> None:
    params = pusher().verification("echo-12345")
    assert envelope().verify_url(params) == "echo-12345"
    assert rejected(envelope().verify_url, {**params, "signature": "0" * 40}).status == 403
    old = pusher().verification("echo", timestamp=int(time.time()) - 3600)
    assert rejected(envelope().verify_url, old).status == 403


def test_encrypted_reply_is_opened_by_wechat_side() -> None:
    p, env = pusher(), envelope()
    query, body = p.request(p.text("oWorker1", "帮助"))
    opened = env.open(query, body)
    reply = text_reply(opened, "收到")
    sealed = env.seal(reply, opened, query)
    plain = p.open_reply(sealed, timestamp=query["timestamp"], nonce=query["nonce"])
    fields = FakePusher.parse(plain)
    assert fields["Content"] == "收到"
    assert fields["ToUserName"] == "oWorker1"
    assert fields["FromUserName"] == ORIGINAL_ID
    assert env.seal("success", opened, query) == "success"


def test_previous_key_still_opens_and_the_reply_uses_it() -> None:
    old = pusher(key=OLD_AES_KEY)
    env = envelope(previous_encoding_aes_key=OLD_AES_KEY)
    query, body = old.request(old.text("oWorker1", "入会"))
    opened = env.open(query, body)
    assert opened.key_index == 1
    sealed = env.seal(text_reply(opened, "好"), opened, query)
    assert FakePusher.parse(old.open_reply(sealed))["Content"] == "好"


def test_wrong_signature_stale_or_future_timestamp_are_forbidden() -> None:
    p, env = pusher(), envelope()
    query, body = p.request(p.text("o1", "hi"))
    assert rejected(env.open, {**query, "signature": "f" * 40}, body).status == 403
    assert rejected(env.open, {**query, "msg_signature": "f" * 40}, body).status == 403
    for skew in (-301, 301):
        q, b = p.request(p.text("o1", "hi"), timestamp=int(time.time()) + skew)
        assert rejected(env.open, q, b).reason == "stale timestamp"
    assert rejected(env.open, {k: v for k, v in query.items() if k != "nonce"}, body).status == 400


def test_wrong_appid_inside_the_ciphertext_is_forbidden() -> None:
    p, env = pusher(), envelope()
    forged = p.encrypt(p.text("o1", "hi"), appid="wxffffffffffffffff")
    query, body = p.request(p.text("o1", "hi"))
    timestamp, nonce = query["timestamp"], query["nonce"]
    body = (f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
            f"<Encrypt><![CDATA[{forged}]]></Encrypt></xml>").encode()
    from wxbackend.sandbox.simulated.wechat_push import _sha1_sorted
    query = {**query, "msg_signature": _sha1_sorted(TOKEN, timestamp, nonce, forged)}
    assert rejected(env.open, query, body).reason == "cannot decrypt for this appid"


def test_qr_follow_fields_are_kept_as_sent() -> None:
    p = pusher()
    query, body = p.request(p.event("o1", "subscribe", EventKey="qrscene_123", Ticket="t"))
    opened = envelope().open(query, body)
    assert opened.fields["Event"] == "subscribe"
    assert opened.fields["EventKey"] == "qrscene_123"


def test_push_for_another_account_is_forbidden() -> None:
    other = FakePusher(TOKEN, AES_KEY, APPID, "gh_another000000", mode="safe")
    query, body = other.request(other.text("o1", "hi"))
    assert rejected(envelope().open, query, body).status == 403


@pytest.mark.parametrize("document", [
    BILLION_LAUGHS, XXE, "<xml><ToUserName>gh_", "not xml", "<a/>",
    "<xml><ToUserName>gh_0123456789ab</ToUserName><MsgType>text</MsgType></xml>",
    "<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>o</FromUserName>"
    "<CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>",
])
def test_hostile_or_malformed_xml_is_a_bad_request(document: str) -> None:
    p = pusher("plain")
    query, _ = p.request(p.text("o1", "hi"))
    assert rejected(envelope("plain").open, query, document.encode()).status == 400


@pytest.mark.parametrize("document", [BILLION_LAUGHS, XXE])
def test_hostile_xml_inside_the_ciphertext_is_a_bad_request(document: str) -> None:
    p = pusher()
    query, body = p.request(document)
    assert rejected(envelope().open, query, body).status == 400


PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>
<xml><ToUserName>gh_0123456789ab</ToUserName></xml>"""


@pytest.mark.parametrize("body", [
    BILLION_LAUGHS.encode(), XXE.encode(), PARAMETER_ENTITY.encode(),
    BILLION_LAUGHS.encode("utf-16"),  # a DTD in another encoding is seen after decoding
    b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd"><xml/>',
])
def test_any_dtd_is_refused_before_anything_is_expanded(body: bytes) -> None:
    p = pusher("plain")
    query, _ = p.request(p.text("o1", "hi"))
    refused = rejected(envelope("plain").open, query, body)
    assert (refused.status, refused.reason) == (400, "xml with dtd or entities")


@pytest.mark.parametrize("document", [
    # a required field that is not text
    "<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName><a>o1</a></FromUserName>"
    "<CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
    "<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>o1</FromUserName>"
    "<CreateTime><t>1</t></CreateTime><MsgType>text</MsgType></xml>",
    "<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>o1</FromUserName>"
    "<CreateTime>-1</CreateTime><MsgType>text</MsgType></xml>",
    # digits that str.isdigit() takes and int() refuses
    "<xml><ToUserName>gh_0123456789ab</ToUserName><FromUserName>o1</FromUserName>"
    "<CreateTime>\u00b2</CreateTime><MsgType>text</MsgType></xml>",
    # deep nesting within the size cap: refused, not a crash
    "<xml>" + "<a>" * 6000 + "</a>" * 6000 + "</xml>",
    "<xml><x>1</x></xml><xml><y>2</y></xml>",
])
def test_documents_that_are_not_pushes_are_a_bad_request(document: str) -> None:
    p = pusher("plain")
    query, _ = p.request(p.text("o1", "hi"))
    assert rejected(envelope("plain").open, query, document.encode()).status == 400


def test_nested_elements_are_kept_as_sent() -> None:
    p = pusher("plain")
    query, body = p.request(p.event("o1", "scancode_waitmsg", EventKey="scan1", ScanCodeInfo={
        "ScanType": "qrcode", "ScanResult": " 1 "}))
    fields = envelope("plain").open(query, body).fields
    assert fields["ScanCodeInfo"] == {"ScanType": "qrcode", "ScanResult": "1"}
    assert fields["EventKey"] == "scan1"


def test_oversized_and_empty_bodies() -> None:
    p = pusher("plain")
    query, _ = p.request(p.text("o1", "hi"))
    big = p.text("o1", "长" * 30_000).encode()
    assert len(big) > 65_536
    assert rejected(envelope("plain").open, query, big).status == 413
    assert rejected(envelope("plain").open, query, b"").status == 400


def test_plaintext_push_in_safe_mode_is_refused() -> None:
    p = pusher("plain")
    query, body = p.request(p.text("o1", "hi"))
    assert rejected(envelope("safe").open, query, body).status == 403
