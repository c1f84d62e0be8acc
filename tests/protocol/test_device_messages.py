from __future__ import annotations

import pytest
from hypothesis import given

from protocol import (
    Command,
    CommandName,
    DecodeError,
    DeviceEvent,
    Health,
    Reason,
    decode_command,
    decode_event,
    decode_health,
    encode,
    encode_command,
    encode_event,
    encode_health,
)
from protocol import decode as decode_json
from tests.strategies import commands, device_events, healths


@given(healths)
def test_health_round_trips(health: Health) -> None:
    raw = encode_health(health)
    assert decode_health(raw) == health
    assert encode(decode_json(raw)) == raw


@given(device_events)
def test_events_round_trip(event: DeviceEvent) -> None:
    assert decode_event(encode_event(event)) == event


@given(commands)
def test_commands_round_trip(command: Command) -> None:
    assert decode_command(encode_command(command)) == command


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"cmd":"login","device":"d1","type":"cmd","v":1}', Reason.BAD_FIELD),  # login without staff
        (b'{"cmd":"logout","device":"d1","staff":"E1","type":"cmd","v":1}', Reason.BAD_FIELD),
        (b'{"cmd":"logout","device":"d1","ticket":"A1","type":"cmd","v":1}', Reason.BAD_FIELD),
        (b'{"cmd":"reboot","device":"d1","type":"cmd","v":1}', Reason.BAD_FIELD),
        (b'{"cmd":"logout","device":"d/1","type":"cmd","v":1}', Reason.BAD_FIELD),
        (b'{"cmd":"logout","device":"d1","type":"ack","v":1}', Reason.WRONG_TYPE),
        (b'{"cmd":"logout","device":"d1","type":"cmd","v":2}', Reason.UNKNOWN_VERSION),
        (b'{"device":"d1","cmd":"logout","type":"cmd","v":1}', Reason.NOT_CANONICAL),
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
            panel="none",  # type: ignore[arg-type]
            outbox_depth=0,
            free_disk_bytes=0,
            misuse_alarms=0,
            rejected=0,
            session=0,
        )
    )
    with pytest.raises(DecodeError, match=r"health outbox_depth must be an integer in 0\.\."):
        decode_health(good.replace(b'"outbox_depth":0', b'"outbox_depth":-1'))
    with pytest.raises(DecodeError, match="health panel must be one of connected, disconnected, none"):
        decode_health(good.replace(b'"panel":"none"', b'"panel":"maybe"'))


def test_a_login_names_its_staff_member() -> None:
    assert decode_command(encode_command(Command(device="d1", cmd=CommandName.LOGIN, staff="E1"))).staff == "E1"
