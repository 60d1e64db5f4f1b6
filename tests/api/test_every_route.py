"""Properties every API route must have, checked route by route. The routes are read from the app's
own OpenAPI document, so a new route without an entry in ROUTES fails these tests until it has one.

* Another organization's resources are invisible: 404 on every route that names one, and nothing
  of theirs in any list.
* A deleted project, dataset or image answers 410 on every route that names it, for
  TAILORSET_TOMBSTONE_RETENTION_DAYS; after that, 404 as if it had never existed."""

import base64
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text

from tailorset.db.engine import sync_url
from tailorset.db.models import utcnow
from tests.support import photo

UPLOAD = {"file": base64.b64encode(photo("coffee.png")).decode()}
NAMES, LISTS, NEITHER = "names a resource", "lists the caller's resources", "names no resource"

# (method, path) → (what it does, a body that would succeed for the resource's owner)
ROUTES = {
    ("POST", "/tailored-gen/projects"): (NEITHER, None),
    ("GET", "/tailored-gen/projects"): (LISTS, None),
    ("GET", "/tailored-gen/projects/{project_id}"): (NAMES, None),
    ("PUT", "/tailored-gen/projects/{project_id}"): (NAMES, {"project_name": "renamed"}),
    ("DELETE", "/tailored-gen/projects/{project_id}"): (NAMES, None),
    ("GET", "/tailored-gen/projects/{project_id}/datasets"): (NAMES, None),
    ("POST", "/tailored-gen/datasets"): (NAMES, {"project_id": "{project_id}", "name": "another"}),
    ("GET", "/tailored-gen/datasets"): (LISTS, None),
    ("GET", "/tailored-gen/datasets/{dataset_id}"): (NAMES, None),
    ("PUT", "/tailored-gen/datasets/{dataset_id}"): (NAMES, {"name": "renamed"}),
    ("DELETE", "/tailored-gen/datasets/{dataset_id}"): (NAMES, None),
    ("POST", "/tailored-gen/datasets/{dataset_id}/clone"): (NAMES, None),
    ("POST", "/tailored-gen/datasets/{dataset_id}/images"): (NAMES, UPLOAD),
    ("GET", "/tailored-gen/datasets/{dataset_id}/images"): (NAMES, None),
    ("PUT", "/tailored-gen/datasets/{dataset_id}/images"): (NAMES, {}),
    ("GET", "/tailored-gen/datasets/{dataset_id}/images/{image_id}"): (NAMES, None),
    ("PUT", "/tailored-gen/datasets/{dataset_id}/images/{image_id}"): (NAMES, {"caption": "changed"}),
    ("DELETE", "/tailored-gen/datasets/{dataset_id}/images/{image_id}"): (NAMES, None),
    ("GET", "/tailored-gen/datasets/{dataset_id}/images/{image_id}/captions"): (NAMES, None),
    ("POST", "/tailored-gen/datasets/{dataset_id}/images/{image_id}/captions/{revision_id}/restore"): (NAMES, None),
    ("POST", "/tailored-gen/datasets/{dataset_id}/captions/replace"): (NAMES, {"find": "a", "replace": "b"}),
    ("POST", "/tailored-gen/datasets/{dataset_id}/captions/batches/{batch_id}/undo"): (NAMES, None),
    ("POST", "/tailored-gen/datasets/{dataset_id}/images/bulk-upload"): (NAMES, {"zip_url": "http://127.0.0.1/a.zip"}),
    ("GET", "/tailored-gen/datasets/{dataset_id}/images/bulk-upload/status"): (NAMES, None),
    ("GET", "/tailored-gen/datasets/{dataset_id}/export?format=kohya"): (NAMES, None),
    ("POST", "/tailored-gen/datasets/{dataset_id}/images/{image_id}/review"): (NAMES, {"state": "approved"}),
    ("POST", "/tailored-gen/datasets/{dataset_id}/images/review"): (NAMES, {"state": "approved", "filter": {}}),
    ("GET", "/tailored-gen/datasets/{dataset_id}/review"): (NAMES, None),
    ("POST", "/tailored-gen/datasets/{dataset_id}/images/delete"): (NAMES, {"image_ids": ["{image_id}"]}),
    ("POST", "/tailored-gen/datasets/{dataset_id}/captions/lint"): (NAMES, {"caption": "a cat"}),
    ("GET", "/tailored-gen/datasets/{dataset_id}/images/{image_id}/lint"): (NAMES, None),
    ("GET", "/tailored-gen/datasets/{dataset_id}/captions/lint"): (NAMES, None),
    ("GET", "/tailored-gen/datasets/{dataset_id}/health"): (NAMES, None),
    ("GET", "/tailored-gen/datasets/{dataset_id}/download"): (NAMES, None),
    ("POST", "/tailored-gen/captions/validate"): (NEITHER, {"caption": "x"}),
    ("POST", "/tailored-gen/generate_prefix"): (NEITHER, None),
    ("POST", "/tailored-gen/generate_visual_schema"): (NEITHER, None),
    ("POST", "/tailored-gen/refine_structured_prompt"): (
        NAMES, {"dataset_id": "{dataset_id}", "structured_prompt": ' {"style": "flat"} ', "instruction": "Be bolder."},
    ),
}


