"""Database connections for the hub: SQLite (the default, one writer) or PostgreSQL (several workers).

Selected by URL: `sqlite:///path` (or a plain path) or `postgresql://user@host:port/db`. SQL is
written once, portably, with `?` placeholders; the PostgreSQL connection turns them into `%s`.
Errors of either driver come out as hub.errors.StoreError.

A connection is opened for writing (the one writer, hub.writer) or read-only (every reader,
hub.queries): SQLite opens the file as a `file:...?mode=ro` URI, PostgreSQL makes every
transaction of the session read-only. Either way a write through a reader fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from hub.errors import StoreError

__all__ = ["Cursor", "Database", "is_postgres", "open_database", "redact", "sqlite_path"]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> Path:
    """Path of an SQLite URL (`sqlite:///relative/or/absolute/path`) or of a plain path."""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" in url:
        raise StoreError(f"database {url!r}: use sqlite:///path or postgresql://user@host/db")
    return Path(url)


class Database:
    """One connection, used by one thread at a time; writes go through `transaction()`."""

    kind = "sqlite"
    begin_sql = "BEGIN"

    def __init__(self, url: str, *, read_only: bool) -> None:
        self.url = url
        self.read_only = read_only
        self.in_transaction = False

    @property
    def name(self) -> str:
        """The database as logs and messages may show it (no password)."""
        return redact(self.url)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def has_table(self, name: str) -> bool:
        raise NotImplementedError

    def require_transaction(self, what: str) -> None:
        """StoreError unless inside the writer's transaction: `what` (e.g. "registry writes") is
        written only there (Writer.write), so that each is one commit with the rest."""
        if not self.in_transaction:
            raise StoreError(f"{what} run inside the writer's transaction (Writer.write)")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed (and made durable) on success, rolled back on any error."""
        if self.in_transaction:
            raise StoreError("transactions do not nest")
        self.execute(self.begin_sql)
        self.in_transaction = True
        try:
            yield
        except BaseException:
            self.in_transaction = False
            with suppress(Exception):  # the connection may have rolled back already (I/O error, lost)
                self.execute("ROLLBACK")
            raise
        self.in_transaction = False
        self.execute("COMMIT")

    def close(self) -> None:
        raise NotImplementedError


class SQLiteDatabase(Database):
    kind = "sqlite"
    begin_sql = "BEGIN IMMEDIATE"  # take the write lock at once: one writer, no upgrade deadlocks

    def __init__(self, url: str, *, create: bool, read_only: bool) -> None:
        super().__init__(url, read_only=read_only)
        self.path = sqlite_path(url)
        if not create and not self.path.exists():
            raise StoreError(
                f"no hub database at {self.path} (is --db or PINGJIA_DB right? `pingjia hub migrate` creates one)"
            )
        try:
            if read_only:
                # Read-only by the file's open mode: nothing through this connection can write.
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30, check_same_thread=False)
            else:
                if create:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
        except (sqlite3.Error, OverflowError, OSError) as exc:  # OverflowError: an integer beyond 64 bits
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

    def has_table(self, name: str) -> bool:
        found = self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return found is not None

    def close(self) -> None:
        self._db.close()


class PostgresDatabase(Database):
    kind = "postgresql"

    def __init__(self, url: str, *, read_only: bool) -> None:
        super().__init__(url, read_only=read_only)
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError("PostgreSQL needs psycopg: pip install 'pingjia[postgres]'") from exc
        self._errors = (psycopg.Error,)
        try:
            self._db = psycopg.connect(url, autocommit=True)
            if read_only:
                self._db.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {redact(url)}: {exc}") from exc
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

    def has_table(self, name: str) -> bool:
        # to_regclass looks the name up along the search_path, as unqualified names in queries are.
        return self.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0] is True

    def close(self) -> None:
        self._db.close()


def redact(url: str) -> str:
    """A URL fit for logs: without the password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def open_database(url: str, *, create: bool = False, read_only: bool = False) -> Database:
    """A connection to the hub database at `url`.

    `create`: an SQLite file that does not exist yet is made (with its folder); otherwise its
    absence is a StoreError. A PostgreSQL database must exist; its tables are hub.schema's business.
    """
    if is_postgres(url):
        return PostgresDatabase(url, read_only=read_only)
    return SQLiteDatabase(url, create=create and not read_only, read_only=read_only)
