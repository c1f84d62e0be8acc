"""The technician console: a terminal's second serial port, and the technician's credential.

A technician's laptop talks to a terminal over a serial line (a USB gadget port on the terminal, a
pty in the simulator and the tests) to read what it is and to pair it with a hub. The format is
written down in protocol/CONSOLE.md:

    frame:  canonical JSON object | "*" | CRC-32 of the JSON as 8 lowercase hex digits | "\\n"

One frame per line: canonical JSON holds no raw line break (JSON escapes every control character
inside a string, and canonical JSON has no whitespace outside them), so a newline is always a frame
boundary, and a receiver is in step again at the next one after any damage. The CRC catches what
JSON would take as another valid value (a digit or a letter garbled inside a string).

The tool sends requests (an `id` and an `op`), the terminal answers each with one response naming
the same `id`: `ok` with the op's results, or a refusal with a `ConsoleCode` and words. `hello`
settles the console version; every other request names it in `v`. Nothing that changes the
terminal is taken without a `TechCredential`: a short signed message by which the hub says that a
technician may work on its terminals until `exp`.

Pure like the rest of `protocol/`: values in, bytes out. Decoders raise `ConsoleError` (a
protocol.errors.DecodeError, so a console error is a protocol error too) and nothing else, whatever
the bytes; `FrameSplitter` turns any byte stream into lines and never raises.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, TypeAlias

from protocol import canonical, limits, signed
from protocol.canonical import show, show_names
from protocol.errors import AuthError, DecodeError, ProtocolError, Reason
from protocol.fields import DEVICE_ID, HEX64, HEX128
from protocol.keys import SigningKey, VerifyKey
from protocol.signed import Purpose

__all__ = [
    "CODE_DIGITS",
    "CODE_LIFETIME_MS",
    "CRC_CHECK",
    "CREDENTIAL_FIELDS",
    "MAX_CA_CHARS",
    "MAX_FRAME_BYTES",
    "MAX_ID",
    "MEANING",
    "REPLY_PARAMS",
    "REQUEST_PARAMS",
    "VERSIONS",
    "ConsoleCode",
    "ConsoleError",
    "Done",
    "FrameSplitter",
    "HelloReply",
    "HelloRequest",
    "IdentifyRequest",
    "InfoReply",
    "InfoRequest",
    "Op",
    "PairRequest",
    "Param",
    "Refusal",
    "Request",
    "Response",
    "TechCredential",
    "UnpairRequest",
    "choose_version",
    "crc32",
    "decode_credential",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "issue_credential",
    "params_table",
    "refusal_for",
    "verify_credential",
]

VERSIONS: Final = (1,)  # console versions this code speaks, oldest first
MAX_FRAME_BYTES: Final = 16384  # one frame: JSON, "*", CRC and "\n"
MAX_ID: Final = 2**31 - 1
MAX_URL_CHARS: Final = 256
MAX_SECRET_CHARS: Final = 128
MAX_CA_CHARS: Final = 8192  # a CA certificate (PEM) as base64
MAX_VERSIONS: Final = 8
CODE_DIGITS: Final = 6
CODE_LIFETIME_MS: Final = 10 * 60 * 1000
CRC_CHECK: Final = 0xCBF43926  # crc32(b"123456789"): CRC-32 (ISO-HDLC, as zlib and Ethernet)
_CRC_HEX: Final = re.compile(rb"[0-9a-f]{8}")
_CODE: Final = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
_HEX16: Final = re.compile(r"[0-9a-f]{16}")
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]+={0,2}")
CREDENTIAL_TYPE: Final = "tech"


def crc32(data: bytes) -> int:
    """CRC-32 (ISO-HDLC): poly 0x04C11DB7 reflected, init and final xor 0xFFFFFFFF; zlib's, in C."""
    return binascii.crc32(data)


# -- codes and the error -----------------------------------------------------------------------------


class Op(StrEnum):
    HELLO = "hello"
    INFO = "info"
    PAIR = "pair"
    IDENTIFY = "identify"
    UNPAIR = "unpair"


_OPS: Final = frozenset(op.value for op in Op)


