"""Every automatic caption carries its captioner's confidence and signals; a person's caption carries none.

Written on upload, regenerate, Regenerate All and bulk upload; cleared by manual writes (PUT, find/replace);
brought back with the caption by restore and undo; shown with `?include=confidence` and in the jsonl export."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tests.captioners.openai_server import ChatServer, answer
from tests.support import Api, bulk_upload, create_token, export, photo, wait_for_bulk_upload, wait_until_done, zip_of

WITH = {"include": "confidence"}


def images_url(dataset: dict) -> str:
    return f"/tailored-gen/datasets/{dataset['id']}/images"


def shown(api: Api, dataset: dict, image_id: int) -> dict:
    return api.get(f"{images_url(dataset)}/{image_id}", params=WITH).json()


def assert_automatic(image: dict, subject: str | None = None) -> None:
    assert image["caption_source"] == "automatic"
    assert isinstance(image["caption_confidence"], float) and 0.0 <= image["caption_confidence"] <= 1.0
    signals = image["caption_signals"]
    assert {"subject", "evidence", "classifier", "detector", "monochrome", "exposure"} <= set(signals)
    if subject:
        assert subject in signals["subject"] and subject in image["caption"]


def assert_manual(image: dict) -> None:
    assert image["caption_source"] == "manual"
    assert image["caption_confidence"] is None and image["caption_signals"] is None


def test_upload_regenerate_and_manual_edits(api):
    dataset = api.dataset()
    url = images_url(dataset)
    uploaded = api.post(f"{url}?include=confidence", files={"file": ("cat.png", photo("chelsea.png"))}).json()
    assert_automatic(uploaded, "tabby cat")
    assert uploaded["caption_confidence"] >= 0.5  # named: the classifier and the detector both see an animal
    assert "classifier" in uploaded["caption_signals"]["evidence"]
    image_id = uploaded["id"]
    assert shown(api, dataset, image_id) == uploaded | {"updated_at": shown(api, dataset, image_id)["updated_at"]}

    edited = api.put(f"{url}/{image_id}", params=WITH, json={"caption": "a cat on a sofa"}).json()
    assert_manual(edited)
    assert_manual(shown(api, dataset, image_id))

    regenerated = api.put(f"{url}/{image_id}", params=WITH, json={"regenerate_caption": True}).json()
    assert_automatic(regenerated, "tabby cat")
    assert regenerated["caption_confidence"] == uploaded["caption_confidence"]  # deterministic

    # Restore brings the revision's confidence back with its caption.
    history = api.get(f"{url}/{image_id}/captions").json()
    manual = next(r for r in history if r["caption_source"] == "manual")
    restored = api.post(f"{url}/{image_id}/captions/{manual['id']}/restore", params=WITH).json()
    assert_manual(restored)
    automatic = history[0]
    restored = api.post(f"{url}/{image_id}/captions/{automatic['id']}/restore", params=WITH).json()
    assert restored["caption_confidence"] == uploaded["caption_confidence"]
    assert restored["caption_signals"] == uploaded["caption_signals"]


def test_a_photo_it_cannot_name_has_a_low_confidence(api):
    """Grass filling the frame: the classifier's best guess is "dog" (0.28); the caption says what is visible."""
    dataset = api.dataset()
    image = api.post(f"{images_url(dataset)}?include=confidence", files={"file": ("grass.png", photo("grass.png"))})
    body = image.json()
    assert_automatic(body)
    assert "a gray texture filling the frame" in body["caption"] and "black and white" in body["caption"]
    assert body["caption_signals"]["kind"] == "texture" and body["caption_signals"]["named"] == [
        "a gray texture filling the frame"
    ]
    assert body["caption_confidence"] < 0.5


def test_find_replace_clears_it_and_undo_brings_it_back(api):
    dataset = api.dataset()
    image = api.upload(dataset["id"], "chelsea.png")
    before = shown(api, dataset, image["id"])
    url = f"/tailored-gen/datasets/{dataset['id']}/captions"
    batch = api.post(f"{url}/replace", json={"find": "tabby cat", "replace": "kitten"}).json()
    assert_manual(shown(api, dataset, image["id"]))
    assert api.post(f"{url}/batches/{batch['batch_id']}/undo").status_code == 200
    after = shown(api, dataset, image["id"])
    assert (after["caption_confidence"], after["caption_signals"]) == (
        before["caption_confidence"],
        before["caption_signals"],
    )


def test_regenerate_all_writes_it(api):
    dataset = api.dataset()
    image = api.upload(dataset["id"], "coffee.png")
    api.put(f"{images_url(dataset)}/{image['id']}", json={"caption": "a cup"})
    response = api.put(images_url(dataset), json={"include_manual": True})
    assert response.status_code == 202, response.text
    wait_until_done(api, dataset["id"])
    assert_automatic(shown(api, dataset, image["id"]), "espresso")


def test_bulk_upload_writes_it_for_automatic_captions_only(api):
    dataset = api.dataset()
    archive = zip_of({"cat.png": photo("chelsea.png"), "cat.txt": "a cat", "cup.png": photo("coffee.png")})
    assert bulk_upload(api, dataset["id"], archive).status_code == 202
    assert wait_for_bulk_upload(api, dataset["id"])["done"] == 2
    images = {i["image_name"]: i for i in api.get(images_url(dataset), params=WITH).json()}
    assert_manual(images["cat.png"])
    assert_automatic(images["cup.png"], "espresso")


def test_the_jsonl_export_carries_it(api):
    dataset = api.dataset()
    image = api.upload(dataset["id"], "coffee.png")
    [record] = [json.loads(line) for line in export(api, dataset["id"], "jsonl").read("dataset.jsonl").splitlines()]
    expected = shown(api, dataset, image["id"])
    assert record["caption_confidence"] == expected["caption_confidence"]
    assert record["caption_signals"] == expected["caption_signals"]


def test_fibo_captions_list_detected_objects_with_their_confidence(api):
    dataset = api.dataset(training_version="fibo")
    body = api.post(
        f"{images_url(dataset)}?include=confidence", files={"file": ("bike.png", photo("motorcycle_left.png"))}
    ).json()
    assert_automatic(body)
    caption = json.loads(body["caption"])
    [bike] = [o for o in caption["objects"] if "motorbike" in o["description"].lower()]
    assert bike["location"].endswith("of the frame") and bike["relative_size"]
    assert "motorcycle" in [d[0] for d in body["caption_signals"]["detector"]]


@pytest.fixture
def chat():
    server = ChatServer().start()
    server.default = lambda request: answer("a small orange cat")
    yield server
    server.stop()


def test_a_captioner_that_gives_no_confidence(env, chat):
    """The openai backend returns plain text, as captioners written before confidence did: stored as none."""
    settings = Settings(captioner="openai", captioner_model="test-vlm", openai_base_url=chat.url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client, create_token("acme"))
        dataset = api.dataset()
        body = api.post(f"{images_url(dataset)}?include=confidence", files={"file": ("c.png", photo("chelsea.png"))})
        assert body.status_code == 201, body.text
        image = body.json()
        assert image["caption"] == "A small orange cat" or image["caption"].endswith("a small orange cat")
        assert image["caption_source"] == "automatic"
        assert image["caption_confidence"] is None and image["caption_signals"] is None
