"""`pingjia hub ...` and `pingjia report`.

Every command takes the same `--db` (default: $PINGJIA_DB, else sqlite:///var/hub.sqlite3), so
that setting PINGJIA_DB once points all of them at the same database. Commands that write (`hub
add-device`, `hub add-staff`) run the registry's write functions through a short-lived writer
(hub.writer); `hub serve` and `hub migrate` are the ones that migrate; the rest read through a
read-only connection (hub.queries) and neither create nor migrate anything.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.config import HubConfig
    from hub.db import Database
    from runtime.mqtt import MqttBroker

__all__ = ["FALLBACK_DB", "register"]

FALLBACK_DB = "sqlite:///var/hub.sqlite3"  # --db when PINGJIA_DB is not set either


def _add_db(parser: argparse.ArgumentParser, *, what: str = "the hub database") -> None:
    from hub.db import redact

    default = os.environ.get("PINGJIA_DB", FALLBACK_DB)
    shown = redact(default).replace("%", "%%")  # help text is a %-format: a URL's %3D must stay itself
    parser.add_argument(
        "--db",
        default=default,
        help=(
            f"{what}: sqlite:///path, or postgresql://user@host/db (needs the postgres extra: "
            f"pip install 'pingjia[postgres]'); default $PINGJIA_DB, else {FALLBACK_DB} (now: {shown})"
        ),
    )


def _add_key(parser: argparse.ArgumentParser) -> None:
    from hub.identity import DEFAULT_KEY_FILE

    parser.add_argument(
        "--hub-key",
        type=Path,
        default=Path(os.environ.get("PINGJIA_HUB_KEY", DEFAULT_KEY_FILE)),
        help=f"the hub's key file, made by `pingjia hub init` (default $PINGJIA_HUB_KEY, else {DEFAULT_KEY_FILE})",
    )


def _add_broker(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", default=os.environ.get("PINGJIA_BROKER", "mqtt://127.0.0.1:1883"))
    parser.add_argument(
        "--broker-secret",
        type=Path,
        default=Path(os.environ["PINGJIA_BROKER_SECRET"]) if os.environ.get("PINGJIA_BROKER_SECRET") else None,
        help="the hub's broker passwords (hub.secret, written by `pingjia hub broker-config`); "
        "default $PINGJIA_BROKER_SECRET; none: connect without credentials",
    )
    parser.add_argument("--tls-ca", help="CA certificate (PEM) to check an mqtts:// broker against")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("hub", help="the hub: ingest, registry, audit")
    sub = parser.add_subparsers(dest="hub_command", required=True)

    _register_control(sub)
    _register_serving(sub)
    _register_registry(sub)

    from hub import brokerconf, claim, pairing

    brokerconf.add_command(sub)
    claim.add_command(sub)
    pairing.add_commands(sub)

    from hub import figures_cli, supervision_cli

    figures_cli.add_commands(sub)
    supervision_cli.add_command(sub)
    figures_cli.add_report_command(commands)


def _register_control(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser("init", help="make the hub's keys (Ed25519 to sign, X25519 to seal), once per site")
    _add_key(init)
    init.set_defaults(func=_init)

    command = sub.add_parser("command", help="sign and send a command to a terminal (login, logout, invite)")
    _add_db(command)
    _add_key(command)
    _add_broker(command)
    command.add_argument("--device", required=True)
    command.add_argument("cmd", choices=["login", "logout", "invite"])
    command.add_argument("--staff", help="login: the clerk (a registered staff id)")
    command.add_argument("--ticket", help="invite: the queue system's ticket")
    command.add_argument("--ref", help="the sender's reference, written to the terminal's log")
    command.set_defaults(func=_command)

    configure = sub.add_parser(
        "configure", help="set a department's or a terminal's settings; sends each terminal a signed document"
    )
    _add_db(configure)
    _add_key(configure)
    _add_broker(configure)
    where = configure.add_mutually_exclusive_group(required=True)
    where.add_argument("--device")
    where.add_argument("--department")
    configure.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    configure.add_argument("--unset", action="append", default=[], metavar="NAME")
    configure.set_defaults(func=_configure)


def _register_serving(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="verify, store and acknowledge ratings from the broker")
    _add_db(serve, what="the hub database, migrated to this version's schema at start")
    _add_key(serve)
    _add_broker(serve)
    serve.add_argument("--client-id", default="pingjia-hub")
    serve.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument("--lifeline", action="store_true", help="stop when standard input closes (for supervisors)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on an MQTT 5 shared subscription (more than 1 needs PostgreSQL)",
    )
    serve.add_argument("--share-group", help="consume as a member of this MQTT 5 shared-subscription group")
    serve.add_argument(
        "--broker-site",
        type=Path,
        help="the broker site `pingjia hub broker-config` wrote: rewritten and reloaded after each claim, so that a "
        "terminal that claimed its registration can connect at once",
    )
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="bring the hub database to this version's schema (or create it)")
    _add_db(migrate)
    migrate.set_defaults(func=_migrate)


def _register_registry(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_device = sub.add_parser("add-device", help="register a terminal's public key")
    _add_db(add_device, what="the hub database (created if it does not exist yet)")
    add_device.add_argument("--id", dest="device_id", required=True)
    add_device.add_argument("--pubkey", required=True, help="64 hex digits, as `pingjia device init` prints")
    add_device.add_argument("--department", default="")
    add_device.add_argument("--counter", default="", help="window / counter where the terminal stands")
    add_device.set_defaults(func=_add_device)

    add_staff = sub.add_parser("add-staff", help="register a staff member and their department")
    _add_db(add_staff, what="the hub database (created if it does not exist yet)")
    add_staff.add_argument("--id", dest="staff_id", required=True)
    add_staff.add_argument("--name", default="")
    add_staff.add_argument("--department", required=True)
    add_staff.add_argument(
        "--since",
        help="a move to another department takes effect from this day, YYYY-MM-DD (default: today, in the "
        "time zone --set timezone=... says); their ratings of those days move with it. A new staff member "
        "belongs there from the beginning",
    )
    add_staff.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    add_staff.set_defaults(func=_add_staff)

    rejects = sub.add_parser("rejects", help="refused messages: counts per reason and the latest ones, as JSON")
    _add_db(rejects)
    rejects.add_argument("--limit", type=int, default=20)
    rejects.set_defaults(func=_rejects)

    devices = sub.add_parser("devices", help="every terminal: status, latest health, last events, as JSON")
    _add_db(devices)
    devices.add_argument("--events", type=int, default=5, help="latest events per terminal")
    devices.set_defaults(func=_devices)

    forks = sub.add_parser("forks", help="evidence of terminals whose key signed two histories (cloned or stolen)")
    _add_db(forks)
    forks.add_argument("--all", dest="everything", action="store_true", help="settled ones too")
    forks.set_defaults(func=_forks)

    settle = sub.add_parser("settle-fork", help="decide which history of a forked terminal stands")
    _add_db(settle)
    settle.add_argument("--device", required=True)
    settle.add_argument("--seq", type=int, required=True)
    settle.add_argument(
        "--keep",
        choices=["stored", "other"],
        required=True,
        help="stored: what the hub holds stands; other: the refused history is the terminal's own "
        "(stored records from --seq on are deleted, and the terminal's resends are stored)",
    )
    settle.add_argument("--by", required=True, help="who decides (kept with the decision)")
    settle.add_argument("--why", default="", help="why (kept with the decision)")
    settle.set_defaults(func=_settle_fork)

    verify = sub.add_parser("verify", help="audit: check every stored record's own signature and chain link")
    _add_db(verify)
    verify.add_argument("--device", help="only this terminal")
    verify.add_argument(
        "--explained",
        type=Path,
        metavar="FILE",
        help="check only the records in FILE (the JSON lines of `pingjia report --explain ... --format json`): "
        "each one's signature, hash, and that the hub stores it as it is",
    )
    verify.set_defaults(func=_verify)


def _fail(command: str, error: Exception) -> int:
    print(f"pingjia {command}: {error}", file=sys.stderr)
    return 2


def _broker(args: argparse.Namespace, config: HubConfig, username: str) -> MqttBroker:
    """The broker of `--broker`, with the hub account `username`'s password from `--broker-secret`."""
    from hub.brokerconf import load_hub_secret
    from runtime.mqtt import MqttBroker, parse_broker_url

    url = parse_broker_url(args.broker)
    password = None
    if args.broker_secret is not None:
        secret = load_hub_secret(args.broker_secret)
        if username not in secret:
            raise ValueError(f"{args.broker_secret} holds no password for the hub account {username}")
        password = secret[username]
    return MqttBroker(
        url=url,
        protocol=config.mqtt_protocol,
        reconnect_min_s=config.reconnect_min_s,
        reconnect_max_s=config.reconnect_max_s,
        username=username if password is not None else None,
        password=password,
        tls_ca=args.tls_ca,
    )


