"""protocol/PANEL.md is what firmware is written from: its examples and tables must match the code."""

from __future__ import annotations

import re
from pathlib import Path

from protocol.panel import (
    CRC_CHECK,
    FRAME_TYPES,
    MAX_BEEP_STEPS,
    MAX_BODY_BYTES,
    MAX_ENCODED_BYTES,
    MAX_TEXT_BYTES,
    MAX_UID_BYTES,
    Frame,
    FrameDecoder,
    Hello,
    KeyDown,
    LedState,
    NakCode,
    SetLeds,
    cobs_decode,
    crc16,
    encode_frame,
)

SPEC = (Path(__file__).parents[2] / "protocol" / "PANEL.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```hex\nframe: ([0-9a-f ]+)\nwire:  ([0-9a-f ]+)\n```", SPEC)
EXPECTED: list[Frame] = [
    KeyDown(seq=7, key=5, panel_ms=123456),
    SetLeds(seq=3, states=(LedState.OFF, LedState.ON, LedState.BLINK, LedState.OFF, LedState.OFF)),
    Hello(seq=0, fw="panel-1.0", serial="PJP-000001"),
]


def test_the_worked_examples_are_what_the_codec_makes_and_reads() -> None:
    assert len(EXAMPLES) == len(EXPECTED)
    for (frame_hex, wire_hex), frame in zip(EXAMPLES, EXPECTED, strict=True):
        unencoded, wire = bytes.fromhex(frame_hex), bytes.fromhex(wire_hex)
        assert encode_frame(frame) == wire
        assert cobs_decode(wire[:-1]) == unencoded
        assert crc16(unencoded[:-2]) == int.from_bytes(unencoded[-2:], "big")
        assert f"crc 0x{crc16(unencoded[:-2]):04x}" in SPEC
        assert FrameDecoder().feed(wire) == [frame]


def test_the_type_table_is_the_codes_table() -> None:
    rows = re.findall(r"^\| `0x([0-9a-f]{2})` \| (\w+) \| (host → panel|panel → host) \|", SPEC, re.M)
    assert {int(code, 16): name for code, name, _ in rows} == {
        code: kind.__name__ for code, kind in FRAME_TYPES.items()
    }
    assert all((int(code, 16) >= 0x80) == (direction == "panel → host") for code, _, direction in rows)


def test_the_numbers_in_the_text_are_the_codes_numbers() -> None:
    assert f"**0x{CRC_CHECK:04X}**" in SPEC
    assert crc16(b"123456789") == CRC_CHECK
    assert f"at most **{MAX_ENCODED_BYTES} bytes**" in SPEC
    largest = encode_frame(Hello(fw="f" * MAX_TEXT_BYTES, serial="s" * MAX_TEXT_BYTES))
    assert f"every frame of this version encodes to at most {len(largest) - 1})" in SPEC
    assert f"| body | {MAX_BODY_BYTES} bytes |" in SPEC
    assert f"| 0..{MAX_BODY_BYTES} | body |" in SPEC
    assert f"1..{MAX_TEXT_BYTES} bytes each" in SPEC
    assert f"| card uid | 1..{MAX_UID_BYTES} bytes |" in SPEC
    assert f"| beep steps | {MAX_BEEP_STEPS} |" in SPEC
    assert ", ".join(f"{int(state)} {state.name.lower()}" for state in LedState) in SPEC
    assert f"`{int(NakCode.UNKNOWN_TYPE)}` unknown type" in SPEC
    assert f"`{int(NakCode.BAD_BODY)}` bad body" in SPEC
