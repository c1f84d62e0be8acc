"""`pingjia tech ...`: the technician's tool, on a laptop plugged into a terminal's console port.

    pingjia tech info     --port P                      what the terminal is: device, key, paired?, code
    pingjia tech pair     --port P --credential F ...   pair it with this hub, at a department and counter
    pingjia tech identify --port P --credential F       blink and beep it (which one am I plugged into?)
    pingjia tech unpair   --port P --credential F ...   revoke it at the hub and clear its pairing
    pingjia tech replace  --old DEV --port P ...        put the terminal on P where DEV stood, revoke DEV

The console is protocol/console.py (spec: protocol/CONSOLE.md). Commands that change the hub check
first — the credential was issued by this hub and its technician is registered and not revoked, the
terminal can be registered — then have the terminal take the pairing (it checks the pairing code it
shows and the credential), and only then write at the hub: a code the terminal refuses changes
nothing anywhere. Output is one JSON object on stdout (never a password); an error is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from protocol import console as wire

__all__ = ["ConsoleClient", "TechError", "register"]

_REPLY_TIMEOUT_S = 5.0
R = TypeVar("R", bound=wire.Response)

# What a technician should do about each refusal, after the terminal's own words.
_ADVICE: dict[wire.ConsoleCode, str] = {
    wire.ConsoleCode.EXPIRED_CODE: "run the command again with the code the terminal shows now",
    wire.ConsoleCode.USED_CODE: "run the command again with the code the terminal shows now",
    wire.ConsoleCode.BAD_CODE: "check the code on the terminal's screen",
    wire.ConsoleCode.OTHER_HUB: "unpair it at the hub it is paired with first",
    wire.ConsoleCode.NOT_PAIRED: "pair it first (pingjia tech pair)",
    wire.ConsoleCode.STALE_CREDENTIAL: "ask the hub for a new credential (pingjia hub tech-credential)",
    wire.ConsoleCode.BAD_CREDENTIAL: "use a credential of the hub this terminal is paired with",
}


class TechError(Exception):
    """Anything that stops a `pingjia tech` command, in one line for the technician."""


# -- the console, from the laptop's side -----------------------------------------------------------


class ConsoleClient:
    """The tool's end of a terminal's console: one request at a time, each answered or timed out."""

    def __init__(self, port: str, *, timeout_s: float = _REPLY_TIMEOUT_S) -> None:
        import serial

        try:
            self._serial = serial.Serial(port, 115200, timeout=0, write_timeout=timeout_s)
        except (OSError, ValueError) as exc:
            raise TechError(f"cannot open the console port {port}: {exc}") from None
        self.port = port
        self._timeout_s = timeout_s
        self._splitter = wire.FrameSplitter()
        # Start the numbering anywhere: a late answer to an earlier run of the tool is not taken for ours.
        self._next_id = 1 + secrets.randbelow(wire.MAX_ID // 2)
        self._send(b"\n")  # ends a partial line the terminal may hold

    def close(self) -> None:
        self._serial.close()

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def call(self, make: Callable[[int], wire.Request]) -> wire.Response:
        """Send `make(id)` and return the terminal's response to it (a refusal included)."""
        request = make(self._next_id)
        self._next_id = self._next_id % wire.MAX_ID + 1
        try:
            frame = wire.encode_request(request)
        except ValueError as exc:  # over the frame limit: a CA certificate far too big
            raise TechError(f"cannot send {request.op.value}: {exc}") from None
        self._send(frame)
        deadline = time.monotonic() + self._timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TechError(
                    f"the terminal on {self.port} did not answer {request.op.value} within {self._timeout_s:g} s"
                )
            for line in self._splitter.feed(self._read(left)):
                if isinstance(line, wire.ConsoleError):
                    continue
                try:
                    response = wire.decode_response(line)
                except wire.ConsoleError:
                    continue  # damaged on the way, or not an answer at all: wait for ours
                if response.id == request.id:
                    return response

    def expect(self, make: Callable[[int], wire.Request], kind: type[R]) -> R:
        """`call(make)`, with a refusal (or another kind of response) as a TechError."""
        response = self.call(make)
        if isinstance(response, wire.Refusal):
            advice = _ADVICE.get(response.error)
            more = f"; {advice}" if advice else ""
            raise TechError(f"the terminal refused: {response.detail} ({response.error.value}){more}")
        if not isinstance(response, kind):
            raise TechError(f"the terminal answered {type(response).__name__}, not {kind.__name__}")
        return response

    def hello(self) -> wire.HelloReply:
        return self.expect(lambda ident: wire.HelloRequest(id=ident, versions=wire.VERSIONS), wire.HelloReply)

    def info(self) -> wire.InfoReply:
        return self.expect(lambda ident: wire.InfoRequest(id=ident), wire.InfoReply)

    def _send(self, data: bytes) -> None:
        try:
            self._serial.write(data)
            self._serial.flush()
        except OSError as exc:
            raise TechError(f"cannot write to the console port {self.port}: {exc}") from None

    def _read(self, wait_s: float) -> bytes:
        fd = self._serial.fileno()
        try:
            if not select.select([fd], [], [], wait_s)[0]:
                return b""
            return os.read(fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise TechError(f"cannot read the console port {self.port}: {exc}") from None


# -- the commands ----------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("tech", help="technician's tool: pair, identify, unpair, replace terminals")
    sub = parser.add_subparsers(dest="tech_command", required=True)

    info = sub.add_parser("info", help="what the terminal on the console port is, as JSON")
    _add_port(info)
    info.set_defaults(func=_run("info", _info))

    identify = sub.add_parser("identify", help="make the terminal blink and beep")
    _add_port(identify)
    _add_credential(identify)
    identify.set_defaults(func=_run("identify", _identify))

    pair = sub.add_parser("pair", help="pair the terminal with this hub at a department and counter")
    _add_port(pair)
    _add_hub(pair)
    _add_broker(pair)
    pair.add_argument("--site", default="", help="the hall the terminal stands in")
    pair.add_argument("--department", required=True)
    pair.add_argument("--counter", required=True, help="window / counter where the terminal stands")
    pair.set_defaults(func=_run("pair", _pair))

    unpair = sub.add_parser("unpair", help="revoke the terminal at the hub and clear its pairing")
    where = unpair.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="the terminal's console port: revoke it and clear it")
    where.add_argument("--device", help="a terminal that cannot be reached: revoke it at the hub only")
    unpair.add_argument("--timeout", type=float, default=_REPLY_TIMEOUT_S, help="seconds to wait for an answer")
    _add_hub(unpair)
    unpair.set_defaults(func=_run("unpair", _unpair))

    replace = sub.add_parser("replace", help="put the terminal on --port where --old stood; revoke --old")
    replace.add_argument("--old", required=True, help="the device id of the terminal being replaced")
    _add_port(replace)
    _add_hub(replace)
    _add_broker(replace)
    replace.add_argument("--site", default="", help="the hall the terminal stands in")
    replace.set_defaults(func=_run("replace", _replace))