class ConsoleCode(StrEnum):
    """Why a request was refused: the `error` of a refusal."""

    BAD_CRC = "bad_crc"
    OVERSIZE = "oversize"
    MALFORMED = "malformed"
    BAD_VERSION = "bad_version"
    UNKNOWN_OP = "unknown_op"
    BAD_FIELD = "bad_field"
    NOT_PAIRED = "not_paired"
    OTHER_HUB = "other_hub"
    BAD_CODE = "bad_code"
    EXPIRED_CODE = "expired_code"
    USED_CODE = "used_code"
    BAD_CREDENTIAL = "bad_credential"
    STALE_CREDENTIAL = "stale_credential"
    STORAGE = "storage"


MEANING: Final[dict[ConsoleCode, str]] = {
    ConsoleCode.BAD_CRC: "the CRC-32 after `*` does not match the JSON before it: damaged on the line",
    ConsoleCode.OVERSIZE: f"more than {MAX_FRAME_BYTES} bytes before the newline",
    ConsoleCode.MALFORMED: "not `<JSON>*<8 hex>`, not UTF-8 JSON, not an object, or not canonical",
    ConsoleCode.BAD_VERSION: (
        "`v` (or every version `hello` offers) is not one the terminal speaks; `versions` lists those"
    ),
    ConsoleCode.UNKNOWN_OP: "an `op` this console version does not have",
    ConsoleCode.BAD_FIELD: "a field missing, unknown, of the wrong type or breaking its rule",
    ConsoleCode.NOT_PAIRED: "the terminal is not paired: it holds no hub key to check the credential with",
    ConsoleCode.OTHER_HUB: "the terminal is paired with another hub: unpair it there first",
    ConsoleCode.BAD_CODE: "not the pairing code the terminal shows",
    ConsoleCode.EXPIRED_CODE: "the code expired (10 minutes); the terminal shows a new one",
    ConsoleCode.USED_CODE: "the code was used already (codes are single-use); the terminal shows a new one",
    ConsoleCode.BAD_CREDENTIAL: "the technician credential is not signed by the hub key it must be signed by",
    ConsoleCode.STALE_CREDENTIAL: "the technician credential expired (`exp`, by the terminal's clock)",
    ConsoleCode.STORAGE: "the terminal could not store the change; nothing changed",
}

# The nearest protocol reason, for code that handles every ProtocolError alike.
_REASON: Final[dict[ConsoleCode, Reason]] = {
    ConsoleCode.OVERSIZE: Reason.OVERSIZE,
    ConsoleCode.BAD_VERSION: Reason.UNKNOWN_VERSION,
    ConsoleCode.UNKNOWN_OP: Reason.WRONG_TYPE,
    ConsoleCode.BAD_FIELD: Reason.BAD_FIELD,
}


class ConsoleError(DecodeError):
    """A console frame, request, response or credential that cannot be taken.

    `code` is the console's reason (ConsoleCode); `id` and `op` the request's, where they could be
    read before the problem (a refusal names them); `versions` is set with BAD_VERSION.
    """

    def __init__(
        self,
        detail: str,
        *,
        code: ConsoleCode,
        id: int | None = None,
        op: Op | None = None,
        versions: tuple[int, ...] = (),
    ) -> None:
        super().__init__(detail, reason=_REASON.get(code, Reason.MALFORMED))
        self.code = code
        self.id = id
        self.op = op
        self.versions = versions

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.detail, self.code, self.id, self.op, self.versions))

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}"


def _rebuild(detail: str, code: ConsoleCode, id: int | None, op: Op | None, versions: tuple[int, ...]) -> ConsoleError:
    return ConsoleError(detail, code=code, id=id, op=op, versions=versions)


# -- field rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """One field of a console message: its type and rule in words (for the spec), and its check."""

    type: str
    rule: str
    take: Callable[[object, str], Any]  # the value, or ConsoleError(bad_field) naming the field
    required: bool = True
    doc: str = ""


def _bad(detail: str) -> ConsoleError:
    return ConsoleError(detail, code=ConsoleCode.BAD_FIELD)


