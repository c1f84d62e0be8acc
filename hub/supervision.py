"""Supervision: flags for clerks who fake or steer ratings, and for terminals whose records look wrong.

Staff must not steer or fake ratings (FIELD, `002` §7); the real cases are clerks pressing 非常满意
themselves, covers over the low keys, and clerks choosing whom to ask. Each rule reads a clerk's
(or a terminal's) ISO week of stored records and raises at most one flag, with the records behind
it and its measured figures beside its thresholds. A flag is a finding for a supervisor to look
at: nothing is deleted, hidden or recounted because of it.

What a record shows of an invitation (device.flow, invited mode): a press inside an invitation
window carries no flag, and the queue system's `ticket` when the queue system invited (the invite
key gives none); a press with no invitation open is flagged `uninvited`; an invitation nobody
answered is a `timeout` record (with the ticket, if any); presses within the misuse interval after
a rating are flagged `misuse`; a second press within the amend window is an `amend`, and so are
the reason codes after a level 1 or 2. Log-in and log-out are not records: they show only as a
change of `staff` between consecutive records of a terminal.

Rules that flag clerks (subject "staff", in this module; their precision and recall per clerk-week
are measured against simulated ground truth: simulator/weeks.py, `python -m simulator.bench_supervision`):

- S1-self-press: 非常满意 pressed with no invitation and no ticket, not a child's burst and not a
  customer pressing after their invitation lapsed, many times in a week.
- S2-covered-keys: the clerk's customers (almost) never press 1 or 2 where clerks as well liked
  press them, and nobody presses keys 1 and 2 at their terminal, not even the stray presses
  (children, bumps) that hit them elsewhere in the department.
- S3-selective-invite: the same vanished lows, but stray presses hit keys 1 and 2: the keys work,
  and the unhappy customers were not asked.

Rules that flag terminals (subject "device"): T1-burst, T2-same-timing, T3-seq-gap, T4-clock, in
hub.supervision_terminals. What the rules read (`Press`, clerks' and terminals' weeks, `Figures`)
and give (`SupervisionFlag`) is in hub.supervision_weeks; this module re-exports it.

`supervise` runs every rule over records in memory (`Press`); `report` reads the site's days
first..last from a hub database and returns the flags as JSON-ready dicts; `describe` lists the
rules with their statements and parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from hub.queries import Reader
from hub.supervision_terminals import (
    TERMINAL_RULES,
    Burst,
    SameTiming,
    SeqGap,
    WallClock,
    burst,
    same_timing,
    seq_gap,
    wall_clock,
)
from hub.supervision_weeks import (
    PRESS_COLUMNS,
    STAFF,
    ClerkWeek,
    Figures,
    Press,
    RuleInfo,
    SupervisionFlag,
    TerminalWeek,
    clerk_weeks,
    figures_of,
    iso_week,
    press_of_row,
    strays,
    terminal_weeks,
)

__all__ = [
    "RULES",
    "Burst",
    "ClerkWeek",
    "CoveredKeys",
    "Figures",
    "LowsVanish",
    "Press",
    "Rules",
    "SameTiming",
    "SelectiveInvite",
    "SelfPress",
    "SeqGap",
    "SupervisionFlag",
    "TerminalWeek",
    "WallClock",
    "burst",
    "clerk_weeks",
    "covered_keys",
    "describe",
    "figures_of",
    "iso_week",
    "read_period",
    "report",
    "same_timing",
    "selective_invite",
    "self_press",
    "seq_gap",
    "supervise",
    "terminal_weeks",
    "wall_clock",
]


def _poisson_at_most(count: int, mean: float) -> float:
    """P(X <= count) for X Poisson with this mean."""
    if mean <= 0:
        return 1.0
    term = total = math.exp(-mean)
    for k in range(1, count + 1):
        term *= mean / k
        total += term
    return min(1.0, total)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


# -- S1: the clerk presses 非常满意 ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SelfPress:
    """S1-self-press. A clerk press is a press of level 5 with no invitation open (`uninvited`)
    and no ticket, that is neither followed within `child_gap_s` by another record of the terminal
    (a child's or a bump's burst: amends and misuse presses come fractions of a second apart) nor
    preceded within `late_s` by a timeout of the same terminal (the invited customer pressing after
    the window lapsed). The rule speaks when a clerk's week has at least `min_presses` of them and
    they are at least `min_share` of the clerk's ratings and timeouts."""

    min_presses: int = 10
    min_share: float = 0.04
    child_gap_s: float = 3.0  # the terminal's misuse interval
    late_s: float = 120.0
    lapse_s: float = 45.0  # evidence only: a timeout this soon after the press is the service it stood for