def _add_port(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="the terminal's console port (e.g. /dev/ttyACM0)")
    parser.add_argument("--timeout", type=float, default=_REPLY_TIMEOUT_S, help="seconds to wait for an answer")


def _add_credential(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--credential", type=Path, required=True, help="your credential file (pingjia hub tech-credential)"
    )


def _add_hub(parser: argparse.ArgumentParser) -> None:
    from hub.cli import FALLBACK_DB
    from hub.identity import default_path

    _add_credential(parser)
    parser.add_argument(
        "--db",
        default=os.environ.get("PINGJIA_DB", FALLBACK_DB),
        help=f"the hub database (default $PINGJIA_DB, else {FALLBACK_DB})",
    )
    parser.add_argument(
        "--hub-key",
        type=Path,
        default=default_path(),
        help="the hub's public keys (the JSON `pingjia hub init` prints) or its key file "
        "(default $PINGJIA_HUB_KEY, else var/hub.key)",
    )
    parser.add_argument(
        "--broker-site",
        type=Path,
        help="the broker site `pingjia hub broker-config` wrote: its accounts are rewritten and the broker "
        "reloaded at once, so the terminal's own account works (or stops working) now",
    )


def _add_broker(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, help="the broker terminals connect to: mqtt(s)://host:port")
    parser.add_argument("--tls-ca", type=Path, help="the CA certificate (PEM) of the broker, for mqtts")
    parser.add_argument("--code", help="the pairing code the terminal shows (asked for if not given)")


