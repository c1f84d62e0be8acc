"""Field checks shared by the smaller message types (health, events, commands).

Each message declares its fields once as a table of `Field`s; `check` validates a decoded object
against it and raises DecodeError naming the field. Records and batches keep their own hand-written
validators, which are on the hot path.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from protocol import canonical, limits
from protocol.canonical import show, show_names
from protocol.errors import DecodeError, Reason

__all__ = ["Field", "check", "decode_fields", "integer", "text"]


@dataclass(frozen=True, slots=True)
class Field:
    kind: type  # int, str or bool
    required: bool = True
    low: int | None = None
    high: int | None = None
    most: int | None = None  # characters, for text
    choices: Collection[str] | None = None
    pattern: re.Pattern[str] | None = None

    def valid(self, value: Any) -> bool:
        if type(value) is not self.kind:  # exact: a bool is not an int here
            return False
        if isinstance(value, int) and not isinstance(value, bool):
            return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)
        if isinstance(value, str):
            if self.choices is not None:
                return value in self.choices
            if self.pattern is not None:
                return self.pattern.fullmatch(value) is not None
            return 0 < len(value) <= (self.most or 1 << 20) and value.isprintable()
        return True


def integer(low: int, high: int, *, required: bool = True) -> Field:
    return Field(int, required, low=low, high=high)


def text(most: int, *, required: bool = True, choices: Collection[str] | None = None) -> Field:
    return Field(str, required, most=most, choices=choices)


def check(obj: Mapping[str, Any], fields: Mapping[str, Field], what: str) -> None:
    """Raise DecodeError(bad_field) for a missing, unknown or invalid field of `what`."""
    unknown = sorted(set(obj) - set(fields))
    missing = sorted(name for name, spec in fields.items() if spec.required and name not in obj)
    if unknown or missing:
        raise DecodeError(f"{what} fields: missing {missing}, unknown {show_names(unknown)}", reason=Reason.BAD_FIELD)
    for name, value in obj.items():
        spec = fields[name]
        if not spec.valid(value):
            if spec.choices is not None:
                allowed = "one of " + ", ".join(sorted(spec.choices))
            elif spec.kind is int:
                allowed = f"an integer in {spec.low}..{spec.high}"
            else:
                allowed = f"1..{spec.most} printable characters"
            raise DecodeError(f"{what} {name} must be {allowed}, got {show(value)}", reason=Reason.BAD_FIELD)


def decode_fields(raw: bytes, kind: str, fields: Mapping[str, Field]) -> dict[str, Any]:
    """Decode a canonical message of `type` `kind` whose fields `fields` declares; without v and type.

    DecodeError for anything else: too big, not JSON, another version or type, a bad field, or
    bytes that are not the canonical encoding of what they hold.
    """
    if len(raw) > limits.MAX_MESSAGE_BYTES:
        raise DecodeError(f"{len(raw)} bytes is over the limit", reason=Reason.OVERSIZE)
    obj = canonical.decode(raw)
    if type(obj) is not dict:
        raise DecodeError("a message must be a JSON object")
    if obj.get("v") != limits.VERSION or type(obj.get("v")) is not int:
        raise DecodeError(f"version {show(obj.get('v'))} is not 1", reason=Reason.UNKNOWN_VERSION)
    if obj.get("type") != kind:
        raise DecodeError(f"expected a {kind} message, got {show(obj.get('type'))}", reason=Reason.WRONG_TYPE)
    check(obj, fields, kind)
    if canonical.encode(obj) != raw:
        raise DecodeError(f"{kind} is not in canonical form", reason=Reason.NOT_CANONICAL)
    del obj["v"], obj["type"]
    return obj
