"""SQLite on the event loop, for the hot paths (Database.read_blocking and write_blocking), with group commit.

A statement on a local file takes microseconds, less than a trip to a thread and back, so the hot paths run
theirs on the event loop itself, on two connections of this process's own: one that reads and one that writes.
Neither ever waits there (busy_timeout=0): while another process holds the file's write lock, `Busy` sends the
work to a thread that may wait its turn.

Group commit: writes queue up, and one task commits them in batches. Each batch is every write queued when the
task gets its turn: the writes of one turn of the event loop, and those that came while the last batch committed
or the WAL was checkpointed. It runs them in one transaction (BEGIN IMMEDIATE), each in a savepoint of its own so
that its failure takes back its own statements only, commits once, and only then answers each write: a 2xx still
means committed. One commit writes each page the batch changed once, where one commit per write would write the
shared pages (the table's, its indexes') again for each; and a write that had to wait joins the next batch instead
of waiting for a turn of its own behind every other that waited.

Reads run on the other connection, so that they never see a batch's writes before their commit.
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


class LoopConnections:
    def __init__(self, url: str, tune: Callable, info: dict, compiled: dict, lock: anyio.Lock, checkpoint: Callable):
        """`tune(engine)`: the pragmas every SQLite connection gets; `lock`: this process's writers' turn (the
        ORM's write sessions take it too); `checkpoint()`: blocking, run on a thread."""
        self._url, self._tune, self._info, self._compiled = url, tune, info, compiled
        self._lock, self._checkpoint = lock, checkpoint
        self._connections: list = []  # SQLAlchemy Connections, kept open to be closed at the end
        self._reader: DirectConnection | None = None
        self._writer: DirectConnection | None = None
        self._queue: list[tuple[Callable, tuple, asyncio.Future]] = []  # writes waiting for their batch
        self._committer: asyncio.Future | None = None  # the task committing them, while there are any
        self._writes = 0

    def read(self, work: Callable[..., T], args: tuple) -> T:
        """`work` outside a transaction: one statement sees one snapshot. Raises Busy."""
        if self._reader is None:
            self._reader = self._connect()
        with _busy_is_raised():
            return work(self._reader, *args)

    async def write(self, work: Callable[..., T], args: tuple) -> T:
        """`work` in a write transaction, committed (with its batch's) before this returns. Raises Busy."""
        answer = asyncio.get_running_loop().create_future()
        self._queue.append((work, args, answer))
        if self._committer is None:
            self._committer = asyncio.ensure_future(self._commit_queued())
        return await answer  # cancelled before its batch runs: never run; after: committed with its batch

    async def _commit_queued(self) -> None:
        try:
            while self._queue:
                async with self._lock:  # after this process's other writers (the ORM's), without holding up the loop
                    batch, self._queue = self._queue, []
                    with anyio.CancelScope(shield=True):  # a batch is committed or rolled back, never left open
                        await self._commit(batch)
        finally:
            self._committer = None

    async def _commit(self, batch: list) -> None:
        if self._writer is None:
            self._writer = self._connect()
        driver = self._writer.driver
        outcomes = []
        try:
            with _busy_is_raised():
                driver.execute("BEGIN IMMEDIATE")
            for work, args, answer in batch:
                if answer.done():
                    continue  # its caller is gone
                driver.execute("SAVEPOINT write")
                try:
                    outcomes.append((answer, work(self._writer, *args), None))
                except Exception as exc:
                    driver.execute("ROLLBACK TO write")
                    outcomes.append((answer, None, exc))
                driver.execute("RELEASE write")
            driver.execute("COMMIT")
        except BaseException as exc:  # Busy, or the commit failed: the whole batch did nothing
            if driver.in_transaction:
                driver.execute("ROLLBACK")
            failure = exc if isinstance(exc, Exception) else RuntimeError("the batch was not committed")
            for _, _, answer in batch:
                if not answer.done():
                    answer.set_exception(failure)
            if failure is not exc:
                raise
            return
        for answer, result, exc in outcomes:  # none was cancelled since its work ran: nothing else ran meanwhile
            if exc is None:
                answer.set_result(result)
            else:
                answer.set_exception(exc)
        self._writes += len(outcomes)
        if self._writes >= CHECKPOINT_EVERY:
            # What SQLite's autocheckpoint would do in a commit, on a thread. This process's writers wait
            # meanwhile (they queue for the next batch), so the checkpoint catches up with the WAL and the next
            # write starts it over.
            self._writes = 0
            await anyio.to_thread.run_sync(self._checkpoint)

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
