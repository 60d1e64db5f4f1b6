"""Bria's own Python SDK (`bria-client`, a test dependency) drives a real tailorset server, no code of ours between.

The SDK builds every URL as `{base_url}/v2/{endpoint}` and reads bodies as Bria's v2 envelope (`result` /
`error` / `request_id`). A resource body is not that envelope, so the SDK hands it over as an error object whose
`code` is the HTTP status and whose `details` hold the body (a list, or an object with a `status` field); a real
error under /v2 is Bria's v2 error object, so the SDK's BriaError carries tailorset's own sentence."""

from __future__ import annotations

import json

import pytest
from bria_client import BriaSyncClient
from bria_client.toolkit import BriaException
from httpx_retries import Retry

from tests.support import create_token

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def body(response) -> tuple[int, object]:
    """The HTTP status and the JSON body, as the SDK exposes a response that is not a v2 envelope."""
    assert response.error is not None, response
    return response.error.code, json.loads(response.error.details)


@pytest.fixture
def bria(server) -> BriaSyncClient:
    token = create_token("bria-sdk", "--rate-limit", "enterprise")
    with BriaSyncClient(base_url=server, api_token=token, retry=Retry(total=0)) as client:
        yield client


def test_bria_client_lists_creates_reads_and_sees_errors(bria, server):
    assert body(bria.get("tailored-gen/projects")) == (200, [])
    project = body(
        bria.engine.post("tailored-gen/projects", {"project_name": "SDK", "ip_medium": "photography",
                                                   "ip_type": "stylized_scene"})
    )  # fmt: skip
    assert project[0] == 201 and project[1]["project_name"] == "SDK"
    code, listed = body(bria.get("tailored-gen/projects"))
    assert code == 200 and [p["id"] for p in listed] == [project[1]["id"]]

    code, dataset = body(bria.engine.post("tailored-gen/datasets", {"project_id": project[1]["id"], "name": "Set"}))
    assert code == 201 and dataset["status"] == "draft" and dataset["name"] == "Set"
    assert body(bria.get(f"tailored-gen/datasets/{dataset['id']}/images")) == (200, [])

    missing = bria.get("tailored-gen/datasets/987654")
    assert missing.error.code == 404 and missing.error.message == "Dataset 987654 not found."
    assert missing.request_id not in (None, "unknown")
    with pytest.raises(BriaException) as raised:
        missing.raise_for_status()
    assert raised.value.code == 404 and raised.value.message == "Dataset 987654 not found."

    # A FIBO dataset in a project locked to the legacy family: Bria's 409.
    conflict = bria.engine.post(
        "tailored-gen/datasets", {"project_id": project[1]["id"], "name": "F", "training_version": "fibo"}
    )
    assert conflict.error.code == 409 and conflict.error.message.endswith(".") and len(conflict.error.message) > 20
    code, datasets = body(bria.get("tailored-gen/datasets"))
    assert code == 200 and [d["id"] for d in datasets] == [dataset["id"]]  # the 409 stored nothing
