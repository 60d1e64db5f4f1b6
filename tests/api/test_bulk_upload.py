"""POST …/images/bulk-upload and GET …/images/bulk-upload/status: a ZIP imported in the background,
hostile ZIPs refused file by file (or as a whole, with a 4xx), never half-imported."""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import struct
import threading
import zipfile
from pathlib import Path

import anyio
import pytest
from PIL import Image
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.services import Services
from tailorset.worker import Worker
from tests.support import (
    Api,
    bulk_upload,
    create_token,
    photo,
    referenced_files,
    stored_files,
    wait_for_bulk_upload,
    wait_until,
    zip_of,
)

EITHER = "Provide the ZIP either as zip_url or as a multipart file, not both and not neither."
FIBO_CAPTION = (Path(__file__).parents[1] / "fibo" / "data" / "product_teapot.json").read_text()


def only_referenced_files_remain(api: Api, client, settings, dataset_id: int) -> bool:
    """Storage holds exactly the dataset's files once the job's ZIP is gone: the job reports "completed" in the
    commit that ends it and removes its ZIP just after, so a test waits for that instead of racing it."""
    return wait_until(
        lambda: set(stored_files(settings)) == referenced_files(api, client, dataset_id),
        why=lambda: set(stored_files(settings)) ^ referenced_files(api, client, dataset_id),
    )


def encoded(size: tuple[int, int], fmt: str = "PNG", color: str = "orange") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def lie_about_size(archive: bytes, name: str, declared: int) -> bytes:
    """The ZIP with `name`'s uncompressed size in the central directory replaced by `declared`."""
    data = bytearray(archive)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack("<H", data[at + 28 : at + 30])[0]
        if data[at + 46 : at + 46 + name_length].decode() == name:
            data[at + 24 : at + 28] = struct.pack("<I", declared)
            return bytes(data)
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} not in the ZIP")


