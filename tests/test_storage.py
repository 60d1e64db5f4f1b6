"""The Storage interface, on the local filesystem and on a real S3 server (SeaweedFS); S3's pre-signed URLs."""

import threading
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from tailorset.storage import LocalStorage
from tailorset.storage.s3 import S3Storage
from tests.s3 import ACCESS_KEY, BUCKET, REGION, SECRET_KEY
from tests.support import all_keys


def s3_storage(server, **options) -> S3Storage:
    return S3Storage(
        BUCKET, prefix=f"test-{uuid.uuid4().hex[:8]}/", endpoint_url=server.endpoint, region=REGION,
        access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, **options,
    )  # fmt: skip


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.slow)])  # s3: a SeaweedFS server
def store(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    return s3_storage(request.getfixturevalue("s3_server"))


def test_the_storage_contract(store):
    async def scenario():
        data = bytes(range(256)) * 4096  # 1 MB: several stream chunks
        await store.put("images/ab/one.png", data, "image/png")
        await store.put("thumbnails/ab/one.jpg", b"thumb", "image/jpeg")
        assert await store.get("images/ab/one.png") == data
        assert b"".join([chunk async for chunk in store.stream("images/ab/one.png")]) == data
        assert await store.exists("images/ab/one.png") and not await store.exists("images/ab/two.png")
        assert await all_keys(store) == ["images/ab/one.png", "thumbnails/ab/one.jpg"]
        with pytest.raises(FileNotFoundError):
            await store.get("images/ab/two.png")
        with pytest.raises(FileNotFoundError):
            async for _ in store.stream("images/ab/two.png"):
                pass
        await store.delete("images/ab/one.png")
        await store.delete("images/ab/one.png")  # a missing object is not an error
        assert not await store.exists("images/ab/one.png")
        assert await all_keys(store) == ["thumbnails/ab/one.jpg"]

    anyio.run(scenario)


def test_s3_calls_leave_the_event_loop_free(s3_server):
    """boto3 blocks: every request it sends must be sent from a worker thread, never the loop's."""
    store = s3_storage(s3_server)
    senders = set()
    store._client.meta.events.register("before-send.s3", lambda **_: senders.add(threading.get_ident()))

    async def scenario():
        await store.put("a.png", b"a", "image/png")
        await store.get("a.png")
        [chunk async for chunk in store.stream("a.png")]
        await store.exists("a.png")
        await all_keys(store)
        await store.delete("a.png")
        return threading.get_ident()

    loop_thread = anyio.run(scenario)
    assert senders and loop_thread not in senders


@pytest.mark.parametrize(
    "options",
    [
        {"endpoint_url": "http://127.0.0.1:9000"},  # an S3-compatible server: path-style URLs
        {"region": "eu-west-1"},  # AWS itself: bucket.s3.eu-west-1.amazonaws.com
    ],
)
@pytest.mark.parametrize("key", ["images/ab/0123abcd.png", "odd/with space/ünï+cödé~(1).png"])
def test_presigned_urls_are_exactly_botocores(options, key):
    """Our signer must produce byte for byte what botocore's generate_presigned_url does (it is ~50 times
    faster); compared at the moment botocore signed at. Offline: signing needs no server."""
    store = S3Storage("my-bucket", access_key_id="AKIDEXAMPLE", secret_access_key="wJalrXUtnFEMI/K7MDENG", **options)
    reference = store._client.generate_presigned_url(
        "get_object", Params={"Bucket": "my-bucket", "Key": key}, ExpiresIn=900
    )
    signed_at = datetime.strptime(parse_qs(urlsplit(reference).query)["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    assert store._presigner.sign(key, int(signed_at.replace(tzinfo=UTC).timestamp()), 900) == reference


def test_presigned_urls_are_checked_by_the_server_and_expire(s3_server):
    store = s3_storage(s3_server, url_lifetime_seconds=600)
    anyio.run(store.put, "images/x.png", b"the image", "image/png")
    url = store.url_for("images/x.png")
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"the image"
    assert response.headers["content-type"] == "image/png"
    assert url == store.url_for("images/x.png")  # the same file keeps its URL for a while: browsers cache it
    expires = int(parse_qs(urlsplit(url).query)["X-Amz-Expires"][0])
    assert 600 < expires <= 660  # at least the lifetime from now, whenever in its window it was handed out

    assert httpx.get(url.replace("images/x.png", "images/y.png")).status_code == 403  # not another file's
    assert httpx.get(url.split("?")[0]).status_code == 403  # not without a signature
    expired = store._presigner.url("images/x.png", now=time.time() - 2 * expires)
    assert httpx.get(expired).status_code == 403


def test_presigned_urls_name_the_endpoint_clients_reach():
    """Inside a cluster the service reaches S3 at one address; clients get URLs for the public one."""
    store = S3Storage(
        "my-bucket", endpoint_url="http://seaweedfs:8333", public_endpoint_url="https://s3.example.com",
        access_key_id="AKIDEXAMPLE", secret_access_key="secret", region=REGION, prefix="prod/",
    )  # fmt: skip
    assert store.url_for("images/a.png").startswith("https://s3.example.com/my-bucket/prod/images/a.png?X-Amz-")
