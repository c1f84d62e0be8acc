"""Canonical bytes: the one encoding every signature and hash is computed over.

UTF-8 JSON, object keys sorted by code point, no insignificant whitespace, integers only (no floats,
no exponents), no duplicate keys, strings free of control characters (so the only escapes are \\" and
\\\\). Optional fields at their default are omitted rather than written as null or [].

`decode` parses strictly and reports the first problem as a DecodeError, whatever the bytes: no
other exception comes out of it. What it returns holds only values `encode` can write again (no
lone surrogates, no integer longer than any v1 field allows), so callers compare
`encode(decode(raw)) == raw` where the encoding itself must be canonical.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from protocol.errors import DecodeError, Reason
from protocol.limits import MAX_INT_DIGITS

__all__ = ["decode", "encode", "printable", "show", "show_names"]

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
                raise DecodeError(f"duplicate key {show(key)}", reason=Reason.MALFORMED)
            seen.add(key)
    return result


def _no_float(text: str) -> NoReturn:
    raise DecodeError(f"number {text} is not an integer; v1 carries integers only", reason=Reason.MALFORMED)


def _no_constant(text: str) -> NoReturn:
    raise DecodeError(f"{text} is not valid JSON", reason=Reason.MALFORMED)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise DecodeError(_too_long(len(text.lstrip("-"))), reason=Reason.MALFORMED)
    return int(text)


def _too_long(digits: int) -> str:
    return f"an integer of {digits} digits; more than {MAX_INT_DIGITS} is malformed"


# Where the interpreter's own limit is lifted or raised (PYTHONINTMAXSTRDIGITS), each integer goes
# through a length check instead: it costs about 5 % of decoding a batch, so not by default.
_LIMITED = 0 < sys.get_int_max_str_digits() <= MAX_INT_DIGITS
_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_float=_no_float,
    parse_constant=_no_constant,
    parse_int=None if _LIMITED else _bounded_int,
)


def decode(raw: bytes) -> Any:
    """Parse UTF-8 JSON strictly; raise DecodeError(malformed) naming the problem, never anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8 at byte {exc.start}", reason=Reason.MALFORMED) from exc
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc.msg} at char {exc.pos}", reason=Reason.MALFORMED) from exc
    except RecursionError as exc:
        raise DecodeError("JSON nested too deeply", reason=Reason.MALFORMED) from exc
    except ValueError as exc:  # int() of a string over the interpreter's digit limit
        raise DecodeError(f"an integer of more than {MAX_INT_DIGITS} digits", reason=Reason.MALFORMED) from exc
    # UTF-8 bytes cannot hold a surrogate, but a \u escape can make one: a string no UTF-8 writer can
    # write back. Only escapes make them, and canonical messages hardly ever hold a backslash.
    if b"\\" in raw and b"\\u" in raw:
        try:
            _ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DecodeError("a string holds a lone surrogate (\\ud800-\\udfff)", reason=Reason.MALFORMED) from exc
        except RecursionError as exc:
            raise DecodeError("JSON nested too deeply", reason=Reason.MALFORMED) from exc
    return value


def show(value: object, most: int = 40) -> str:
    """A short, safe picture of a decoded value for an error's detail: containers by their type and
    size (a deeply nested one has no repr that fits a stack), scalars by a clipped repr."""
    if isinstance(value, dict | list):
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, str) and len(value) > most:
        value = value[:most] + "..."
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= most + 5 else text[: most + 2] + "..."


def show_names(names: list[str], most: int = 5) -> str:
    """The first few of a sorted list of field names, each clipped, for an error's detail."""
    shown = ", ".join(show(name, 24) for name in names[:most])
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"[{shown}{more}]"


def printable(text: str, most: int) -> str:
    """`text` cut to `most` characters, with anything not printable (controls, lone surrogates)
    as "?": fit for a canonical message and for a log line, whatever the text came from."""
    text = text[:most]
    return text if text.isprintable() else "".join(ch if ch.isprintable() else "?" for ch in text)
