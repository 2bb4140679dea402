"""Files in an S3-compatible object store instead of the local directory: the request signature
(AWS Signature Version 4, against AWS's published example) and a round trip through an S3
server (moto's), from a cadre's upload to a reader's download."""

from __future__ import annotations

import hashlib
import socket

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.conftest import make_settings
from tests.services.channels.conftest import jpeg
from wxbackend.services.channels.media_store import S3Store, sigv4_authorization

BUCKET = "sc-union-media"


def test_the_signature_is_aws_signature_version_4() -> None:
    """AWS's example: GET /test.txt from examplebucket with Range: bytes=0-9."""
    empty = hashlib.sha256(b"").hexdigest()
    headers = {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9",
               "x-amz-content-sha256": empty, "x-amz-date": "20130524T000000Z"}
    assert sigv4_authorization(
        method="GET", url="https://examplebucket.s3.amazonaws.com/test.txt", headers=headers,
        payload_sha256=empty, access_key="AKIAIOSFODNN7EXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="us-east-1",
        amz_date="20130524T000000Z") == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


@pytest.fixture(scope="module")
def object_store():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
                 aws_secret_access_key="s").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _settings(fake_wechat, endpoint: str, public: str = ""):
    return make_settings(fake_wechat.base_url, channels={
        "media_store": "s3", "s3_endpoint": endpoint, "s3_bucket": BUCKET, "s3_access_key": "k",
        "s3_secret_key": "s", "s3_public_url": public})


@pytest.fixture
def settings(fake_wechat, object_store):
    return _settings(fake_wechat, object_store)


async def test_uploads_go_to_the_bucket_and_readers_get_them_back(rt, cadres, server, http,
                                                                  object_store) -> None:
    assert isinstance(rt.media.files, S3Store)
    image = await rt.media.upload_image(cadres["writer"], jpeg(1600, 900, "olive"), "photo.jpg")
    key = image["url"].removeprefix("/media/")
    listed = boto3.client("s3", endpoint_url=object_store, region_name="us-east-1",
                          aws_access_key_id="k", aws_secret_access_key="s").list_objects_v2(
        Bucket=BUCKET, Prefix="media/")
    names = {o["Key"] for o in listed["Contents"]}
    assert f"media/{key[:2]}/{key[2:4]}/{key}" in names and len(names) == 2  # page and thumbnail
    served = await http.get(f"{server}{image['url']}")
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert hashlib.sha256(served.content).hexdigest() == key.split(".")[0]
    assert "immutable" in served.headers["Cache-Control"]
    again = await http.get(f"{server}{image['url']}", headers={"If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304
    missing = await http.get(f"{server}/media/{'0' * 64}.jpg")
    assert missing.status_code == 404
    attachment = await rt.media.upload_attachment(cadres["writer"], b"%PDF-1.7\n%%EOF", "通知.pdf")
    download = await http.get(f"{server}{attachment['url']}", params={"name": "通知.pdf"})
    assert download.headers["Content-Disposition"].endswith("''%E9%80%9A%E7%9F%A5.pdf")


async def test_with_a_public_address_readers_are_sent_there(fake_wechat, object_store, backing,
                                                            clean_db, clock, http, db) -> None:
    from tests.conftest import start_server
    from wxbackend.runtime import open_runtime

    settings = _settings(fake_wechat, object_store, public="https://cdn.example.cn/media")
    async with open_runtime(settings, backing.dsn, backing.redis_url, now=clock) as rt:
        srv, url = await start_server(rt)
        try:
            key = "ab" * 32 + ".jpg"
            answer = await http.get(f"{url}/media/{key}", follow_redirects=False)
            assert answer.status_code == 301
            assert answer.headers["Location"] == f"https://cdn.example.cn/media/ab/ab/{key}"
        finally:
            srv.stop()
            await srv.close_all_connections()
