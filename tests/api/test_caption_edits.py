"""Search and filter with keyset pages; bulk find/replace with a dry run; undo as one batch."""

import json

import pytest


@pytest.fixture
def dataset(api) -> dict:
    dataset = api.dataset()
    for name in ("chelsea.png", "coffee.png", "astronaut.png", "chelsea.png", "coffee.png"):
        api.upload(dataset["id"], name)
    return dataset


def ids(response) -> list[int]:
    return [image["id"] for image in response.json()]


def test_the_plain_list_is_unpaged(api, dataset):
    response = api.get(f"/tailored-gen/datasets/{dataset['id']}/images")
    assert len(response.json()) == 5 and "X-Next-Cursor" not in response.headers


def test_keyset_pages_walk_every_image_once(api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}/images"
    everything = ids(api.get(url))
    seen, params = [], {"limit": 2}
    while True:
        response = api.get(url, params=params)
        assert response.status_code == 200 and len(response.json()) <= 2
        seen += ids(response)
        if "X-Next-Cursor" not in response.headers:
            break
        assert response.headers["Link"].endswith('rel="next"')
        params = {"limit": 2, "cursor": response.headers["X-Next-Cursor"]}
    assert seen == everything
    response = api.get(url, params={"cursor": "bm90LWEtY3Vyc29y"})
    assert response.status_code == 400 and "cursor is not valid" in response.json()["error"]
    assert api.get(url, params={"limit": 0}).status_code == 400


def test_filters(api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}/images"
    images = api.get(url).json()
    api.put(f"{url}/{images[0]['id']}", json={"caption": "A photo of a 100% GRUMPY cat"})
    cats = api.get(url, params={"caption_contains": "cat"}).json()
    assert [i["id"] for i in cats] == [images[0]["id"], images[3]["id"]]
    assert ids(api.get(url, params={"caption_contains": "100%"})) == [images[0]["id"]]  # % is literal
    assert ids(api.get(url, params={"caption_contains": "grumpy"})) == [images[0]["id"]]  # case-insensitive
    assert ids(api.get(url, params={"caption_source": "manual"})) == [images[0]["id"]]
    assert len(api.get(url, params={"caption_source": "automatic"}).json()) == 4
    assert ids(api.get(url, params={"caption_excludes": "cat"})) == [images[i]["id"] for i in (1, 2, 4)]
    assert api.get(url, params={"caption_source": "robot"}).status_code == 400


def test_dry_run_shows_before_and_after_and_saves_nothing(api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}"
    before = api.get(f"{url}/images").json()
    response = api.post(f"{url}/captions/replace", json={"find": "tabby cat", "replace": "kitten", "dry_run": True})
    assert response.status_code == 200
    body = response.json()
    assert body["dry_run"] is True and body["batch_id"] is None and body["changed"] == 0
    assert [c["image_id"] for c in body["changes"]] == [before[0]["id"], before[3]["id"]]
    assert body["changes"][0]["before"] == before[0]["caption"]
    assert body["changes"][0]["after"] == before[0]["caption"].replace("tabby cat", "kitten")
    assert api.get(f"{url}/images").json() == before


def test_replace_then_undo_as_one_batch(api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}"
    before = api.get(f"{url}/images").json()
    response = api.post(
        f"{url}/captions/replace", json={"find": r"(\w+) tones", "replace": r"mostly \1", "regex": True}
    )
    assert response.status_code == 200
    batch = response.json()
    assert batch["changed"] == 5 and batch["batch_id"]
    after = api.get(f"{url}/images").json()
    assert all("mostly" in image["caption"] and image["caption_source"] == "manual" for image in after)

    # Someone edits one image after the batch: undo leaves that one alone and says so.
    api.put(f"{url}/images/{after[1]['id']}", json={"caption": "edited by hand afterwards"})
    undo = api.post(f"{url}/captions/batches/{batch['batch_id']}/undo")
    assert undo.status_code == 200
    assert undo.json()["changed"] == 4
    assert undo.json()["skipped"] == [{"image_id": after[1]["id"], "reason": "Its caption changed after the batch."}]
    restored = api.get(f"{url}/images").json()
    for old, new in zip(before, restored, strict=True):
        if old["id"] != after[1]["id"]:
            assert (new["caption"], new["caption_source"]) == (old["caption"], "automatic")
    assert restored[1]["caption"] == "edited by hand afterwards"
    # The undo is a batch too.
    again = api.post(f"{url}/captions/batches/{undo.json()['batch_id']}/undo")
    assert again.json()["changed"] == 4
    assert api.post(f"{url}/captions/batches/no-such-batch/undo").status_code == 404


def test_replace_refuses_bad_input_and_frozen_datasets(api, dataset):
    url = f"/tailored-gen/datasets/{dataset['id']}"
    response = api.post(f"{url}/captions/replace", json={"find": "(unclosed", "regex": True})
    assert response.status_code == 400 and "not a valid regular expression" in response.json()["error"]
    assert api.post(f"{url}/captions/replace", json={"find": ""}).status_code == 400
    literal = api.post(f"{url}/captions/replace", json={"find": "tabby", "replace": r"\1", "dry_run": True})
    assert literal.json()["changes"][0]["after"].count(r"\1") == 1  # literal mode: no group references
    api.put(url, json={"status": "completed"})
    response = api.post(f"{url}/captions/replace", json={"find": "cat", "replace": "dog"})
    assert response.status_code == 409
    assert api.post(f"{url}/captions/replace", json={"find": "cat", "dry_run": True}).status_code == 200


def test_fibo_replacements_must_stay_valid_or_nothing_changes(api):
    dataset = api.dataset(training_version="fibo")
    image = api.upload(dataset["id"], "chelsea.png")
    url = f"/tailored-gen/datasets/{dataset['id']}"
    broken = api.post(f"{url}/captions/replace", json={"find": '"context":', "replace": '"kontext":'})
    assert broken.status_code == 400 and "caption.context is required" in broken.json()["error"]
    assert api.get(f"{url}/images/{image['id']}").json() == image
    ok = api.post(f"{url}/captions/replace", json={"find": "tabby cat", "replace": "striped cat"})
    assert ok.status_code == 200 and ok.json()["changed"] == 1
    assert "striped cat" in json.loads(api.get(f"{url}/images/{image['id']}").json()["caption"])["short_description"]
