"""Get Dataset and Get Images answer with Presenter.response: the body serialised once, without FastAPI's check of it
against the route's response_model. What a client gets must be, byte for byte, what that check and FastAPI's own
serialisation would have sent for the same body (the response_model stays the OpenAPI document's word), for every
kind of caption (manual, automatic with its confidence, FIBO), review fields asked for with ?include=, a
Regenerate All job's progress, and pages with their X-Next-Cursor."""

from __future__ import annotations

import functools

import anyio
import pytest
from fastapi.routing import APIRoute, serialize_response

from tailorset.api import datasets as dataset_routes
from tailorset.api import images as image_routes
from tailorset.api import present
from tailorset.api.datasets import get_dataset
from tailorset.api.images import list_images
from tests.api.test_fibo_captions import CANONICAL
from tests.support import Api, wait_until_done


@pytest.fixture
def given(monkeypatch) -> list:
    """The bodies handed to Presenter.response, in order."""
    bodies = []
    respond = present.Presenter.response

    def recorded(body, headers=None):
        bodies.append(body)
        return respond(body, headers)

    monkeypatch.setattr(present.Presenter, "response", staticmethod(recorded))
    return bodies


def through_the_response_model(endpoint, body) -> bytes:
    """What FastAPI sends for this route's return value when it is not a Response: validated against the route's
    response_model and serialised with the route's options, as fastapi.routing does."""
    routes = (*dataset_routes.router.routes, *image_routes.router.routes)
    route = next(r for r in routes if isinstance(r, APIRoute) and r.endpoint is endpoint)
    serialize = functools.partial(
        serialize_response, field=route.response_field, response_content=body,
        exclude_unset=route.response_model_exclude_unset, by_alias=route.response_model_by_alias, dump_json=True,
    )  # fmt: skip
    return anyio.run(serialize)


@pytest.fixture
def datasets(api: Api) -> tuple[int, int]:
    """A legacy dataset (automatic and manual captions, one image flagged with a note, a finished Regenerate All)
    and a FIBO one (an automatic and a manual caption)."""
    legacy = api.dataset()["id"]
    images = [api.upload(legacy, name)["id"] for name in ("chelsea.png", "coffee.png", "astronaut.png")]
    assert api.put(f"/tailored-gen/datasets/{legacy}/images", json={}).status_code == 202
    wait_until_done(api, legacy)
    path = f"/tailored-gen/datasets/{legacy}/images"
    assert api.put(f"{path}/{images[1]}", json={"caption": 'Une tasse de café ☕, "vue" d\'en haut'}).status_code == 200
    flag = {"state": "flagged", "note": "the cat's ear is cut off ✂"}
    assert api.post(f"{path}/{images[0]}/review", json=flag).status_code == 200
    fibo = api.dataset(training_version="fibo")["id"]
    manual = api.upload(fibo, "coffee.png")["id"]
    api.upload(fibo, "chelsea.png")
    assert api.put(f"/tailored-gen/datasets/{fibo}/images/{manual}", json={"caption": CANONICAL}).status_code == 200
    return legacy, fibo


def test_bodies_are_those_of_the_response_model(api, datasets, given):
    legacy, fibo = datasets
    requests = [
        (get_dataset, f"/tailored-gen/datasets/{legacy}", {}),
        (get_dataset, f"/tailored-gen/datasets/{legacy}", {"include": "confidence,review"}),
        (get_dataset, f"/tailored-gen/datasets/{legacy}", {"max_images": 2, "include": "review"}),
        (get_dataset, f"/tailored-gen/datasets/{fibo}", {"include": "confidence"}),
        (list_images, f"/tailored-gen/datasets/{legacy}/images", {}),
        (list_images, f"/tailored-gen/datasets/{legacy}/images", {"include": "review,confidence"}),
        (list_images, f"/tailored-gen/datasets/{legacy}/images", {"order": "review", "limit": 2, "include": "review"}),
        (list_images, f"/tailored-gen/datasets/{legacy}/images", {"limit": 2, "include": "review"}),
        (list_images, f"/tailored-gen/datasets/{legacy}/images", {"caption_source": "manual"}),
        (list_images, f"/tailored-gen/datasets/{fibo}/images", {"include": "confidence"}),
    ]
    for endpoint, path, params in requests:
        given.clear()
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        assert len(given) == 1, f"{path} {params}: not answered by Presenter.response"
        assert response.content == through_the_response_model(endpoint, given[0]), f"{path} {params}"
        assert response.headers["content-type"] == "application/json"
    body = api.get(f"/tailored-gen/datasets/{legacy}", params={"include": "review"}).json()
    assert body["captions_update"]["status"] == "completed" and body["images_count"] == 3
    assert [i["review_state"] for i in body["images"]] == ["flagged", "approved", "unreviewed"]
    assert all(i[f].endswith("Z") for i in body["images"] for f in ("created_at", "updated_at", "reviewed_at") if i[f])


def test_a_page_carries_its_cursor_after_the_body_headers(api, datasets):
    """The headers in FastAPI's order (its own first, then the route's): the bytes on the wire as before."""
    legacy, _ = datasets
    first = api.get(f"/tailored-gen/datasets/{legacy}/images", params={"limit": 2})
    names = [name for name, _ in first.headers.multi_items()]
    assert names[:4] == ["content-length", "content-type", "x-next-cursor", "link"]
    cursor = first.headers["x-next-cursor"]
    assert first.headers["link"].endswith(f'&cursor={cursor}>; rel="next"')
    rest = api.get(f"/tailored-gen/datasets/{legacy}/images", params={"limit": 2, "cursor": cursor})
    assert "x-next-cursor" not in rest.headers
    assert [i["id"] for i in first.json() + rest.json()] == [i["id"] for i in api.get(first.url.path).json()]
