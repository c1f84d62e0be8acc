"""Settings declared once, as data: each is a dataclass field with its help, unit and range.

The CLI (`--set name=value`), the README's settings tables and the "every setting is documented"
test are all driven from these declarations. The hub declares its own with the same `setting()`.
A removed setting stays listed in `REMOVED` and fails with a message naming what replaced it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = [
    "ConfigError",
    "DeviceConfig",
    "SettingInfo",
    "from_assignments",
    "from_mapping",
    "setting",
    "settings_of",
]


class ConfigError(ValueError):
    """A setting is unknown, removed, or has a value outside what is allowed."""

    def __init__(self, key: str, value: object, allowed: str, *, message: str | None = None) -> None:
        super().__init__(message or f"setting {key!r}: {value!r} is not allowed; {allowed}")
        self.key = key
        self.value = value
        self.allowed = allowed


@dataclass(frozen=True)
class SettingInfo:
    name: str
    type: type
    default: Any
    help: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    rule: str = ""  # what a text value must look like, when `check` says more than its type
    check: Callable[[Any], bool] | None = None

    def allowed(self) -> str:
        if self.rule:
            return self.rule
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        bounds = f" in {self.low}..{self.high}" if self.low is not None and self.high is not None else ""
        return f"{self.type.__name__}{bounds}{(' ' + self.unit) if self.unit else ''}"

    def coerce(self, value: object) -> Any:
        """Check (and for text from a command line, convert) a value; ConfigError if not allowed."""
        result: Any = value
        if isinstance(value, str) and self.type is not str:
            text = value.strip().lower()
            try:
                if self.type is bool:
                    if text not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(text)
                    result = text in ("true", "1", "yes")
                else:
                    result = self.type(text)
            except ValueError:
                raise ConfigError(self.name, value, self.allowed()) from None
        if self.type is float and type(result) is int:
            result = float(result)
        if type(result) is not self.type:
            raise ConfigError(self.name, value, self.allowed())
        if self.choices and result not in self.choices:
            raise ConfigError(self.name, value, self.allowed())
        if isinstance(result, int | float) and (
            (self.low is not None and result < self.low) or (self.high is not None and result > self.high)
        ):
            raise ConfigError(self.name, value, self.allowed())
        if self.check is not None and not self.check(result):
            raise ConfigError(self.name, value, self.allowed())
        return result


def setting(
    default: Any,
    help: str,
    *,
    unit: str = "",
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[str] = (),
    rule: str = "",
    check: Callable[[Any], bool] | None = None,
) -> Any:
    return field(
        default=default,
        metadata={
            "help": help,
            "unit": unit,
            "low": low,
            "high": high,
            "choices": tuple(choices),
            "rule": rule,
            "check": check,
        },
    )


class _Settings(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]
    REMOVED: ClassVar[Mapping[str, str]]


S = TypeVar("S", bound=_Settings)


def settings_of(cls: type[_Settings]) -> list[SettingInfo]:
    infos = []
    for f in dataclasses.fields(cls):
        kind = {"int": int, "float": float, "str": str, "bool": bool}[str(f.type)]
        infos.append(SettingInfo(name=f.name, type=kind, default=f.default, **f.metadata))
    return infos


def from_mapping(cls: type[S], values: Mapping[str, object]) -> S:
    """Build a settings object; every key and value checked, errors name key, value and what is allowed."""
    infos = {info.name: info for info in settings_of(cls)}
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key in cls.REMOVED:
            raise ConfigError(key, value, f"this setting was removed: {cls.REMOVED[key]}")
        if key not in infos:
            raise ConfigError(key, value, "no such setting; known: " + ", ".join(sorted(infos)))
        checked[key] = infos[key].coerce(value)
    return cls(**checked)


def from_assignments(cls: type[S], assignments: Iterable[str]) -> S:
    """Settings from `name=value` strings, as given to `--set` on the command line."""
    values: dict[str, str] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep:
            raise ConfigError(text, text, "write name=value")
        values[key.strip()] = value
    return from_mapping(cls, values)


def from_toml(cls: type[S], text: str, *, source: str = "config", overrides: Iterable[str] = ()) -> S:
    """Settings from a TOML document (top-level `name = value` pairs), then `name=value` overrides.

    Every key and value is checked as from the command line; errors name the file, key and value.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, None, "valid TOML", message=f"{source} is not valid TOML: {exc}") from None
    for key, value in document.items():
        if isinstance(value, dict):
            raise ConfigError(
                key, value, "", message=f"{source}: [{key}] is not a section here; settings go at the top level"
            )
    values: dict[str, object] = dict(document)
    for assignment in overrides:
        key, sep, value = assignment.partition("=")
        if not sep:
            raise ConfigError(assignment, assignment, "write name=value")
        values[key.strip()] = value
    return from_mapping(cls, values)


def markdown_table(cls: type[_Settings]) -> str:
    """The settings as a Markdown table, as README.md shows them."""
    lines = ["| setting | default | allowed | what it does |", "|---|---|---|---|"]
    for info in settings_of(cls):
        default = str(info.default).lower() if info.type is bool else info.default
        lines.append(f"| `{info.name}` | `{default}` | {info.allowed()} | {info.help} |")
    return "\n".join(lines)


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
        "mqtt://host:port[?protocol=5|3.1.1]; empty: store only (--broker and $PINGJIA_BROKER override)",
        rule="empty, or mqtt://host:port",
        check=lambda text: text == "" or text.startswith("mqtt://"),
    )
