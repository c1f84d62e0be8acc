"""Clerks' cards: what a terminal's screen shows of the clerk logged in, made from the directory.

A card (protocol.card) names the clerk (staff id and name), their department and the counter the
terminal stands at, both as the directory has them on the hub's day (its time zone), by their
names, and carries the clerk's photo. The hub signs one for a terminal and publishes it retained
on `pingjia/v1/<device>/card`:

- when it learns that a clerk logged in there: a terminal's health names another `staff` than
  the health stored before it (hub.telemetry notes it; the serving hub publishes after the commit);
- when what a logged-in clerk's card shows changes: the directory changed (any `pingjia hub
  directory ...` command, from any process, bumps its version), or the day did (a move given from
  a later day, or back-dated). The serving hub checks both about once a second (`CardDesk.due`)
  and publishes only the cards that differ from the ones it published.

The staff record's `photo` is the path of a PNG or JPEG file on the hub (absolute, or relative to
the hub's working folder), of at most MAX_PHOTO_BYTES (48 KiB): the hub resizes nothing. A photo
that cannot be read, is over the limit or is no PNG or JPEG leaves the card without one (the
terminal shows a placeholder), and is said in the log; `check_photo` says the same to whoever sets
it. A version comes from one counter of the hub's (`hub_counters`, name `card`), so it only grows,
for every terminal.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hub import directory
from hub.control import Publication
from hub.db import Database
from hub.errors import RegistryError
from hub.identity import HubKeys
from protocol import Channel, topic
from protocol.card import Card, ClerkCard, encode_card, photo_problem
from protocol.limits import MAX_NAME_CHARS, MAX_PHOTO_BYTES
from protocol.topics import QOS, RETAINED

__all__ = ["CardDesk", "card_publication", "check_photo", "clerk_card", "logged_in", "photo_bytes"]

log = logging.getLogger("pingjia.hub.cards")

_TICK_S = 1.0  # how often the serving hub looks whether the directory or the day changed


def check_photo(photo: str) -> None:
    """RegistryError unless `photo` is empty or the path of a PNG or JPEG file within the card's limit."""
    if photo:
        photo_bytes(photo)


def photo_bytes(photo: str) -> bytes | None:
    """The bytes of the photo file `photo` names ('' : None); RegistryError saying why it cannot
    go on a card (unreadable, over MAX_PHOTO_BYTES, neither PNG nor JPEG)."""
    if not photo:
        return None
    path = Path(photo)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_PHOTO_BYTES + 1)  # no more than the limit and one byte is ever read
    except OSError as exc:
        raise RegistryError(f"photo {photo!r} cannot be read: {exc}") from None
    problem = photo_problem(data)
    if problem is not None:
        if len(data) > MAX_PHOTO_BYTES:
            problem = f"the photo is over the card's limit of {MAX_PHOTO_BYTES} bytes; make it smaller first"
        raise RegistryError(f"photo {photo!r}: {problem}")
    return data


def _shown(name: object, fallback: str) -> str:
    """A directory name as a card may carry it: printable, at most MAX_NAME_CHARS (cut with '…');
    `fallback` (an id) when there is none."""
    text = str(name or "").strip()
    if not text or not text.isprintable():
        text = fallback
    return text if len(text) <= MAX_NAME_CHARS else text[: MAX_NAME_CHARS - 1] + "…"


def _name(db: Database, table: str, key: str) -> str:
    """The display name of a unit or counter (its id where it has none); '' for none."""
    if not key:
        return ""
    found = db.execute(f"SELECT name FROM {table} WHERE id = ?", (key,)).fetchone()  # noqa: S608 - constant names
    return _shown(found[0] if found is not None else "", key)


