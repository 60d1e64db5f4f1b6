"""deploy/: the Compose file, the Kubernetes manifests and the Dockerfile parse, and say only what tailorset
understands: real settings, real commands, real probe paths. (Docker itself cannot run here.)"""

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tailorset.app import create_app
from tailorset.cli import parser
from tailorset.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
ROOT = DEPLOY.parent


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def manifests() -> list[dict]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if doc]


def containers() -> list[dict]:
    return [
        c for doc in manifests() if doc["kind"] == "Deployment" for c in doc["spec"]["template"]["spec"]["containers"]
    ]


def assert_runs(command: list[str]) -> None:
    assert command[0] == "tailorset", command
    try:
        parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"`{shlex.join(command)}` is not a tailorset command line")


def test_every_setting_named_is_a_real_one():
    text = "\n".join(path.read_text() for path in DEPLOY.iterdir() if path.is_file())
    named = set(re.findall(r"\bTAILORSET_[A-Z0-9_]+", text))
    assert {"TAILORSET_STORAGE", "TAILORSET_S3_BUCKET", "TAILORSET_EMBEDDED_WORKER"} <= named
    unknown = {name for name in named if name.removeprefix("TAILORSET_").lower() not in Settings.model_fields}
    assert not unknown, f"not tailorset settings: {sorted(unknown)}"


def test_the_compose_file():
    services = compose()["services"]
    assert {"api", "worker", "proxy", "postgres", "redis", "seaweedfs"} <= set(services)
    api, worker = services["api"], services["worker"]
    assert_runs(api["command"])
    assert_runs(worker["command"])
    assert api["command"][1:2] == ["serve"] and worker["command"][1:2] == ["worker"]
    # API and workers share one configuration; the jobs run in the workers only.
    assert api["environment"] == worker["environment"]
    env = api["environment"]
    assert env["TAILORSET_EMBEDDED_WORKER"] == "false" and env["TAILORSET_STORAGE"] == "s3"
    assert (
        env["TAILORSET_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["TAILORSET_DATABASE_URL"]
    )
    assert env["TAILORSET_REDIS_URL"].startswith("redis://redis:")
    assert env["TAILORSET_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    # The proxy passes the api_token header, which nginx drops unless told otherwise.
    assert "underscores_in_headers on;" in compose()["configs"]["nginx"]["content"]
    seaweed = services["seaweedfs"]["command"]
    assert "-s3" in seaweed and "-s3.config=/etc/seaweedfs/s3.json" in seaweed
    assert (DEPLOY / compose()["x-tailorset"]["build"]["dockerfile"].removeprefix("deploy/")).is_file()


def test_the_kubernetes_manifests():
    kinds = {doc["kind"]: doc for doc in manifests()}
    assert {"Secret", "ConfigMap", "Deployment", "Service", "Ingress"} <= set(kinds)
    for doc in manifests():
        assert doc["apiVersion"] and doc["metadata"]["name"]
    routes = set(create_app().openapi()["paths"])
    by_name = {c["name"]: c for c in containers()}
    assert set(by_name) == {"api", "worker"}
    for container in by_name.values():
        assert_runs(container["command"])
        assert {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]} == {"tailorset"}
    api = by_name["api"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["path"] in routes
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert kinds["ConfigMap"]["data"]["TAILORSET_EMBEDDED_WORKER"] == "false"
    # Every Service and Deployment selects its own pods.
    for doc in manifests():
        if doc["kind"] == "Deployment":
            assert (
                doc["spec"]["selector"]["matchLabels"].items() <= doc["spec"]["template"]["metadata"]["labels"].items()
            )
    service_selector = kinds["Service"]["spec"]["selector"]
    assert any(
        service_selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        for d in manifests()
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "tailorset-api"
    )


def test_the_dockerfile():
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"{line}: {source} is not in the build context"
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert_runs(yaml.safe_load(cmd.removeprefix("CMD ")))  # the exec form is a JSON list
