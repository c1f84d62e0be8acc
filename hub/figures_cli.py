"""`pingjia report`, `pingjia hub directory ...` and `pingjia hub policy ...`: the figures HR reads,
the directory they rest on, and the scoring policies that judge them."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.config import HubConfig
    from hub.policy import Policy
    from hub.queries import Reader

__all__ = ["add_commands", "add_report_command"]


def add_report_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hub.cli import _add_db

    report = commands.add_parser(
        "report", help="figures per staff member, counter, department, site or unit for a period, ranked if asked"
    )
    _add_db(report)
    report.add_argument(
        "--period",
        required=True,
        help="YYYY-MM-DD, YYYY-Www (ISO week), YYYY-MM, YYYY-Qn, YYYY, or FIRST..LAST (days; site time zone)",
    )
    report.add_argument(
        "--level",
        choices=["staff", "counter", "department", "site", "unit"],
        help="rows per staff member (default), counter, department (with its sections), site, or every unit",
    )
    report.add_argument("--by", choices=["staff", "department"], help="the same as --level (older name)")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument(
        "--rank",
        action="store_true",
        help="rank by the lower bound of the 95%% Wilson interval of the satisfaction rate (fair to small counts)",
    )
    report.add_argument("--compare", action="store_true", help="show the change against the period before")
    report.add_argument(
        "--flags",
        action="store_true",
        help="grade flags with their evidence (--period YYYY-MM): 非常不满意 in each of --flag-months months, "
        "or in the bottom --bottom-share of the fair ranking in each of them",
    )
    report.add_argument("--flag-months", type=int, default=2, help="consecutive months a flag needs (default 2)")
    report.add_argument(
        "--bottom-share", type=float, default=0.1, help="the bottom of the ranking, as a share (default 0.1)"
    )
    report.add_argument(
        "--min-ratings",
        type=int,
        help="counted ratings a row needs to be ranked (default: the hub setting rank_min_ratings, 30)",
    )
    report.add_argument(
        "--explain",
        metavar="KEY[:COLUMN]",
        help="list the signed records behind row KEY (or only its COLUMN: n5..n1, unanswered, total, left_out, "
        "left_out_REASON), each with why it counted or was left out; `pingjia hub verify --explained` checks them",
    )
    report.add_argument(
        "--distribution",
        metavar="KEY",
        help="when row KEY's counted ratings were made: per hour of the day and per weekday, with their mean "
        "(the site's time zone), as JSON",
    )
    report.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="hub settings, e.g. timeout_score=0 (policy version 0, where no stored policy applies)",
    )
    report.set_defaults(func=_report)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_directory(sub)
    _add_decisions(sub)


def _add_directory(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hub.cli import _add_db

    directory = sub.add_parser("directory", help="the directory with its history: CSV import and export, moves")
    actions = directory.add_subparsers(dest="directory_command", required=True)
    export = actions.add_parser("export", help="write units, staff, counters, memberships and placements as CSV")
    _add_db(export)
    export.add_argument("folder", type=Path)
    export.set_defaults(func=_export)
    load = actions.add_parser(
        "import", help="read the CSV files of a folder (idempotent; --dry-run lists what would change)"
    )
    _add_db(load, what="the hub database (created if it does not exist yet)")
    load.add_argument("folder", type=Path)
    load.add_argument("--dry-run", action="store_true", help="change nothing; list what would change")
    load.set_defaults(func=_import)
    move = actions.add_parser("move", help="a staff member belongs to a unit from a day (back-dating allowed)")
    _add_db(move)
    move.add_argument("staff")
    move.add_argument("unit", help="the unit; '-' for none (the clerk left)")
    _add_days(move)
    move.set_defaults(func=_move)
    place = actions.add_parser("place", help="a terminal stands at a counter from a day (back-dating allowed)")
    _add_db(place)
    place.add_argument("device")
    place.add_argument("counter", help="the counter; '-' for none")
    _add_days(place)
    place.set_defaults(func=_place)
    bindings = actions.add_parser(
        "bindings", help="which clerk worked at which terminal on which day, as their signed records show it"
    )
    _add_db(bindings)
    who = bindings.add_mutually_exclusive_group(required=True)
    who.add_argument("--staff")
    who.add_argument("--device")
    bindings.add_argument("--period", required=True, help="as `pingjia report --period`")
    bindings.set_defaults(func=_bindings)


def _add_decisions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from hub.cli import _add_db

    invalidate = sub.add_parser(
        "invalidate", help="an upheld appeal: leave one rating out of figures (kept), saying who and why"
    )
    _add_db(invalidate)
    invalidate.add_argument("--device", required=True)
    invalidate.add_argument("--seq", type=int, required=True)
    invalidate.add_argument("--by", help="who decided (required unless --undo)")
    invalidate.add_argument("--why", help="why (required unless --undo)")
    invalidate.add_argument("--undo", action="store_true", help="reverse the decision: the rating counts again")
    invalidate.set_defaults(func=_invalidate)

    policy = sub.add_parser("policy", help="scoring policies: versioned, each from a day on")
    steps = policy.add_subparsers(dest="policy_command", required=True)
    add = steps.add_parser("add", help="store a new policy version (a JSON file) applying from a day on")
    _add_db(add)
    add.add_argument("file", type=Path, help='JSON: {"points": {"5": 100, ...}, "timeout": 3, ...}')
    add.add_argument("--from", dest="first_day", required=True, help="first day it applies, YYYY-MM-DD")
    add.add_argument("--by", required=True, help="who decided it (kept with it)")
    add.set_defaults(func=_policy_add)
    show = steps.add_parser("list", help="every stored policy, as JSON")
    _add_db(show)
    show.set_defaults(func=_policy_list)


def _add_days(parser: argparse.ArgumentParser) -> None:
    """The days a period of a history covers: --from (required) and --to (default: from then on)."""
    parser.add_argument("--from", dest="first_day", required=True, help="first day, YYYY-MM-DD (site time zone)")
    parser.add_argument("--to", dest="last_day", help="last day, YYYY-MM-DD (default: from then on)")


def _fail(command: str, error: Exception) -> int:
    print(f"pingjia {command}: {error}", file=sys.stderr)
    return 2


def _rules(reader: Reader, config: HubConfig) -> list[Policy]:
    from hub.policy import from_settings
    from hub.report import book

    return book(reader, from_settings(config.timeout_score, config.count_uninvited))


def _report(args: argparse.Namespace) -> int:
    from hub import grades
    from hub.config import HubConfig
    from hub.errors import HubError, ReportError
    from hub.queries import Reader
    from hub.report import Extras, aggregate, parse_period, ranked, render
    from runtime.settings import ConfigError, from_assignments

    level = args.level or args.by or "staff"
    try:
        config = from_assignments(HubConfig, args.settings)
        period = parse_period(args.period)
        minimum = config.rank_min_ratings if args.min_ratings is None else args.min_ratings
        if minimum < 1:
            raise ReportError(f"--min-ratings must be at least 1, got {minimum}")
        with Reader.open(args.db) as reader:
            rules = _rules(reader, config)
            if args.distribution is not None:
                from hub.explain import distribution, explain

                shown = distribution(explain(reader, period, level, args.distribution, rules), config.timezone)
                print(json.dumps({"key": args.distribution, "level": level, "period": period.label, **shown}))
                return 0
            if args.explain is not None:
                return _explain(reader, period, level, args.explain, rules=rules, fmt=args.format)
            report = aggregate(reader, period, level, rules=rules)
            extras = Extras(
                standings=ranked(report.rows, minimum=minimum) if args.rank else None,
                minimum=minimum,
                before=aggregate(reader, period.previous(), level, rules=rules).rows if args.compare else None,
                flags=[
                    {"rule": flag.rule, "key": flag.key, "evidence": flag.evidence}
                    for flag in grades.flags(
                        reader,
                        period,
                        level=level,
                        months=args.flag_months,
                        share=args.bottom_share,
                        minimum=minimum,
                        rules=rules,
                    )
                ]
                if args.flags
                else None,
            )
        print(render(report, period=period, fmt=args.format, extras=extras))
    except (ConfigError, HubError) as exc:
        return _fail("report", exc)
    return 0


_EXPLAIN_COLUMNS = (
    "day",
    "device",
    "seq",
    "kind",
    "score",
    "flags",
    "staff",
    "department",
    "counter",
    "verdict",
    "why",
)


def _explain(reader: Reader, period: Any, level: str, cell: str, *, rules: list[Policy], fmt: str) -> int:
    import csv

    from hub.explain import explain, tally

    found: Counter[str] = Counter()
    items = tally(explain(reader, period, level, cell, rules), found)
    out = sys.stdout
    table = csv.writer(out, lineterminator="\n", delimiter="," if fmt == "csv" else "\t")
    if fmt != "json":
        table.writerow([*_EXPLAIN_COLUMNS, "hash"])
    for item in items:
        if fmt == "json":
            out.write(json.dumps(item.as_json(), ensure_ascii=False) + "\n")
        else:
            document = item.as_json()
            table.writerow([document[c] if document[c] is not None else "" for c in _EXPLAIN_COLUMNS] + [item.hash])
        out.flush()
    summary = {"explained": cell, "level": level, "period": period.label, "columns": dict(sorted(found.items()))}
    if fmt == "json":
        out.write(json.dumps({"summary": summary}, ensure_ascii=False) + "\n")
    else:
        out.write("# " + json.dumps(summary, ensure_ascii=False) + "\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    from hub.directory_csv import export
    from hub.errors import HubError
    from hub.queries import Reader

    try:
        with Reader.open(args.db) as reader:
            written = export(reader, args.folder)
    except (HubError, OSError) as exc:
        return _fail("hub directory export", exc)
    print(json.dumps({"folder": str(args.folder), "rows": written}))
    return 0


def _import(args: argparse.Namespace) -> int:
    from hub.directory_csv import import_folder
    from hub.errors import HubError
    from hub.writer import Writer

    try:
        with Writer.open(args.db, migrate=True) as writer:
            plan = import_folder(writer, args.folder, dry_run=args.dry_run)
    except HubError as exc:
        return _fail("hub directory import", exc)
    print(json.dumps(plan.as_json(), ensure_ascii=False, indent=2))
    return 0


def _move(args: argparse.Namespace) -> int:
    from hub import directory

    return _history_change("move", directory.set_membership, "staff", args.staff, "unit", args.unit, args)


def _place(args: argparse.Namespace) -> int:
    from hub import directory

    return _history_change("place", directory.set_placement, "device", args.device, "counter", args.counter, args)


def _history_change(  # noqa: PLR0917 - one line of the command's output per argument
    command: str, change: Any, whose: str, key: str, what: str, given: str, args: argparse.Namespace
) -> int:
    """`hub directory move|place`: one period of a history ('-': none), its ratings moved with it."""
    from hub.errors import HubError
    from hub.writer import Writer

    value = None if given == "-" else given
    try:
        with Writer.open(args.db) as writer:
            moved = writer.write(change, key, value, first_day=args.first_day, last_day=args.last_day)
    except HubError as exc:
        return _fail(f"hub directory {command}", exc)
    print(json.dumps({whose: key, what: value, "from": args.first_day, "ratings_moved": moved}, ensure_ascii=False))
    return 0


def _invalidate(args: argparse.Namespace) -> int:
    from hub import appeals
    from hub.errors import HubError
    from hub.writer import Writer

    try:
        with Writer.open(args.db) as writer:
            if args.undo:
                done = writer.write(appeals.reinstate, args.device, args.seq)
            else:
                done = writer.write(appeals.invalidate, args.device, args.seq, by=args.by or "", why=args.why or "")
    except HubError as exc:
        return _fail("hub invalidate", exc)
    print(json.dumps(done, ensure_ascii=False))
    return 0


def _bindings(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.queries import Reader
    from hub.report import parse_period

    try:
        period = parse_period(args.period)
        with Reader.open(args.db) as reader:
            found = reader.bindings(period.first, period.last, staff=args.staff, device=args.device)
    except HubError as exc:
        return _fail("hub directory bindings", exc)
    print(json.dumps(found, ensure_ascii=False, indent=2))
    return 0


def _policy_add(args: argparse.Namespace) -> int:
    from hub import policy
    from hub.errors import HubError, ReportError
    from hub.writer import Writer

    try:
        try:
            doc = json.loads(args.file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ReportError(f"{args.file}: not a readable JSON file: {exc}") from None
        with Writer.open(args.db) as writer:
            added = writer.write(policy.add, doc, first_day=args.first_day, by=args.by)
    except HubError as exc:
        return _fail("hub policy add", exc)
    print(json.dumps(added.as_json(), ensure_ascii=False))
    return 0


def _policy_list(args: argparse.Namespace) -> int:
    from hub.errors import HubError
    from hub.policy import check
    from hub.queries import Reader

    try:
        with Reader.open(args.db) as reader:
            rows = reader.policy_rows()
        shown = [check(json.loads(doc), version=v, first_day=first).as_json() for v, first, doc in rows]
    except HubError as exc:
        return _fail("hub policy list", exc)
    print(json.dumps(shown, ensure_ascii=False, indent=2))
    return 0
