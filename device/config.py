"""The terminal's settings, declared once as data (see runtime.settings for the machinery)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from runtime.settings import setting

__all__ = ["DeviceConfig", "valid_hours"]

_SPAN: Final = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]")


def valid_hours(text: str) -> bool:
    """Empty (always open), or comma-separated HH:MM-HH:MM spans, each starting before it ends."""
    if text == "":
        return True
    spans = [part.strip() for part in text.split(",")]
    return all(_SPAN.fullmatch(span) is not None and span[:5] < span[6:] for span in spans)


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
        "after a level 1 or 2 rating, the keys choose reasons until this long after the last key",
        unit="s",
        low=2,
        high=60,
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
        "stdin", "where presses come from: the serial key panel, or lines on stdin", choices=("panel", "stdin")
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
