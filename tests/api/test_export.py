"""GET …/export?format=kohya|hf|jsonl|ai-toolkit|fibo: a dataset as a ZIP a trainer reads, streamed."""

from __future__ import annotations

import io
import json
import unicodedata
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from tailorset.api import transfer
from tests.support import bulk_upload, export, kohya_read, photo, wait_for_bulk_upload, zip_of


def images_of(api, dataset_id: int) -> list[dict]:
    return api.get(f"/tailored-gen/datasets/{dataset_id}/images").json()


@pytest.fixture
def dataset(api) -> dict:
    """Names that collide (also ignoring case) and a name no filesystem takes; captions from .txt files
    (the captioner is not what is tested here), and one edited by hand."""
    dataset = api.dataset()
    assert api.put(f"/tailored-gen/datasets/{dataset['id']}", json={"caption_prefix": "sks style"}).status_code == 200
    files = {}
    for photo_name, image_name in (
        ("chelsea.png", "a/chelsea.png"), ("coffee.png", "b/chelsea.png"), ("camera.png", "Chelsea.PNG"),
        ("rocket.jpg", "we:ird?name*.jpg"), ("astronaut.png", "astronaut.png"),
    ):  # fmt: skip
        files[image_name] = photo(photo_name)
        files[image_name.rsplit(".", 1)[0] + ".txt"] = f"sks style, {photo_name}"
    bulk_upload(api, dataset["id"], zip_of(files))
    assert wait_for_bulk_upload(api, dataset["id"])["done"] == 5
    first = images_of(api, dataset["id"])[0]
    api.put(f"/tailored-gen/datasets/{dataset['id']}/images/{first['id']}", json={"caption": "sks style, by hand"})
    return dataset


def test_kohya_is_what_sd_scripts_reads(api, client, dataset, tmp_path):
    export(api, dataset["id"], "kohya").extractall(tmp_path / "train")
    # --train_data_dir wants folders named <repeats>_<class tokens>; the tokens are the prefix.
    assert [p.name for p in (tmp_path / "train").iterdir()] == ["1_sks style"]
    read = kohya_read(tmp_path / "train" / "1_sks style")
    images = images_of(api, dataset["id"])
    ids = [image["id"] for image in images]
    assert sorted(read) == sorted(["chelsea", f"chelsea_{ids[1]}", f"Chelsea_{ids[2]}", "we_ird_name_", "astronaut"])
    by_caption = {caption: path for path, caption in read.values()}
    assert len(by_caption) == len(images)  # each image beside its own caption
    for image in images:
        assert by_caption[image["caption"]].read_bytes() == client.get(image["image_url"]).content
    assert read["chelsea"][1] == "sks style, by hand" and read["we_ird_name_"][0].suffix == ".jpg"


