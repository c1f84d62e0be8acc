"""Every query the hub's readers make, on a read-only connection of their own.

Reports, the audit, `pingjia hub devices`, `pingjia hub rejects`, and the simulator's live counts
and checks read through a `Reader`; none of them can write (hub.db opens it read-only), create a
database, or migrate one: a database that is missing, or at another schema version than this
pingjia's, is refused with a message saying so (hub.schema). The writer's SQL is in hub.store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from hub import schema
from hub.db import Cursor, Database, open_database
from hub.rows import DEVICE_COLUMNS, Bucket, DeviceEntry

__all__ = ["Reader"]

_DEVICES = f"SELECT {DEVICE_COLUMNS} FROM devices"  # noqa: S608 (constant names)


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
            "SELECT day, staff, department, kind, score, flags, n FROM daily_counts WHERE n != 0"
        ).fetchall()
        return sorted(((r[0], r[1], r[2], r[3], int(r[4]), r[5]), int(r[6])) for r in rows)

    def recount(self) -> list[tuple[Bucket, int]]:
        """daily_counts as the ratings themselves say it should be (the audit, and tests)."""
        rows = self.db.execute(
            "SELECT day, staff, department, kind, coalesce(score, 0), flags, count(*) FROM ratings "
            "WHERE staff IS NOT NULL AND superseded_by IS NULL "
            "GROUP BY day, staff, department, kind, coalesce(score, 0), flags"
        ).fetchall()
        return sorted(((r[0], r[1], r[2], r[3], int(r[4]), r[5]), int(r[6])) for r in rows)

    def counts_by(
        self, by: str, first: date, last: date, *, left_out: Sequence[str]
    ) -> list[tuple[str, str, int | None, int]]:
        """(staff or department, kind, score, count) from the daily counts of days first..last (the
        site's dates), leaving out cells with any of the flags `left_out` (a report)."""
        column = {"staff": "staff", "department": "department"}[by]
        flag_filter = "".join(" AND flags NOT LIKE ?" for _ in left_out)
        rows = self.db.execute(
            f"SELECT {column}, kind, score, sum(n) FROM daily_counts "  # noqa: S608 - names and placeholders only
            f"WHERE day BETWEEN ? AND ?{flag_filter} GROUP BY 1, 2, 3",
            (first.isoformat(), last.isoformat(), *(f"%{flag}%" for flag in left_out)),
        ).fetchall()
        return [(str(key), str(kind), None if score is None else int(score), int(n)) for key, kind, score, n in rows]

    def staff_names(self) -> dict[str, tuple[str, str]]:
        """{staff id: (name, department)}."""
        return {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT id, name, department FROM staff")}

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
