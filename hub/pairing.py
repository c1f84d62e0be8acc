"""Pairing at the hub: technicians, their credentials, and the terminals they pair, unpair and replace.

Write functions of the writer's connection (`Writer.write`, like hub.registry), and the checks that
say beforehand whether a write would be taken (read functions: they run on a reader's connection,
or inside a write). `pingjia tech ...` (pingjia/tech.py) runs them around the technician console:
it checks, has the terminal take the pairing, then writes.

- A technician is registered once (`add_technician`), and may be revoked. The hub issues a
  technician a credential good for some hours (`issue_tech_credential`), signed with its key;
  terminals check it with the hub key they pinned, the tool at the hub with the hub's key and this
  register.
- A paired terminal is a row of `devices` (`paired_by` names the technician) and a broker account
  named after its device id (hub.brokerconf; its password goes to the terminal, only its hash is
  kept). Pairing the same terminal (same key) again gives it a new password and takes it back from
  an unpair; another key under a registered id is refused: a new terminal takes an old one's place
  through `replace`.
- `unpair` revokes the terminal's key (`devices.revoked_ms`) and its broker account; `replace`
  registers the new terminal at the old one's department and counter and revokes the old one
  (`replaced_by`, `revoked_ms`). Records the hub places before a revocation stay valid.
- Each of these leaves a line in the terminal's events (`pingjia hub devices`): who did what, when.

The `devices` table has no site: the site is the hall a hub serves, given to the terminal only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from hub import brokerconf, directory
from hub.db import Database
from hub.errors import HubError, RegistryError
from hub.identity import HubKeys
from hub.registry import check_device
from protocol import AuthError, Reason, VerifyKey
from protocol import console as wire

__all__ = [
    "MAX_CREDENTIAL_HOURS",
    "BrokerAccount",
    "PairingError",
    "Placement",
    "accept_credential",
    "add_commands",
    "add_technician",
    "check_pairable",
    "check_replaceable",
    "check_technician",
    "clerk_of",
    "issue_tech_credential",
    "register_paired",
    "replace",
    "revoke_technician",
    "unpair",
]

MAX_CREDENTIAL_HOURS: Final = 24 * 7
_HOUR_MS: Final = 3_600_000
_MAX_NAME_CHARS: Final = 64  # a technician's name: what a credential's `tech` may be


class PairingError(RegistryError):
    """A technician, credential, pairing, unpairing or replacement the hub does not take."""


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    """A terminal's broker account; `password` is given once, to the terminal, and not kept here."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a terminal being replaced stood, and who was logged in at it."""

    department: str
    counter: str
    clerk: str | None


# -- technicians -----------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME_CHARS or not name.isprintable():
        raise PairingError(f"technician name {name!r} must be 1..64 printable characters")


def add_technician(db: Database, name: str, now_ms: int) -> None:
    """Register technician `name` (UTC ms `now_ms`); one that was revoked is active again."""
    _check_name(name)
    db.require_transaction("pairing writes")
    row = db.execute("SELECT revoked_ms FROM technicians WHERE name = ?", (name,)).fetchone()
    if row is None:
        db.execute("INSERT INTO technicians(name, added_ms) VALUES (?, ?)", (name, now_ms))
    elif row[0] is not None:
        db.execute("UPDATE technicians SET revoked_ms = NULL, added_ms = ? WHERE name = ?", (now_ms, name))


def revoke_technician(db: Database, name: str, now_ms: int) -> None:
    """Revoke technician `name` from `now_ms` on: the tool refuses their credentials at once.

    (Terminals cannot tell, having no line to the hub's register: a credential's hours bound that.)
    PairingError if there is no such technician; revoking again keeps the first revocation.
    """
    db.require_transaction("pairing writes")
    db.execute("UPDATE technicians SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL", (now_ms, name))
    if db.execute("SELECT 1 FROM technicians WHERE name = ?", (name,)).fetchone() is None:
        raise PairingError(f"there is no technician {name!r} at this hub")


