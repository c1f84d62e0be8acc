"""The registry: which terminals (and their keys) and which staff members this hub knows.

Write functions of the writer's connection, run inside its transaction (`Writer.write`), by `pingjia
hub add-device` / `add-staff`, the demo, the simulator and tests alike. The `check_*` functions
say what is wrong with a registration before anything is opened.
"""

from __future__ import annotations

import time

from hub import directory
from hub.db import Database
from hub.errors import RegistryError
from protocol import DecodeError, VerifyKey, valid_device_id

# Broker account names of the hub and of claims: no terminal may take one as its device id.
RESERVED_PREFIXES = {"pingjia-hub": "hub accounts", "claim-": "claim accounts"}

__all__ = ["RESERVED_PREFIXES", "add_device", "add_staff", "check_device", "check_staff"]


def check_device(device: str, pubkey: str) -> None:
    """RegistryError unless `device` is a valid id and `pubkey` an Ed25519 public key (64 hex digits)."""
    if not valid_device_id(device):
        raise RegistryError(f"device id {device!r} must be 1..64 of [A-Za-z0-9_.-]")
    for prefix, kept_for in RESERVED_PREFIXES.items():
        if device.startswith(prefix):
            raise RegistryError(f"device id {device!r}: names starting {prefix!r} are kept for the {kept_for}")
    try:
        VerifyKey.from_hex(pubkey)
    except (DecodeError, ValueError) as exc:  # not hex, not 32 bytes; ValueError: refused by cryptography
        raise RegistryError(f"public key of {device} is not an Ed25519 key: {exc}") from exc


def check_staff(staff: str, department: str) -> None:
    if not staff or len(staff) > 64 or not staff.isprintable():
        raise RegistryError(f"staff id {staff!r} must be 1..64 printable characters")
    if not department:
        raise RegistryError(f"staff {staff} needs a department")


def add_device(
    db: Database, device: str, pubkey: str, *, department: str = "", counter: str = "", since: str | None = None
) -> None:
    """Register a terminal or change its department/counter; its key may not change silently.

    A new terminal stands at `counter` from the beginning; a terminal moved to another counter
    stands there from `since` (default: today, UTC), and its ratings of those days move with it
    (hub.directory.set_placement).
    """
    check_device(device, pubkey)
    directory.lock(db)  # before any row of devices: the order ingest takes them in
    row = db.execute("SELECT pubkey, counter FROM devices WHERE id = ?", (device,)).fetchone()
    if row is None:
        db.execute(
            "INSERT INTO devices(id, pubkey, department, counter, added_ms) VALUES (?, ?, ?, ?, ?)",
            (device, pubkey, department, counter, _now_ms()),
        )
        if counter:
            directory.set_placement(db, device, counter, first_day=since or directory.BEGINNING)
        return
    if row[0] != pubkey:
        raise RegistryError(f"device {device} is registered with another key; re-pairing replaces keys")
    db.execute("UPDATE devices SET department = ? WHERE id = ?", (department, device))
    if row[1] != counter:
        directory.set_placement(db, device, counter or None, first_day=since or directory.today())


def add_staff(db: Database, staff: str, *, name: str = "", department: str, since: str | None = None) -> None:
    """Register a staff member in a unit (made a top-level department if the directory does not
    have it), or move them to another unit.

    A new staff member belongs there from the beginning, so that ratings stored before they were
    known follow; a move to another unit takes effect from `since` (default: today, UTC), and their
    ratings of those days move with it (hub.directory.set_membership).
    """
    check_staff(staff, department)
    directory.lock(db)
    if db.execute("SELECT 1 FROM units WHERE id = ?", (department,)).fetchone() is None:
        directory.set_unit(db, department, parent=None, kind="department", name=department)
    known = db.execute("SELECT department FROM staff WHERE id = ?", (staff,)).fetchone()
    status = db.execute("SELECT status, photo FROM staff WHERE id = ?", (staff,)).fetchone()
    directory.set_staff(
        db,
        staff,
        name=name,
        status="active" if status is None else status[0],
        photo="" if status is None else status[1],
    )
    if known is None:
        directory.set_membership(db, staff, department)
    elif known[0] != department:
        directory.set_membership(db, staff, department, first_day=since or directory.today())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
