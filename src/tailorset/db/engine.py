"""Engines, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from importlib.resources import files
from typing import TypeVar

import anyio
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tailorset.config import SetupError

T = TypeVar("T")


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
    return (
        f"{where} does not answer ({first}): start it, or fix the host and port in TAILORSET_DATABASE_URL."
    )


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


def _tune_sqlite(sync_engine) -> None:
    """Make SQLite safe under concurrent requests.

    WAL lets readers run beside one writer; busy_timeout makes writers queue instead of failing.
    Write transactions start with BEGIN IMMEDIATE: a deferred transaction that reads and then writes
    can fail with SQLITE_BUSY no matter the timeout if another writer committed in between.
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

    @event.listens_for(sync_engine, "begin")
    def on_begin(connection):
        writing = connection.get_execution_options().get("tailorset_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


class Database:
    """One async engine; `read()` and `write()` hand out a session inside one transaction."""

    def __init__(self, url: str, tombstone_retention: timedelta | None = None):
        """`tombstone_retention`: how long lookups answer Gone for a deleted row (then NotFound)."""
        self.url = async_url(url)
        self.backend = make_url(self.url).get_backend_name()
        options = {}
        if self.backend == "postgresql":
            # A server restart or a proxy's idle timeout must not fail a request: test before use.
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine = create_async_engine(self.url, **options)
        if self.backend == "sqlite":
            _tune_sqlite(self.engine.sync_engine)
        info = {"tombstone_retention": tombstone_retention}
        self._read = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._write = async_sessionmaker(
            self.engine.execution_options(tailorset_write=True), expire_on_commit=False, info=info
        )
        # SQLite has one writer at a time; queueing this process's writers here, in order, beats each
        # of them polling the file lock through busy_timeout's growing sleeps (other processes still do).
        self._write_lock = anyio.Lock() if self.backend == "sqlite" else None
        self._blocking_engine: Engine | None = None

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

    async def write_blocking(self, work: Callable[..., T], *args) -> T:
        """`work(connection, *args)` in one write transaction, for short writes on the hot path.

        On SQLite it runs on a worker thread with a blocking connection: one hop for the whole transaction,
        where the async driver takes one per statement, each waiting its turn in a busy event loop while
        this process's write lock is held. (Two statements this way commit ~2x faster under load;
        bench/caption_put.py.) On PostgreSQL, whose writers do not queue on one lock, it runs on the async
        connection (`run_sync`), sharing its pool."""
        if self._write_lock is None:
            async with self._write() as session, session.begin():
                connection = await session.connection()
                return await connection.run_sync(work, *args)
        async with self._write_lock:
            return await anyio.to_thread.run_sync(self._blocking_transaction, work, args)

    def _blocking_transaction(self, work: Callable[..., T], args: tuple) -> T:
        if self._blocking_engine is None:  # built on first use: only SQLite, and only some processes need it
            engine = create_engine(sync_url(self.url))
            _tune_sqlite(engine)
            self._blocking_engine = engine.execution_options(tailorset_write=True)
        with self._blocking_engine.begin() as connection:
            return work(connection, *args)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._blocking_engine is not None:
            self._blocking_engine.dispose()