def test_a_zip_is_imported_with_its_captions_and_folders(api, client, settings):
    dataset = api.dataset(training_version="max")
    archive = zip_of({
        "trip/chelsea.png": photo("chelsea.png"),
        "trip/chelsea.txt": "\ufeffsks style, a tabby cat on the sofa  \n",  # a BOM and blanks, as editors leave
        "coffee.png": photo("coffee.png"),
        "__MACOSX/trip/._chelsea.png": b"\x00\x05\x16\x07 resource fork",
        "trip/.DS_Store": b"\x00\x00\x00\x01Bud1",
        "trip/": b"",
    })  # fmt: skip
    response = bulk_upload(api, dataset["id"], archive)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending" and response.json()["failed_images"] == []

    status = wait_for_bulk_upload(api, dataset["id"])
    assert status == {
        "status": "completed", "progress_percentage": 100, "total_processed": 2, "done": 2, "failed": 0,
        "failed_images": [], "total": 2, "skipped": 0, "skipped_images": [], "error": None,
        "uncaptioned_images": [  # the ZIP brings captions, but none for this one: said, not hidden
            {"filename": "coffee.png",
             "reason": "No caption was found for coffee.png, so it was captioned automatically."}
        ],
    }  # fmt: skip
    images = {i["image_name"]: i for i in api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json()}
    assert set(images) == {"trip/chelsea.png", "coffee.png"}
    cat, cup = images["trip/chelsea.png"], images["coffee.png"]
    assert (cat["caption"], cat["caption_source"]) == ("sks style, a tabby cat on the sofa", "manual")
    assert cup["caption_source"] == "automatic" and cup["caption"].startswith("A photo of ")
    assert client.get(cat["image_url"]).content == photo("chelsea.png")  # the very file, not re-encoded
    assert client.get(cup["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    for image, expected in ((cat, "token:"), (cup, "captioner:local for token:")):
        [revision] = api.get(f"/tailored-gen/datasets/{dataset['id']}/images/{image['id']}/captions").json()
        assert revision["actor"].startswith(expected) and revision["job_id"] is not None
    # Nothing but the two images' files is left: the ZIP's parts are gone once the import is done.
    assert only_referenced_files_remain(api, client, settings, dataset["id"])


def test_hostile_files_are_refused_one_by_one(api, client, settings):
    dataset = api.dataset()
    existing = api.upload(dataset["id"], "astronaut.png")
    broken_png = photo("coffee.png")[:2000]
    archive = zip_of([
        ("good.png", photo("chelsea.png")),
        ("../../etc/evil.png", photo("camera.png")),
        ("/absolute.png", photo("camera.png")),
        ("C:\\windows\\evil.png", photo("camera.png")),
        ("twice.png", photo("rocket.jpg")),
        ("twice.png", photo("coins.png")),
        ("again.png", photo("chelsea.png")),  # the same file as good.png
        ("astronaut copy.png", photo("astronaut.png")),  # already in the dataset
        ("notes.md", "# not an image"),
        ("animation.gif", encoded((300, 300), "GIF")),
        ("tiny.png", encoded((100, 100))),
        ("broken.png", broken_png),
        ("lonely.txt", "a caption without its image"),
        ("latin1.png", encoded((300, 300), color="teal")),
        ("latin1.txt", "caf\xe9".encode("latin-1")),
    ])  # fmt: skip
    assert bulk_upload(api, dataset["id"], archive).status_code == 202
    status = wait_for_bulk_upload(api, dataset["id"])
    failed = {f["filename"]: (f["error_code"], f["error_message"]) for f in status["failed_images"]}
    assert failed == {
        "../../etc/evil.png": (400, "'../../etc/evil.png' is not a safe path in a ZIP."),
        "/absolute.png": (400, "'/absolute.png' is not a safe path in a ZIP."),
        "C:\\windows\\evil.png": (400, "'C:\\\\windows\\\\evil.png' is not a safe path in a ZIP."),
        "twice.png": (400, "twice.png appears 2 times in the ZIP."),
        "notes.md": (415, "notes.md is not a JPEG, PNG or WebP image."),
        "animation.gif": (415, "animation.gif is a GIF image; upload a JPEG, PNG or WebP."),
        "tiny.png": (412, "tiny.png is 100×100 pixels; both sides must be at least 256 pixels."),
        "broken.png": failed["broken.png"],
        "lonely.txt": (400, "lonely.txt is a caption file without an image of the same name beside it."),
        "latin1.png": (400, "latin1.txt is not UTF-8 text."),
    }
    assert failed["broken.png"][0] == 400 and failed["broken.png"][1].startswith("broken.png could not be decoded")
    skipped = {s["filename"]: s["reason"] for s in status["skipped_images"]}
    good = next(
        i for i in api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json() if i["image_name"] == "good.png"
    )
    assert skipped == {
        # Whether good.png had been committed by then depends on where a batch ended (a batch lasts about a second).
        "again.png": skipped["again.png"],
        "astronaut copy.png": f"astronaut copy.png is the same file as image {existing['id']} (astronaut.png).",
    }
    assert skipped["again.png"] in (
        "again.png is the same file as good.png in this ZIP.",
        f"again.png is the same file as image {good['id']} (good.png).",
    )
    # Two entries named twice.png count as two files; every file is accounted for.
    assert (status["done"], status["failed"], status["skipped"], status["total"]) == (1, 11, 2, 14)
    assert status["total_processed"] == 14 and status["status"] == "completed"
    names = [i["image_name"] for i in api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json()]
    assert names == ["astronaut.png", "good.png"]
    assert only_referenced_files_remain(api, client, settings, dataset["id"])  # no half-imported file


def test_zip_bombs_and_lying_headers(api, client, settings):
    dataset = api.dataset()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("bomb.png", b"\0" * (30 * 1024 * 1024), zipfile.ZIP_DEFLATED)
        archive.writestr("liar.png", photo("coffee.png"), zipfile.ZIP_DEFLATED)
        archive.writestr("bzip2.png", photo("camera.png"), zipfile.ZIP_BZIP2)  # zipfile unpacks bzip2 unbounded
        archive.writestr("ok.png", photo("chelsea.png"))
    assert len(out.getvalue()) < 1_000_000  # 30 MB of zeros, deflated
    assert bulk_upload(api, dataset["id"], lie_about_size(out.getvalue(), "liar.png", 1000)).status_code == 202
    status = wait_for_bulk_upload(api, dataset["id"])
    failed = {f["filename"]: (f["error_code"], f["error_message"]) for f in status["failed_images"]}
    assert failed["bomb.png"] == (413, f"bomb.png is {30 * 1024 * 1024:,} bytes; the limit is 26,214,400 bytes.")
    assert failed["liar.png"][0] == 400 and "Bad CRC-32" in failed["liar.png"][1]
    assert failed["bzip2.png"] == (
        400,
        "bzip2.png is compressed with method 12; only stored and deflated are accepted.",
    )
    assert status["done"] == 1 and only_referenced_files_remain(api, client, settings, dataset["id"])


@pytest.fixture
def limited(env, monkeypatch) -> None:
    """Small ZIP limits, to show each is refused as a whole, before anything is stored."""
    for name, value in (
        ("MAX_ZIP_ENTRIES", "4"),
        ("MAX_ZIP_UNCOMPRESSED_BYTES", "2000000"),
        ("MAX_ZIP_BYTES", "3000000"),
    ):
        monkeypatch.setenv(f"TAILORSET_{name}", value)


def padded_directory() -> bytes:
    """One small entry whose directory record carries 6 KB of extra fields (a long list of files)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo("a.png")
        info.extra = b"\x99\x99" + struct.pack("<H", 6000) + bytes(6000)
        archive.writestr(info, b"x")
    return out.getvalue()


def test_whole_zip_refusals_are_a_clear_4xx(limited, api, settings):
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}/images/bulk-upload"
    cases = [
        (bulk_upload(api, dataset["id"], b"PK\x03\x04 not really a zip"), 400, "The ZIP is not a valid ZIP archive."),
        (bulk_upload(api, dataset["id"], zip_of({f"{n}.png": b"x" for n in range(5)})), 413,
         "The ZIP holds 5 files; the limit is 4."),
        (bulk_upload(api, dataset["id"], padded_directory()), 413,
         "The ZIP's list of files is 6,055 bytes, too long for a ZIP of images."),
        (bulk_upload(api, dataset["id"], zip_of({"big.png": b"\0" * 2_500_000}, zipfile.ZIP_DEFLATED)), 413,
         "The ZIP unpacks to 2,500,000 bytes; the limit is 2,000,000 bytes."),
        (bulk_upload(api, dataset["id"], zip_of({"noise.bin": bytes(range(256)) * 16_000})), 413,
         "The ZIP is larger than 3,000,000 bytes."),
        (api.post(url, json={}), 400, EITHER),
        (api.post(url, files={"file": ("a.zip", zip_of({}))}, data={"zip_url": "https://example.com/a.zip"}), 400,
         EITHER),
        (api.post(url, json={"zip_url": "https://example.com/a.zip", "automatic_captioning": "no"}), 400,
         "automatic_captioning must be a valid boolean."),
        (api.post(url, files={"file": ("a.zip", zip_of({}))}, data={"automatic_captioning": "maybe"}), 400,
         "automatic_captioning must be a valid boolean."),
        (api.post(url, json={"zip_url": "ftp://example.com/a.zip"}), 422,
         "zip_url must be an absolute http or https URL."),
        (api.post(url, json={"zip_url": "http://[::1"}), 400, "zip_url is not a valid URL: its host cannot be parsed."),
        (api.post(url, json={"zip_url": "http://ß" + "a" * 70}), 400,
         "zip_url has a host name that is not a valid domain name."),
        (api.post(url, json={"zip_url": "http://127.0.0.1:9/a.zip"}), 422,
         "zip_url host '127.0.0.1' resolves to a private address, which is not allowed."),
        (api.post("/tailored-gen/datasets/999/images/bulk-upload", json={"zip_url": "https://x.org/a.zip"}), 404,
         "Dataset 999 not found."),
        (api.get(f"{url}/status"), 404, f"Dataset {dataset['id']} has had no bulk upload."),
    ]  # fmt: skip
    for response, code, message in cases:
        assert (response.status_code, response.json()) == (code, {"error": message})
    # Without a Content-Length (chunked), the body is counted as it arrives.
    boundary = "tailorset-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n'.encode()
    payload = head + bytes(range(256)) * 16_000 + f"\r\n--{boundary}--\r\n".encode()
    chunked = api.post(
        url, content=iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)]),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert "content-length" not in chunked.request.headers
    assert (chunked.status_code, chunked.json()) == (413, {"error": "The ZIP is larger than 3,000,000 bytes."})
    assert stored_files(settings) == []  # refused requests store nothing
    assert api.get(f"/tailored-gen/datasets/{dataset['id']}").json()["images_count"] == 0


def test_state_conflicts(env, monkeypatch):
    """A queued upload (no worker runs here) blocks a second one and completion; a completed or deleted
    dataset takes none, and an upload whose dataset is deleted before it runs is cancelled, its ZIP removed."""
    monkeypatch.setenv("TAILORSET_EMBEDDED_WORKER", "false")
    settings = Settings()
    with TestClient(create_app(settings)) as client:
        api = Api(client, create_token("acme"))
        dataset = api.dataset()
        url = f"/tailored-gen/datasets/{dataset['id']}"
        archive = zip_of({"chelsea.png": photo("chelsea.png")})
        assert bulk_upload(api, dataset["id"], archive).status_code == 202
        assert api.get(f"{url}/images/bulk-upload/status").json()["status"] == "pending"
        response = bulk_upload(api, dataset["id"], archive)
        assert response.status_code == 409 and "already running" in response.json()["error"]
        api.upload(dataset["id"], "coffee.png")
        response = api.put(url, json={"status": "completed"})
        assert response.status_code == 409 and "being imported" in response.json()["error"]
        assert [p for p in stored_files(settings) if p.startswith("imports/")]  # the ZIP waits in storage

        assert api.delete(url).status_code == 204
        anyio.run(_drain, settings)
        assert api.get(f"{url}/images/bulk-upload/status").status_code == 410
        assert not [p for p in stored_files(settings) if p.startswith(("imports/", "images/"))]

        done = api.dataset()
        api.upload(done["id"], "coffee.png")
        assert api.put(f"/tailored-gen/datasets/{done['id']}", json={"status": "completed"}).status_code == 200
        response = bulk_upload(api, done["id"], archive)
        assert response.status_code == 409 and "is completed" in response.json()["error"]
        assert api.post(f"{url}/images/bulk-upload", json={"zip_url": "https://x.org/a.zip"}).status_code == 410


async def _drain(settings: Settings) -> None:
    async with Services.open(settings) as services:
        await Worker(services).run(until_idle=True)


def test_limits_per_dataset_and_advanced_datasets(env, monkeypatch):
    monkeypatch.setenv("TAILORSET_MAX_IMAGES_PER_DATASET", "2")
    with TestClient(create_app(Settings())) as client:
        api = Api(client, create_token("acme"))
        basic = api.dataset()
        names = ("chelsea.png", "coffee.png", "camera.png")
        archive = zip_of({name: photo(name) for name in names} | {name[:-4] + ".txt": "by hand" for name in names})
        bulk_upload(api, basic["id"], archive)
        status = wait_for_bulk_upload(api, basic["id"])
        assert status["done"] == 2 and status["failed_images"] == [
            {"filename": "camera.png", "error_code": 409,
             "error_message": f"Dataset {basic['id']} already holds 2 images, the maximum."},
        ]  # fmt: skip

        advanced = api.dataset(upload_type="advanced")
        response = api.post(f"/tailored-gen/datasets/{advanced['id']}/images", files={"file": photo("chelsea.png")})
        assert response.status_code == 409 and "bulk upload" in response.json()["error"]
        bulk_upload(api, advanced["id"], archive)
        assert wait_for_bulk_upload(api, advanced["id"])["done"] == 3  # 5000 for advanced datasets


def test_captions_are_required_without_automatic_captioning(api):
    dataset = api.dataset()
    archive = zip_of({"chelsea.png": photo("chelsea.png"), "chelsea.txt": "a cat", "coffee.png": photo("coffee.png"),
                      "camera.png": photo("camera.png"), "camera.txt": "  \n"})  # fmt: skip
    bulk_upload(api, dataset["id"], archive, automatic_captioning="false")
    status = wait_for_bulk_upload(api, dataset["id"])
    assert status["done"] == 1
    assert {f["filename"]: f["error_message"] for f in status["failed_images"]} == {
        "coffee.png": "coffee.png has no caption beside it, and automatic_captioning is false.",
        "camera.png": "camera.png has no caption beside it, and automatic_captioning is false.",  # an empty .txt
    }


def test_fibo_captions_from_json_files(api):
    dataset = api.dataset(training_version="fibo")
    sloppy = "```json\n" + FIBO_CAPTION + "\n```"  # fenced, as language models write it
    broken = json.dumps({k: v for k, v in json.loads(FIBO_CAPTION).items() if k != "lighting"})
    archive = zip_of({
        "teapot.png": photo("coffee.png"), "teapot.txt": sloppy,
        "bad.png": photo("chelsea.png"), "bad.txt": broken,
        "auto.png": photo("astronaut.png"),
    })  # fmt: skip
    bulk_upload(api, dataset["id"], archive)
    status = wait_for_bulk_upload(api, dataset["id"])
    assert [f["filename"] for f in status["failed_images"]] == ["bad.png"]
    assert status["failed_images"][0]["error_message"] == "bad.txt: caption.lighting is required."
    images = {i["image_name"]: i for i in api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json()}
    teapot, auto = images["teapot.png"], images["auto.png"]
    assert teapot["caption_source"] == "manual" and json.loads(teapot["caption"]) == json.loads(FIBO_CAPTION)
    assert auto["caption_source"] == "automatic" and json.loads(auto["caption"])["short_description"]


def test_captions_from_caption_sidecars_and_tables(api):
    """.caption beside an image; HF imagefolder's metadata.jsonl (names relative to its folder); FIBO
    fine-tuning's metadata.csv. A sidecar wins over a table; a table naming no image is refused."""
    dataset = api.dataset()
    table = 'file_name,caption\r\nrocket.jpg,"sks style, a rocket, ""lift-off"""\r\ncamera.png,\r\n'
    archive = zip_of({
        "a/chelsea.png": photo("chelsea.png"), "a/chelsea.caption": "sks style, a cat",
        "b/coffee.png": photo("coffee.png"), "b/astronaut.png": photo("astronaut.png"),
        "b/metadata.jsonl": '{"file_name": "coffee.png", "text": "sks style, a cup"}\n'
                            '{"file_name": "astronaut.png", "text": "sks style, a person"}\n',
        "a/metadata.jsonl": '{"file_name": "chelsea.png", "text": "loses to the sidecar"}\n',
        "rocket.jpg": photo("rocket.jpg"), "camera.png": photo("camera.png"), "metadata.csv": table,
        "c/metadata.csv": "file_name,caption\r\nnowhere.png,x\r\n",
    })  # fmt: skip
    bulk_upload(api, dataset["id"], archive)
    status = wait_for_bulk_upload(api, dataset["id"])
    images = {i["image_name"]: i for i in api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json()}
    assert {name: (i["caption"], i["caption_source"]) for name, i in images.items() if name != "camera.png"} == {
        "a/chelsea.png": ("sks style, a cat", "manual"),
        "b/coffee.png": ("sks style, a cup", "manual"),
        "b/astronaut.png": ("sks style, a person", "manual"),
        "rocket.jpg": ('sks style, a rocket, "lift-off"', "manual"),
    }
    assert images["camera.png"]["caption_source"] == "automatic"  # its row has an empty caption
    assert [n["filename"] for n in status["uncaptioned_images"]] == ["camera.png"]
    assert status["failed_images"] == [{
        "filename": "c/metadata.csv", "error_code": 400,
        "error_message": "c/metadata.csv names files that are not images in the ZIP: row 2 ('nowhere.png').",
    }]  # fmt: skip


def test_fibo_captions_from_a_metadata_csv(api):
    dataset = api.dataset(training_version="fibo")
    rows = [("teapot.png", FIBO_CAPTION), ("bad.png", '{"short_description": "no more"}')]
    table = io.StringIO()
    csv.writer(table).writerows([("file_name", "caption"), *rows])
    files = {"teapot.png": photo("coffee.png"), "bad.png": photo("chelsea.png"), "metadata.csv": table.getvalue()}
    archive = zip_of(files)
    bulk_upload(api, dataset["id"], archive)
    status = wait_for_bulk_upload(api, dataset["id"])
    assert [(f["filename"], f["error_message"].split(":")[0]) for f in status["failed_images"]] == [
        ("bad.png", "metadata.csv (the row of bad.png)")
    ]
    [teapot] = api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json()
    assert json.loads(teapot["caption"]) == json.loads(FIBO_CAPTION) and teapot["caption_source"] == "manual"


@pytest.fixture
def zip_server(tmp_path):
    """Serves files from tmp_path over loopback HTTP."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_zip_url(env, zip_server):
    folder, base = zip_server
    (folder / "photos.zip").write_bytes(zip_of({"chelsea.png": photo("chelsea.png"), "chelsea.txt": "a cat"}))
    (folder / "not-a.zip").write_bytes(b"<html>a login page</html>")
    settings = Settings(allow_private_image_urls=True)
    with TestClient(create_app(settings)) as client:
        api = Api(client, create_token("acme"))
        dataset = api.dataset()
        url = f"/tailored-gen/datasets/{dataset['id']}/images/bulk-upload"
        assert api.post(url, json={"zip_url": f"{base}/photos.zip"}).status_code == 202
        assert wait_for_bulk_upload(api, dataset["id"])["done"] == 1
        [image] = api.get(f"/tailored-gen/datasets/{dataset['id']}/images").json()
        assert (image["image_name"], image["caption"], image["caption_source"]) == ("chelsea.png", "a cat", "manual")

        for name, error in (
            ("missing.zip", "zip_url answered HTTP 404, not 200."),
            ("not-a.zip", "The ZIP at zip_url is not a valid ZIP archive."),
        ):
            assert api.post(url, json={"zip_url": f"{base}/{name}"}).status_code == 202
            status = wait_for_bulk_upload(api, dataset["id"])
            assert (status["status"], status["error"], status["done"]) == ("failed", error, 0)
        wait_until(lambda: not [p for p in stored_files(settings) if p.startswith("imports/")], why="ZIPs removed")


def test_bulk_upload_is_not_taken_for_an_image_id(api):
    """…/images/bulk-upload sits beside …/images/{image_id}: a method it does not take is a 405, not a 400
    about an image id."""
    dataset = api.dataset()
    response = api.put(f"/tailored-gen/datasets/{dataset['id']}/images/bulk-upload", json={"caption": "x"})
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert api.get(f"/tailored-gen/datasets/{dataset['id']}/images/bulk-upload").status_code == 405
