"""Figures that follow the directory's history: a rating counts for the unit its clerk belonged to on
the day of the press and the counter its terminal stood at, whatever order records, amends,
duplicates and corrections of the history arrive in; every roll-up equals a recount done here, by
hand, from the signed records and the history as it was given."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import directory, policy, registry, rollups
from hub.audit import audit
from hub.config import HubConfig
from hub.errors import RegistryError
from hub.ingest import Ingest
from hub.policy import Policy
from hub.queries import Reader
from hub.report import Period, aggregate, book
from hub.writer import Writer
from protocol import GENESIS, Channel, Flag, Kind, Rating, SigningKey, topic
from simulator.processes import wait_until
from tests.helpers import batch_bytes
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()
MIDNIGHT = 1_763_827_200_000  # 2025-11-23T00:00+08:00
DAYS = ("2025-11-22", "2025-11-23", "2025-11-24")
DAY_MS = 86_400_000
NOW = MIDNIGHT + 3 * DAY_MS  # the hub receives everything after the three days
UNITS = ("A", "B", "C")
START = {"E1": "A", "E2": "B"}  # E9 is not in the directory at first: an unknown clerk

record_specs = st.lists(
    st.tuples(
        st.sampled_from(["press", "press", "amend", "timeout"]),
        st.sampled_from(["E1", "E2", "E9", None]),
        st.integers(1, 5),
        st.integers(0, 2),  # which day
        st.sampled_from(["", "", "misuse", "uninvited"]),
    ),
    min_size=1,
    max_size=30,
)
history_changes = st.lists(
    st.one_of(
        st.tuples(
            st.just("move"),
            st.sampled_from(["E1", "E2", "E9"]),
            st.sampled_from([*UNITS, None]),
            st.integers(0, 2),
            st.sampled_from([None, 0, 1, 2]),
        ),
        st.tuples(st.just("place"), st.sampled_from(["W1", "W2", None]), st.just(""), st.integers(0, 2), st.none()),
    ),
    max_size=4,
)


def build(specs: Sequence[tuple[str, str | None, int, int, str]]) -> list[Rating]:
    records, prev = [], GENESIS
    for seq, (wanted, someone, score, day, flag) in enumerate(specs, start=1):
        kind = "press" if wanted == "amend" and seq == 1 else wanted
        staff = someone if kind == "press" else someone or "E1"
        t = MIDNIGHT + (day - 1) * DAY_MS + 3_600_000 * 10 + seq * 1000  # 10:00 on that day, local
        record = Rating(
            device="d1",
            seq=seq,
            kind=Kind(kind),
            t=t,
            boot="b1",
            mono=seq,
            fw="1",
            prev=prev,
            staff=staff,
            score=None if kind == "timeout" else score,
            amends=1 + (score % (seq - 1)) if kind == "amend" else None,
            flags=() if not flag or kind == "timeout" else (Flag(flag),),
        ).signed(KEY)
        records.append(record)
        prev = record.hash()
    return records


class Model:
    """The history as given, day by day: the recount's own, independent of hub.directory."""

    def __init__(self) -> None:
        self.unit = {staff: dict.fromkeys(DAYS, START.get(staff, "")) for staff in ("E1", "E2", "E9")}
        self.counter = dict.fromkeys(DAYS, "W1")

    def change(self, db: Writer, what: tuple[Any, ...]) -> None:
        kind, who, target, first, last = what
        days = [d for i, d in enumerate(DAYS) if i >= first and (last is None or i <= last)]
        first_day, last_day = DAYS[first], None if last is None else DAYS[last]
        if last is not None and last < first:
            with pytest.raises(RegistryError, match="ends"):
                db.write(directory.set_membership, who, target, first_day=first_day, last_day=last_day)
            return
        if kind == "move":
            db.write(directory.set_membership, who, target, first_day=first_day, last_day=last_day)
            for day in days:
                self.unit[who][day] = target or ""
        else:
            db.write(directory.set_placement, "d1", who, first_day=first_day)
            for day in days:
                self.counter[day] = who or ""

    def cells(self, records: list[Rating]) -> Counter[tuple[Any, ...]]:
        superseded = {r.amends for r in records if r.kind is Kind.AMEND}
        found: Counter[tuple[Any, ...]] = Counter()
        for r in records:
            if r.staff is None:
                continue
            day = DAYS[(r.t - (MIDNIGHT - DAY_MS)) // DAY_MS]
            flags = ",".join([*(f.value for f in r.flags), *(["noreason"] if (r.score or 9) <= 2 else [])])
            cell = (day, r.staff, self.unit[r.staff][day], self.counter[day], r.kind.value, r.score or 0)
            found[(*cell, rollups.cell_flags(flags, superseded=r.seq in superseded))] += 1
        return found


def _figures(cells: Counter[tuple[Any, ...]], rules: list[Policy], key_of: Any) -> dict[str, dict[str, Any]]:
    """The report's rows, recounted by hand from cells with each day's policy."""
    rows: dict[str, dict[str, Any]] = {}
    for (day, staff, unit, _counter, kind, score, flags), n in cells.items():
        key = key_of(staff, unit)
        if key is None:
            continue
        rule = [p for p in rules if p.first_day <= day][-1]
        row = rows.setdefault(key, {"levels": Counter(), "unanswered": 0, "left_out": Counter()})
        marks = set(flags.split(",")) - {""}
        if "superseded" in marks:
            row["left_out"]["superseded"] += n
        elif "misuse" in marks:
            row["left_out"]["misuse"] += n
        elif "uninvited" in marks and not rule.count_uninvited:
            row["left_out"]["uninvited"] += n
        elif kind == "timeout":
            row["unanswered"] += n
            if rule.timeout:
                row["levels"][rule.timeout] += n
        else:
            row["levels"][score] += n
    return rows


def _hub(url: str) -> tuple[Writer, Ingest]:
    writer = Writer.open(url)
    for unit in UNITS:
        writer.write(directory.set_unit, unit, parent=None, kind="department", name=f"unit {unit}")
    writer.write(registry.add_device, "d1", KEY.public.hex, department="A", counter="W1")
    for staff, unit in START.items():
        writer.write(registry.add_staff, staff, name=staff, department=unit)
    writer.write(policy.add, {"timeout": 0, "count_uninvited": True}, first_day=DAYS[1], by="HR")
    return writer, Ingest(writer, HubConfig())


@settings(max_examples=40, deadline=None)
@given(record_specs, history_changes, st.data())
def test_every_roll_up_equals_a_recount_by_hand_from_the_records_and_the_history(
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[tuple[str, str | None, int, int, str]],
    changes: list[tuple[Any, ...]],
    data: st.DataObject,
) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('history') / 'hub.sqlite3'}"
    writer, ingest = _hub(url)
    model = Model()
    records = build(specs)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(records) - 1), max_size=6)) if len(records) > 1 else [])
    batches = [batch_bytes(KEY, records[a:b]) for a, b in pairwise([0, *cuts, len(records)])]
    deliveries = data.draw(st.permutations(batches + data.draw(st.lists(st.sampled_from(batches), max_size=3))))
    when = sorted(data.draw(st.lists(st.integers(0, len(deliveries)), min_size=len(changes), max_size=len(changes))))
    steps: list[tuple[int, Any]] = [(at, ("change", c)) for at, c in zip(when, changes, strict=True)]
    steps += [(index, ("deliver", payload)) for index, payload in enumerate(deliveries)]
    for _at, (what, item) in sorted(steps, key=lambda s: (s[0], s[1][0] == "deliver")):
        if what == "change":
            model.change(writer, item)
        else:
            ingest.begin_group()
            with writer.transaction():
                ingest.receive(topic("d1", Channel.RATINGS), item, NOW)
                ingest.end_group()
    writer.close()
    wanted = model.cells(records)
    with Reader.open(url) as reader:
        assert reader.stored_seqs("d1") == list(range(1, len(records) + 1))
        assert dict(reader.counts()) == {cell: n for cell, n in wanted.items() if n}
        coarser = rollups.coarser(wanted)
        assert reader.rollup_tables() == {
            t: sorted((c, n) for c, n in cells.items() if n) for t, cells in coarser.items()
        }
        assert audit(reader)["problems"] == []
        rules = book(reader, Policy())
        period = Period(date(2025, 11, 22), date(2025, 11, 24), "2025-11-22..2025-11-24")
        for level, key_of in (
            ("department", lambda _staff, unit: unit or None),
            ("staff", lambda staff, _unit: staff),
            ("counter", lambda _staff, _unit: None),
        ):
            report = aggregate(reader, period, level, rules=rules)
            if level == "counter":
                continue
            got = {
                row.key: {
                    "levels": Counter({k: v for k, v in row.counted().items() if v}),
                    "unanswered": row.unanswered,
                    "left_out": Counter({k: v for k, v in row.excluded.items() if v}),
                }
                for row in report.rows
            }
            assert got == _figures(wanted, rules, key_of), level


