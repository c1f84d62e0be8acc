"""Supervision of terminals: flags for terminals whose records look wrong (subject "device").

Rules that flag terminals (the simulator does not fake these, so they are tested on crafted streams
and must stay silent on an honest fleet, not measured per clerk):

- T1-burst: more ratings in a short window than services could give.
- T2-same-timing: one press stored twice (the same boot and monotonic time), or a run of ratings
  at machine-regular intervals.
- T3-seq-gap: seqs missing between stored records, or a record whose `prev` is not the hash of
  the stored record before it.
- T4-clock: records placed by the hub rather than by the terminal's own clock, or a wall clock
  that jumped within a boot.

Each reads one terminal's ISO week (hub.supervision_weeks.TerminalWeek) and raises at most one
flag; hub.supervision runs them with the clerks' rules (`supervise`, `report`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

from hub.supervision_weeks import DEVICE, Press, RuleInfo, SupervisionFlag, TerminalWeek

__all__ = [
    "TERMINAL_RULES",
    "Burst",
    "SameTiming",
    "SeqGap",
    "WallClock",
    "burst",
    "same_timing",
    "seq_gap",
    "wall_clock",
]


@dataclass(frozen=True, kw_only=True)
class Burst:
    """T1-burst: at least `min_ratings` ratings (presses not flagged misuse) within `window_s` on
    one terminal. A service takes minutes; presses a fraction of a second apart are already
    flagged misuse by the terminal, so this catches someone pressing now and then, just slower
    than the misuse interval. It names the staff logged in but flags the terminal."""

    min_ratings: int = 4
    window_s: float = 60.0


def burst(week: TerminalWeek, rule: Burst = Burst()) -> SupervisionFlag | None:
    """T1-burst on one terminal's week: the flag, or None."""
    ratings = [r for r in week.records if r.rating]
    window_ms = rule.window_s * 1000
    best: list[Press] = []
    start = 0
    for end, record in enumerate(ratings):
        while record.at_ms - ratings[start].at_ms > window_ms:
            start += 1
        if end - start + 1 > len(best):
            best = ratings[start : end + 1]
    if len(best) < rule.min_ratings:
        return None
    return SupervisionFlag(
        "T1-burst",
        DEVICE,
        week.device,
        week.week,
        {
            "ratings": len(best),
            "min_ratings": rule.min_ratings,
            "within_s": round((best[-1].at_ms - best[0].at_ms) / 1000, 1),
            "window_s": rule.window_s,
            "staff": sorted({r.staff or "" for r in best}),
        },
        tuple((r.device, r.seq) for r in best),
    )


@dataclass(frozen=True, kw_only=True)
class SameTiming:
    """T2-same-timing: two records of one terminal with the same boot and monotonic time (one press
    stored twice, or a record copied), or at least `min_run` consecutive gaps between ratings that
    differ from each other by at most `tolerance_s` while each is at least `min_gap_s` (a machine
    pressing: customers' services never keep time like that)."""

    min_run: int = 5
    tolerance_s: float = 1.0
    min_gap_s: float = 5.0


def same_timing(week: TerminalWeek, rule: SameTiming = SameTiming()) -> SupervisionFlag | None:
    """T2-same-timing on one terminal's week: the flag, or None."""
    seen: dict[tuple[str, int, str, int | None, str | None], Press] = {}
    twins: list[Press] = []
    for record in week.records:
        if record.boot is None or record.mono is None:
            continue
        # One event can store two records in the same millisecond (a reason amend and a timeout,
        # say); the same press twice is the same kind, level and clerk.
        first = seen.setdefault((record.boot, record.mono, record.kind, record.score, record.staff), record)
        if first is not record:
            twins += [first, record]
    ratings = [r for r in week.records if r.rating]
    gaps = [(b.at_ms - a.at_ms, index) for index, (a, b) in enumerate(itertools.pairwise(ratings))]
    best_run: tuple[int, int] = (0, 0)  # (gaps in the run, index of its last gap)
    run = 0
    for position, (gap, index) in enumerate(gaps):
        steady = (
            position > 0
            and gap >= rule.min_gap_s * 1000
            and gaps[position - 1][0] >= rule.min_gap_s * 1000
            and abs(gap - gaps[position - 1][0]) <= rule.tolerance_s * 1000
        )
        run = run + 1 if steady else 1
        if run > best_run[0]:
            best_run = (run, index)
    regular = best_run[0] >= rule.min_run
    if not twins and not regular:
        return None
    behind = list(twins)
    if regular:
        last = best_run[1] + 1
        behind += ratings[last - best_run[0] : last + 1]
    return SupervisionFlag(
        "T2-same-timing",
        DEVICE,
        week.device,
        week.week,
        {
            "same_boot_and_mono": len(twins) // 2,
            "steady_gaps": best_run[0] if regular else 0,
            "min_run": rule.min_run,
            "tolerance_s": rule.tolerance_s,
            "staff": sorted({r.staff or "" for r in behind}),
        },
        tuple(dict.fromkeys((r.device, r.seq) for r in behind)),
    )


