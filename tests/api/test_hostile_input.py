"""Hostile input: image_url fetches that try to reach inside the network, stall or flood; files that
lie about what they are; names that try to be paths; bodies of the wrong types or sizes. Each is
refused with a 4xx that says why, and nothing is stored."""

import gzip
import http.server
import ipaddress
import re
import threading
import time
import zlib

import pytest
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.fetch import is_allowed
from tests.support import Api, b64, create_token, encoded, photo, stored_files

CHELSEA = photo("chelsea.png")


class Origin(http.server.BaseHTTPRequestHandler):
    """An image host with a few bad habits; `hits` records every path it was asked for."""

    redirect_to = ""

    def do_GET(self):
        self.server.hits.append(self.path)
        if self.path == "/chelsea.png":
            self._send(CHELSEA, {"Content-Length": str(len(CHELSEA))})
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.end_headers()
        elif self.path == "/slow":  # a byte every 0.2 s: no single read times out, the whole fetch must
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        elif self.path == "/big":  # no Content-Length: only counting the bytes can stop it
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"\0" * 65536)
        elif self.path == "/big-declared":
            self._send(b"\0" * 2_000_000, {"Content-Length": "2000000"})
        elif self.path == "/gzip":  # 10 MB of zeros in 10 kB
            self._send(gzip.compress(b"\0" * 10_000_000), {"Content-Encoding": "gzip"})

    def _send(self, body: bytes, headers: dict[str, str]):
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _origin(address: str) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((address, 0), Origin)
    server.hits, server.daemon_threads = [], True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def origins():
    """`allowed` on 127.0.0.2, a network the operator allowed; `inside` on 127.0.0.1, which stays private."""
    allowed, inside = _origin("127.0.0.2"), _origin("127.0.0.1")
    allowed.redirect_to = f"http://localhost:{inside.server_address[1]}/chelsea.png"
    yield f"http://127.0.0.2:{allowed.server_address[1]}", inside
    allowed.shutdown()
    inside.shutdown()


@pytest.fixture
def fetching(env, monkeypatch) -> Api:
    monkeypatch.setenv("TAILORSET_IMAGE_URL_ALLOWED_NETWORKS", "127.0.0.2/32")
    monkeypatch.setenv("TAILORSET_FETCH_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("TAILORSET_MAX_UPLOAD_BYTES", "1000000")
    with TestClient(create_app(Settings())) as client:
        yield Api(client, create_token("acme"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the network policy is all that matters
def test_image_url_refusals(fetching, origins, settings):
    allowed, inside = origins
    port = inside.server_address[1]
    url = f"/tailored-gen/datasets/{fetching.dataset()['id']}/images"

    def upload(image_url: str):
        return fetching.post(url, json={"image_url": image_url})

    assert upload(f"{allowed}/chelsea.png").status_code == 201  # the allowed network is reachable
    cases = [
        # A host name is judged by the addresses it resolves to, not by how it is spelled.
        (f"http://localhost:{port}/chelsea.png", 422, "'localhost' resolves to a private address"),
        (f"http://[::ffff:127.0.0.1]:{port}/chelsea.png", 422, "resolves to a private address"),
        # A URL that cannot be parsed, or whose host cannot be encoded, is the client's mistake: 400.
        ("http://[::1", 400, "image_url is not a valid URL: its host cannot be parsed."),
        ("http://ß" + "a" * 70, 400, "image_url has a host name that is not a valid domain name."),
        # Every redirect is checked again: the allowed host cannot bounce the fetch inside.
        (f"{allowed}/redirect", 422, "'localhost' resolves to a private address"),
        (f"{allowed}/slow", 422, "did not answer within 1 seconds"),
        (f"{allowed}/big", 413, "larger than the limit of 1,000,000 bytes"),
        (f"{allowed}/big-declared", 413, "is 2,000,000 bytes; the limit is 1,000,000 bytes"),
        (f"{allowed}/gzip", 422, "Content-Encoding gzip"),
        ("ftp://example.org/a.png", 422, "absolute http or https URL"),
    ]
    for image_url, status, message in cases:
        started = time.monotonic()
        response = upload(image_url)
        assert (response.status_code, message in response.json()["error"]) == (status, True), (image_url, response)
        assert time.monotonic() - started < 5, image_url
    assert inside.hits == []  # nothing ever reached the private server
    assert fetching.get(url).json().__len__() == 1
    assert len(stored_files(settings)) == 2  # the one good upload's original and thumbnail


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True), ("2606:2800:220:1::", True), ("127.0.0.1", False), ("10.1.2.3", False),
        ("169.254.169.254", False), ("100.100.100.200", False), ("0.0.0.0", False), ("::1", False),
        ("fd00:ec2::254", False), ("::ffff:10.0.0.1", False), ("64:ff9b::a00:1", False), ("2002:a00:1::", False),
        # IPv4-compatible, SIIT and NAT64 forms are judged by the IPv4 address they embed (Python 3.11's
        # is_global passes all four); NAT64's local-use 64:ff9b:1::/48 is never public.
        ("::127.0.0.1", False), ("::169.254.169.254", False), ("::ffff:0:a9fe:a9fe", False),
        ("64:ff9b:1::7f00:1", False), ("64:ff9b:1::5db8:d822", False), ("64:ff9b::5db8:d822", True),
    ],
)  # fmt: skip
def test_addresses_that_smuggle_a_private_one_are_refused(address, allowed):
    assert is_allowed(ipaddress.ip_address(address)) is allowed


