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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("hub", help="the hub: ingest, registry, audit")
    sub = parser.add_subparsers(dest="hub_command", required=True)

    serve = sub.add_parser("serve", help="verify, store and acknowledge ratings from the broker")
    _add_db(serve, what="the hub database, migrated to this version's schema at start")
    serve.add_argument("--broker", default=os.environ.get("PINGJIA_BROKER", "mqtt://127.0.0.1:1883"))
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
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="bring the hub database to this version's schema (or create it)")
    _add_db(migrate)
    migrate.set_defaults(func=_migrate)

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
    add_staff.set_defaults(func=_add_staff)

    rejects = sub.add_parser("rejects", help="refused messages: counts per reason and the latest ones, as JSON")
    _add_db(rejects)
    rejects.add_argument("--limit", type=int, default=20)
    rejects.set_defaults(func=_rejects)

    devices = sub.add_parser("devices", help="every terminal: status, latest health, last events, as JSON")
    _add_db(devices)
    devices.add_argument("--events", type=int, default=5, help="latest events per terminal")
    devices.set_defaults(func=_devices)

    verify = sub.add_parser("verify", help="audit: check every stored record's own signature and chain link")
    _add_db(verify)
    verify.add_argument("--device", help="only this terminal")
    verify.set_defaults(func=_verify)

    report = commands.add_parser("report", help="figures per staff member or department for a month or a day")
    _add_db(report)
    report.add_argument("--period", required=True, help="YYYY-MM or YYYY-MM-DD (site time zone)")
    report.add_argument("--by", choices=["staff", "department"], default="staff")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="hub settings, e.g. timeout_score=0",
    )
    report.set_defaults(func=_report)


def _fail(command: str, error: Exception) -> int:
    print(f"pingjia {command}: {error}", file=sys.stderr)
    return 2


def _serve(args: argparse.Namespace) -> int:
    from hub.config import HubConfig
    from hub.db import is_postgres
    from hub.errors import HubError
    from hub.serve import Hub
    from runtime.mqtt import MqttBroker, parse_broker_url
    from runtime.settings import ConfigError, from_assignments

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = from_assignments(HubConfig, args.settings)
        url = parse_broker_url(args.broker)
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
            )
            return supervisor.run()
        broker = MqttBroker(
            url=url,
            protocol=config.mqtt_protocol,
            reconnect_min_s=config.reconnect_min_s,
            reconnect_max_s=config.reconnect_max_s,
        )
        hub = Hub(db=args.db, broker=broker, config=config, client_id=args.client_id, share_group=args.share_group)
    except (ConfigError, ValueError, HubError) as exc:
        return _fail("hub serve", exc)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _number, _frame: hub.stop())
    if args.lifeline:
        from runtime.lifeline import hold_lifeline

        hold_lifeline(sys.stdin.fileno(), hub.stop)
    hub.run()
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
    from hub import registry
    from hub.errors import HubError
    from hub.writer import Writer

    try:
        registry.check_staff(args.staff_id, args.department)  # before anything is opened or created
        with Writer.open(args.db) as writer:
            writer.write(registry.add_staff, args.staff_id, name=args.name, department=args.department)
    except HubError as exc:
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


def _verify(args: argparse.Namespace) -> int:
    from hub.audit import audit
    from hub.errors import HubError
    from hub.queries import Reader

    try:
        with Reader.open(args.db) as reader:
            result = audit(reader, device=args.device)
    except HubError as exc:
        return _fail("hub verify", exc)
    print(json.dumps(result, indent=2))
    return 0 if not result["problems"] else 1


def _report(args: argparse.Namespace) -> int:
    from hub.config import HubConfig
    from hub.errors import HubError
    from hub.queries import Reader
    from hub.report import aggregate, parse_period, render
    from runtime.settings import ConfigError, from_assignments

    try:
        config = from_assignments(HubConfig, args.settings)
        period = parse_period(args.period)
        with Reader.open(args.db) as reader:
            rows = aggregate(reader, period, args.by, count_uninvited=config.count_uninvited)
        print(render(rows, by=args.by, period=period, fmt=args.format, timeout_score=config.timeout_score))
    except (ConfigError, HubError) as exc:
        return _fail("report", exc)
    return 0
