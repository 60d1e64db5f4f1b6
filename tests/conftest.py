"""Fixtures: every API test runs against SQLite and against PostgreSQL, through HTTP, as a client would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.db.engine import migrate, sync_url
from tests.support import Api, create_token

POSTGRES_URL = os.environ.get("TAILORSET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """Model files (the exported ONNX classifier) are built once per test run."""
    return Path(os.environ.get("TAILORSET_TEST_MODEL_DIR") or tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        engine = create_engine(sync_url(POSTGRES_URL))
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(exc).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI requires it.")
        pytest.skip(f"{message}; start it or set TAILORSET_TEST_DATABASE_URL to run the PostgreSQL tests.")
    # A clean schema for the run; tests then truncate between themselves.
    engine = create_engine(sync_url(POSTGRES_URL))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate(POSTGRES_URL)
    return POSTGRES_URL


def _truncate_postgres(url: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE organizations, api_tokens, projects, datasets, images RESTART IDENTITY CASCADE")
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tailorset.db'}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def env(monkeypatch, tmp_path, database_url, model_dir) -> dict[str, str]:
    """The environment a user would set: the CLI and the app read the same variables."""
    values = {
        "TAILORSET_DATA_DIR": str(tmp_path / "data"),
        "TAILORSET_DATABASE_URL": database_url,
        "TAILORSET_MODEL_DIR": str(model_dir),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def settings(env) -> Settings:
    return Settings()


@pytest.fixture
def client(settings) -> TestClient:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def api(client) -> Api:
    return Api(client, create_token("acme"))


@pytest.fixture
def other_api(client) -> Api:
    """A second organization, to prove the first one's resources are invisible to it."""
    return Api(client, create_token("globex"))
