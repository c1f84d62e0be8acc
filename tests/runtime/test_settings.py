"""Settings declared as data (runtime.settings), as the terminal and the hub declare theirs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from device.config import DeviceConfig
from hub.config import HubConfig
from runtime.settings import (
    ConfigError,
    from_assignments,
    from_mapping,
    from_toml,
    markdown_table,
    setting,
    settings_of,
)


def test_defaults_are_valid() -> None:
    for cls in (DeviceConfig, HubConfig):
        for info in settings_of(cls):
            assert info.coerce(info.default) == info.default


def test_values_from_the_command_line_are_converted_and_checked() -> None:
    config = from_assignments(DeviceConfig, ["thank_you_ms=800", "ack_timeout_s=2", "mqtt_protocol=3.1.1"])
    assert (config.thank_you_ms, config.ack_timeout_s, config.mqtt_protocol) == (800, 2.0, "3.1.1")


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        ("thank_you_ms=fast", "setting 'thank_you_ms': 'fast' is not allowed; int in 0..15000 ms"),
        ("thank_you_ms=99999", "int in 0..15000 ms"),
        ("mqtt_protocol=4", "one of auto, 5, 3.1.1"),
        ("no_such=1", "no such setting; known:"),
        ("thank_you_ms", "write name=value"),
    ],
)
def test_bad_settings_name_the_key_the_value_and_what_is_allowed(assignment: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_assignments(DeviceConfig, [assignment])
    assert fragment in str(caught.value)


def test_a_removed_setting_says_what_replaced_it() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Example:
        REMOVED: ClassVar[Mapping[str, str]] = {"resend_s": "use ack_timeout_s"}
        ack_timeout_s: float = setting(1.0, "x")

    with pytest.raises(ConfigError, match="removed: use ack_timeout_s"):
        from_mapping(Example, {"resend_s": 3})


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for cls in (DeviceConfig, HubConfig):
        assert markdown_table(cls) in readme, f"README's table of {cls.__name__} is out of date"


def test_the_example_terminal_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "device" / "terminal.example.toml"
    config = from_toml(DeviceConfig, example.read_text(encoding="utf-8"), source=str(example))
    assert config.keys == "panel"
    assert config.mode == "invited"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ('mode = "vote"\n', "setting 'mode': 'vote' is not allowed; one of invited, open"),
        ('reason_labels = "a,b"\n', "five comma-separated labels"),
        ("invite_window_s = 1\n", "float in 3..600 s"),
        ('broker = "tcp://x"\n', "empty, or mqtt://host:port"),
        ("mode = [\n", "terminal.toml is not valid TOML"),
        ("[terminal]\nmode = 'open'\n", "[terminal] is not a section here"),
        ("colour = 1\n", "no such setting"),
    ],
)
def test_a_bad_config_file_names_the_key_the_value_and_what_is_allowed(document: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_toml(DeviceConfig, document, source="/etc/pingjia/terminal.toml")
    assert fragment in str(caught.value)
