"""Field rules of the protocol (v1 records and batches, v2 signed messages), each written once: the
shapes of ids, boots, hashes and signatures, the checks every decoder shares, and the `Field` tables
of the smaller messages.

Status, health, events and commands declare their fields as a table of `Field`s; `decode_fields`
validates a message against it, and protocol/spec.py renders the same table into the spec, so that
code and spec cannot disagree. Records and batch heads keep hand-written validators: records run
500 times a message on the hub's hot path, where a generic walk through a table would add a lookup
and a dispatch to every field. They call the same checks (`checked_int`, `checked_text`,
`check_keys`, `check_version`), test the same patterns inline and build their errors here
(`mismatch`), so that each rule still lives in one place.

A field that breaks its rule is a DecodeError(bad_field) whose detail names the field and says the
rule in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any, Final

from protocol import canonical, limits
from protocol.canonical import show, show_names
from protocol.errors import DecodeError, Reason

__all__ = [
    "BASE64",
    "BOOT",
    "DEVICE_ID",
    "HEX16",
    "HEX64",
    "HEX128",
    "SHAPES",
    "Field",
    "bad_field",
    "check",
    "check_keys",
    "check_version",
    "checked_int",
    "checked_text",
    "decode_fields",
    "envelope",
    "integer",
    "matching",
    "mismatch",
    "one_of",
    "open_message",
    "text",
    "valid_device_id",
]

# A device id (and a hub's client id) is one MQTT topic level: no '/', '+' or '#' can get into one.
DEVICE_ID: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{limits.MAX_ID_CHARS - 1}}}")
BOOT: Final = re.compile(rf"[A-Za-z0-9-]{{1,{limits.MAX_BOOT_CHARS}}}")
HEX16: Final = re.compile(r"[0-9a-f]{16}")  # a key's fingerprint (its first 16 hex digits)
HEX64: Final = re.compile(r"[0-9a-f]{64}")  # a SHA-256 chain hash
HEX128: Final = re.compile(r"[0-9a-f]{128}")  # an Ed25519 signature
BASE64: Final = re.compile(r"[A-Za-z0-9+/=_-]+")  # standard or URL-safe alphabet

# Each pattern in words, for error details and for the spec's tables.
SHAPES: Final[dict[re.Pattern[str], str]] = {
    DEVICE_ID: f"1..{limits.MAX_ID_CHARS} of [A-Za-z0-9_.-], starting alphanumeric",
    BOOT: f"1..{limits.MAX_BOOT_CHARS} of [A-Za-z0-9-]",
    HEX16: "16 lowercase hex digits",
    HEX64: "64 lowercase hex digits",
    HEX128: "128 lowercase hex digits",
    BASE64: "base64 text",
}

_device_id = DEVICE_ID.fullmatch


def valid_device_id(text: object) -> bool:
    return isinstance(text, str) and _device_id(text) is not None


# -- checks shared by every decoder ----------------------------------------------------------------
# `device` and `seq` name the record or message in the error, where they are known.


def bad_field(detail: str, device: str | None = None, seq: int | None = None) -> DecodeError:
    return DecodeError(detail, reason=Reason.BAD_FIELD, device=device, seq=seq)


def checked_int(
    value: object, low: int, high: int, name: str, *, device: str | None = None, seq: int | None = None
) -> int:
    """`value` if it is an integer in low..high (a bool is not one); DecodeError(bad_field) if not."""
    if type(value) is not int or not low <= value <= high:
        raise bad_field(f"{name} must be an integer in {low}..{high}, got {show(value)}", device, seq)
    return value


def checked_text(value: object, most: int, name: str, *, device: str | None = None, seq: int | None = None) -> str:
    """`value` if it is 1..`most` printable characters; DecodeError(bad_field) if not.

    Printable (no controls, no lone surrogates, no line breaks): such a text can go into a log line,
    a CSV export or a screen as it is.
    """
    if type(value) is not str or not 0 < len(value) <= most or not value.isprintable():
        raise bad_field(f"{name} must be 1..{most} printable characters, got {show(value)}", device, seq)
    return value


def mismatch(
    value: object, pattern: re.Pattern[str], name: str, *, device: str | None = None, seq: int | None = None
) -> DecodeError:
    """The error for a `value` that is not a text of `pattern`'s shape.

    The test itself (`type(value) is str and pattern.fullmatch(value)`) stays inline where it runs
    per record; `matching` fields do it through `Field.take`.
    """
    return bad_field(f"{name} must be {SHAPES[pattern]}, got {show(value)}", device, seq)


def check_keys(obj: Mapping[str, Any], required: Set[str], allowed: Set[str], what: str) -> None:
    """Raise DecodeError(bad_field) unless `required` <= the keys of `obj` <= `allowed`."""
    keys = obj.keys()
    if not keys >= required or not keys <= allowed:
        device = obj.get("device")
        unknown = show_names(sorted(keys - allowed))
        raise bad_field(
            f"{what} fields: missing {sorted(required - keys)}, unknown {unknown}",
            device if valid_device_id(device) else None,
        )


def check_version(value: object, what: str, version: int = limits.VERSION) -> None:
    """Raise DecodeError(unknown_version) unless `value` is `version` (records and batches: 1;
    signed control messages: 2)."""
    if type(value) is not int or value != version:
        raise DecodeError(f"{what} version {show(value)} is not {version}", reason=Reason.UNKNOWN_VERSION)


def open_message(raw: bytes, kind: str, version: int = limits.VERSION) -> dict[str, Any]:
    """The JSON object of a message of `type` `kind`, checked for size, strict JSON, version and type.

    DecodeError(oversize, malformed, unknown_version or wrong_type) otherwise. The size comes first,
    so that an oversize message is refused before it costs a parse.
    """
    if len(raw) > limits.MAX_MESSAGE_BYTES:
        raise DecodeError(f"{len(raw)} bytes is over the {limits.MAX_MESSAGE_BYTES}-byte limit", reason=Reason.OVERSIZE)
    obj = canonical.decode(raw)
    if type(obj) is not dict:
        raise DecodeError(f"a message must be a JSON object, got {type(obj).__name__}")
    check_version(obj.get("v"), "message", version)
    if obj.get("type") != kind:
        raise DecodeError(f"expected a {kind} message, got type {show(obj.get('type'))}", reason=Reason.WRONG_TYPE)
    return obj


# -- field tables ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message: its JSON type, whether it must be there, its rule, and what it means.

    Build them with `integer`, `text`, `one_of` and `matching`; `doc` is the spec's text for the field.
    """

    kind: type  # int or str
    required: bool = True
    low: int = 0  # integers: low..high
    high: int = 0
    most: int = 0  # printable text: 1..most characters
    choices: tuple[str, ...] = ()  # text: one of these, in the order the spec lists them
    pattern: re.Pattern[str] | None = None  # text: of this shape (one of SHAPES)
    doc: str = ""

    def take(self, value: object, name: str) -> object:
        """`value` if it keeps this field's rule; DecodeError(bad_field) naming `name` if not."""
        if self.kind is int:
            return checked_int(value, self.low, self.high, name)
        if self.choices:
            if type(value) is not str or value not in self.choices:
                raise bad_field(f"{name} must be one of {', '.join(sorted(self.choices))}, got {show(value)}")
            return value
        if self.pattern is not None:
            if type(value) is not str or self.pattern.fullmatch(value) is None:
                raise mismatch(value, self.pattern, name)
            return value
        return checked_text(value, self.most, name)


