from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given

from protocol import (
    Command,
    CommandName,
    ConfigDoc,
    DecodeError,
    DeviceEvent,
    Health,
    PanelState,
    Reason,
    decode_command,
    decode_config,
    decode_event,
    decode_health,
    encode,
    encode_command,
    encode_config,
    encode_event,
    encode_health,
    verify_command,
    verify_config,
    verify_event,
    verify_health,
)
from protocol import decode as decode_json
from tests.strategies import HUB_KEY, KEY, commands, configs, device_events, healths


@given(healths)
def test_health_round_trips(health: Health) -> None:
    raw = encode_health(health, KEY)
    decoded = decode_health(raw)
    assert decoded == dataclasses.replace(health, sig=decoded.sig)
    verify_health(decoded, KEY.public)
    assert encode(decode_json(raw)) == raw
    assert encode_health(decoded, KEY) == raw


@given(device_events)
def test_events_round_trip(event: DeviceEvent) -> None:
    raw = encode_event(event, KEY)
    decoded = decode_event(raw)
    assert decoded == dataclasses.replace(event, sig=decoded.sig)
    verify_event(decoded, KEY.public)
    assert encode_event(decoded, KEY) == raw


@given(commands)
def test_commands_round_trip(command: Command) -> None:
    raw = encode_command(command, HUB_KEY)
    decoded = decode_command(raw)
    assert decoded == dataclasses.replace(command, sig=decoded.sig)
    verify_command(decoded, HUB_KEY.public)
    assert encode_command(decoded, HUB_KEY) == raw


@given(configs)
def test_configuration_documents_round_trip(doc: ConfigDoc) -> None:
    raw = encode_config(doc, HUB_KEY)
    decoded = decode_config(raw)
    assert decoded == dataclasses.replace(doc, sig=decoded.sig)
    verify_config(decoded, HUB_KEY.public)
    assert encode(decode_json(raw)) == raw
    assert encode_config(decoded, HUB_KEY) == raw


_LOGOUT = json.loads(encode_command(Command(device="d1", cmd=CommandName.LOGOUT, n=1, t=5), HUB_KEY))


def _cmd(**changes: Any) -> bytes:
    """A signed logout's wire bytes with `changes` (None: the field removed): its shape, not its signature."""
    wire = {**_LOGOUT, **changes}
    return encode({name: value for name, value in wire.items() if value is not None})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_cmd(cmd="login"), Reason.BAD_FIELD),  # login without staff
        (_cmd(staff="E1"), Reason.BAD_FIELD),
        (_cmd(ticket="A1"), Reason.BAD_FIELD),
        (_cmd(cmd="reboot"), Reason.BAD_FIELD),
        (_cmd(device="d/1"), Reason.BAD_FIELD),
        (_cmd(n=0), Reason.BAD_FIELD),  # counters start at 1
        (_cmd(n=None), Reason.BAD_FIELD),
        (_cmd(t=None), Reason.BAD_FIELD),
        (_cmd(t=-1), Reason.BAD_FIELD),
        (_cmd(sig=None), Reason.BAD_FIELD),
        (_cmd(type="ack"), Reason.WRONG_TYPE),
        (_cmd(v=1), Reason.UNKNOWN_VERSION),
        (_cmd(v=3), Reason.UNKNOWN_VERSION),
        (b'{"cmd":"logout","device":"d1","type":"cmd","v":1}', Reason.UNKNOWN_VERSION),  # v1: unsigned
        (_cmd().replace(b'{"cmd":"logout","device":"d1"', b'{"device":"d1","cmd":"logout"'), Reason.NOT_CANONICAL),
        (b"x" * 600_000, Reason.OVERSIZE),
        (b"[1]", Reason.MALFORMED),
    ],
)
def test_bad_commands_are_refused_with_their_reason(raw: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_command(raw)
    assert caught.value.reason is reason


def test_health_refuses_a_field_out_of_range_and_names_it() -> None:
    good = encode_health(
        Health(
            device="d1",
            t=1,
            boot="b",
            mono=2,
            fw="1",
            uptime_s=3,
            state="idle",
            panel=PanelState.NONE,
            outbox_depth=0,
            free_disk_bytes=0,
            misuse_alarms=0,
            rejected=0,
            session=0,
            config_version=1,
        ),
        KEY,
    )
    with pytest.raises(DecodeError, match=r"health outbox_depth must be an integer in 0\.\."):
        decode_health(good.replace(b'"outbox_depth":0', b'"outbox_depth":-1'))
    with pytest.raises(DecodeError, match="health panel must be one of connected, disconnected, none"):
        decode_health(good.replace(b'"panel":"none"', b'"panel":"maybe"'))
    with pytest.raises(DecodeError, match=r"health config_version must be an integer in 1\.\."):
        decode_health(good.replace(b'"config_version":1', b'"config_version":0'))


def test_a_login_names_its_staff_member() -> None:
    raw = encode_command(Command(device="d1", cmd=CommandName.LOGIN, staff="E1", n=1, t=0), HUB_KEY)
    assert decode_command(raw).staff == "E1"