def test_hf_loads_as_an_imagefolder(api, client, dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    export(api, dataset["id"], "hf").extractall(tmp_path / "export")
    loaded = load_dataset("imagefolder", data_dir=str(tmp_path / "export"))
    assert list(loaded) == ["train"] and loaded["train"].column_names == ["image", "text", "caption_source"]
    rows = sorted(loaded["train"], key=lambda row: row["text"])
    images = sorted(images_of(api, dataset["id"]), key=lambda image: image["caption"])
    assert [(row["text"], row["caption_source"]) for row in rows] == [
        (image["caption"], image["caption_source"]) for image in images
    ]
    for row, image in zip(rows, images, strict=True):
        original = client.get(image["image_url"]).content
        assert row["image"].size == Image.open(io.BytesIO(original)).size


def test_jsonl_carries_every_field(api, client, dataset):
    archive = export(api, dataset["id"], "jsonl")
    records = [json.loads(line) for line in archive.read("dataset.jsonl").decode().splitlines()]
    images = images_of(api, dataset["id"])
    assert [r["id"] for r in records] == [i["id"] for i in images]
    for record, image in zip(records, images, strict=True):
        assert {k: record[k] for k in ("image_name", "caption", "caption_source")} == {
            k: image[k] for k in ("image_name", "caption", "caption_source")
        }
        assert archive.read(record["file_name"]) == client.get(image["image_url"]).content
        assert record["file_name"].startswith("images/") and len(record["sha256"]) == 64
    assert sorted(archive.namelist()) == sorted(["dataset.jsonl", *(r["file_name"] for r in records)])


def test_fibo_captions_are_their_json(api):
    dataset = api.dataset(training_version="fibo")
    for name in ("coffee.png", "chelsea.png"):
        api.upload(dataset["id"], name)
    images = images_of(api, dataset["id"])
    records = [json.loads(line) for line in export(api, dataset["id"], "jsonl").read("dataset.jsonl").splitlines()]
    assert [r["caption"] for r in records] == [json.loads(i["caption"]) for i in images]  # objects, not strings
    kohya = export(api, dataset["id"], "kohya")
    [folder] = {Path(name).parts[0] for name in kohya.namelist()}
    assert folder == "1_Set"  # FIBO datasets have no prefix: the dataset's name
    assert sorted(kohya.read(f"{folder}/{Path(i['image_name']).stem}.txt").decode() for i in images) == sorted(
        i["caption"] for i in images
    )
    hf = [json.loads(line) for line in export(api, dataset["id"], "hf").read("train/metadata.jsonl").splitlines()]
    assert [json.loads(r["text"]) for r in hf] == [json.loads(i["caption"]) for i in images]


@pytest.mark.parametrize("format", ["kohya", "ai-toolkit", "hf"])
def test_an_export_imports_back_as_it_was(api, client, dataset, format):
    """Round trip: the export, bulk-uploaded into a new dataset, gives the same files and captions."""
    archive = api.get(f"/tailored-gen/datasets/{dataset['id']}/export", params={"format": format}).content
    copy = api.dataset()
    assert bulk_upload(api, copy["id"], archive).status_code == 202
    status = wait_for_bulk_upload(api, copy["id"])
    originals = images_of(api, dataset["id"])
    assert (status["done"], status["skipped"], status["failed"]) == (len(originals), 0, 0)
    imported = images_of(api, copy["id"])
    assert all(i["caption_source"] == "manual" for i in imported)
    assert {i["caption"] for i in imported} == {i["caption"] for i in originals}
    contents = {client.get(i["image_url"]).content for i in originals}
    assert {client.get(i["image_url"]).content for i in imported} == contents


def test_export_errors(api, other_api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}/export"
    for response, code, message in (
        (api.get(url), 400, "format is required."),
        (
            api.get(url, params={"format": "coco"}),
            400,
            "format must be 'kohya', 'hf', 'jsonl', 'ai-toolkit' or 'fibo'.",
        ),
        (other_api.get(url, params={"format": "kohya"}), 404, f"Dataset {dataset['id']} not found."),
        (api.get("/tailored-gen/datasets/999/export", params={"format": "hf"}), 404, "Dataset 999 not found."),
    ):
        assert (response.status_code, response.json()) == (code, {"error": message})
    empty = api.dataset()
    assert export(api, empty["id"], "kohya").namelist() == []
    assert api.delete(f"/tailored-gen/datasets/{empty['id']}").status_code == 204
    response = api.get(f"/tailored-gen/datasets/{empty['id']}/export", params={"format": "kohya"})
    assert response.status_code == 410


def test_download_dataset_hands_out_signed_expiring_urls(api, other_api, client, dataset, monkeypatch):
    """GET /datasets/{id}/download (Bria's path, outside /tailored-gen; under /v1 and /v2 too)."""
    urls = api.get(f"/datasets/{dataset['id']}/download").json()
    assert set(urls) == {"download_url", "captions_url"}
    assert api.get(f"/v2/datasets/{dataset['id']}/download").status_code == 200
    headers_free = client.get(urls["download_url"].replace(str(client.base_url), ""), headers={"api_token": ""})
    assert headers_free.status_code == 200 and headers_free.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(headers_free.content))
    expected = [json.loads(line) for line in export(api, dataset["id"], "jsonl").read("dataset.jsonl").splitlines()]
    assert [json.loads(line) for line in archive.read("dataset.jsonl").splitlines()] == expected
    captions = client.get(urls["captions_url"])
    assert captions.status_code == 200
    lines = [json.loads(line) for line in captions.text.splitlines()]
    assert lines == [{k: r[k] for k in ("file_name", "caption", "caption_source")} for r in expected]
    assert all(name in archive.namelist() for name in (line["file_name"] for line in lines))

    kohya = api.get(f"/tailored-gen/datasets/{dataset['id']}/download", params={"format": "kohya"}).json()
    assert client.get(kohya["download_url"]).content == api.get(
        f"/tailored-gen/datasets/{dataset['id']}/export", params={"format": "kohya"}
    ).content  # fmt: skip
    assert api.get(f"/datasets/{dataset['id']}/download", params={"format": "fibo"}).status_code == 400

    tampered = urls["captions_url"].replace(f"datasets/{dataset['id']}/", "datasets/999/")
    assert client.get(urls["download_url"].replace("/jsonl.zip", "/kohya.zip")).status_code == 404
    assert client.get(tampered).status_code == 404
    assert client.get(urls["captions_url"].replace("sig=", "sig=0")).status_code == 404
    assert other_api.get(f"/datasets/{dataset['id']}/download").status_code == 404
    monkeypatch.setattr(transfer, "time", SimpleNamespace(time=lambda: 2e9))  # long after the URLs expired
    response = client.get(urls["download_url"])
    assert response.status_code == 404 and "expired" in response.json()["error"]


def test_ai_toolkit_is_a_flat_folder_of_images_and_txt(api, dataset):
    archive = export(api, dataset["id"], "ai-toolkit")
    assert all("/" not in name for name in archive.namelist())  # no <repeats>_<tokens> folder
    images = {name for name in archive.namelist() if not name.endswith(".txt")}
    assert {name.rsplit(".", 1)[0] + ".txt" for name in images} == set(archive.namelist()) - images
    assert sorted(archive.read(n).decode() for n in archive.namelist() if n.endswith(".txt")) == sorted(
        i["caption"] for i in images_of(api, dataset["id"])
    )