def test_decompression_bombs_are_413(api):
    # A valid PNG header claiming 30000×30000 pixels: Pillow refuses to decode it, and so do we.
    png = encoded((1, 1), "PNG")
    header = (30000).to_bytes(4, "big") * 2 + png[24:29]
    bomb = png[:16] + header + zlib.crc32(b"IHDR" + header).to_bytes(4, "big") + png[33:]
    url = f"/tailored-gen/datasets/{api.dataset()['id']}/images"
    response = api.post(url, json={"file": b64(bomb)})
    assert response.status_code == 413, response.text
    assert "pixels" in response.json()["error"]


def test_bodies_are_capped_while_they_stream(env, monkeypatch):
    monkeypatch.setenv("TAILORSET_MAX_UPLOAD_BYTES", "100000")
    with TestClient(create_app(Settings())) as client:
        api = Api(client, create_token("acme"))
        url = f"/tailored-gen/datasets/{api.dataset()['id']}/images"

        def chunks(total: int):  # a chunked body: no Content-Length to refuse it by
            yield b'{"file": "'
            for _ in range(total // 8192):
                yield b"A" * 8192
            yield b'"}'

        headers = {"Content-Type": "application/json"}
        response = api.post(url, content=chunks(5_000_000), headers=headers)
        assert response.status_code == 413, response.text
        assert response.json() == {"error": "The request body is larger than the upload limit of 100,000 bytes."}
        caption = api.put(f"{url}/1", content=chunks(2_000_000), headers=headers)
        assert caption.status_code == 413 and "limit of 1,048,576 bytes" in caption.json()["error"]


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/absolute/cat.png", "cat.png"),
        ("..", None),
        ("cat\r\n.png", "cat.png"),
        ("  ", None),
    ],
)
def test_image_name_is_never_a_path(api, settings, name, stored):
    dataset = api.dataset()
    image = api.post(
        f"/tailored-gen/datasets/{dataset['id']}/images", json={"file": b64(CHELSEA), "image_name": name}
    ).json()
    assert image["image_name"] == (stored or f"{image['image_name'][:16]}.png")
    assert "/" not in image["image_name"] and "\\" not in image["image_name"]
    # Files are named by the service, whatever the image is called.
    assert all(re.fullmatch(r"[0-9a-f]{32}\.(png|jpg)", key.rsplit("/", 1)[1]) for key in stored_files(settings))


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("post", "/tailored-gen/projects", {"project_name": 5, "ip_medium": "photography", "ip_type": "other"},
         "project_name must be a valid string."),
        ("post", "/tailored-gen/projects", {"project_name": "x", "ip_medium": ["photography"], "ip_type": "other"},
         "ip_medium must be 'photography' or 'illustration'."),
        ("post", "/tailored-gen/datasets", {"project_id": "1", "name": "x"}, "project_id must be a valid integer."),
        ("post", "/tailored-gen/datasets", {"project_id": 2**70, "name": "x"}, "project_id must be less than"),
        ("put", "/tailored-gen/datasets/{dataset}", {"status": 1}, "status must be 'draft' or 'completed'."),
        ("put", "/tailored-gen/datasets/{dataset}", {"name": {"a": 1}}, "name must be a valid string."),
        ("put", "/tailored-gen/datasets/{dataset}/images", {"include_manual": "yes"},
         "include_manual must be a valid boolean."),
        ("post", "/tailored-gen/datasets/{dataset}/captions/replace", {"find": 3}, "find must be a valid string."),
        ("post", "/tailored-gen/datasets/{dataset}/captions/replace", {"find": "a", "image_ids": ["x"]},
         "image_ids.0 must be a valid integer."),
        ("post", "/tailored-gen/captions/validate", {"caption": None}, "caption must be a valid string."),
        ("post", "/tailored-gen/generate_prefix", {"images": "abc", "ip_type": "other", "ip_medium": "photography"},
         "images must be a valid list."),
        ("put", "/tailored-gen/datasets/{dataset}", [1, 2], "The request body must be a JSON object."),
        ("get", f"/tailored-gen/datasets/{2**64}", None, "dataset_id must be less than or equal to"),
        ("get", "/tailored-gen/datasets/0", None, "dataset_id must be greater than or equal to 1."),
        ("get", "/tailored-gen/datasets/{dataset}/images?caption_contains=a%00b", None,
         "caption_contains must not contain NUL"),
        ("get", "/tailored-gen/datasets/{dataset}?max_images=lots", None, "max_images must be a valid integer"),
    ],
)  # fmt: skip
def test_wrong_types_are_400_naming_the_field(api, method, path, body, message):
    dataset = api.dataset()
    before = api.get(f"/tailored-gen/datasets/{dataset['id']}").json()
    response = getattr(api, method)(path.format(dataset=dataset["id"]), **({"json": body} if body else {}))
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(message), response.json()
    assert api.get(f"/tailored-gen/datasets/{dataset['id']}").json() == before


def test_a_signature_of_any_characters_is_404(api, client):
    image = api.upload(api.dataset()["id"])
    response = client.get(image["image_url"].split("?")[0], params={"sig": "é" * 32})
    assert response.status_code == 404 and response.json() == {"error": "File not found."}


def test_a_wrong_method_is_405_naming_every_method_the_path_takes(api):
    response = api.patch("/tailored-gen/datasets/1")
    assert response.status_code == 405 and response.headers["Allow"] == "GET, PUT, DELETE"
    assert response.json() == {"error": "This endpoint does not accept that HTTP method."}