def _init(args: argparse.Namespace) -> int:
    from hub import identity

    try:
        keys = identity.create(args.hub_key)
    except identity.HubKeyError as exc:
        return _fail("hub init", exc)
    print(identity.describe(keys, args.hub_key))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from hub import identity
    from hub.config import HubConfig
    from hub.db import is_postgres
    from hub.errors import HubError
    from hub.serve import Hub
    from runtime.settings import ConfigError, from_assignments

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = from_assignments(HubConfig, args.settings)
        keys = identity.load(args.hub_key)
        if args.workers > 1:
            from hub.workers import Supervisor
            from hub.writer import Writer

            if not is_postgres(args.db):
                raise ValueError("--workers above 1 needs --db postgresql://...: SQLite has one writer")
            Writer.open(args.db, migrate=True).close()  # migrate once, before the workers start
            supervisor = Supervisor(
                workers=args.workers,
                db=args.db,
                broker=args.broker,
                client_id=args.client_id,
                group=args.share_group or "pingjia-hub",
                settings=args.settings,
                log_level=args.log_level,
                passed=_passed(args),
            )
            return supervisor.run()
        broker = _broker(args, config, args.client_id)
        hub = Hub(
            db=args.db,
            broker=broker,
            config=config,
            keys=keys,
            client_id=args.client_id,
            share_group=args.share_group,
            broker_site=args.broker_site,
        )
    except (ConfigError, ValueError, HubError) as exc:
        return _fail("hub serve", exc)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _number, _frame: hub.stop())
    if args.lifeline:
        from runtime.lifeline import hold_lifeline

        hold_lifeline(sys.stdin.fileno(), hub.stop)
    hub.run()
    return 0