def _int(low: int, high: int, *, required: bool = True, doc: str = "") -> Param:
    def take(value: object, name: str) -> int:
        if type(value) is not int or not low <= value <= high:
            raise _bad(f"{name} must be an integer in {low}..{high}, got {show(value)}")
        return value

    return Param("int", f"{low}..{high}", take, required, doc)


def _text(most: int, *, required: bool = True, doc: str = "") -> Param:
    def take(value: object, name: str) -> str:
        if type(value) is not str or not 0 < len(value) <= most or not value.isprintable():
            raise _bad(f"{name} must be 1..{most} printable characters, got {show(value)}")
        return value

    return Param("string", f"1..{most} printable characters", take, required, doc)


def _shaped(pattern: re.Pattern[str], words: str, *, required: bool = True, doc: str = "") -> Param:
    def take(value: object, name: str) -> str:
        if type(value) is not str or pattern.fullmatch(value) is None:
            raise _bad(f"{name} must be {words}, got {show(value)}")
        return value

    return Param("string", words, take, required, doc)


def _bool(*, doc: str = "") -> Param:
    def take(value: object, name: str) -> bool:
        if type(value) is not bool:
            raise _bad(f"{name} must be true or false, got {show(value)}")
        return value

    return Param("bool", "`true` or `false`", take, True, doc)


def _versions(*, required: bool = True, doc: str = "") -> Param:
    def take(value: object, name: str) -> tuple[int, ...]:
        if type(value) is not list or not 0 < len(value) <= MAX_VERSIONS or len(set(map(repr, value))) != len(value):
            raise _bad(f"{name} must be 1..{MAX_VERSIONS} distinct versions, got {show(value)}")
        return tuple(_int(1, 65535).take(item, f"{name} item") for item in value)

    return Param("int array", f"1..{MAX_VERSIONS} distinct integers in 1..65535", take, required, doc)


def _credential(*, doc: str = "") -> Param:
    def take(value: object, name: str) -> TechCredential:
        if type(value) is not dict:
            raise _bad(f"{name} must be a technician credential object, got {show(value)}")
        return _credential_from(value)

    return Param("object", "a technician credential (below)", take, True, doc)


def _pem64(*, doc: str = "") -> Param:
    def take(value: object, name: str) -> str:
        if type(value) is not str or not 0 < len(value) <= MAX_CA_CHARS or _BASE64.fullmatch(value) is None:
            raise _bad(f"{name} must be 1..{MAX_CA_CHARS} characters of base64, got {show(value)}")
        try:
            pem = base64.b64decode(value, validate=True).decode("ascii")
        except (binascii.Error, ValueError) as exc:
            raise _bad(f"{name} is not base64 of ASCII text") from exc
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise _bad(f"{name} holds no PEM certificate")
        return pem

    return Param("string", f"base64 of PEM certificates, at most {MAX_CA_CHARS} characters", take, False, doc)


_DEVICE: Final = _shaped(DEVICE_ID, "1..64 of `[A-Za-z0-9_.-]`, starting alphanumeric", doc="the terminal's device id")
_FW: Final = _text(limits.MAX_FW_CHARS, doc="the terminal's firmware version")
_HEX64_RULE: Final = "64 lowercase hex digits"
_CREDENTIAL: Final = _credential(doc="the technician's credential, signed by the hub")
_PLACE = limits.MAX_ID_CHARS

CREDENTIAL_FIELDS: Final[dict[str, Param]] = {
    "v": _int(limits.CONTROL_VERSION, limits.CONTROL_VERSION, doc="protocol version (signed messages: 2)"),
    "type": _shaped(re.compile(CREDENTIAL_TYPE), f"`{CREDENTIAL_TYPE}`", doc="message type"),
    "tech": _text(limits.MAX_ID_CHARS, doc="the technician's name, as the hub knows them"),
    "hub_sign": _shaped(HEX64, _HEX64_RULE, doc="the hub's Ed25519 public key: the key that signed this"),
    "exp": _int(0, limits.MAX_MS, doc="good until this time, UTC ms (the terminal's clock)"),
    "sig": _shaped(HEX128, "128 lowercase hex digits", doc="Ed25519 signature (purpose `tech`)"),
}

