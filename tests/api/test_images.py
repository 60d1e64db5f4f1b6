"""Image upload (JSON base64, image_url, multipart), files and thumbnails, list, get, delete."""

import functools
import http.server
import io
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tests.support import PHOTOS, Api, b64, create_token, download, encoded, every_storage, photo, stored_keys


@every_storage
def test_upload_captions_the_image_with_the_prefix(api):
    dataset = api.dataset()
    response = api.post(
        f"/tailored-gen/datasets/{dataset['id']}/images", json={"file": b64(photo("coffee.png")), "image_name": "cup"}
    )
    assert response.status_code == 201
    image = response.json()
    assert image["dataset_id"] == dataset["id"] and image["image_name"] == "cup"
    assert image["caption_source"] == "automatic"
    assert image["caption"].startswith("A photo of ") and image["caption"].count("A photo of") == 1
    assert any(word in image["caption"] for word in ("espresso", "coffee", "cup"))
    assert image["created_at"] == image["updated_at"]


def test_files_are_served_by_signed_url(api, client):
    dataset = api.dataset()
    image = api.upload(dataset["id"], "astronaut.png")
    original = client.get(image["image_url"])  # no api_token needed: the signature is the credential
    assert original.status_code == 200 and original.headers["content-type"] == "image/png"
    assert original.content == photo("astronaut.png")
    thumbnail = client.get(image["thumbnail_url"])
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 256
    tampered = image["image_url"].replace("sig=", "sig=0")
    assert client.get(tampered).status_code == 404
    assert client.get(image["image_url"].split("?")[0]).status_code == 404
    assert image["image_url"].startswith("http://testserver/files/images/")


def test_file_urls_follow_the_host_and_scheme_the_client_used(api, client, monkeypatch):
    from tailorset.api import present

    image = api.upload(api.dataset()["id"], "astronaut.png")
    path = f"/tailored-gen/datasets/{image['dataset_id']}/images/{image['id']}"
    monkeypatch.setattr(present, "_BASE_URLS", {})
    monkeypatch.setattr(present, "_MAX_BASE_URLS", 3)  # more names than the service keeps: each still gets its own
    bases = ["http://a.example:8443", "https://a.example:8443", *(f"http://host-{n}.example:8080" for n in range(4))]
    for base in bases:
        for _ in range(2):
            got = client.get(base + path, headers={"api_token": api.token}).json()
            assert got["image_url"].startswith(f"{base}/files/images/"), (base, got["image_url"])
            assert got["thumbnail_url"].startswith(f"{base}/files/"), (base, got["thumbnail_url"])
    assert client.get(got["image_url"].removeprefix(base)).status_code == 200


