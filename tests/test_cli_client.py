"""`tailorset push / pull / caption` and the typed `tailorset.client`, against a real server on loopback."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tailorset.cli import main
from tailorset.client import ApiError, Client
from tailorset.client import Image as ClientImage
from tests.servers import free_port, new_token, serve
from tests.support import create_token, kohya_read, photo

# A client of the HTTP API: the API tests cover both databases; one is enough here.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def token(server) -> str:
    return create_token("studio", "--name", "sam", "--rate-limit", "enterprise")


@pytest.fixture
def client(server, token) -> Client:
    with Client(server, token) as client:
        yield client


@pytest.fixture
def dataset_id(server, token) -> int:
    with httpx.Client(base_url=server + "/tailored-gen", headers={"api_token": token}) as http:
        project = http.post("/projects", json={"project_name": "P", "ip_medium": "photography", "ip_type": "other"})
        dataset = http.post("/datasets", json={"project_id": project.json()["id"], "name": "Trip"})
        http.put(f"/datasets/{dataset.json()['id']}", json={"caption_prefix": "sks style"})
        return dataset.json()["id"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "chelsea.png").write_bytes(photo("chelsea.png"))
    (folder / "cats" / "chelsea.txt").write_text("sks style, a tabby cat\n")
    (folder / "coffee.png").write_bytes(photo("coffee.png"))
    (folder / "notes.md").write_text("not sent")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "thumb.png").write_bytes(photo("camera.png"))  # hidden: not sent
    Image.new("RGB", (100, 100), "teal").save(folder / "tiny.png")
    return folder


def test_a_session_at_the_command_line(server, token, dataset_id, photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILORSET_URL", server)
    monkeypatch.setenv("TAILORSET_TOKEN", token)
    code, out, err = run(capsys, "push", str(photos), "--dataset", str(dataset_id))
    assert code == 1  # one photo was refused, and it says which and why
    assert f"Imported 2 images into dataset {dataset_id} (1 caption files sent)." in out
    assert "failed: tiny.png: tiny.png is 100×100 pixels; both sides must be at least 256 pixels." in err
    assert "Uploading 3 images [" in err and "Importing [" in err  # the progress bars

    (photos / "tiny.png").unlink()
    code, out, _ = run(capsys, "push", str(photos), "--dataset", str(dataset_id))
    assert code == 0 and "Imported 0 images" in out and "Skipped 2 already in the dataset." in out

    with Client() as client:  # TAILORSET_URL and TAILORSET_TOKEN
        images = {image.image_name: image for image in client.images(dataset_id)}
    assert set(images) == {"cats/chelsea.png", "coffee.png"}
    assert (images["cats/chelsea.png"].caption, images["cats/chelsea.png"].caption_source) == (
        "sks style, a tabby cat",
        "manual",
    )

    code, out, _ = run(capsys, "caption", "set", str(dataset_id), "coffee", "sks style, an espresso")
    assert (code, out) == (0, "sks style, an espresso\n")
    code, out, _ = run(capsys, "caption", "regenerate", str(dataset_id), str(images["cats/chelsea.png"].id))
    assert code == 0 and out.startswith("sks style, a photo of a tabby cat")

    target = tmp_path / "kohya"
    code, out, _ = run(capsys, "pull", "--dataset", str(dataset_id), "--format", "kohya", str(target))
    assert code == 0 and out.startswith("2 images (") and str(target) in out
    read = kohya_read(target / "1_sks style")
    assert read["coffee"][1] == "sks style, an espresso" and read["coffee"][0].read_bytes() == photo("coffee.png")
    assert read["chelsea"][1].startswith("sks style, a photo of a tabby cat")

    code, _, err = run(capsys, "pull", "--dataset", str(dataset_id), str(target))
    assert code == 1 and err == f"error: {target} is not an empty folder; pull into a new one.\n"
    code, _, _ = run(capsys, "pull", "--dataset", str(dataset_id), "--format", "hf", str(tmp_path / "hf"))
    assert code == 0 and (tmp_path / "hf" / "train" / "metadata.jsonl").is_file()

    # Refusals and failures: one line with the server's sentence (or what went wrong), and status 1.
    monkeypatch.delenv("TAILORSET_TOKEN", raising=False)
    cases = [
        (["--url", server, "--token", "ts_nope"], "error: The api_token is not valid. (HTTP 401)"),
        (["--url", server], "error: No API token: pass one with --token, or set TAILORSET_TOKEN."),
        (["--url", f"http://127.0.0.1:{free_port()}", "--token", token], "error: could not talk to http://127.0.0.1:"),
    ]
    for flags, message in cases:
        code, _, err = run(capsys, "caption", "set", str(dataset_id), "1", "text", *flags)
        assert code == 1 and err.startswith(message), err
    code, _, err = run(capsys, "push", str(photos), "--dataset", "999", "--url", server, "--token", token)
    assert (code, err.splitlines()[-1]) == (1, "error: Dataset 999 not found. (HTTP 404)")
    code, _, err = run(capsys, "caption", "set", str(dataset_id), "nobody.png", "x", "--url", server, "--token", token)
    assert err == f"error: Dataset {dataset_id} has no image named 'nobody.png'; give the image's id.\n"


def test_the_typed_client(client, dataset_id):
    with io.BytesIO() as archive:
        with zipfile.ZipFile(archive, "w") as z:
            for name in ("chelsea.png", "coffee.png", "astronaut.png"):
                z.writestr(name, photo(name))
            z.writestr("chelsea.txt", "sks style, a cat")
        started = client.bulk_upload(dataset_id, archive)
    assert started.status == "pending" and not started.finished
    finished = client.wait_for_bulk_upload(dataset_id, poll_seconds=0.2, timeout=120)
    assert (finished.status, finished.done, finished.failed, finished.total) == ("completed", 3, 0, 3)

    images = list(client.images(dataset_id, page_size=2))  # two keyset pages
    assert [type(i) for i in images] == [ClientImage] * 3 and [i.image_name for i in images] == [
        "chelsea.png", "coffee.png", "astronaut.png",
    ]  # fmt: skip
    assert images[0].created_at.tzinfo is not None and images[0].caption == "sks style, a cat"
    dataset = client.dataset(dataset_id)
    assert (dataset.images_count, dataset.caption_prefix, dataset.status) == (3, "sks style", "draft")
    assert client.set_caption(dataset_id, images[1].id, "sks style, a cup").caption_source == "manual"

    with pytest.raises(ApiError) as refused:
        client.set_caption(dataset_id, images[1].id, "")
    assert (refused.value.status, refused.value.message) == (400, "caption must not be empty.")

    exported = io.BytesIO()
    size = client.export(dataset_id, "jsonl", exported)
    assert size == len(exported.getvalue()) and "dataset.jsonl" in zipfile.ZipFile(exported).namelist()
    with pytest.raises(ApiError) as missing:
        client.export(999, "kohya", io.BytesIO())
    assert missing.value.status == 404 and str(missing.value) == "404: Dataset 999 not found."


def test_push_remote_and_pull_remote_copy_a_dataset_between_two_servers(
    server, token, dataset_id, photos, tmp_path, capsys, monkeypatch, model_dir
):
    """A second, separate tailorset process stands in for any server speaking Bria's API."""
    (photos / "tiny.png").unlink()
    monkeypatch.setenv("TAILORSET_URL", server)
    monkeypatch.setenv("TAILORSET_TOKEN", token)
    assert run(capsys, "push", str(photos), "--dataset", str(dataset_id))[0] == 0
    with Client() as here:
        originals = list(here.images(dataset_id))
        here.set_caption(dataset_id, originals[1].id, "sks style, an espresso by hand")
        originals = list(here.images(dataset_id))

    remote_dir = tmp_path / "remote"
    remote_env = {**os.environ, "TAILORSET_DATA_DIR": str(remote_dir), "TAILORSET_MODEL_DIR": str(model_dir),
                  "TAILORSET_DATABASE_URL": f"sqlite:///{remote_dir / 'remote.db'}"}  # fmt: skip
    with serve(remote_env) as remote:
        remote_token = new_token(remote_env, "elsewhere")
        code, out, err = run(capsys, "push-remote", str(dataset_id), "--to", remote.base, "--to-token", remote_token)
        assert code == 0, err
        copy_id = int(out.split(" as dataset ")[1].split()[0])
        assert out.startswith(f"Copied 2 images of dataset {dataset_id} to {remote.base} as dataset {copy_id}")
        with Client(remote.base, remote_token) as there:
            copied = list(there.images(copy_id))
            assert [i.caption for i in copied] == [i.caption for i in originals]
            # Upload Image keeps a name's last part only (as a single upload does anywhere)
            assert [i.image_name for i in copied] == ["chelsea.png", "coffee.png"]
            assert [i.caption_source for i in copied] == ["manual", "manual"]
            assert [there.image_bytes(i) for i in copied] == [photo("chelsea.png"), photo("coffee.png")]
            assert there.dataset(copy_id).caption_prefix == "sks style"
            project = there.project(there.dataset(copy_id).project_id)
            assert (project["project_name"], project["ip_type"]) == ("P", "other")
            there.set_caption(copy_id, copied[0].id, "sks style, a tabby cat, edited over there")

        code, out, err = run(capsys, "pull-remote", str(copy_id), "--from", remote.base, "--from-token", remote_token)
        assert code == 0, err
        back_id = int(out.split(" as dataset ")[1].split()[0])
        with Client() as here:
            back = list(here.images(back_id))
            assert [i.caption for i in back] == ["sks style, a tabby cat, edited over there", originals[1].caption]
            assert here.dataset(back_id).project_id != here.dataset(dataset_id).project_id  # a copy of the project

        code, _, err = run(capsys, "pull-remote", "999", "--from", remote.base, "--from-token", remote_token)
        assert (code, err) == (1, "error: Dataset 999 not found. (HTTP 404)\n")


def test_push_sends_every_kind_of_caption_the_server_reads(tmp_path, database_url):  # no server needed
    from tailorset.cli_client import folder_files

    (tmp_path / "a").mkdir()
    for name in ("a/one.png", "a/two.jpg", "three.webp"):
        (tmp_path / name).write_bytes(b"image")
    for name in ("a/one.caption", "a/two.txt", "a/metadata.jsonl", "metadata.csv", "notes.md", "a/stray.txt"):
        (tmp_path / name).write_text("x")
    images, captions = folder_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in images] == ["a/one.png", "a/two.jpg", "three.webp"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in captions) == [
        "a/metadata.jsonl", "a/one.caption", "a/two.txt", "metadata.csv"
    ]  # fmt: skip
