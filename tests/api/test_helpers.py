"""POST /tailored-gen/generate_prefix and /tailored-gen/generate_visual_schema."""

import base64
import json

from tests.support import photo


def b64(name: str) -> str:
    return base64.b64encode(photo(name)).decode()


def test_generate_prefix_from_sample_images(api):
    body = {"images": [b64("chelsea.png")] * 2, "ip_type": "stylized_scene", "ip_medium": "photography"}
    response = api.post("/tailored-gen/generate_prefix", json=body)
    assert response.status_code == 200
    assert response.json() == {"prefix": "A photo of a tabby cat"}

    illustrated = api.post("/tailored-gen/generate_prefix", json={**body, "ip_medium": "illustration"}).json()
    assert illustrated["prefix"] == "An illustration of a tabby cat"
    character = {**body, "ip_type": "defined_character", "ip_name": "Whiskers"}
    assert api.post("/tailored-gen/generate_prefix", json=character).json()["prefix"] == (
        "A photo of Whiskers, a tabby cat"
    )


def test_a_suggested_prefix_is_continued_by_the_captions(api):
    body = {"images": [b64("chelsea.png")], "ip_type": "stylized_scene", "ip_medium": "photography"}
    prefix = api.post("/tailored-gen/generate_prefix", json=body).json()["prefix"]
    dataset = api.dataset()
    api.put(f"/tailored-gen/datasets/{dataset['id']}", json={"caption_prefix": prefix})
    caption = api.upload(dataset["id"], "chelsea.png")["caption"]
    assert caption.startswith(prefix) and caption.count("tabby cat") == 1, caption


def test_generate_prefix_refuses_bad_requests(api):
    base = {"ip_type": "stylized_scene", "ip_medium": "photography"}
    cases = [
        ({**base, "images": []}, 400, "images must hold 1 to 6 images; it holds 0."),
        ({**base, "images": [b64("coffee.png")] * 7}, 400, "images must hold 1 to 6 images; it holds 7."),
        ({**base, "images": [b64("coffee.png")], "image_urls": ["http://example.org/a.png"]}, 400, "not both"),
        ({**base}, 400, "not both and not neither"),
        ({**base, "ip_type": "icons", "images": [b64("coffee.png")]}, 400, "ip_type must be"),
        ({**base, "ip_type": "defined_character", "images": [b64("coffee.png")]}, 400, "ip_name is required"),
        ({**base, "images": [base64.b64encode(b"GIF89a" + b"0" * 100).decode()]}, 415, "images[0]"),
        ({**base, "image_urls": ["http://127.0.0.1:9/a.png"]}, 422, "private address"),
    ]
    for body, status, fragment in cases:
        response = api.post("/tailored-gen/generate_prefix", json=body)
        assert response.status_code == status, (body.keys(), response.text)
        assert fragment in response.json()["error"], response.json()


def test_generate_visual_schema(api):
    images = [b64(n) for n in ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "camera.png")]
    response = api.post("/tailored-gen/generate_visual_schema", json={"images": images})
    assert response.status_code == 200
    schema = json.loads(response.json()["visual_schema"])
    assert schema["style_medium"] == "photograph" and isinstance(schema["colors"], str)
    # Saved on a FIBO dataset, it guides that dataset's automatic captions.
    dataset = api.dataset(training_version="fibo")
    saved = api.put(f"/tailored-gen/datasets/{dataset['id']}", json={"visual_schema": response.json()["visual_schema"]})
    assert saved.status_code == 200
    caption = json.loads(api.upload(dataset["id"], "coffee.png")["caption"])
    assert caption["style_medium"] == "photograph"
    assert schema["colors"] in caption["aesthetics"]["color_scheme"]

    response = api.post("/tailored-gen/generate_visual_schema", json={"images": images[:4]})
    assert response.status_code == 400 and response.json()["error"] == "images must hold 5 to 10 images; it holds 4."


def test_sample_images_can_be_images_already_in_a_dataset(api, other_api):
    """tailorset's image_ids: what the workbench sends, so that no image travels back and forth."""
    dataset = api.dataset()
    ids = [api.upload(dataset["id"], name)["id"] for name in ("chelsea.png", "chelsea.png", "coffee.png")]
    body = {"dataset_id": dataset["id"], "image_ids": ids[:2], "ip_type": "stylized_scene", "ip_medium": "photography"}
    from_ids = api.post("/tailored-gen/generate_prefix", json=body)
    from_bytes = api.post("/tailored-gen/generate_prefix", json={**body, "image_ids": None,
                                                                  "images": [b64("chelsea.png")] * 2})  # fmt: skip
    assert from_ids.status_code == 200 and from_ids.json() == from_bytes.json() == {"prefix": "A photo of a tabby cat"}

    fibo = {"dataset_id": dataset["id"], "image_ids": ids * 2}  # six, of three images
    assert api.post("/tailored-gen/generate_visual_schema", json=fibo).status_code == 200
    response = other_api.post("/tailored-gen/generate_visual_schema", json=fibo)
    assert response.status_code == 404 and response.json()["error"] == f"Dataset {dataset['id']} not found."
    response = api.post("/tailored-gen/generate_visual_schema", json={"image_ids": ids * 2})
    assert (response.status_code, response.json()["error"]) == (400, "image_ids needs the dataset_id they belong to.")
    response = api.post("/tailored-gen/generate_visual_schema", json={**fibo, "images": [b64("coffee.png")] * 5})
    assert response.status_code == 400 and "not both" in response.json()["error"]