def self_press(week: ClerkWeek, rule: SelfPress = SelfPress()) -> SupervisionFlag | None:
    """S1-self-press on one clerk's week: the flag, or None."""
    found: list[Press] = []
    lapsed = after_login = 0
    for stream in week.streams.values():
        for index, record in enumerate(stream):
            if (
                record.staff != week.staff
                or not record.rating
                or record.score != 5
                or record.ticket is not None
                or not record.uninvited
            ):
                continue
            after = stream[index + 1] if index + 1 < len(stream) else None
            before = stream[index - 1] if index > 0 else None
            if after is not None and after.at_ms - record.at_ms < rule.child_gap_s * 1000:
                continue
            if before is not None and before.kind == "timeout" and record.at_ms - before.at_ms <= rule.late_s * 1000:
                continue
            found.append(record)
            if after is not None and after.kind == "timeout" and after.at_ms - record.at_ms <= rule.lapse_s * 1000:
                lapsed += 1
            if before is None or before.staff != week.staff or before.day != record.day:
                after_login += 1
    answered = sum(1 for r in week.records if r.rating or r.kind == "timeout")
    share = len(found) / answered if answered else 0.0
    if len(found) < rule.min_presses or share < rule.min_share:
        return None
    return SupervisionFlag(
        "S1-self-press",
        STAFF,
        week.staff,
        week.week,
        {
            "clerk_presses": len(found),
            "min_presses": rule.min_presses,
            "share": round(share, 4),
            "min_share": rule.min_share,
            "ratings_and_timeouts": answered,
            "then_lapsed": lapsed,  # an invitation followed and nobody answered it: its customer was not asked
            "after_login": after_login,
        },
        tuple((r.device, r.seq) for r in found),
    )


# -- S2 and S3: the clerk's customers never press 1 or 2 ------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LowsVanish:
    """Shared by S2 and S3: have the clerk's customers' levels 1 and 2 vanished?

    Clerks differ (a well-liked clerk's customers are seldom unhappy), so the clerk is compared
    with the `peers` other clerks of the hall that week whose customers are as often 非常满意 as
    theirs (nearest share of level 5 among their ratings; peers with fewer than
    `min_peer_ratings` ratings say too little and are left out). At `low_factor` times those
    peers' share of 1 and 2, the clerk's ratings would give `expected` lows; the lows have
    vanished when there are at most `max_lows` and seeing so few had a chance of at most `alpha`.
    """

    max_lows: int = 1  # a child now and then amends a rating to 1 or 2
    peers: int = 6
    min_peer_ratings: int = 100
    low_factor: float = 0.7
    alpha: float = 0.01


@dataclass(frozen=True, kw_only=True)
class CoveredKeys:
    """S2-covered-keys: the lows have vanished (`lows`) and keys 1 and 2 were pressed at most
    `max_stray_low` times by anyone outside an invitation, where the department's stray presses
    hit them so often that this had a chance of at most `alpha`."""

    lows: LowsVanish = field(default_factory=LowsVanish)
    max_stray_low: int = 0
    alpha: float = 0.005


