"""`tailorset check DATASET` against a real server: non-zero while something should stop training, 0 once fixed."""

from __future__ import annotations

import httpx

from tests.api.test_health import LONG
from tests.support import create_token, photo, run_cli


def test_check_gates_a_training_pipeline(server):
    token = create_token("studio")
    api = httpx.Client(base_url=f"{server}/tailored-gen", headers={"api_token": token}, timeout=60)
    project = api.post("/projects", json={"project_name": "P", "ip_medium": "photography", "ip_type": "other"}).json()
    dataset = api.post("/datasets", json={"project_id": project["id"], "name": "Set"}).json()
    url = f"/datasets/{dataset['id']}/images"
    ids = [api.post(url, files={"file": (name, photo(name))}).json()["id"] for name in ("chelsea.png", "coffee.png")]
    api.put(f"{url}/{ids[1]}", json={"caption": LONG})

    code, out, _ = run_cli("check", str(dataset["id"]), "--url", server, "--token", token)
    assert code == 1
    assert "NOT READY; 2 blocking" in out
    assert (
        f"BLOCKING  1 caption: longer than its text encoder reads; the rest is cut off in training. Images: {ids[1]}."
        in out
    )
    assert f"BLOCKING  1 caption: the dataset's caption prefix (trigger) is missing. Images: {ids[1]}." in out

    api.put(f"{url}/{ids[1]}", json={"caption": "A photo of a cup of espresso on a saucer"})
    code, out, _ = run_cli("check", str(dataset["id"]), "--url", server, "--token", token)
    assert code == 0, out
    assert "ready; 0 blocking" in out and "Review: 1 of 2 reviewed (0 flagged)." in out
    code, _, _ = run_cli("check", str(dataset["id"]), "--url", server, "--token", token, "--strict")
    assert code == 1  # warnings: photos under 1024 px, one caption unreviewed
    code, _, err = run_cli("check", "999999", "--url", server, "--token", token)
    assert code == 1 and "Dataset 999999 not found" in err
    api.close()
