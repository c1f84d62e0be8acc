"""Clerks' cards at the hub (hub.cards): made from the directory as of the hub's day, published
retained when a clerk logs in and again when the directory changes what the card shows, and the
broker's ACL that lets only the hub write a card and only its terminal read it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hub import directory, registry
from hub.brokerconf import BrokerUser, hash_password, render_site
from hub.cards import CardDesk, check_photo, clerk_card, logged_in
from hub.errors import RegistryError
from hub.writer import Writer
from protocol import Channel, SigningKey, limits, topic
from protocol.card import PHOTO_MAGIC, ClerkCard, decode_card, verify_card
from runtime.fake import FakeBroker
from tests.helpers import HUB_KEYS
from tests.helpers import health_bytes as health
from tests.hub.conftest import Ear, HubDb, Served

KEY = SigningKey.generate()  # terminal d1's
PNG = PHOTO_MAGIC["PNG"] + b"\x00" * 100
CARD_TOPIC = topic("d1", Channel.CARD)
NOW = 1_763_800_000_000


def _days(day: str, n: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=n)).isoformat()


def _directory(writer: Writer, photo: str = "") -> None:
    """d1 at counter c3 (3号窗口); E1 (王芳) in 综合受理 (unit u1) since ever; unit u2 is 税务."""
    writer.write(directory.set_unit, "u1", parent=None, kind="department", name="综合受理")
    writer.write(directory.set_unit, "u2", parent=None, kind="department", name="税务")
    writer.write(directory.set_counter, "c3", unit="u1", name="3号窗口")
    writer.write(directory.set_staff, "E1", name="王芳", photo=photo)
    writer.write(directory.set_membership, "E1", "u1")
    writer.write(registry.add_device, "d1", KEY.public.hex, department="u1", counter="c3")


def test_the_card_is_the_directory_as_of_the_day(hub_db: HubDb, tmp_path: Path) -> None:
    photo = tmp_path / "e1.png"
    photo.write_bytes(PNG)
    _directory(hub_db.writer, photo=str(photo))
    desk = CardDesk(HUB_KEYS, timezone="Asia/Shanghai")
    today = desk.today(NOW)
    assert today == "2025-11-22"  # 08:26:40 in Shanghai: the hub's day, not UTC's
    card = clerk_card(hub_db.writer.db, "d1", "E1", today)
    assert card == ClerkCard(staff="E1", name="王芳", department="综合受理", counter="3号窗口", photo=PNG)
    # A move back-dated three days: today's card says the new department; a move from tomorrow does not yet.
    hub_db.writer.write(directory.set_membership, "E1", "u2", first_day=_days(today, -3))
    assert clerk_card(hub_db.writer.db, "d1", "E1", today).department == "税务"
    hub_db.writer.write(directory.set_membership, "E1", "u1", first_day=_days(today, 1))
    assert clerk_card(hub_db.writer.db, "d1", "E1", today).department == "税务"
    assert clerk_card(hub_db.writer.db, "d1", "E1", _days(today, 1)).department == "综合受理"
    # The terminal moved to a counter without a name: its id is shown; none at all: ''.
    hub_db.writer.write(directory.set_placement, "d1", "c9", first_day=today)
    assert clerk_card(hub_db.writer.db, "d1", "E1", today).counter == "c9"
    assert clerk_card(hub_db.writer.db, "d2", "E1", today).counter == ""
    # A clerk the directory does not know: the staff id as the name, nothing else.
    assert clerk_card(hub_db.writer.db, "d1", "E9", today) == ClerkCard("E9", "E9", "", "c9", None)


def test_a_photo_over_the_limit_or_not_an_image_is_refused_and_the_card_goes_without(
    hub_db: HubDb, tmp_path: Path
) -> None:
    big = tmp_path / "big.jpg"
    big.write_bytes(PHOTO_MAGIC["JPEG"] + b"\x00" * limits.MAX_PHOTO_BYTES)
    gif = tmp_path / "e1.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 10)
    top = tmp_path / "top.jpg"
    top.write_bytes(PHOTO_MAGIC["JPEG"] + b"\x00" * (limits.MAX_PHOTO_BYTES - 3))
    check_photo(str(top))
    check_photo("")
    for path, says in (
        (big, "over the card's limit of 49152 bytes"),
        (gif, "neither a PNG nor a JPEG"),
        (tmp_path / "none.png", "cannot be read"),
    ):
        with pytest.raises(RegistryError, match=says):
            check_photo(str(path))
    _directory(hub_db.writer, photo=str(big))
    assert clerk_card(hub_db.writer.db, "d1", "E1", "2025-11-22").photo is None
    hub_db.writer.write(directory.set_staff, "E1", name="王芳", photo=str(top))
    assert clerk_card(hub_db.writer.db, "d1", "E1", "2025-11-22").photo == top.read_bytes()


def test_cards_take_versions_from_one_counter_and_only_changed_cards_go_again(hub_db: HubDb) -> None:
    _directory(hub_db.writer)
    hub_db.receive(topic("d1", Channel.HEALTH), health(KEY, staff="E1"), NOW)
    assert logged_in(hub_db.writer.db) == {"d1": "E1"}
    desk = CardDesk(HUB_KEYS, timezone="Asia/Shanghai")
    with hub_db.writer.transaction() as db:
        first = desk.logins(db, [("d1", "E1")], NOW)
        assert desk.changed(db, NOW) == []  # what was published is what the card shows
    hub_db.writer.write(directory.set_staff, "E1", name="王芳芳")
    with hub_db.writer.transaction() as db:
        second = desk.changed(db, NOW + 1)
    assert [p.topic for p in (*first, *second)] == [CARD_TOPIC, CARD_TOPIC]
    assert all(p.retain and p.qos == 1 for p in (*first, *second))
    cards = [decode_card(p.payload) for p in (*first, *second)]
    assert [c.version for c in cards] == [1, 2]
    assert [c.name for c in cards] == ["王芳", "王芳芳"]


def test_a_heartbeat_naming_another_clerk_is_a_login(hub_db: HubDb) -> None:
    _directory(hub_db.writer)
    ingest = hub_db.ingest()
    for staff, at in (("E1", 0), ("E1", 1), (None, 2), ("E1", 3), ("E2", 4)):
        hub_db.receive(topic("d1", Channel.HEALTH), health(KEY, staff=staff, mono=at), NOW + at, ingest)
    assert ingest.telemetry.take_logins() == [("d1", "E2")]  # E1 (three times) then E2: the latest per terminal
    assert ingest.telemetry.take_logins() == []


def test_a_retained_card_is_published_on_login_and_again_when_the_directory_changes(db_url: str) -> None:
    with Writer.open(db_url) as writer:
        _directory(writer)
    broker = FakeBroker()
    served = Served(db_url, broker)
    try:
        watcher = Ear(broker, "watcher", [CARD_TOPIC])
        terminal = Ear(broker, "d1", [])
        terminal.publish(topic("d1", Channel.HEALTH), health(KEY, staff="E1"), retain=True)
        raw = watcher.wait_for(CARD_TOPIC)[0]
        assert broker.retained(CARD_TOPIC) == raw
        card = decode_card(raw)
        verify_card(card, HUB_KEYS.sign.public)
        assert card.device == "d1"
        assert card.clerk == ClerkCard(staff="E1", name="王芳", department="综合受理", counter="3号窗口", photo=None)
        terminal.publish(topic("d1", Channel.HEALTH), health(KEY, staff="E1", mono=5), retain=True)  # no login
        with Writer.open(db_url) as writer:  # as `pingjia hub directory move` does, from another process
            writer.write(directory.set_membership, "E1", "u2", first_day="2020-01-01")
        moved = decode_card(watcher.wait_for(CARD_TOPIC, 2)[1])
        assert (moved.department, moved.name) == ("税务", "王芳")
        assert moved.version > card.version
        assert len(watcher.wait_for(CARD_TOPIC)) == 2
        assert broker.retained(CARD_TOPIC) == watcher.wait_for(CARD_TOPIC)[1]
    finally:
        served.stop()


def test_the_hub_writes_cards_and_a_terminal_reads_only_its_own(tmp_path: Path) -> None:
    users = [
        BrokerUser("t1", hash_password("x"), "terminal", "t1"),
        BrokerUser("pingjia-hub", hash_password("x"), "hub"),
    ]
    acl = render_site(users, directory=tmp_path, port=1884, persistence_dir=tmp_path / "store", tls=None)["acl"]
    lines = acl.splitlines()
    assert "pattern read pingjia/v1/%u/card" in lines  # its own topic only: %u is the terminal's username
    assert "topic write pingjia/v1/+/card" in lines[lines.index("user pingjia-hub") :]
    assert not any("card" in line and "write" in line for line in lines[: lines.index("user pingjia-hub")])
    assert not any(line.startswith("pattern write") and line.endswith("/card") for line in lines)
