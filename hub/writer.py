"""The single writer of a hub database (datasette's `execute_write_fn`, STYLE.md habit 8).

Every write to the hub database is a function of the write connection, run by `Writer.write`
inside one transaction (`BEGIN IMMEDIATE` under SQLite), by the one thread that owns the writer:
`hub serve`'s writer thread, or the main thread of a short-lived command (`hub add-device`, `hub
add-staff`, `hub migrate`). Those commands call the very same write functions (hub.registry,
hub.schema) as anything else would; readers open their own read-only connections (hub.queries).

    writer = Writer.open("sqlite:///var/hub.sqlite3")
    writer.write(registry.add_staff, "E1024", name="王芳", department="综合受理")
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

from hub import schema
from hub.db import Database, open_database
from hub.errors import StoreError

__all__ = ["Writer"]

P = ParamSpec("P")
T = TypeVar("T")


class Writer:
    def __init__(self, db: Database) -> None:
        if db.read_only:
            raise StoreError(f"{db.name}: a writer needs a connection opened for writing")
        self.db = db
        self.migration: schema.Migration | None = None  # what `open(migrate=True)` did
        self._owner = threading.get_ident()

    @classmethod
    def open(cls, url: str, *, migrate: bool = False) -> Writer:
        """The writer of the database at `url`, checked against this pingjia's schema.

        `migrate` (`hub serve`, `hub migrate`): bring an older database to the current schema. Without
        it (every other command that writes), a database that does not exist yet is created at the
        current schema, and one at any other version is refused (SchemaError naming `pingjia hub
        migrate`). StoreError if the database cannot be opened.
        """
        writer = cls(open_database(url, create=True))
        try:
            if migrate:
                writer.migration = schema.migrate(writer)
            elif schema.version(writer.db) is None:
                schema.create(writer)
            else:
                schema.require_current(writer.db)
        except BaseException:
            writer.close()
            raise
        return writer

    @property
    def kind(self) -> str:
        return self.db.kind

    @property
    def name(self) -> str:
        return self.db.name

    def handover(self) -> None:
        """The calling thread owns the writer from now on (a hub opened in one thread, served in another)."""
        self._owner = threading.get_ident()

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction on the owner's thread: committed (durably) on success, else rolled back."""
        if threading.get_ident() != self._owner:
            raise StoreError(f"{self.db.name}: the writer belongs to another thread; writes go through it")
        with self.db.transaction():
            yield self.db

    def write(self, fn: Callable[Concatenate[Database, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(connection, *args, **kwargs)` inside one transaction, and return what it returns."""
        with self.transaction() as db:
            return fn(db, *args, **kwargs)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