def test_a_back_dated_move_rebuilds_exactly_the_affected_cells(hub_db: HubDb) -> None:
    """HR moves E1 to B from the 23rd: the 23rd's and 24th's ratings move, the 22nd's stay, and
    no cell of anyone else is written."""
    writer, ingest = hub_db.writer, hub_db.ingest()
    for unit in UNITS:
        writer.write(directory.set_unit, unit, parent=None, kind="department")
    writer.write(registry.add_device, "d1", KEY.public.hex, department="A", counter="W1")
    writer.write(registry.add_staff, "E1", department="A")
    writer.write(registry.add_staff, "E2", department="A")
    specs = [("press", staff, 5, day, "") for day in range(3) for staff in ("E1", "E2")]
    with writer.transaction():
        ingest.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, build(specs)), NOW)
        ingest.end_group()
    before = dict(hub_db.reader.counts())
    moved = writer.write(directory.set_membership, "E1", "B", first_day=DAYS[1])
    after = dict(hub_db.reader.counts())
    assert moved == 2
    changed = {cell for cell in set(before) | set(after) if before.get(cell) != after.get(cell)}
    assert changed == {
        (DAYS[1], "E1", "A", "W1", "press", 5, ""),
        (DAYS[2], "E1", "A", "W1", "press", 5, ""),
        (DAYS[1], "E1", "B", "W1", "press", 5, ""),
        (DAYS[2], "E1", "B", "W1", "press", 5, ""),
    }
    assert hub_db.rows("SELECT day, department FROM ratings WHERE staff = 'E1' ORDER BY day") == [
        (DAYS[0], "A"),
        (DAYS[1], "B"),
        (DAYS[2], "B"),
    ]
    assert audit(hub_db.reader)["problems"] == []


