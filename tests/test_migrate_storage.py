"""`tailorset migrate-storage`: a dataset's files move from the local directory to S3 (SeaweedFS) and back,
through the real CLI beside a running service; re-runs after a crash finish the job; bad files stay put.
The move itself on both databases; its failure modes, which the database plays no part in, on SQLite."""

import anyio
import httpx
import pytest
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.storage import open_stores
from tests.support import Api, all_keys, create_token, download, photo, run_cli


@pytest.fixture
def settings(env, monkeypatch, s3_server) -> Settings:
    """S3 configured beside the local directory, new files still going to the local one."""
    for name, value in {**s3_server.env(), "TAILORSET_STORAGE": "local"}.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.fixture
def api(settings):
    with TestClient(create_app(settings)) as client:
        yield Api(client, create_token("acme", "--rate-limit", "enterprise"))


def keys(settings: Settings) -> dict[str, list[str]]:
    async def collect():
        stores = await open_stores(settings)
        return {name: await all_keys(store) for name, store in stores.items()}

    return anyio.run(collect)


def images(api: Api, dataset_id: int) -> list[dict]:
    return api.get(f"/tailored-gen/datasets/{dataset_id}/images").json()


def test_a_datasets_files_move_to_s3_and_back(api, settings, s3_server):
    first, other = api.dataset(), api.dataset()
    cat, cup = api.upload(first["id"], "chelsea.png"), api.upload(first["id"], "coffee.png")
    person = api.upload(other["id"], "astronaut.png")
    clone = api.post(f"/tailored-gen/datasets/{first['id']}/clone").json()  # shares the first's files
    local_keys = keys(settings)["local"]
    assert len(local_keys) == 6 and keys(settings)["s3"] == []

    code, out, err = run_cli("migrate-storage", "--to", "s3", "--dataset", str(first["id"]))
    assert (code, err) == (0, "") and f"Moved 2 files of dataset {first['id']} to s3" in out
    moved = images(api, first["id"]) + images(api, clone["id"])
    for image, name in zip(moved, ["chelsea.png", "coffee.png"] * 2, strict=True):
        assert image["image_url"].startswith(f"{s3_server.endpoint}/tailorset/test-")
        assert httpx.get(image["image_url"]).content == photo(name)
        assert httpx.get(image["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    assert images(api, other["id"])[0] == person  # the other dataset's file stays where it was
    assert len(keys(settings)["s3"]) == 4 and len(keys(settings)["local"]) == 2

    # A URL handed out before the move still works: it redirects to the file's new home.
    old = api.client.get(cat["image_url"], follow_redirects=False)
    assert old.status_code == 307 and httpx.get(old.headers["location"]).content == photo("chelsea.png")
    # Captions are still made from the file, now read from S3.
    regenerated = api.put(f"/tailored-gen/datasets/{first['id']}/images/{cup['id']}", json={"regenerate_caption": True})
    assert regenerated.json()["caption"] == cup["caption"]

    assert run_cli("migrate-storage", "--to", "s3", "--dataset", str(first["id"]))[1].endswith(
        f"Moved 0 files of dataset {first['id']} to s3; 0 could not be moved.\n"
    )  # a re-run has nothing left to do
    assert "Moved 1 files of every dataset to s3" in run_cli("migrate-storage", "--to", "s3")[1]
    assert keys(settings)["local"] == [] and len(keys(settings)["s3"]) == 6

    code, out, _ = run_cli("migrate-storage", "--to", "local")
    assert code == 0 and "Moved 3 files of every dataset to local" in out
    assert keys(settings) == {"local": local_keys, "s3": []}
    for image in images(api, first["id"]) + images(api, other["id"]):
        assert image["image_url"].startswith("http://testserver/files/")
        assert download(api.client, image["image_url"]).status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_rerun_after_a_crash_finishes_the_move(api, settings):
    dataset = api.dataset()
    image = api.upload(dataset["id"], "coffee.png")
    original, thumbnail = keys(settings)["local"]
    stores = anyio.run(open_stores, settings)

    # Killed after copying the original, before the switch: the rows still say local.
    anyio.run(stores["s3"].put, original, photo("coffee.png"), "image/png")
    assert run_cli("migrate-storage", "--to", "s3")[0] == 0
    assert keys(settings) == {"local": [], "s3": [original, thumbnail]}
    moved = api.get(f"/tailored-gen/datasets/{dataset['id']}/images/{image['id']}").json()
    assert httpx.get(moved["image_url"]).content == photo("coffee.png")

    # Killed after the switch, before removing the old copy: a stray copy no row points at. Deleting the
    # image removes its files from every backend, the stray copy too.
    anyio.run(stores["local"].put, original, photo("coffee.png"), "image/png")
    assert api.delete(f"/tailored-gen/datasets/{dataset['id']}/images/{image['id']}").status_code == 204
    assert keys(settings) == {"local": [], "s3": []}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_files_that_fail_their_checksum_or_are_missing_stay_where_they_are(api, settings):
    dataset = api.dataset()
    corrupt, missing, good = (api.upload(dataset["id"], name) for name in ("chelsea.png", "coffee.png", "camera.png"))
    for image, damage in ((corrupt, lambda path: path.write_bytes(b"bit rot")), (missing, lambda path: path.unlink())):
        damage(settings.files_dir / image["image_url"].split("/files/")[1].split("?")[0])

    code, out, err = run_cli("migrate-storage", "--to", "s3", "--dataset", str(dataset["id"]))
    assert code == 1 and "Moved 1 files" in out and "2 could not be moved" in out
    assert "does not match its recorded sha256" in err and "is missing from the local backend" in err
    after = {i["id"]: i for i in images(api, dataset["id"])}
    assert after[corrupt["id"]]["image_url"] == corrupt["image_url"]  # still local, still pointing at its file
    assert after[missing["id"]]["image_url"] == missing["image_url"]
    assert httpx.get(after[good["id"]]["image_url"]).content == photo("camera.png")
    assert len(keys(settings)["s3"]) == 2  # the good file and its thumbnail, nothing of the others


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unconfigured_backend_is_refused(env):
    code, _, err = run_cli("migrate-storage", "--to", "s3")
    assert code == 2 and "not configured" in err
