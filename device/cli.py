"""`pingjia device ...`: set up and run a terminal."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from device.clock import Clock
    from device.config import DeviceConfig
    from device.events import Report
    from device.io import Io
    from device.pairing import Pairing
    from protocol import VerifyKey
    from runtime.mqtt import MqttBroker

__all__ = ["register", "run_terminal"]

T = TypeVar("T")

_STORAGE_RETRY_S = 1.0  # how often a terminal whose outbox cannot be opened tries again


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("device", help="set up and run a rating terminal")
    sub = parser.add_subparsers(dest="device_command", required=True)

    init = sub.add_parser("init", help="make a new identity (Ed25519 key, device id, outbox)")
    init.add_argument("--data", type=Path, required=True, help="the terminal's data directory")
    init.add_argument("--id", dest="device_id", help="device id (default: pj- and 12 hex digits of the key)")
    init.set_defaults(func=_init)

    show = sub.add_parser("show", help="identity, public key, outbox state and chain check, as JSON")
    show.add_argument("--data", type=Path, required=True)
    show.set_defaults(func=_show)

    run = sub.add_parser("run", help="run the terminal")
    run.add_argument("--data", type=Path, required=True)
    run.add_argument("--config", type=Path, help="a TOML file of terminal settings (checked at start)")
    run.add_argument(
        "--broker",
        default=os.environ.get("PINGJIA_BROKER"),
        help="mqtt://host:port[?protocol=5|3.1.1] (default $PINGJIA_BROKER, then the config; none: store only)",
    )
    run.add_argument(
        "--keys", choices=["stdin", "panel", "touch"], help="where presses come from (default: the config's keys)"
    )
    run.add_argument(
        "--screen",
        type=_screen_size,
        metavar="WxH",
        help="with --keys touch: a window of this size in px (e.g. 800x480) instead of full screen",
    )
    run.add_argument("--panel-port", help="the key panel's serial device (default: the config's panel_port)")
    run.add_argument("--events", choices=["jsonl", "none"], default="none", help="print events on stdout")
    run.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a setting (see README: terminal settings)",
    )
    run.add_argument("--id", dest="device_id", help="device id to take on first start (default: derived from the key)")
    run.add_argument(
        "--hub-key",
        help="pin this hub key (64 hex digits) instead of the one pairing stored: for terminals provisioned "
        "with the site's image; a terminal takes acks, commands and configuration signed by this key only",
    )
    run.add_argument(
        "--lifeline", action="store_true", help="stop when standard input closes (always so with --keys stdin)"
    )
    run.add_argument("--log-level", default="WARNING")
    run.set_defaults(func=run_terminal)

    cards = sub.add_parser("cards", help="staff cards this terminal accepts for log-in and log-out")
    cards.add_argument("--data", type=Path, required=True)
    cards.add_argument("--add", action="append", default=[], metavar="UID=STAFF", help="card uid (hex) and staff id")
    cards.add_argument("--remove", action="append", default=[], metavar="UID")
    cards.set_defaults(func=_cards)


def _init(args: argparse.Namespace) -> int:
    from device import identity
    from device.errors import IdentityError

    try:
        made = identity.create(args.data, args.device_id)
    except IdentityError as exc:
        print(f"pingjia device init: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"device": made.device, "pubkey": made.public_hex, "data": str(args.data)}))
    return 0


def _show(args: argparse.Namespace) -> int:
    from device import identity
    from device.errors import DeviceError
    from device.state import StateDocument

    try:
        loaded = identity.load(args.data)
        outbox = identity.open_outbox(loaded)
        checked = outbox.verify_chain()
    except DeviceError as exc:
        print(f"pingjia device show: {exc}", file=sys.stderr)
        return 2
    settings = StateDocument(args.data / identity.STATE_FILE)
    print(
        json.dumps(
            {
                "device": loaded.device,
                "pubkey": loaded.public_hex,
                "head": outbox.head[0],
                "acked": outbox.acked,
                "depth": outbox.depth,
                "records_checked": checked,
                "staff": settings.get("staff"),
            }
        )
    )
    return 0


def _cards(args: argparse.Namespace) -> int:
    from device import identity
    from device.errors import IdentityError
    from device.state import StateDocument

    try:
        identity.load(args.data)
    except IdentityError as exc:
        print(f"pingjia device cards: {exc}", file=sys.stderr)
        return 2
    settings = StateDocument(args.data / identity.STATE_FILE)
    cards: dict[str, str] = dict(settings.get("cards", {}))
    for pair in args.add:
        uid, sep, staff = pair.partition("=")
        uid = uid.strip().lower()
        if not sep or not uid or any(ch not in "0123456789abcdef" for ch in uid) or not staff.strip():
            print(f"pingjia device cards: {pair!r} is not UID=STAFF with a hex uid", file=sys.stderr)
            return 2
        cards[uid] = staff.strip()
    for uid in args.remove:
        cards.pop(uid.strip().lower(), None)
    settings.update(cards=cards)
    settings.close()
    print(json.dumps(cards, ensure_ascii=False))
    return 0


def _screen_size(text: str) -> tuple[int, int]:
    """`WxH` in px, each 100..10000 (argparse's error otherwise)."""
    width, sep, height = text.lower().partition("x")
    try:
        size = (int(width), int(height))
    except ValueError:
        size = (0, 0)
    if not sep or not all(100 <= side <= 10_000 for side in size):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in px (e.g. 800x480), got {text!r}")
    return size


def run_terminal(
    args: argparse.Namespace, clock: Clock | None = None, attach: Callable[[Io], None] | None = None
) -> int:
    """`pingjia device run`. The simulator runs the same with its own clock and its host backends of
    the hardware (simulator.terminal): `attach` is given the terminal's input/output backend before
    the terminal starts (the simulator's finger attaches to a touchscreen so)."""
    from device import identity
    from device.clock import SystemClock
    from device.config import DeviceConfig
    from device.errors import IdentityError, StateError
    from device.io import Quit
    from device.io.fonts import FontMissing
    from device.io.stdin import StdinKeys
    from device.terminal import Terminal
    from runtime.settings import ConfigError, from_assignments, from_toml

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    overrides = list(args.settings)
    if args.keys:
        overrides.append(f"keys={args.keys}")
    if args.panel_port:
        overrides.append(f"panel_port={args.panel_port}")
    try:
        if args.config is not None:
            text = args.config.read_text(encoding="utf-8")
            config = from_toml(DeviceConfig, text, source=str(args.config), overrides=overrides)
        else:
            config = from_assignments(DeviceConfig, overrides)
        backend = _backend(config, getattr(args, "screen", None))  # before anything is made: a missing font stops it
        broker_text = args.broker or config.broker
        broker = _broker(broker_text, config) if broker_text else None
        if not (args.data / identity.KEY_FILE).exists() and not (args.data / identity.OUTBOX_FILE).exists():
            # First start: make the identity here; the key never leaves this directory.
            made = identity.create(args.data, args.device_id)
            print(
                f"pingjia device run: new identity {made.device} (public key {made.public_hex}); a technician "
                "pairs it with `pingjia tech pair` on its console port, or an operator enters the pairing code it "
                "shows with `pingjia hub claim CODE`",
                file=sys.stderr,
            )
        loaded = identity.load(args.data)
    except (ConfigError, ValueError, OSError, IdentityError, FontMissing) as exc:
        print(f"pingjia device run: {exc}", file=sys.stderr)
        return 2
    try:
        hub_key = _pinned_hub_key(args.hub_key, loaded.data_dir)
    except (ValueError, StateError) as exc:
        print(f"pingjia device run: {exc}", file=sys.stderr)
        return 2

    report, flush = _reporter(args.events)

    # Lines on stdin drive a terminal without a panel; with a panel (under systemd stdin is empty)
    # they are optional, and their end stops the terminal only when asked to.
    stdin = StdinKeys(sys.stdin.fileno(), quit_at_end=config.keys == "stdin" or args.lifeline)
    io = backend or stdin
    if attach is not None:
        attach(io)
    try:
        terminal = _when_storage_opens(
            lambda: Terminal(
                identity=loaded,
                config=config,
                broker=broker,
                clock=clock or SystemClock(),
                io=io,
                report=report,
                flush=flush,
                hub_key=hub_key,
                broker_for=_broker_for(config, loaded.data_dir),
            ),
            report,
            flush,
        )
    except IdentityError as exc:
        print(f"pingjia device run: {exc}", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: terminal.post(Quit(signal.Signals(number).name)))
    if io is not stdin:
        stdin.start(terminal.post)  # a second source of input beside the panel
    terminal.run()
    return 0


def _backend(config: DeviceConfig, screen: tuple[int, int] | None) -> Io | None:
    """The key panel or the touchscreen the config's `keys` names (None: stdin's lines only).
    ValueError (FontMissing) if the touchscreen cannot start: its CJK font is not installed."""
    if config.keys == "panel":
        from device.io.keypanel import KeyPanel

        return KeyPanel(port=config.panel_port, debounce_ms=config.debounce_ms)
    if config.keys == "touch":
        from device.io.touch import TouchScreen, TouchSettings

        return TouchScreen(settings=TouchSettings.of(config), size=screen)
    if screen is not None:
        raise ValueError("--screen is for the touchscreen (--keys touch)")
    return None


def _pinned_hub_key(given: str | None, data_dir: Path) -> VerifyKey | None:
    """The hub key to take control messages from: `--hub-key`, else the one pairing stored, else None."""
    from device import identity
    from device.state import StateDocument
    from protocol import DecodeError, VerifyKey

    text = given
    if text is None:
        state = StateDocument(data_dir / identity.STATE_FILE)
        pairing = state.get("pairing")
        state.close()
        if isinstance(pairing, dict) and isinstance(pairing.get("hub_sign"), str):
            text = pairing["hub_sign"]
    if text is None:
        return None
    try:
        return VerifyKey.from_hex(text)
    except (DecodeError, ValueError) as exc:
        raise ValueError(f"hub key {text[:80]!r} is not an Ed25519 public key (64 hex digits): {exc}") from None


def _broker_for(config: DeviceConfig, data_dir: Path) -> Callable[[Pairing], MqttBroker | None]:
    """How a terminal reaches the broker pairing gave it: its own account, and the site's CA."""

    def make(pairing: Pairing) -> MqttBroker | None:
        from runtime.mqtt import MqttBroker, parse_broker_url

        ca = None
        if pairing.tls_ca:
            ca = data_dir / "hub-ca.pem"
            ca.write_text(pairing.tls_ca, encoding="utf-8")
        return MqttBroker(
            url=parse_broker_url(pairing.broker),
            protocol=config.mqtt_protocol,
            keepalive_s=config.keepalive_s,
            connect_timeout_s=config.connect_timeout_s,
            reconnect_min_s=config.reconnect_min_s,
            reconnect_max_s=config.reconnect_max_s,
            username=pairing.username,
            password=pairing.password,
            tls_ca=str(ca) if ca is not None else None,
        )

    return make


def _broker(url: str, config: DeviceConfig) -> MqttBroker:
    from runtime.mqtt import MqttBroker, parse_broker_url

    return MqttBroker(
        url=parse_broker_url(url),
        protocol=config.mqtt_protocol,
        keepalive_s=config.keepalive_s,
        connect_timeout_s=config.connect_timeout_s,
        reconnect_min_s=config.reconnect_min_s,
        reconnect_max_s=config.reconnect_max_s,
    )


def _reporter(kind: str) -> tuple[Report, Callable[[], None]]:
    """Where the terminal's events go: JSON lines on stdout, buffered until the loop flushes, or nowhere."""
    from device.events import JsonLines

    if kind == "jsonl":
        lines = JsonLines(sys.stdout)
        return lines, lines.flush
    return _nowhere, lambda: None


def _nowhere(_event: object) -> None:
    return None


def _when_storage_opens(make: Callable[[], T], report: Callable[[Any], None], flush: Callable[[], None]) -> T:
    """`make()`, again every second while the outbox cannot be opened.

    The outbox is there but cannot be opened now (a full disk, an I/O error): its records are
    intact, so the terminal waits for it, saying so, rather than exit into a restart loop.
    """
    from device.errors import OutboxError
    from device.events import Error

    said = None
    while True:
        try:
            return make()
        except OutboxError as exc:
            if str(exc) != said:  # once per distinct error, not once a second
                said = str(exc)
                print(f"pingjia device run: out of service, waiting for the outbox: {exc}", file=sys.stderr)
                report(Error(f"out of service: {exc}"))
                flush()
            time.sleep(_STORAGE_RETRY_S)
