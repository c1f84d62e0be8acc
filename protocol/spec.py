"""The generated parts of protocol/README.md, drawn from the code that keeps each rule.

`python -m protocol.spec` rewrites them in place (`--check`: only say whether they are current);
tests/protocol/test_spec.py fails while the README holds anything else, so that a changed limit,
reason code, topic or field cannot leave the spec behind. A block sits between
`<!-- BEGIN generated:NAME -->` and `<!-- END generated:NAME -->`.

Everything but `main` is pure, like the rest of protocol/: `main` is the one place here that reads
and writes a file, and only when run as a command.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Final, TypeVar

from protocol import commands, errors, health, limits
from protocol.fields import SHAPES, Field
from protocol.messages import STATUS_FIELDS
from protocol.topics import HUB_STATUS, PREFIX, ROUTES, Route, hub_filters, terminal_filters

__all__ = [
    "BLOCKS",
    "fields_table",
    "limits_table",
    "main",
    "meanings_table",
    "number",
    "reasons_table",
    "refresh",
    "subscriptions",
    "topics_table",
]

E = TypeVar("E", bound=StrEnum)


def number(value: int) -> str:
    """`value` as the spec writes it: 2^63−1 rather than 19 digits nobody checks by eye."""
    if value < 0:
        return f"−({number(-value)})" if value <= -(2**32) else f"−{-value}"
    if value >= 2**32 and (value + 1) & value == 0:
        return f"2^{(value + 1).bit_length() - 1}−1"
    if value >= 2**32 and value & (value - 1) == 0:
        return f"2^{value.bit_length() - 1}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(heading: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(heading) + " |", "|" + "---|" * len(heading)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _code(text: str) -> str:
    return f"`{text}`"


def _rule(field: Field) -> str:
    if field.kind is int:
        return number(field.low) if field.low == field.high else f"{number(field.low)}..{number(field.high)}"
    if field.choices:
        return _code(field.choices[0]) if len(field.choices) == 1 else "one of " + ", ".join(map(_code, field.choices))
    if field.pattern is not None:
        return re.sub(r"(\[[^\]]+\])", r"`\1`", SHAPES[field.pattern])
    return f"1..{field.most} printable characters"


def fields_table(fields: Mapping[str, Field]) -> str:
    """A message's `Field` table as the spec shows it: one row per field, in declaration order."""
    return _table(
        ("field", "type", "required", "rule", "meaning"),
        (
            (
                _code(name),
                "int" if field.kind is int else "string",
                "yes" if field.required else "no",
                _rule(field),
                field.doc,
            )
            for name, field in fields.items()
        ),
    )


def meanings_table(kinds: type[E], meanings: Mapping[E, str], heading: str) -> str:
    """One row per member of `kinds`, in its order; KeyError for a member without a meaning."""
    return _table((heading, "meaning"), ((_code(kind.value), meanings[kind]) for kind in kinds))


def reasons_table() -> str:
    return meanings_table(errors.Reason, errors.MEANING, "code")


def limits_table() -> str:
    def shown(limit: limits.Limit) -> str:
        value = number(limit.value) if limit.low is None else f"{limit.low}..{number(limit.value)}"
        return f"{value} {limit.unit}".rstrip()

    return _table(
        ("what", "limit", "in protocol/limits.py"), ((x.what, shown(x), _code(x.name)) for x in limits.LIMITS)
    )


def topics_table() -> str:
    def row(route: Route) -> tuple[str, ...]:
        return (
            _code(route.topic),
            route.direction,
            route.payload,
            str(route.qos),
            "yes" if route.retained else "no",
            route.notes,
        )

    return _table(
        ("topic", "direction", "payload", "QoS", "retained", "notes"), map(row, (*ROUTES.values(), HUB_STATUS))
    )


def _listed(items: Sequence[str]) -> str:
    shown = [_code(item) for item in items]
    return ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else shown[0]


def subscriptions() -> str:
    """Who subscribes to what, in words, from the functions terminals and hubs subscribe with."""
    # Placeholders that are valid topic levels, named as the table names them.
    device, group = "DEVICE", "GROUP"
    terminal = [name.replace(f"{PREFIX}/{device}/", f"{PREFIX}/<device>/") for name in terminal_filters(device)]
    shared = hub_filters(group)[0].replace(f"$share/{group}/", "$share/<group>/")
    return (
        f"A terminal subscribes to {_listed(terminal)}. A hub subscribes to {_listed(hub_filters())}; "
        f"several hub workers take the same filters as MQTT 5 shared subscriptions ({_code(shared)}, ...)."
    )


BLOCKS: Final[dict[str, Callable[[], str]]] = {
    "topics": topics_table,
    "subscriptions": subscriptions,
    "status-fields": lambda: fields_table(STATUS_FIELDS),
    "cmd-fields": lambda: fields_table(commands.COMMAND_FIELDS),
    "cmd-names": lambda: meanings_table(commands.CommandName, commands.MEANING, "cmd"),
    "health-fields": lambda: fields_table(health.HEALTH_FIELDS),
    "event-fields": lambda: fields_table(health.EVENT_FIELDS),
    "event-kinds": lambda: meanings_table(health.EventKind, health.MEANING, "kind"),
    "limits": limits_table,
    "reasons": reasons_table,
}


def refresh(text: str, blocks: Mapping[str, Callable[[], str]] | None = None) -> str:
    """`text` with every generated block (`BLOCKS`, or `blocks`) rewritten; ValueError if a block's
    markers are missing. The root README's generator (pingjia.readme) uses it with its own blocks."""
    for name, make in (BLOCKS if blocks is None else blocks).items():
        pattern = re.compile(rf"(<!-- BEGIN generated:{name} -->\n)(?:.*?\n)?(<!-- END generated:{name} -->)", re.S)
        if pattern.search(text) is None:
            raise ValueError(f"no generated:{name} block (<!-- BEGIN generated:{name} --> ... END)")
        body = make()
        text = pattern.sub(lambda match: match[1] + body + "\n" + match[2], text)  # noqa: B023 - used at once
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol.spec", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=Path(__file__).with_name("README.md"))
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the blocks are stale")
    args = parser.parse_args(argv)
    text = args.path.read_text(encoding="utf-8")
    fresh = refresh(text)
    if args.check:
        if fresh != text:
            sys.stderr.write(f"{args.path}: generated blocks are stale; run python -m protocol.spec\n")
            return 1
        return 0
    if fresh != text:
        args.path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
