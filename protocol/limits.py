"""Every limit of the protocol (v1 records and batches, v2 signed messages), each with what it bounds.

`LIMITS` says in words what each constant bounds; protocol/spec.py renders the spec's table from
it, so that protocol/README.md shows the numbers the decoders check, not a copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "CMD_MAX_AGE_MS",
    "CONTROL_VERSION",
    "LIMITS",
    "MAX_BATCH_RECORDS",
    "MAX_BOOT_CHARS",
    "MAX_CONTACT_CHARS",
    "MAX_COUNTER",
    "MAX_DETAIL_CHARS",
    "MAX_FW_CHARS",
    "MAX_ID_CHARS",
    "MAX_INT_DIGITS",
    "MAX_MESSAGE_BYTES",
    "MAX_MS",
    "MAX_NAME_CHARS",
    "MAX_PHOTO_BYTES",
    "MAX_REASONS",
    "MAX_REASON_CODE",
    "MAX_REJECTS",
    "MAX_SEQ",
    "MAX_SESSION",
    "MAX_SETTINGS",
    "MAX_SETTING_CHARS",
    "MAX_TICKET_CHARS",
    "VERSION",
    "Limit",
]

VERSION: Final = 1  # records and batches: their bytes are signed and chained, so their format stays
CONTROL_VERSION: Final = 2  # acks, commands, configuration, status, health, events: signed since v2

MAX_MESSAGE_BYTES: Final = 512 * 1024
MAX_BATCH_RECORDS: Final = 500
MAX_SEQ: Final = 2**63 - 1
MAX_MS: Final = 2**53 - 1  # exact in every JSON reader, doubles included
MAX_SESSION: Final = 2**63 - 1
MAX_COUNTER: Final = 2**63 - 1
# Python's int() of a decimal string takes time that grows with the square of its length, and
# the largest values have 19 digits: anything far longer is refused before it is parsed.
MAX_INT_DIGITS: Final = 4300

MAX_ID_CHARS: Final = 64
MAX_FW_CHARS: Final = 32
MAX_BOOT_CHARS: Final = 64
MAX_TICKET_CHARS: Final = 64
MAX_CONTACT_CHARS: Final = 1024
MAX_REASONS: Final = 6  # a touchscreen offers up to six reason tags (the key panel five keys)
MAX_REASON_CODE: Final = 99
MAX_DETAIL_CHARS: Final = 200
MAX_REJECTS: Final = MAX_BATCH_RECORDS
MAX_SETTINGS: Final = 64
MAX_SETTING_CHARS: Final = 512
CMD_MAX_AGE_MS: Final = 120_000
MAX_NAME_CHARS: Final = 64  # names a clerk's card shows: the clerk's, the department's, the counter's
# A clerk's photo on a card: a counter screen shows it at about 240x320, which a JPEG holds in far
# less; the limit keeps a retained card, and a terminal's cache of a few dozen, small.
MAX_PHOTO_BYTES: Final = 48 * 1024


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit as the spec shows it. `low` is set where the limit is the top of a range."""

    name: str  # the constant in this module
    value: int
    what: str
    unit: str = ""
    low: int | None = None


LIMITS: Final = (
    Limit("MAX_MESSAGE_BYTES", MAX_MESSAGE_BYTES, "any message (an MQTT payload on a pingjia topic)", "bytes"),
    Limit("MAX_BATCH_RECORDS", MAX_BATCH_RECORDS, "records in a batch", low=1),
    Limit("MAX_SEQ", MAX_SEQ, "a seq (per device, +1 per record, never reused)", low=1),
    Limit("MAX_MS", MAX_MS, "times: `t`, `mono`, `hub_offset_ms` (either sign)", "ms", low=0),
    Limit("MAX_SESSION", MAX_SESSION, "a status `session`, and `session` in health", low=0),
    Limit("MAX_COUNTER", MAX_COUNTER, "counters and sizes in health (`uptime_s`, `outbox_depth`, ...)", low=0),
    Limit("MAX_INT_DIGITS", MAX_INT_DIGITS, "digits of an integer literal (longer: `malformed`)", "digits"),
    Limit("MAX_ID_CHARS", MAX_ID_CHARS, "device id, hub client id, staff id, command `id`", "characters"),
    Limit("MAX_FW_CHARS", MAX_FW_CHARS, "firmware versions: `fw`, `panel_fw`", "characters"),
    Limit("MAX_BOOT_CHARS", MAX_BOOT_CHARS, "a `boot`", "characters"),
    Limit("MAX_TICKET_CHARS", MAX_TICKET_CHARS, "a service `ticket`", "characters"),
    Limit("MAX_CONTACT_CHARS", MAX_CONTACT_CHARS, "a sealed `contact` (base64 text)", "characters"),
    Limit("MAX_REASONS", MAX_REASONS, "reason codes on one rating", low=1),
    Limit("MAX_REASON_CODE", MAX_REASON_CODE, "a reason code", low=1),
    Limit(
        "MAX_DETAIL_CHARS",
        MAX_DETAIL_CHARS,
        "texts: a rejection's `detail`, an event's `detail`, health's `last_error`",
        "characters",
    ),
    Limit("MAX_REJECTS", MAX_REJECTS, "rejections in one ack"),
    Limit("MAX_SETTINGS", MAX_SETTINGS, "settings in one configuration document"),
    Limit(
        "MAX_SETTING_CHARS", MAX_SETTING_CHARS, "a setting's name or value in a configuration document", "characters"
    ),
    Limit("MAX_NAME_CHARS", MAX_NAME_CHARS, "a card's `name`, `department` and `counter`", "characters"),
    Limit("MAX_PHOTO_BYTES", MAX_PHOTO_BYTES, "a card's `photo`, decoded (PNG or JPEG bytes)", "bytes"),
    Limit(
        "CMD_MAX_AGE_MS",
        CMD_MAX_AGE_MS,
        "age of a command (hub time) past which a terminal that knows the hub's time refuses it as stale",
        "ms",
    ),
)
