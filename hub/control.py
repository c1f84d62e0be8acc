"""The hub's control channel: signed commands and configuration documents for terminals.

The clerk's PC and the queue system no longer talk to a terminal directly: they ask the hub
(`pingjia hub command`, later its API), which checks the request against its registry (the
terminal is registered and not revoked; a `login` names a registered staff member), numbers it
with the terminal's command counter, signs it and publishes it. Configuration is kept per
department and per device (a device's own value wins); every change makes a new document, with
a version from one hub-wide counter, for each terminal it reaches, published retained.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hub.db import Database
from hub.errors import RegistryError
from hub.identity import HubKeys
from protocol import Channel, Command, CommandName, ConfigDoc, encode_command, encode_config, topic
from protocol.config import REMOTE_SETTINGS, SETTING_NAME
from protocol.topics import QOS, RETAINED
from runtime.link import Broker, Client, LinkDown, LinkUp

__all__ = [
    "Publication",
    "config_documents",
    "devices_of",
    "next_command",
    "publish",
    "set_config",
]


@dataclass(frozen=True, slots=True)
class Publication:
    topic: str
    payload: bytes
    qos: int
    retain: bool


def _live_device(db: Database, device: str) -> str:
    """The department of a registered terminal whose key is not revoked; RegistryError if not."""
    row = db.execute("SELECT department, revoked_ms FROM devices WHERE id = ?", (device,)).fetchone()
    if row is None:
        raise RegistryError(f"device {device} is not registered at this hub")
    if row[1] is not None:
        raise RegistryError(f"device {device} is revoked (replaced or unpaired)")
    return str(row[0])


def next_command(
    db: Database,
    keys: HubKeys,
    device: str,
    cmd: CommandName,
    *,
    staff: str | None = None,
    ticket: str | None = None,
    ref: str | None = None,
    now_ms: int,
) -> Publication:
    """A signed command for `device`, with the next value of its counter (a write function)."""
    db.require_transaction("control writes")
    _live_device(db, device)
    if cmd is CommandName.LOGIN:
        if staff is None or db.execute("SELECT 1 FROM staff WHERE id = ?", (staff,)).fetchone() is None:
            raise RegistryError(f"staff {staff!r} is not registered: a login names a registered staff member")
    elif staff is not None:
        raise RegistryError("only login names a staff member")
    if ticket is not None and cmd is not CommandName.INVITE:
        raise RegistryError("only invite carries a ticket")
    db.execute("UPDATE devices SET cmd_n = cmd_n + 1 WHERE id = ?", (device,))
    n = int(db.execute("SELECT cmd_n FROM devices WHERE id = ?", (device,)).fetchone()[0])
    command = Command(device=device, cmd=cmd, staff=staff, ticket=ticket, id=ref, n=n, t=now_ms)
    return Publication(topic(device, Channel.CMD), encode_command(command, keys.sign), QOS[Channel.CMD], False)


def set_config(
    db: Database, scope: str, target: str, assignments: Sequence[str], *, unset: Sequence[str] = (), now_ms: int
) -> None:
    """Set (NAME=VALUE) or unset settings of a department or a device (a write function)."""
    db.require_transaction("control writes")
    if scope not in ("department", "device"):
        raise RegistryError(f"scope {scope!r} is not department or device")
    if scope == "device":
        _live_device(db, target)
    elif db.execute("SELECT 1 FROM devices WHERE department = ? LIMIT 1", (target,)).fetchone() is None:
        raise RegistryError(f"no terminal stands in department {target!r}")
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        name = name.strip()
        if not sep:
            raise RegistryError(f"{assignment!r} is not NAME=VALUE")
        _check_name(name)
        if not value.isprintable() or len(value) > 512:
            raise RegistryError(f"the value of {name} must be printable text of at most 512 characters")
        db.execute("DELETE FROM config_settings WHERE scope = ? AND target = ? AND name = ?", (scope, target, name))
        db.execute(
            "INSERT INTO config_settings(scope, target, name, value, set_ms) VALUES (?, ?, ?, ?, ?)",
            (scope, target, name, value, now_ms),
        )
    for name in unset:
        _check_name(name)
        db.execute("DELETE FROM config_settings WHERE scope = ? AND target = ? AND name = ?", (scope, target, name))


def _check_name(name: str) -> None:
    if SETTING_NAME.fullmatch(name) is None or name not in REMOTE_SETTINGS:
        raise RegistryError(f"{name!r} is not a setting the hub can send; these are: {', '.join(REMOTE_SETTINGS)}")


def config_documents(db: Database, keys: HubKeys, devices: Sequence[str], now_ms: int) -> list[Publication]:
    """A new signed configuration document for each of `devices` (a write function: it takes
    versions from the hub's counter and records them per device)."""
    db.require_transaction("control writes")
    publications = []
    for device in devices:
        department = _live_device(db, device)
        settings: dict[str, str] = {}
        for scope, target in (("department", department), ("device", device)):
            rows = db.execute(
                "SELECT name, value FROM config_settings WHERE scope = ? AND target = ?", (scope, target)
            ).fetchall()
            settings.update({str(name): str(value) for name, value in rows})
        version = _next_counter(db, "config")
        db.execute("UPDATE devices SET config_version = ? WHERE id = ?", (version, device))
        doc = ConfigDoc(device=device, version=version, t=now_ms, settings=settings)
        publications.append(
            Publication(
                topic(device, Channel.CONFIG),
                encode_config(doc, keys.sign),
                QOS[Channel.CONFIG],
                Channel.CONFIG in RETAINED,
            )
        )
    return publications


def devices_of(db: Database, scope: str, target: str) -> list[str]:
    if scope == "device":
        return [target]
    rows = db.execute(
        "SELECT id FROM devices WHERE department = ? AND revoked_ms IS NULL ORDER BY id", (target,)
    ).fetchall()
    return [str(row[0]) for row in rows]


def _next_counter(db: Database, name: str) -> int:
    row = db.execute("SELECT value FROM hub_counters WHERE name = ?", (name,)).fetchone()
    value = 1 if row is None else int(row[0]) + 1
    if row is None:
        db.execute("INSERT INTO hub_counters(name, value) VALUES (?, ?)", (name, value))
    else:
        db.execute("UPDATE hub_counters SET value = ? WHERE name = ?", (value, name))
    return value


def publish(broker: Broker, client_id: str, publications: Sequence[Publication], timeout_s: float = 10.0) -> None:
    """Publish through a short connection of its own; TimeoutError if the broker cannot be reached."""
    events: queue.Queue[object] = queue.Queue()
    link = broker.connect(Client(client_id=client_id, on_event=events.put, subscriptions=[], clean_start=True))
    link.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                event = events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no connection to the broker {broker} within {timeout_s:g} s") from None
            if isinstance(event, LinkUp):
                break
            if isinstance(event, LinkDown) and time.monotonic() >= deadline:
                raise TimeoutError(f"no connection to the broker {broker}: {event.reason}")
        for item in publications:
            if not link.publish(item.topic, item.payload, qos=item.qos, retain=item.retain):
                raise TimeoutError(f"the broker {broker} dropped the connection while publishing")
    finally:
        link.stop()