def test_an_unknown_clerk_counts_for_no_department_until_the_directory_knows_them(hub_db: HubDb) -> None:
    writer, ingest = hub_db.writer, hub_db.ingest()
    writer.write(registry.add_device, "d1", KEY.public.hex, department="A", counter="W1")
    records = build([("press", "E7", 1, 1, ""), ("press", "E7", 2, 1, "")])
    with writer.transaction():
        ingest.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, records), NOW)
        ingest.end_group()
    period = Period(date(2025, 11, 23), date(2025, 11, 23), DAYS[1])
    [row] = aggregate(hub_db.reader, period, "staff").rows
    assert (row.key, row.name, row.known, row.where, row.total()) == ("E7", "unknown clerk", False, "d1", 2)
    department = aggregate(hub_db.reader, period, "department")
    assert department.rows == []
    assert department.unattributed.total() == 2  # kept, shown, counted for no department
    writer.write(registry.add_staff, "E7", name="新来的", department="C")  # imported later
    [row] = aggregate(hub_db.reader, period, "department").rows
    assert (row.key, row.total(), row.levels[1], row.levels[2]) == ("C", 2, 1, 1)
    assert audit(hub_db.reader)["problems"] == []


def test_moves_made_while_workers_store_leave_every_rating_where_the_final_history_says(db_url: str) -> None:
    """A second connection re-dates E1's membership again and again while the hub stores E1's
    ratings: whatever interleaving, each rating ends in the unit the final history gives its day,
    and the roll-ups agree with the ratings (no group attributes with a history being changed)."""
    import threading

    writer, ingest = _hub(db_url)
    records = build([("press", "E1", 1 + seq % 5, seq % 3, "") for seq in range(120)])
    batches = [batch_bytes(KEY, records[i : i + 4]) for i in range(0, len(records), 4)]
    stop = threading.Event()
    moves: list[tuple[str, str]] = []
    failures: list[BaseException] = []

    def hr() -> None:  # HR keeps correcting the history, on a connection of its own
        try:
            with Writer.open(db_url) as admin:
                index = 0
                while not stop.is_set():
                    unit, first = UNITS[index % 3], DAYS[index % 3]
                    admin.write(directory.set_membership, "E1", unit, first_day=first)
                    moves.append((unit, first))
                    index += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    thread = threading.Thread(target=hr)
    thread.start()
    try:
        for index, payload in enumerate(batches):
            # Every fifth group waits for one more of HR's moves: changes land among the groups
            # however the threads are scheduled (within that, they race freely).
            wanted = index // 5
            wait_until(lambda: len(moves) >= wanted or bool(failures), 30, "HR's next move")
            ingest.begin_group()
            with writer.transaction():
                ingest.receive(topic("d1", Channel.RATINGS), payload, NOW)
                ingest.end_group()
    finally:
        stop.set()
        thread.join()
    writer.close()
    assert failures == []
    assert len(moves) >= len(batches) // 5
    with Reader.open(db_url) as reader:
        final = {p.first_day: p.value for p in directory.history(reader.db, "memberships", "E1")}
        periods = sorted(final.items())
        for day, department in reader.execute("SELECT day, department FROM ratings").fetchall():
            assert department == [unit for first, unit in periods if first <= day][-1]
        assert audit(reader)["problems"] == []


