"""The directory as CSV files, in and out: `pingjia hub directory export|import FOLDER`.

A folder holds up to five files, each with a header line (UTF-8, a BOM is accepted):

- `units.csv`: id, parent, kind, name, timezone, opening. The tree; a unit with no parent is a site.
- `staff.csv`: id, name, status (active, left), photo. A photo is a PNG or JPEG file of at most
  48 KiB (the clerk's card, hub.cards); a relative path is taken from the folder of the files and
  stored as a full path, so that the hub finds it from wherever it runs. A photo that cannot be
  read, or is too big or not an image, is a bad row (the terminal would show no photo).
- `counters.csv`: id, unit, name.
- `memberships.csv`: staff, unit, first_day, last_day. The whole history of each staff member it
  names (an empty last_day: still); staff it does not name keep theirs.
- `placements.csv`: device, counter, first_day, last_day. The same, for terminals at counters.

Import is idempotent: it changes only what differs, and importing the same files twice changes
nothing the second time. Rows are upserted, never deleted (a leaver gets status `left`; their
history stays). The whole import is one transaction: a bad row (named by file and line) refuses
all of it. `--dry-run` does everything, then rolls back, and lists what would change, with how many
stored ratings each change of a history would move.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub import directory
from hub.cards import check_photo
from hub.db import Database
from hub.directory import Period
from hub.errors import RegistryError
from hub.queries import Reader
from hub.writer import Writer

__all__ = ["COLUMNS", "Plan", "export", "import_folder"]

COLUMNS = {
    "units": ("id", "parent", "kind", "name", "timezone", "opening"),
    "staff": ("id", "name", "status", "photo"),
    "counters": ("id", "unit", "name"),
    "memberships": ("staff", "unit", "first_day", "last_day"),
    "placements": ("device", "counter", "first_day", "last_day"),
}
_MAX_ROWS = 1_000_000


@dataclass
class Plan:
    """What an import changed (or, in a dry run, would change)."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    ratings_moved: int = 0
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "changes": self.changes, "ratings_moved": self.ratings_moved}


class _DryRun(Exception):
    pass


def import_folder(writer: Writer, folder: Path, *, dry_run: bool = False) -> Plan:
    """Import the directory files in `folder` (see the module's text) in one transaction.

    RegistryError naming the file and line of the first bad row, or a folder with none of the files.
    """
    tables = {name: _read(folder / f"{name}.csv", COLUMNS[name]) for name in COLUMNS}
    if not any(rows is not None for rows in tables.values()):
        raise RegistryError(f"{folder}: none of {', '.join(f'{n}.csv' for n in COLUMNS)} is there")
    for _line, row in tables["staff"] or []:
        if row["photo"]:
            row["photo"] = str(Path(folder, row["photo"]).absolute())  # an absolute path stays as it is
    plan = Plan(dry_run=dry_run)

    def run(db: Database) -> None:
        _apply(db, tables, plan)
        if dry_run:
            raise _DryRun

    with contextlib.suppress(_DryRun):
        writer.write(run)
    return plan


def _read(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]] | None:
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot be read as UTF-8 text: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = tuple(reader.fieldnames or ())
    missing = [c for c in columns if c not in header]
    if missing:
        raise RegistryError(f"{path}: the header lacks {', '.join(missing)} (wanted {', '.join(columns)})")
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for row in reader:
            if len(rows) >= _MAX_ROWS:
                raise RegistryError(f"{path}: more than {_MAX_ROWS} rows")
            if None in row or any(value is None for value in row.values()):
                raise RegistryError(f"{path}:{reader.line_num}: the row has another number of fields than the header")
            rows.append((reader.line_num, {c: row[c].strip() for c in columns}))
    except csv.Error as exc:
        raise RegistryError(f"{path}:{reader.line_num}: {exc}") from None
    return rows


def _apply(db: Database, tables: dict[str, list[tuple[int, dict[str, str]]] | None], plan: Plan) -> None:
    directory.lock(db)
    for name, apply_one in (("units", _unit), ("staff", _staff), ("counters", _counter)):
        rows = tables[name]
        for line, row in _ordered_units(rows) if name == "units" else (rows or []):
            _at(name, line, apply_one, db, row=row, plan=plan)
    for name in ("memberships", "placements"):
        rows = tables[name]
        if rows is None:
            continue
        histories: dict[str, list[Period]] = {}
        lines: dict[str, int] = {}
        key_column, value_column = COLUMNS[name][0], COLUMNS[name][1]
        for line, row in rows:
            key = row[key_column]
            lines.setdefault(key, line)
            histories.setdefault(key, []).append(
                Period(row["first_day"] or directory.BEGINNING, row["last_day"] or None, row[value_column])
            )
        for key, periods in histories.items():
            _at(name, lines[key], _history, db, row=(name, key, periods), plan=plan)