def integer(low: int, high: int, *, required: bool = True, doc: str = "") -> Field:
    return Field(int, required, low=low, high=high, doc=doc)


def text(most: int, *, required: bool = True, doc: str = "") -> Field:
    return Field(str, required, most=most, doc=doc)


def one_of(choices: Iterable[str], *, required: bool = True, doc: str = "") -> Field:
    return Field(str, required, choices=tuple(choices), doc=doc)


def matching(pattern: re.Pattern[str], *, required: bool = True, doc: str = "") -> Field:
    if pattern not in SHAPES:
        raise ValueError(f"pattern {pattern.pattern!r} has no words in SHAPES")
    return Field(str, required, pattern=pattern, doc=doc)


def envelope(kind: str, version: int = limits.VERSION) -> dict[str, Field]:
    """The two fields every message starts with, for a message of `type` `kind`."""
    return {
        "v": integer(version, version, doc="protocol version of this message type"),
        "type": one_of((kind,), doc="message type"),
    }


def check(obj: Mapping[str, Any], fields: Mapping[str, Field], what: str) -> None:
    """Raise DecodeError(bad_field) for a missing, unknown or invalid field of `what`."""
    required = {name for name, spec in fields.items() if spec.required}
    check_keys(obj, required, fields.keys(), what)
    for name, value in obj.items():
        fields[name].take(value, f"{what} {name}")


def decode_fields(raw: bytes, kind: str, fields: Mapping[str, Field], version: int = limits.VERSION) -> dict[str, Any]:
    """Decode a canonical message of `type` `kind` whose fields `fields` declares; without v and type.

    DecodeError for anything else: too big, not JSON, another version or type, a bad field, or
    bytes that are not the canonical encoding of what they hold.
    """
    obj = open_message(raw, kind, version)
    check(obj, fields, kind)
    if canonical.encode(obj) != raw:
        raise DecodeError(f"{kind} is not in canonical form", reason=Reason.NOT_CANONICAL, device=obj.get("device"))
    del obj["v"], obj["type"]
    return obj
