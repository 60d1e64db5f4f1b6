"""Core statements run on the driver's own connection: for the hot paths (Database.read_blocking/write_blocking).

SQLAlchemy compiles each statement once and keeps how each parameter and column is converted (its types: a
UTC datetime, a boolean on SQLite); what it costs per execution beyond that — execution contexts, events,
result metadata — is more than the statement itself on SQLite. Here a statement is compiled on first use and
then run on the driver's connection with the same conversions, its rows as named tuples. The repository's
functions take this as their `connection`: `execute(statement, parameters).one_or_none()` and `dialect`, as on
a SQLAlchemy Connection. Only for statements built once, at import (a repository module's constants)."""

from __future__ import annotations

import re
import select
from collections import namedtuple
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import await_only, greenlet_spawn

T = TypeVar("T")

MAX_STATEMENTS = 64  # the module constants the hot paths run; more means a statement built per call


class Compiled:
    """One statement, compiled for one dialect: its SQL, its parameters in order and its row type."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # an INSERT's columns: those given
        self._compiled = compiled
        self.sql = compiled.string
        self._order = compiled.positiontup  # qmark (sqlite3)
        if self._order is None:  # psycopg's %(name)s: as $1, $2… for a raw cursor, which then parses nothing
            self._order = []
            self.sql = re.sub(r"%\((\w+)\)s|%%", self._number, self.sql)
        self._binds = list(compiled._bind_processors.items())
        self._columns = compiled._result_columns
        self.returns_rows = bool(self._columns)
        self._dialect = dialect
        self.row = namedtuple("Row", [column[0] for column in self._columns])
        self._converted: list | None = None  # (index, conversion) of each column that has one: at the first result

    def rows(self, fetched: list, cursor) -> list:
        if self._converted is None:  # psycopg's column types decide some conversions (sqlite3 gives None)
            description = cursor.description  # psycopg builds it anew at each look: once, here
            conversions = [
                column[3]._cached_result_processor(self._dialect, described[1])
                for column, described in zip(self._columns, description, strict=True)
            ]
            self._converted = [(i, convert) for i, convert in enumerate(conversions) if convert]
        converted, make = self._converted, self.row._make
        if not converted:
            return [make(raw) for raw in fetched]
        rows = []
        for raw in fetched:  # only the columns that have a conversion: most have none (an integer, a text)
            values = list(raw)
            for i, convert in converted:
                values[i] = convert(values[i])
            rows.append(make(values))
        return rows

    def _number(self, found: re.Match) -> str:
        if found[0] == "%%":
            return "%"
        if found[1] not in self._order:
            self._order.append(found[1])
        return f"${self._order.index(found[1]) + 1}"

    def parameters(self, values: dict[str, Any]):
        params = self._compiled.construct_params(values)  # with the statement's own literals
        for name, process in self._binds:
            params[name] = process(params[name])
        return [params[name] for name in self._order]


class Rows:
    def __init__(self, rows: list):
        self._rows = rows

    def one_or_none(self):
        if len(self._rows) > 1:
            raise ValueError("more than one row where at most one was expected")
        return self._rows[0] if self._rows else None

    def all(self) -> list:
        return self._rows


class DirectConnection:
    """A driver connection (sqlite3, or psycopg's async one inside a SQLAlchemy greenlet) that runs Core
    statements. `info` carries what repository functions read from a session's info (tombstone_retention)."""

    def __init__(self, driver, dialect: Dialect, info: dict, compiled: dict, awaits: bool = False):
        """`compiled`: statements already compiled for this dialect, shared by its connections."""
        self.driver, self.dialect, self.info, self._compiled = driver, dialect, info, compiled
        self._awaits = awaits  # psycopg's async connection: run inside Connection.run_sync, with await_only

    def execute(self, statement: ClauseElement, parameters: dict[str, Any] | None = None) -> Rows:
        parameters = parameters or {}
        key = (id(statement), tuple(parameters))
        known = self._compiled.get(key)
        if known is None or known[0] is not statement:
            if len(self._compiled) >= MAX_STATEMENTS:
                raise RuntimeError("DirectConnection runs statements built once, not one per call")
            known = self._compiled[key] = (statement, Compiled(statement, self.dialect, key[1]))
        compiled = known[1]
        params = compiled.parameters(parameters)
        if self._awaits:
            cursor = await_only(self.driver.execute(compiled.sql, params))
            fetched = await_only(cursor.fetchall()) if compiled.returns_rows else []
        else:
            cursor = self.driver.execute(compiled.sql, params)
            fetched = cursor.fetchall() if compiled.returns_rows else []
        return Rows(compiled.rows(fetched, cursor) if fetched else [])


class PostgresPool:
    """Up to `size` psycopg connections in autocommit, kept open, for DirectConnection: a checkout is a pop from
    a list (SQLAlchemy's pool runs events, a reset and a greenlet hop around each)."""

    def __init__(self, url: str, size: int):
        self._url, self._idle = url, []
        self._slots = anyio.Semaphore(size, fast_acquire=True)  # no yield to the loop while one is free

    async def run(self, dialect: Dialect, info: dict, compiled: dict, work: Callable[..., T], args: tuple) -> T:
        async with self._slots:
            connection = None
            while self._idle and connection is None:
                connection = self._idle.pop()
                if closed_by_server(connection):
                    await connection.close()
                    connection = None
            if connection is None:
                connection = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, cursor_factory=psycopg.AsyncRawCursor
                )
            try:
                direct = DirectConnection(connection, dialect, info, compiled, awaits=True)
                return await greenlet_spawn(work, direct, *args)
            finally:
                if connection.broken or connection.closed:  # autocommit: no transaction is left open
                    await connection.close()
                else:
                    self._idle.append(connection)

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


def closed_by_server(connection) -> bool:
    """Whether a kept psycopg connection is no longer usable. A server restart or a proxy's idle timeout must not
    fail a request, and a query at each checkout (pool_pre_ping) would cost a round trip as long as the request's
    own: instead, look at the socket. The server (or proxy) closing our idle connection makes it readable, while
    an idle connection of ours has nothing to read. (PostgresPool here; Database's pool, db/engine.py.)"""
    try:
        if connection.closed or connection.broken:
            return True
        socket = connection.pgconn.socket
    except Exception:  # psycopg knows it is broken already
        return True
    readable = select.poll()  # not select.select: it cannot watch descriptors above 1023
    readable.register(socket, select.POLLIN)
    return bool(readable.poll(0))
