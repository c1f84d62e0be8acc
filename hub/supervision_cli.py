"""`pingjia hub supervise`: the supervision flags of a period (hub.supervision), as JSON or a table.

A flag is a finding for a supervisor to look at, with the records behind it: the command only
reads, and no figure, rating or roll-up changes because of a flag.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_command"]

_HELP = (
    "flags over a period's stored ratings: clerks who press 非常满意 themselves, cover keys 1 and 2 or "
    "invite only the satisfied (S1-S3), terminals with bursts, twin records, seq gaps or moved clocks "
    "(T1-T4); a flag is a finding to look at and never changes a figure"
)
# The figures a table line shows per rule (JSON has them all, with the thresholds beside them).
_SHOWN = {
    "S1-self-press": ("clerk_presses", "share", "ratings_and_timeouts", "then_lapsed", "after_login"),
    "S2-covered-keys": ("ratings", "lows", "expected_lows", "chance", "stray_presses", "stray_on_1_2"),
    "S3-selective-invite": ("ratings", "lows", "expected_lows", "chance", "stray_presses", "stray_on_1_2"),
    "T1-burst": ("ratings", "within_s", "staff"),
    "T2-same-timing": ("same_boot_and_mono", "steady_gaps", "staff"),
    "T3-seq-gap": ("missing", "chain_breaks", "staff_around"),
    "T4-clock": ("placed_by_hub", "wall_clock_jumps", "monotonic_backwards"),
}


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hub.cli import _add_db

    supervise = sub.add_parser("supervise", help=_HELP, description=_HELP[0].upper() + _HELP[1:] + ".")
    _add_db(supervise)
    supervise.add_argument(
        "--period",
        help="YYYY-MM-DD, YYYY-Www (ISO week), YYYY-MM, YYYY-Qn, YYYY, or FIRST..LAST (days; site time zone); "
        "rules judge whole ISO weeks, so a period that cuts a week is judged on its part of it",
    )
    supervise.add_argument(
        "--rules", action="store_true", help="print every rule (statement and parameters) as JSON; reads nothing"
    )
    supervise.add_argument(
        "--format",
        choices=["json", "table"],
        default="table",
        help="json: every flag with all its figures and records {device: [seq, ...]}; "
        "table (default): one line per flag with its key figures",
    )
    supervise.set_defaults(func=_supervise)


def _fail(error: Exception | str) -> int:
    print(f"pingjia hub supervise: {error}", file=sys.stderr)
    return 2


def _supervise(args: argparse.Namespace) -> int:
    from hub import supervision
    from hub.errors import HubError
    from hub.queries import Reader
    from hub.report import parse_period

    if args.rules:
        print(json.dumps(supervision.describe(), ensure_ascii=False, indent=2))
        return 0
    if args.period is None:
        return _fail("--period is required (or --rules)")
    try:
        period = parse_period(args.period)
        with Reader.open(args.db) as reader:
            flags = supervision.report(reader, period.first, period.last)
    except HubError as exc:
        return _fail(exc)
    if args.format == "json":
        print(json.dumps(flags, ensure_ascii=False, indent=2))
    else:
        print(_table(flags, f"{period.label} ({period.first}..{period.last})"))
    return 0


def _table(flags: list[dict[str, Any]], period: str) -> str:
    lines = ["rule\tsubject\tkey\tweek\trecords\tfigures"]
    for flag in flags:
        figures = flag["figures"]
        shown = _SHOWN.get(flag["rule"], tuple(figures))
        records = sum(len(seqs) for seqs in flag["records"].values())
        lines.append(
            "\t".join(
                [
                    flag["rule"],
                    flag["subject"],
                    flag["key"],
                    flag["week"],
                    str(records),
                    " ".join(f"{name}={_shown(figures[name])}" for name in shown if name in figures),
                ]
            )
        )
    lines.append(f"# {len(flags)} flag(s) in {period}; a flag never changes a figure")
    return "\n".join(lines)


def _shown(value: object) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)
