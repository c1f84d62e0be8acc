"""The terminal's side of pairing: its pairing code, what it answers on the technician console, and
the pairing it stores (the hub's keys, the broker and its own broker account).

`Pairer` is pure: it is given each decoded console request and the time, and returns the response
and what changed (`Paired`, `Unpaired`, `Identify`, or None); it holds no thread and does no I/O but
through the `persist` function it is given, which stores a new pairing (or its end) before the
response says it is done. The terminal's loop runs it on its own thread, one request at a time.

Rules (protocol/CONSOLE.md):

- The terminal always has a pairing code: 6 digits from `secrets`, good for 10 minutes (on the
  terminal's monotonic clock) and for one `pair`. The screen shows it while the terminal is not
  paired; `info` gives it either way (a paired terminal is paired again only with it, too).
- `pair` first spends the code: a request naming the current code uses it up, whatever follows. A
  code that expired or was used is refused as such; after `MAX_WRONG_CODES` wrong codes the code is
  replaced, so that it cannot be guessed over the line.
- Then the technician's credential: an unpaired terminal checks it with the hub key the request
  brings (and pins that key); a paired one only with the key it pinned, and refuses a pair to
  another hub (`other_hub`: unpair first). `identify` and `unpair` need a credential good with the
  pinned key, so an unpaired terminal refuses them (`not_paired`).
- Credentials expire by the terminal's wall clock (`wall_ms`, UTC ms).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeAlias

from device.errors import DeviceError, StateError
from device.state import StateDocument
from protocol import AuthError, DecodeError, Reason, VerifyKey
from protocol import console as wire

__all__ = [
    "MAX_WRONG_CODES",
    "PAIRING_KEY",
    "Change",
    "Code",
    "CodeVerdict",
    "Identify",
    "Paired",
    "Pairer",
    "Pairing",
    "PairingCode",
    "Unpaired",
    "clear_pairing",
    "load_pairing",
    "save_pairing",
    "store_in",
]

PAIRING_KEY: Final = "pairing"  # its key in the terminal's state document
MAX_WRONG_CODES: Final = 5  # wrong codes in a row before the code is replaced
_PAST_CODES: Final = 8  # expired and used codes remembered, to say so rather than "wrong"


# -- the stored pairing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Pairing:
    """What a terminal holds once paired."""

    hub_sign: str  # the hub's Ed25519 public key (hex): every hub message is checked with it
    hub_seal: str  # the hub's X25519 public key (hex): customers' contacts are sealed to it
    broker: str  # mqtt://host:port or mqtts://host:port
    username: str  # the terminal's own broker account
    password: str
    tls_ca: str | None  # PEM text of the CA for mqtts; None: the system's
    site: str
    department: str
    counter: str
    paired_ms: int  # the terminal's wall clock when paired, UTC ms
    tech: str  # the technician who paired it

    def __repr__(self) -> str:  # never the password in a log line or a traceback
        return (
            f"Pairing(hub={self.hub_sign[:16]}, broker={self.broker!r}, username={self.username!r}, "
            f"department={self.department!r}, counter={self.counter!r}, tech={self.tech!r})"
        )


_TEXT_FIELDS: Final = (
    "hub_sign",
    "hub_seal",
    "broker",
    "username",
    "password",
    "site",
    "department",
    "counter",
    "tech",
)


def load_pairing(state: StateDocument) -> Pairing | None:
    """The stored pairing; None if the terminal is not paired. StateError if what is stored is not one."""
    stored = state.get(PAIRING_KEY)
    if stored is None:
        return None
    if not isinstance(stored, dict) or stored.keys() != {field.name for field in dataclasses.fields(Pairing)}:
        raise StateError(f"{state.path}: the stored pairing is damaged; unpair and pair the terminal again")
    if not all(isinstance(stored[name], str) for name in _TEXT_FIELDS) or not (
        stored["tls_ca"] is None or isinstance(stored["tls_ca"], str)
    ):
        raise StateError(f"{state.path}: the stored pairing holds a value of the wrong type")
    if type(stored["paired_ms"]) is not int:
        raise StateError(f"{state.path}: the stored pairing's paired_ms is not an integer")
    return Pairing(**stored)


def save_pairing(state: StateDocument, pairing: Pairing) -> None:
    """Store `pairing` (one atomic write); the state file is mode 0600 from then on, since it holds
    the broker password. StateError if it cannot be written."""
    _private(state)
    state.update(**{PAIRING_KEY: dataclasses.asdict(pairing)})
    _private(state)


def clear_pairing(state: StateDocument) -> None:
    """Forget the pairing (the hub's keys, the broker account); identity, outbox and the rest stay."""
    state.update(**{PAIRING_KEY: None})


def store_in(state: StateDocument) -> Callable[[Pairing | None], None]:
    """The `persist` function of a Pairer whose pairing lives in `state`."""

    def persist(pairing: Pairing | None) -> None:
        if pairing is None:
            clear_pairing(state)
        else:
            save_pairing(state, pairing)

    return persist


def _private(state: StateDocument) -> None:
    """Make the state file, and the temporary file it is written through, readable by the owner only.

    The document is written to `<name>.tmp` and renamed over the file; a temporary that exists is
    truncated and keeps its mode, so making it 0600 first keeps the password from being readable by
    others even for the moment between the write and a chmod.
    """
    temporary = state.path.with_name(state.path.name + ".tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(state.path, 0o600)
    except OSError as exc:
        raise StateError(f"cannot restrict {state.path} to its owner: {exc}") from exc


# -- the pairing code ------------------------------------------------------------------------------


def _new_digits() -> str:
    return f"{secrets.randbelow(10**wire.CODE_DIGITS):0{wire.CODE_DIGITS}d}"


@dataclass(frozen=True, slots=True)
class Code:
    digits: str
    made_ms: int  # the terminal's monotonic clock
    lifetime_ms: int = wire.CODE_LIFETIME_MS

    @property
    def expires_ms(self) -> int:
        return self.made_ms + self.lifetime_ms

    def left_ms(self, now_ms: int) -> int:
        return max(0, min(self.lifetime_ms, self.expires_ms - now_ms))


class CodeVerdict(StrEnum):
    TAKEN = "taken"  # the current code: it is used up now
    WRONG = "wrong"
    EXPIRED = "expired"
    USED = "used"


class PairingCode:
    """The terminal's one-time pairing code; times are the terminal's monotonic clock, in ms."""

    def __init__(
        self, now_ms: int, *, lifetime_ms: int = wire.CODE_LIFETIME_MS, draw: Callable[[], str] = _new_digits
    ) -> None:
        if lifetime_ms <= 0:
            raise ValueError(f"lifetime_ms must be positive, got {lifetime_ms}")
        self._lifetime_ms = lifetime_ms
        self._draw = draw
        self._past: OrderedDict[str, CodeVerdict] = OrderedDict()
        self._wrong = 0
        self._code = self._make(now_ms, avoid="")

    def current(self, now_ms: int) -> Code:
        """The code to show now: a new one when the last expired."""
        if now_ms >= self._code.expires_ms:
            self._retire(CodeVerdict.EXPIRED, now_ms)
        return self._code

    def renew(self, now_ms: int) -> Code:
        """Withdraw the current code (not remembered as used or expired) and make another."""
        self._code = self._make(now_ms, avoid=self._code.digits)
        return self._code

    def take(self, digits: str, now_ms: int) -> CodeVerdict:
        """Spend `digits` if they are the current, unexpired code (TAKEN: a new code is made).

        Otherwise say whether they were a code that expired or was used, or are wrong; every
        refusal counts toward MAX_WRONG_CODES, after which the current code is replaced.
        """
        current = self.current(now_ms)
        if secrets.compare_digest(digits.encode(), current.digits.encode()):
            self._retire(CodeVerdict.USED, now_ms)
            return CodeVerdict.TAKEN
        verdict = self._past.get(digits, CodeVerdict.WRONG)
        self._wrong += 1
        if self._wrong >= MAX_WRONG_CODES:
            self.renew(now_ms)
        return verdict

    def _retire(self, fate: CodeVerdict, now_ms: int) -> None:
        self._past[self._code.digits] = fate
        self._past.move_to_end(self._code.digits)
        while len(self._past) > _PAST_CODES:
            self._past.popitem(last=False)
        self._code = self._make(now_ms, avoid=self._code.digits)

    def _make(self, now_ms: int, *, avoid: str) -> Code:
        self._wrong = 0
        digits = self._draw()
        while digits == avoid:
            digits = self._draw()
        self._past.pop(digits, None)  # a code drawn again is the current one, not a past one
        return Code(digits, now_ms, self._lifetime_ms)


# -- what a request changes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Paired:
    """The terminal is paired now (stored already): connect to `pairing.broker` with its account;
    `staff`, if set, is the clerk to log in (the terminal this one replaces had them)."""

    pairing: Pairing
    staff: str | None = None


@dataclass(frozen=True, slots=True)
class Unpaired:
    """The pairing is gone (stored already): disconnect from the broker and show the pairing code."""


@dataclass(frozen=True, slots=True)
class Identify:
    """A technician asks which terminal this is: blink and beep."""


Change: TypeAlias = Paired | Unpaired | Identify


# -- the console's requests ------------------------------------------------------------------------

_CODE_REFUSALS: Final = {
    CodeVerdict.WRONG: (wire.ConsoleCode.BAD_CODE, "is not the code this terminal shows"),
    CodeVerdict.EXPIRED: (wire.ConsoleCode.EXPIRED_CODE, "has expired; the terminal shows a new code"),
    CodeVerdict.USED: (wire.ConsoleCode.USED_CODE, "was used already; the terminal shows a new code"),
}


class Pairer:
    """Answers the technician console for one terminal (see the module docstring for the rules).

    `persist` stores a new pairing, or None for none, before a pair or unpair is answered as done;
    if it raises (DeviceError or OSError) the request is refused as `storage` and nothing changes.
    """

    def __init__(
        self,
        *,
        device: str,
        pubkey: str,
        fw: str,
        pairing: Pairing | None,
        now_ms: int,
        persist: Callable[[Pairing | None], None] | None = None,
        codes: PairingCode | None = None,
    ) -> None:
        self.device = device
        self.pubkey = pubkey
        self.fw = fw
        self._pairing = pairing
        self._persist = persist or _nowhere
        self.codes = codes or PairingCode(now_ms)

    @property
    def pairing(self) -> Pairing | None:
        return self._pairing

    def adopt(self, pairing: Pairing, now_ms: int) -> Paired | None:
        """Take a pairing the terminal claimed over MQTT (device.claim): stored, and the current code
        spent. None if the terminal is paired already (a technician was quicker), or if the pairing
        cannot be stored (DeviceError or OSError from `persist`: nothing changes)."""
        if self._pairing is not None:
            return None
        try:
            self._persist(pairing)
        except (DeviceError, OSError):
            return None
        self._pairing = pairing
        self.codes.take(self.codes.current(now_ms).digits, now_ms)
        return Paired(pairing)

    def shown_code(self, now_ms: int) -> Code | None:
        """The code the screen shows: the current one while unpaired; None when paired."""
        return None if self._pairing is not None else self.codes.current(now_ms)

    def handle(self, request: wire.Request, *, now_ms: int, wall_ms: int) -> tuple[wire.Response, Change | None]:
        """The response to `request`, and what it changed. `now_ms`: the terminal's monotonic clock
        (codes); `wall_ms`: its wall clock, UTC ms (credentials, paired_ms). Never raises for a request."""
        match request:
            case wire.HelloRequest():
                return self._hello(request), None
            case wire.InfoRequest():
                return self._info(request, now_ms), None
            case wire.PairRequest():
                return self._pair(request, now_ms, wall_ms)
            case wire.IdentifyRequest() | wire.UnpairRequest():
                return self._pinned(request, now_ms, wall_ms)

    def _hello(self, request: wire.HelloRequest) -> wire.Response:
        version = wire.choose_version(request.versions)
        if version is None:
            return _refuse(
                request,
                wire.ConsoleCode.BAD_VERSION,
                f"no version offered ({list(request.versions)}) is spoken here: {list(wire.VERSIONS)}",
                versions=wire.VERSIONS,
            )
        return wire.HelloReply(id=request.id, v=version, device=self.device, fw=self.fw)

    def _info(self, request: wire.InfoRequest, now_ms: int) -> wire.Response:
        code = self.codes.current(now_ms)
        paired = self._pairing
        return wire.InfoReply(
            id=request.id,
            device=self.device,
            pubkey=self.pubkey,
            fw=self.fw,
            paired=paired is not None,
            code=code.digits,
            code_left_ms=code.left_ms(now_ms),
            hub=None if paired is None else paired.hub_sign[:16],
            site=None if paired is None else paired.site or None,
            department=None if paired is None else paired.department,
            counter=None if paired is None else paired.counter,
        )

    def _pair(self, request: wire.PairRequest, now_ms: int, wall_ms: int) -> tuple[wire.Response, Change | None]:
        verdict = self.codes.take(request.code, now_ms)
        if verdict is not CodeVerdict.TAKEN:
            code, words = _CODE_REFUSALS[verdict]
            return _refuse(request, code, f"code {request.code} {words}"), None
        pinned = self._pairing
        if pinned is not None and request.hub_sign != pinned.hub_sign:
            detail = f"paired with hub {pinned.hub_sign[:16]}, not {request.hub_sign[:16]}: unpair first"
            return _refuse(request, wire.ConsoleCode.OTHER_HUB, detail), None
        refusal = self._check_credential(request, request.hub_sign, wall_ms)
        if refusal is not None:
            return refusal, None
        pairing = Pairing(
            hub_sign=request.hub_sign,
            hub_seal=request.hub_seal,
            broker=request.broker,
            username=request.username,
            password=request.password,
            tls_ca=request.tls_ca,
            site=request.site or "",
            department=request.department,
            counter=request.counter,
            paired_ms=wall_ms,
            tech=request.credential.tech,
        )
        refusal = self._store(request, pairing)
        if refusal is not None:
            return refusal, None
        return wire.Done(id=request.id, op=request.op, device=self.device), Paired(pairing, request.staff)

    def _pinned(
        self, request: wire.IdentifyRequest | wire.UnpairRequest, now_ms: int, wall_ms: int
    ) -> tuple[wire.Response, Change | None]:
        if self._pairing is None:
            words = "this terminal is not paired: it has no hub key to check a credential with"
            return _refuse(request, wire.ConsoleCode.NOT_PAIRED, words), None
        refusal = self._check_credential(request, self._pairing.hub_sign, wall_ms)
        if refusal is not None:
            return refusal, None
        done = wire.Done(id=request.id, op=request.op, device=self.device)
        if isinstance(request, wire.IdentifyRequest):
            return done, Identify()
        refusal = self._store(request, None)
        if refusal is not None:
            return refusal, None
        self.codes.renew(now_ms)  # a full ten minutes for whoever pairs it next
        return done, Unpaired()

    def _check_credential(
        self, request: wire.PairRequest | wire.IdentifyRequest | wire.UnpairRequest, hub_sign: str, wall_ms: int
    ) -> wire.Refusal | None:
        try:
            wire.verify_credential(request.credential, VerifyKey.from_hex(hub_sign), wall_ms)
        except AuthError as exc:
            code = wire.ConsoleCode.STALE_CREDENTIAL if exc.reason is Reason.STALE else wire.ConsoleCode.BAD_CREDENTIAL
            return _refuse(request, code, exc.detail)
        except (DecodeError, ValueError) as exc:  # not a point on the curve: cryptography says ValueError
            return _refuse(request, wire.ConsoleCode.BAD_FIELD, f"hub_sign is not an Ed25519 key: {exc}")
        return None

    def _store(self, request: wire.PairRequest | wire.UnpairRequest, pairing: Pairing | None) -> wire.Refusal | None:
        try:
            self._persist(pairing)
        except (DeviceError, OSError) as exc:
            return _refuse(request, wire.ConsoleCode.STORAGE, f"cannot store the pairing: {exc}")
        self._pairing = pairing
        return None


def _refuse(request: wire.Request, code: wire.ConsoleCode, detail: str, **more: Any) -> wire.Refusal:
    return wire.Refusal(error=code, detail=detail, id=request.id, op=request.op, **more)


def _nowhere(_pairing: Pairing | None) -> None:
    return None
