"""`pingjia hub ...` and `pingjia report`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import Any

__all__ = ["register"]

DEFAULT_DB = os.environ.get("PINGJIA_DB", "sqlite:///var/hub.sqlite3")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("hub", help="the hub: ingest, registry, audit")
    sub = parser.add_subparsers(dest="hub_command", required=True)

    serve = sub.add_parser("serve", help="verify, store and acknowledge ratings from the broker")
    serve.add_argument("--db", default=DEFAULT_DB, help="sqlite:///path (default %(default)s)")
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

    add_device = sub.add_parser("add-device", help="register a terminal's public key")
    add_device.add_argument("--db", default=DEFAULT_DB)
    add_device.add_argument("--id", dest="device_id", required=True)
    add_device.add_argument("--pubkey", required=True, help="64 hex digits, as `pingjia device init` prints")
    add_device.add_argument("--department", default="")
    add_device.add_argument("--counter", default="", help="window / counter where the terminal stands")
    add_device.set_defaults(func=_add_device)

    add_staff = sub.add_parser("add-staff", help="register a staff member and their department")
    add_staff.add_argument("--db", default=DEFAULT_DB)
    add_staff.add_argument("--id", dest="staff_id", required=True)
    add_staff.add_argument("--name", default="")
    add_staff.add_argument("--department", required=True)
    add_staff.set_defaults(func=_add_staff)

    rejects = sub.add_parser("rejects", help="refused messages: counts per reason and the latest ones, as JSON")
    rejects.add_argument("--db", default=DEFAULT_DB)
    rejects.add_argument("--limit", type=int, default=20)
    rejects.set_defaults(func=_rejects)

    devices = sub.add_parser("devices", help="every terminal: status, latest health, last events, as JSON")
    devices.add_argument("--db", default=DEFAULT_DB)
    devices.add_argument("--events", type=int, default=5, help="latest events per terminal")
    devices.set_defaults(func=_devices)

    verify = sub.add_parser("verify", help="audit: check every stored record's own signature and chain link")
    verify.add_argument("--db", default=DEFAULT_DB)
    verify.add_argument("--device", help="only this terminal")
    verify.set_defaults(func=_verify)

    report = commands.add_parser("report", help="figures per staff member or department for a month or a day")
    report.add_argument("--db", default=DEFAULT_DB)
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
    from device.config import ConfigError, from_assignments
    from device.mqtt import parse_broker_url
    from hub.config import HubConfig
    from hub.errors import HubError
    from hub.serve import Hub

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = from_assignments(HubConfig, args.settings)
        broker = parse_broker_url(args.broker)
        if args.workers > 1:
            from hub.store import Store
            from hub.workers import Supervisor

            if not args.db.startswith(("postgresql://", "postgres://")):
                raise ValueError("--workers above 1 needs --db postgresql://...: SQLite has one writer")
            Store.open(args.db).close()  # migrate once, before the workers start
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
        hub = Hub(
            store_url=args.db, broker=broker, config=config, client_id=args.client_id, share_group=args.share_group
        )
    except (ConfigError, ValueError, HubError) as exc:
        return _fail("hub serve", exc)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _number, _frame: hub.stop())
    if args.lifeline:
        import threading

        def watch() -> None:
            from device.keys import read_lines

            for _line in read_lines(sys.stdin.fileno()):
                pass
            hub.stop()

        threading.Thread(target=watch, name="lifeline", daemon=True).start()
    hub.run()
    return 0


def _add_device(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.store import Store

    try:
        store = Store.open(args.db)
        store.add_device(args.device_id, args.pubkey, department=args.department, counter=args.counter)
    except HubError as exc:
        return _fail("hub add-device", exc)
    print(json.dumps({"device": args.device_id, "department": args.department, "counter": args.counter}))
    return 0


def _add_staff(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.store import Store

    try:
        Store.open(args.db).add_staff(args.staff_id, name=args.name, department=args.department)
    except HubError as exc:
        return _fail("hub add-staff", exc)
    print(json.dumps({"staff": args.staff_id, "name": args.name, "department": args.department}, ensure_ascii=False))
    return 0


def _rejects(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.store import Store

    try:
        store = Store.open(args.db, create=False)
        latest = store.execute(
            "SELECT at_ms, topic, device, seq, reason, detail, size FROM rejects ORDER BY at_ms DESC LIMIT ?",
            (args.limit,),
        ).fetchall()
    except HubError as exc:
        return _fail("hub rejects", exc)
    keys = ("at_ms", "topic", "device", "seq", "reason", "detail", "size")
    document: dict[str, Any] = {
        "counts": store.reject_counts(),
        "latest": [dict(zip(keys, r, strict=True)) for r in latest],
    }
    print(json.dumps(document, ensure_ascii=False, indent=2))
    return 0


def _devices(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.store import Store

    try:
        store = Store.open(args.db, create=False)
        rows = store.execute(
            "SELECT id, department, counter, upto, status_state, status_ms, health, health_ms FROM devices ORDER BY id"
        ).fetchall()
        listing = []
        for device, department, counter, upto, state, status_ms, health, health_ms in rows:
            events = store.execute(
                "SELECT at_ms, kind, detail FROM device_events WHERE device = ? ORDER BY at_ms DESC LIMIT ?",
                (device, args.events),
            ).fetchall()
            listing.append(
                {
                    "device": device,
                    "department": department,
                    "counter": counter,
                    "stored_upto": upto,
                    "status": state,
                    "status_ms": status_ms,
                    "health": json.loads(health) if health else None,
                    "health_ms": health_ms,
                    "events": [{"at_ms": a, "kind": k, "detail": d} for a, k, d in events],
                }
            )
    except HubError as exc:
        return _fail("hub devices", exc)
    print(json.dumps(listing, ensure_ascii=False, indent=2))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from hub.audit import audit
    from hub.errors import HubError
    from hub.store import Store

    try:
        result = audit(Store.open(args.db, create=False), device=args.device)
    except HubError as exc:
        return _fail("hub verify", exc)
    print(json.dumps(result, indent=2))
    return 0 if not result["problems"] else 1


def _report(args: argparse.Namespace) -> int:
    from device.config import ConfigError, from_assignments
    from hub.config import HubConfig
    from hub.errors import HubError
    from hub.report import ReportError, aggregate, parse_period, render
    from hub.store import Store

    try:
        config = from_assignments(HubConfig, args.settings)
        period = parse_period(args.period)
        rows = aggregate(Store.open(args.db, create=False), period, args.by, count_uninvited=config.count_uninvited)
        print(render(rows, by=args.by, period=period, fmt=args.format, timeout_score=config.timeout_score))
    except (ConfigError, ReportError, HubError) as exc:
        return _fail("report", exc)
    return 0
