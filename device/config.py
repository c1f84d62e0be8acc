"""The terminal's settings, declared once as data (see runtime.settings for the machinery)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from protocol import limits
from runtime.settings import setting

__all__ = ["DeviceConfig", "reason_codes", "valid_hours"]

_SPAN: Final = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]")


def valid_hours(text: str) -> bool:
    """Empty (always open), or comma-separated HH:MM-HH:MM spans, each starting before it ends."""
    if text == "":
        return True
    spans = [part.strip() for part in text.split(",")]
    return all(_SPAN.fullmatch(span) is not None and span[:5] < span[6:] for span in spans)


def reason_codes(text: str) -> tuple[int, ...]:
    """The reason codes of a `reasons_negative` / `reasons_positive` value, in order; ValueError
    unless it is 1..MAX_REASONS distinct codes in 1..MAX_REASON_CODE, comma-separated."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise ValueError(f"not comma-separated numbers: {text!r}")
    codes = tuple(int(part) for part in parts)
    if not 0 < len(codes) <= limits.MAX_REASONS or len(set(codes)) != len(codes):
        raise ValueError(f"1..{limits.MAX_REASONS} distinct codes, got {len(codes)}")
    if not all(1 <= code <= limits.MAX_REASON_CODE for code in codes):
        raise ValueError(f"codes are 1..{limits.MAX_REASON_CODE}")
    return codes


def _valid_codes(text: str) -> bool:
    try:
        reason_codes(text)
    except ValueError:
        return False
    return True


_CODES_RULE: Final = f"1..{limits.MAX_REASONS} distinct reason codes in 1..{limits.MAX_REASON_CODE}, comma-separated"


@dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    """Settings of one terminal."""

    REMOVED: ClassVar[Mapping[str, str]] = {}

    thank_you_ms: int = setting(
        2500,
        "how long the neutral thank-you shows before the next customer can rate (0: at once, for tests)",
        unit="ms",
        low=0,
        high=15000,
    )
    ack_timeout_s: float = setting(
        10.0,
        "records sent but not covered by a hub ack within this time are sent again, even on a live connection",
        unit="s",
        low=0.5,
        high=600,
    )
    ack_timeout_max_s: float = setting(
        120.0, "the resend timeout doubles while no ack comes, up to this", unit="s", low=1, high=3600
    )
    batch_max: int = setting(500, "records per message when a backlog drains", low=1, high=500)
    window_records: int = setting(
        2000, "records sent and not yet acked, at most (flow control towards the broker)", low=1, high=100000
    )
    retention_days: float = setting(
        7.0,
        "acked records stay in the outbox this long before they are pruned",
        unit="days",
        low=0,
        high=3650,
    )
    keepalive_s: int = setting(30, "MQTT keepalive", unit="s", low=5, high=3600)
    connect_timeout_s: float = setting(
        3.0,
        "time to wait for CONNACK before trying the other MQTT version (auto mode)",
        unit="s",
        low=0.5,
        high=60,
    )
    reconnect_min_s: float = setting(
        0.5, "first reconnect delay; doubles per failure, with full jitter", unit="s", low=0.05, high=60
    )
    reconnect_max_s: float = setting(30.0, "longest reconnect delay", unit="s", low=0.1, high=3600)
    mqtt_protocol: str = setting(
        "auto", "MQTT version: 5, 3.1.1, or auto (5 where the broker has it)", choices=("auto", "5", "3.1.1")
    )
    mode: str = setting(
        "invited",
        "invited: one rating per service, opened by the clerk's invite (presses without one are kept, flagged "
        "uninvited); open: every press while a clerk is logged in is a rating",
        choices=("invited", "open"),
    )
    invite_window_s: float = setting(
        30.0, "how long an invite waits for a press before it becomes a timeout record", unit="s", low=3, high=600
    )
    amend_window_s: float = setting(
        5.0, "a second press this soon after a rating replaces it (an amend record)", unit="s", low=0, high=60
    )
    misuse_interval_s: float = setting(
        3.0,
        "presses this soon after a rating (or its amend) are kept with the misuse flag, out of figures",
        unit="s",
        low=0,
        high=60,
    )
    burst_presses: int = setting(
        5, "more presses than this within burst_window_s raise a misuse event", low=2, high=1000
    )
    burst_window_s: float = setting(10.0, "see burst_presses", unit="s", low=1, high=600)
    reasons_window_s: float = setting(
        6.0,
        "after a level 1 or 2 rating, the keys choose reasons until this long after the last key "
        "(a touchscreen's follow-up questions wait screen_timeout_s instead)",
        unit="s",
        low=2,
        high=60,
    )
    screen_timeout_s: float = setting(
        30.0,
        "a touchscreen's follow-up questions (and any screen a customer leaves) wait this long after the last "
        "touch, then the answers so far are stored and the screen goes back",
        unit="s",
        low=5,
        high=300,
    )
    dim_after_s: float = setting(
        60.0, "a touchscreen dims after this long without a touch or a change (0: never)", unit="s", low=0, high=3600
    )
    subscores: bool = setting(
        False, "a touchscreen asks for sub-scores after the overall level: 服务态度, 办理效率, 业务水平 (skippable)"
    )
    positive_reasons: bool = setting(
        False, "a touchscreen asks for reasons after a level 4 or 5 too (reasons_positive)"
    )
    callback: bool = setting(
        True,
        "a touchscreen offers a call-back number after a level 1 or 2; sealed to the hub's key at once, so only "
        "on a paired terminal",
    )
    reason_required: bool = setting(
        False, "a touchscreen takes no done after a level 1 or 2 without a reason (walking away still leaves none)"
    )
    reasons_negative: str = setting(
        "1,2,3,4,5,6",
        "the reason codes a touchscreen offers after a level 1 or 2, in order (the key panel's keys are codes 1..5)",
        rule=_CODES_RULE,
        check=_valid_codes,
    )
    reasons_positive: str = setting(
        "51,52,53,54,55,56",
        "the reason codes a touchscreen offers after a level 4 or 5 (with positive_reasons), in order",
        rule=_CODES_RULE,
        check=_valid_codes,
    )
    middle_label: str = setting(
        "一般",
        "the label of level 3 (基本满意 in the national government-service scheme)",
        choices=("一般", "基本满意"),
    )
    reason_labels: str = setting(
        "等候时间长,服务态度差,业务不熟练,流程繁琐,其他",
        "the five reason labels for keys 1..5, comma-separated (shown on screens, spoken by voice prompts)",
        rule="five comma-separated labels",
        check=lambda text: len([part for part in text.split(",") if part.strip()]) == 5,
    )
    language: str = setting("zh-CN", "the language of screens and voice prompts", choices=("zh-CN", "en"))
    opening_hours: str = setting(
        "",
        "the counter's opening hours (site time), e.g. 08:30-12:00,13:30-17:00; empty: always open",
        rule="empty, or HH:MM-HH:MM spans separated by commas",
        check=valid_hours,
    )
    debounce_ms: int = setting(
        40, "a key's repeated down-edges within this time are one press", unit="ms", low=0, high=1000
    )
    heartbeat_s: float = setting(60.0, "how often the terminal publishes its health", unit="s", low=1, high=3600)
    keys: str = setting(
        "stdin",
        "where presses come from: the serial key panel, lines on stdin, or the touchscreen (which also asks the "
        "follow-up questions that need a screen: sub-scores, positive reasons, a call-back number)",
        choices=("panel", "stdin", "touch"),
    )
    panel_port: str = setting(
        "/dev/serial/by-id/usb-pingjia_keypanel-if00",
        "the key panel's serial device (a stable udev path)",
        rule="a device path",
        check=lambda text: text.startswith("/"),
    )
    broker: str = setting(
        "",
        "mqtt(s)://host:port[?protocol=5|3.1.1]; empty: the one pairing gave, else store only "
        "(--broker and $PINGJIA_BROKER override)",
        rule="empty, or mqtt://host:port or mqtts://host:port",
        check=lambda text: text == "" or text.startswith(("mqtt://", "mqtts://")),
    )
    claim_broker: str = setting(
        "",
        "while not paired, claim the registration through this broker with the pairing code the screen "
        "shows, once the operator enters it at the hub (`pingjia hub claim CODE`); empty: pair over the console only",
        rule="empty, or mqtt://host:port or mqtts://host:port",
        check=lambda text: text == "" or text.startswith(("mqtt://", "mqtts://")),
    )
    console_port: str = setting(
        "",
        "the technician console's serial port (a USB gadget port, e.g. /dev/ttyGS0; a pty in the simulator); "
        "empty: none",
        rule="empty, or a device path",
        check=lambda text: text == "" or text.startswith("/"),
    )
