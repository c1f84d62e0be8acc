"""Canonical bytes: the one encoding every signature and hash is computed over.

UTF-8 JSON, object keys sorted by code point, no insignificant whitespace, integers only (no floats,
no exponents), no duplicate keys, strings free of control characters (so the only escapes are \\" and
\\\\). Optional fields at their default are omitted rather than written as null or [].

`decode` parses strictly and reports the first problem as a DecodeError; callers compare
`encode(decode(raw)) == raw` where the encoding itself must be canonical.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from protocol.errors import DecodeError, Reason

__all__ = ["decode", "encode"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def encode(value: Any) -> bytes:
    """Canonical bytes of a JSON value made of dicts, lists, str, int, bool and None."""
    return _ENCODER.encode(value).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DecodeError(f"duplicate key {key!r}", reason=Reason.MALFORMED)
            seen.add(key)
    return result


def _no_float(text: str) -> NoReturn:
    raise DecodeError(f"number {text} is not an integer; v1 carries integers only", reason=Reason.MALFORMED)


def _no_constant(text: str) -> NoReturn:
    raise DecodeError(f"{text} is not valid JSON", reason=Reason.MALFORMED)


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_float=_no_float, parse_constant=_no_constant)


def decode(raw: bytes) -> Any:
    """Parse UTF-8 JSON strictly; raise DecodeError(malformed) naming the problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8 at byte {exc.start}", reason=Reason.MALFORMED) from exc
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc.msg} at char {exc.pos}", reason=Reason.MALFORMED) from exc
    except RecursionError as exc:
        raise DecodeError("JSON nested too deeply", reason=Reason.MALFORMED) from exc
