"""The hub database's schema: its migrations (hub/migrations/NNNN_*.sql) and the one place they run.

A database is migrated by `pingjia hub serve` when it starts and by `pingjia hub migrate`, and
by nothing else. A database that does not exist yet (no hub tables in it) is created at the
current schema, every migration in one transaction, by whichever writer comes first: `hub
serve`, `hub migrate`, or a write command such as `hub add-device` (the first-time setup). A
write or read command on an existing database at another version refuses, naming `pingjia hub
migrate`: it neither migrates behind the operator's back nor reads columns that are not there.
"""

from __future__ import annotations

import functools
import time
from importlib import resources
from typing import TYPE_CHECKING, NamedTuple

from hub.db import Database
from hub.errors import SchemaError

if TYPE_CHECKING:
    from hub.writer import Writer

__all__ = ["Migration", "create", "latest", "migrate", "require_current", "version"]


class Migration(NamedTuple):
    before: int | None  # None: the database had no hub schema
    after: int


@functools.cache
def _migrations() -> tuple[tuple[int, str], ...]:
    folder = resources.files("hub") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return tuple(sorted(found))


def latest() -> int:
    """The schema version this pingjia reads and writes."""
    return _migrations()[-1][0]


def version(db: Database) -> int | None:
    """The database's schema version; None if it holds no hub schema (a new database)."""
    if not db.has_table("schema_version"):
        return None
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return None if row[0] is None else int(row[0])


def require_current(db: Database) -> int:
    """The schema version, if it is this pingjia's; SchemaError saying what to do if not."""
    found, wanted = version(db), latest()
    if found is None:
        raise SchemaError(
            f"no hub database at {db.name}: it holds no hub tables "
            "(`pingjia hub migrate` or `pingjia hub serve` creates them; is --db or PINGJIA_DB right?)",
            found=None,
            wanted=wanted,
        )
    if found < wanted:
        raise SchemaError(
            f"the hub database at {db.name} is at schema {found}, and this pingjia needs schema {wanted}: "
            "run `pingjia hub migrate` with the same --db first",
            found=found,
            wanted=wanted,
        )
    if found > wanted:
        raise SchemaError(
            f"the hub database at {db.name} is at schema {found}, newer than this pingjia knows ({wanted}): "
            "upgrade pingjia here (`pingjia hub migrate` does not go back)",
            found=found,
            wanted=wanted,
        )
    return found


def create(writer: Writer) -> int:
    """Give a new database the current schema, in one transaction; return its version."""
    writer.write(_create)
    return require_current(writer.db)


def migrate(writer: Writer) -> Migration:
    """Bring the database to the current schema: `hub serve` at start, and `hub migrate`.

    A new database is created whole (`create`); an older one gets each missing migration in a
    transaction of its own. A database newer than this pingjia is refused (SchemaError).
    """
    before = version(writer.db)
    if before is None:
        return Migration(None, create(writer))
    if before > latest():
        require_current(writer.db)  # raises: newer than this pingjia
    for number, script in _migrations():
        if number > before:
            writer.write(_apply, number, script)
    return Migration(before, require_current(writer.db))


def _create(db: Database) -> None:
    _lock(db)
    if version(db) is not None:
        return  # another writer created it meanwhile
    for number, script in _migrations():
        _run(db, number, script)


def _apply(db: Database, number: int, script: str) -> None:
    _lock(db)
    if (version(db) or 0) >= number:
        return  # another worker migrated meanwhile
    _run(db, number, script)


def _lock(db: Database) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ms BIGINT)")
    if db.kind == "postgresql":  # one migrator at a time, whoever starts first (SQLite has one writer)
        db.execute("LOCK TABLE schema_version IN EXCLUSIVE MODE")


def _run(db: Database, number: int, script: str) -> None:
    for statement in _statements(script):
        db.execute(statement)
    db.execute("INSERT INTO schema_version(version, applied_ms) VALUES (?, ?)", (number, time.time_ns() // 1_000_000))


def _statements(script: str) -> list[str]:
    """The statements of a migration: `--` comments removed, split on `;` (no `;` inside literals)."""
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [statement.strip() for statement in code.split(";") if statement.strip()]
