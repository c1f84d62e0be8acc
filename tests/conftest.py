"""Shared fixtures. Tests that need a broker start their own Mosquitto with the project's config.

Without Mosquitto installed such tests are skipped on a developer's machine, but under CI=true a
missing broker is a failure: CI must never skip them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from simulator.processes import MosquittoBroker

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=False, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if IN_CI else "default")


def need_mosquitto() -> None:
    if not MosquittoBroker.available():
        if IN_CI:
            pytest.fail("Mosquitto is not installed; CI never skips broker tests (apt-get install mosquitto)")
        pytest.skip("Mosquitto is not installed")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A fresh Mosquitto with the project's configuration on a free port."""
    need_mosquitto()
    broker = MosquittoBroker(workdir=tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


PG_URL = os.environ.get("PINGJIA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    try:
        import psycopg

        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means the same here
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable ({exc}); CI never skips database tests")
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable: {exc}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
