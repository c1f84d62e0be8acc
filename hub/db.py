"""Database connections for the hub: SQLite (the default, one writer) or PostgreSQL (several workers).

Selected by URL: `sqlite:///path` (or a plain path) or `postgresql://user@host:port/db`. SQL is
written once, portably, with `?` placeholders; the PostgreSQL connection turns them into `%s`.
Errors of either driver come out as hub.errors.StoreError.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from hub.errors import StoreError

__all__ = ["Cursor", "Database", "open_database", "sqlite_path"]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def sqlite_path(url: str) -> Path:
    """Path of an SQLite URL (`sqlite:///relative/or/absolute/path`) or of a plain path."""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" in url:
        raise StoreError(f"database {url!r}: use sqlite:///path or postgresql://...")
    return Path(url)


class Database:
    """One connection, owned by one thread; writes go through `transaction()`."""

    kind = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        self.in_transaction = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _raw(self, sql: str) -> None:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed (and made durable) on success, rolled back on any error."""
        if self.in_transaction:
            raise StoreError("transactions do not nest")
        self._raw(self.begin_sql)
        self.in_transaction = True
        try:
            yield
        except BaseException:
            self.in_transaction = False
            with suppress(Exception):  # the connection may have rolled back already (I/O error, lost)
                self._raw("ROLLBACK")
            raise
        self.in_transaction = False
        self._raw("COMMIT")

    begin_sql = "BEGIN"

    def close(self) -> None:
        raise NotImplementedError


class SQLiteDatabase(Database):
    kind = "sqlite"
    begin_sql = "BEGIN IMMEDIATE"  # take the write lock at once: one writer, no upgrade deadlocks

    def __init__(self, url: str, *, create: bool) -> None:
        super().__init__(url)
        self.path = sqlite_path(url)
        if not create and not self.path.exists():
            raise StoreError(f"no hub database at {self.path}")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: an integer beyond 64 bits
            raise StoreError(f"cannot open {self.path}: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self._db.execute(sql, params)
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: an integer beyond 64 bits
            raise StoreError(f"{exc} in: {sql.split(maxsplit=1)[0]} ...") from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self._db.executemany(sql, rows)
        except (sqlite3.Error, OverflowError) as exc:  # OverflowError: an integer beyond 64 bits
            raise StoreError(f"{exc} in: {sql.split(maxsplit=1)[0]} ...") from exc

    def _raw(self, sql: str) -> None:
        self.execute(sql)

    def close(self) -> None:
        self._db.close()


class PostgresDatabase(Database):
    kind = "postgresql"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError("PostgreSQL needs psycopg: pip install 'pingjia[postgres]'") from exc
        self._errors = (psycopg.Error,)
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {_redact(url)}: {exc}") from exc
        self._cache: dict[str, str] = {}

    def _sql(self, sql: str) -> str:
        converted = self._cache.get(sql)
        if converted is None:
            converted = self._cache[sql] = sql.replace("?", "%s")
        return converted

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self._db.execute(self._sql(sql), params)
        except self._errors as exc:
            raise StoreError(f"{exc} in: {sql.split(maxsplit=1)[0]} ...") from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._db.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)
        except self._errors as exc:
            raise StoreError(f"{exc} in: {sql.split(maxsplit=1)[0]} ...") from exc

    def _raw(self, sql: str) -> None:
        self.execute(sql)

    def close(self) -> None:
        self._db.close()


def _redact(url: str) -> str:
    """A URL fit for logs: without the password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def open_database(url: str, *, create: bool = True) -> Database:
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    return SQLiteDatabase(url, create=create)
