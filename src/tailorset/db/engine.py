"""Engines, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing, contextmanager
from datetime import timedelta
from importlib.resources import files
from typing import TypeVar

import anyio
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tailorset.config import SetupError
from tailorset.db.direct import PostgresPool, closed_by_server
from tailorset.db.sqlite_loop import Busy, LoopConnections

T = TypeVar("T")
log = logging.getLogger(__name__)


def sync_url(url: str) -> str:
    """The URL for blocking drivers (Alembic, CLI): psycopg 3 for PostgreSQL, sqlite3 for SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    raise ValueError(f"Unsupported database URL {parsed.render_as_string()!r}: use sqlite:// or postgresql://.")


def async_url(url: str) -> str:
    parsed = make_url(sync_url(url))
    driver = "sqlite+aiosqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (Alembic `upgrade head`)."""
    check_database(url)
    config = Config()
    config.set_main_option("script_location", str(files("tailorset.db") / "migrations"))
    config.attributes["database_url"] = sync_url(url)
    with _sqlite_migration_lock(url):
        command.upgrade(config, "head")


def check_database(url: str) -> None:
    """Connect once, so that a database that cannot be used is one sentence with its fix (SetupError), not a
    traceback; a PostgreSQL database that does not exist yet is created, when the user may."""
    parsed = make_url(sync_url(url))
    if parsed.get_backend_name() != "postgresql":
        return
    try:
        _connect(parsed)
    except OperationalError as exc:
        if "does not exist" not in str(exc.orig) or f'database "{parsed.database}"' not in str(exc.orig):
            raise SetupError(_connection_problem(parsed, exc)) from None
        _create_database(parsed)


def _connect(parsed: URL) -> None:
    engine = create_engine(parsed, connect_args={"connect_timeout": 10})
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _where(parsed: URL) -> str:
    return f"PostgreSQL at {parsed.host or 'localhost'}:{parsed.port or 5432}"


def _connection_problem(parsed: URL, exc: OperationalError) -> str:
    """One sentence for what psycopg reported (the password never appears in it)."""
    said, where, user = str(exc.orig), _where(parsed), parsed.username or "(the default user)"
    if "password authentication failed" in said or "no password supplied" in said:
        return f"{where} refused the password of user {user}: fix it in TAILORSET_DATABASE_URL."
    if f'role "{parsed.username}" does not exist' in said:
        return f"{where} has no user {user}: create it (createuser {user}) or fix TAILORSET_DATABASE_URL."
    if "could not translate host name" in said or "Name or service not known" in said:
        return f"{where} cannot be found (no such host name): fix the host in TAILORSET_DATABASE_URL."
    first = said.strip().splitlines()[0].rsplit(": ", 1)[-1].strip() if said.strip() else type(exc.orig).__name__
    return f"{where} does not answer ({first}): start it, or fix the host and port in TAILORSET_DATABASE_URL."


def _create_database(parsed: URL) -> None:
    """CREATE DATABASE from the server's maintenance database, as the configured user."""
    name = parsed.database
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 10})  # fmt: skip
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name.replace(chr(34), chr(34) * 2)}"')
    except DBAPIError as exc:
        if type(exc.orig).__name__ == "DuplicateDatabase":  # another process, starting at the same time, made it
            return
        user = parsed.username or "(the default user)"
        raise SetupError(
            f"{_where(parsed)} has no database {name!r}, and user {user} may not create it: create it "
            f"(createdb -h {parsed.host or 'localhost'} -p {parsed.port or 5432} -O {user} {name}), or let "
            f"tailorset create it by granting CREATEDB to {user}."
        ) from None
    finally:
        engine.dispose()
    logging.getLogger(__name__).warning("Created the database %r on %s.", name, _where(parsed))