@dataclass(frozen=True, kw_only=True)
class SelectiveInvite:
    """S3-selective-invite: the lows have vanished (`lows`) but stray presses hit keys 1 or 2 at
    least `min_stray_low` times: the keys work, and the unhappy customers were not asked."""

    lows: LowsVanish = field(default_factory=LowsVanish)
    min_stray_low: int = 2


def _lows_vanished(week: ClerkWeek, rule: LowsVanish) -> dict[str, object] | None:
    own, department = week.figures, week.department_figures
    if own.lows > rule.max_lows or own.ratings == 0:
        return None
    liked = own.fives / own.ratings
    alike = sorted(
        (abs(peer.fives / peer.ratings - liked), index)
        for index, peer in enumerate(week.peers)
        if peer.ratings >= max(1, rule.min_peer_ratings)
    )[: rule.peers]
    chosen = [week.peers[index] for _, index in alike]
    peer_ratings = sum(peer.ratings for peer in chosen)
    if not peer_ratings:
        return None
    rate = sum(peer.lows for peer in chosen) / peer_ratings
    mean = own.ratings * rate * rule.low_factor
    chance = _poisson_at_most(own.lows, mean)
    if chance > rule.alpha:
        return None
    return {
        "ratings": own.ratings,
        "lows": own.lows,
        "max_lows": rule.max_lows,
        "share_5": _share(own.fives, own.ratings),
        "peers_alike": len(chosen),
        "peers_share_5": _share(sum(peer.fives for peer in chosen), peer_ratings),
        "peers_low_share": round(rate, 4),
        "low_factor": rule.low_factor,
        "expected_lows": round(mean, 1),
        "chance": float(f"{chance:.3g}"),
        "alpha": rule.alpha,
        "department_low_share": _share(department.lows, department.ratings),
        "share_3": _share(own.threes, own.ratings),
        "department_share_3": _share(department.threes, department.ratings),
        "timeout_share": _share(own.timeouts, own.ratings + own.timeouts),
        "department_timeout_share": _share(department.timeouts, department.ratings + department.timeouts),
    }


def covered_keys(week: ClerkWeek, rule: CoveredKeys = CoveredKeys()) -> SupervisionFlag | None:
    """S2-covered-keys on one clerk's week: the flag, or None."""
    vanished = _lows_vanished(week, rule.lows)
    own, department = week.figures, week.department_figures
    if vanished is None or own.stray_low > rule.max_stray_low or department.stray == 0:
        return None
    mean = own.stray * department.stray_low / department.stray
    chance = _poisson_at_most(own.stray_low, mean)
    if chance > rule.alpha:
        return None
    behind = [r for r in week.records if (r.kind == "press" and r.invited and r.score == 3) or r.kind == "timeout"]
    return SupervisionFlag(
        "S2-covered-keys",
        STAFF,
        week.staff,
        week.week,
        {
            **vanished,
            "stray_presses": own.stray,
            "stray_on_1_2": own.stray_low,
            "max_stray_on_1_2": rule.max_stray_low,
            "department_stray_share_1_2": _share(department.stray_low, department.stray),
            "stray_chance": float(f"{chance:.3g}"),
            "stray_alpha": rule.alpha,
        },
        tuple((r.device, r.seq) for r in behind),  # where the unhappy went: level 3 and timeouts
    )


def selective_invite(week: ClerkWeek, rule: SelectiveInvite = SelectiveInvite()) -> SupervisionFlag | None:
    """S3-selective-invite on one clerk's week: the flag, or None."""
    vanished = _lows_vanished(week, rule.lows)
    own, department = week.figures, week.department_figures
    if vanished is None or own.stray_low < rule.min_stray_low:
        return None
    behind = [r for r in strays(week.records) if r.score is not None and r.score <= 2]  # the keys work
    return SupervisionFlag(
        "S3-selective-invite",
        STAFF,
        week.staff,
        week.week,
        {
            **vanished,
            "stray_presses": own.stray,
            "stray_on_1_2": own.stray_low,
            "min_stray_on_1_2": rule.min_stray_low,
            "department_stray_share_1_2": _share(department.stray_low, department.stray),
        },
        tuple((r.device, r.seq) for r in behind),
    )