@dataclass(frozen=True, kw_only=True)
class SeqGap:
    """T3-seq-gap: seqs missing between the terminal's stored records of the week (and the record
    stored just before it, when known), or a record whose `prev` is not the hash of the stored
    record before it. A gap may be records still on their way (a terminal offline): look again
    once its backlog is in; a gap that stays is records deleted on the terminal, or never sent. A
    chain break among stored records is a database edited behind the hub's back (ingest refuses a
    broken chain). `max_listed` bounds the missing seqs written out."""

    min_missing: int = 1
    max_listed: int = 50


def seq_gap(week: TerminalWeek, rule: SeqGap = SeqGap()) -> SupervisionFlag | None:
    """T3-seq-gap on one terminal's week: the flag, or None."""
    records = list(week.records)
    previous = week.before
    missing: list[int] = []
    breaks: list[Press] = []
    around: set[str] = set()
    for record in records:
        if previous is not None:
            if record.seq > previous.seq + 1:
                missing.extend(range(previous.seq + 1, record.seq))
                around.update(s for s in (previous.staff, record.staff) if s)
            elif record.seq == previous.seq + 1 and previous.hash and record.prev and record.prev != previous.hash:
                breaks.append(record)
                around.update(s for s in (previous.staff, record.staff) if s)
        previous = record
    if len(missing) < rule.min_missing and not breaks:
        return None
    return SupervisionFlag(
        "T3-seq-gap",
        DEVICE,
        week.device,
        week.week,
        {
            "missing": len(missing),
            "missing_seqs": missing[: rule.max_listed],
            "min_missing": rule.min_missing,
            "chain_breaks": len(breaks),
            "staff_around": sorted(around),
        },
        tuple((r.device, r.seq) for r in breaks),
    )


@dataclass(frozen=True, kw_only=True)
class WallClock:
    """T4-clock: at least `min_records` records the hub placed by their boot's anchor or by their
    receipt (the terminal's wall clock was off or unset), or a wall clock that moved by more than
    `jump_s` against the monotonic clock within one boot (someone set it while it ran), or a
    monotonic clock that ran backwards within a boot. A clock moved can put ratings on another day
    or week; it flags the terminal for a technician, not a clerk."""

    min_records: int = 1
    jump_s: float = 120.0


def wall_clock(week: TerminalWeek, rule: WallClock = WallClock()) -> SupervisionFlag | None:
    """T4-clock on one terminal's week: the flag, or None."""
    placed = [r for r in week.records if r.time_source != "device"]
    jumps: list[Press] = []
    backwards: list[Press] = []
    last: dict[str, Press] = {}
    for record in week.records:
        if record.boot is None or record.mono is None:
            continue
        before = last.get(record.boot)
        if before is not None and before.mono is not None:
            wall = record.t_device if record.t_device is not None else record.at_ms
            wall_before = before.t_device if before.t_device is not None else before.at_ms
            if record.mono < before.mono:
                backwards.append(record)
            elif abs((wall - record.mono) - (wall_before - before.mono)) > rule.jump_s * 1000:
                jumps.append(record)
        last[record.boot] = record
    if len(placed) < rule.min_records and not jumps and not backwards:
        return None
    behind = placed + jumps + backwards
    return SupervisionFlag(
        "T4-clock",
        DEVICE,
        week.device,
        week.week,
        {
            "placed_by_hub": len(placed),
            "by_source": dict(Counter(r.time_source for r in placed)),
            "min_records": rule.min_records,
            "wall_clock_jumps": len(jumps),
            "jump_s": rule.jump_s,
            "monotonic_backwards": len(backwards),
        },
        tuple(dict.fromkeys((r.device, r.seq) for r in behind)),
    )


TERMINAL_RULES: tuple[RuleInfo, ...] = (
    RuleInfo(
        "T1-burst",
        DEVICE,
        "burst",
        "Flags a terminal with more ratings in a minute than services could give (someone pressing "
        "slower than the misuse interval). It names the staff logged in; the simulator does not fake "
        "this, so it is not measured per clerk.",
    ),
    RuleInfo(
        "T2-same-timing",
        DEVICE,
        "same_timing",
        "Flags a terminal with one press stored twice (same boot and monotonic time) or ratings at "
        "machine-regular intervals. Not measured per clerk.",
    ),
    RuleInfo(
        "T3-seq-gap",
        DEVICE,
        "seq_gap",
        "Flags a terminal whose stored seqs have gaps (records deleted or not yet delivered) or whose "
        "stored chain is broken (a record replaced in the database). Not measured per clerk.",
    ),
    RuleInfo(
        "T4-clock",
        DEVICE,
        "wall_clock",
        "Flags a terminal whose records the hub had to place by anchor or receipt, or whose wall clock "
        "jumped within a boot (ratings moved to another day). Not measured per clerk.",
    ),
)
