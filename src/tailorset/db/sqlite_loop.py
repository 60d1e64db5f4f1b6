"""SQLite on the event loop, for the hot paths (Database.read_blocking and write_blocking), with group commit.

A statement on a local file takes microseconds, less than a trip to a thread and back, so the hot paths run
theirs on the event loop itself, on two connections of this process's own: one that reads and one that writes.
Neither ever waits there (busy_timeout=0): while another process holds the file's write lock, `Busy` sends the
work to a thread that may wait its turn.

Group commit: the writes that are ready to run in the same turn of the event loop share one transaction and
one commit. The first opens it (BEGIN IMMEDIATE) and runs its work, then lets the loop run the rest of its turn;
a writer that comes meanwhile runs its work inside the open transaction, in a savepoint of its own, so that its
failure takes back its own statements only. Then the first commits, and every writer of the group answers
after that commit: a 2xx still means committed. One commit writes each page the group changed once, where one
commit per write would write the shared pages (the table's, its indexes') again for each.

Reads run on the other connection, so that they never see a group's writes before their commit.
The WAL is never checkpointed by these commits (an fsync on the loop): every CHECKPOINT_EVERY writes, a
thread does (`checkpoint`)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from tailorset.db.direct import DirectConnection

T = TypeVar("T")

# The loop leaves the WAL to grow by this many writes, then a thread copies it into the database file.
CHECKPOINT_EVERY = 200


class Busy(Exception):
    """SQLite's file is locked by another process: the work goes where it may wait. Nothing was written."""


class _Group:
    def __init__(self) -> None:
        self.open = True  # writers may still join
        self.size = 1
        self.committed = asyncio.get_running_loop().create_future()


class LoopConnections:
    def __init__(self, url: str, tune: Callable, info: dict, compiled: dict, lock: anyio.Lock, checkpoint: Callable):
        """`tune(engine)`: the pragmas every SQLite connection gets; `lock`: this process's writers' turn (the
        ORM's write sessions take it too); `checkpoint()`: blocking, run on a thread."""
        self._url, self._tune, self._info, self._compiled = url, tune, info, compiled
        self._lock, self._checkpoint = lock, checkpoint
        self._connections: list = []  # SQLAlchemy Connections, kept open to be closed at the end
        self._reader: DirectConnection | None = None
        self._writer: DirectConnection | None = None
        self._group: _Group | None = None
        self._writes = 0

    def read(self, work: Callable[..., T], args: tuple) -> T:
        """`work` outside a transaction: one statement sees one snapshot. Raises Busy."""
        if self._reader is None:
            self._reader = self._connect()
        with _busy_is_raised():
            return work(self._reader, *args)

    async def write(self, work: Callable[..., T], args: tuple) -> T:
        """`work` in a write transaction, committed (with the group's) before this returns. Raises Busy."""
        group = self._group
        if group is not None and group.open:
            return await self._join(group, work, args)
        async with self._lock:  # after this process's other writers, without holding up the loop
            if self._writer is None:
                self._writer = self._connect()
            driver = self._writer.driver
            group = self._group = _Group()
            try:
                with _busy_is_raised():
                    driver.execute("BEGIN IMMEDIATE")
                    result = work(self._writer, *args)
                with anyio.CancelScope(shield=True):  # the joiners' writes are committed or rolled back, not left
                    await asyncio.sleep(0)  # the rest of this turn of the loop: its writers join (_join)
                group.open = False
                driver.execute("COMMIT")
            except BaseException as exc:
                group.open = False
                if driver.in_transaction:
                    driver.execute("ROLLBACK")
                group.committed.set_exception(exc if isinstance(exc, Exception) else RuntimeError("not committed"))
                group.committed.exception()  # retrieved: a group without joiners must not log it as lost
                raise
            finally:
                self._group = None
            group.committed.set_result(None)
            self._writes += group.size
            if self._writes >= CHECKPOINT_EVERY:
                # What SQLite's autocheckpoint would do in a commit, on a thread. This process's writers wait
                # meanwhile, so the checkpoint catches up with the WAL and the next write starts it over.
                self._writes = 0
                await anyio.to_thread.run_sync(self._checkpoint)
        return result

    async def _join(self, group: _Group, work: Callable[..., T], args: tuple) -> T:
        driver = self._writer.driver
        driver.execute("SAVEPOINT joined")
        try:
            result = work(self._writer, *args)
        except BaseException:
            driver.execute("ROLLBACK TO joined")
            driver.execute("RELEASE joined")
            raise
        driver.execute("RELEASE joined")
        group.size += 1
        await asyncio.shield(group.committed)  # cancelled or not, the group commits (or fails) as one
        return result

    def _connect(self) -> DirectConnection:
        engine = create_engine(self._url, poolclass=StaticPool)
        self._tune(engine)
        connection = engine.connect()  # its driver's connection, in autocommit (isolation_level None)
        self._connections.append(connection)
        driver = connection.connection.driver_connection
        driver.execute("PRAGMA busy_timeout=0")  # never wait on the loop: Busy instead
        driver.execute("PRAGMA wal_autocheckpoint=0")
        return DirectConnection(driver, engine.dialect, self._info, self._compiled)

    def close(self) -> None:
        for connection in self._connections:
            connection.close()
            connection.engine.dispose()
        self._connections.clear()
        self._reader = self._writer = None


@contextmanager
def _busy_is_raised() -> Iterator[None]:
    """sqlite3's 'database is locked' as Busy (the statement did nothing; the caller rolls back)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise Busy from exc
        raise