@contextmanager
def _sqlite_migration_lock(url: str) -> Iterator[None]:
    """Several processes starting at once on a new SQLite file (`serve --workers N`) would each create
    the tables; a lock file beside it makes them take turns. PostgreSQL takes an advisory lock instead."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        yield
        return
    import fcntl

    with open(f"{parsed.database}.migration-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _tune_sqlite(sync_engine, begin: bool = True) -> None:
    """Make SQLite safe under concurrent requests.

    WAL lets readers run beside one writer; busy_timeout makes writers queue instead of failing.
    Write transactions start with BEGIN IMMEDIATE: a deferred transaction that reads and then writes
    can fail with SQLITE_BUSY no matter the timeout if another writer committed in between.
    (`begin=False`: the caller emits BEGIN itself, as Database._run does.)
    """

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    if not begin:
        return

    @event.listens_for(sync_engine, "begin")
    def on_begin(connection):
        writing = connection.get_execution_options().get("tailorset_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def _discard_if_closed(dbapi_connection, _record, _proxy) -> None:
    """A pooled connection the server closed is discarded at checkout; the pool takes, or opens, another."""
    if closed_by_server(dbapi_connection.driver_connection):
        raise DisconnectionError("the server closed this pooled connection")


class Database:
    """One async engine; `read()` and `write()` hand out a session inside one transaction;
    `read_blocking()` and `write_blocking()` run a few Core statements for the hot paths."""

    def __init__(self, url: str, tombstone_retention: timedelta | None = None):
        """`tombstone_retention`: how long lookups answer Gone for a deleted row (then NotFound)."""
        self.url = async_url(url)
        self.backend = make_url(self.url).get_backend_name()
        options = {}
        if self.backend == "postgresql":
            # Ten connections here and ten for _run(), all kept: an overflow connection is closed as it is returned,
            # so under steady concurrency above the pool's size each request would open one of its own.
            options.update(pool_size=10, max_overflow=0)
        self.engine = create_async_engine(self.url, **options)
        if self.backend == "sqlite":
            _tune_sqlite(self.engine.sync_engine)
        else:
            event.listen(self.engine.sync_engine, "checkout", _discard_if_closed)
        info = {"tombstone_retention": tombstone_retention}
        self._read = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._write = async_sessionmaker(
            self.engine.execution_options(tailorset_write=True), expire_on_commit=False, info=info
        )
        self._statements: PostgresPool | None = None  # PostgreSQL: _run()'s connections
        if self.backend == "postgresql":
            # Connections of their own, in autocommit for good (switching a pooled connection's isolation level at
            # every checkout and back costs two trips into the driver).
            self._statements = PostgresPool(make_url(self.url).set(drivername="postgresql").render_as_string(False), 10)
        # SQLite has one writer at a time; queueing this process's writers here, in order, beats each
        # of them polling the file lock through busy_timeout's growing sleeps (other processes still do).
        self._write_lock = anyio.Lock(fast_acquire=True) if self.backend == "sqlite" else None  # no yield when free
        self._tombstone_retention = tombstone_retention
        self._blocking_engine: Engine | None = None
        self._info = info  # what repository functions read of a session's info, also on a DirectConnection
        self._compiled: dict = {}  # DirectConnection's statements, compiled once for this database
        self._on_loop: LoopConnections | None = None  # SQLite: _run()'s connections (db/sqlite_loop.py)
        if self.backend == "sqlite":
            tune = functools.partial(_tune_sqlite, begin=False)
            self._on_loop = LoopConnections(
                sync_url(self.url), tune, info, self._compiled, self._write_lock, self._checkpoint
            )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        if self._write_lock is None:
            async with self._write() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._write() as session, session.begin():
            yield session

    async def read_blocking(self, work: Callable[..., T], *args) -> T:
        """`work(connection, *args)`: Core statements that read, on a DirectConnection (see _run), outside any
        transaction: each statement sees its own snapshot, on SQLite as on PostgreSQL in autocommit, so what
        must be seen at one moment is read by one statement (repository.dataset_with_images says what it risks)."""
        return await self._run(work, args, write=False)

    async def write_blocking(self, work: Callable[..., T], *args) -> T:
        """`work(connection, *args)` in one write transaction, committed when it returns (see _run)."""
        return await self._run(work, args, write=True)

    async def _run(self, work: Callable[..., T], args: tuple, write: bool) -> T:
        """Core statements on the driver's connection (db/direct.py), for the hot paths, where an ORM session
        and a thread hop per statement cost more than the SQL.

        SQLite: `work` runs on the event loop itself, the writes of one turn of the loop sharing a commit
        (db/sqlite_loop.py); while the file is locked by another process, on a thread that waits its turn.
        PostgreSQL: on a pooled connection in autocommit, one round trip per statement, so `work` that must
        be atomic is one statement (repository.write_caption joins its UPDATE and INSERT with CTEs)."""
        if self.backend == "postgresql":
            dialect = self.engine.sync_engine.dialect  # initialized: Services.open has connected
            return await self._statements.run(dialect, self._info, self._compiled, work, args)
        try:
            return await self._on_loop.write(work, args) if write else self._on_loop.read(work, args)
        except Busy:
            return await anyio.to_thread.run_sync(self._blocking_transaction, work, args, write)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database file (PASSIVE: it waits for no one; readers go on meanwhile)."""
        try:
            with closing(self._blocking().raw_connection()) as connection:  # outside any transaction
                connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # the next one will try again; other connections also checkpoint on their own
            log.warning("WAL checkpoint failed: %s", exc)

    def _blocking(self) -> Engine:
        if self._blocking_engine is None:  # built on first use: only SQLite, and only some processes need it
            engine = create_engine(sync_url(self.url))
            _tune_sqlite(engine)
            self._blocking_engine = engine.execution_options(tombstone_retention=self._tombstone_retention)
        return self._blocking_engine

    def _blocking_transaction(self, work: Callable[..., T], args: tuple, write: bool) -> T:
        with self._blocking().execution_options(tailorset_write=write).begin() as connection:
            return work(connection, *args)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._statements is not None:
            await self._statements.close()
        if self._on_loop is not None:
            self._on_loop.close()
        if self._blocking_engine is not None:
            self._blocking_engine.dispose()
