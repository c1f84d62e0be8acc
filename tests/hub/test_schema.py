"""The schema (hub.schema): a new database created whole is the database every migration leads to."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import schema
from hub.db import open_database
from hub.writer import Writer
from tests.hub.conftest import older_database


def _tables(url: str) -> list[tuple[str, str, str]]:
    db = open_database(url)
    try:
        rows = db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ).fetchall()
        return [(kind, name, " ".join((sql or "").split())) for kind, name, sql in rows]
    finally:
        db.close()


@pytest.mark.parametrize("start", range(1, 6))
def test_creating_a_database_and_migrating_an_older_one_give_the_same_schema(tmp_path: Path, start: int) -> None:
    created, migrated = f"sqlite:///{tmp_path / 'new.sqlite3'}", f"sqlite:///{tmp_path / 'old.sqlite3'}"
    Writer.open(created).close()
    older_database(migrated, start)
    with Writer.open(migrated, migrate=True) as writer:
        assert writer.migration == schema.Migration(start, schema.latest())
    assert _tables(created) == _tables(migrated)