@pytest.mark.parametrize(
    ("timezone", "month_of_the_last_hour"),
    [("Asia/Shanghai", "2025-12"), ("UTC", "2025-11"), ("America/Los_Angeles", "2025-11")],
)
def test_days_weeks_and_months_are_the_sites_in_its_time_zone(
    tmp_path: Path, timezone: str, month_of_the_last_hour: str
) -> None:
    """A rating at 16:30 UTC on 30 November is on 1 December in Shanghai: a month, an ISO week and
    a day of figures are cut at the site's midnight, not at UTC's."""
    from hub.report import parse_period

    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    writer = Writer.open(url)
    writer.write(registry.add_device, "d1", KEY.public.hex, department="A")
    writer.write(registry.add_staff, "E1", department="A")
    t = 1_764_520_200_000  # 2025-11-30T16:30:00Z
    record = Rating(
        device="d1", seq=1, kind=Kind.PRESS, t=t, boot="b1", mono=1, fw="1", prev=GENESIS, staff="E1", score=5
    ).signed(KEY)
    ingest = Ingest(writer, HubConfig(timezone=timezone))
    with writer.transaction():
        ingest.receive(topic("d1", Channel.RATINGS), batch_bytes(KEY, [record]), t + 1_000)
        ingest.end_group()
    writer.close()
    with Reader.open(url) as reader:
        found = {
            label: sum(row.total() for row in aggregate(reader, parse_period(label), "staff").rows)
            for label in ("2025-11", "2025-12", "2025-W48", "2025-W49", "2025-11-30", "2025-12-01")
        }
    in_december = month_of_the_last_hour == "2025-12"
    assert found == {
        "2025-11": 0 if in_december else 1,
        "2025-12": 1 if in_december else 0,
        "2025-W48": 0 if in_december else 1,  # Monday 24 to Sunday 30 November
        "2025-W49": 1 if in_december else 0,
        "2025-11-30": 0 if in_december else 1,
        "2025-12-01": 1 if in_december else 0,
    }


def test_each_site_cuts_its_days_in_its_own_time_zone(tmp_path: Path) -> None:
    """One hub (UTC), three sites: Shanghai's zone set on the site, Los Angeles' on a hall below
    an unzoned site, and a site with none (the hub's). A press at 16:30 UTC on 30 November is on
    1 December in Shanghai only; the department and site figures of each month follow."""
    from hub.report import parse_period

    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    writer = Writer.open(url)
    tree = [
        ("SH", None, "site", "Asia/Shanghai"),
        ("SH-D", "SH", "department", ""),
        ("US", None, "site", ""),
        ("LA", "US", "hall", "America/Los_Angeles"),
        ("LA-D", "LA", "department", ""),
        ("UK", None, "site", ""),
        ("UK-D", "UK", "department", ""),
    ]
    for unit, parent, kind, zone in tree:
        writer.write(directory.set_unit, unit, parent=parent, kind=kind, timezone=zone)
    t = 1_764_520_200_000  # 2025-11-30T16:30:00Z
    records = []
    for n, department in enumerate(("SH-D", "LA-D", "UK-D"), start=1):
        key = SigningKey.generate()
        writer.write(directory.set_counter, f"W{n}", unit=department)
        writer.write(registry.add_device, f"d{n}", key.public.hex, counter=f"W{n}")
        writer.write(registry.add_staff, f"E{n}", department=department)
        rating = Rating(
            device=f"d{n}", seq=1, kind=Kind.PRESS, t=t, boot="b1", mono=1, fw="1", prev=GENESIS, staff=f"E{n}", score=5
        )
        records.append((f"d{n}", key, rating.signed(key)))
    ingest = Ingest(writer, HubConfig(timezone="UTC"))
    with writer.transaction():
        for device, key, record in records:
            ingest.receive(topic(device, Channel.RATINGS), batch_bytes(key, [record]), t + 1_000)
        ingest.end_group()
    writer.close()
    with Reader.open(url) as reader:
        days = dict(reader.execute("SELECT device, day FROM ratings").fetchall())
        assert days == {"d1": "2025-12-01", "d2": "2025-11-30", "d3": "2025-11-30"}
        sites = {
            label: {row.key: row.total() for row in aggregate(reader, parse_period(label), "site").rows}
            for label in ("2025-11", "2025-12")
        }
        assert sites == {"2025-11": {"US": 1, "UK": 1}, "2025-12": {"SH": 1}}
        assert audit(reader)["problems"] == []
