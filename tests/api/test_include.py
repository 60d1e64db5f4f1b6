"""`?include=` adds tailorset's own image fields; without it every image body is exactly Bria's."""

from tests.api.test_update_caption import SPEC_FIELDS
from tests.support import photo

CONFIDENCE = {"caption_confidence", "caption_signals"}
REVIEW = {"review_state", "review_note", "reviewed_at"}


def test_image_bodies_stay_bria_shaped_unless_asked(api):
    dataset = api.dataset()
    image = api.upload(dataset["id"])
    path = f"/tailored-gen/datasets/{dataset['id']}/images"
    assert set(image) == SPEC_FIELDS
    assert set(api.get(f"{path}/{image['id']}").json()) == SPEC_FIELDS
    assert set(api.put(f"{path}/{image['id']}", json={"caption": "a cat"}).json()) == SPEC_FIELDS
    assert set(api.get(path).json()[0]) == SPEC_FIELDS
    assert set(api.get(f"/tailored-gen/datasets/{dataset['id']}").json()["images"][0]) == SPEC_FIELDS | {
        "upload_source_url"
    }


def test_include_adds_the_named_groups_everywhere_an_image_is_shown(api):
    dataset = api.dataset()
    path = f"/tailored-gen/datasets/{dataset['id']}/images"
    uploaded = api.post(f"{path}?include=review", files={"file": ("cat.png", photo("chelsea.png"))}).json()
    assert set(uploaded) == SPEC_FIELDS | REVIEW and uploaded["review_state"] == "unreviewed"
    image_id = uploaded["id"]
    both = api.get(f"{path}/{image_id}", params={"include": "confidence, review"}).json()
    assert set(both) == SPEC_FIELDS | CONFIDENCE | REVIEW
    edited = api.put(f"{path}/{image_id}?include=review", json={"caption": "a tabby cat"}).json()
    assert set(edited) == SPEC_FIELDS | REVIEW
    assert set(api.get(path, params={"include": "confidence"}).json()[0]) == SPEC_FIELDS | CONFIDENCE
    in_dataset = api.get(f"/tailored-gen/datasets/{dataset['id']}", params={"include": "review"}).json()
    assert set(in_dataset["images"][0]) == SPEC_FIELDS | REVIEW | {"upload_source_url"}


def test_an_unknown_include_is_a_400_that_names_it(api):
    dataset = api.dataset()
    response = api.get(f"/tailored-gen/datasets/{dataset['id']}/images", params={"include": "review,secrets"})
    assert response.status_code == 400
    assert "'secrets'" in response.json()["error"]