def _passed(args: argparse.Namespace) -> list[str]:
    """The options a supervisor hands on to its workers, beside the ones it sets itself."""
    passed = ["--hub-key", str(args.hub_key)]
    if args.broker_site is not None:
        passed += ["--broker-site", str(args.broker_site)]
    if args.broker_secret is not None:
        passed += ["--broker-secret", str(args.broker_secret)]
    if args.tls_ca:
        passed += ["--tls-ca", args.tls_ca]
    return passed


_CONTROL_CLIENT = "pingjia-hub-control"  # the hub account of the control commands (not a serving worker's)


def _command(args: argparse.Namespace) -> int:
    from hub import control, identity
    from hub.config import HubConfig
    from hub.errors import HubError
    from hub.writer import Writer
    from protocol import CommandName

    try:
        keys = identity.load(args.hub_key)
        broker = _broker(args, HubConfig(), _CONTROL_CLIENT)
        with Writer.open(args.db) as writer:
            publication = writer.write(
                control.next_command,
                keys,
                args.device,
                CommandName(args.cmd),
                staff=args.staff,
                ticket=args.ticket,
                ref=args.ref,
                now_ms=time.time_ns() // 1_000_000,
            )
        control.publish(broker, _CONTROL_CLIENT, [publication])
    except (HubError, ValueError, TimeoutError) as exc:
        return _fail("hub command", exc)
    print(json.dumps({"device": args.device, "cmd": args.cmd, "topic": publication.topic}))
    return 0