def check_technician(db: Database, name: str) -> None:
    """PairingError unless `name` is a registered technician who is not revoked (a read)."""
    row = db.execute("SELECT revoked_ms FROM technicians WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise PairingError(f"there is no technician {name!r} at this hub (pingjia hub add-technician)")
    if row[0] is not None:
        raise PairingError(f"technician {name!r} was revoked at {row[0]}")


def issue_tech_credential(keys: HubKeys, name: str, hours: int, now_ms: int) -> bytes:
    """A credential for technician `name`, good for `hours` (1..MAX_CREDENTIAL_HOURS) from `now_ms`
    (UTC ms), signed with the hub's key: canonical JSON. Check the technician first
    (`check_technician`): this only signs."""
    _check_name(name)
    if type(hours) is not int or not 1 <= hours <= MAX_CREDENTIAL_HOURS:
        raise PairingError(f"a credential is good for 1..{MAX_CREDENTIAL_HOURS} hours, not {hours!r}")
    return wire.issue_credential(keys.sign, name, now_ms + hours * _HOUR_MS)


def accept_credential(db: Database, raw: bytes, hub_sign: VerifyKey, now_ms: int) -> wire.TechCredential:
    """The credential in `raw` if this hub (its key `hub_sign`) issued it, it has not expired at
    `now_ms` (UTC ms), and its technician is registered and not revoked (a read); PairingError
    saying which is not so."""
    try:
        credential = wire.decode_credential(raw)
    except wire.ConsoleError as exc:
        raise PairingError(f"not a technician credential: {exc.detail}") from None
    try:
        wire.verify_credential(credential, hub_sign, now_ms)
    except AuthError as exc:
        if exc.reason is Reason.STALE:
            raise PairingError(f"the credential of {credential.tech} has expired; ask the hub for a new one") from None
        raise PairingError(f"the credential was not issued by this hub: {exc.detail}") from None
    check_technician(db, credential.tech)
    return credential


# -- terminals -------------------------------------------------------------------------------------


def check_pairable(db: Database, device: str, pubkey: str) -> None:
    """PairingError unless `register_paired` would take this terminal (a read)."""
    try:
        check_device(device, pubkey)
        brokerconf.check_broker_user(device, role="terminal", device=device)
    except RegistryError as exc:
        raise PairingError(str(exc)) from None
    row = db.execute("SELECT pubkey, replaced_by FROM devices WHERE id = ?", (device,)).fetchone()
    if row is None:
        return
    if row[1] is not None:
        raise PairingError(f"terminal {device} was replaced by {row[1]}; it cannot be paired again")
    if row[0] != pubkey:
        raise PairingError(
            f"terminal {device} is registered with another key; a new terminal takes its place through "
            f"`pingjia tech replace --old {device}`"
        )


def register_paired(
    db: Database,
    *,
    device: str,
    pubkey: str,
    site: str,
    department: str,
    counter: str,
    tech: str,
    now_ms: int,
    password: str | None = None,
) -> BrokerAccount:
    """Register terminal `device` with key `pubkey` at `department` and `counter`, paired by `tech`
    at `now_ms` (UTC ms), and give it a broker account (`password`, or a new one).

    The same terminal paired again keeps its row, takes the new placement and a new password, and
    is active again if it was unpaired. PairingError as `check_pairable` says.
    """
    db.require_transaction("pairing writes")
    check_pairable(db, device, pubkey)
    check_technician(db, tech)
    directory.lock(db)  # before the terminal's row: the order ingest takes them in
    known = db.execute("SELECT counter FROM devices WHERE id = ?", (device,)).fetchone()
    if known is None:
        db.execute(
            "INSERT INTO devices(id, pubkey, department, counter, added_ms, paired_by) VALUES (?, ?, ?, ?, ?, ?)",
            (device, pubkey, department, counter, now_ms, tech),
        )
        if counter:
            directory.set_placement(db, device, counter)  # from the beginning: nothing of it is stored yet
    else:
        db.execute(
            "UPDATE devices SET department = ?, paired_by = ?, revoked_ms = NULL WHERE id = ?",
            (department, tech, device),
        )
        if known[0] != counter:  # moved to another counter: from the day of this pairing on (UTC)
            day = datetime.fromtimestamp(now_ms / 1000, UTC).date().isoformat()
            directory.set_placement(db, device, counter or None, first_day=day)
    account = _broker_account(db, device, password)
    where = f"{department}/{counter}" + (f" at {site}" if site else "")
    _event(db, device, now_ms, "paired", f"paired by technician {tech}, {where}")
    return account


def unpair(db: Database, device: str, now_ms: int, tech: str) -> None:
    """Revoke terminal `device`'s key from `now_ms` (UTC ms) on, and its broker account.

    PairingError if the hub does not know the terminal; unpairing one that is revoked already keeps
    its first revocation.
    """
    db.require_transaction("pairing writes")
    check_technician(db, tech)
    row = db.execute("SELECT revoked_ms FROM devices WHERE id = ?", (device,)).fetchone()
    if row is None:
        raise PairingError(f"terminal {device} is not registered at this hub")
    db.execute("UPDATE devices SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL", (now_ms, device))
    _close_account(db, device, now_ms)
    _event(db, device, now_ms, "unpaired", f"unpaired by technician {tech}")


def check_replaceable(db: Database, old: str, new_device: str, new_pubkey: str) -> Placement:
    """Where terminal `old` stands and who is logged in at it, if `replace` would put `new_device`
    there (a read); PairingError if not."""
    row = db.execute("SELECT department, counter, replaced_by FROM devices WHERE id = ?", (old,)).fetchone()
    if row is None:
        raise PairingError(f"terminal {old} is not registered at this hub")
    if row[2] is not None:
        raise PairingError(f"terminal {old} was replaced by {row[2]} already")
    if new_device == old:
        raise PairingError(f"terminal {old} cannot replace itself: pair it again with `pingjia tech pair`")
    check_pairable(db, new_device, new_pubkey)
    return Placement(department=str(row[0]), counter=str(row[1]), clerk=clerk_of(db, old))


def replace(  # noqa: PLR0917 - called positionally through Writer.write, as its callers expect
    db: Database,
    old: str,
    new_device: str,
    new_pubkey: str,
    tech: str,
    now_ms: int,
    *,
    password: str | None = None,
) -> BrokerAccount:
    """Put terminal `new_device` (key `new_pubkey`) where `old` stood (its department and counter),
    paired by `tech` at `now_ms` (UTC ms); revoke `old` (its key from `now_ms` on, unless it was
    revoked earlier, and its broker account) and name its successor. The new terminal's account is
    returned (`password`, or a new one). `old`'s records stay valid; its row keeps its placement,
    for the history. PairingError as `check_replaceable` says."""
    db.require_transaction("pairing writes")
    placement = check_replaceable(db, old, new_device, new_pubkey)
    account = register_paired(
        db,
        device=new_device,
        pubkey=new_pubkey,
        site="",
        department=placement.department,
        counter=placement.counter,
        tech=tech,
        now_ms=now_ms,
        password=password,
    )
    db.execute(
        "UPDATE devices SET replaced_by = ?, revoked_ms = coalesce(revoked_ms, ?) WHERE id = ?",
        (new_device, now_ms, old),
    )
    _close_account(db, old, now_ms)
    _event(db, old, now_ms, "replaced", f"replaced by {new_device} (technician {tech})")
    return account


def clerk_of(db: Database, device: str) -> str | None:
    """The clerk logged in at `device` by its latest health, if any (a read)."""
    row = db.execute("SELECT health FROM devices WHERE id = ?", (device,)).fetchone()
    if row is None or not row[0]:
        return None
    try:
        health = json.loads(row[0])
    except ValueError:
        return None
    staff = health.get("staff") if isinstance(health, dict) else None
    return staff if isinstance(staff, str) and staff else None


def _broker_account(db: Database, device: str, password: str | None) -> BrokerAccount:
    secret = password or brokerconf.new_password()
    brokerconf.add_broker_user(db, device, brokerconf.hash_password(secret), role="terminal", device=device)
    return BrokerAccount(username=device, password=secret)


def _close_account(db: Database, device: str, now_ms: int) -> None:
    if db.execute("SELECT 1 FROM broker_users WHERE username = ?", (device,)).fetchone() is not None:
        brokerconf.revoke_broker_user(db, device, now_ms)


def _event(db: Database, device: str, now_ms: int, kind: str, detail: str) -> None:
    db.execute(
        "INSERT INTO device_events(device, at_ms, t_device, kind, detail) VALUES (?, ?, ?, ?, ?)",
        (device, now_ms, now_ms, kind, detail),
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- `pingjia hub add-technician`, `revoke-technician`, `tech-credential` ---------------------------


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the technician commands to `pingjia hub`'s subcommands."""
    from hub.identity import default_path

    add = sub.add_parser("add-technician", help="register a technician (who may pair terminals)")
    _add_db(add)
    add.add_argument("--name", required=True)
    add.set_defaults(func=_add_technician)

    revoke = sub.add_parser("revoke-technician", help="revoke a technician: the hub takes none of their credentials")
    _add_db(revoke)
    revoke.add_argument("--name", required=True)
    revoke.set_defaults(func=_revoke_technician)

    issue = sub.add_parser(
        "tech-credential", help="sign a technician's credential (JSON on stdout: save it to a file for `pingjia tech`)"
    )
    _add_db(issue)
    issue.add_argument("--name", required=True)
    issue.add_argument("--hours", type=int, default=8, help=f"good for this long (1..{MAX_CREDENTIAL_HOURS})")
    issue.add_argument(
        "--hub-key", default=str(default_path()), help="the hub's key file (default $PINGJIA_HUB_KEY, else var/hub.key)"
    )
    issue.set_defaults(func=_tech_credential)


def _add_db(parser: argparse.ArgumentParser) -> None:
    from hub.cli import _add_db as add_db

    add_db(parser)


def _say(document: dict[str, Any]) -> int:
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    return 0


def _fail(command: str, error: Exception) -> int:
    sys.stderr.write(f"pingjia hub {command}: {error}\n")
    return 2


def _add_technician(args: argparse.Namespace) -> int:
    from hub.writer import Writer

    now = _now_ms()
    try:
        _check_name(args.name)
        with Writer.open(args.db) as writer:
            writer.write(add_technician, args.name, now)
    except HubError as exc:
        return _fail("add-technician", exc)
    return _say({"technician": args.name, "added_ms": now})


def _revoke_technician(args: argparse.Namespace) -> int:
    from hub.writer import Writer

    now = _now_ms()
    try:
        with Writer.open(args.db) as writer:
            writer.write(revoke_technician, args.name, now)
    except HubError as exc:
        return _fail("revoke-technician", exc)
    return _say({"technician": args.name, "revoked_ms": now})


def _tech_credential(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hub import identity
    from hub.queries import Reader

    now = _now_ms()
    try:
        keys = identity.load(Path(args.hub_key))
        with Reader.open(args.db) as reader:
            check_technician(reader.db, args.name)
        credential = issue_tech_credential(keys, args.name, args.hours, now)
    except HubError as exc:
        return _fail("tech-credential", exc)
    sys.stdout.write(credential.decode("utf-8") + "\n")
    return 0
