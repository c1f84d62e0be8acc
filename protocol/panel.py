"""The key panel's wire format: frames between the terminal (host) and its key panel, as bytes.

The panel is a small microcontroller on USB serial (115200 8N1) with the five keys, their LEDs, a
buzzer and an optional staff-card reader. Serial lines lose and garble bytes, and reads return
whatever has arrived, so every frame is COBS-encoded and ends with a 0x00 delimiter (a receiver
finds the next frame boundary after any damage) and carries a CRC-16 (a damaged frame is dropped,
never taken for another one). The format is written down in protocol/PANEL.md.

    unencoded frame:  type (1) | seq (1) | body (0..59) | crc16 (2, big-endian, over type..body)
    on the wire:      COBS(unencoded frame) | 0x00        (at most 64 bytes before the 0x00)

Pure like the rest of `protocol/`: values in, bytes out, and `FrameDecoder` turns any byte stream
into frames plus a count of what it dropped and why. It never raises on input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import ClassVar, Final, Self, TypeAlias

from protocol.framing import CRC_CHECK, cobs_decode, cobs_encode, crc16

__all__ = [
    "CRC_CHECK",
    "DELIMITER",
    "FRAME_TYPES",
    "INVITE_KEY",
    "KEYS",
    "MAX_BEEP_STEPS",
    "MAX_BODY_BYTES",
    "MAX_ENCODED_BYTES",
    "MAX_TEXT_BYTES",
    "MAX_UID_BYTES",
    "Beep",
    "Card",
    "DropReason",
    "Dropped",
    "Frame",
    "FrameAck",
    "FrameDecoder",
    "FrameNak",
    "Hello",
    "Identify",
    "KeyDown",
    "KeyUp",
    "LedState",
    "NakCode",
    "Ping",
    "Pong",
    "SetLeds",
    "cobs_decode",
    "cobs_encode",
    "crc16",
    "encode_frame",
]

DELIMITER: Final = b"\x00"
MAX_ENCODED_BYTES: Final = 64  # one COBS-encoded frame, without its delimiter
_MAX_RAW_BYTES: Final = MAX_ENCODED_BYTES - 1  # COBS adds one byte to anything shorter than 255
_HEADER_BYTES: Final = 2  # type, seq
_CRC_BYTES: Final = 2
MAX_BODY_BYTES: Final = _MAX_RAW_BYTES - _HEADER_BYTES - _CRC_BYTES  # 59
KEYS: Final = 5  # key 1 = 非常不满意 ... key 5 = 非常满意 (each with an LED)
INVITE_KEY: Final = 6  # the clerk's own 请评价 key, on the clerk's side of the panel (no LED)
MAX_TEXT_BYTES: Final = 24  # Hello.fw and Hello.serial, UTF-8
MAX_UID_BYTES: Final = 16  # Card.uid (ISO 14443 UIDs are 4, 7 or 10 bytes)
MAX_BEEP_STEPS: Final = 8  # (on_ms, off_ms) pairs in one Beep
_U16: Final = 0xFFFF
_U32: Final = 0xFFFF_FFFF
# -- values ----------------------------------------------------------------------------------------


class LedState(IntEnum):
    OFF = 0
    ON = 1
    BLINK = 2


class NakCode(IntEnum):
    """Why a panel refused a host frame whose CRC was good (FrameNak.code; other values are reserved)."""

    UNKNOWN_TYPE = 1  # not a host -> panel type this firmware knows
    BAD_BODY = 2  # the body does not have the layout or the values of its type


def _check_int(owner: str, name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int and not isinstance(value, IntEnum):
        raise ValueError(f"{owner}.{name} must be an int in {low}..{high}, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{owner}.{name} must be in {low}..{high}, got {value}")


def _check_text(owner: str, name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{owner}.{name} must be a str, got {type(value).__name__}")
    raw = value.encode("utf-8", "surrogatepass")
    if not 1 <= len(raw) <= MAX_TEXT_BYTES or not value.isprintable():
        raise ValueError(f"{owner}.{name} must be 1..{MAX_TEXT_BYTES} bytes of printable UTF-8, got {value!r:.60}")
    return raw


def _text_from(body: bytes, at: int, owner: str, name: str) -> tuple[str, int]:
    if at >= len(body):
        raise ValueError(f"{owner}.{name}: body ends before its length byte")
    size = body[at]
    end = at + 1 + size
    if end > len(body):
        raise ValueError(f"{owner}.{name}: length {size} runs past the body")
    try:
        return body[at + 1 : end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise ValueError(f"{owner}.{name} is not UTF-8") from exc


def _exact(data: bytes, size: int, what: str) -> bytes:
    if len(data) != size:
        raise ValueError(f"{what}: expected {size} bytes, got {len(data)}")
    return data


# -- frames ----------------------------------------------------------------------------------------
# Every frame is a frozen value with a `seq` (0..255, wraps; each side numbers its own frames) and
# a pair `encode_body()` / `decode_body(seq, body)`. Values are checked when a frame is made, so a
# frame that exists can be encoded, and a decoded body that breaks a rule is a ValueError.


@dataclass(frozen=True, slots=True, kw_only=True)
class _Frame:
    TYPE: ClassVar[int]
    seq: int = 0

    def __post_init__(self) -> None:
        _check_int(type(self).__name__, "seq", self.seq, 0, 0xFF)
        self._validate()

    def _validate(self) -> None:
        """Check the fields of the concrete frame (ValueError naming the field); may normalize them."""


# panel -> host


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(_Frame):
    """Sent by the panel when it boots, and in answer to Identify."""

    TYPE: ClassVar[int] = 0x81
    fw: str
    serial: str

    def _validate(self) -> None:
        _check_text("Hello", "fw", self.fw)
        _check_text("Hello", "serial", self.serial)

    def encode_body(self) -> bytes:
        fw, serial = self.fw.encode(), self.serial.encode()
        return bytes([len(fw)]) + fw + bytes([len(serial)]) + serial

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        fw, at = _text_from(body, 0, "Hello", "fw")
        serial, at = _text_from(body, at, "Hello", "serial")
        if at != len(body):
            raise ValueError(f"Hello body has {len(body) - at} bytes after serial")
        return cls(seq=seq, fw=fw, serial=serial)


@dataclass(frozen=True, slots=True, kw_only=True)
class _KeyEvent(_Frame):
    key: int  # 1..5 the customer's keys, 6 the clerk's invite key
    panel_ms: int  # the panel's own clock: ms since it booted, wrapping at 2**32

    def _validate(self) -> None:
        _check_int(type(self).__name__, "key", self.key, 1, INVITE_KEY)
        _check_int(type(self).__name__, "panel_ms", self.panel_ms, 0, _U32)

    def encode_body(self) -> bytes:
        return struct.pack(">BI", self.key, self.panel_ms)

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        key, panel_ms = struct.unpack(">BI", _exact(body, 5, f"{cls.__name__} body"))
        return cls(seq=seq, key=key, panel_ms=panel_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyDown(_KeyEvent):
    TYPE: ClassVar[int] = 0x85


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyUp(_KeyEvent):
    TYPE: ClassVar[int] = 0x86


@dataclass(frozen=True, slots=True, kw_only=True)
class Card(_Frame):
    """A staff card held to the reader: its UID, 1..16 bytes."""

    TYPE: ClassVar[int] = 0x87
    uid: bytes

    def _validate(self) -> None:
        if not isinstance(self.uid, bytes) or not 1 <= len(self.uid) <= MAX_UID_BYTES:
            raise ValueError(f"Card.uid must be 1..{MAX_UID_BYTES} bytes, got {self.uid!r:.60}")

    def encode_body(self) -> bytes:
        return bytes([len(self.uid)]) + self.uid

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        if not body:
            raise ValueError("Card body is empty; it starts with the length of the uid")
        return cls(seq=seq, uid=_exact(body[1:], body[0], "Card.uid after its length byte"))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Token(_Frame):
    token: int  # u32, echoed from Ping to Pong

    def _validate(self) -> None:
        _check_int(type(self).__name__, "token", self.token, 0, _U32)

    def encode_body(self) -> bytes:
        return struct.pack(">I", self.token)

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        (token,) = struct.unpack(">I", _exact(body, 4, f"{cls.__name__} body"))
        return cls(seq=seq, token=token)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong(_Token):
    """The panel's answer to Ping, with the Ping's token."""

    TYPE: ClassVar[int] = 0x82


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameAck(_Frame):
    """The panel carried out the host command whose seq is `ref`."""

    TYPE: ClassVar[int] = 0x83
    ref: int

    def _validate(self) -> None:
        _check_int("FrameAck", "ref", self.ref, 0, 0xFF)

    def encode_body(self) -> bytes:
        return bytes([self.ref])

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        return cls(seq=seq, ref=_exact(body, 1, "FrameAck body")[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameNak(_Frame):
    """The panel refused the host frame whose seq is `ref`; `code` says why (see NakCode)."""

    TYPE: ClassVar[int] = 0x84
    ref: int
    code: int

    def _validate(self) -> None:
        _check_int("FrameNak", "ref", self.ref, 0, 0xFF)
        _check_int("FrameNak", "code", self.code, 0, 0xFF)

    def encode_body(self) -> bytes:
        return bytes([self.ref, self.code])

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        ref, code = _exact(body, 2, "FrameNak body")
        return cls(seq=seq, ref=ref, code=code)


# host -> panel


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(_Token):
    """Are you there? The panel answers Pong with the same token."""

    TYPE: ClassVar[int] = 0x01


@dataclass(frozen=True, slots=True, kw_only=True)
class Identify(_Frame):
    """Say Hello: how a host that opens the port learns which panel has been running all along."""

    TYPE: ClassVar[int] = 0x02

    def encode_body(self) -> bytes:
        return b""

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        _exact(body, 0, "Identify body")
        return cls(seq=seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLeds(_Frame):
    """The state of all five key LEDs at once (key 1 first); acked."""

    TYPE: ClassVar[int] = 0x03
    states: tuple[LedState, ...]

    def _validate(self) -> None:
        if type(self.states) is tuple and len(self.states) == KEYS and all(type(s) is LedState for s in self.states):
            return  # five LedStates already: the common case, kept cheap (LEDs change several times a rating)
        states = tuple(self.states) if isinstance(self.states, Iterable) else ()
        if len(states) != KEYS:
            raise ValueError(f"SetLeds.states must be {KEYS} LED states, got {self.states!r:.60}")
        for index, state in enumerate(states, start=1):
            _check_int("SetLeds", f"states[{index}]", state, 0, max(LedState))
        object.__setattr__(self, "states", tuple(LedState(state) for state in states))

    def encode_body(self) -> bytes:
        return bytes(self.states)

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        states = []
        for index, value in enumerate(_exact(body, KEYS, "SetLeds body"), start=1):
            if value > max(LedState):
                raise ValueError(f"SetLeds.states[{index}] must be in 0..{max(LedState)}, got {value}")
            states.append(LedState(value))
        return cls(seq=seq, states=tuple(states))


@dataclass(frozen=True, slots=True, kw_only=True)
class Beep(_Frame):
    """Sound the buzzer: up to 8 steps of (on_ms, off_ms), each 0..65535; no steps: stop. Acked."""

    TYPE: ClassVar[int] = 0x04
    pattern: tuple[tuple[int, int], ...] = ()

    def _validate(self) -> None:
        steps = tuple(self.pattern) if isinstance(self.pattern, Iterable) else None
        if steps is None or len(steps) > MAX_BEEP_STEPS:
            raise ValueError(
                f"Beep.pattern must be 0..{MAX_BEEP_STEPS} (on_ms, off_ms) pairs, got {self.pattern!r:.60}"
            )
        normal = []
        for index, step in enumerate(steps):
            pair = tuple(step) if isinstance(step, Iterable) else ()
            if len(pair) != 2:
                raise ValueError(f"Beep.pattern[{index}] must be an (on_ms, off_ms) pair, got {step!r:.60}")
            _check_int("Beep", f"pattern[{index}].on_ms", pair[0], 0, _U16)
            _check_int("Beep", f"pattern[{index}].off_ms", pair[1], 0, _U16)
            normal.append((int(pair[0]), int(pair[1])))
        object.__setattr__(self, "pattern", tuple(normal))

    def encode_body(self) -> bytes:
        return bytes([len(self.pattern)]) + b"".join(struct.pack(">HH", on, off) for on, off in self.pattern)

    @classmethod
    def decode_body(cls, seq: int, body: bytes) -> Self:
        if not body:
            raise ValueError("Beep body is empty; it starts with the number of steps")
        count = body[0]
        _exact(body[1:], 4 * count, f"Beep steps after a count of {count}")
        steps = tuple(struct.unpack_from(">HH", body, 1 + 4 * index) for index in range(count))
        return cls(seq=seq, pattern=steps)


Frame: TypeAlias = Hello | KeyDown | KeyUp | Card | Pong | FrameAck | FrameNak | Ping | Identify | SetLeds | Beep

FRAME_TYPES: Final[dict[int, type[Frame]]] = {
    kind.TYPE: kind for kind in (Ping, Identify, SetLeds, Beep, Hello, Pong, FrameAck, FrameNak, KeyDown, KeyUp, Card)
}


def encode_frame(frame: Frame, seq: int | None = None) -> bytes:
    """The frame on the wire: COBS(type | seq | body | crc16) followed by the 0x00 delimiter.

    `seq` (0..255), if given, is sent instead of `frame.seq`: a sender that numbers its frames as it
    writes them can keep one frame per command and give it the next number here.
    """
    number = frame.seq if seq is None else seq
    if type(number) is not int or not 0 <= number <= 0xFF:
        raise ValueError(f"seq must be an int in 0..255, got {number!r}")
    raw = bytes((frame.TYPE, number)) + frame.encode_body()
    raw += crc16(raw).to_bytes(_CRC_BYTES, "big")
    encoded = cobs_encode(raw)
    if len(encoded) > MAX_ENCODED_BYTES:  # the field limits above keep every frame inside it
        raise ValueError(f"{type(frame).__name__} encodes to {len(encoded)} bytes, over {MAX_ENCODED_BYTES}")
    return encoded + DELIMITER


# -- decoding a stream -----------------------------------------------------------------------------


class DropReason(StrEnum):
    """Why FrameDecoder dropped the bytes before a delimiter (its `counts` keys)."""

    EMPTY = "empty"  # 0x00 right after 0x00 (a sender may send one to end a receiver's partial frame)
    OVERSIZE = "oversize"  # more than 64 bytes before the delimiter
    COBS = "cobs"  # not a COBS encoding
    TRUNCATED = "truncated"  # shorter than type + seq + crc
    CRC = "crc"  # the CRC does not match: damaged on the way
    UNKNOWN_TYPE = "unknown_type"  # good CRC, but no frame type has this code
    BAD_BODY = "bad_body"  # good CRC and type, but the body breaks its layout or a value rule


@dataclass(frozen=True, slots=True)
class Dropped:
    """One dropped frame, for a receiver that answers it (a panel Naks unknown_type and bad_body).

    `frame_type` and `seq` are known once the CRC held (unknown_type, bad_body), otherwise None.
    """

    reason: DropReason
    detail: str
    frame_type: int | None = None
    seq: int | None = None


class FrameDecoder:
    """Bytes in, whole frames out, from a stream split anywhere.

    Every 0x00 ends one piece of the stream, and every piece gets one verdict: a frame, or one count
    in `counts` under a DropReason. So the stream resyncs on the next 0x00 after any damage, and
    frames returned + drops counted = delimiters seen. `feed` never raises on any input;
    `on_drop`, if given, hears about each drop as it happens.
    """

    def __init__(self, *, on_drop: Callable[[Dropped], None] | None = None) -> None:
        self.counts: dict[str, int] = {reason.value: 0 for reason in DropReason}
        self._on_drop = on_drop
        self._pending = bytearray()
        self._oversize = False

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        start = 0
        while start <= len(data):
            end = data.find(0, start)
            if end < 0:
                self._take(data[start:])
                break
            self._take(data[start:end])
            piece, oversize = bytes(self._pending), self._oversize
            self._pending.clear()
            self._oversize = False
            result = _verdict(piece, oversize)
            if isinstance(result, Dropped):
                self.counts[result.reason.value] += 1
                if self._on_drop is not None:
                    self._on_drop(result)
            else:
                frames.append(result)
            start = end + 1
        return frames

    def reset(self) -> None:
        """Forget a partial frame without a verdict (the port was closed and opened again)."""
        self._pending.clear()
        self._oversize = False

    def _take(self, chunk: bytes) -> None:
        if self._oversize:
            return
        self._pending += chunk
        if len(self._pending) > MAX_ENCODED_BYTES:
            self._pending.clear()  # nothing of it will be used: do not hold line noise in memory
            self._oversize = True


def _verdict(piece: bytes, oversize: bool) -> Frame | Dropped:  # noqa: PLR0911 - one return per reason
    if oversize:
        return Dropped(DropReason.OVERSIZE, f"more than {MAX_ENCODED_BYTES} bytes before the delimiter")
    if not piece:
        return Dropped(DropReason.EMPTY, "no bytes before the delimiter")
    try:
        raw = cobs_decode(piece)
    except ValueError as exc:
        return Dropped(DropReason.COBS, str(exc))
    if len(raw) < _HEADER_BYTES + _CRC_BYTES:
        return Dropped(DropReason.TRUNCATED, f"{len(raw)} bytes, fewer than type, seq and crc")
    if crc16(raw[:-_CRC_BYTES]) != int.from_bytes(raw[-_CRC_BYTES:], "big"):
        return Dropped(DropReason.CRC, "crc16 does not match")
    frame_type, seq, body = raw[0], raw[1], raw[_HEADER_BYTES:-_CRC_BYTES]
    kind = FRAME_TYPES.get(frame_type)
    if kind is None:
        return Dropped(DropReason.UNKNOWN_TYPE, f"type 0x{frame_type:02x}", frame_type, seq)
    try:
        return kind.decode_body(seq, body)
    except (ValueError, struct.error) as exc:
        return Dropped(DropReason.BAD_BODY, str(exc), frame_type, seq)