def _configure(args: argparse.Namespace) -> int:
    from hub import control, identity
    from hub.config import HubConfig
    from hub.errors import HubError
    from hub.writer import Writer

    scope, target = ("device", args.device) if args.device else ("department", args.department)

    def change(db: Database) -> list[control.Publication]:
        now_ms = time.time_ns() // 1_000_000
        control.set_config(db, scope, target, args.settings, unset=args.unset, now_ms=now_ms)
        return control.config_documents(db, keys, control.devices_of(db, scope, target), now_ms)

    try:
        keys = identity.load(args.hub_key)
        broker = _broker(args, HubConfig(), _CONTROL_CLIENT)
        with Writer.open(args.db) as writer:
            publications = writer.write(change)
        control.publish(broker, _CONTROL_CLIENT, publications)
    except (HubError, ValueError, TimeoutError) as exc:
        return _fail("hub configure", exc)
    print(json.dumps({scope: target, "terminals": len(publications)}, ensure_ascii=False))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.writer import Writer

    try:
        with Writer.open(args.db, migrate=True) as writer:
            assert writer.migration is not None
            before, after = writer.migration
            name = writer.name
    except HubError as exc:
        return _fail("hub migrate", exc)
    print(json.dumps({"db": name, "schema": after, "was": before}))
    return 0


def _add_device(args: argparse.Namespace) -> int:
    from hub import registry
    from hub.errors import HubError
    from hub.writer import Writer

    try:
        registry.check_device(args.device_id, args.pubkey)  # before anything is opened or created
        with Writer.open(args.db) as writer:
            writer.write(
                registry.add_device, args.device_id, args.pubkey, department=args.department, counter=args.counter
            )
    except HubError as exc:
        return _fail("hub add-device", exc)
    print(json.dumps({"device": args.device_id, "department": args.department, "counter": args.counter}))
    return 0


def _add_staff(args: argparse.Namespace) -> int:
    from hub import directory, registry
    from hub.config import HubConfig
    from hub.errors import HubError
    from hub.writer import Writer
    from runtime.settings import ConfigError, from_assignments

    try:
        registry.check_staff(args.staff_id, args.department)  # before anything is opened or created
        if args.since is not None:
            directory.check_day("--since", args.since)
        since = args.since or directory.today(from_assignments(HubConfig, args.settings).timezone)
        with Writer.open(args.db) as writer:
            writer.write(registry.add_staff, args.staff_id, name=args.name, department=args.department, since=since)
    except (ConfigError, HubError) as exc:
        return _fail("hub add-staff", exc)
    print(json.dumps({"staff": args.staff_id, "name": args.name, "department": args.department}, ensure_ascii=False))
    return 0


def _rejects(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.queries import Reader

    try:
        with Reader.open(args.db) as reader:
            document = {"counts": reader.reject_counts(), "latest": reader.latest_rejects(args.limit)}
    except HubError as exc:
        return _fail("hub rejects", exc)
    print(json.dumps(document, ensure_ascii=False, indent=2))
    return 0


def _devices(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.queries import Reader

    try:
        with Reader.open(args.db) as reader:
            listing = reader.device_listing(args.events)
    except HubError as exc:
        return _fail("hub devices", exc)
    print(json.dumps(listing, ensure_ascii=False, indent=2))
    return 0


def _forks(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.queries import Reader

    try:
        with Reader.open(args.db) as reader:
            found = reader.forks(everything=args.everything)
    except HubError as exc:
        return _fail("hub forks", exc)
    print(json.dumps(found, ensure_ascii=False, indent=2))
    return 0


def _settle_fork(args: argparse.Namespace) -> int:
    from hub import forks
    from hub.errors import HubError
    from hub.writer import Writer

    try:
        with Writer.open(args.db) as writer:
            done = writer.write(forks.settle, args.device, args.seq, keep=args.keep, by=args.by, why=args.why)
    except HubError as exc:
        return _fail("hub settle-fork", exc)
    print(json.dumps(done, ensure_ascii=False))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from hub.audit import audit, check_explained
    from hub.errors import HubError
    from hub.queries import Reader

    try:
        with Reader.open(args.db) as reader:
            if args.explained is not None:
                try:
                    lines = args.explained.read_text(encoding="utf-8").splitlines()
                except (OSError, UnicodeDecodeError) as exc:
                    raise HubError(f"{args.explained}: cannot be read: {exc}") from None
                result = check_explained(reader, lines)
            else:
                result = audit(reader, device=args.device)
    except HubError as exc:
        return _fail("hub verify", exc)
    print(json.dumps(result, indent=2))
    return 0 if not result["problems"] else 1
