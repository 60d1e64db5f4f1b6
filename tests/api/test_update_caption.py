"""PUT /tailored-gen/datasets/{dataset_id}/images/{image_id}: Update Image Caption, status code by status code."""

import json
from urllib.parse import urlsplit

import pytest

from tests.support import Api, create_token, every_storage

SPEC_FIELDS = {
    "id", "dataset_id", "caption", "caption_source", "image_name", "image_url", "thumbnail_url", "created_at",
    "updated_at",
}  # fmt: skip


@pytest.fixture
def image(api) -> dict:
    dataset = api.dataset()
    return api.upload(dataset["id"], "chelsea.png")


def url_of(image: dict) -> str:
    return f"/tailored-gen/datasets/{image['dataset_id']}/images/{image['id']}"


# --- 200 -----------------------------------------------------------------------------------


def test_manual_caption(api, image):
    response = api.put(url_of(image), json={"caption": "a tabby cat looking at the camera"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == SPEC_FIELDS
    assert body["caption"] == "a tabby cat looking at the camera" and body["caption_source"] == "manual"
    # updated_at changes; nothing else does.
    assert body["updated_at"] > image["updated_at"]
    unchanged = SPEC_FIELDS - {"caption", "caption_source", "updated_at"}
    assert {k: body[k] for k in unchanged} == {k: image[k] for k in unchanged}
    assert api.get(url_of(image)).json() == body


def test_regenerate_caption(api, image):
    edited = api.put(url_of(image), json={"caption": "hand-written"}).json()
    response = api.put(url_of(image), json={"regenerate_caption": True})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == SPEC_FIELDS and body["caption_source"] == "automatic"
    # Deterministic: the same image and prefix give the caption written on upload.
    assert body["caption"] == image["caption"]
    assert body["caption"].startswith("A photo of ") and "cat" in body["caption"]
    assert body["updated_at"] > edited["updated_at"] and body["image_url"] == image["image_url"]


@every_storage
def test_regenerate_uses_the_current_prefix_exactly_once(api, image):
    api.put(f"/tailored-gen/datasets/{image['dataset_id']}", json={"caption_prefix": "sks style"})
    caption = api.put(url_of(image), json={"regenerate_caption": True}).json()["caption"]
    assert caption.startswith("sks style, ") and caption.count("sks style") == 1


def test_caption_with_regenerate_false_is_manual(api, image):
    # Clients generated from Bria's spec send the default regenerate_caption: false along with caption.
    response = api.put(url_of(image), json={"caption": "text", "regenerate_caption": False})
    assert response.status_code == 200 and response.json()["caption_source"] == "manual"


def test_v1_prefix(api, image):
    response = api.put("/v1" + url_of(image), json={"caption": "via v1"})
    assert response.status_code == 200 and response.json()["caption"] == "via v1"


def test_v2_prefix_answers_the_same_bodies_and_bria_v2_errors(api, image):
    response = api.put("/v2" + url_of(image), json={"caption": "via v2"})
    assert response.status_code == 200 and response.json() == api.get(url_of(image)).json()
    refused = api.put("/v2" + url_of(image), json={"caption": ""})
    plain = api.put("/v1" + url_of(image), json={"caption": ""})
    assert refused.status_code == plain.status_code == 400
    assert refused.json() == {
        "error": {"code": 400, "message": plain.json()["error"], "details": plain.json()["error"]},
        "request_id": refused.headers["x-request-id"],
    }
    assert int(refused.headers["content-length"]) == len(refused.content)


# --- 400 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"caption": "x", "regenerate_caption": True}, "Provide either caption or regenerate_caption, not both."),
        ({}, "Provide a caption, or set regenerate_caption to true."),
        ({"regenerate_caption": False}, "Provide a caption, or set regenerate_caption to true."),
        (None, "Provide a caption, or set regenerate_caption to true."),
        ({"caption": 42}, "caption must be a valid string."),
        ({"caption": ["a"]}, "caption must be a valid string."),
        ({"regenerate_caption": "yes"}, "regenerate_caption must be a valid boolean."),
        ({"caption": "   "}, "caption must not be empty."),
        ({"caption": "a\x00b"}, "caption must not contain NUL (\\x00) characters."),
        ({"caption": "x" * 20_001}, "caption is 20,001 characters long; the limit is 20,000."),
    ],
)
def test_bad_requests_are_400_and_change_nothing(api, image, body, message):
    response = api.put(url_of(image), **({"json": body} if body is not None else {}))
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert api.get(url_of(image)).json() == image


