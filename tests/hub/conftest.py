"""For hub tests: a hub database with its writer (as `hub serve`'s writer thread holds it) and a
reader (as reports and `hub devices` read it), on SQLite, and on PostgreSQL where it is marked so;
and a hub served in a thread of this process on the in-memory broker, with clients beside it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub import schema
from hub.config import HubConfig
from hub.db import open_database
from hub.ingest import Ingest, Outcome
from hub.queries import Reader
from hub.serve import Hub
from hub.writer import Writer
from runtime.fake import FakeBroker
from runtime.link import Client, Inbound, LinkEvent
from simulator.processes import wait_until
from tests.helpers import HUB_KEYS


@dataclass
class HubDb:
    url: str
    writer: Writer
    reader: Reader

    def ingest(self, config: HubConfig | None = None) -> Ingest:
        return Ingest(self.writer, config or HubConfig())

    def receive(
        self, name: str, payload: bytes, now_ms: int, ingest: Ingest | None = None, *, retained: bool = False
    ) -> Outcome:
        """One message stored as the writer stores a group of one: in its own transaction."""
        ingest = ingest or self.ingest()
        with self.writer.transaction():
            return ingest.receive(name, payload, now_ms, retained=retained)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.reader.execute(sql, params).fetchall()]

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        row = self.reader.execute(sql, params).fetchone()
        return None if row is None else tuple(row)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.database)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def hub_db(db_url: str) -> Iterator[HubDb]:
    writer = Writer.open(db_url)  # a new database: created at the current schema
    reader = Reader.open(db_url)
    try:
        yield HubDb(db_url, writer, reader)
    finally:
        reader.close()
        writer.close()


class Served:
    """A hub served by a thread of this process (its writer thread), on an in-memory broker."""

    def __init__(self, db: str, broker: FakeBroker, config: HubConfig | None = None, **options: Any) -> None:
        options.setdefault("keys", HUB_KEYS)
        self.hub = Hub(db=db, broker=broker, config=config or HubConfig(), preparers=0, **options)
        self.thread = threading.Thread(target=self.hub.run, name="hub-writer", daemon=True)
        self.thread.start()
        wait_until(lambda: self.hub.link.connected, 20, "the hub to subscribe")

    def stop(self) -> None:
        self.hub.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()


class Ear:
    """A client of the in-memory broker (a terminal's side, a watcher): publishes, and keeps what
    arrives on its filters."""

    def __init__(self, broker: FakeBroker, client_id: str, filters: list[str]) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._condition = threading.Condition()
        self.link = broker.connect(
            Client(client_id=client_id, on_event=self._on_event, subscriptions=[(f, 1) for f in filters])
        )
        self.link.start()

    def _on_event(self, event: LinkEvent) -> None:
        if isinstance(event, Inbound):
            with self._condition:
                self.messages.append((event.topic, event.payload))
                self._condition.notify_all()

    def publish(self, name: str, payload: bytes, *, retain: bool = False) -> None:
        assert self.link.publish(name, payload, retain=retain)

    def wait_until(self, name: str, predicate: Callable[[list[bytes]], bool], timeout_s: float = 15) -> list[bytes]:
        """Wait until the payloads received on `name` satisfy `predicate`; return them."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                found = [payload for topic, payload in self.messages if topic == name]
                if predicate(found):
                    return found
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"timed out waiting on {name}; got {len(found)} message(s)"
                self._condition.wait(remaining)

    def wait_for(self, name: str, count: int = 1, timeout_s: float = 15) -> list[bytes]:
        return self.wait_until(name, lambda found: len(found) >= count, timeout_s)


def older_database(url: str, version: int) -> None:
    """A hub database as an older pingjia left it: migrations 1..`version` only."""
    db = open_database(url, create=True)
    try:
        with db.transaction():
            schema._lock(db)
            for number, script in schema._migrations():
                if number <= version:
                    schema._run(db, number, script)
    finally:
        db.close()


def schema_version(url: str) -> int | None:
    db = open_database(url)
    try:
        return schema.version(db)
    finally:
        db.close()
