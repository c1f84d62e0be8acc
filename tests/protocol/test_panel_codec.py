"""The key panel's wire format: CRC, COBS, every frame type, and a decoder that survives the line."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.panel import (
    CRC_CHECK,
    FRAME_TYPES,
    MAX_ENCODED_BYTES,
    Beep,
    Card,
    Dropped,
    DropReason,
    Frame,
    FrameAck,
    FrameDecoder,
    FrameNak,
    Hello,
    Identify,
    KeyDown,
    KeyUp,
    LedState,
    Ping,
    Pong,
    SetLeds,
    cobs_decode,
    cobs_encode,
    crc16,
    encode_frame,
)
from tests.strategies import PANEL_FRAMES, panel_frames


def raw_frame(frame_type: int, seq: int, body: bytes) -> bytes:
    """A frame built by hand, with a good CRC, whatever its type and body."""
    unencoded = bytes([frame_type, seq]) + body
    return cobs_encode(unencoded + crc16(unencoded).to_bytes(2, "big")) + b"\x00"


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[Frame]:
    return [frame for chunk in chunks for frame in decoder.feed(chunk)]


def dropped(decoder: FrameDecoder) -> dict[str, int]:
    return {reason: count for reason, count in decoder.counts.items() if count}


# -- CRC and COBS ----------------------------------------------------------------------------------


def test_crc16_is_ccitt_false_with_its_check_value() -> None:
    assert crc16(b"123456789") == CRC_CHECK == 0x29B1
    assert crc16(b"") == 0xFFFF  # init, no final xor


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
        (bytes(range(255)), b"\x01\xff" + bytes(range(1, 255))),
        (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
        (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
        (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
    ],
)
def test_cobs_matches_the_reference_examples(data: bytes, encoded: bytes) -> None:
    assert cobs_encode(data) == encoded
    assert cobs_decode(encoded) == data


@given(st.binary(max_size=1000))
def test_cobs_round_trips_and_leaves_no_zero_byte(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + 1 + len(data) // 254
    assert cobs_decode(encoded) == data


@pytest.mark.parametrize("bad", [b"\x00", b"\x03\x11", b"\x05\x11\x22\x00\x44", b"\x02\x11\x00"])
def test_cobs_decode_refuses_what_no_encoder_makes(bad: bytes) -> None:
    with pytest.raises(ValueError, match="offset"):
        cobs_decode(bad)


# -- frames ----------------------------------------------------------------------------------------


def test_every_frame_type_has_a_strategy_and_a_distinct_code_with_its_direction_in_the_high_bit() -> None:
    assert set(PANEL_FRAMES) == set(FRAME_TYPES.values())
    assert all(code == kind.TYPE for code, kind in FRAME_TYPES.items())
    from_panel = {Hello, KeyDown, KeyUp, Card, Pong, FrameAck, FrameNak}
    assert {kind for code, kind in FRAME_TYPES.items() if code & 0x80} == from_panel


@pytest.mark.parametrize("kind", [FRAME_TYPES[code] for code in sorted(FRAME_TYPES)], ids=lambda kind: kind.__name__)
@given(data=st.data())
def test_every_frame_type_round_trips(kind: type[Frame], data: st.DataObject) -> None:
    frame = data.draw(PANEL_FRAMES[kind])
    encoded = encode_frame(frame)
    assert encoded.endswith(b"\x00")
    assert 0 not in encoded[:-1]
    assert len(encoded) - 1 <= MAX_ENCODED_BYTES
    decoder = FrameDecoder()
    assert decoder.feed(encoded) == [frame]
    assert dropped(decoder) == {}


@given(st.lists(panel_frames, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_frames_split_anywhere_come_out_whole_and_in_order(frames: list[Frame], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(frame) for frame in frames)
    decoder = FrameDecoder()
    assert feed_all(decoder, pieces(stream, cuts)) == frames
    assert dropped(decoder) == {}


def test_a_stream_fed_one_byte_at_a_time_decodes_the_same() -> None:
    frames: list[Frame] = [
        KeyDown(seq=1, key=5, panel_ms=0),
        SetLeds(seq=2, states=(LedState.ON,) * 5),
        Card(seq=3, uid=b"\x00\x00\x00\x00"),
    ]
    stream = b"".join(encode_frame(frame) for frame in frames)
    decoder = FrameDecoder()
    assert feed_all(decoder, [bytes([byte]) for byte in stream]) == frames


# -- the line: noise, damage, resync ---------------------------------------------------------------


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=40))
def test_any_bytes_split_anywhere_never_raise_and_each_delimiter_gets_one_verdict(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    frames = feed_all(decoder, pieces(data, cuts))
    assert len(frames) + sum(decoder.counts.values()) == data.count(0)


@given(
    st.lists(st.tuples(st.binary(max_size=100), panel_frames), min_size=1, max_size=10),
    st.binary(max_size=100),
    st.lists(st.integers(min_value=0), max_size=30),
)
def test_frames_between_garbage_are_all_recovered(
    runs: list[tuple[bytes, Frame]], tail: bytes, cuts: list[int]
) -> None:
    # Garbage may end anywhere, so a sender that cannot know the line was clean starts with a 0x00.
    stream = b"".join(garbage + b"\x00" + encode_frame(frame) for garbage, frame in runs) + tail
    decoder = FrameDecoder()
    assert feed_all(decoder, pieces(stream, cuts)) == [frame for _, frame in runs]


def test_a_frame_glued_to_garbage_is_lost_and_the_next_one_is_not() -> None:
    first, second = KeyDown(seq=1, key=1, panel_ms=5), KeyUp(seq=2, key=1, panel_ms=85)
    decoder = FrameDecoder()
    assert decoder.feed(b"\x13\x37" + encode_frame(first) + encode_frame(second)) == [second]
    assert sum(decoder.counts.values()) == 1


@given(panel_frames)
def test_a_single_bit_flip_anywhere_in_a_frame_is_caught_by_the_crc(frame: Frame) -> None:
    # CRC-16 detects every single-bit error, so this holds for every frame, not just most.
    encoded = encode_frame(frame)
    unencoded = cobs_decode(encoded[:-1])
    for bit in range(len(unencoded) * 8):
        damaged = bytearray(unencoded)
        damaged[bit // 8] ^= 1 << (bit % 8)
        decoder = FrameDecoder()
        assert decoder.feed(cobs_encode(bytes(damaged)) + b"\x00") == []
        assert dropped(decoder) == {"crc": 1}


WIRE_CORPUS: list[Frame] = [
    Hello(seq=0, fw="panel-1.0", serial="PJP-000001"),
    KeyDown(seq=7, key=5, panel_ms=123456),
    KeyUp(seq=8, key=5, panel_ms=123536),
    Card(seq=0, uid=b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
    Card(seq=50, uid=b"\x01\x01"),
    Card(seq=3, uid=bytes.fromhex("04a1b2c3d4e5f6")),
    Pong(seq=0, token=0),
    FrameAck(seq=1, ref=0),
    FrameNak(seq=2, ref=255, code=2),
    Ping(seq=0, token=0xFFFFFFFF),
    Identify(seq=0),
    SetLeds(seq=3, states=(LedState.OFF, LedState.ON, LedState.BLINK, LedState.OFF, LedState.OFF)),
    Beep(seq=4, pattern=((100, 0), (0, 256), (1, 1), (65535, 65535), (0, 0), (256, 1), (1, 0), (0, 1))),
    Beep(seq=5, pattern=()),
]


@pytest.mark.parametrize("frame", WIRE_CORPUS, ids=repr)
def test_a_single_bit_flip_on_the_wire_is_dropped_never_taken_for_another_frame(frame: Frame) -> None:
    # A flip in a COBS code byte moves 0x00s around the frame or splits it in two. What catches it is
    # the COBS structure, the body's own length fields or the CRC; for a flip that keeps the length
    # and the structure only the CRC is left, which misses about 1 in 65536 such frames. So this is
    # every flip of a fixed corpus; the guarantee for every frame is the test above.
    encoded = encode_frame(frame)[:-1]
    for bit in range(len(encoded) * 8):
        damaged = bytearray(encoded)
        damaged[bit // 8] ^= 1 << (bit % 8)
        decoder = FrameDecoder()
        assert decoder.feed(bytes(damaged) + b"\x00") == [], f"bit {bit}"
        assert sum(decoder.counts.values()) == 1 + damaged.count(0)


@given(panel_frames, st.integers(min_value=1))
def test_a_frame_that_lost_its_end_is_dropped(frame: Frame, lost: int) -> None:
    # Every body states its own length, so a shortened frame that still passes the CRC (one whose
    # CRC ends in 0x00 and that lost that byte) is still refused.
    encoded = encode_frame(frame)[:-1]
    decoder = FrameDecoder()
    assert decoder.feed(encoded[: -(1 + lost % len(encoded))] + b"\x00") == []
    assert sum(decoder.counts.values()) == 1


def test_the_one_truncation_the_crc_cannot_see_is_refused_by_the_body_length() -> None:
    frame = Card(seq=0, uid=b"FF")
    unencoded = cobs_decode(encode_frame(frame)[:-1])
    assert unencoded.endswith(b"\x00")  # its CRC ends in 0x00: without that byte the CRC still holds
    shortened = unencoded[:-1]
    assert crc16(shortened[:-2]) == int.from_bytes(shortened[-2:], "big")
    decoder = FrameDecoder()
    assert decoder.feed(cobs_encode(shortened) + b"\x00") == []
    assert dropped(decoder) == {"bad_body": 1}


def test_each_kind_of_damage_is_counted_under_its_reason() -> None:
    seen: list[Dropped] = []
    decoder = FrameDecoder(on_drop=seen.append)
    good = KeyDown(seq=9, key=2, panel_ms=1000)
    stream = (
        b"\x00"  # empty
        + b"\x7f" * (MAX_ENCODED_BYTES + 1)
        + b"\x00"  # oversize
        + b"\x05\x11\x00"  # cobs: the block runs past the end
        + b"\x03\x81\x01\x00"  # truncated: two bytes
        + encode_frame(good)[:3]
        + bytes([encode_frame(good)[3] ^ 0x10])
        + encode_frame(good)[4:]  # crc
        + raw_frame(0x7F, 42, b"")  # unknown_type
        + raw_frame(KeyDown.TYPE, 43, b"\x07\x00\x00\x00\x01")  # bad_body: key 7
        + encode_frame(good)
    )
    assert decoder.feed(stream) == [good]
    assert dropped(decoder) == {
        "empty": 1,
        "oversize": 1,
        "cobs": 1,
        "truncated": 1,
        "crc": 1,
        "unknown_type": 1,
        "bad_body": 1,
    }
    assert [(d.reason, d.frame_type, d.seq) for d in seen if d.seq is not None] == [
        (DropReason.UNKNOWN_TYPE, 0x7F, 42),
        (DropReason.BAD_BODY, KeyDown.TYPE, 43),
    ]


def test_exactly_64_encoded_bytes_is_not_oversize_and_65_is() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x7f" * MAX_ENCODED_BYTES + b"\x00")
    assert decoder.counts["oversize"] == 0
    decoder.feed(b"\x7f" * (MAX_ENCODED_BYTES + 1) + b"\x00")
    assert decoder.counts["oversize"] == 1


def test_an_endless_run_without_a_delimiter_is_one_oversize_and_then_the_stream_resyncs() -> None:
    decoder = FrameDecoder()
    for _ in range(1000):
        assert decoder.feed(b"\x55" * 1000) == []
    frame = Pong(seq=1, token=7)
    assert decoder.feed(b"\x00" + encode_frame(frame)) == [frame]
    assert dropped(decoder) == {"oversize": 1}


def test_reset_forgets_a_partial_frame() -> None:
    decoder = FrameDecoder()
    frame = FrameAck(seq=1, ref=2)
    decoder.feed(encode_frame(frame)[:3])
    decoder.reset()
    assert decoder.feed(encode_frame(frame)) == [frame]
    assert dropped(decoder) == {}


@pytest.mark.parametrize(
    ("frame_type", "body", "why"),
    [
        (Hello.TYPE, b"\x02ab\x01", "runs past"),
        (Hello.TYPE, b"\x02ab\x01c!", "after serial"),
        (Hello.TYPE, b"\x02\xff\xfe\x01c", "UTF-8"),
        (Hello.TYPE, b"\x00\x01c", "Hello.fw"),
        (Hello.TYPE, b"\x02a\n\x01c", "printable"),
        (KeyUp.TYPE, b"\x00\x00\x00\x00\x01", "KeyUp.key"),
        (KeyDown.TYPE, b"\x01\x00\x00\x01", "expected 5 bytes"),
        (Card.TYPE, b"", "empty"),
        (Card.TYPE, b"\x00", "Card.uid"),
        (Card.TYPE, b"\x03\x01\x02", "expected 3 bytes"),
        (Card.TYPE, b"\x11" + bytes(17), "Card.uid"),
        (Pong.TYPE, b"\x00\x00\x00\x00\x00", "expected 4 bytes"),
        (FrameAck.TYPE, b"", "expected 1 bytes"),
        (FrameNak.TYPE, b"\x01", "expected 2 bytes"),
        (Identify.TYPE, b"\x00", "expected 0 bytes"),
        (SetLeds.TYPE, b"\x00\x01\x02\x03\x00", "states\\[4\\]"),
        (SetLeds.TYPE, b"\x00\x01\x02\x00", "expected 5 bytes"),
        (Beep.TYPE, b"", "empty"),
        (Beep.TYPE, b"\x01\x00\x01\x00", "expected 4 bytes"),
        (Beep.TYPE, b"\x09" + bytes(36), "Beep.pattern"),
    ],
)
def test_a_body_that_breaks_its_layout_is_bad_body(frame_type: int, body: bytes, why: str) -> None:
    seen: list[Dropped] = []
    decoder = FrameDecoder(on_drop=seen.append)
    assert decoder.feed(raw_frame(frame_type, 1, body)) == []
    assert dropped(decoder) == {"bad_body": 1}
    assert [d.reason for d in seen] == [DropReason.BAD_BODY]
    assert re.search(why, seen[0].detail), seen[0].detail


# -- values are checked when a frame is made -------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: KeyDown(key=0, panel_ms=0), "KeyDown.key"),
        (lambda: KeyDown(key=7, panel_ms=0), "KeyDown.key"),
        (lambda: KeyUp(key=True, panel_ms=0), "KeyUp.key"),
        (lambda: KeyDown(key=1, panel_ms=-1), "KeyDown.panel_ms"),
        (lambda: KeyDown(key=1, panel_ms=2**32), "KeyDown.panel_ms"),
        (lambda: KeyDown(seq=256, key=1, panel_ms=0), "KeyDown.seq"),
        (lambda: Ping(seq=-1, token=0), "Ping.seq"),
        (lambda: Hello(fw="", serial="x"), "Hello.fw"),
        (lambda: Hello(fw="1" * 25, serial="x"), "Hello.fw"),
        (lambda: Hello(fw="1.0", serial="柜台终端序列号一二三四五六七八"), "Hello.serial"),
        (lambda: Hello(fw="1.0\n", serial="x"), "Hello.fw"),
        (lambda: Card(uid=b""), "Card.uid"),
        (lambda: Card(uid=bytes(17)), "Card.uid"),
        (lambda: Card(uid="04a1b2c3"), "Card.uid"),  # type: ignore[arg-type]
        (lambda: Pong(token=2**32), "Pong.token"),
        (lambda: Ping(token=-1), "Ping.token"),
        (lambda: FrameAck(ref=256), "FrameAck.ref"),
        (lambda: FrameNak(ref=1, code=256), "FrameNak.code"),
        (lambda: SetLeds(states=(LedState.ON,) * 4), "SetLeds.states"),
        (lambda: SetLeds(states=(0, 1, 2, 3, 0)), "SetLeds.states\\[4\\]"),  # type: ignore[arg-type]
        (lambda: Beep(pattern=((1, 1),) * 9), "Beep.pattern"),
        (lambda: Beep(pattern=((65536, 0),)), "Beep.pattern\\[0\\].on_ms"),
        (lambda: Beep(pattern=((0, -1),)), "Beep.pattern\\[0\\].off_ms"),
        (lambda: Beep(pattern=((1, 2, 3),)), "Beep.pattern\\[0\\]"),  # type: ignore[arg-type]
    ],
)
def test_a_value_out_of_range_is_refused_naming_the_field(make: Callable[[], Frame], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()


def test_led_states_given_as_numbers_become_led_states() -> None:
    frame = SetLeds(states=(0, 1, 2, 0, 1))  # type: ignore[arg-type]
    assert frame.states == (LedState.OFF, LedState.ON, LedState.BLINK, LedState.OFF, LedState.ON)
    assert all(isinstance(state, LedState) for state in frame.states)


def test_a_sender_numbers_one_frame_as_it_writes_it() -> None:
    frame = SetLeds(states=(LedState.ON,) * 5)
    for seq in (0, 7, 255):
        assert encode_frame(frame, seq) == encode_frame(SetLeds(seq=seq, states=frame.states))
    assert encode_frame(frame) == encode_frame(frame, 0)
    for bad in (-1, 256, True, 1.0):
        with pytest.raises(ValueError, match=r"seq must be an int in 0\.\.255"):
            encode_frame(frame, bad)  # type: ignore[arg-type]
