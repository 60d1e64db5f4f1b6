"""What tests share: real photos, tokens made with the real CLI, and a client that carries a token."""

from __future__ import annotations

import base64
import contextlib
import io
from importlib.resources import files

from starlette.testclient import TestClient

from tailorset.cli import main as cli

PHOTOS = files("skimage") / "data"


def photo(name: str) -> bytes:
    """A real photo shipped with scikit-image: astronaut.png, coffee.png, chelsea.png, camera.png…"""
    return (PHOTOS / name).read_bytes()


def create_token(org: str, *extra: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(["token", "create", "--org", org, *extra]) == 0
    return out.getvalue().strip().splitlines()[-1]


class Api:
    """A client for one organization: every call carries its api_token."""

    def __init__(self, client: TestClient, token: str):
        self.client, self.token = client, token

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda url, **kwargs: call(url, headers={"api_token": self.token, **kwargs.pop("headers", {})}, **kwargs)

    # Shortcuts for the set-up most tests need.
    def project(self, **fields) -> dict:
        body = {"project_name": "Cats", "ip_medium": "photography", "ip_type": "other", **fields}
        response = self.post("/tailored-gen/projects", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def dataset(self, project_id: int | None = None, **fields) -> dict:
        project_id = project_id or self.project(training_version=fields.get("training_version"))["id"]
        response = self.post("/tailored-gen/datasets", json={"project_id": project_id, "name": "Set", **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def upload(self, dataset_id: int, name: str = "chelsea.png", **fields) -> dict:
        body = {"file": base64.b64encode(photo(name)).decode(), "image_name": name, **fields}
        response = self.post(f"/tailored-gen/datasets/{dataset_id}/images", json=body)
        assert response.status_code == 201, response.text
        return response.json()