def _at(name: str, line: int, fn: Callable[[Database, Any, Plan], None], db: Database, *, row: Any, plan: Plan) -> None:
    try:
        fn(db, row, plan)
    except RegistryError as exc:
        raise RegistryError(f"{name}.csv:{line}: {exc}") from None


def _ordered_units(rows: list[tuple[int, dict[str, str]]] | None) -> Iterator[tuple[int, dict[str, str]]]:
    """Parents before their children, whatever order the file lists them in."""
    pending = list(rows or [])
    done: set[str] = set()
    named = {row["id"] for _line, row in pending}
    while pending:
        ready = [
            (line, row)
            for line, row in pending
            if not row["parent"] or row["parent"] in done or row["parent"] not in named
        ]
        if not ready:
            names = ", ".join(row["id"] for _line, row in pending)
            raise RegistryError(f"units.csv:{pending[0][0]}: units {names} are inside each other (a cycle)")
        for item in ready:
            yield item
            done.add(item[1]["id"])
            pending.remove(item)


def _unit(db: Database, row: dict[str, str], plan: Plan) -> None:
    before = db.execute("SELECT parent, kind, name, timezone, opening FROM units WHERE id = ?", (row["id"],)).fetchone()
    after = (row["parent"] or None, row["kind"], row["name"], row["timezone"], row["opening"])
    if before is not None and tuple(before) == after:
        return
    directory.set_unit(
        db,
        row["id"],
        parent=after[0],
        kind=row["kind"],
        name=row["name"],
        timezone=row["timezone"],
        opening=row["opening"],
    )
    plan.changes.append(_change("unit", row["id"], COLUMNS["units"][1:], before, after))


def _staff(db: Database, row: dict[str, str], plan: Plan) -> None:
    before = db.execute("SELECT name, status, photo FROM staff WHERE id = ?", (row["id"],)).fetchone()
    after = (row["name"], row["status"] or "active", row["photo"])
    check_photo(after[2])
    if before is not None and tuple(before) == after:
        return
    directory.set_staff(db, row["id"], name=after[0], status=after[1], photo=after[2])
    plan.changes.append(_change("staff", row["id"], COLUMNS["staff"][1:], before, after))


def _counter(db: Database, row: dict[str, str], plan: Plan) -> None:
    before = db.execute("SELECT unit, name FROM counters WHERE id = ?", (row["id"],)).fetchone()
    after = (row["unit"], row["name"])
    if before is not None and tuple(before) == after:
        return
    directory.set_counter(db, row["id"], unit=row["unit"], name=row["name"])
    plan.changes.append(_change("counter", row["id"], COLUMNS["counters"][1:], before, after))


def _history(db: Database, item: tuple[str, str, list[Period]], plan: Plan) -> None:
    table, key, periods = item
    before = directory.history(db, table, key)
    if table == "memberships" and db.execute("SELECT 1 FROM staff WHERE id = ?", (key,)).fetchone() is None:
        raise RegistryError(f"staff {key} is neither in staff.csv nor in the directory")
    moved = directory.replace_history(db, table, key, periods)
    after = directory.history(db, table, key)
    if after == before:
        return
    plan.ratings_moved += moved
    plan.changes.append(
        {
            "what": "membership" if table == "memberships" else "placement",
            "id": key,
            "before": [_period(p) for p in before],
            "after": [_period(p) for p in after],
            "ratings_moved": moved,
        }
    )


def _period(period: Period) -> str:
    return f"{period.first_day}..{period.last_day or ''} {period.value}"


def _change(
    what: str, key: str, names: tuple[str, ...], before: tuple[Any, ...] | None, after: tuple[Any, ...]
) -> dict[str, Any]:
    if before is None:
        return {"what": what, "id": key, "added": dict(zip(names, after, strict=True))}
    fields = {n: [b, a] for n, b, a in zip(names, before, after, strict=True) if b != a}
    return {"what": what, "id": key, "changed": fields}


def export(reader: Reader, folder: Path) -> dict[str, int]:
    """Write the directory as the five CSV files into `folder` (made if missing); {file: rows}."""
    folder.mkdir(parents=True, exist_ok=True)
    queries = {
        "units": "SELECT id, coalesce(parent, ''), kind, name, timezone, opening FROM units ORDER BY id",
        "staff": "SELECT id, name, status, photo FROM staff ORDER BY id",
        "counters": "SELECT id, unit, name FROM counters ORDER BY id",
        "memberships": "SELECT staff, unit, first_day, coalesce(last_day, '') FROM memberships "
        "ORDER BY staff, first_day",
        "placements": "SELECT device, counter, first_day, coalesce(last_day, '') FROM placements "
        "ORDER BY device, first_day",
    }
    written = {}
    for name, sql in queries.items():
        rows = reader.execute(sql).fetchall()
        path = folder / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            table = csv.writer(out, lineterminator="\n")
            table.writerow(COLUMNS[name])
            table.writerows(rows)
        written[path.name] = len(rows)
    return written
