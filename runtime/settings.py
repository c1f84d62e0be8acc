"""Settings declared once, as data: each is a dataclass field with its help, unit and range.

The terminal (device.config) and the hub (hub.config) declare theirs with `setting()`; the CLI
(`--set name=value`), TOML files, the README's settings tables and the "every setting is
documented" test are all driven from those declarations. A removed setting stays listed in
`REMOVED` and fails with a message naming what replaced it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

__all__ = [
    "ConfigError",
    "SettingInfo",
    "from_assignments",
    "from_mapping",
    "from_toml",
    "markdown_table",
    "replaced",
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


def replaced(base: S, values: Mapping[str, str], *, source: str) -> S:
    """`base` with some settings replaced by text values, each checked as from the command line;
    ConfigError naming `source`, the setting and the value if one is not allowed."""
    infos = {info.name: info for info in settings_of(type(base))}
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in infos:
            raise ConfigError(key, value, "", message=f"{source}: no terminal setting {key!r}")
        try:
            checked[key] = infos[key].coerce(value)
        except ConfigError as exc:
            raise ConfigError(key, value, exc.allowed, message=f"{source}: {exc}") from None
    return dataclasses.replace(base, **checked)


def markdown_table(cls: type[_Settings]) -> str:
    """The settings as a Markdown table, as README.md shows them."""
    lines = ["| setting | default | allowed | what it does |", "|---|---|---|---|"]
    for info in settings_of(cls):
        default = str(info.default).lower() if info.type is bool else info.default
        lines.append(f"| `{info.name}` | `{default}` | {info.allowed()} | {info.help} |")
    return "\n".join(lines)
