"""Supervision: what its rules read (stored records as `Press`, grouped into clerks' and terminals'
ISO weeks, with the figures a clerk's week shows) and what they give (`SupervisionFlag`).

The rules themselves are in hub.supervision (the clerks': S1-S3, and `supervise`, which runs them
all) and hub.supervision_terminals (the terminals': T1-T4); both read these types, so they live
here, below both.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

__all__ = [
    "DEVICE",
    "PRESS_COLUMNS",
    "STAFF",
    "ClerkWeek",
    "Figures",
    "Press",
    "RuleInfo",
    "SupervisionFlag",
    "TerminalWeek",
    "clerk_weeks",
    "figures_of",
    "iso_week",
    "press_of_row",
    "strays",
    "terminal_weeks",
]

STAFF = "staff"
DEVICE = "device"

# -- what the rules read -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Press:
    """One stored record as the rules read it: a row of `ratings`, with the ticket and reasons of
    its signed record. Times are UTC ms; `day` is the site's date of `at_ms`."""

    device: str
    seq: int
    kind: str  # press, timeout, amend
    staff: str | None
    score: int | None
    at_ms: int  # when it happened, as the hub placed it
    day: str
    department: str = ""
    flags: tuple[str, ...] = ()  # misuse, uninvited
    ticket: str | None = None
    amends: int | None = None
    reasons: tuple[int, ...] = ()
    answers: bool = False  # follow-up answers other than reasons (a screen's sub-scores, a sealed contact)
    t_device: int | None = None  # the terminal's wall clock; None: the same as at_ms
    boot: str | None = None
    mono: int | None = None
    time_source: str = "device"  # device, anchor or received (hub.clock)
    prev: str = ""
    hash: str = ""

    @property
    def misuse(self) -> bool:
        return "misuse" in self.flags

    @property
    def uninvited(self) -> bool:
        return "uninvited" in self.flags

    @property
    def rating(self) -> bool:
        """A press that counts as a rating: not flagged misuse (uninvited ones included)."""
        return self.kind == "press" and not self.misuse

    @property
    def invited(self) -> bool:
        """An answer to an invitation: a timeout, or a press (or its amend) with neither flag."""
        return self.kind == "timeout" or not (self.misuse or self.uninvited)

    @property
    def follow_up(self) -> bool:
        """An amend that carries a customer's follow-up answers, not a new level pressed."""
        return bool(self.reasons) or self.answers


def iso_week(day: str) -> str:
    """`YYYY-Www` of a site date `YYYY-MM-DD` (hub.report's label of an ISO week)."""
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class SupervisionFlag:
    """A finding: which rule, about whom (a clerk or a terminal), which week, the figures it
    measured beside its thresholds, and the records (device, seq) behind it."""

    rule: str
    subject: str  # "staff" or "device"
    key: str  # the staff id or the device id
    week: str
    figures: Mapping[str, object]
    records: tuple[tuple[str, int], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        by_device: dict[str, list[int]] = defaultdict(list)
        for device, seq in self.records:
            by_device[device].append(seq)
        return {
            "rule": self.rule,
            "subject": self.subject,
            "key": self.key,
            "week": self.week,
            "figures": dict(self.figures),
            "records": {device: sorted(seqs) for device, seqs in sorted(by_device.items())},
        }


@dataclass(frozen=True)
class RuleInfo:
    """A rule as `describe` shows it."""

    id: str
    subject: str  # "staff" (a clerk) or "device" (a terminal)
    parameters: str  # the field of hub.supervision.Rules holding them
    statement: str


@dataclass(frozen=True, slots=True)
class Figures:
    """What a clerk's week shows, counted from their records (summed over clerks: a department).

    `ratings` are answers to an invitation (presses with neither flag); `lows` those whose latest
    level (after the customer's own amend) is 1 or 2. `stray` are key presses outside any
    invitation (uninvited or misuse presses, and amends that pressed a new key on them): children,
    bumps, late customers, clerks; `stray_low` those on keys 1 or 2.
    """

    ratings: int = 0
    lows: int = 0
    threes: int = 0
    fives: int = 0
    timeouts: int = 0
    stray: int = 0
    stray_low: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __sub__(self, other: Figures) -> Figures:
        return Figures(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))


_BURST_MS = 1_000  # presses this close together are one hand playing with the keys


def _levels(ordered: Sequence[Press]) -> tuple[dict[tuple[str, int], int], set[tuple[str, int]]]:
    """From records in (device, seq) order: the latest level of each amended rating, as its
    customer chose it, and the amends that were not the customer's: followed within a second by
    misuse presses, they are a child at the keys whose first press amended the last rating."""
    latest: dict[tuple[str, int], int] = {}
    played: set[tuple[str, int]] = set()
    for record, after in zip(ordered, [*ordered[1:], None], strict=True):
        if record.kind != "amend" or record.amends is None or record.score is None or record.follow_up:
            continue
        if (
            after is not None
            and after.device == record.device
            and after.misuse
            and after.at_ms - record.at_ms < _BURST_MS
        ):
            played.add((record.device, record.seq))
        else:
            latest[(record.device, record.amends)] = record.score
    return latest, played


def strays(ordered: Sequence[Press]) -> list[Press]:
    """Keys pressed outside any invitation: uninvited or misuse presses, their re-press amends
    (not follow-up answers), and amends a child made of a customer's rating."""
    _, played = _levels(ordered)
    return [
        r
        for r in ordered
        if r.score is not None
        and r.kind != "timeout"
        and ((not r.invited and not r.follow_up) or (r.device, r.seq) in played)
    ]


