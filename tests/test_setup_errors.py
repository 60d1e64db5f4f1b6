"""A setting that names something unusable — a PostgreSQL server, database, user or password, an S3 endpoint,
Redis — is one sentence with its fix at the command line, not a traceback. Only 127.0.0.1 is ever contacted."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from tailorset.db.engine import _connection_problem, sync_url
from tests.conftest import POSTGRES_URL
from tests.servers import TAILORSET, free_port, serve
from tests.support import run_cli

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # each test names its own


def postgres(**parts) -> str:
    return make_url(POSTGRES_URL).set(**parts).render_as_string(hide_password=False)


@pytest.fixture
def admin(postgres_url):
    engine = create_engine(sync_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def token_create(monkeypatch, url: str) -> tuple[int, str, str]:
    monkeypatch.setenv("TAILORSET_DATABASE_URL", url)
    return run_cli("token", "create", "--org", "setup")


@sqlite_only
def test_an_unreachable_server_or_unknown_user(env, monkeypatch):
    port = free_port()
    code, out, err = token_create(monkeypatch, postgres(host="127.0.0.1", port=port, database="tailorset"))
    assert (code, out) == (2, "")
    assert err == (
        f"error: PostgreSQL at 127.0.0.1:{port} does not answer (Connection refused): start it, or fix the host "
        "and port in TAILORSET_DATABASE_URL.\n"
    )
    code, _, err = token_create(monkeypatch, postgres(username="nobody_here"))
    assert code == 2 and err.startswith("error: PostgreSQL at ") and "has no user nobody_here: create it" in err


@sqlite_only
def test_a_missing_database_is_created_when_the_user_may_and_explained_when_not(env, monkeypatch, admin):
    name = f"tailorset_new_{uuid.uuid4().hex[:8]}"
    role = f"tailorset_nocreate_{uuid.uuid4().hex[:8]}"
    try:
        code, out, _ = token_create(monkeypatch, postgres(database=name))
        assert code == 0 and out.strip().splitlines()[-1].startswith("ts_")  # created, migrated, token made
        with admin.connect() as connection:
            connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))  # no CREATEDB
        other = f"{name}_2"
        code, _, err = token_create(monkeypatch, postgres(database=other, username=role))
        host = make_url(POSTGRES_URL)
        assert (code, err) == (2, (
            f"error: PostgreSQL at {host.host}:{host.port or 5432} has no database '{other}', and user {role} may "
            f"not create it: create it (createdb -h {host.host} -p {host.port or 5432} -O {role} {other}), or let "
            f"tailorset create it by granting CREATEDB to {role}.\n"
        ))  # fmt: skip
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


def test_a_wrong_password_is_named_without_the_password():
    # The test server trusts every local user, so the refusal psycopg would report is given here.
    url = make_url("postgresql+psycopg://studio:s3cret@127.0.0.1:5432/tailorset")
    refusal = OperationalError("connect", {}, Exception('FATAL:  password authentication failed for user "studio"'))
    message = _connection_problem(url, refusal)
    assert message == (
        "PostgreSQL at 127.0.0.1:5432 refused the password of user studio: fix it in TAILORSET_DATABASE_URL."
    )
    assert "s3cret" not in message


@sqlite_only
def test_serve_names_an_unreachable_s3_endpoint(env, tmp_path):
    port = free_port()
    environment = {**os.environ, **env, "TAILORSET_STORAGE": "s3", "TAILORSET_S3_BUCKET": "photos",
                   "TAILORSET_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "TAILORSET_S3_ACCESS_KEY_ID": "k",
                   "TAILORSET_S3_SECRET_ACCESS_KEY": "s", "TAILORSET_S3_REGION": "us-east-1"}  # fmt: skip
    done = subprocess.run([*TAILORSET, "serve", "--port", str(free_port())], env=environment, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: The S3 bucket 'photos' at http://127.0.0.1:{port} could not be reached (Could not connect to the "
        f'endpoint URL: "http://127.0.0.1:{port}/photos"): start the S3 server, or fix TAILORSET_S3_ENDPOINT_URL.'
    )


@sqlite_only
def test_serve_warns_of_an_unreachable_redis_and_starts(env, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with serve({**os.environ, **env, "TAILORSET_REDIS_URL": f"redis://127.0.0.1:{port}/0"}, log):
        pass
    warning = next(line for line in log.read_text().splitlines() if line.startswith("warning:"))
    assert warning.startswith(f"warning: Redis at 127.0.0.1:{port} does not answer (ConnectionError: ")
    assert warning.endswith("rate limits are counted per process until it does; start it, or fix TAILORSET_REDIS_URL.")
