"""The README's walk-through, as a new user runs it: the real command line and a real server socket."""

import base64
import os
import subprocess
import sys

import httpx
import pytest

from tests.support import free_ports, photo, wait_for


@pytest.fixture
def server(env):
    (port,) = free_ports()
    process = subprocess.Popen(
        [sys.executable, "-m", "tailorset", "serve", "--port", str(port), "--log-level", "warning"],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(base, process)
    yield base
    process.terminate()
    process.wait(timeout=20)


def test_from_token_to_frozen_dataset(server):
    created = subprocess.run(
        [sys.executable, "-m", "tailorset", "token", "create", "--org", "studio"],
        capture_output=True, text=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ts_") and " " not in token

    with httpx.Client(base_url=server, headers={"api_token": token}, timeout=120) as http:
        project = http.post(
            "/tailored-gen/projects",
            json={"project_name": "Studio photos", "ip_medium": "photography", "ip_type": "stylized_scene"},
        )
        assert project.status_code == 201
        dataset = http.post("/tailored-gen/datasets", json={"project_id": project.json()["id"], "name": "First set"})
        assert dataset.status_code == 201
        dataset_id = dataset.json()["id"]
        assert http.put(f"/tailored-gen/datasets/{dataset_id}", json={"caption_prefix": "sks style"}).status_code == 200

        images = {}
        for name, expected in (
            ("astronaut.png", ("person", "woman", "man")),
            ("coffee.png", ("espresso", "coffee", "cup")),
            ("chelsea.png", ("cat",)),
        ):
            response = http.post(
                f"/tailored-gen/datasets/{dataset_id}/images",
                json={"file": base64.b64encode(photo(name)).decode(), "image_name": name},
            )
            assert response.status_code == 201, response.text
            image = response.json()
            assert image["caption"].startswith("sks style, ") and image["caption_source"] == "automatic"
            assert any(word in image["caption"] for word in expected), image["caption"]
            images[name] = image
            assert httpx.get(image["thumbnail_url"]).status_code == 200

        edit = http.put(
            f"/tailored-gen/datasets/{dataset_id}/images/{images['coffee.png']['id']}",
            json={"caption": "sks style, a cup of espresso on a saucer, top view"},
        )
        assert edit.status_code == 200 and edit.json()["caption_source"] == "manual"
        regenerate = http.put(
            f"/tailored-gen/datasets/{dataset_id}/images/{images['chelsea.png']['id']}",
            json={"regenerate_caption": True},
        )
        assert regenerate.status_code == 200 and regenerate.json()["caption"] == images["chelsea.png"]["caption"]

        complete = http.put(f"/tailored-gen/datasets/{dataset_id}", json={"status": "completed"})
        assert complete.status_code == 200 and complete.json()["status"] == "completed"
        frozen = http.put(
            f"/tailored-gen/datasets/{dataset_id}/images/{images['chelsea.png']['id']}", json={"caption": "too late"}
        )
        assert frozen.status_code == 409
        assert frozen.json()["error"].startswith(f"Dataset {dataset_id} is completed")
