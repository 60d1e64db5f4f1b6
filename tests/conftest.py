"""Fixtures: every API test runs against SQLite and against PostgreSQL, through HTTP, as a client would."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, make_url, text
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.db.engine import migrate, sync_url
from tests.s3 import SeaweedS3, seaweedfs
from tests.servers import serve
from tests.support import Api, create_token

POSTGRES_URL = os.environ.get("TAILORSET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TAILORSET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(message: str) -> None:
    """A server the tests need is not there: skip them, but fail under CI, which must run everything."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI requires it.")
    pytest.skip(message)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """Model files (the exported ONNX classifier) are built once per test run."""
    return Path(os.environ.get("TAILORSET_TEST_MODEL_DIR") or tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A database of this test run's own on the server (runs in parallel must not share one),
    migrated once; tests truncate it between themselves."""
    try:
        engine = create_engine(sync_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
        with engine.connect():
            pass
    except Exception as exc:
        unavailable(
            f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(exc).__name__}); "
            "start it or set TAILORSET_TEST_DATABASE_URL to run the PostgreSQL tests"
        )
    name = f"tailorset_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    except Exception:  # no right to create databases: use the configured one as it is
        name, url = None, POSTGRES_URL
        with create_engine(sync_url(url)).begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    migrate(url)
    yield url
    if name:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def _truncate_postgres(url: str) -> None:
    """Empty every table but the migration state and the server secrets."""
    engine = create_engine(sync_url(url))
    with engine.begin() as connection:
        tables = [t for t in inspect(connection).get_table_names() if t not in ("alembic_version", "server_secrets")]
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_database_url(request, kind: str, folder: Path) -> str:
    """An empty database: a new SQLite file in `folder`, or this run's PostgreSQL database, emptied."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'tailorset.db'}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    return make_database_url(request, request.param, tmp_path)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> SeaweedS3:
    """One SeaweedFS for the whole run; each test keeps its files under a prefix of its own."""
    try:
        with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
            yield server
            return
    except RuntimeError as exc:
        error = exc
    unavailable(f"SeaweedFS could not start, so the S3 tests cannot run: {error}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__}); set TAILORSET_TEST_REDIS_URL")
    return REDIS_URL


@pytest.fixture
def storage_backend(request) -> str:
    return getattr(request, "param", "local")


@pytest.fixture
def env(request, monkeypatch, tmp_path, database_url, model_dir, storage_backend) -> dict[str, str]:
    """The environment a user would set: the CLI and the app read the same variables."""
    values = {
        "TAILORSET_DATA_DIR": str(tmp_path / "data"),
        "TAILORSET_DATABASE_URL": database_url,
        "TAILORSET_MODEL_DIR": str(model_dir),
    }
    if storage_backend == "s3":
        values.update(request.getfixturevalue("s3_server").env())
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


@pytest.fixture
def server(env) -> str:
    """A real `tailorset serve` on a loopback port, on this test's database: its base URL."""
    with serve() as running:
        yield running.base
