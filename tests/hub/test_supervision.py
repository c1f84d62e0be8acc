"""Supervision rules (hub.supervision) on crafted streams: each rule fires on what it is about, stays
silent on an honest stream of the same volume, and the database path reads what ingest stored."""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub import registry, supervision, supervision_cli
from hub.supervision import Press, SupervisionFlag
from hub.supervision_weeks import PRESS_COLUMNS, press_of_row
from protocol import GENESIS, Channel, Flag, Kind, Rating, SigningKey, topic
from tests.helpers import batch_bytes
from tests.hub.conftest import HubDb

MONDAY = date(2026, 3, 2)
OPEN_MS = int(datetime(2026, 3, 2, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)
LEVELS = (5, 5, 4, 5, 3, 5, 4, 5, 2, 5, 5, 4, 5, 1, 5, 4, 5, 3, 5, 4)  # 10 % lows, 50 % fives


class Terminal:
    """Builds one terminal's records as the hub stores them: seqs in order, a chain, one boot a day."""

    def __init__(self, device: str = "desk-01", department: str = "A") -> None:
        self.device = device
        self.department = department
        self.records: list[Press] = []
        self.clock = OPEN_MS

    def add(
        self,
        after_s: float,
        kind: str = "press",
        *,
        staff: str | None = "E1",
        score: int | None = 5,
        flags: tuple[str, ...] = (),
        ticket: str | None = None,
        amends: int | None = None,
        reasons: tuple[int, ...] = (),
    ) -> Press:
        self.clock += int(after_s * 1000)
        seq = len(self.records) + 1
        day_index = (self.clock - OPEN_MS) // 86_400_000
        record = Press(
            device=self.device,
            seq=seq,
            kind=kind,
            staff=staff,
            score=None if kind == "timeout" else score,
            at_ms=self.clock,
            day=date.fromordinal(MONDAY.toordinal() + day_index).isoformat(),
            department=self.department,
            flags=flags,
            ticket=ticket,
            amends=amends,
            reasons=reasons,
            boot=f"boot-{day_index}",
            mono=self.clock - OPEN_MS - day_index * 86_400_000 + 600_000,
            prev=self.records[-1].hash if self.records else GENESIS,
            hash=f"{self.device}-{seq:062d}"[-64:],
        )
        self.records.append(record)
        return record

    def honest_week(self, staff: str, services: int = 250, levels: tuple[int, ...] = LEVELS) -> None:
        """Five days of invited services: tickets, a timeout now and then (one pressed late), reasons
        after a 1 or 2, a child at the keys twice a day, and a customer pressing uninvited."""
        per_day = services // 5
        for day in range(5):
            self.clock = OPEN_MS + day * 86_400_000
            for n in range(per_day):
                self.add(200 + n % 7 * 30, staff=staff, score=levels[n % len(levels)], ticket=f"A{day}{n:03d}")
                level = levels[n % len(levels)]
                if level <= 2:
                    self.add(6, "amend", staff=staff, score=level, amends=self.records[-1].seq, reasons=(1,))
                if n % 25 == 7:
                    self.add(250, "timeout", staff=staff, ticket=f"B{day}{n:03d}")
                    self.add(20, staff=staff, score=5, flags=("uninvited",))  # pressed after the window: late
                if n % 25 == 19:  # a child: an uninvited rating, its amend, then misuse presses
                    first = self.add(90, staff=staff, score=n % 5 + 1, flags=("uninvited",))
                    self.add(0.08, "amend", staff=staff, score=(n + 1) % 5 + 1, amends=first.seq, flags=("uninvited",))
                    for key in range(4):
                        self.add(0.08, staff=staff, score=(n + key) % 5 + 1, flags=("misuse",))
                if n == 30:
                    self.add(300, staff=staff, score=5, flags=("uninvited",))  # the clerk forgot to invite


def num(flag: SupervisionFlag, name: str) -> float:
    value = flag.figures[name]
    assert isinstance(value, int | float), (name, value)
    return value


def flags_of(presses: list[Press], rule: str) -> list[SupervisionFlag]:
    return [flag for flag in supervision.supervise(presses) if flag.rule == rule]


def hall(*terminals: Terminal) -> list[Press]:
    return [record for terminal in terminals for record in terminal.records]


def peers(count: int, levels: tuple[int, ...] = LEVELS, prefix: str = "P") -> list[Terminal]:
    """`count` honest colleagues on terminals of their own, in departments A and B."""
    made = []
    for index in range(count):
        terminal = Terminal(f"{prefix}desk-{index + 10:02d}", department="AB"[index % 2])
        terminal.honest_week(f"{prefix}{index}", levels=levels)
        made.append(terminal)
    return made


# -- S1 ----------------------------------------------------------------------------------------------


def test_an_honest_week_raises_no_flag_at_all() -> None:
    everyone = hall(*peers(6))
    assert supervision.supervise(everyone) == []
    assert len(everyone) > 1500


def test_self_press_catches_fives_pressed_before_the_invitation_and_after_log_in() -> None:
    desk = Terminal()
    desk.honest_week("E1")
    for n in range(14):  # between customers: the clerk's 5, then the queue system's invitation lapses
        desk.add(240, staff="E1", score=5, flags=("uninvited",))
        desk.add(30, "timeout", staff="E1", ticket=f"C{n:03d}")
    desk.add(300, staff="E2", score=4, ticket="D001")  # a colleague, then E1 back and pressing at once
    desk.add(60, staff="E1", score=5, flags=("uninvited",))
    [flag] = flags_of(desk.records, "S1-self-press")
    assert (flag.subject, flag.key, flag.week) == ("staff", "E1", "2026-W10")
    # 15, and the 5 customers of the honest week who pressed uninvited: the record cannot tell those
    assert flag.figures["clerk_presses"] == 20
    assert flag.figures["then_lapsed"] == 14
    assert flag.figures["after_login"] == 1
    assert num(flag, "share") >= num(flag, "min_share")
    assert len(flag.records) == 20
    assert all(desk.records[seq - 1].flags == ("uninvited",) for _, seq in flag.records)
    assert flags_of([r for r in desk.records if r.staff != "E1" or r.seq <= 300], "S1-self-press") == []


def test_self_press_sets_aside_children_late_customers_tickets_and_other_levels() -> None:
    desk = Terminal()
    desk.honest_week("E1")
    for n in range(15):  # the same number of uninvited presses, none of them the clerk's
        desk.add(240, staff="E1", score=5, flags=("uninvited",))
        desk.add(0.1, "amend", staff="E1", score=2, amends=desk.records[-1].seq, flags=("uninvited",))  # a child
        desk.add(200, "timeout", staff="E1", ticket=f"C{n:03d}")
        desk.add(25, staff="E1", score=5, flags=("uninvited",))  # the customer, late
        desk.add(200, staff="E1", score=4, flags=("uninvited",))  # not a 5
        desk.add(200, staff="E1", score=5)  # invited with the key: no ticket, but no flag either
    assert flags_of(desk.records, "S1-self-press") == []


def test_self_press_needs_volume_and_share() -> None:
    small = Terminal()
    small.honest_week("E1", services=50)
    for _ in range(9):  # a large share of a small week, but only nine
        small.add(240, staff="E1", score=5, flags=("uninvited",))
    assert flags_of(small.records, "S1-self-press") == []
    small.add(240, staff="E1", score=5, flags=("uninvited",))
    assert [f.key for f in flags_of(small.records, "S1-self-press")] == ["E1"]

    big = Terminal()
    big.honest_week("E1")
    for _ in range(6):  # eleven with the week's own five, but under 4 % of it
        big.add(240, staff="E1", score=5, flags=("uninvited",))
    [week] = [w for w in supervision.clerk_weeks(big.records) if w.staff == "E1"]
    assert supervision.self_press(week) is None
    flag = supervision.self_press(week, supervision.SelfPress(min_share=0.03))
    assert flag is not None
    assert flag.figures["clerk_presses"] == 11
    assert 0.03 <= num(flag, "share") < 0.04


# -- S2 and S3 ------------------------------------------------------------------------------------------


def without_lows(levels: tuple[int, ...], instead: int | None) -> tuple[int, ...]:
    """The levels with 1 and 2 pressed as `instead` (covers) or left out (not invited)."""
    if instead is None:
        return tuple(level for level in levels if level > 2)
    return tuple(instead if level <= 2 else level for level in levels)


def children_only_on(terminal: Terminal, keys: tuple[int, ...]) -> None:
    """Stray presses on the terminal can only be `keys` (1 and 2 covered, or not)."""
    records = terminal.records
    for index, record in enumerate(records):
        if not record.invited and not record.reasons and record.score is not None and record.score not in keys:
            records[index] = replace(record, score=keys[-1])


def test_covered_keys_lows_gone_and_no_stray_press_on_1_or_2() -> None:
    desk = Terminal("desk-01", "A")
    desk.honest_week("E1", levels=without_lows(LEVELS, 3))
    children_only_on(desk, (3, 4, 5))
    everyone = hall(desk, *peers(8))
    [flag] = flags_of(everyone, "S2-covered-keys")
    assert (flag.key, flag.week) == ("E1", "2026-W10")
    assert flag.figures["lows"] == 0
    assert flag.figures["stray_on_1_2"] == 0
    assert num(flag, "expected_lows") > 10
    assert num(flag, "chance") <= num(flag, "alpha")
    behind = {seq for _, seq in flag.records}
    assert behind == {
        r.seq for r in desk.records if (r.kind == "press" and r.invited and r.score == 3) or r.kind == "timeout"
    }
    assert flags_of(everyone, "S3-selective-invite") == []


def test_selective_invite_lows_gone_while_the_keys_work() -> None:
    desk = Terminal("desk-01", "A")
    desk.honest_week("E1", services=225, levels=without_lows(LEVELS, None))
    everyone = hall(desk, *peers(8))
    [flag] = flags_of(everyone, "S3-selective-invite")
    assert flag.key == "E1"
    assert flag.figures["lows"] == 0
    assert num(flag, "stray_on_1_2") >= 2
    assert all((desk.records[seq - 1].score or 9) <= 2 for _, seq in flag.records)
    assert flags_of(everyone, "S2-covered-keys") == []


def test_lows_that_vanish_by_chance_are_not_flagged() -> None:
    few = Terminal("desk-01", "A")  # a relief clerk's week: thirty ratings, none low
    few.honest_week("E1", services=30, levels=(5, 4, 5, 3, 5))
    liked = Terminal("desk-02", "A")  # peers as well liked as E2 are hardly ever unhappy
    liked.honest_week("E2", services=250, levels=(5,) * 9 + (4,))
    alike = peers(6, levels=(5,) * 44 + (4,) * 5 + (1,), prefix="Q")  # 2 % lows, 88 % fives
    everyone = hall(few, liked, *alike, *peers(4))
    assert flags_of(everyone, "S2-covered-keys") == []
    assert flags_of(everyone, "S3-selective-invite") == []
    # E2's zero is no news next to those peers; next to the others (10 % lows) it would be
    compared = [w for w in supervision.clerk_weeks(hall(liked, *peers(4))) if w.staff == "E2"]
    assert supervision.selective_invite(compared[0]) is not None


# -- terminals ------------------------------------------------------------------------------------------


def test_burst_many_ratings_in_a_minute() -> None:
    desk = Terminal()
    desk.honest_week("E1")
    assert flags_of(desk.records, "T1-burst") == []
    for _ in range(4):
        desk.add(12, staff="E1", score=5, flags=("uninvited",))
    [flag] = flags_of(desk.records, "T1-burst")
    assert (flag.subject, flag.key) == ("device", "desk-01")
    assert num(flag, "ratings") >= 4
    assert flag.figures["staff"] == ["E1"]


def test_same_timing_a_press_stored_twice_or_machine_gaps() -> None:
    desk = Terminal()
    desk.honest_week("E1")
    assert flags_of(desk.records, "T2-same-timing") == []
    twin = desk.add(300, staff="E1", score=5, ticket="X1")
    desk.records.append(replace(twin, seq=twin.seq + 1))
    [flag] = flags_of(desk.records, "T2-same-timing")
    assert flag.figures["same_boot_and_mono"] == 1
    assert {seq for _, seq in flag.records} == {twin.seq, twin.seq + 1}

    steady = Terminal()
    steady.honest_week("E1")
    for n in range(7):
        steady.add(60 + n % 2 * 0.4, staff="E1", score=5)
    [flag] = flags_of(steady.records, "T2-same-timing")
    assert num(flag, "steady_gaps") >= 5


def test_same_timing_two_records_of_one_event_are_not_a_twin() -> None:
    desk = Terminal()
    desk.honest_week("E1")
    amend = desk.add(300, "amend", staff="E1", score=2, amends=desk.records[-1].seq, reasons=(2,))
    desk.records.append(replace(amend, seq=amend.seq + 1, kind="timeout", score=None, amends=None, reasons=()))
    assert flags_of(desk.records, "T2-same-timing") == []


def test_seq_gap_missing_records_and_a_broken_chain() -> None:
    desk = Terminal()
    desk.honest_week("E1")
    assert flags_of(desk.records, "T3-seq-gap") == []
    gapped = [r for r in desk.records if r.seq not in (40, 41, 42)]
    [flag] = flags_of(gapped, "T3-seq-gap")
    assert flag.figures["missing_seqs"] == [40, 41, 42]
    assert flag.figures["staff_around"] == ["E1"]
    broken = list(desk.records)
    broken[59] = replace(broken[59], prev="f" * 64)
    [flag] = flags_of(broken, "T3-seq-gap")
    assert (flag.figures["chain_breaks"], flag.records) == (1, (("desk-01", 60),))
    # the record just before the period: its successor must follow it
    later = [r for r in desk.records if r.seq > 10]
    assert supervision.supervise(later, before={"desk-01": desk.records[9]}) == []
    [flag] = [f for f in supervision.supervise(later, before={"desk-01": desk.records[5]}) if f.rule == "T3-seq-gap"]
    assert flag.figures["missing_seqs"] == [7, 8, 9, 10]


def test_clock_placed_by_the_hub_jumped_or_running_backwards() -> None:
    desk = Terminal()
    desk.honest_week("E1")
    assert flags_of(desk.records, "T4-clock") == []
    records = list(desk.records)
    records[10] = replace(records[10], time_source="received")
    [flag] = flags_of(records, "T4-clock")
    assert (flag.figures["placed_by_hub"], flag.figures["by_source"]) == (1, {"received": 1})
    jumped = [
        replace(r, t_device=r.at_ms + 3_600_000) if r.seq > 20 and r.boot == "boot-0" else r for r in desk.records
    ]
    [flag] = flags_of(jumped, "T4-clock")
    assert flag.figures["wall_clock_jumps"] == 1
    backwards = list(desk.records)
    backwards[30] = replace(backwards[30], mono=0)
    [flag] = flags_of(backwards, "T4-clock")
    assert flag.figures["monotonic_backwards"] == 1


def test_every_rule_is_described_with_its_parameters() -> None:
    described = supervision.describe()
    assert [rule["id"] for rule in described] == [
        "S1-self-press",
        "S2-covered-keys",
        "S3-selective-invite",
        "T1-burst",
        "T2-same-timing",
        "T3-seq-gap",
        "T4-clock",
    ]
    assert all(rule["statement"] and rule["parameters"] for rule in described)
    assert {rule["subject"] for rule in described if rule["id"].startswith("S")} == {"staff"}
    assert described[0]["parameters"]["min_presses"] == supervision.SelfPress().min_presses


# -- from a hub database -------------------------------------------------------------------------------

KEY = SigningKey.generate()


def signed(records: list[Press], key: SigningKey = KEY) -> list[Rating]:
    """The crafted records as the terminal would have signed and chained them."""
    chain: list[Rating] = []
    prev = GENESIS
    for record in records:
        rating = Rating(
            device=record.device,
            seq=record.seq,
            kind=Kind(record.kind),
            t=record.at_ms,
            boot=record.boot or "boot-0",
            mono=record.mono or 0,
            fw="0.1.0",
            prev=prev,
            staff=record.staff,
            score=record.score,
            amends=record.amends,
            reasons=record.reasons,
            ticket=record.ticket,
            flags=tuple(Flag(f) for f in record.flags),
        ).signed(key)
        chain.append(rating)
        prev = rating.hash()
    return chain


def local_days(records: list[Press]) -> list[Press]:
    """The records with their day as the hub gives it: the site's date of `at_ms`."""
    return [
        replace(r, day=datetime.fromtimestamp(r.at_ms / 1000, ZoneInfo("Asia/Shanghai")).date().isoformat())
        for r in records
    ]


def store(hub_db: HubDb, records: list[Press], key: SigningKey = KEY, *, left_out: tuple[int, ...] = ()) -> None:
    """Ingest one terminal's crafted records, signed and chained, except the seqs `left_out`
    (signed, never sent: a gap in the stored seqs)."""
    chain = signed(records, key)
    runs = [list(run) for sent, run in itertools.groupby(chain, lambda r: r.seq not in left_out) if sent]
    ingest = hub_db.ingest()
    now = max(r.at_ms for r in records) + 60_000
    for run in runs:
        for first in range(0, len(run), 200):
            part = run[first : first + 200]
            outcome = hub_db.receive(topic(part[0].device, Channel.RATINGS), batch_bytes(key, part), now, ingest)
            assert outcome.stored == len(part)


def test_report_reads_a_hub_database_and_flags_from_what_ingest_stored(hub_db: HubDb) -> None:
    hub_db.writer.write(registry.add_device, "desk-01", KEY.public.hex, department="A", counter="1号窗口")
    for staff in ("E1", "E2"):
        hub_db.writer.write(registry.add_staff, staff, name=staff, department="A")
    desk = Terminal()
    desk.honest_week("E2", services=100)
    desk.clock = OPEN_MS + 7 * 86_400_000  # the next week: E1 presses fives between customers
    for n in range(12):
        desk.add(240, staff="E1", score=5, ticket=f"A{n:03d}")
        desk.add(240, staff="E1", score=5, flags=("uninvited",))
        desk.add(30, "timeout", staff="E1", ticket=f"B{n:03d}")
    desk.records[:] = local_days(desk.records)
    store(hub_db, desk.records)

    second_week = (date(2026, 3, 9), date(2026, 3, 15))
    presses, before = supervision.read_period(hub_db.reader, *second_week)
    assert [(p.seq, p.kind, p.staff, p.score, p.ticket, p.flags) for p in presses] == [
        (r.seq, r.kind, r.staff, r.score, r.ticket, r.flags) for r in desk.records if r.day >= "2026-03-09"
    ]
    assert before["desk-01"].seq == presses[0].seq - 1
    assert before["desk-01"].hash == presses[0].prev  # the chain goes on across the period's edge
    assert all(p.time_source == "device" and p.boot and p.mono is not None for p in presses)

    flags = supervision.report(hub_db.reader, *second_week)
    assert [(f["rule"], f["key"], f["week"]) for f in flags] == [("S1-self-press", "E1", "2026-W11")]
    assert flags[0]["figures"]["clerk_presses"] == 12
    assert flags[0]["records"] == {"desk-01": [p.seq for p in presses if p.flags == ("uninvited",)]}
    whole = supervision.report(hub_db.reader, date(2026, 3, 2), date(2026, 3, 15))
    assert [f["rule"] for f in whole] == ["S1-self-press"]  # the honest week before raises nothing
    assert supervision.report(hub_db.reader, date(2026, 4, 1), date(2026, 4, 30)) == []


def shanghai_ms(day: int, hour: int, minute: int) -> int:
    """UTC ms of 2026-03-`day` hour:minute on the site's clock."""
    return int(datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000)


def services(desk: Terminal, staff: str, count: int, start_ms: int) -> None:
    desk.clock = start_ms
    for n in range(count):
        desk.add(180 + n % 5 * 47, staff=staff, score=(5, 4, 5, 3, 5)[n % 5], ticket=f"{staff}{n:03d}")


def closed_presses(desk: Terminal, at_ms: int, gaps_s: tuple[float, ...]) -> None:
    """Presses on a terminal nobody is logged in to: records without a clerk (not in device_days)."""
    desk.clock = at_ms
    for gap in gaps_s:
        desk.add(gap, staff=None, score=5)


WEEK_11 = (date(2026, 3, 9), date(2026, 3, 15))


def period_by_day(hub_db: HubDb, first: date, last: date) -> tuple[list[Press], dict[str, Press]]:
    """The period as read_period read it before device_days: every rating of its days, by a scan."""
    rows = hub_db.reader.execute(
        f"SELECT {PRESS_COLUMNS} FROM ratings WHERE day BETWEEN ? AND ? ORDER BY device, seq",
        (first.isoformat(), last.isoformat()),
    ).fetchall()
    presses = [press_of_row(row) for row in rows]
    before = {}
    for device in dict.fromkeys(p.device for p in presses):
        seq = min(p.seq for p in presses if p.device == device)
        row = hub_db.reader.execute(
            f"SELECT {PRESS_COLUMNS} FROM ratings WHERE device = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
            (device, seq),
        ).fetchone()
        if row is not None:
            before[device] = press_of_row(row)
    return presses, before


def boundary_hub(hub_db: HubDb) -> dict[str, list[Press]]:
    """Three terminals around week 11 (2026-03-09..15), as stored (desk-01 without seqs 19 and 20):
    desk-01 works Sunday and Monday, with presses of nobody's on Sunday evening, at Monday dawn (a
    burst) and on Monday evening; desk-02 has a clerk only the weeks before and after, and a burst of
    nobody's in week 11; desk-03 never sent anything."""
    keys = {device: SigningKey.generate() for device in ("desk-01", "desk-02", "desk-03")}
    for device, key in keys.items():
        hub_db.writer.write(registry.add_device, device, key.public.hex, department="A")
    for staff in ("E1", "E2"):
        hub_db.writer.write(registry.add_staff, staff, name=staff, department="A")
    one = Terminal("desk-01")
    services(one, "E1", 10, shanghai_ms(8, 8, 30))
    closed_presses(one, shanghai_ms(8, 21, 0), (0,))
    closed_presses(one, shanghai_ms(9, 7, 50), (0, 12, 15, 13))
    services(one, "E1", 20, shanghai_ms(9, 8, 30))
    closed_presses(one, shanghai_ms(9, 20, 0), (0,))
    services(one, "E1", 3, shanghai_ms(16, 8, 30))
    two = Terminal("desk-02")
    services(two, "E2", 5, shanghai_ms(4, 9, 0))
    closed_presses(two, shanghai_ms(7, 10, 0), (0, 400))
    closed_presses(two, shanghai_ms(11, 12, 0), (0, 10, 13, 11, 12))
    services(two, "E2", 3, shanghai_ms(17, 9, 0))
    stored = {}
    for desk, left_out in ((one, (19, 20)), (two, ())):
        records = local_days(desk.records)
        store(hub_db, records, keys[desk.device], left_out=left_out)
        stored[desk.device] = [r for r in records if r.seq not in left_out]
    return stored


def test_read_period_goes_through_the_clerks_spans_and_returns_the_period_only(hub_db: HubDb) -> None:
    stored = boundary_hub(hub_db)
    presses, before = supervision.read_period(hub_db.reader, *WEEK_11)
    assert (presses, before) == period_by_day(hub_db, *WEEK_11)  # what the scan by day read
    assert [(p.device, p.seq) for p in presses] == [
        (r.device, r.seq) for device in sorted(stored) for r in stored[device] if "2026-03-09" <= r.day <= "2026-03-15"
    ]
    assert {p.day for p in presses} == {"2026-03-09", "2026-03-11"}
    assert sum(p.staff is None for p in presses) == 10  # desk-01's dawn and evening, desk-02's burst
    assert before["desk-01"].day == "2026-03-08"
    assert before["desk-01"].staff is None  # Sunday evening's press, beyond the Sunday span
    assert (before["desk-02"].day, before["desk-02"].staff) == ("2026-03-07", None)
    assert supervision.read_period(hub_db.reader, date(2026, 4, 1), date(2026, 4, 30)) == ([], {})
    sunday = supervision.read_period(hub_db.reader, date(2026, 3, 8), date(2026, 3, 8))[0]
    assert [p.seq for p in sunday] == list(range(1, 12))  # the span and the evening press after it


def test_a_terminal_across_the_period_edge_gives_the_flags_it_gives_read_whole(hub_db: HubDb) -> None:
    boundary_hub(hub_db)
    week = supervision.report(hub_db.reader, *WEEK_11)
    assert [(f["rule"], f["key"], f["week"]) for f in week] == [
        ("T1-burst", "desk-01", "2026-W11"),
        ("T1-burst", "desk-02", "2026-W11"),
        ("T3-seq-gap", "desk-01", "2026-W11"),
    ]
    assert week[0]["records"] == {"desk-01": [12, 13, 14, 15]}  # the dawn burst, before the first log-in
    assert week[2]["figures"]["missing_seqs"] == [19, 20]
    whole = supervision.report(hub_db.reader, date(2026, 3, 2), date(2026, 3, 22))
    assert week == [f for f in whole if f["week"] == "2026-W11"]
    presses, before = period_by_day(hub_db, *WEEK_11)
    assert week == [
        f.as_dict()
        for f in sorted(
            supervision.supervise(presses, before=before), key=lambda f: (f.subject != "staff", f.rule, f.week, f.key)
        )
    ]


# -- pingjia hub supervise ---------------------------------------------------------------------------------


def supervise_cli(*argv: str) -> int:
    """`pingjia hub supervise ARGV` through its own parser (hub.cli registers the same command)."""
    parser = argparse.ArgumentParser(prog="pingjia hub")
    supervision_cli.add_command(parser.add_subparsers(dest="hub_command", required=True))
    args = parser.parse_args(["supervise", *argv])
    return int(args.func(args))


def test_cli_prints_the_flags_as_json_or_a_table(hub_db: HubDb, capsys: pytest.CaptureFixture[str]) -> None:
    boundary_hub(hub_db)
    assert supervise_cli("--db", hub_db.url, "--period", "2026-W11", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == supervision.report(hub_db.reader, *WEEK_11)
    assert supervise_cli("--db", hub_db.url, "--period", "2026-03-09..2026-03-15") == 0
    header, *lines, summary = capsys.readouterr().out.splitlines()
    assert header.split("\t") == ["rule", "subject", "key", "week", "records", "figures"]
    assert [line.split("\t")[:5] for line in lines] == [
        ["T1-burst", "device", "desk-01", "2026-W11", "4"],
        ["T1-burst", "device", "desk-02", "2026-W11", "5"],
        ["T3-seq-gap", "device", "desk-01", "2026-W11", "0"],
    ]
    assert "missing=2" in lines[2]
    assert summary.startswith("# 3 flag(s) in 2026-03-09..2026-03-15")
    assert "never changes a figure" in summary


def test_cli_rules_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert supervise_cli("--rules") == 0
    assert json.loads(capsys.readouterr().out) == supervision.describe()
    assert supervise_cli("--db", f"sqlite:///{tmp_path / 'hub.sqlite3'}", "--period", "2026-W99") == 2
    assert capsys.readouterr().err.startswith("pingjia hub supervise: period '2026-W99'")
    assert supervise_cli("--db", f"sqlite:///{tmp_path / 'none.sqlite3'}", "--period", "2026-W11") == 2
    assert capsys.readouterr().err.startswith("pingjia hub supervise: ")
    assert supervise_cli() == 2
    assert capsys.readouterr().err == "pingjia hub supervise: --period is required (or --rules)\n"
    parser = argparse.ArgumentParser()
    supervision_cli.add_command(parser.add_subparsers())
    assert "never changes a figure" in " ".join(parser.format_help().split())


def test_the_records_reach_the_rules_in_seq_order_whatever_order_they_come_in() -> None:
    desk = Terminal()
    desk.honest_week("E1")
    shuffled = list(itertools.chain(desk.records[1::2], desk.records[::2]))
    assert supervision.supervise(shuffled) == supervision.supervise(desk.records) == []
    gapped = [r for r in shuffled if r.seq != 77]
    assert [f.figures["missing_seqs"] for f in supervision.supervise(gapped)] == [[77]]


@pytest.mark.parametrize("day", ["2026-03-02", "2026-03-08", "2026-03-09", "2027-01-01"])
def test_iso_weeks(day: str) -> None:
    year, week, _ = date.fromisoformat(day).isocalendar()
    assert supervision.iso_week(day) == f"{year}-W{week:02d}"


def test_the_supervise_command_is_a_hub_command(capsys: pytest.CaptureFixture[str]) -> None:
    from pingjia.cli import main

    assert main(["hub", "supervise", "--rules"]) == 0
    rules = {rule["id"] for rule in json.loads(capsys.readouterr().out)}
    assert {"S1-self-press", "S2-covered-keys", "S3-selective-invite", "T3-seq-gap"} <= rules
