"""No request stalls the server or bloats it: bounded answers and captions, CPU work off the event loop, pixel
and body caps checked before the work, authentication before the body, characters a caption or a log line
must not hold. Each is a 4xx that says why."""

import functools
import logging
import struct
import threading
import time
import zlib

import pytest

from tailorset.observability import configure_logging
from tests.support import b64, bulk_upload, wait_for_bulk_upload, zip_of

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def black_png(side: int) -> bytes:
    """An RGB PNG of side×side black pixels: a few hundred KB that decode to 3·side² bytes."""
    compressor, row = zlib.compressobj(9), b"\0" * (1 + 3 * side)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def while_running(request, probe, *, after: float = 0.2) -> tuple[object, float]:
    """`request()` in a thread; `after` seconds in, the time `probe()` takes. Returns request()'s answer and it."""
    probe()  # once before: FastAPI prepares a route the first time it is matched
    answer = {}
    worker = threading.Thread(target=lambda: answer.update(response=request()))
    worker.start()
    time.sleep(after)
    started = time.monotonic()
    probe()
    took = time.monotonic() - started
    worker.join(60)
    return answer["response"], took


# --- 1. memory from one request ---------------------------------------------------------------


def test_a_replace_cannot_multiply_a_caption_into_megabytes(api):
    """The issue's request: two 20,000-character captions, find "a", a 5,000-character replace (200 MB before)."""
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}"
    for _ in range(2):
        image = api.upload(dataset["id"])
        assert api.put(f"{url}/images/{image['id']}", json={"caption": "a" * 20_000}).status_code == 200
    body = {"find": "a", "replace": "x" * 5000}
    response = api.post(f"{url}/captions/replace", json=body | {"dry_run": True})
    assert response.status_code == 200 and len(response.content) < 100_000, len(response.content)
    assert (response.json()["matched"], response.json()["refused"]) == (2, 2)
    for change in response.json()["changes"]:
        assert change["after"] is None
        assert change["error"] == "the new caption would be over 20,000 characters long."
    response = api.post(f"{url}/captions/replace", json=body)
    assert response.status_code == 400 and response.json()["error"].startswith("Nothing was changed"), response.text
    assert {i["caption"] for i in api.get(f"{url}/images").json()} == {"a" * 20_000}


def test_a_dry_run_is_listed_a_page_at_a_time(api):
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}"
    ids = [api.upload(dataset["id"])["id"] for _ in range(3)]
    body = {"find": "cat", "replace": "kitten", "dry_run": True, "limit": 2}
    first = api.post(f"{url}/captions/replace", json=body).json()
    assert [c["image_id"] for c in first["changes"]] == ids[:2]
    assert (first["matched"], first["next_after"]) == (3, ids[1])
    second = api.post(f"{url}/captions/replace", json=body | {"after": first["next_after"]}).json()
    assert [c["image_id"] for c in second["changes"]] == ids[2:] and second["next_after"] is None
    applied = api.post(f"{url}/captions/replace", json=body | {"dry_run": False}).json()
    assert applied["changed"] == 3 and len(applied["changes"]) == 2
    assert all("kitten" in i["caption"] for i in api.get(f"{url}/images").json())
    assert api.post(f"{url}/captions/replace", json=body | {"limit": 5000}).status_code == 400


# --- 2. CPU work off the event loop -------------------------------------------------------------


def test_a_catastrophic_pattern_is_400_after_its_budget_and_blocks_nobody(api):
    """(a|a)+$ on 30 a's and a "!" backtracks for ever: it is stopped at 2 s, in a worker thread, with no
    transaction open, so the server keeps answering and other captions can be written meanwhile."""
    dataset, other = api.dataset(), api.dataset()
    image, bystander = api.upload(dataset["id"]), api.upload(other["id"])
    url = f"/tailored-gen/datasets/{dataset['id']}"
    assert api.put(f"{url}/images/{image['id']}", json={"caption": "a" * 30 + "!"}).status_code == 200
    timings = {}

    def meanwhile():
        for name, call in (
            ("healthz", lambda: api.get("/healthz")),
            ("write", lambda: api.put(f"/tailored-gen/datasets/{other['id']}/images/{bystander['id']}",
                                      json={"caption": "a cat"})),
        ):  # fmt: skip
            started = time.monotonic()
            assert call().status_code == 200
            timings[name] = time.monotonic() - started

    body = {"find": "(a|a)+$", "replace": "b", "regex": True}
    response, _ = while_running(lambda: api.post(f"{url}/captions/replace", json=body), meanwhile)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "find took longer than 2 s to run; simplify the pattern."
    assert timings["healthz"] < 0.5 and timings["write"] < 1.5, timings


@sqlite_only
def test_an_80_megapixel_png_is_413_from_its_header(api):
    """The issue's 8944×8944 black PNG (a few hundred KB, 240 MB decoded) is refused before decoding, on upload
    and as a sample image for generate_visual_schema."""
    bomb = black_png(8944)
    assert len(bomb) < 1_000_000
    dataset = api.dataset(training_version="fibo")
    started = time.monotonic()
    response = api.post(f"/tailored-gen/datasets/{dataset['id']}/images", json={"file": b64(bomb)})
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "The image is 8944×8944 pixels; the limit is 50,000,000 pixels."
    response = api.post("/tailored-gen/generate_visual_schema", json={"images": [b64(bomb)] * 5})
    assert response.status_code == 413 and "images[0] is 8944×8944 pixels" in response.json()["error"]
    assert time.monotonic() - started < 5


