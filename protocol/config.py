"""Configuration documents (`pingjia/v1/<device>/config`, retained): a terminal's settings from the hub.

The hub signs a document for one terminal, with a version that only grows. A terminal verifies it
with the hub key it pinned at pairing, refuses one older than the one it runs (`rollback`; the same
version again is the retained copy, and changes nothing), keeps the last good one across reboots,
and reports its version in health. Values are text, checked by the terminal against its own table
of settings (a document with a setting it does not know or a value out of range is refused whole).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from protocol import canonical, limits, signed
from protocol.canonical import show
from protocol.errors import DecodeError, Reason
from protocol.fields import (
    DEVICE_ID,
    HEX128,
    bad_field,
    check_keys,
    checked_int,
    mismatch,
    open_message,
    valid_device_id,
)
from protocol.keys import SigningKey, VerifyKey
from protocol.signed import Purpose

__all__ = ["REMOTE_SETTINGS", "SETTING_NAME", "ConfigDoc", "decode_config", "encode_config", "verify_config"]

SETTING_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_KEYS: Final = frozenset({"v", "type", "device", "version", "t", "settings", "sig"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDoc:
    device: str
    version: int  # grows with every document the hub makes (for any terminal)
    t: int  # hub clock when signed, UTC ms
    settings: Mapping[str, str] = field(default_factory=dict)
    sig: str = ""

    def fields(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "version": self.version,
            "t": self.t,
            "settings": dict(sorted(self.settings.items())),
            "sig": self.sig,
        }


def encode_config(doc: ConfigDoc, key: SigningKey) -> bytes:
    if len(doc.settings) > limits.MAX_SETTINGS:
        raise ValueError(f"a configuration document holds at most {limits.MAX_SETTINGS} settings")
    return signed.sign(key, Purpose.CONFIG, "config", doc.fields())


def decode_config(raw: bytes) -> ConfigDoc:
    obj = open_message(raw, "config", limits.CONTROL_VERSION)
    check_keys(obj, _KEYS, _KEYS, "config")
    device = obj["device"]
    if not valid_device_id(device):
        raise mismatch(device, DEVICE_ID, "config device")
    version = checked_int(obj["version"], 1, limits.MAX_COUNTER, "config version", device=device)
    t = checked_int(obj["t"], 0, limits.MAX_MS, "config t", device=device)
    sig = obj["sig"]
    if type(sig) is not str or HEX128.fullmatch(sig) is None:
        raise mismatch(sig, HEX128, "config sig", device=device)
    settings = obj["settings"]
    if type(settings) is not dict or len(settings) > limits.MAX_SETTINGS:
        raise bad_field(f"config settings must be an object of at most {limits.MAX_SETTINGS} settings", device)
    for name, value in settings.items():
        if SETTING_NAME.fullmatch(name) is None:
            raise bad_field(f"config setting name {show(name)} is not [a-z][a-z0-9_]*, at most 64", device)
        if type(value) is not str or len(value) > limits.MAX_SETTING_CHARS or not value.isprintable():
            raise bad_field(
                f"config setting {name} must be printable text of at most {limits.MAX_SETTING_CHARS} characters", device
            )
    if canonical.encode(obj) != raw:
        raise DecodeError("config is not in canonical form", reason=Reason.NOT_CANONICAL, device=device)
    return ConfigDoc(device=device, version=version, t=t, settings=settings, sig=sig)


def verify_config(doc: ConfigDoc, key: VerifyKey) -> None:
    """AuthError(bad_signature) unless the hub key `key` signed this document."""
    signed.verify(key, Purpose.CONFIG, "config", doc.fields(), device=doc.device, who="the pinned hub key")


# Settings a configuration document may carry: each is a terminal setting of the same name (checked
# by the terminal against its own rules), except `staff`, the clerk bound to the terminal.
REMOTE_SETTINGS: Final = (
    "staff",
    "mode",
    "thank_you_ms",
    "invite_window_s",
    "amend_window_s",
    "misuse_interval_s",
    "burst_presses",
    "burst_window_s",
    "reasons_window_s",
    "reason_labels",
    "language",
    "opening_hours",
    # What a site decides of a touchscreen's follow-up questions and labels:
    "subscores",
    "positive_reasons",
    "callback",
    "reason_required",
    "reasons_negative",
    "reasons_positive",
    "middle_label",
)