REQUEST_PARAMS: Final[dict[Op, dict[str, Param]]] = {
    Op.HELLO: {
        "versions": _versions(doc="console versions the tool speaks"),
    },
    Op.INFO: {},
    Op.PAIR: {
        "code": _shaped(_CODE, f"{CODE_DIGITS} digits", doc="the pairing code the terminal shows"),
        "credential": _CREDENTIAL,
        "hub_sign": _shaped(HEX64, _HEX64_RULE, doc="the hub's Ed25519 public key, to pin"),
        "hub_seal": _shaped(HEX64, _HEX64_RULE, doc="the hub's X25519 public key, to pin (sealed contacts)"),
        "broker": _text(MAX_URL_CHARS, doc="the broker: `mqtt://host:port` or `mqtts://host:port`"),
        "username": _text(limits.MAX_ID_CHARS, doc="the terminal's own broker account"),
        "password": _text(MAX_SECRET_CHARS, doc="its password"),
        "tls_ca": _pem64(doc="the CA that signed the broker's certificate, for `mqtts`"),
        "site": _text(_PLACE, required=False, doc="the site (hall) the terminal stands in"),
        "department": _text(_PLACE, doc="its department"),
        "counter": _text(_PLACE, doc="its counter (window)"),
        "staff": _text(limits.MAX_ID_CHARS, required=False, doc="the clerk to log in (a replaced terminal's)"),
    },
    Op.IDENTIFY: {"credential": _CREDENTIAL},
    Op.UNPAIR: {"credential": _CREDENTIAL},
}

REPLY_PARAMS: Final[dict[Op, dict[str, Param]]] = {
    Op.HELLO: {
        "v": _int(1, 65535, doc="the version the terminal chose: the highest both speak"),
        "device": _DEVICE,
        "fw": _FW,
    },
    Op.INFO: {
        "device": _DEVICE,
        "pubkey": _shaped(HEX64, _HEX64_RULE, doc="the terminal's Ed25519 public key"),
        "fw": _FW,
        "paired": _bool(doc="whether the terminal holds a hub's keys"),
        "hub": _shaped(_HEX16, "16 lowercase hex digits", required=False, doc="paired: the pinned hub key's start"),
        "site": _text(_PLACE, required=False, doc="paired: the site"),
        "department": _text(_PLACE, required=False, doc="paired: the department"),
        "counter": _text(_PLACE, required=False, doc="paired: the counter"),
        "code": _shaped(_CODE, f"{CODE_DIGITS} digits", doc="the pairing code now (the screen shows it unpaired)"),
        "code_left_ms": _int(0, CODE_LIFETIME_MS, doc="ms until the code expires (the terminal's monotonic clock)"),
    },
    Op.PAIR: {"device": _DEVICE},
    Op.IDENTIFY: {"device": _DEVICE},
    Op.UNPAIR: {"device": _DEVICE},
}

REFUSAL_PARAMS: Final[dict[str, Param]] = {
    "error": _shaped(
        re.compile("|".join(code.value for code in ConsoleCode)), "a code from the table below", doc="why"
    ),
    "detail": _text(limits.MAX_DETAIL_CHARS, doc="what was wrong, in words"),
    "versions": _versions(required=False, doc="with `bad_version`: the versions the terminal speaks"),
}


def params_table(params: Mapping[str, Param]) -> str:
    """A field table as CONSOLE.md shows it, one row per field in declaration order."""
    lines = ["| field | type | required | rule | meaning |", "|---|---|---|---|---|"]
    for name, param in params.items():
        cells = (f"`{name}`", param.type, "yes" if param.required else "no", param.rule, param.doc)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def _check(obj: Mapping[str, Any], params: Mapping[str, Param], what: str, skip: Iterable[str]) -> dict[str, Any]:
    """The checked values of `obj`'s fields (those in `skip` left out); ConsoleError(bad_field)."""
    own = {name: value for name, value in obj.items() if name not in skip}
    required = {name for name, param in params.items() if param.required}
    if not own.keys() >= required or not own.keys() <= params.keys():
        missing = sorted(required - own.keys())
        unknown = sorted(own.keys() - params.keys())
        raise _bad(f"{what} fields: missing {missing}, unknown {show_names(unknown)}")
    return {name: params[name].take(value, f"{what} {name}") for name, value in own.items()}