@pytest.mark.parametrize(("database_url", "storage_backend"), [("postgresql", "s3")], indirect=True)
def test_files_in_s3_come_with_presigned_urls_of_the_configured_lifetime(env, monkeypatch, s3_server):
    monkeypatch.setenv("TAILORSET_S3_URL_LIFETIME_SECONDS", "600")
    with TestClient(create_app(Settings())) as client:
        api = Api(client, create_token("acme"))
        image = api.upload(api.dataset()["id"], "astronaut.png")
    assert image["image_url"].startswith(f"{s3_server.endpoint}/tailorset/{env['TAILORSET_S3_PREFIX']}images/")
    original = httpx.get(image["image_url"])  # from the bucket itself, no api_token
    assert original.status_code == 200 and original.headers["content-type"] == "image/png"
    assert original.content == photo("astronaut.png")
    thumbnail = httpx.get(image["thumbnail_url"])
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 256
    assert 600 < int(parse_qs(urlsplit(image["image_url"]).query)["X-Amz-Expires"][0]) <= 660
    assert httpx.get(image["image_url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403


def test_multipart_upload_for_curl_users(api):
    dataset = api.dataset()
    response = api.post(
        f"/tailored-gen/datasets/{dataset['id']}/images",
        files={"file": ("../../etc/chelsea.png", photo("chelsea.png"), "image/png")},
        data={"increase_resolution": "true"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["image_name"] == "chelsea.png"  # a name, never a path
    assert "cat" in response.json()["caption"]


@pytest.fixture
def photo_server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(PHOTOS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_upload_from_image_url(env, photo_server):
    settings = Settings(allow_private_image_urls=True)
    with TestClient(create_app(settings)) as client:
        api = Api(client, create_token("acme"))
        dataset = api.dataset()
        url = f"{photo_server}/chelsea.png"
        response = api.post(f"/tailored-gen/datasets/{dataset['id']}/images", json={"image_url": url})
        assert response.status_code == 201, response.text
        assert response.json()["image_name"] == "chelsea.png"
        listed = api.get(f"/tailored-gen/datasets/{dataset['id']}").json()["images"]
        assert listed[0]["upload_source_url"] == url
        missing = api.post(
            f"/tailored-gen/datasets/{dataset['id']}/images", json={"image_url": f"{photo_server}/nope.png"}
        )
        assert missing.status_code == 422 and "HTTP 404" in missing.json()["error"]


def test_image_url_may_not_reach_private_addresses(api, photo_server):
    dataset = api.dataset()
    # Metadata and other private addresses are refused by the classifier (test_hostile_input.py), never connected to.
    for url in (f"{photo_server}/chelsea.png", "file:///etc/passwd"):
        response = api.post(f"/tailored-gen/datasets/{dataset['id']}/images", json={"image_url": url})
        assert response.status_code == 422, url
    assert api.get(f"/tailored-gen/datasets/{dataset['id']}").json()["images_count"] == 0


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"file": b64(encoded((300, 300), "GIF"))}, 415, "is a GIF image; upload a JPEG, PNG or WebP."),
        ({"file": b64(encoded((300, 300), "BMP")), "image_name": "x.png"}, 415, "is a BMP image; upload a JPEG"),
        ({"file": b64(encoded((300, 300), "TIFF"))}, 415, "is a TIFF image; upload a JPEG, PNG or WebP."),
        ({"file": b64(b"just some text, not an image")}, 415, "is not a JPEG, PNG or WebP image."),
        ({"file": b64(encoded((200, 600), "PNG"))}, 412, "is 200×600 pixels; both sides must be at least 256"),
        ({"file": b64(encoded((512, 512), "JPEG")), "increase_resolution": False}, 412, "at least 1024 pixels"),
        ({"file": "not base64!"}, 400, "file is not valid base64."),
        ({"file": b64(photo("coffee.png")), "image_url": "http://x.org/a.png"}, 400, "either file or image_url"),
        ({}, 400, "Provide the image as file"),
        ({"file": 5}, 400, "file must be a valid string."),
        ({"file": b64(photo("chelsea.png")[:60_000])}, 400, "could not be decoded"),
    ],
)
@every_storage
def test_bad_uploads_are_refused_and_leave_nothing(api, settings, body, status, message):
    dataset = api.dataset()
    before = stored_keys(settings)
    response = api.post(f"/tailored-gen/datasets/{dataset['id']}/images", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert api.get(f"/tailored-gen/datasets/{dataset['id']}").json()["images_count"] == 0
    assert stored_keys(settings) == before


def test_webp_and_transparent_png_are_accepted(api):
    dataset = api.dataset()
    for data in (encoded((400, 300), "WEBP"), encoded((300, 300), "PNG", "RGBA")):
        response = api.post(f"/tailored-gen/datasets/{dataset['id']}/images", json={"file": b64(data)})
        assert response.status_code == 201, response.text


def test_size_limits(env, monkeypatch):
    monkeypatch.setenv("TAILORSET_MAX_UPLOAD_BYTES", "100000")
    monkeypatch.setenv("TAILORSET_MAX_IMAGE_PIXELS", "1000000")
    with TestClient(create_app(Settings())) as client:
        api = Api(client, create_token("acme"))
        dataset = api.dataset()
        url = f"/tailored-gen/datasets/{dataset['id']}/images"
        response = api.post(url, json={"file": b64(photo("chelsea.png"))})
        assert response.status_code == 413 and "limit of 100,000 bytes" in response.json()["error"]
        # Under the byte limit once decoded from base64, over it as an image file.
        response = api.post(url, json={"file": b64(encoded((300, 300), "PNG", "RGB") + b"\0" * 100_001)})
        assert response.status_code == 413 and "the limit is 100,000 bytes" in response.json()["error"]
        bomb = encoded((1100, 1000), "PNG", "1")  # small file, big image
        assert len(bomb) < 100_000
        response = api.post(url, json={"file": b64(bomb)})
        assert response.status_code == 413 and "1100×1000 pixels" in response.json()["error"]


def test_image_limit_per_dataset(env, monkeypatch):
    monkeypatch.setenv("TAILORSET_MAX_IMAGES_PER_DATASET", "2")
    with TestClient(create_app(Settings())) as client:
        api = Api(client, create_token("acme"))
        dataset = api.dataset()
        api.upload(dataset["id"])
        api.upload(dataset["id"])
        response = api.post(f"/tailored-gen/datasets/{dataset['id']}/images", json={"file": b64(photo("coffee.png"))})
        assert response.status_code == 409 and "already holds 2 images" in response.json()["error"]


def test_advanced_datasets_take_no_single_uploads(api):
    dataset = api.dataset(upload_type="advanced")
    response = api.post(f"/tailored-gen/datasets/{dataset['id']}/images", json={"file": b64(photo("coffee.png"))})
    assert response.status_code == 409 and "bulk upload" in response.json()["error"]


@every_storage
def test_list_get_delete(api, client, settings):
    dataset = api.dataset()
    first, second = api.upload(dataset["id"], "chelsea.png"), api.upload(dataset["id"], "coffee.png")
    url = f"/tailored-gen/datasets/{dataset['id']}/images"
    assert api.get(url).json() == [first, second]
    assert api.get(f"{url}/{second['id']}").json() == second
    assert api.delete(f"{url}/{first['id']}").status_code == 204
    assert api.get(url).json() == [second]
    assert api.get(f"{url}/{first['id']}").status_code == 410
    assert api.delete(f"{url}/{first['id']}").status_code == 410
    assert download(client, first["image_url"]).status_code == 404  # its files are gone
    assert len(stored_keys(settings)) == 2
    assert api.get(f"{url}/424242").status_code == 404