def _run(command: str, body: Callable[[argparse.Namespace], dict[str, Any]]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from hub.errors import HubError

        try:
            document = body(args)
        except (TechError, HubError) as exc:
            sys.stderr.write(f"pingjia tech {command}: {exc}\n")
            return 2
        site = getattr(args, "broker_site", None)
        if site is not None:
            from hub.brokerconf import refresh_accounts

            try:
                document["broker_reloaded"] = refresh_accounts(args.db, site, _now_ms())
            except (ValueError, OSError, HubError) as exc:
                sys.stderr.write(
                    f"pingjia tech {command}: done at the hub, but the broker site was not updated: {exc}\n"
                )
                return 2
        sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
        return 0

    return run


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read_credential(path: Path) -> tuple[bytes, wire.TechCredential]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TechError(f"cannot read the credential {path}: {exc.strerror}") from None
    try:
        return raw, wire.decode_credential(raw)
    except wire.ConsoleError as exc:
        raise TechError(f"{path} is not a technician credential: {exc.detail}") from None


def _hub_public(path: Path) -> tuple[str, str]:
    """The hub's public keys (sign, seal) from its `pingjia hub init` JSON or from its key file."""
    from hub import identity

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise TechError(f"cannot read the hub key {path}: {exc.strerror}") from None
    try:
        described = json.loads(text)
    except ValueError:
        keys = identity.load(path)  # HubKeyError says what is wrong with it
        return keys.sign_hex, keys.seal_hex
    sign, seal = (described.get("sign"), described.get("seal")) if isinstance(described, dict) else (None, None)
    if not all(isinstance(key, str) and len(key) == 64 for key in (sign, seal)):
        raise TechError(f"{path} does not name the hub's keys (JSON with `sign` and `seal`, 64 hex digits each)")
    return str(sign), str(seal)


def _checked_credential(args: argparse.Namespace) -> tuple[wire.TechCredential, str, str]:
    """The credential (issued by this hub, unexpired, its technician active) and the hub's keys."""
    from hub.pairing import accept_credential
    from hub.queries import Reader
    from protocol import DecodeError, VerifyKey

    raw, _ = _read_credential(args.credential)
    sign, seal = _hub_public(args.hub_key)
    try:
        verify_key = VerifyKey.from_hex(sign)
    except (DecodeError, ValueError) as exc:
        raise TechError(f"{args.hub_key}: the hub's sign key is not an Ed25519 key: {exc}") from None
    with Reader.open(args.db) as reader:
        credential = accept_credential(reader.db, raw, verify_key, _now_ms())
    return credential, sign, seal


def _code(args: argparse.Namespace, info: wire.InfoReply) -> str:
    if args.code:
        return str(args.code).strip()
    if not sys.stdin.isatty():
        raise TechError("give the code the terminal shows with --code (no terminal to ask on)")
    sys.stderr.write(f"terminal {info.device}: the pairing code on its screen: ")
    sys.stderr.flush()
    return sys.stdin.readline().strip()


def _tls_ca(args: argparse.Namespace) -> str | None:
    if args.tls_ca is None:
        return None
    try:
        return str(args.tls_ca.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TechError(f"cannot read the CA certificate {args.tls_ca}: {exc}") from None


def _info(args: argparse.Namespace) -> dict[str, Any]:
    with ConsoleClient(args.port, timeout_s=args.timeout) as console:
        hello = console.hello()
        info = console.info()
    shown = {name: getattr(info, name) for name in ("device", "pubkey", "fw", "paired", "hub", "site")}
    shown |= {"department": info.department, "counter": info.counter, "code": info.code}
    return {**shown, "code_left_s": info.code_left_ms // 1000, "console_version": hello.v}


def _identify(args: argparse.Namespace) -> dict[str, Any]:
    _, credential = _read_credential(args.credential)
    with ConsoleClient(args.port, timeout_s=args.timeout) as console:
        console.hello()
        done = console.expect(lambda ident: wire.IdentifyRequest(id=ident, credential=credential), wire.Done)
    return {"device": done.device, "identified": True}


def _pair_terminal(
    console: ConsoleClient,
    args: argparse.Namespace,
    info: wire.InfoReply,
    credential: wire.TechCredential,
    keys: tuple[str, str],
    *,
    department: str,
    counter: str,
    staff: str | None,
) -> str:
    """Have the terminal take the pairing; the password it was given (for the hub to register)."""
    from hub.brokerconf import new_password

    code = _code(args, info)
    password = new_password()
    console.expect(
        lambda ident: wire.PairRequest(
            id=ident,
            code=code,
            credential=credential,
            hub_sign=keys[0],
            hub_seal=keys[1],
            broker=args.broker,
            username=info.device,
            password=password,
            tls_ca=_tls_ca(args),
            site=args.site or None,
            department=department,
            counter=counter,
            staff=staff,
        ),
        wire.Done,
    )
    return password


def _registered(command: str, device: str, write: Callable[[], Any], *, done: str = "took the pairing") -> Any:
    """`write()` at the hub after the terminal changed: a failure says what the terminal did."""
    from hub.errors import HubError

    try:
        return write()
    except HubError as exc:
        raise TechError(
            f"terminal {device} {done} but the hub did not take it: {exc}; run `pingjia tech {command}` again"
        ) from None


def _pair(args: argparse.Namespace) -> dict[str, Any]:
    from hub.pairing import check_pairable, register_paired
    from hub.queries import Reader
    from hub.writer import Writer

    credential, sign, seal = _checked_credential(args)
    with ConsoleClient(args.port, timeout_s=args.timeout) as console:
        console.hello()
        info = console.info()
        with Reader.open(args.db) as reader:
            check_pairable(reader.db, info.device, info.pubkey)
        password = _pair_terminal(
            console, args, info, credential, (sign, seal), department=args.department, counter=args.counter, staff=None
        )

    def write() -> None:
        with Writer.open(args.db) as writer:
            writer.write(
                register_paired,
                device=info.device,
                pubkey=info.pubkey,
                site=args.site,
                department=args.department,
                counter=args.counter,
                tech=credential.tech,
                now_ms=_now_ms(),
                password=password,
            )

    _registered("pair", info.device, write)
    return {
        "device": info.device,
        "pubkey": info.pubkey,
        "hub": sign[:16],
        "site": args.site,
        "department": args.department,
        "counter": args.counter,
        "broker": args.broker,
        "username": info.device,
        "tech": credential.tech,
    }


def _unpair(args: argparse.Namespace) -> dict[str, Any]:
    from hub.pairing import unpair
    from hub.queries import Reader
    from hub.writer import Writer

    credential, _, _ = _checked_credential(args)
    device, cleared = args.device, False
    if args.port is not None:
        with ConsoleClient(args.port, timeout_s=args.timeout) as console:
            console.hello()
            device = console.info().device
            with Reader.open(args.db) as reader:
                if reader.execute("SELECT 1 FROM devices WHERE id = ?", (device,)).fetchone() is None:
                    raise TechError(f"terminal {device} is not registered at this hub")
            console.expect(lambda ident: wire.UnpairRequest(id=ident, credential=credential), wire.Done)
            cleared = True

    def write() -> None:
        with Writer.open(args.db) as writer:
            writer.write(unpair, device, _now_ms(), credential.tech)

    if cleared:
        _registered("unpair --device " + device, device, write, done="cleared its pairing")
    else:
        write()
    return {"device": device, "revoked": True, "terminal_cleared": cleared, "tech": credential.tech}


def _replace(args: argparse.Namespace) -> dict[str, Any]:
    from hub.pairing import check_replaceable, replace
    from hub.queries import Reader
    from hub.writer import Writer

    credential, sign, seal = _checked_credential(args)
    with ConsoleClient(args.port, timeout_s=args.timeout) as console:
        console.hello()
        info = console.info()
        with Reader.open(args.db) as reader:
            placement = check_replaceable(reader.db, args.old, info.device, info.pubkey)
        password = _pair_terminal(
            console,
            args,
            info,
            credential,
            (sign, seal),
            department=placement.department,
            counter=placement.counter,
            staff=placement.clerk,
        )

    def write() -> None:
        with Writer.open(args.db) as writer:
            writer.write(replace, args.old, info.device, info.pubkey, credential.tech, _now_ms(), password=password)

    _registered(f"replace --old {args.old}", info.device, write)
    return {
        "device": info.device,
        "replaces": args.old,
        "department": placement.department,
        "counter": placement.counter,
        "clerk": placement.clerk,
        "hub": sign[:16],
        "tech": credential.tech,
    }