# -- the technician credential ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TechCredential:
    """The hub's word that technician `tech` may pair, identify and unpair its terminals until `exp`."""

    tech: str
    hub_sign: str  # 64 hex: the hub key that signed it
    exp: int  # UTC ms
    sig: str = field(default="", repr=False)  # a credential is a bearer token: keep it out of logs

    def fields(self) -> dict[str, Any]:
        return {"tech": self.tech, "hub_sign": self.hub_sign, "exp": self.exp, "sig": self.sig}

    def wire(self) -> dict[str, Any]:
        """The credential as the JSON object it is on the wire (and inside console requests)."""
        return {**self.fields(), "v": limits.CONTROL_VERSION, "type": CREDENTIAL_TYPE}


def issue_credential(hub_signing_key: SigningKey, tech: str, exp_ms: int) -> bytes:
    """A credential for technician `tech` until `exp_ms` (UTC ms), signed by the hub: canonical JSON.

    ValueError for a name that is not 1..64 printable characters or a time out of range.
    """
    try:
        CREDENTIAL_FIELDS["tech"].take(tech, "tech")
        CREDENTIAL_FIELDS["exp"].take(exp_ms, "exp")
    except ConsoleError as exc:
        raise ValueError(exc.detail) from None
    fields = TechCredential(tech=tech, hub_sign=hub_signing_key.public.hex, exp=exp_ms).fields()
    return signed.sign(hub_signing_key, Purpose.TECH, CREDENTIAL_TYPE, fields)


def _credential_from(obj: Mapping[str, Any]) -> TechCredential:
    values = _check(obj, CREDENTIAL_FIELDS, "credential", ())
    return TechCredential(tech=values["tech"], hub_sign=values["hub_sign"], exp=values["exp"], sig=values["sig"])


def decode_credential(raw: bytes) -> TechCredential:
    """The credential in `raw` (canonical JSON; a trailing newline, as a file has, is allowed).

    ConsoleError (malformed, bad_field) for anything else; its signature is not checked here.
    """
    body = raw[:-1] if raw.endswith(b"\n") else raw
    if len(body) > MAX_FRAME_BYTES:
        raise ConsoleError(f"a credential of {len(body)} bytes is over {MAX_FRAME_BYTES}", code=ConsoleCode.OVERSIZE)
    obj = _json_object(body, "a credential")
    credential = _credential_from(obj)
    if canonical.encode(obj) != body:
        raise ConsoleError("the credential is not in canonical form", code=ConsoleCode.MALFORMED)
    return credential


def verify_credential(cred: TechCredential, hub_verify_key: VerifyKey, now_ms: int) -> None:
    """AuthError(bad_signature) unless the hub key `hub_verify_key` signed `cred` (and `cred` names
    it); AuthError(stale) if `now_ms` (UTC ms) is past its `exp`."""
    if cred.hub_sign != hub_verify_key.hex:
        raise AuthError(
            f"credential of {cred.tech} is from hub {cred.hub_sign[:16]}, not {hub_verify_key.hex[:16]}",
            reason=Reason.BAD_SIGNATURE,
        )
    signed.verify(hub_verify_key, Purpose.TECH, CREDENTIAL_TYPE, cred.fields(), who="the hub key")
    if now_ms > cred.exp:
        raise AuthError(f"credential of {cred.tech} expired at {cred.exp} (now {now_ms})", reason=Reason.STALE)


# -- requests and responses ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloRequest:
    id: int
    versions: tuple[int, ...] = VERSIONS
    op = Op.HELLO


@dataclass(frozen=True, slots=True, kw_only=True)
class InfoRequest:
    id: int
    v: int = VERSIONS[-1]
    op = Op.INFO