@pytest.fixture
def fibo_dataset(api) -> dict:
    dataset = api.dataset(training_version="fibo")
    for name in ("coffee.png", "chelsea.png", "astronaut.png"):
        api.upload(dataset["id"], name)
    first = images_of(api, dataset["id"])[0]
    edited = {**json.loads(first["caption"]), "context": 'An "espresso", served, with commas\nand a newline.'}
    url = f"/tailored-gen/datasets/{dataset['id']}/images/{first['id']}"
    assert api.put(url, json={"caption": json.dumps(edited)}).status_code == 200
    return dataset


def test_fibo_is_read_as_bria_fine_tuning_reads_it(api, client, fibo_dataset, tmp_path, monkeypatch):
    """src/fine_tuning/fine_tune_fibo.py in Bria's FIBO repository: `load_dataset(--dataset_name)` on the folder
    (imagefolder: its images and metadata.csv), the `image` and `caption` columns, then `json.loads` per caption."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import load_dataset

    archive = export(api, fibo_dataset["id"], "fibo")
    assert "metadata.csv" in archive.namelist() and all("/" not in name for name in archive.namelist())
    archive.extractall(tmp_path / "fibo")
    train = load_dataset(str(tmp_path / "fibo"))["train"]
    assert train.column_names == ["image", "caption"]
    images = images_of(api, fibo_dataset["id"])
    assert [json.loads(c) for c in train["caption"]] == [json.loads(i["caption"]) for i in images]
    assert sorted(image.size for image in train["image"]) == sorted(
        Image.open(io.BytesIO(client.get(i["image_url"]).content)).size for i in images
    )


def test_fibo_round_trip_and_refusals(api, client, fibo_dataset):
    archive = api.get(f"/tailored-gen/datasets/{fibo_dataset['id']}/export", params={"format": "fibo"}).content
    copy = api.dataset(training_version="fibo")
    assert bulk_upload(api, copy["id"], archive).status_code == 202
    status = wait_for_bulk_upload(api, copy["id"])
    assert (status["done"], status["failed"], status["uncaptioned_images"]) == (3, 0, [])
    originals, imported = images_of(api, fibo_dataset["id"]), images_of(api, copy["id"])
    assert [i["caption"] for i in imported] == [i["caption"] for i in originals]
    assert [client.get(i["image_url"]).content for i in imported] == [
        client.get(i["image_url"]).content for i in originals
    ]
    legacy = api.dataset()
    response = api.get(f"/tailored-gen/datasets/{legacy['id']}/export", params={"format": "fibo"})
    assert response.status_code == 400 and response.json()["error"].startswith("format fibo is for FIBO datasets")


def _portable(component: str) -> bool:
    """A path component Windows, macOS and Linux all store and show as it is."""
    device = component.split(".")[0].rstrip(" ").upper()
    reserved = {"CON", "PRN", "AUX", "NUL"} | {f"{d}{n}" for d in ("COM", "LPT") for n in range(1, 10)}
    invisible = any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in component)
    return (
        device not in reserved and not invisible and not any(c in '<>:"/\\|?*' for c in component)
        and component.strip(" .") == component and 0 < len(component.encode()) <= 255
    )  # fmt: skip


def test_every_name_in_every_export_is_portable(api, client):
    """Device names (any case, any extension), a right-to-left override hiding an extension, trailing
    dots and spaces, reserved characters and over-long names: none reaches an export as given."""
    dataset = api.dataset()
    url = f"/tailored-gen/datasets/{dataset['id']}"
    assert api.put(url, json={"caption_prefix": "\u202eevil\u200b style."}).status_code == 200
    names = [
        "CON.png", "aux.txt", "Com1.tar.gz", "LPT9 .jpg", "nul", "photo\u202egnp.exe", "dots and spaces. . ",
        'a<b>c:"d|e?f*', "é" * 200,
    ]  # fmt: skip
    photos = ["chelsea.png", "coffee.png", "astronaut.png", "camera.png", "rocket.jpg", "motorcycle_left.png",
              "motorcycle_right.png", "coins.png", "horse.png"]  # fmt: skip
    for name, picture in zip(names, photos, strict=True):
        api.upload(dataset["id"], picture, image_name=name)
    for format in ("kohya", "hf", "jsonl", "ai-toolkit"):
        listed = export(api, dataset["id"], format).namelist()
        assert len(listed) >= len(names), (format, listed)
        unsafe = [path for path in listed if not all(_portable(part) for part in path.split("/"))]
        assert unsafe == [], (format, unsafe)
    kohya = export(api, dataset["id"], "kohya").namelist()
    assert {path.split("/")[0] for path in kohya} == {"1_evil style"}  # invisible characters are dropped
    assert {"1_evil style/CON_.png", "1_evil style/aux_.txt.txt", "1_evil style/photognp.exe.txt"} <= set(kohya)
    captions = api.get(f"/datasets/{dataset['id']}/download").json()["captions_url"]
    lines = client.get(captions).text.splitlines()
    assert all(_portable(part) for line in lines for part in json.loads(line)["file_name"].split("/"))
