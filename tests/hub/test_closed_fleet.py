"""The hub's side of a closed fleet, in process: what terminals say must be signed by their own
key, a revoked key counts only for what happened before, refusals are budgeted per source, gaps
are reported in acks, and commands and configuration are numbered and signed."""

from __future__ import annotations

import pytest

from hub import control, registry
from hub.config import HubConfig
from hub.errors import RegistryError
from protocol import (
    Channel,
    CommandName,
    DeviceEvent,
    EventKind,
    Reason,
    SigningKey,
    Status,
    StatusState,
    decode_command,
    decode_config,
    encode_event,
    encode_status,
    topic,
    verify_command,
    verify_config,
)
from tests.helpers import HUB_KEYS, batch_bytes, chain, health_bytes
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()
NOW = 1_763_800_000_000
RATINGS = topic("d1", Channel.RATINGS)


@pytest.fixture
def db(hub_db: HubDb) -> HubDb:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    hub_db.writer.write(registry.add_staff, "E1", name="王芳", department="综合受理")
    return hub_db


def test_what_a_terminal_says_of_itself_must_carry_its_own_signature(db: HubDb) -> None:
    forger = SigningKey.generate()
    status = Status(device="d1", state=StatusState.OFFLINE, session=2**62)
    assert db.receive(topic("d1", Channel.STATUS), encode_status(status, forger), NOW).rejections[0].reason is (
        Reason.BAD_SIGNATURE
    )
    forged_health = health_bytes(forger, device="d1", hub_offset_ms=-40 * 86_400_000)
    assert db.receive(topic("d1", Channel.HEALTH), forged_health, NOW).rejections[0].reason is Reason.BAD_SIGNATURE
    event = DeviceEvent(device="d1", t=NOW, boot="b", mono=1, kind=EventKind.MISUSE_BURST)
    assert db.receive(topic("d1", Channel.EVENT), encode_event(event, forger), NOW).rejections[0].reason is (
        Reason.BAD_SIGNATURE
    )
    assert db.one("SELECT status_state, health FROM devices WHERE id = 'd1'") == (None, None)
    assert db.one("SELECT count(*) FROM device_events") == (0,)


def test_a_revoked_key_counts_only_for_what_happened_before_its_revocation(db: HubDb) -> None:
    records = chain(KEY, "d1", 3, t=NOW - 60_000)
    db.receive(RATINGS, batch_bytes(KEY, records[:1]), NOW)
    with db.writer.transaction() as conn:
        conn.execute("UPDATE devices SET revoked_ms = ? WHERE id = 'd1'", (NOW - 59_000,))
    late = db.receive(RATINGS, batch_bytes(KEY, records[1:]), NOW)  # seq 2 made at NOW - 59_999 ... ok, 3 too
    assert late.rejections == []  # made before the revocation: still valid
    after = chain(KEY, "d1", 1, first=4, prev=records[-1].hash(), t=NOW - 1_000)
    refused = db.receive(RATINGS, batch_bytes(KEY, after), NOW)
    assert (refused.rejections[0].reason, refused.rejections[0].seq) == (Reason.REVOKED, 4)
    assert db.reader.rating_count() == 3
    health = health_bytes(KEY, device="d1")
    assert db.receive(topic("d1", Channel.HEALTH), health, NOW).rejections[0].reason is Reason.REVOKED


def test_refusals_past_a_sources_budget_are_only_counted(db: HubDb) -> None:
    db.writer.write(registry.add_device, "d2", SigningKey.generate().public.hex, department="A")
    ingest = db.ingest(HubConfig(rejects_per_minute=60, rejects_burst=10))
    for index in range(50):
        db.receive(RATINGS, b"not json %d" % index, NOW + index, ingest)
    answered = db.receive(RATINGS, b"not json either", NOW + 60_000, ingest)  # a minute later: 60 more
    other = db.receive(topic("d2", Channel.RATINGS), b"not json", NOW, ingest)
    assert db.one("SELECT count(*) FROM rejects WHERE device = 'd1'") == (11,)
    assert ingest.counters["rejects_unrecorded"] == 40
    assert answered.rejections  # a minute later, answered again
    assert other.rejections  # another source has its own budget
    assert db.one("SELECT count(*) FROM rejects WHERE device = 'd2'") == (1,)