def test_every_route_is_listed(client):
    doc = client.get("/openapi.json").json()
    published = {
        (m.upper(), path) for path, item in doc["paths"].items() for m in item if path.startswith("/tailored-gen")
    }
    assert published == {(m, path.split("?")[0]) for m, path in ROUTES}, "add the new route to ROUTES, with a body"


def _fill(value, ids: dict):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


def call(api, method: str, path: str, ids: dict, prefix: str = ""):
    body = ROUTES[(method, path)][1]
    kwargs = {"json": _fill(body, ids)} if body is not None else {}
    return getattr(api, method.lower())(prefix + path.format(**ids), **kwargs)


def owned(api) -> dict:
    """A project, a dataset, an image, one of its caption revisions and a replace batch, and their ids."""
    dataset = api.dataset()
    image = api.upload(dataset["id"])
    url = f"/tailored-gen/datasets/{dataset['id']}"
    batch = api.post(f"{url}/captions/replace", json={"find": "A photo", "replace": "A picture"}).json()
    revision = api.get(f"{url}/images/{image['id']}/captions").json()[0]
    return {
        "project_id": dataset["project_id"], "dataset_id": dataset["id"], "image_id": image["id"],
        "revision_id": revision["id"], "batch_id": batch["batch_id"],
    }  # fmt: skip


def snapshot(api, ids: dict) -> list:
    dataset = f"/tailored-gen/datasets/{ids['dataset_id']}"
    return [
        api.get(f"/tailored-gen/projects/{ids['project_id']}").json(),
        api.get(dataset).json(),
        api.get(f"{dataset}/images/{ids['image_id']}/captions").json(),
        api.get("/tailored-gen/datasets").json(),
    ]


@pytest.mark.parametrize("prefix", ["", "/v1", "/v2"])
def test_another_organization_gets_404_on_every_route(api, other_api, prefix):
    ids = owned(api)
    before = snapshot(api, ids)
    for (method, path), (kind, _body) in ROUTES.items():
        response = call(other_api, method, path, ids, prefix)
        if kind == NAMES:
            assert response.status_code == 404, (method, path, response.text)
            error = response.json()["error"]
            if prefix == "/v2":  # Bria's v2 error object
                assert error["code"] == 404 and error["details"] == error["message"], (method, path, response.text)
                error = error["message"]
            assert error.endswith("not found."), (method, path, response.text)
        elif kind == LISTS:
            assert response.status_code == 200 and response.json() == [], (method, path)
    assert snapshot(api, ids) == before  # …and nothing changed for the owner


def _age_tombstones(settings, days: float) -> None:
    engine = create_engine(sync_url(settings.resolved_database_url))
    with engine.begin() as connection:
        for table in ("projects", "datasets", "images"):
            connection.execute(
                text(f"UPDATE {table} SET deleted_at = :when WHERE deleted_at IS NOT NULL"),
                {"when": (utcnow() - timedelta(days=days)).replace(tzinfo=None)},
            )
    engine.dispose()


def _naming(*names: str) -> list[tuple[str, str]]:
    """The routes that name any of these ids (POST /datasets names its project in the body)."""
    return [
        (method, path)
        for (method, path), (kind, body) in ROUTES.items()
        if kind == NAMES and any("{" + name + "}" in path + str(body) for name in names)
    ]


def test_deleted_resources_are_gone_on_every_route_then_not_found(api, settings):
    ids = owned(api)
    url = f"/tailored-gen/datasets/{ids['dataset_id']}"
    assert api.delete(f"{url}/images/{ids['image_id']}").status_code == 204
    for method, path in _naming("image_id"):
        response = call(api, method, path, ids)
        assert response.status_code == 410, (method, path, response.text)
        assert response.json()["error"].startswith(f"Image {ids['image_id']} was deleted on "), (method, path)

    assert api.delete(f"/tailored-gen/projects/{ids['project_id']}").status_code == 204  # and all in it
    gone = {"project_id": "Project", "dataset_id": "Dataset"}
    for name, kind in gone.items():
        for method, path in _naming(name):
            response = call(api, method, path, ids)
            assert response.status_code == 410, (method, path, response.text)
            assert response.json()["error"].startswith(f"{kind} {ids[name]} was deleted on "), (method, path)

    retention = settings.tombstone_retention_days
    _age_tombstones(settings, retention - 1)  # still within the retention period
    assert call(api, "GET", "/tailored-gen/datasets/{dataset_id}", ids).status_code == 410
    _age_tombstones(settings, retention + 1)
    for method, path in _naming(*gone, "image_id"):
        response = call(api, method, path, ids)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"].endswith("not found."), (method, path, response.text)
