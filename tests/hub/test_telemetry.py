"""What terminals say about themselves (hub.telemetry): status, health and events, kept per terminal."""

from __future__ import annotations

import json

import pytest

from hub import registry
from protocol import (
    Channel,
    DeviceEvent,
    EventKind,
    Reason,
    SigningKey,
    Status,
    StatusState,
    encode_event,
    encode_status,
    topic,
)
from tests.helpers import health_bytes as health
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()
NOW = 1_763_800_000_000


@pytest.fixture
def db(hub_db: HubDb) -> HubDb:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    return hub_db


def test_a_late_offline_status_does_not_override_a_fresh_online(db: HubDb) -> None:
    status_topic = topic("d1", Channel.STATUS)
    for state, session in [(StatusState.ONLINE, 5), (StatusState.OFFLINE, 4), (StatusState.ONLINE, 5)]:
        db.receive(status_topic, encode_status(Status(device="d1", state=state, session=session), KEY), NOW)
    assert db.one("SELECT status_state, status_session FROM devices") == ("online", 5)
    db.receive(status_topic, encode_status(Status(device="d1", state=StatusState.OFFLINE, session=5), KEY), NOW)
    assert db.one("SELECT status_state FROM devices") == ("offline",)


def test_health_is_kept_per_terminal(db: HubDb) -> None:
    db.receive(topic("d1", Channel.HEALTH), health(KEY, staff="E1", last_error="key panel unplugged"), NOW)
    row = db.one("SELECT health FROM devices WHERE id = 'd1'")
    assert row is not None
    assert json.loads(row[0])["last_error"] == "key panel unplugged"
    outcome = db.receive(topic("d2", Channel.HEALTH), health(KEY, device="d2"), NOW)
    assert outcome.rejections[0].reason is Reason.UNKNOWN_DEVICE


def test_events_are_recorded(db: HubDb) -> None:
    event = DeviceEvent(device="d1", t=NOW, boot="b", mono=1, kind=EventKind.MISUSE_BURST, detail="8 presses in 10 s")
    db.receive(topic("d1", Channel.EVENT), encode_event(event, KEY), NOW)
    assert db.rows("SELECT kind, detail FROM device_events") == [("misuse_burst", "8 presses in 10 s")]
