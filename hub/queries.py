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


def _judged(policy: Policy) -> tuple[str, list[str]]:
    """SQL sums of a roll-up's cells as `policy` judges them: presses counted per level 1..5,
    unanswered invitations kept, then the cells each exclusion leaves out (the first that applies,
    in EXCLUSIONS order), and their LIKE patterns in placeholder order."""
    active = [reason for reason in EXCLUSIONS if policy.excluded_by(reason)]
    kept = f"(flags = '' OR ({' AND '.join(['flags NOT LIKE ?'] * len(active))}))" if active else "1 = 1"
    kept_params = [f"%{reason}%" for reason in active]
    columns, params = [], []
    for level in range(1, 6):
        columns.append(f"sum(CASE WHEN kind != 'timeout' AND score = {level} AND {kept} THEN n ELSE 0 END)")
        params += kept_params
    columns.append(f"sum(CASE WHEN kind = 'timeout' AND {kept} THEN n ELSE 0 END)")
    params += kept_params
    for reason in EXCLUSIONS:
        if reason not in active:
            columns.append("0")
            continue
        earlier = active[: active.index(reason)]
        columns.append(
            "sum(CASE WHEN flags != '' AND flags LIKE ?"
            + " AND flags NOT LIKE ?" * len(earlier)
            + " THEN n ELSE 0 END)"
        )
        params += [f"%{reason}%", *(f"%{e}%" for e in earlier)]
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


# PostgreSQL's sum of a bigint is a numeric: cast back, so that Python gets ints on both.
_LEVELS = "n0, n1, n2, n3, n4, n5"
_LEVEL_SUMS = ", ".join(f"CAST(sum(n{score}) AS BIGINT)" for score in range(6))
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

    def tallies(
        self, by: str, first: date, last: date, policy: Policy, *, key: str | None = None
    ) -> list[tuple[str, str, list[int], int, list[int]]]:
        """What `policy` makes of the roll-ups of days first..last, per row: (row key, unit, counted
        presses per level 1..5, unanswered invitations not left out, left out per EXCLUSIONS).

        `by`: "staff" (rows per clerk and unit), "counter" (per counter and unit) or "unit" (per
        unit, key ''). Whole months are read from the month tables with the levels side by side,
        the days around them from the daily ones (a unit's: its own such table; a clerk's or a
        counter's: the daily cells, the policy applied in SQL), so that a province's month comes
        back as one row per clerk and flags value, not one per cell. `key`: one clerk (or counter,
        or unit) only.
        """
        if by not in ("staff", "counter", "unit"):
            raise ValueError(f"tallies by staff, counter or unit, not {by!r}")
        months, days = _whole_months(first, last)
        found: list[tuple[str, str, list[int], int, list[int]]] = []
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

    def _cell_tallies(
        self, by: str, lo: str, hi: str, policy: Policy, key: str | None
    ) -> list[tuple[str, str, list[int], int, list[int]]]:
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
            values = [int(v or 0) for v in row[2:]]
            found.append((str(row[0]), str(row[1]), values[:5], values[5], values[6:]))
        return found

    def _level_tallies(
        self, table: str, by: str, *, column: str, span: tuple[str, str], policy: Policy, key: str | None
    ) -> list[tuple[str, str, list[int], int, list[int]]]:
        """`tallies` from a table with levels side by side (hub.rollups.LEVEL_TABLES), `column`
        (day or month) in `span`: the rows come per flags value and the policy judges each flags
        value once, here."""
        shown, key_column = ("'', department", "department") if by == "unit" else (f"{by}, department", by)
        where_key = f" AND {key_column} = ?" if key is not None else ""
        if span[0] == span[1]:  # one day or month: a row per key and flags already, nothing to group
            sql = f"SELECT {shown}, flags, {_LEVELS} FROM {table} WHERE {column} = ?{where_key}"  # noqa: S608
            params: tuple[str, ...] = (span[0],)
        else:
            group = "department, flags" if by == "unit" else f"{by}, department, flags"
            sql = (
                f"SELECT {shown}, flags, {_LEVEL_SUMS} FROM {table} "  # noqa: S608 - constant names
                f"WHERE {column} BETWEEN ? AND ?{where_key} GROUP BY {group}"
            )
            params = span
        rows = self.db.execute(sql, (*params, *([key] if key is not None else [])))
        judged: dict[str, int] = {}  # flags -> -1 (counted) or the index of the exclusion that leaves it out
        tallies: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        last_key = last_unit = None
        entry: tuple[list[int], list[int]] = ([], [])
        for row_key, unit, flags, n0, n1, n2, n3, n4, n5 in rows:
            verdict = judged.get(flags)
            if verdict is None:
                reason = policy.excluded_by(flags)
                verdict = judged[flags] = -1 if reason is None else EXCLUSIONS.index(reason)
            if row_key != last_key or unit != last_unit:  # rows mostly come in key order: one look-up per key
                last_key, last_unit = row_key, unit
                found = tallies.get((row_key, unit))
                if found is None:
                    found = tallies[(row_key, unit)] = ([0] * 6, [0] * len(EXCLUSIONS))
                entry = found
            if verdict < 0:
                counted = entry[0]
                counted[0] += n0
                counted[1] += n1
                counted[2] += n2
                counted[3] += n3
                counted[4] += n4
                counted[5] += n5
            else:
                entry[1][verdict] += n0 + n1 + n2 + n3 + n4 + n5
        return [
            (row_key, unit, counted[1:], counted[0], excluded)
            for (row_key, unit), (counted, excluded) in tallies.items()
            if any(counted) or any(excluded)
        ]

    def staff_names(self, staff: str | None = None) -> dict[str, tuple[str, str]]:
        """{staff id: (name, current unit)}, of everyone or of one clerk."""
        if staff is not None:
            rows = self.db.execute("SELECT id, name, department FROM staff WHERE id = ?", (staff,))
        else:
            rows = self.db.execute("SELECT id, name, department FROM staff")
        return {r[0]: (r[1], r[2]) for r in rows}

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