@dataclass(frozen=True, slots=True, kw_only=True)
class PairRequest:
    id: int
    code: str
    credential: TechCredential
    hub_sign: str
    hub_seal: str
    broker: str
    username: str
    password: str
    department: str
    counter: str
    site: str | None = None
    tls_ca: str | None = None  # PEM text (base64 on the wire)
    staff: str | None = None
    v: int = VERSIONS[-1]
    op = Op.PAIR

    def __repr__(self) -> str:  # never show the password in a log line or a traceback
        return f"PairRequest(id={self.id}, code={self.code!r}, tech={self.credential.tech!r}, broker={self.broker!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentifyRequest:
    id: int
    credential: TechCredential
    v: int = VERSIONS[-1]
    op = Op.IDENTIFY


@dataclass(frozen=True, slots=True, kw_only=True)
class UnpairRequest:
    id: int
    credential: TechCredential
    v: int = VERSIONS[-1]
    op = Op.UNPAIR


Request: TypeAlias = HelloRequest | InfoRequest | PairRequest | IdentifyRequest | UnpairRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloReply:
    id: int
    v: int
    device: str
    fw: str
    op = Op.HELLO


@dataclass(frozen=True, slots=True, kw_only=True)
class InfoReply:
    id: int
    device: str
    pubkey: str
    fw: str
    paired: bool
    code: str
    code_left_ms: int
    hub: str | None = None  # paired: the pinned hub key's first 16 hex digits
    site: str | None = None
    department: str | None = None
    counter: str | None = None
    op = Op.INFO


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """`op` (pair, identify or unpair) was carried out on terminal `device`."""

    id: int
    op: Op
    device: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """The request was refused; `id` and `op` are absent when the frame could not be read that far."""

    error: ConsoleCode
    detail: str
    id: int | None = None
    op: Op | None = None
    versions: tuple[int, ...] = ()


Response: TypeAlias = HelloReply | InfoReply | Done | Refusal


def choose_version(offered: Iterable[int], speaks: Iterable[int] = VERSIONS) -> int | None:
    """The highest version in both; None if there is none."""
    common = set(offered) & set(speaks)
    return max(common) if common else None


def refusal_for(error: ConsoleError) -> Refusal:
    """The response to a request that could not be decoded."""
    return Refusal(
        error=error.code,
        detail=canonical.printable(error.detail, limits.MAX_DETAIL_CHARS),
        id=error.id,
        op=error.op,
        versions=error.versions,
    )


# -- frames --------------------------------------------------------------------------------------


def _frame(obj: Mapping[str, Any]) -> bytes:
    body = canonical.encode({name: value for name, value in obj.items() if value is not None})
    frame = body + b"*" + f"{crc32(body):08x}".encode() + b"\n"
    if len(frame) > MAX_FRAME_BYTES:
        raise ValueError(f"a console frame of {len(frame)} bytes is over {MAX_FRAME_BYTES}")
    return frame


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        obj = canonical.decode(body)
    except ProtocolError as exc:
        raise ConsoleError(f"{what} is not JSON: {exc.detail}", code=ConsoleCode.MALFORMED) from None
    if type(obj) is not dict:
        raise ConsoleError(f"{what} must be a JSON object, got {type(obj).__name__}", code=ConsoleCode.MALFORMED)
    return obj


