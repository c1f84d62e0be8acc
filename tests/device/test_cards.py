"""Clerks' cards on the terminal (device.cards, routed by device.uplink): only the pinned hub's,
for this terminal, never an older version; kept per clerk on disk across a restart, the few dozen
newest, photos within the limit."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from device import identity
from device.cards import CardArrived, Cards
from device.delivery import Delivery
from device.events import ControlRefused
from device.telemetry import Errors
from device.uplink import Uplink
from protocol import AuthError, Channel, DecodeError, Reason, SigningKey, limits, topic
from protocol.card import PHOTO_MAGIC, Card, ClerkCard, encode_card
from runtime.fake import FakeBroker
from runtime.link import Inbound

HUB = SigningKey.generate()
FORGER = SigningKey.generate()
PHOTO = PHOTO_MAGIC["JPEG"] + b"\x07" * (limits.MAX_PHOTO_BYTES - 3)  # at the limit


def card(version: int, staff: str = "E1", *, device: str = "t01", **more: str) -> bytes:
    return encode_card(Card(device=device, version=version, t=1_763_800_000_000, staff=staff, name="王芳", **more), HUB)


def signed_by(key: SigningKey, version: int, staff: str = "E1") -> bytes:
    return encode_card(Card(device="t01", version=version, t=0, staff=staff, name="王芳"), key)


def reason(cards: Cards, raw: bytes) -> Reason:
    with pytest.raises(AuthError) as caught:
        cards.take(raw)
    return caught.value.reason


@pytest.fixture
def cards(tmp_path: Path) -> Cards:
    return Cards(tmp_path / "cards", device="t01", hub_key=HUB.public)


def test_a_card_of_the_pinned_hub_is_taken_and_shown(cards: Cards) -> None:
    photo = base64.b64encode(PHOTO).decode()
    shown = cards.take(card(3, department="综合受理", counter="3号窗口", photo=photo))
    assert shown == ClerkCard(staff="E1", name="王芳", department="综合受理", counter="3号窗口", photo=PHOTO)
    assert cards.get("E1") == shown
    assert cards.get("E2") is None
    assert cards.version == 3


def test_forged_misaddressed_and_unpaired_cards_are_refused(cards: Cards, tmp_path: Path) -> None:
    assert reason(cards, signed_by(FORGER, 5)) is Reason.BAD_SIGNATURE
    assert reason(cards, card(5, device="t02")) is Reason.TOPIC_MISMATCH
    unpaired = Cards(tmp_path / "other", device="t01", hub_key=None)
    assert reason(unpaired, card(5)) is Reason.NOT_PAIRED
    with pytest.raises(DecodeError):
        cards.take(card(5).replace(b'"v":2', b'"v":1'))
    assert cards.get("E1") is None
    assert cards.version == 0


def test_an_older_card_is_a_rollback_and_the_same_one_changes_nothing(cards: Cards) -> None:
    assert cards.take(card(7, "E1")) is not None
    assert cards.take(card(8, "E2")) is not None
    assert cards.take(card(8, "E2")) is None  # the retained copy again
    assert reason(cards, card(6, "E1")) is Reason.ROLLBACK  # an older card of E1, genuine
    assert reason(cards, card(7, "E3")) is Reason.ROLLBACK  # older than the newest of anyone
    assert cards.take(card(9, "E1", department="税务")) == ClerkCard("E1", "王芳", "税务", "", None)


def test_cards_are_kept_across_a_restart_the_newest_first(tmp_path: Path) -> None:
    folder = tmp_path / "cards"
    cards = Cards(folder, device="t01", hub_key=HUB.public, keep=3)
    photo = base64.b64encode(PHOTO).decode()
    for version, staff in enumerate(["E1", "E2", "E3", "E4", "E2"], start=1):
        cards.take(card(version, staff, photo=photo))
    assert [cards.get(s) is not None for s in ("E1", "E2", "E3", "E4")] == [False, True, True, True]
    assert len(list(folder.glob("*.card"))) == 3
    again = Cards(folder, device="t01", hub_key=HUB.public, keep=3)
    assert again.get("E2") == cards.get("E2")
    assert again.get("E2") is not None
    assert again.get("E2").photo == PHOTO  # type: ignore[union-attr]
    assert again.get("E1") is None
    assert again.version == 5
    assert reason(again, card(4, "E9")) is Reason.ROLLBACK  # the watermark survived too
    assert again.problems == []


def test_a_tampered_or_foreign_card_on_disk_is_dropped_at_a_start(tmp_path: Path) -> None:
    folder = tmp_path / "cards"
    cards = Cards(folder, device="t01", hub_key=HUB.public)
    cards.take(card(1, "E1"))
    cards.take(card(2, "E2"))
    [first, second] = sorted(folder.glob("*.card"), key=lambda p: p.read_bytes().count(b"E2"))
    first.write_bytes(first.read_bytes().replace(b"E1", b"E7"))  # signed for E1
    (folder / "stray.tmp").write_bytes(b"half")
    again = Cards(folder, device="t01", hub_key=HUB.public)
    assert again.get("E1") is None
    assert again.get("E7") is None
    assert again.get("E2") is not None
    assert len(again.problems) == 1
    assert sorted(p.name for p in folder.iterdir()) == [second.name]
    # Paired with another hub: the old hub's cards are not read, nor shown once pinned.
    assert Cards(folder, device="t01", hub_key=FORGER.public).get("E2") is None
    again.pin(FORGER.public)
    assert again.get("E2") is None
    assert list(folder.iterdir()) == []


# -- the uplink routes them ------------------------------------------------------------------------


@pytest.fixture
def uplink(tmp_path: Path, cards: Cards) -> Iterator[tuple[Uplink, list[object], list[object]]]:
    me = identity.create(tmp_path / "t01", "t01")
    outbox = identity.open_outbox(me)
    posted: list[object] = []
    reports: list[object] = []
    link = Uplink(
        device="t01",
        key=me.key,
        outbox=outbox,
        boots=1,
        broker=FakeBroker(),
        post=posted.append,
        delivery=Delivery(acked=0, head=0, batch_max=10, window=10, ack_timeout_ms=1000, ack_timeout_max_ms=1000),
        report=reports.append,
        errors=Errors("t01", reports.append),
        hub_key=HUB.public,
        cards=cards,
    )
    yield link, posted, reports
    outbox.close()


def test_the_uplink_subscribes_to_its_card_and_posts_a_new_one(
    uplink: tuple[Uplink, list[object], list[object]], cards: Cards
) -> None:
    link, posted, reports = uplink
    name = topic("t01", Channel.CARD)
    assert name in [topic_name for topic_name, _qos in link.link.client.subscriptions]  # type: ignore[attr-defined]

    def arrive(raw: bytes, *, retained: bool = False) -> None:
        assert link.receive(Inbound(name, raw, mid=1, qos=1, generation=1, retained=retained), 0) == []

    arrive(card(4))
    arrive(card(4), retained=True)  # the retained copy at a reconnect: nothing new
    arrive(b"", retained=True)  # the topic cleared: nothing
    assert posted == [CardArrived("E1")]
    arrive(signed_by(FORGER, 9))
    arrive(card(3, "E2"))
    assert posted == [CardArrived("E1")]
    assert [(r.what, r.reason) for r in reports if isinstance(r, ControlRefused)] == [
        ("card", "bad_signature"),
        ("card", "rollback"),
    ]
    assert (link.refused, link.refused_last) == (2, "card: rollback")
    assert cards.get("E1") is not None
    assert cards.get("E2") is None
