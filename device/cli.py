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
from typing import Any, TypeVar

__all__ = ["register"]

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
    run.add_argument("--keys", choices=["stdin", "panel"], help="where presses come from (default: the config's keys)")
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
        "--clock-offset-file",
        type=Path,
        help="simulation: add the ms in this file to the wall clock (makes the clock jump)",
    )
    run.add_argument(
        "--lifeline", action="store_true", help="stop when standard input closes (always so with --keys stdin)"
    )
    run.add_argument("--log-level", default="WARNING")
    run.set_defaults(func=_run)

    cards = sub.add_parser("cards", help="staff cards this terminal accepts for log-in and log-out")
    cards.add_argument("--data", type=Path, required=True)
    cards.add_argument("--add", action="append", default=[], metavar="UID=STAFF", help="card uid (hex) and staff id")
    cards.add_argument("--remove", action="append", default=[], metavar="UID")
    cards.set_defaults(func=_cards)


def _init(args: argparse.Namespace) -> int:
    from device import identity

    try:
        made = identity.create(args.data, args.device_id)
    except identity.IdentityError as exc:
        print(f"pingjia device init: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"device": made.device, "pubkey": made.public_hex, "data": str(args.data)}))
    return 0


def _show(args: argparse.Namespace) -> int:
    from device import identity
    from device.outbox import OutboxError
    from device.settings import Settings

    try:
        loaded = identity.load(args.data)
        outbox = identity.open_outbox(loaded)
        checked = outbox.verify_chain()
    except (identity.IdentityError, OutboxError) as exc:
        print(f"pingjia device show: {exc}", file=sys.stderr)
        return 2
    settings = Settings(args.data / identity.SETTINGS_FILE)
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
    from device.settings import Settings

    try:
        identity.load(args.data)
    except identity.IdentityError as exc:
        print(f"pingjia device cards: {exc}", file=sys.stderr)
        return 2
    settings = Settings(args.data / identity.SETTINGS_FILE)
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


def _run(args: argparse.Namespace) -> int:
    from device import identity
    from device.app import Terminal
    from device.clock import Clock, OffsetClock, SystemClock
    from device.config import ConfigError, DeviceConfig, from_assignments, from_toml
    from device.keys import Quit, StdinKeys
    from device.mqtt import parse_broker_url

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
        broker_text = args.broker or config.broker
        broker = parse_broker_url(broker_text) if broker_text else None
        if not (args.data / identity.KEY_FILE).exists() and not (args.data / identity.OUTBOX_FILE).exists():
            # First start: make the identity here; the key never leaves this directory.
            made = identity.create(args.data, args.device_id)
            print(
                f"pingjia device run: new identity {made.device}; register it at the hub with "
                f"`pingjia hub add-device --id {made.device} --pubkey {made.public_hex}`",
                file=sys.stderr,
            )
        loaded = identity.load(args.data)
    except (ConfigError, ValueError, OSError, identity.IdentityError) as exc:
        print(f"pingjia device run: {exc}", file=sys.stderr)
        return 2

    def emit(event: dict[str, Any]) -> None:  # buffered; the terminal flushes once per turn of its loop
        if args.events == "jsonl":
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")

    panel = None
    if config.keys == "panel":
        from device.panel import PanelLink

        def panel(post: Any) -> PanelLink:
            return PanelLink(port=config.panel_port, on_event=post)

    clock: Clock = OffsetClock(args.clock_offset_file) if args.clock_offset_file else SystemClock()
    try:
        terminal = _when_storage_opens(
            lambda: Terminal(
                identity=loaded,
                config=config,
                broker=broker,
                clock=clock,
                emit=emit,
                panel=panel,
                flush=sys.stdout.flush,
            ),
            emit,
        )
    except identity.IdentityError as exc:
        print(f"pingjia device run: {exc}", file=sys.stderr)
        return 2
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: terminal.post(Quit(signal.Signals(number).name)))
    # Lines on stdin drive a terminal without a panel; with a panel (under systemd stdin is empty)
    # they are optional, and their end stops the terminal only when asked to.
    quit_at_end = config.keys == "stdin" or args.lifeline
    StdinKeys(sys.stdin.fileno(), terminal.post, quit_at_end=quit_at_end).start()
    terminal.run()
    return 0


def _when_storage_opens(make: Callable[[], T], emit: Callable[[dict[str, Any]], None]) -> T:
    """`make()`, again every second while the outbox cannot be opened.

    The outbox is there but cannot be opened now (a full disk, an I/O error): its records are
    intact, so the terminal waits for it, saying so, rather than exit into a restart loop.
    """
    from device.outbox import OutboxError

    said = None
    while True:
        try:
            return make()
        except OutboxError as exc:
            if str(exc) != said:  # once per distinct error, not once a second
                said = str(exc)
                print(f"pingjia device run: out of service, waiting for the outbox: {exc}", file=sys.stderr)
                emit({"event": "error", "detail": f"out of service: {exc}"})
                sys.stdout.flush()
            time.sleep(_STORAGE_RETRY_S)
