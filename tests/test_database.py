"""The hot paths' database runner (Database.read_blocking and write_blocking): connections that went away,
a SQLite file locked by another process, and the WAL it leaves for a thread to checkpoint."""

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tailorset.db.engine import sync_url
from tests.support import Api, create_token, wait_until


@pytest.fixture
def image(api) -> tuple[str, int]:
    dataset = api.dataset()
    return f"/tailored-gen/datasets/{dataset['id']}/images", api.upload(dataset["id"])["id"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_requests_outlive_connections_the_server_closed(api, image, database_url):
    """As after a server restart or a proxy's idle timeout: every pooled connection is closed by the server."""
    url, image_id = image
    assert api.get(f"{url}/{image_id}").status_code == 200  # the pool holds connections now
    engine = create_engine(sync_url(database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        ended = connection.execute(
            text("SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        ).all()  # fmt: skip
        assert len(ended) >= 1

        def gone() -> bool:  # the terminated backends have exited, so the server has closed their sockets
            still = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)")
            return connection.execute(still, {"pids": [pid for pid, _ in ended]}).scalar() == 0

        wait_until(gone, 30, "the terminated backends are still running")
    engine.dispose()
    assert api.get(f"{url}/{image_id}").status_code == 200
    response = api.put(f"{url}/{image_id}", json={"caption": "after the restart"})
    assert response.status_code == 200 and response.json()["caption"] == "after the restart"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_caption_write_waits_for_another_process_holding_the_file(api, image, database_url):
    """The write does not fail, nor hold up other requests, while another process has the write lock."""
    url, image_id = image
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction
    answered = {}

    def put() -> None:
        answered["put"] = api.put(f"{url}/{image_id}", json={"caption": "waited its turn"})

    writer = threading.Thread(target=put)
    writer.start()
    time.sleep(0.5)
    assert "put" not in answered  # still waiting for the lock
    assert api.get(f"{url}/{image_id}").status_code == 200  # meanwhile the server answers others
    other.execute("COMMIT")
    other.close()
    writer.join(30)
    assert answered["put"].status_code == 200 and answered["put"].json()["caption"] == "waited its turn"
    history = api.get(f"{url}/{image_id}/captions").json()
    assert history[-1]["caption"] == "waited its turn"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_wal_is_checkpointed_behind_the_caption_writes(client, image, database_url):
    """The event loop's commits never checkpoint; a thread does, so the WAL does not grow without bound."""
    url, image_id = image
    api = Api(client, create_token("acme", "--rate-limit", "100000/minute"))  # the same organization
    wal = Path(database_url.removeprefix("sqlite:///") + "-wal")
    for n in range(1000):
        assert api.put(f"{url}/{image_id}", json={"caption": f"edit {n}"}).status_code == 200
    # Each write adds some 20 KB to the WAL; without checkpoints a thousand of them make 20 MB. (The last
    # checkpoint's thread may still be running.)
    wait_until(lambda: wal.stat().st_size < 8 * 1024 * 1024, 30, lambda: f"the WAL holds {wal.stat().st_size:,} bytes")
    assert api.get(f"{url}/{image_id}").json()["caption"] == "edit 999"
