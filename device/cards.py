"""Clerks' cards on the terminal: the hub's signed cards, checked, and kept per clerk on disk.

A card (protocol.card) says what the idle screen shows of the clerk logged in: name, staff
number, department, counter and photo. The hub sends one when a clerk logs in and when the
directory changes it; the terminal keeps the latest card of each of the `keep` clerks it saw most
recently, so that a clerk who logs in again is shown at once, also after a restart, before the
hub answers (or while it is away).

A card is taken only when the hub key pinned at pairing signed it, for this terminal, and its
version is not below the newest taken (`rollback`; the same version again is the retained copy,
and changes nothing). The newest version taken is the highest of the cards kept: the oldest go
first when the cache is full, so the newest is always among them.

On disk: one file per clerk in `folder`, named by a hash of the staff id (any printable id is a
file name), holding the card's signed bytes as they came, written atomically. At a start every
file is read and checked again with the pinned key; one that does not decode, verify or belong
to this terminal is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from protocol import AuthError, ProtocolError, Reason, VerifyKey
from protocol.card import Card, ClerkCard, decode_card, verify_card

__all__ = ["KEEP", "CardArrived", "Cards"]

log = logging.getLogger("pingjia.device")

KEEP = 32  # clerks whose latest card is kept: a hall's staff, at about 66 KB each at most
_SUFFIX = ".card"


@dataclass(frozen=True, slots=True)
class CardArrived:
    """Posted to the terminal's inbox by the uplink: a newer card of `staff` was taken and kept
    (the screen shows it if that clerk is logged in)."""

    staff: str


class Cards:
    def __init__(self, folder: Path, *, device: str, hub_key: VerifyKey | None, keep: int = KEEP) -> None:
        """Read the cards kept in `folder` (made if missing) that `hub_key` signed for `device`
        (None: not paired; none is read, and none is removed)."""
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.folder = folder
        self.device = device
        self.hub_key = hub_key
        self.keep = keep
        self._cards: dict[str, Card] = {}  # staff -> the latest card taken
        self.problems: list[str] = []  # what was wrong with the folder at the start, in words
        self._load()

    @property
    def version(self) -> int:
        """The newest card version taken (0: none); a card below it is a rollback."""
        return max((card.version for card in self._cards.values()), default=0)

    def get(self, staff: str) -> ClerkCard | None:
        """The latest card of `staff` taken, or None (the screen shows the staff id and a placeholder)."""
        card = self._cards.get(staff)
        return None if card is None else card.clerk

    def take(self, raw: bytes) -> ClerkCard | None:
        """Check a card from the broker and keep it; the clerk's card, or None when it is the
        version taken last (the retained copy again).

        DecodeError if it is not a card; AuthError if it is not for this terminal
        (topic_mismatch), not signed by the pinned key (bad_signature, not_paired) or older than
        the newest taken (rollback). A card that cannot be written to disk is still taken (it is
        shown, and lost at a restart), and said in the log.
        """
        card = decode_card(raw)
        if card.device != self.device:
            raise AuthError(f"card for device {card.device} on this terminal's topic", reason=Reason.TOPIC_MISMATCH)
        if self.hub_key is None:
            raise AuthError("this terminal is not paired: it holds no hub key", reason=Reason.NOT_PAIRED)
        verify_card(card, self.hub_key)
        newest = self.version
        if card.version == newest:
            return None
        if card.version < newest:
            raise AuthError(
                f"card version {card.version} is older than the newest taken, {newest}", reason=Reason.ROLLBACK
            )
        self._cards.pop(card.staff, None)
        self._cards[card.staff] = card
        try:
            self._write(self._path(card.staff), raw)
        except OSError as exc:
            log.warning("%s: the card of %s is shown but not kept: %s", self.device, card.staff, exc)
        self._evict()
        return card.clerk

    def pin(self, hub_key: VerifyKey | None) -> None:
        """A new hub key pinned (paired again): drop the cards it did not sign; None (unpaired)
        keeps them, unused until the terminal is paired again."""
        self.hub_key = hub_key
        if hub_key is None:
            return
        for staff, card in list(self._cards.items()):
            try:
                verify_card(card, hub_key)
            except AuthError:
                del self._cards[staff]
                self._remove(self._path(staff))

    # -- the folder ---------------------------------------------------------------------------------

    def _path(self, staff: str) -> Path:
        return self.folder / (hashlib.sha256(staff.encode("utf-8")).hexdigest()[:32] + _SUFFIX)

    def _load(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            paths = sorted(self.folder.glob("*" + _SUFFIX))
        except OSError as exc:
            self.problems.append(f"the cards folder {self.folder} cannot be read: {exc}")
            return
        for tmp in self.folder.glob("*.tmp"):  # a write a crash cut short: the card before it stays
            self._remove(tmp)
        if self.hub_key is None:
            return
        found: list[Card] = []
        for path in paths:
            try:
                card = decode_card(path.read_bytes())
                verify_card(card, self.hub_key)
                if card.device != self.device or path != self._path(card.staff):
                    raise AuthError(f"a card of {card.device}/{card.staff}", reason=Reason.TOPIC_MISMATCH)
            except (OSError, ProtocolError) as exc:
                self.problems.append(f"the kept card {path.name} is dropped: {exc}")
                self._remove(path)
                continue
            found.append(card)
        for card in sorted(found, key=lambda card: card.version):
            self._cards[card.staff] = card
        self._evict()

    def _evict(self) -> None:
        """Keep the `keep` newest cards (by version): the newest taken is always among them."""
        while len(self._cards) > self.keep:
            staff = min(self._cards, key=lambda name: self._cards[name].version)
            del self._cards[staff]
            self._remove(self._path(staff))

    def _write(self, path: Path, raw: bytes) -> None:
        """Write `raw` to `path` atomically: a crash leaves the old card or the new one, whole."""
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()
