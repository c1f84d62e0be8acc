"""Every query the hub's readers make, on a read-only connection of their own.

Reports, the audit, `pingjia hub devices`, `pingjia hub rejects`, and the simulator's live counts
and checks read through a `Reader`; none of them can write (hub.db opens it read-only), create a
database, or migrate one: a database that is missing, or at another schema version than this
pingjia's, is refused with a message saying so (hub.schema). The writer's SQL is in hub.store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any

from hub import rollups, schema
from hub.db import Cursor, Database, open_database
from hub.policy import EXCLUSIONS, Policy
from hub.rows import DEVICE_COLUMNS, Bucket, DeviceEntry

__all__ = ["Reader"]

# What the policy made of a key's cells (Reader.tallies): (row key, unit, counted presses per level
# 1..5, unanswered invitations kept, records left out per EXCLUSIONS).
Tally = tuple[str, str, tuple[int, ...], int, tuple[int, ...]]


def _conditions(policy: Policy) -> list[tuple[str | None, str, list[str]]]:
    """When `policy` keeps a roll-up's row, by the marks in its flags, and when each exclusion
    leaves it out (the first that applies, in EXCLUSIONS order): (None for kept, else the reason;
    an SQL condition; its LIKE patterns in placeholder order). An exclusion the policy does not
    apply has none."""
    active = [reason for reason in EXCLUSIONS if policy.excluded_by(reason)]
    kept = f"(flags = '' OR ({' AND '.join(['flags NOT LIKE ?'] * len(active))}))" if active else "1 = 1"
    found: list[tuple[str | None, str, list[str]]] = [(None, kept, [f"%{reason}%" for reason in active])]
    for reason in active:
        earlier = active[: active.index(reason)]
        condition = "flags != '' AND flags LIKE ?" + " AND flags NOT LIKE ?" * len(earlier)
        found.append((reason, condition, [f"%{reason}%", *(f"%{e}%" for e in earlier)]))
    return found


def _judged(policy: Policy) -> tuple[str, list[str]]:
    """SQL sums of a roll-up's cells as `policy` judges them: presses counted per level 1..5,
    unanswered invitations kept, then the cells each exclusion leaves out, and their parameters."""
    (_kept, kept, kept_params), *excluding = _conditions(policy)
    columns, params = [], []
    for level in range(1, 6):
        columns.append(f"sum(CASE WHEN kind != 'timeout' AND score = {level} AND {kept} THEN n ELSE 0 END)")
        params += kept_params
    columns.append(f"sum(CASE WHEN kind = 'timeout' AND {kept} THEN n ELSE 0 END)")
    params += kept_params
    conditions = {reason: (condition, like) for reason, condition, like in excluding}
    for reason in EXCLUSIONS:
        if reason not in conditions:
            columns.append("0")
            continue
        columns.append(f"sum(CASE WHEN {conditions[reason][0]} THEN n ELSE 0 END)")
        params += conditions[reason][1]
    return ", ".join(columns), params


def _judged_levels(policy: Policy, seen: Sequence[str]) -> tuple[str, list[str]]:
    """`_judged` for a table with the levels side by side (n0: unanswered invitations, n1..n5).

    The flags values `seen` are judged here, once each, and matched in SQL by equality, which costs
    no more than a plain sum; a value not among them is judged in SQL by its marks: `seen` makes it
    fast, never different. (PostgreSQL's sum of a bigint is a numeric: cast back, so that Python
    gets ints on both.)"""
    verdicts = [(flags, policy.excluded_by(flags)) for flags in dict.fromkeys(seen)]
    conditions = {reason: (condition, like) for reason, condition, like in _conditions(policy)}

    def summed(verdict: str | None, then: str) -> tuple[str, list[str]]:
        """`then` for the flags values seen and judged `verdict`, 0 for the others seen, and for a
        value not seen, `then` if its marks say `verdict`."""
        condition, like = conditions[verdict]
        fallback = f"CASE WHEN {condition} THEN {then} ELSE 0 END"
        if not verdicts:
            return f"CAST(sum({fallback}) AS BIGINT)", like
        whens = "".join(f" WHEN ? THEN {then if judged == verdict else 0}" for _flags, judged in verdicts)
        return f"CAST(sum(CASE flags{whens} ELSE {fallback} END) AS BIGINT)", [f for f, _j in verdicts] + like

    columns, params = [], []
    for verdict, then in [
        *((None, f"n{score}") for score in (1, 2, 3, 4, 5, 0)),
        *((r, _ALL_LEVELS) for r in EXCLUSIONS),
    ]:
        if verdict not in conditions:
            columns.append("0")
            continue
        column, column_params = summed(verdict, then)
        columns.append(column)
        params += column_params
    return ", ".join(columns), params


def _whole_months(first: date, last: date) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """Days first..last as (first month, last month) of the whole months in it, or None, and the
    ranges of days around them, ISO text."""
    start = first if first.day == 1 else (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    end_next = (
        (last + timedelta(days=1)).replace(day=1) if (last + timedelta(days=1)).day != 1 else last + timedelta(days=1)
    )
    if start >= end_next:
        return None, [(first.isoformat(), last.isoformat())]
    last_month = (end_next - timedelta(days=1)).strftime("%Y-%m")
    days = []
    if first < start:
        days.append((first.isoformat(), (start - timedelta(days=1)).isoformat()))
    if end_next <= last:
        days.append((end_next.isoformat(), last.isoformat()))
    return (start.strftime("%Y-%m"), last_month), days


def _bucket(row: Sequence[Any]) -> tuple[Bucket, int]:
    return (str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), int(row[5]), str(row[6])), int(row[7])


_ALL_LEVELS = "n0 + n1 + n2 + n3 + n4 + n5"
_DEVICES = f"SELECT {DEVICE_COLUMNS} FROM devices"  # noqa: S608 (constant names)
_UNITS_PER_QUERY = 500  # bound parameters per query stay far below SQLite's and PostgreSQL's limits


class Reader:
    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, url: str) -> Reader:
        """A read-only connection to the hub database at `url`.

        StoreError if there is no database there (nothing is created); SchemaError if it is at
        another schema version than this pingjia's (nothing is migrated).
        """
        db = open_database(url, read_only=True)
        try:
            schema.require_current(db)
        except BaseException:
            db.close()
            raise
        return cls(db)

    @property
    def kind(self) -> str:
        return self.db.kind

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Any read, for tests and for looking around; the product's own queries are the methods below."""
        return self.db.execute(sql, params)

    # -- terminals ----------------------------------------------------------------------------------

    def devices(self) -> list[DeviceEntry]:
        return [DeviceEntry(*row) for row in self.db.execute(f"{_DEVICES} ORDER BY id").fetchall()]

    def device(self, device: str) -> DeviceEntry | None:
        row = self.db.execute(f"{_DEVICES} WHERE id = ?", (device,)).fetchone()
        return None if row is None else DeviceEntry(*row)

    def device_listing(self, events: int) -> list[dict[str, Any]]:
        """Every terminal as `pingjia hub devices` shows it: status, latest health, latest `events`."""
        rows = self.db.execute(
            "SELECT id, department, counter, upto, status_state, status_ms, health, health_ms, revoked_ms, "
            "replaced_by, config_version, paired_by FROM devices ORDER BY id"
        ).fetchall()
        forks = dict(
            self.db.execute("SELECT device, count(*) FROM forks WHERE settled_ms IS NULL GROUP BY device").fetchall()
        )
        listing = []
        for (
            device,
            department,
            counter,
            upto,
            state,
            status_ms,
            health,
            health_ms,
            revoked_ms,
            replaced_by,
            config_version,
            paired_by,
        ) in rows:
            latest = self.db.execute(
                "SELECT at_ms, kind, detail FROM device_events WHERE device = ? ORDER BY at_ms DESC LIMIT ?",
                (device, events),
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
                    "events": [{"at_ms": a, "kind": k, "detail": d} for a, k, d in latest],
                    "revoked_ms": revoked_ms,
                    "replaced_by": replaced_by,
                    "config_version": config_version or None,
                    "paired_by": paired_by or None,
                    "open_forks": int(forks.get(device, 0)),
                }
            )
        return listing

    def forks(self, *, everything: bool = False) -> list[dict[str, Any]]:
        """Evidence of terminals' keys signing two histories; unsettled only, unless `everything`."""
        rows = self.db.execute(
            "SELECT device, seq, stored_hash, other_hash, other_record, seen_ms, settled_ms, settled_by, decision "
            "FROM forks WHERE ? OR settled_ms IS NULL ORDER BY device, seq",
            (everything,),
        ).fetchall()
        names = ("device", "seq", "stored_hash", "other_hash", "other_record", "seen_ms", "settled_ms", "settled_by")
        return [
            {**dict(zip(names, row[:8], strict=True)), "other_record": json.loads(row[4]), "decision": row[8]}
            for row in rows
        ]

    def stored_upto_total(self) -> int:
        """The sum of every terminal's watermark: how many records are stored without a gap."""
        return int(self.db.execute("SELECT coalesce(sum(upto), 0) FROM devices").fetchone()[0])

    # -- ratings ------------------------------------------------------------------------------------

    def rating_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM ratings").fetchone()[0])

    def stored_seqs(self, device: str, first: int = 1) -> list[int]:
        rows = self.db.execute("SELECT seq FROM ratings WHERE device = ? AND seq >= ? ORDER BY seq", (device, first))
        return [int(row[0]) for row in rows]

    def stored_after(self, device: str, seq: int) -> int:
        """How many records of `device` past `seq` are stored."""
        row = self.db.execute("SELECT count(*) FROM ratings WHERE device = ? AND seq > ?", (device, seq)).fetchone()
        return int(row[0])

    def presses_after(self, device: str, seq: int) -> list[tuple[int, str | None, int | None]]:
        """(seq, boot, mono) of the records of `device` past `seq`: one press stored under two seqs
        shows as two seqs with the same boot and monotonic time."""
        rows = self.db.execute("SELECT seq, boot, mono FROM ratings WHERE device = ? AND seq > ?", (device, seq))
        return [(int(s), boot, None if mono is None else int(mono)) for s, boot, mono in rows]

    def tickets_stored_twice(self, device: str) -> int:
        """Records of `device` with a service ticket another of its records has too (a service rated
        twice: every service has its own ticket)."""
        ticket = "json_extract(record, '$.ticket')" if self.kind == "sqlite" else "(record::jsonb ->> 'ticket')"
        row = self.db.execute(
            f"SELECT count(*) - count(DISTINCT {ticket}) FROM ratings "  # noqa: S608 (a constant expression)
            f"WHERE device = ? AND {ticket} IS NOT NULL",
            (device,),
        ).fetchone()
        return int(row[0])

    def chain_range(self, device: str, first: int, last: int) -> list[tuple[int, str, str]]:
        """(seq, hash, canonical record) of the stored records of `device` with seqs first..last."""
        rows = self.db.execute(
            "SELECT seq, hash, record FROM ratings WHERE device = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (device, first, last),
        )
        return [(int(seq), str(digest), str(record)) for seq, digest, record in rows]

    def chain(self, device: str) -> Iterator[tuple[int, str, str]]:
        """(seq, hash, canonical record) of every stored record of `device`, in seq order (the audit)."""
        for seq, digest, record in self.db.execute(
            "SELECT seq, hash, record FROM ratings WHERE device = ? ORDER BY seq", (device,)
        ):
            yield int(seq), str(digest), str(record)

    # -- counts -------------------------------------------------------------------------------------

    def counts(self) -> list[tuple[Bucket, int]]:
        """daily_counts as ingest keeps it (cells that are not 0)."""
        rows = self.db.execute(
            "SELECT day, staff, department, counter, kind, score, flags, n FROM daily_counts WHERE n != 0"
        ).fetchall()
        return sorted(_bucket(r) for r in rows)

    def recount(self) -> list[tuple[Bucket, int]]:
        """daily_counts as the ratings themselves say it should be (the audit, and tests)."""
        return sorted(_bucket(r) for r in self.db.execute(rollups.RECOUNT).fetchall())

    def rollup_tables(self) -> dict[str, list[tuple[tuple[str | int, ...], int]]]:
        """The coarser roll-ups as kept (cells that are not 0): {table: sorted [(cell, n)]}."""
        found = {}
        for table, keys in rollups.KEYS.items():
            if table == "daily_counts":
                continue
            rows = self.db.execute(f"SELECT {keys}, n FROM {table} WHERE n != 0").fetchall()  # noqa: S608
            found[table] = sorted((tuple(r[:-1]), int(r[-1])) for r in rows)
        for table, keys in rollups.LEVEL_TABLES.items():
            rows = self.db.execute(f"SELECT {keys}, n0, n1, n2, n3, n4, n5 FROM {table}").fetchall()  # noqa: S608
            found[table] = sorted(((*r[:-6], score), int(n)) for r in rows for score, n in enumerate(r[-6:]) if n)
        return found

    def tallies(self, by: str, first: date, last: date, policy: Policy, *, key: str | None = None) -> list[Tally]:
        """What `policy` makes of the roll-ups of days first..last, per row: (row key, unit, counted
        presses per level 1..5, unanswered invitations not left out, left out per EXCLUSIONS).

        `by`: "staff" (rows per clerk and unit), "counter" (per counter and unit) or "unit" (per
        unit, key ''). Whole months are read from the month tables with the levels side by side,
        the days around them from the daily ones (a unit's: its own such table; a clerk's or a
        counter's: the daily cells), the policy applied in SQL either way, so that a province's
        month comes back as one row per clerk, not one per cell. `key`: one clerk (or counter, or
        unit) only.
        """
        if by not in ("staff", "counter", "unit"):
            raise ValueError(f"tallies by staff, counter or unit, not {by!r}")
        months, days = _whole_months(first, last)
        found: list[Tally] = []
        monthly = {"staff": "staff_month_levels", "counter": "counter_month_levels", "unit": "unit_month_levels"}
        if months:
            found += self._level_tallies(monthly[by], by, column="month", span=months, policy=policy, key=key)
        for lo, hi in days:
            if by == "unit":
                span = (lo, hi)
                found += self._level_tallies("unit_day_levels", by, column="day", span=span, policy=policy, key=key)
            else:
                found += self._cell_tallies(by, lo, hi, policy, key)
        return found

    def _cell_tallies(self, by: str, lo: str, hi: str, policy: Policy, key: str | None) -> list[Tally]:
        """`tallies` of days lo..hi from daily_counts, the policy applied in SQL."""
        columns, params = _judged(policy)
        where_key = f" AND {by} = ?" if key is not None else ""
        rows = self.db.execute(
            f"SELECT {by}, department, {columns} FROM daily_counts "  # noqa: S608 - constant names and expressions
            f"WHERE day BETWEEN ? AND ?{where_key} GROUP BY {by}, department HAVING sum(n) > 0",
            (*params, lo, hi, *([key] if key is not None else [])),
        )
        found = []
        for row in rows:
            values = tuple(int(v or 0) for v in row[2:])
            found.append((str(row[0]), str(row[1]), values[:5], values[5], values[6:]))
        return found

    def _level_tallies(
        self, table: str, by: str, *, column: str, span: tuple[str, str], policy: Policy, key: str | None
    ) -> list[Tally]:
        """`tallies` from a table with levels side by side (hub.rollups.LEVEL_TABLES), `column`
        (day or month) in `span`: the policy judged in SQL, so that the rows per flags value are
        summed where they are stored and one row per key and unit comes back."""
        shown, group = ("'', department", "department") if by == "unit" else (f"{by}, department", f"{by}, department")
        where_key = f" AND {'department' if by == 'unit' else by} = ?" if key is not None else ""
        where = f"{column} = ?" if span[0] == span[1] else f"{column} BETWEEN ? AND ?"
        values = span[:1] if span[0] == span[1] else span
        seen: list[str] = []
        if key is None:  # every flags value of the span, from the smallest table made of the same cells
            units = "unit_month_levels" if column == "month" else "unit_day_levels"
            distinct = f"SELECT DISTINCT flags FROM {units} WHERE {where}"  # noqa: S608 - constant names
            seen = [str(row[0]) for row in self.db.execute(distinct, values)]
        columns, params = _judged_levels(policy, seen)
        rows = self.db.execute(
            f"SELECT {shown}, {columns} FROM {table} "  # noqa: S608 - constant names and expressions
            f"WHERE {where}{where_key} GROUP BY {group}",
            (*params, *values, *([key] if key is not None else [])),
        ).fetchall()  # at once: PostgreSQL's driver makes a province's rows faster so than one by one
        # As they come (ints on both databases: the sums are cast); a key's flags values may all
        # have been emptied (every cell moved by amends), which leaves it out.
        return [(row[0], row[1], row[2:7], row[7], row[8:]) for row in rows if any(row[2:])]

    def staff_names(self, staff: str | None = None) -> dict[str, tuple[str, str]]:
        """{staff id: (name, current unit)}, of everyone or of one clerk."""
        if staff is not None:
            rows = self.db.execute("SELECT id, name, department FROM staff WHERE id = ?", (staff,))
        else:
            rows = self.db.execute("SELECT id, name, department FROM staff")
        return {r[0]: (r[1], r[2]) for r in rows.fetchall()}

    def units(self) -> dict[str, tuple[str | None, str, str]]:
        """{unit: (parent or None, kind, name)}: the organisation's tree."""
        return {r[0]: (r[1], r[2], r[3]) for r in self.db.execute("SELECT id, parent, kind, name FROM units")}

    def policy_rows(self) -> list[tuple[int, str, str]]:
        """(version, first_day, JSON document) of every stored scoring policy."""
        rows = self.db.execute("SELECT version, first_day, doc FROM policies ORDER BY version").fetchall()
        return [(int(v), str(f), str(d)) for v, f, d in rows]

    def terminals_of(self, staff: str, first: date, last: date) -> list[str]:
        """The terminals a clerk's records came from on days first..last."""
        rows = self.db.execute(
            "SELECT DISTINCT device FROM device_days WHERE staff = ? AND day BETWEEN ? AND ? ORDER BY device",
            (staff, first.isoformat(), last.isoformat()),
        )
        return [str(r[0]) for r in rows]

    def spans(self, staff: str, first: date, last: date) -> list[tuple[str, str, int, int]]:
        """(device, day, first_seq, last_seq) of a clerk's records on days first..last, in day order."""
        rows = self.db.execute(
            "SELECT device, day, first_seq, last_seq FROM device_days WHERE staff = ? AND day BETWEEN ? AND ? "
            "ORDER BY day, device",
            (staff, first.isoformat(), last.isoformat()),
        )
        return [(str(d), str(day), int(a), int(b)) for d, day, a, b in rows]

    def device_spans(self, device: str, first: date, last: date) -> list[tuple[str, str, int, int]]:
        """(staff, day, first_seq, last_seq) of every clerk's records on terminal `device`, days first..last."""
        rows = self.db.execute(
            "SELECT staff, day, first_seq, last_seq FROM device_days WHERE device = ? AND day BETWEEN ? AND ? "
            "ORDER BY day, staff",
            (device, first.isoformat(), last.isoformat()),
        )
        return [(str(s), str(day), int(a), int(b)) for s, day, a, b in rows]

    def bindings(
        self, first: date, last: date, *, staff: str | None = None, device: str | None = None
    ) -> list[dict[str, Any]]:
        """Who worked at which terminal on days first..last (of one clerk, or one terminal): per day,
        the seqs and times (UTC ms) of their first and last records there."""
        column, key = ("staff", staff) if staff is not None else ("device", device)
        rows = self.db.execute(
            "SELECT day, device, staff, first_seq, last_seq, first_ms, last_ms FROM device_days "  # noqa: S608
            f"WHERE {column} = ? AND day BETWEEN ? AND ? ORDER BY day, first_ms",
            (key, first.isoformat(), last.isoformat()),
        ).fetchall()
        names = ("day", "device", "staff", "first_seq", "last_seq", "first_ms", "last_ms")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def members(self, units: Sequence[str], first: date, last: date) -> list[str]:
        """The staff who belonged to any of `units` on some day of first..last."""
        found: set[str] = set()
        units = list(units)
        # Many units at a time: memberships has no index by unit, so each query reads all of it
        # (a site of 145 units took 0.7 s one unit at a time, with 50,000 staff).
        for start in range(0, len(units), _UNITS_PER_QUERY):
            some = units[start : start + _UNITS_PER_QUERY]
            rows = self.db.execute(
                f"SELECT staff FROM memberships WHERE unit IN ({', '.join('?' * len(some))}) "  # noqa: S608 - marks
                "AND first_day <= ? AND (last_day IS NULL OR last_day >= ?)",
                (*some, last.isoformat(), first.isoformat()),
            )
            found.update(str(r[0]) for r in rows)
        return sorted(found)

    def placed(self, counter: str, first: date, last: date) -> list[str]:
        """The terminals that stood at `counter` on some day of first..last."""
        rows = self.db.execute(
            "SELECT DISTINCT device FROM placements WHERE counter = ? AND first_day <= ? "
            "AND (last_day IS NULL OR last_day >= ?) ORDER BY device",
            (counter, last.isoformat(), first.isoformat()),
        )
        return [str(r[0]) for r in rows]

    def ratings_in(self, device: str, first_seq: int, last_seq: int) -> Iterator[tuple[Any, ...]]:
        """Stored ratings of `device` with seqs first_seq..last_seq, as explained (hub.explain)."""
        yield from self.db.execute(
            "SELECT device, seq, day, at_ms, kind, staff, score, flags, department, counter, superseded_by, "
            "invalidated, hash, record FROM ratings WHERE device = ? AND seq BETWEEN ? AND ? ORDER BY seq",
            (device, first_seq, last_seq),
        )

    # -- refusals -----------------------------------------------------------------------------------

    def reject_counts(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self.db.execute("SELECT reason, count(*) FROM rejects GROUP BY reason")}

    def latest_rejects(self, limit: int) -> list[dict[str, Any]]:
        """The `limit` latest refusals: when, what topic, which device and seq, why, how big."""
        keys = ("at_ms", "topic", "device", "seq", "reason", "detail", "size")
        rows = self.db.execute(
            "SELECT at_ms, topic, device, seq, reason, detail, size FROM rejects ORDER BY at_ms DESC LIMIT ?", (limit,)
        ).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]