@sqlite_only
def test_an_image_is_decoded_off_the_event_loop(api):
    """A 49-megapixel PNG, under the limit, takes a while to decode and caption: /healthz answers meanwhile."""
    dataset = api.dataset()
    api.upload(dataset["id"])  # the captioner's models are loaded (once per process, not the point here)
    big = b64(black_png(7000))
    upload = functools.partial(api.post, f"/tailored-gen/datasets/{dataset['id']}/images", json={"file": big})
    response, healthz = while_running(upload, lambda: api.get("/healthz"), after=0.3)
    assert response.status_code == 201, response.text
    assert healthz < 0.5, healthz


# --- 4. and 5. characters no caption may hold ---------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body"),
    [("put", '{"caption": "\\ud800x"}'), ("validate", '{"caption": "\\ud800x", "training_version": "max"}')],
)
def test_a_lone_surrogate_is_400(api, route, body):
    dataset = api.dataset()
    image = api.upload(dataset["id"])
    url = f"/tailored-gen/datasets/{dataset['id']}/images/{image['id']}"
    send = api.put if route == "put" else api.post
    response = send(url if route == "put" else "/tailored-gen/captions/validate", content=body,
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 400, response.text
    surrogate = "caption must not contain a lone surrogate (\\ud800), which is not valid Unicode."
    assert response.json()["error"] == surrogate
    assert api.get(url).json()["caption"] == image["caption"]


@pytest.mark.parametrize(
    ("replace", "error"),
    [
        ("\\9", "replace refers to a group find does not have (no such group)."),
        ("\\g<x>", "replace refers to a group find does not have (unknown group)."),
        ("\\x00", "caption must not contain NUL (\\x00) characters."),
        ("\\x1b[31m", "caption must not contain a control character (\\x1b); only tab and newline are allowed."),
    ],
)
def test_a_replacement_that_cannot_be_a_caption_is_400(api, replace, error):
    dataset = api.dataset()
    image = api.upload(dataset["id"])
    url = f"/tailored-gen/datasets/{dataset['id']}"
    response = api.post(f"{url}/captions/replace", json={"find": "(cat)", "replace": replace, "regex": True})
    assert response.status_code == 400, response.text
    assert response.json()["error"].endswith(error), response.json()
    assert api.get(f"{url}/images/{image['id']}").json()["caption"] == image["caption"]


def test_control_characters_are_refused_in_every_caption_write(api):
    dataset = api.dataset()
    image = api.upload(dataset["id"])
    url = f"/tailored-gen/datasets/{dataset['id']}/images/{image['id']}"
    for caption in ("a\x07bell", "a\rcarriage return", "a\x85next line", "a\x7f"):
        response = api.put(url, json={"caption": caption})
        assert response.status_code == 400 and "must not contain a control character" in response.json()["error"]
        lint = api.post("/tailored-gen/captions/validate", json={"caption": caption, "training_version": "max"})
        assert lint.json()["valid"] is False and lint.json()["errors"][0]["rule"] == "control_characters"
    assert api.put(url, json={"caption": "two lines,\n\tand a tab"}).status_code == 200

    # A ZIP's .txt caption: the image is refused, and says why; a Windows line end is a newline.
    archive = zip_of({
        "a.png": black_png(300), "a.txt": "a cat\x00 on a sofa",
        "b.png": black_png(301), "b.txt": "a cat\r\non a sofa\r\n",
    })  # fmt: skip
    assert bulk_upload(api, dataset["id"], archive).status_code == 202
    status = wait_for_bulk_upload(api, dataset["id"])
    nul = "a.txt: caption must not contain NUL (\\x00) characters."
    assert status["failed_images"] == [{"filename": "a.png", "error_code": 400, "error_message": nul}], status
    captions = {i["image_name"]: i["caption"] for i in api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json()}
    assert captions["b.png"] == "a cat\non a sofa"


# --- 7. log lines -----------------------------------------------------------------------------


@sqlite_only
def test_a_path_cannot_forge_a_log_line(client, capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("info", "text")
    try:
        client.get("/healthz%0AFORGED-LINE%1b[2J")
        client.get("/nowhere\u2028FORGED-LINE")
    finally:
        root.handlers[:], root.level = handlers, level
    lines = capsys.readouterr().err.splitlines()
    assert not [line for line in lines if line.startswith("FORGED")], lines
    assert any("GET /healthz\\x0aFORGED-LINE\\x1b[2J 404" in line for line in lines), lines
    assert any("GET /nowhere\\u2028FORGED-LINE 404" in line for line in lines), lines


# --- 8. body limits and order -------------------------------------------------------------------


@sqlite_only
def test_bodies_are_capped_by_route_and_authentication_comes_first(api, client):
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}/images"
    # Regenerate All shares its path with Upload Image, not its limit: its JSON is small.
    big = b'{"include_manual": false, "padding": "' + b"x" * 3_000_000 + b'"}'
    response = api.put(url, content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json() == {"error": "The request body is larger than this endpoint's limit of 1,048,576 bytes."}
    response = api.post(url, json={"file": "!" + "A" * 3_000_000})  # Upload Image's body may be that big
    assert response.status_code == 400 and response.json()["error"] == "file is not valid base64."

    # Without a valid token nothing is parsed: 401, whatever the body is.
    for headers in ({}, {"api_token": "not-a-token"}):
        for body in (b"{not json", b'{"caption": 5}'):
            response = client.put(f"{url}/1", content=body, headers={"Content-Type": "application/json", **headers})
            assert response.status_code == 401, response.text
    response = api.put(f"{url}/1", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "The request body is not valid JSON."


# --- 10. headers ----------------------------------------------------------------------------------


@sqlite_only
def test_every_response_says_nosniff(api, client):
    image = api.upload(api.dataset()["id"])
    for response in (client.get(image["image_url"]), client.get("/healthz"), client.get("/ui/"), api.get("/nope")):
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
    csp = client.get("/ui/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
