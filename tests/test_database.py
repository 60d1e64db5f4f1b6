"""The hot paths' database runner (Database.read_blocking and write_blocking): connections that went away,
a SQLite file locked by another process, the WAL it leaves for a thread to checkpoint, and group commit."""

import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from sqlalchemy import create_engine, make_url, text

from tailorset.db.engine import Database, sync_url
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


# Group commit (db/sqlite_loop.py): writes queue, and each batch of them shares a transaction and a commit.


@pytest.fixture
def shared(tmp_path):
    """A Database on a SQLite file with a table of counters and one of notes that must name a counter."""
    url = f"sqlite:///{tmp_path}/group.db"
    with sqlite3.connect(url.removeprefix("sqlite:///")) as setup:
        setup.executescript(
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE counters (id INTEGER PRIMARY KEY, value INTEGER NOT NULL);"
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, counter_id INTEGER NOT NULL REFERENCES counters(id));"
            "INSERT INTO counters (id, value) VALUES (1, 0), (2, 0), (3, 0);"
        )
    return Database(url)


def add(connection, counter: int) -> int:
    connection.driver.execute("UPDATE counters SET value = value + 1 WHERE id = ?", (counter,))
    return counter


def add_then_fail(connection, counter: int) -> None:
    add(connection, counter)
    raise ValueError("this write fails after its first statement")


def add_with_a_note_that_fails_at_commit(connection, counter: int) -> None:
    add(connection, counter)
    connection.driver.execute("PRAGMA defer_foreign_keys = ON")  # the broken reference is found at COMMIT
    connection.driver.execute("INSERT INTO notes (counter_id) VALUES (999)")


def values(database: Database) -> dict[int, int]:
    path = make_url(database.url).database
    with closing(sqlite3.connect(path)) as connection:
        return dict(connection.execute("SELECT id, value FROM counters").fetchall())


def run_together(database: Database, *calls) -> list:
    """Each call (a coroutine function and its arguments) as a task started in the same turn of the loop,
    in order; their results or exceptions, in order."""
    outcomes: list = [None] * len(calls)

    async def main():
        async def one(n, function, *args):
            try:
                outcomes[n] = await function(*args)
            except Exception as exc:
                outcomes[n] = exc

        async with anyio.create_task_group() as group:
            for n, (function, *args) in enumerate(calls):
                group.start_soon(one, n, function, *args)
        await database.dispose()

    anyio.run(main)
    return outcomes


def test_writes_of_one_turn_share_a_commit_that_readers_see_only_once_made(shared):
    seen_meanwhile = {}

    def read_all(connection) -> dict:
        return dict(connection.driver.execute("SELECT id, value FROM counters").fetchall())

    async def read():
        seen_meanwhile.update(await shared.read_blocking(read_all))

    outcomes = run_together(
        shared,
        (shared.write_blocking, add, 1),  # queued; its batch runs after this turn of the loop
        (shared.write_blocking, add, 2),  # queued with it
        (read,),  # reads before the batch commits
        (shared.write_blocking, add, 3),
    )
    assert outcomes == [1, 2, None, 3]
    assert seen_meanwhile == {1: 0, 2: 0, 3: 0}  # nothing before the commit
    assert values(shared) == {1: 1, 2: 1, 3: 1}  # everything after it


def test_a_failing_write_takes_back_only_its_own_statements(shared):
    outcomes = run_together(
        shared,
        (shared.write_blocking, add, 1),
        (shared.write_blocking, add_then_fail, 2),  # joins, updates counter 2, then fails
        (shared.write_blocking, add, 3),
    )
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], ValueError)
    assert values(shared) == {1: 1, 2: 0, 3: 1}


def test_a_commit_that_fails_fails_every_write_of_its_group_and_keeps_none(shared):
    outcomes = run_together(
        shared,
        (shared.write_blocking, add, 1),
        (shared.write_blocking, add_with_a_note_that_fails_at_commit, 2),
    )
    assert all(isinstance(outcome, sqlite3.IntegrityError) for outcome in outcomes), outcomes
    assert values(shared) == {1: 0, 2: 0, 3: 0}
    assert run_together(shared, (shared.write_blocking, add, 1)) == [1]  # the connection is usable again
    assert values(shared) == {1: 1, 2: 0, 3: 0}


def test_writes_that_waited_for_their_turn_share_the_next_commit(shared):
    """While another writer of this process (an ORM session) holds the write turn, writes queue; they then run as
    one batch, not one transaction each: a commit that fails fails all of them, and keeps none."""
    outcomes: list = []

    async def main():
        async def one(function, counter):
            try:
                outcomes.append(await shared.write_blocking(function, counter))
            except Exception as exc:
                outcomes.append(exc)

        # The ORM's write turn, released before the task group waits: the writes below wait for it.
        async with anyio.create_task_group() as group, shared.write():
            group.start_soon(one, add, 1)
            await anyio.sleep(0.05)  # a later turn of the loop, then another
            group.start_soon(one, add_with_a_note_that_fails_at_commit, 2)
            await anyio.sleep(0.05)
            group.start_soon(one, add, 3)
            await anyio.sleep(0.05)
        await shared.dispose()

    anyio.run(main)
    assert len(outcomes) == 3 and all(isinstance(outcome, sqlite3.IntegrityError) for outcome in outcomes), outcomes
    assert values(shared) == {1: 0, 2: 0, 3: 0}