# -- all of them -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Rules:
    """The parameters of every rule (defaults tuned on simulated weeks of seeds 1-20 only)."""

    self_press: SelfPress = field(default_factory=SelfPress)
    covered_keys: CoveredKeys = field(default_factory=CoveredKeys)
    selective_invite: SelectiveInvite = field(default_factory=SelectiveInvite)
    burst: Burst = field(default_factory=Burst)
    same_timing: SameTiming = field(default_factory=SameTiming)
    seq_gap: SeqGap = field(default_factory=SeqGap)
    wall_clock: WallClock = field(default_factory=WallClock)


CLERK_RULES: tuple[RuleInfo, ...] = (
    RuleInfo(
        "S1-self-press",
        STAFF,
        "self_press",
        "Catches a clerk pressing 非常满意 themselves with no invitation open: right after logging in, "
        "or for a customer who just left, before the queue system's invitation (which then lapses as a "
        "timeout with the ticket). Children's bursts and customers pressing after their invitation "
        "lapsed are set aside. It cannot see a clerk who invites first and presses inside the window: "
        "that record is a rating like any other, and only the level distribution shows it.",
    ),
    RuleInfo(
        "S2-covered-keys",
        STAFF,
        "covered_keys",
        "Catches covers over keys 1 and 2: the clerk's customers never press them while the "
        "department's do, and nobody presses them at that terminal at all, not even the stray presses "
        "(children, bumps) that hit them elsewhere; the unhappy press 3 or walk away (evidence: the "
        "3s and timeouts). It needs a week of ratings and stray presses; a clerk who covers the keys "
        "only now and then, or whose terminal sees no stray presses, is not caught.",
    ),
    RuleInfo(
        "S3-selective-invite",
        STAFF,
        "selective_invite",
        "Catches a clerk who invites only the customers who look satisfied: their customers never "
        "press 1 or 2 while the department's do, yet stray presses at their terminal hit keys 1 and 2, "
        "so the keys work. It cannot catch a clerk who skips only some unhappy customers (the lows "
        "thin out but do not vanish, as they do for a well-liked clerk), nor tell skipped services "
        "from quiet hours: services without a record leave no record.",
    ),
)
RULES: tuple[RuleInfo, ...] = (*CLERK_RULES, *TERMINAL_RULES)


def describe(rules: Rules | None = None) -> list[dict[str, Any]]:
    """Every rule: id, subject, statement and the parameters in force."""
    rules = rules or Rules()
    return [
        {
            "id": info.id,
            "subject": info.subject,
            "statement": info.statement,
            "parameters": asdict(getattr(rules, info.parameters)),
        }
        for info in RULES
    ]


def supervise(
    presses: Iterable[Press], rules: Rules | None = None, *, before: Mapping[str, Press] | None = None
) -> list[SupervisionFlag]:
    """Every flag the rules raise on `presses`, per clerk and per terminal and ISO week (a week
    the records cover only in part is judged on that part). Pure: nothing is changed."""
    rules = rules or Rules()
    presses = list(presses)
    found: list[SupervisionFlag] = []
    for week in clerk_weeks(presses):
        for flag in (
            self_press(week, rules.self_press),
            covered_keys(week, rules.covered_keys),
            selective_invite(week, rules.selective_invite),
        ):
            if flag is not None:
                found.append(flag)
    for terminal in terminal_weeks(presses, before):
        for flag in (
            burst(terminal, rules.burst),
            same_timing(terminal, rules.same_timing),
            seq_gap(terminal, rules.seq_gap),
            wall_clock(terminal, rules.wall_clock),
        ):
            if flag is not None:
                found.append(flag)
    return found


# -- from the hub database -----------------------------------------------------------------------------

_FIRST_PAGE = 4  # records read at a time beyond the clerks' spans, doubled while more come
_LAST_PAGE = 1024