def figures_of(records: Iterable[Press]) -> Figures:
    """The Figures of one clerk's records (see Figures and `_levels`)."""
    ordered = sorted(records, key=lambda r: (r.device, r.seq))
    latest, _ = _levels(ordered)
    ratings = lows = threes = fives = timeouts = 0
    for record in ordered:
        if record.kind == "timeout":
            timeouts += 1
        elif record.kind == "press" and record.invited and record.score is not None:
            level = latest.get((record.device, record.seq), record.score)
            ratings += 1
            lows += level <= 2
            threes += level == 3
            fives += level == 5
    stray = strays(ordered)
    stray_low = sum(1 for r in stray if r.score is not None and r.score <= 2)
    return Figures(ratings, lows, threes, fives, timeouts, len(stray), stray_low)


@dataclass(frozen=True, slots=True)
class ClerkWeek:
    """One clerk's ISO week: their records, the week's records of each terminal they used (to see
    neighbours: log-ins, timeouts, children), their department's other clerks' figures, and every
    other clerk's figures that week (the peers S2 and S3 compare with)."""

    staff: str
    week: str
    department: str
    records: tuple[Press, ...]  # the clerk's own, by device and seq
    streams: Mapping[str, Sequence[Press]]  # device -> that week's records, by seq
    figures: Figures
    department_figures: Figures  # the department's other clerks, the same week
    peers: tuple[Figures, ...] = ()  # each other clerk of the hall, the same week


@dataclass(frozen=True, slots=True)
class TerminalWeek:
    """One terminal's ISO week of records by seq, and the stored record just before (None: none
    known, so the week's first seq is not checked against anything)."""

    device: str
    week: str
    records: tuple[Press, ...]
    before: Press | None = None


def clerk_weeks(presses: Iterable[Press]) -> list[ClerkWeek]:
    """Every clerk's week of `presses` (records without staff belong to no clerk)."""
    streams, by_clerk = _index(presses)
    own_figures = {key: figures_of(records) for key, records in by_clerk.items()}
    department_of = {
        key: Counter(r.department for r in records).most_common(1)[0][0] for key, records in by_clerk.items()
    }
    totals: dict[tuple[str, str], Figures] = defaultdict(Figures)
    hall: dict[str, list[tuple[str, Figures]]] = defaultdict(list)
    for (staff, week), figures in sorted(own_figures.items()):
        totals[(department_of[(staff, week)], week)] += figures
        hall[week].append((staff, figures))
    found = []
    for (staff, week), records in sorted(by_clerk.items()):
        department = department_of[(staff, week)]
        devices = sorted({r.device for r in records})
        found.append(
            ClerkWeek(
                staff=staff,
                week=week,
                department=department,
                records=tuple(sorted(records, key=lambda r: (r.device, r.seq))),
                streams={device: streams[(device, week)] for device in devices},
                figures=own_figures[(staff, week)],
                department_figures=totals[(department, week)] - own_figures[(staff, week)],
                peers=tuple(figures for other, figures in hall[week] if other != staff),
            )
        )
    return found


def terminal_weeks(presses: Iterable[Press], before: Mapping[str, Press] | None = None) -> list[TerminalWeek]:
    """Every terminal's week of `presses`; `before` holds, per device, the stored record just
    before the first of them (read from the database by `report`)."""
    streams, _ = _index(presses)
    found = []
    previous: dict[str, Press | None] = dict((before or {}).items())
    for device, week in sorted(streams):
        records = tuple(streams[(device, week)])
        found.append(TerminalWeek(device, week, records, previous.get(device)))
        previous[device] = records[-1]
    return found


def _index(
    presses: Iterable[Press],
) -> tuple[dict[tuple[str, str], list[Press]], dict[tuple[str, str], list[Press]]]:
    streams: dict[tuple[str, str], list[Press]] = defaultdict(list)
    by_clerk: dict[tuple[str, str], list[Press]] = defaultdict(list)
    for record in presses:
        week = iso_week(record.day)
        streams[(record.device, week)].append(record)
        if record.staff is not None:
            by_clerk[(record.staff, week)].append(record)
    for stream in streams.values():
        stream.sort(key=lambda r: r.seq)
    return streams, by_clerk


# -- from the hub database -----------------------------------------------------------------------------

PRESS_COLUMNS = (  # the columns of `ratings` that press_of_row reads, in its order
    "device, seq, kind, staff, score, amends, flags, department, at_ms, day, t_device, boot, mono, "
    "time_source, prev, hash, record"
)


def press_of_row(row: Sequence[Any]) -> Press:
    """A row of `ratings` (PRESS_COLUMNS) as the rules read it."""
    device, seq, kind, staff, score, amends, flags, department, at_ms, day, t_device, boot, mono = row[:13]
    time_source, prev, digest, record = row[13:]
    signed = json.loads(record) if record else {}
    return Press(
        device=str(device),
        seq=int(seq),
        kind=str(kind),
        staff=staff,
        score=None if score is None else int(score),
        at_ms=int(at_ms),
        day=str(day),
        department=str(department or ""),
        flags=tuple(f for f in str(flags or "").split(",") if f),
        ticket=signed.get("ticket"),
        amends=None if amends is None else int(amends),
        reasons=tuple(signed.get("reasons", ())),
        answers="subscores" in signed or "contact" in signed,
        t_device=None if t_device is None else int(t_device),
        boot=boot,
        mono=None if mono is None else int(mono),
        time_source=str(time_source or "device"),
        prev=str(prev),
        hash=str(digest),
    )