def clerk_card(db: Database, device: str, staff: str, day: str) -> ClerkCard:
    """The card of `staff` at `device` on `day` (ISO, the hub's time zone): the clerk's name (their
    id when the directory has none), the name of the unit they belong to that day and of the
    counter the terminal stands at that day ('' for none), and their photo (None when there is none,
    or it cannot go on a card: logged)."""
    row = db.execute("SELECT name, photo FROM staff WHERE id = ?", (staff,)).fetchone()
    name, photo = (row[0], str(row[1] or "")) if row is not None else ("", "")
    department = _name(db, "units", directory.on_day(db, "memberships", staff, day))
    counter = _name(db, "counters", directory.on_day(db, "placements", device, day))
    try:
        picture = photo_bytes(photo)
    except RegistryError as exc:
        log.warning("the card of %s goes without a photo: %s", staff, exc)
        picture = None
    return ClerkCard(staff=staff, name=_shown(name, staff), department=department, counter=counter, photo=picture)


def card_publication(db: Database, keys: HubKeys, device: str, clerk: ClerkCard, now_ms: int) -> Publication:
    """`clerk`'s card for `device`, signed with the next card version (a write function)."""
    db.require_transaction("card versions")
    db.execute(
        "INSERT INTO hub_counters (name, value) VALUES ('card', 1) "
        "ON CONFLICT (name) DO UPDATE SET value = hub_counters.value + 1"
    )
    version = int(db.execute("SELECT value FROM hub_counters WHERE name = 'card'").fetchone()[0])
    card = Card.of(clerk, device=device, version=version, t=now_ms)
    return Publication(
        topic(device, Channel.CARD), encode_card(card, keys.sign), QOS[Channel.CARD], Channel.CARD in RETAINED
    )


def logged_in(db: Database, devices: Iterable[str] | None = None) -> dict[str, str]:
    """{device: staff} of the registered, unrevoked terminals whose latest health names a clerk."""
    rows = db.execute("SELECT id, health FROM devices WHERE revoked_ms IS NULL AND health IS NOT NULL").fetchall()
    wanted = None if devices is None else set(devices)
    found = {}
    for device, health in rows:
        if wanted is not None and device not in wanted:
            continue
        try:
            staff = json.loads(health).get("staff")
        except (ValueError, AttributeError):
            continue  # stored by the hub as received and verified: never expected
        if isinstance(staff, str) and staff:
            found[str(device)] = staff
    return found


class CardDesk:
    """The serving hub's cards: published on a clerk's log-in, and again when what they show changes.

    Remembers the card it last published per terminal, in memory: at a start it publishes every
    logged-in clerk's card once again (a new version of the same card costs a terminal nothing).
    """

    def __init__(self, keys: HubKeys, *, timezone: str) -> None:
        self._keys = keys
        self._zone = ZoneInfo(timezone)
        self._published: dict[str, ClerkCard] = {}  # device -> the card last published for it
        self._seen: tuple[int, str] | None = None  # (directory version, day) last looked at
        self._next_tick = 0.0

    def today(self, now_ms: int) -> str:
        return datetime.fromtimestamp(now_ms / 1000, self._zone).date().isoformat()

    def logins(self, db: Database, logins: Sequence[tuple[str, str]], now_ms: int) -> list[Publication]:
        """The cards of clerks who logged in, (device, staff) each (a write function: versions)."""
        day = self.today(now_ms)
        published = []
        for device, staff in logins:
            clerk = clerk_card(db, device, staff, day)
            published.append(card_publication(db, self._keys, device, clerk, now_ms))
            self._published[device] = clerk
        return published

    def changed(self, db: Database, now_ms: int) -> list[Publication]:
        """The cards of logged-in clerks that differ from the ones published (a write function)."""
        day = self.today(now_ms)
        published = []
        for device, staff in sorted(logged_in(db).items()):
            clerk = clerk_card(db, device, staff, day)
            if self._published.get(device) != clerk:
                published.append(card_publication(db, self._keys, device, clerk, now_ms))
                self._published[device] = clerk
        return published

    def due(self, db: Database, now_ms: int) -> bool:
        """Whether the directory or the day changed since the last look (about once a second). The
        first look says yes: a change made while the hub was away is caught up with at its start."""
        now = time.monotonic()
        if now < self._next_tick:
            return False
        self._next_tick = now + _TICK_S
        seen = (int(db.execute("SELECT version FROM directory_version").fetchone()[0]), self.today(now_ms))
        before, self._seen = self._seen, seen
        return before != seen