def _open_frame(line: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON object of a frame (with or without its newline), and its bytes."""
    if len(line) > MAX_FRAME_BYTES:
        raise ConsoleError(
            f"{len(line)} bytes is over the {MAX_FRAME_BYTES}-byte frame limit", code=ConsoleCode.OVERSIZE
        )
    if line.endswith(b"\n"):
        line = line[:-1]
    body, star, crc = line.rpartition(b"*")
    if not star or _CRC_HEX.fullmatch(crc) is None:
        raise ConsoleError("a frame is <JSON>*<CRC-32 as 8 lowercase hex digits>", code=ConsoleCode.MALFORMED)
    if crc32(body) != int(crc, 16):
        raise ConsoleError(f"CRC-32 {crc.decode()} does not match {crc32(body):08x}", code=ConsoleCode.BAD_CRC)
    return _json_object(body, "the frame"), body


def _op_of(name: object) -> Op | None:
    return Op(name) if type(name) is str and name in _OPS else None


def _known_id(obj: Mapping[str, Any]) -> int | None:
    value = obj.get("id")
    return value if type(value) is int and 1 <= value <= MAX_ID else None


def _canonical(obj: Mapping[str, Any], body: bytes, **where: Any) -> None:
    if canonical.encode(obj) != body:
        raise ConsoleError("the frame's JSON is not in canonical form", code=ConsoleCode.MALFORMED, **where)


def encode_request(request: Request) -> bytes:
    """The request's frame, newline included. ValueError if it would be over MAX_FRAME_BYTES."""
    obj: dict[str, Any] = {"id": request.id, "op": request.op.value}
    match request:
        case HelloRequest():
            obj["versions"] = list(request.versions)
        case PairRequest():
            obj |= {
                "v": request.v,
                "code": request.code,
                "credential": request.credential.wire(),
                "hub_sign": request.hub_sign,
                "hub_seal": request.hub_seal,
                "broker": request.broker,
                "username": request.username,
                "password": request.password,
                "department": request.department,
                "counter": request.counter,
                "site": request.site or None,
                "tls_ca": None if request.tls_ca is None else base64.b64encode(request.tls_ca.encode()).decode(),
                "staff": request.staff,
            }
        case IdentifyRequest() | UnpairRequest():
            obj |= {"v": request.v, "credential": request.credential.wire()}
        case InfoRequest():
            obj["v"] = request.v
    return _frame(obj)


def decode_request(line: bytes) -> Request:
    """The request in one frame (with or without its newline); ConsoleError for anything else.

    The error names the request's `id` and `op` when they could be read, so that the refusal can.
    """
    obj, body = _open_frame(line)
    ident = _known_id(obj)
    if ident is None:
        raise _bad(f"a request's id must be an integer in 1..{MAX_ID}, got {show(obj.get('id'))}")
    name = obj.get("op")
    op = _op_of(name)
    if op is None:
        raise ConsoleError(f"op {show(name)} is not one of {', '.join(Op)}", code=ConsoleCode.UNKNOWN_OP, id=ident)
    if op is not Op.HELLO:
        version = obj.get("v")
        if type(version) is not int or version not in VERSIONS:
            raise ConsoleError(
                f"console version {show(version)} is not spoken here; this terminal speaks {list(VERSIONS)}",
                code=ConsoleCode.BAD_VERSION,
                id=ident,
                op=op,
                versions=VERSIONS,
            )
    try:
        skip = ("id", "op") if op is Op.HELLO else ("id", "op", "v")
        values = _check(obj, REQUEST_PARAMS[op], op.value, skip)
    except ConsoleError as exc:
        raise ConsoleError(exc.detail, code=exc.code, id=ident, op=op) from None
    _canonical(obj, body, id=ident, op=op)
    match op:
        case Op.HELLO:
            return HelloRequest(id=ident, versions=values["versions"])
        case Op.INFO:
            return InfoRequest(id=ident, v=obj["v"])
        case Op.PAIR:
            return PairRequest(id=ident, v=obj["v"], **values)
        case Op.IDENTIFY:
            return IdentifyRequest(id=ident, v=obj["v"], credential=values["credential"])
        case Op.UNPAIR:
            return UnpairRequest(id=ident, v=obj["v"], credential=values["credential"])


def encode_response(response: Response) -> bytes:
    """The response's frame, newline included."""
    obj: dict[str, Any]
    match response:
        case Refusal():
            obj = {
                "ok": False,
                "id": response.id,
                "op": None if response.op is None else response.op.value,
                "error": response.error.value,
                "detail": canonical.printable(response.detail, limits.MAX_DETAIL_CHARS),
                "versions": list(response.versions) or None,
            }
        case HelloReply():
            obj = {"ok": True, "id": response.id, "op": "hello", "v": response.v, "device": response.device}
            obj["fw"] = response.fw
        case InfoReply():
            obj = {
                "ok": True,
                "id": response.id,
                "op": "info",
                "device": response.device,
                "pubkey": response.pubkey,
                "fw": response.fw,
                "paired": response.paired,
                "hub": response.hub,
                "site": response.site or None,
                "department": response.department,
                "counter": response.counter,
                "code": response.code,
                "code_left_ms": response.code_left_ms,
            }
        case Done():
            obj = {"ok": True, "id": response.id, "op": response.op.value, "device": response.device}
    return _frame(obj)


def decode_response(line: bytes) -> Response:
    """The response in one frame (with or without its newline); ConsoleError for anything else."""
    obj, body = _open_frame(line)
    ok = obj.get("ok")
    if type(ok) is not bool:
        raise _bad(f"a response's ok must be true or false, got {show(ok)}")
    name = obj.get("op")
    op = _op_of(name)
    if ok:
        ident = _known_id(obj)
        if ident is None:
            raise _bad(f"a response's id must be an integer in 1..{MAX_ID}, got {show(obj.get('id'))}")
        if op is None:
            raise ConsoleError(f"op {show(name)} is not one of {', '.join(Op)}", code=ConsoleCode.UNKNOWN_OP)
        values = _check(obj, REPLY_PARAMS[op], f"{op.value} response", ("id", "op", "ok"))
        _canonical(obj, body)
        if op is Op.HELLO:
            return HelloReply(id=ident, **values)
        if op is Op.INFO:
            return _info_reply(ident, values)
        return Done(id=ident, op=op, device=values["device"])
    if "id" in obj and _known_id(obj) is None:
        raise _bad(f"a refusal's id must be absent or an integer in 1..{MAX_ID}, got {show(obj['id'])}")
    if "op" in obj and op is None:
        raise ConsoleError(f"op {show(name)} is not one of {', '.join(Op)}", code=ConsoleCode.UNKNOWN_OP)
    values = _check(obj, REFUSAL_PARAMS, "refusal", ("id", "op", "ok"))
    _canonical(obj, body)
    return Refusal(
        error=ConsoleCode(values["error"]),
        detail=values["detail"],
        id=obj.get("id"),
        op=op,
        versions=values.get("versions", ()),
    )


def _info_reply(ident: int, values: Mapping[str, Any]) -> InfoReply:
    placed = [name for name in ("hub", "department", "counter") if name in values]
    if values["paired"] != bool(placed) or (placed and len(placed) != 3) or (not values["paired"] and "site" in values):
        raise _bad("an info response names hub, department and counter when (and only when) paired")
    return InfoReply(id=ident, **values)


# -- a byte stream into lines --------------------------------------------------------------------


class FrameSplitter:
    """Lines out of a byte stream, as they complete: each frame's bytes (without the newline), or a
    ConsoleError(oversize) in place of a line that grew past MAX_FRAME_BYTES (its bytes are not
    kept). Empty lines are skipped: a sender may send a lone newline to end a partial line the
    other side holds. Never raises on input."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._oversize = 0  # bytes of the current line dropped so far (0: not oversize)

    def feed(self, data: bytes) -> list[bytes | ConsoleError]:
        lines: list[bytes | ConsoleError] = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            if end < 0:
                self._take(data[start:])
                break
            self._take(data[start:end])
            if self._oversize:
                lines.append(
                    ConsoleError(
                        f"{self._oversize} bytes before the newline, over {MAX_FRAME_BYTES}",
                        code=ConsoleCode.OVERSIZE,
                    )
                )
            elif self._pending:
                lines.append(bytes(self._pending))
            self._pending.clear()
            self._oversize = 0
            start = end + 1
        return lines

    def reset(self) -> None:
        """Forget a partial line (the port was closed and opened again)."""
        self._pending.clear()
        self._oversize = 0

    def _take(self, chunk: bytes) -> None:
        if self._oversize:
            self._oversize += len(chunk)
            return
        self._pending += chunk
        if len(self._pending) + 1 > MAX_FRAME_BYTES:  # the newline counts toward the limit
            self._oversize = len(self._pending)
            self._pending.clear()
