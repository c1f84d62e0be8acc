"""A touchscreen's follow-up answers at the hub: an amend carrying sub-scores and a sealed call-back
number is stored as it came (the signed record holds them), changes no figure that the same amend
without them would not, and its contact opens with the hub's seal key only."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from hub import registry
from hub.supervision_weeks import Press, strays
from protocol import GENESIS, DecodeError, Kind, Rating, SealKey, SigningKey, open_sealed, seal, topic
from protocol.topics import Channel
from tests.helpers import HUB_KEYS, batch_bytes
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()
NOW = 1_763_800_000_000
PHONE = b"13912345678"


def rated_and_answered(
    device: str, staff: str, *, subscores: tuple[tuple[str, int], ...] = (), contact: str | None = None
) -> list[Rating]:
    """A level 2 rating, then the amend with its answers (reasons 1 and 4, and what is given)."""
    rating = Rating(
        device=device, seq=1, kind=Kind.PRESS, t=NOW, boot="b", mono=1, fw="1", prev=GENESIS, staff=staff, score=2
    ).signed(KEY)
    amend = Rating(
        device=device,
        seq=2,
        kind=Kind.AMEND,
        t=NOW + 9_000,
        boot="b",
        mono=9_001,
        fw="1",
        prev=rating.hash(),
        staff=staff,
        score=2,
        amends=1,
        reasons=(1, 4),
        subscores=subscores,
        contact=contact,
    ).signed(KEY)
    return [rating, amend]


@pytest.fixture
def db(hub_db: HubDb) -> HubDb:
    for device, staff in (("d1", "E1"), ("d2", "E2")):
        hub_db.writer.write(registry.add_device, device, KEY.public.hex, department="综合受理", counter=device)
        hub_db.writer.write(registry.add_staff, staff, name=staff, department="社保医保")
    return hub_db


def figures(db: HubDb, staff: str) -> list[tuple[object, ...]]:
    return db.rows(
        "SELECT day, department, kind, score, flags, n FROM daily_counts WHERE staff = ? ORDER BY 1, 2, 3, 4, 5",
        (staff,),
    )


def test_sub_scores_and_a_sealed_contact_are_kept_and_count_like_the_plain_amend(db: HubDb) -> None:
    contact = seal(HUB_KEYS.seal_hex, PHONE, b"d1")
    answered = rated_and_answered("d1", "E1", subscores=(("attitude", 2), ("efficiency", 3)), contact=contact)
    plain = rated_and_answered("d2", "E2")  # the same rating and reasons, from a key panel
    for device, records in (("d1", answered), ("d2", plain)):
        outcome = db.receive(topic(device, Channel.RATINGS), batch_bytes(KEY, records), NOW + 10_000)
        assert (outcome.stored, outcome.rejections) == (2, [])
    row = db.one("SELECT kind, score, flags, superseded_by, record FROM ratings WHERE device = 'd1' AND seq = 2")
    assert row is not None
    kind, score, flags, superseded_by, record = row
    assert (kind, score, flags, superseded_by) == ("amend", 2, "", None)  # reasons given: no `noreason`
    stored = json.loads(record)
    assert stored["subscores"] == {"attitude": 2, "efficiency": 3}
    assert stored["reasons"] == [1, 4]
    assert figures(db, "E1") == figures(db, "E2") != []  # the answers change no figure

    assert open_sealed(HUB_KEYS.seal, stored["contact"], b"d1") == PHONE
    with pytest.raises(DecodeError):
        open_sealed(SealKey.generate(), stored["contact"], b"d1")  # not with another hub's key
    with pytest.raises(DecodeError):
        open_sealed(HUB_KEYS.seal, stored["contact"], b"d2")  # nor as another terminal's


def test_an_amend_with_only_sub_scores_is_no_stray_press() -> None:
    """Supervision counts re-press amends of an uninvited press as strays (a hand at the keys);
    a screen's answers to an uninvited rating are not a press, as reasons never were."""
    press = Press(
        device="d1", seq=1, kind="press", staff="E1", score=5, at_ms=0, day="2025-11-22", flags=("uninvited",)
    )
    answers = replace(press, seq=2, kind="amend", at_ms=8_000, amends=1, answers=True)
    repressed = replace(press, seq=2, kind="amend", at_ms=800, amends=1, score=4)
    assert strays([press, answers]) == [press]
    assert strays([press, repressed]) == [press, repressed]
