"""Browser tests of the web UI: a real `tailorset serve` subprocess (SQLite), driven through Debian's
Chromium by Playwright. Screenshots of each step go to test-output/ui/<test>/."""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import httpx
import pytest

from tests.servers import cli, serve
from tests.support import photo

CHROMIUM = "/usr/bin/chromium"  # Debian's package; the tests never download a browser
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "ui"
API = "/tailored-gen"
_numbers = itertools.count(1)


@pytest.fixture
def database_url(tmp_path) -> str:
    """The UI is the same on either database: these tests run on SQLite only."""
    return f"sqlite:///{tmp_path / 'tailorset.db'}"


@pytest.fixture(scope="session")
def ui_env(tmp_path_factory, model_dir) -> dict[str, str]:
    """The environment of the server and of the CLI commands the tests run (SQLite is enough here)."""
    data = tmp_path_factory.mktemp("ui-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORSET_")}
    env.update(
        TAILORSET_DATA_DIR=str(data),
        TAILORSET_DATABASE_URL=f"sqlite:///{data / 'tailorset.db'}",
        TAILORSET_MODEL_DIR=str(model_dir),
        TAILORSET_TOKEN_CACHE_SECONDS="0",  # a revoked token stops working at once (one test revokes one)
    )
    return env


@pytest.fixture(scope="session")
def server(ui_env) -> str:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "server.log").unlink(missing_ok=True)
    with serve(ui_env, OUTPUT / "server.log") as running:
        yield running.base


@pytest.fixture(scope="session")
def token(ui_env) -> str:
    # The enterprise plan: a person clicking through is far below 60/minute, a test is not.
    created = cli(ui_env, "token", "create", "--org", "studio", "--name", "reviewer", "--rate-limit", "enterprise")
    return created.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def http(server, token) -> httpx.Client:
    """The JSON API, for setting up and for checking what the browser did."""
    with httpx.Client(base_url=server + API, headers={"api_token": token}, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI requires it.")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server, request):
    context = browser.new_context(base_url=server, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def shot(page, request):
    """shot("name") saves a full-page screenshot of this step and prints where."""
    folder = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    steps = iter(range(1, 100))

    def take(name: str) -> Path:
        path = folder / f"{next(steps):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    return take


def sign_in(page, token: str, where: str = "/ui/") -> None:
    page.goto(where)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def make_dataset(http: httpx.Client, photos: list[str], **fields) -> dict:
    """A project and a dataset holding these scikit-image photos, captioned by the server."""
    version = fields.get("training_version", "max")
    project = http.post(
        "/projects",
        json={"project_name": f"Studio photos {next(_numbers)}", "ip_medium": "photography",
              "ip_type": "stylized_scene", "training_version": version},
    )  # fmt: skip
    assert project.status_code == 201, project.text
    dataset = http.post("/datasets", json={"project_id": project.json()["id"], "name": "Review set", **fields})
    assert dataset.status_code == 201, dataset.text
    dataset = dataset.json()
    if version != "fibo":
        assert http.put(f"/datasets/{dataset['id']}", json={"caption_prefix": "sks style"}).status_code == 200
    dataset["images"] = []
    for name in photos:
        uploaded = http.post(f"/datasets/{dataset['id']}/images", files={"file": (name, photo(name), "image/png")})
        assert uploaded.status_code == 201, uploaded.text
        dataset["images"].append(uploaded.json())
    return dataset