def test_an_answer_names_what_is_held_past_a_gap(db: HubDb) -> None:
    records = chain(KEY, "d1", 6)
    db.receive(RATINGS, batch_bytes(KEY, records[:2]), NOW)
    ahead = db.receive(RATINGS, batch_bytes(KEY, records[3:5]), NOW)  # seq 3's batch was lost
    assert (ahead.upto, ahead.held) == (2, (4, 5))
    again = db.receive(RATINGS, batch_bytes(KEY, records[3:4]), NOW)  # a duplicate says it too
    assert (again.upto, again.held) == (2, (4, 5))
    filled = db.receive(RATINGS, batch_bytes(KEY, records[2:3]), NOW)
    assert (filled.upto, filled.held) == (5, None)


def test_commands_are_numbered_signed_and_checked_against_the_registry(db: HubDb) -> None:
    first = db.writer.write(control.next_command, HUB_KEYS, "d1", CommandName.LOGIN, staff="E1", now_ms=NOW)
    second = db.writer.write(control.next_command, HUB_KEYS, "d1", CommandName.INVITE, ticket="A012", now_ms=NOW)
    commands = [decode_command(p.payload) for p in (first, second)]
    for command in commands:
        verify_command(command, HUB_KEYS.sign.public)
    assert [(c.cmd, c.n, c.t) for c in commands] == [(CommandName.LOGIN, 1, NOW), (CommandName.INVITE, 2, NOW)]
    assert first.topic == topic("d1", Channel.CMD)
    with pytest.raises(RegistryError, match="not registered"):
        db.writer.write(control.next_command, HUB_KEYS, "d1", CommandName.LOGIN, staff="EVIL-007", now_ms=NOW)
    with pytest.raises(RegistryError, match="not registered"):
        db.writer.write(control.next_command, HUB_KEYS, "ghost", CommandName.LOGOUT, now_ms=NOW)
    with db.writer.transaction() as conn:
        conn.execute("UPDATE devices SET revoked_ms = 1 WHERE id = 'd1'")
    with pytest.raises(RegistryError, match="revoked"):
        db.writer.write(control.next_command, HUB_KEYS, "d1", CommandName.LOGOUT, now_ms=NOW)


def test_configuration_documents_merge_department_and_device_with_growing_versions(db: HubDb) -> None:
    db.writer.write(registry.add_device, "d2", SigningKey.generate().public.hex, department="综合受理")

    def configure(scope: str, target: str, *settings: str, unset: tuple[str, ...] = ()) -> list[control.Publication]:
        def change(conn: object) -> list[control.Publication]:
            control.set_config(conn, scope, target, settings, unset=unset, now_ms=NOW)  # type: ignore[arg-type]
            devices = control.devices_of(conn, scope, target)  # type: ignore[arg-type]
            return control.config_documents(conn, HUB_KEYS, devices, NOW)  # type: ignore[arg-type]

        return db.writer.write(change)

    by_department = configure("department", "综合受理", "mode=open", "reason_labels=a,b,c,d,e")
    assert len(by_department) == 2
    [own] = configure("device", "d1", "mode=invited", "staff=E1")
    doc = decode_config(own.payload)
    verify_config(doc, HUB_KEYS.sign.public)
    assert dict(doc.settings) == {"mode": "invited", "reason_labels": "a,b,c,d,e", "staff": "E1"}
    assert doc.version > max(decode_config(p.payload).version for p in by_department)
    assert own.retain
    [back] = configure("device", "d1", unset=("mode",))
    assert dict(decode_config(back.payload).settings)["mode"] == "open"
    with pytest.raises(RegistryError, match="not a setting the hub can send"):
        configure("device", "d1", "broker=mqtt://evil:1883")
    with pytest.raises(RegistryError, match="NAME=VALUE"):
        configure("device", "d1", "mode")
    assert db.one("SELECT config_version FROM devices WHERE id = 'd1'") == (decode_config(back.payload).version,)
