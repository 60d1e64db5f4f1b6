"""What an operator sees: liveness, readiness, Prometheus metrics, request ids and JSON logs."""

import json
import logging
import os
import subprocess
import sys

import httpx
import pytest
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.db.engine import Database
from tests.servers import free_ports, wait_for
from tests.support import create_token, wait_until


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "queue": "ok", "storage": "ok"}}


def test_not_ready_when_the_database_is_unreachable(client):
    services = client.app.state.services
    working = services.db
    services.db = Database(f"postgresql://postgres@127.0.0.1:{free_ports()[0]}/nowhere")  # nothing listens there
    try:
        response = client.get("/readyz")
    finally:
        services.db = working
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["database"].startswith("error: ")


def test_what_startup_built_is_out_of_the_collectors_full_passes(client):
    import gc

    # Frozen once per process, at the first startup: the app, its services and every module imported by then.
    frozen = gc.get_freeze_count()
    assert frozen > 50_000
    with TestClient(create_app(Settings())):  # a second startup freezes nothing more
        assert gc.get_freeze_count() <= frozen  # (fewer: frozen objects freed by their reference count)


def test_request_ids(client):
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "trace-42"}).headers["x-request-id"] == "trace-42"
    spoofed = "a" * 65 + " <script>"
    assert client.get("/healthz", headers={"X-Request-ID": spoofed}).headers["x-request-id"] != spoofed


def test_metrics(api):
    dataset = api.dataset()
    api.upload(dataset["id"])
    api.put(f"/tailored-gen/datasets/{dataset['id']}/images", json={})
    text = api.client.get("/metrics").text
    assert (
        'tailorset_http_request_duration_seconds_count{method="POST",route="/tailored-gen/datasets/{dataset_id}/images",'
        'status="201"}' in text
    )
    assert 'tailorset_captions_generated_total{captioner="local",trigger="upload"}' in text
    assert 'tailorset_caption_duration_seconds_count{captioner="local"}' in text
    assert 'tailorset_jobs{status="queued"}' in text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_json_logs_carry_the_request_id(env):
    (port,) = free_ports()
    server = subprocess.Popen(
        [sys.executable, "-m", "tailorset", "serve", "--port", str(port)],
        env={**os.environ, "TAILORSET_LOG_FORMAT": "json"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(base, server)
        token = create_token("ops")
        response = httpx.get(base + "/tailored-gen/projects", headers={"api_token": token, "X-Request-ID": "req-7"})
        assert response.status_code == 200
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[1]
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "req-7"]
    assert access and access[0]["route"] == "/tailored-gen/projects" and access[0]["status"] == 200
    assert token not in output  # tokens never reach the logs


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_captioner_is_prepared_when_the_server_starts(settings, caplog):
    """The first upload on a new machine must not wait for the models: the server loads them at start."""
    caplog.set_level(logging.INFO, logger="tailorset.app")
    with TestClient(create_app(settings)):
        wait_until(lambda: "Captioner 'local' ready" in caplog.text, 120, "the captioner was prepared at start")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_captioner_that_cannot_load_does_not_stop_the_server(env, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("TAILORSET_CAPTIONER", "transformers")
    monkeypatch.setenv("TAILORSET_CAPTIONER_MODEL", str(tmp_path / "no-such-model"))
    caplog.set_level(logging.INFO, logger="tailorset.app")
    with TestClient(create_app(Settings())) as client:
        assert client.get("/healthz").status_code == 200
        wait_until(lambda: "could not be prepared" in caplog.text, 30, "the captioner's failure was logged")
