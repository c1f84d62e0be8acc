"""The hub's identity: an Ed25519 key that signs everything the hub says to terminals (acks,
commands, configuration, its status, technicians' credentials), and an X25519 key to which
terminals seal customers' contact numbers.

`pingjia hub init` makes both in one file, mode 0600, which never leaves the hub; terminals pin the
two public keys at pairing. Every hub worker of a site loads the same file.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from hub.errors import HubError
from protocol import DecodeError, SealKey, SigningKey

__all__ = ["DEFAULT_KEY_FILE", "HubKeyError", "HubKeys", "create", "default_path", "describe", "load"]

DEFAULT_KEY_FILE = "var/hub.key"
_SIGN_LABEL = "PRIVATE KEY"


class HubKeyError(HubError):
    """The hub key file is missing, unreadable, open to others, or not a hub key."""


@dataclass(frozen=True)
class HubKeys:
    sign: SigningKey
    seal: SealKey

    @property
    def sign_hex(self) -> str:
        return self.sign.public.hex

    @property
    def seal_hex(self) -> str:
        return self.seal.public_hex

    def public(self) -> dict[str, str]:
        return {"sign": self.sign_hex, "seal": self.seal_hex}


def default_path() -> Path:
    return Path(os.environ.get("PINGJIA_HUB_KEY", DEFAULT_KEY_FILE))


def create(path: Path) -> HubKeys:
    """Make the hub's keys in a new file (mode 0600); HubKeyError if the file exists."""
    keys = HubKeys(sign=SigningKey.generate(), seal=SealKey.generate())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise HubKeyError(f"{path} exists: this hub has its keys already (terminals pinned them)") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(keys.sign.to_pem() + keys.seal.to_pem())
        handle.flush()
        os.fsync(handle.fileno())
    return keys


def load(path: Path) -> HubKeys:
    """The hub's keys from `path`; HubKeyError saying what to do when they cannot be used."""
    try:
        mode = path.stat().st_mode
        text = path.read_bytes()
    except FileNotFoundError:
        raise HubKeyError(f"no hub key at {path}: run `pingjia hub init --hub-key {path}` once") from None
    except OSError as exc:
        raise HubKeyError(f"cannot read the hub key {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise HubKeyError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    end = f"-----END {_SIGN_LABEL}-----".encode()
    blocks = [block + end for block in text.split(end) if block.strip()]
    if len(blocks) != 2:
        raise HubKeyError(f"{path} does not hold the hub's two keys (Ed25519, X25519)")
    try:
        return HubKeys(sign=SigningKey.from_pem(blocks[0]), seal=SealKey.from_pem(blocks[1]))
    except (DecodeError, ValueError) as exc:
        raise HubKeyError(f"{path} does not hold the hub's keys: {exc}") from None


def describe(keys: HubKeys, path: Path) -> str:
    return json.dumps({"hub_key": str(path), **keys.public()})