def read_period(reader: Reader, first: date, last: date) -> tuple[list[Press], dict[str, Press]]:
    """The stored records of the site's days first..last (both included), by device and seq, and
    per terminal the record stored just before its first of them (for T3). Reads only; SQLite or
    PostgreSQL.

    The clerks' spans (device_days) give each terminal's seqs in the period; those are read by
    primary key, keeping the records of the period's days (records without a clerk among them
    too). Beyond the spans it reads on, seq by seq, while the records are still of the period (a
    closed terminal's presses before the first log-in, after the last log-out) and stops at the
    first that is not: the one below is the record before. A terminal with no clerk all period is
    read on from its last span before it. Not seen: a record without a clerk lying, by seq, beyond
    a record of another day (a clock that jumped away and back).
    """
    days = (first.isoformat(), last.isoformat())
    spans = {
        str(device): (int(low), int(high))
        for device, low, high in reader.execute(
            "SELECT device, min(first_seq), max(last_seq) FROM device_days WHERE day BETWEEN ? AND ? GROUP BY device",
            days,
        ).fetchall()
    }
    registered = {str(row[0]) for row in reader.execute("SELECT id FROM devices").fetchall()}
    presses: list[Press] = []
    before: dict[str, Press] = {}
    for device in sorted(registered | set(spans)):
        if device in spans:
            low, high = spans[device]
            rows = reader.execute(
                f"SELECT {PRESS_COLUMNS} FROM ratings WHERE device = ? AND seq BETWEEN ? AND ? ORDER BY seq",  # noqa: S608
                (device, low, high),
            ).fetchall()
            found = [p for p in map(press_of_row, rows) if days[0] <= p.day <= days[1]]
            found += _beyond(reader, device, high, days)[0]
        else:
            start = reader.execute(
                "SELECT max(last_seq) FROM device_days WHERE device = ? AND day < ?", (device, days[0])
            ).fetchone()[0]
            found = _beyond(reader, device, -1 if start is None else int(start), days, skip_earlier=True)[0]
        if found:
            earlier, previous = _beyond(reader, device, found[0].seq, days, down=True)
            presses += [*reversed(earlier), *found]
            if previous is not None:
                before[device] = previous
    return presses, before


def _beyond(
    reader: Reader, device: str, seq: int, days: tuple[str, str], *, down: bool = False, skip_earlier: bool = False
) -> tuple[list[Press], Press | None]:
    """The terminal's records of the period next to `seq` (above it, or below it with `down`,
    nearest first) up to the first that is not of the period, returned second (None: no more
    records). With `skip_earlier`, records of days before the period are passed over."""
    sql = f"SELECT {PRESS_COLUMNS} FROM ratings WHERE device = ? AND " + (  # noqa: S608 (constant)
        "seq < ? ORDER BY seq DESC LIMIT ?" if down else "seq > ? ORDER BY seq LIMIT ?"
    )
    found: list[Press] = []
    page = _FIRST_PAGE
    while True:
        rows = reader.execute(sql, (device, seq, page)).fetchall()
        for row in rows:
            record = press_of_row(row)
            if days[0] <= record.day <= days[1]:
                found.append(record)
            elif not (skip_earlier and record.day < days[0]):
                return found, record
            seq = record.seq
        if len(rows) < page:
            return found, None
        page = min(2 * page, _LAST_PAGE)


def report(reader: Reader, first: date, last: date, rules: Rules | None = None) -> list[dict[str, Any]]:
    """The flags of the site's days first..last, as JSON-ready dicts (rule, subject, key, week,
    figures, records {device: [seq, ...]}), clerks' first, by rule, week and key."""
    presses, before = read_period(reader, first, last)
    flags = supervise(presses, rules, before=before)
    flags.sort(key=lambda f: (f.subject != STAFF, f.rule, f.week, f.key))
    return [flag.as_dict() for flag in flags]
