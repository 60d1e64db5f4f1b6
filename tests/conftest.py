"""Fixtures: every API test runs against SQLite and against PostgreSQL, through HTTP, as a client would.

Tests that bring a system up (a database-backed app, a server, a subprocess, a browser, the ONNX models) are
marked `slow` here, by the fixtures they use and the modules they import, so a new test is classified
without anyone remembering to: `make test-fast` (pytest -m "not slow") runs the rest in seconds."""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, make_url, text
from starlette.testclient import TestClient

from tailorset.app import create_app
from tailorset.config import Settings
from tailorset.db.engine import migrate, sync_url
from tests.s3 import SeaweedS3, seaweedfs
from tests.servers import serve
from tests.support import Api, create_token

POSTGRES_URL = os.environ.get("TAILORSET_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TAILORSET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# A test using any of these needs a database, a server, a browser or the ONNX captioner: a system test.
SYSTEM_FIXTURES = frozenset(
    ("database_url", "postgres_url", "redis_url", "s3_server", "server", "browser", "captioner")
)
# A test module holding one of these starts processes or servers of its own, or runs the ONNX models.
SYSTEM_IMPORTS = frozenset(
    ("subprocess", "multiprocessing", "tests.servers", "tests.s3", "tests.captioners.openai_server", "onnxruntime")
)
# Kinds of system test by name, whatever their fixtures: crashes, scale-out, fuzzing, the walkthrough, migrations.
SYSTEM_MODULES = ("crash", "scale_out", "fuzz", "walkthrough", "migrations", "concurrency", "operations")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "slow: a system test (database, servers, subprocesses, browser, ONNX); deselect with -m 'not slow'"
    )


def _imports_a_system(module) -> bool:
    return any(
        getattr(value, "__name__", None) in SYSTEM_IMPORTS or getattr(value, "__module__", None) in SYSTEM_IMPORTS
        for value in vars(module).values()
    )


def pytest_collection_modifyitems(config, items) -> None:
    slow = pytest.mark.slow
    verdicts: dict[str, bool] = {}
    for item in items:
        module = getattr(item, "module", None)
        name = module.__name__ if module else item.nodeid
        if name not in verdicts:
            path = Path(str(item.path))
            verdicts[name] = (
                "ui" in path.parent.parts[-1:]
                or any(kind in path.stem for kind in SYSTEM_MODULES)
                or (module is not None and _imports_a_system(module))
            )
        if verdicts[name] or SYSTEM_FIXTURES.intersection(item.fixturenames):
            item.add_marker(slow)


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


OWNED_SEQUENCES = """
SELECT s.relname, t.relname FROM pg_class s
JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype IN ('a', 'i')
JOIN pg_class t ON d.refobjid = t.oid
WHERE s.relkind = 'S' AND s.relnamespace = 'public'::regnamespace"""


class PostgresTables:
    """Empties this run's PostgreSQL database between tests, as TRUNCATE … RESTART IDENTITY would, but with
    DELETE and a sequence restart: on tables this small that takes 2 ms, TRUNCATE 0.1-0.2 s.
    Every table but the migration state and the server secrets is emptied, children first, and their sequences
    start again at 1, so each test sees a database exactly as empty as a new one."""

    KEPT = ("alembic_version", "server_secrets")

    def __init__(self, url: str):
        # pre-ping: a test may terminate every connection to the database (tests/test_database.py does)
        self.engine: Engine = create_engine(sync_url(url), pool_pre_ping=True)
        with self.engine.connect() as connection:
            inspector = inspect(connection)
            sorted_tables = inspector.get_sorted_table_and_fkc_names()
            # Foreign keys in a cycle would come last, unsorted: no DELETE order would then be safe.
            assert not sorted_tables[-1][1], f"foreign keys in a cycle: {sorted_tables[-1][1]}"
            ordered = [table for table, _ in sorted_tables if table]
            # The sequences the emptied tables own (serial and identity columns), as RESTART IDENTITY finds them.
            owned = connection.execute(text(OWNED_SEQUENCES)).all()
        tables = [table for table in reversed(ordered) if table not in self.KEPT]
        sequences = sorted(sequence for sequence, table in owned if table in tables)
        self.sql = "; ".join(
            [*(f'DELETE FROM "{t}"' for t in tables), *(f'ALTER SEQUENCE "{s}" RESTART' for s in sequences)]
        )

    def empty(self) -> None:
        with self.engine.begin() as connection:
            connection.exec_driver_sql(self.sql)

    def dispose(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="session")
def postgres_tables(postgres_url) -> PostgresTables:
    tables = PostgresTables(postgres_url)
    yield tables
    tables.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite database migrated once per run: each test starts from a copy of the file (a migration takes
    about a second, a copy a millisecond; `serve` and the CLI still migrate, and find nothing to do)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "tailorset.db"
    migrate(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:  # the WAL folded into the file: the file is the whole database
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


def make_database_url(request, kind: str, folder: Path) -> str:
    """An empty, migrated database: a copy of the SQLite template in `folder`, or this run's PostgreSQL
    database, emptied."""
    if kind == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), folder / "tailorset.db")
        return f"sqlite:///{folder / 'tailorset.db'}"
    request.getfixturevalue("postgres_tables").empty()
    return request.getfixturevalue("postgres_url")


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
