"""The generated parts of protocol/README.md, drawn from the code that keeps each rule.

`python -m protocol.spec` rewrites them in place (`--check`: only say whether they are current);
tests/protocol/test_spec.py fails while the README holds anything else, so that a changed limit,
reason code, topic or field cannot leave the spec behind. A block sits between
`<!-- BEGIN generated:NAME -->` and `<!-- END generated:NAME -->`.

The signed examples and the test vectors are blocks too: made here from fixed values with two test
keys (Ed25519 private keys of fixed bytes; signatures are deterministic), so that another
implementation can check its bytes against them, and tests/protocol/test_spec.py checks each
against the values it states.

Everything but `main` is pure, like the rest of protocol/: `main` is the one place here that reads
and writes a file, and only when run as a command.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Final, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import canonical, commands, errors, health, keys, limits, signed
from protocol.card import CARD_FIELDS, Card, encode_card
from protocol.commands import Command, CommandName, encode_command
from protocol.config import REMOTE_SETTINGS, SETTING_NAME, ConfigDoc, encode_config
from protocol.fields import SHAPES, Field
from protocol.health import DeviceEvent, EventKind, Health, PanelState, encode_event, encode_health
from protocol.keys import SigningKey
from protocol.messages import STATUS_FIELDS, Ack, Rejection, Status, StatusState, encode_ack, encode_status
from protocol.session import hub_session, terminal_session
from protocol.signed import Purpose
from protocol.topics import CLAIM_REPLY, CLAIM_REQUEST, HUB_STATUS, PREFIX, ROUTES, Route, hub_filters, terminal_filters

__all__ = [
    "BLOCKS",
    "EXAMPLES",
    "HUB_SEED",
    "PURPOSES",
    "TERMINAL_SEED",
    "VECTORS",
    "Example",
    "examples",
    "fields_table",
    "fixed_key",
    "limits_table",
    "main",
    "meanings_table",
    "number",
    "purposes_table",
    "reasons_table",
    "refresh",
    "remote_settings",
    "subscriptions",
    "topics_table",
    "vectors",
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
        ("topic", "direction", "payload", "QoS", "retained", "notes"),
        map(row, (*ROUTES.values(), HUB_STATUS, CLAIM_REQUEST, CLAIM_REPLY)),
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


# -- signatures --------------------------------------------------------------------------------------

# Who signs each purpose, and what: the spec's table of purposes is drawn from `Purpose` through this
# (KeyError for a purpose without its row).
PURPOSES: Final[dict[Purpose, tuple[str, str]]] = {
    Purpose.ACK: ("hub", "an ack"),
    Purpose.CMD: ("hub", "a command"),
    Purpose.CONFIG: ("hub", "a configuration document"),
    Purpose.STATUS: ("terminal", "a terminal's status (its online status, and its will)"),
    Purpose.HUB_STATUS: ("hub", "a hub worker's status on `pingjia/hub/<client-id>/status`"),
    Purpose.HEALTH: ("terminal", "a health report"),
    Purpose.EVENT: ("terminal", "an event"),
    Purpose.TECH: ("hub", "a technician's credential, for the terminal's service console"),
    Purpose.CLAIM: ("hub", "the answer to a terminal claiming its registration"),
    Purpose.CARD: ("hub", "the card of the clerk logged in at a terminal"),
}


def _context(raw: bytes) -> str:
    """A signing context as the spec writes it: its text, then the NUL byte that ends it."""
    text = raw.removesuffix(b"\x00").decode()
    return f"{_code(text)} + NUL"


def purposes_table() -> str:
    """One row per `Purpose`, in its order, then the two contexts of v1 that records and heads keep."""
    rows = [(_code(purpose.value), _context(signed.context(purpose)), *PURPOSES[purpose]) for purpose in Purpose]
    rows += [
        ("(v1)", _context(keys.RECORD_CONTEXT), "terminal", "a rating record (its own `sig`)"),
        ("(v1)", _context(keys.HEAD_CONTEXT), "terminal", "a batch head"),
    ]
    return _table(("purpose", "context", "signed by", "what"), rows)


def remote_settings() -> str:
    return (
        f"A document holds at most {limits.MAX_SETTINGS} settings. A name matches "
        f"`{SETTING_NAME.pattern}`; a value is printable text of at most {limits.MAX_SETTING_CHARS} "
        f"characters, and may be empty. A hub sends only these: {_listed(REMOTE_SETTINGS)}."
    )


# -- examples and test vectors ---------------------------------------------------------------------

TERMINAL_SEED: Final = bytes(range(32))  # 00 01 02 ... 1f: the terminal test key (and the records')
HUB_SEED: Final = bytes(range(32, 64))  # 20 21 22 ... 3f: the hub test key


def fixed_key(seed: bytes) -> SigningKey:
    """The Ed25519 key whose 32 private bytes are `seed`: a test key anyone can make again."""
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed))


_TERMINAL: Final = fixed_key(TERMINAL_SEED)
_HUB: Final = fixed_key(HUB_SEED)
_DEVICE: Final = "hall1-w03"
_BOOT: Final = "3f9a1c2e-5b7d-4e11-9c0a-7d2e8f4b6a10"
_SESSION: Final = terminal_session(1, 1)  # first start, first connection
_HUB_STARTED_MS: Final = 1763799990000


@dataclass(frozen=True, slots=True)
class Example:
    """A message of the spec: its value and how it is signed (purpose, key) into its wire bytes."""

    value: object
    purpose: Purpose
    hub: bool  # signed by the hub test key; else by the terminal's

    def wire(self) -> bytes:  # noqa: PLR0911 - one return per message type
        key = _HUB if self.hub else _TERMINAL
        value = self.value
        if isinstance(value, Ack):
            return encode_ack(value, key)
        if isinstance(value, Command):
            return encode_command(value, key)
        if isinstance(value, ConfigDoc):
            return encode_config(value, key)
        if isinstance(value, Card):
            return encode_card(value, key)
        if isinstance(value, Status):
            return encode_status(value, key, hub=self.purpose is Purpose.HUB_STATUS)
        if isinstance(value, Health):
            return encode_health(value, key)
        if isinstance(value, DeviceEvent):
            return encode_event(value, key)
        raise TypeError(f"no encoder for {type(value).__name__}")


def _hub(purpose: Purpose, *values: object) -> tuple[Example, ...]:
    return tuple(Example(value, purpose, hub=True) for value in values)


def _terminal(purpose: Purpose, *values: object) -> tuple[Example, ...]:
    return tuple(Example(value, purpose, hub=False) for value in values)


_LOGIN: Final = Command(device=_DEVICE, cmd=CommandName.LOGIN, staff="E1024", id="pc-7781", n=41, t=1763800000000)
_CONFIG: Final = ConfigDoc(
    device=_DEVICE,
    version=7,
    t=1763799000000,
    settings={
        "invite_window_s": "60",
        "language": "zh-CN",
        "opening_hours": "08:30-12:00,13:30-17:00",
        "reason_labels": "等候时间长,服务态度差,业务不熟练,流程繁琐,其他",
    },
)
# A 1x1 grey PNG (67 bytes): the smallest photo a card can carry.
_PHOTO: Final = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNoAAAAggCBd81ytgAAAABJRU5ErkJggg=="
_CARD: Final = Card(
    device=_DEVICE,
    version=12,
    t=1763800000100,
    staff="E1024",
    name="王芳",
    department="综合受理",
    counter="3号窗口",
    photo=_PHOTO,
)
_HUB_ONLINE: Final = Status(device="pingjia-hub", state=StatusState.ONLINE, session=hub_session(_HUB_STARTED_MS, 1))
_GAP_ACK: Final = Ack(device=_DEVICE, upto=2, t=1763800009000, held=(5, 7))
_ONLINE: Final = Status(device=_DEVICE, state=StatusState.ONLINE, session=_SESSION)


# Right after a start: no panel yet, nobody logged in, no ack yet; paired, and configured before.
_STARTED: Final = Health(
    device=_DEVICE,
    t=1763794880123,
    boot=_BOOT,
    mono=3456,
    fw="0.1.0",
    uptime_s=2,
    state="closed",
    panel=PanelState.DISCONNECTED,
    outbox_depth=0,
    free_disk_bytes=12884901888,
    misuse_alarms=0,
    rejected=0,
    session=_SESSION,
    panel_dropped=0,
    unreadable=0,
    refused=0,
    config_version=7,
    hub_key=_HUB.public.hex[:16],
)


# The examples of each section, by the name of its block.
EXAMPLES: Final[dict[str, tuple[Example, ...]]] = {
    "ack": _hub(
        Purpose.ACK,
        Ack(device=_DEVICE, upto=2, t=1763800003500),
        Ack(
            device=_DEVICE,
            upto=2,
            t=1763800003500,
            rejects=(
                Rejection(
                    reason=errors.Reason.BROKEN_CHAIN, detail="prev of seq 3 is not the hash of the stored seq 2", seq=3
                ),
            ),
        ),
        _GAP_ACK,
    ),
    "status": _terminal(Purpose.STATUS, _ONLINE, Status(device=_DEVICE, state=StatusState.OFFLINE, session=_SESSION)),
    "hub-status": _hub(Purpose.HUB_STATUS, _HUB_ONLINE),
    "cmd": _hub(
        Purpose.CMD,
        _LOGIN,
        Command(device=_DEVICE, cmd=CommandName.INVITE, ticket="A0123", n=42, t=1763800002000),
        Command(device=_DEVICE, cmd=CommandName.LOGOUT, n=43, t=1763800090000),
    ),
    "config": _hub(Purpose.CONFIG, _CONFIG),
    "card": _hub(
        Purpose.CARD,
        _CARD,
        Card(device=_DEVICE, version=13, t=1763800090100, staff="E2048", name="李强"),  # no department, no photo
    ),
    "health": _terminal(
        Purpose.HEALTH,
        _STARTED,
        replace(  # an hour and a half later, every field
            _STARTED,
            t=1763800063500,
            mono=5186833,
            uptime_s=5185,
            state="idle",
            panel=PanelState.CONNECTED,
            outbox_depth=1,
            staff="E1024",
            panel_fw="panel-1.0",
            oldest_unacked_s=2,
            hub_offset_ms=37,
            last_error="refused command: replayed: command counter 41 is not above the last taken, 41",
            refused=1,
            refused_last="command: replayed",
        ),
    ),
    "event": _terminal(
        Purpose.EVENT,
        DeviceEvent(
            device=_DEVICE, t=1763800066667, boot=_BOOT, mono=5190000, kind=EventKind.PANEL_DOWN, detail="unplugged"
        ),
        DeviceEvent(
            device=_DEVICE,
            t=1763800070000,
            boot=_BOOT,
            mono=5193333,
            kind=EventKind.MISUSE_BURST,
            detail="6 presses within 10 s",
        ),
        DeviceEvent(device=_DEVICE, t=1763800080000, boot=_BOOT, mono=5203333, kind=EventKind.RECOVERED),
    ),
}

# The test vectors: one message of each thing the hub signs, and a terminal's status.
VECTORS: Final = (
    ("ack", Example(_GAP_ACK, Purpose.ACK, hub=True)),
    ("command", Example(_LOGIN, Purpose.CMD, hub=True)),
    ("configuration document", Example(_CONFIG, Purpose.CONFIG, hub=True)),
    ("clerk's card", Example(_CARD, Purpose.CARD, hub=True)),
    ("hub status", Example(_HUB_ONLINE, Purpose.HUB_STATUS, hub=True)),
    ("terminal status", Example(_ONLINE, Purpose.STATUS, hub=False)),
)


def examples(name: str) -> str:
    """The examples of block `name` as a `json` block, one message a line."""
    return "```json\n" + "\n".join(example.wire().decode() for example in EXAMPLES[name]) + "\n```"


def _spaced(seed: bytes) -> str:
    return " ".join(f"{byte:02x}" for byte in seed[:3]) + f" … {seed[-1]:02x}"


def vectors() -> str:
    """The test keys, then for each vector: its context, the bytes signed and the signature, in hex."""
    parts = [
        _table(
            ("test key", "private key: 32 bytes", "public key"),
            [
                ("terminal (and the records above)", _spaced(TERMINAL_SEED), _code(_TERMINAL.public.hex)),
                ("hub", _spaced(HUB_SEED), _code(_HUB.public.hex)),
            ],
        )
    ]
    for title, example in VECTORS:
        wire = example.wire()
        message = canonical.decode(wire)
        body = signed.body(message["type"], message)
        context = signed.context(example.purpose)
        signer = "hub" if example.hub else "terminal"
        parts.append(
            f"**{title}** — purpose {_code(example.purpose.value)}, {signer} test key:\n\n"
            "```text\n"
            f"context     {context.hex()}\n"
            f"body        {body.decode()}\n"
            f"signed      {(context + body).hex()}\n"
            f"sig         {message['sig']}\n"
            "```\n\n"
            f"```json\n{wire.decode()}\n```"
        )
    return "\n\n".join(parts)


BLOCKS: Final[dict[str, Callable[[], str]]] = {
    "topics": topics_table,
    "subscriptions": subscriptions,
    "purposes": purposes_table,
    "ack-examples": lambda: examples("ack"),
    "status-fields": lambda: fields_table(STATUS_FIELDS),
    "status-examples": lambda: examples("status"),
    "hub-status-examples": lambda: examples("hub-status"),
    "cmd-fields": lambda: fields_table(commands.COMMAND_FIELDS),
    "cmd-names": lambda: meanings_table(commands.CommandName, commands.MEANING, "cmd"),
    "cmd-examples": lambda: examples("cmd"),
    "remote-settings": remote_settings,
    "config-examples": lambda: examples("config"),
    "card-fields": lambda: fields_table(CARD_FIELDS),
    "card-examples": lambda: examples("card"),
    "health-fields": lambda: fields_table(health.HEALTH_FIELDS),
    "health-examples": lambda: examples("health"),
    "event-fields": lambda: fields_table(health.EVENT_FIELDS),
    "event-kinds": lambda: meanings_table(health.EventKind, health.MEANING, "kind"),
    "event-examples": lambda: examples("event"),
    "vectors": vectors,
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