def test_malformed_json_body(api, image):
    response = api.put(url_of(image), content=b'{"caption": ', headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json() == {"error": "The request body is not valid JSON."}
    assert api.get(url_of(image)).json() == image


def test_a_json_body_that_is_not_an_object(api, image):
    response = api.put(url_of(image), json=["a caption"])
    assert response.status_code == 400 and response.json() == {"error": "The request body must be a JSON object."}


def test_non_integer_ids(api, image):
    response = api.put(f"/tailored-gen/datasets/abc/images/{image['id']}", json={"caption": "x"})
    assert response.status_code == 400 and "dataset_id" in response.json()["error"]


# --- 401 -----------------------------------------------------------------------------------


def test_without_a_valid_token(client, image):
    for headers in ({}, {"api_token": "wrong"}):
        response = client.put(url_of(image), json={"caption": "x"}, headers=headers)
        assert response.status_code == 401 and set(response.json()) == {"error"}


# --- 404 -----------------------------------------------------------------------------------


def test_unknown_or_foreign_image_or_dataset(api, other_api, image):
    other_dataset = api.dataset()
    cases = [
        f"/tailored-gen/datasets/999999/images/{image['id']}",
        f"/tailored-gen/datasets/{image['dataset_id']}/images/999999",
        f"/tailored-gen/datasets/{other_dataset['id']}/images/{image['id']}",  # an image of another dataset
    ]
    for path in cases:
        response = api.put(path, json={"caption": "x"})
        assert response.status_code == 404, path
        assert "not found" in response.json()["error"], path
    response = other_api.put(url_of(image), json={"caption": "x"})
    assert response.status_code == 404
    assert response.json() == {"error": f"Dataset {image['dataset_id']} not found."}
    assert api.get(url_of(image)).json() == image


# --- 409 -----------------------------------------------------------------------------------


def test_completed_dataset_is_frozen(api, image):
    api.put(f"/tailored-gen/datasets/{image['dataset_id']}", json={"status": "completed"})
    for body in ({"caption": "x"}, {"regenerate_caption": True}):
        response = api.put(url_of(image), json=body)
        assert response.status_code == 409
        assert response.json() == {
            "error": f"Dataset {image['dataset_id']} is completed, so you cannot edit its captions; "
            "clone it as a draft instead."
        }
    assert api.get(url_of(image)).json() == image


# --- 410 -----------------------------------------------------------------------------------


def test_deleted_image_or_dataset_is_gone(api, image):
    sibling = api.upload(image["dataset_id"], "coffee.png")
    assert api.delete(url_of(image)).status_code == 204
    response = api.put(url_of(image), json={"caption": "x"})
    assert response.status_code == 410 and response.json()["error"].startswith(f"Image {image['id']} was deleted")

    assert api.delete(f"/tailored-gen/datasets/{image['dataset_id']}").status_code == 204
    response = api.put(url_of(sibling), json={"regenerate_caption": True})
    assert response.status_code == 410
    assert response.json()["error"].startswith(f"Dataset {image['dataset_id']} was deleted")


# --- 429 -----------------------------------------------------------------------------------


def test_rate_limit_per_organization_and_endpoint(client, env):
    limited = Api(client, create_token("tiny", "--rate-limit", "3/minute"))
    dataset = limited.dataset()  # 2 POSTs on other endpoints, which have budgets of their own
    image = limited.upload(dataset["id"])
    codes = [limited.put(url_of(image), json={"caption": f"v{n}"}).status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]
    response = limited.put(url_of(image), json={"caption": "again"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.json()["error"].startswith("Too many requests: this endpoint allows 3 per minute")
    # Another endpoint and another organization still have their budgets.
    assert limited.get(url_of(image)).status_code == 200
    assert limited.get(url_of(image)).json()["caption"] == "v2"
    other = Api(client, create_token("big"))
    assert other.get("/tailored-gen/projects").status_code == 200


# --- 500 -----------------------------------------------------------------------------------


def test_internal_errors_say_nothing_and_change_nothing(api, image, settings):
    # The original file vanishes from the store behind the service's back.
    key = urlsplit(image["image_url"]).path.removeprefix("/files/")
    (settings.files_dir / key).unlink()
    response = api.put(url_of(image), json={"regenerate_caption": True})
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error; the request changed nothing."}
    assert "Traceback" not in response.text
    assert api.get(url_of(image)).json() == image


# --- FIBO ----------------------------------------------------------------------------------

FIBO_CAPTION = {
    "short_description": "A tabby cat looks straight at the camera.",
    "objects": [{"description": "A tabby cat", "location": "center", "relationship": "The only subject."}],
    "background_setting": "A plain indoor background.",
    "lighting": {"conditions": "soft daylight", "direction": "front-lit"},
    "aesthetics": {"composition": "close-up", "color_scheme": "gray and brown", "mood_atmosphere": "calm"},
    "context": "A pet portrait.",
}


@pytest.fixture
def fibo_image(api) -> dict:
    dataset = api.dataset(training_version="fibo")
    return api.upload(dataset["id"], "chelsea.png")


def test_fibo_upload_and_regenerate_give_valid_json(api, fibo_image):
    caption = json.loads(fibo_image["caption"])
    assert {"short_description", "background_setting", "lighting", "aesthetics", "context"} <= set(caption)
    response = api.put(url_of(fibo_image), json={"regenerate_caption": True})
    assert response.status_code == 200 and response.json()["caption"] == fibo_image["caption"]


def test_fibo_manual_caption_is_stored_canonical(api, fibo_image):
    response = api.put(url_of(fibo_image), json={"caption": json.dumps(FIBO_CAPTION, indent=2)})
    assert response.status_code == 200
    assert response.json()["caption"] == json.dumps(FIBO_CAPTION, separators=(",", ":"))
    assert response.json()["caption_source"] == "manual"


def test_fibo_minor_faults_are_corrected_and_reported(api, fibo_image):
    faulty = "```json\n" + json.dumps(FIBO_CAPTION)[:-1] + ",}\n```"
    response = api.put(url_of(fibo_image), json={"caption": faulty})
    assert response.status_code == 200
    assert json.loads(response.json()["caption"]) == FIBO_CAPTION
    assert response.headers["X-Caption-Corrected"]


@pytest.mark.parametrize(
    ("caption", "fragment"),
    [
        ("a cat on a sofa", "caption"),
        (json.dumps(FIBO_CAPTION)[:-30], "caption"),
        (json.dumps({**FIBO_CAPTION, "lighting": {"conditions": "soft"}}), "caption.lighting.direction"),
        (json.dumps({k: v for k, v in FIBO_CAPTION.items() if k != "context"}), "caption.context"),
        (json.dumps({**FIBO_CAPTION, "lighting": "bright"}), "caption.lighting"),
    ],
)
def test_fibo_captions_beyond_repair_are_400(api, fibo_image, caption, fragment):
    response = api.put(url_of(fibo_image), json={"caption": caption})
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    assert api.get(url_of(fibo_image)).json() == fibo_image
