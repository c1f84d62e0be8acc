"""A terminal's identity: an Ed25519 key made on first start, and the device id.

The private key file is created with mode 0600 and never sent anywhere; only the public key is
shown (for registering the terminal at the hub). Identity, settings and outbox live together in
the terminal's data directory, which firmware updates keep: seqs continue across re-flashing.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from device.errors import ForeignOutbox, IdentityError
from device.outbox import Outbox
from device.state import StateDocument
from protocol import SigningKey, valid_device_id

__all__ = ["KEY_FILE", "OUTBOX_FILE", "STATE_FILE", "Identity", "IdentityError", "create", "load", "open_outbox"]

KEY_FILE = "device.key"
STATE_FILE = "settings.json"  # the stored state (identity, clerk binding, cards); the name is kept for old terminals
OUTBOX_FILE = "outbox.sqlite3"


@dataclass(frozen=True)
class Identity:
    device: str
    key: SigningKey
    data_dir: Path
    outbox_id: str  # the outbox made with this key: only that one may carry its seqs

    @property
    def public_hex(self) -> str:
        return self.key.public.hex


def default_device_id(key: SigningKey) -> str:
    return "pj-" + hashlib.sha256(bytes.fromhex(key.public.hex)).hexdigest()[:12]


def create(data_dir: Path, device: str | None = None) -> Identity:
    """Make a new identity in an empty data directory; IdentityError if one exists."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key_path = data_dir / KEY_FILE
    key = SigningKey.generate()
    device = device or default_device_id(key)
    if not valid_device_id(device):
        raise IdentityError(f"device id {device!r} must be 1..64 of [A-Za-z0-9_.-], starting alphanumeric")
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise IdentityError(f"{key_path} exists: this directory already has an identity") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.to_pem())
        handle.flush()
        os.fsync(handle.fileno())
    outbox = Outbox(data_dir / OUTBOX_FILE, device=device)
    outbox_id = outbox.outbox_id
    outbox.close()
    state = StateDocument(data_dir / STATE_FILE)
    state.update(device=device, outbox_id=outbox_id)
    state.close()
    return Identity(device=device, key=key, data_dir=data_dir, outbox_id=outbox_id)


def load(data_dir: Path) -> Identity:
    """Load the identity (key, device id, and the id of the outbox made with it).

    Reads only: a terminal whose disk is full can still load it. `open_outbox` checks that the
    outbox beside it is the one made with this key.
    """
    key_path = data_dir / KEY_FILE
    try:
        mode = key_path.stat().st_mode
        pem = key_path.read_bytes()
    except FileNotFoundError:
        raise IdentityError(f"no identity in {data_dir}: run `pingjia device init --data {data_dir}`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IdentityError(f"{key_path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    key = SigningKey.from_pem(pem)
    state = StateDocument(data_dir / STATE_FILE)
    document = state.read()
    state.close()
    device, outbox_id = document.get("device"), document.get("outbox_id")
    if not isinstance(device, str) or not isinstance(outbox_id, str):
        raise IdentityError(f"{data_dir / STATE_FILE} lacks the device id; the identity is incomplete")
    return Identity(device=device, key=key, data_dir=data_dir, outbox_id=outbox_id)


def open_outbox(loaded: Identity) -> Outbox:
    """Open the identity's own outbox.

    IdentityError when it is missing or was replaced: starting a fresh outbox under an old key
    would reuse seqs the hub already holds. OutboxError when it is there but cannot be opened now
    (a full disk, an I/O error): that may pass, and the caller may try again.
    """
    path = loaded.data_dir / OUTBOX_FILE
    if not path.exists():
        raise IdentityError(f"outbox {path} is missing: refusing to restart seqs under an existing key; re-pair")
    try:
        outbox = Outbox(path, device=loaded.device, create=False)
    except ForeignOutbox as exc:
        raise IdentityError(str(exc)) from exc
    if outbox.outbox_id != loaded.outbox_id:
        found = outbox.outbox_id
        outbox.close()
        raise IdentityError(
            f"the outbox in {loaded.data_dir} is not the one made with this identity ({found} != {loaded.outbox_id})"
        )
    return outbox
