"""A touchscreen's follow-up questions through the whole terminal in this process: the real loop,
flow, recorder and uplink, with the in-memory io posting a screen's answers (`Details`), the
in-memory broker and a scripted hub (tests/device/counter.py). What reaches the hub is read from
the batches it got, as the hub reads them; a call-back number is checked to open with the hub's
seal key only, and to be nowhere in clear on the terminal."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from device import identity
from device.events import Refused, Thanked
from device.flow import FollowUp, State
from device.io import Screen
from device.pairing import Pairing, save_pairing
from device.state import StateDocument
from protocol import DecodeError, Kind, Rating, SealKey, open_sealed
from runtime.fake import FakeBroker
from tests.device.counter import Counter, HubEnd
from tests.helpers import HUB_KEYS

PHONE = "13912345678"
TOUCH = ["keys=touch", "mode=invited", "screen_timeout_s=20"]


def paired(folder: Path) -> None:
    """A terminal paired with the test hub: it holds the hub's seal key, as pairing leaves it."""
    identity.create(folder, "t01")
    state = StateDocument(folder / identity.STATE_FILE)
    save_pairing(
        state,
        Pairing(
            hub_sign=HUB_KEYS.sign_hex,
            hub_seal=HUB_KEYS.seal_hex,
            broker="mqtt://hub.hall.local:1883",
            username="t01",
            password="broker-password",
            tls_ca=None,
            site="hall",
            department="D1",
            counter="W3",
            paired_ms=1_763_800_000_000,
            tech="tech1",
        ),
    )
    state.close()


def touchscreen(tmp_path: Path, *settings: str, pair: bool = True) -> tuple[Counter, HubEnd]:
    folder = tmp_path / "t01"
    if pair:
        paired(folder)
    broker = FakeBroker()
    hub = HubEnd(broker)
    counter = Counter(folder, broker=broker, settings=[*TOUCH, *settings])
    counter.login("E1")
    return counter, hub


def rate(counter: Counter, level: int) -> None:
    counter.invite("A12")
    counter.press(level)


def answer(counter: Counter, **answers: object) -> None:
    counter.io.details(**answers)  # type: ignore[arg-type]
    counter.settle()


def sent(hub: HubEnd) -> list[Rating]:
    """Every record the hub got, once each, in seq order."""
    records = {record.seq: record for batch in hub.batches() for record in batch.records}
    return [records[seq] for seq in sorted(records)]


def nowhere_in_files(folder: Path) -> set[str]:
    """Whatever the terminal wrote under its data folder (outbox and WAL, state, keys, logs) holds
    no call-back number in clear; the names of the files read."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    for path in files:
        assert PHONE.encode() not in path.read_bytes(), path
    return {path.name for path in files}


def screen(counter: Counter) -> Screen:
    shown = counter.io.screen
    assert shown is not None
    return shown


# -- the flows ---------------------------------------------------------------------------------------


def test_a_rating_with_nothing_to_ask_is_thanked_and_done(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path)
    rate(counter, 4)
    assert counter.state == "thanks"
    assert screen(counter).follow_up is None
    assert [(r.kind, r.score) for r in sent(hub)] == [(Kind.PRESS, 4)]


def test_sub_scores_only_after_a_five(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path, "subscores=true")
    rate(counter, 5)
    assert screen(counter).follow_up == FollowUp(group="positive", pages=("subscores",), reason_required=False)
    assert screen(counter).language == "zh-CN"
    answer(counter, subscores={"attitude": 5, "efficiency": 4, "competence": 5}, done=True)
    rating, amend = sent(hub)
    assert (amend.kind, amend.amends, amend.score, amend.reasons) == (Kind.AMEND, rating.seq, 5, ())
    assert amend.subscores == (("attitude", 5), ("competence", 5), ("efficiency", 4))
    assert counter.state == "idle"
    assert [t.seq for t in counter.of(Thanked)] == [rating.seq]


def test_reasons_after_a_bad_rating_and_after_a_good_one(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path, "positive_reasons=true", "reasons_positive=61,62,63")
    rate(counter, 1)
    follow_up = screen(counter).follow_up
    assert follow_up is not None
    assert (follow_up.group, follow_up.pages, follow_up.codes) == (
        "negative",
        ("reasons", "callback"),
        (1, 2, 3, 4, 5, 6),
    )
    answer(counter, reasons=(6, 2), done=True)
    counter.after(1_500)  # past the amend window: the next press is a new rating
    rate(counter, 5)
    assert screen(counter).follow_up == FollowUp(
        group="positive", pages=("reasons",), reason_required=False, codes=(61, 62, 63)
    )
    answer(counter, reasons=(63,), done=True)
    low, low_reasons, high, high_reasons = sent(hub)
    assert (low_reasons.amends, low_reasons.score, low_reasons.reasons) == (low.seq, 1, (6, 2))
    assert (high_reasons.amends, high_reasons.score, high_reasons.reasons) == (high.seq, 5, (63,))


def test_a_required_reason_is_asked_for_until_given(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path, "reason_required=true")
    rate(counter, 2)
    answer(counter, done=True)  # skip: refused
    assert counter.state == "reasons"
    assert screen(counter).follow_up.refused  # type: ignore[union-attr]
    assert [r.reason for r in counter.of(Refused)] == ["reason_required"]
    assert counter.io.refusals == 1
    answer(counter, reasons=(3,), done=True)
    _rating, amend = sent(hub)
    assert amend.reasons == (3,)
    assert counter.state == "idle"


def test_skipping_stores_nothing_more(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path, "subscores=true")
    rate(counter, 2)
    answer(counter, reasons=(1,))
    answer(counter, done=True)  # the customer took the reason back and skipped
    assert [r.kind for r in sent(hub)] == [Kind.PRESS]
    assert counter.state == "idle"


def test_a_customer_who_walks_away_leaves_what_was_answered(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path, "subscores=true", "reason_required=true")
    rate(counter, 1)
    answer(counter, subscores={"attitude": 1})
    counter.after(19_900)
    assert counter.state == "reasons"  # screen_timeout_s, not the key panel's reasons_window_s
    counter.after(200)
    _rating, amend = sent(hub)
    assert (amend.reasons, amend.subscores) == ((), (("attitude", 1),))
    assert counter.state == "idle"


def test_a_late_touch_is_refused_and_the_terminal_goes_on(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path)
    answer(counter, reasons=(1,), done=True)  # idle: nothing was asked
    rate(counter, 3)
    answer(counter, phone=PHONE, done=True)  # thanks: nothing was asked
    assert [r.reason for r in counter.of(Refused)] == ["no_follow_up", "no_follow_up"]
    assert [r.kind for r in sent(hub)] == [Kind.PRESS]
    assert counter.state == "thanks"


def test_an_amended_level_then_its_answers(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path, "amend_window_s=2")
    rate(counter, 5)
    counter.after(500)
    counter.press(1)  # the customer meant 1
    assert counter.state == "reasons"
    answer(counter, reasons=(4,), done=True)
    rating, level, answers = sent(hub)
    assert (level.kind, level.amends, level.score) == (Kind.AMEND, rating.seq, 1)
    assert (answers.kind, answers.amends, answers.score, answers.reasons) == (Kind.AMEND, rating.seq, 1, (4,))


def test_a_closed_terminal_asks_nothing(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path, "subscores=true")
    counter.io.logout()
    counter.settle()
    counter.press(1)
    answer(counter, reasons=(1,), done=True)
    assert counter.state == "closed"
    (record,) = sent(hub)
    assert (record.staff, record.score) == (None, 1)
    assert [r.reason for r in counter.of(Refused)] == ["no_follow_up"]


def test_the_key_panel_asks_what_it_always_asked(tmp_path: Path) -> None:
    counter, _hub = touchscreen(tmp_path, "keys=panel", "subscores=true", "positive_reasons=true")
    rate(counter, 5)
    assert counter.state == "thanks"  # no screen: no sub-scores, no reasons after a 5
    counter.after(3_000)
    rate(counter, 2)
    assert screen(counter).follow_up == FollowUp(
        group="negative", pages=("reasons",), reason_required=False, codes=(1, 2, 3, 4, 5, 6)
    )
    assert counter.terminal.flow.deadline_ms == counter.clock.mono_ms() + 2_000  # reasons_window_s


# -- the call-back number ----------------------------------------------------------------------------


def test_a_call_back_number_is_sealed_to_the_hub_and_nowhere_in_clear(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    counter, hub = touchscreen(tmp_path, "subscores=true")
    rate(counter, 2)
    assert screen(counter).follow_up.pages == ("subscores", "reasons", "callback")  # type: ignore[union-attr]
    answer(counter, reasons=(2,), subscores={"attitude": 2})
    answer(counter, reasons=(2, 5), subscores={"attitude": 2, "efficiency": 3}, phone=PHONE)
    answer(counter, reasons=(2, 5), subscores={"attitude": 2, "efficiency": 3}, phone=PHONE, done=True)
    assert counter.state == "idle"
    written = nowhere_in_files(tmp_path / "t01")  # the records in the outbox's WAL
    counter.after(2_000)  # the idle checkpoint folds the WAL into the database file
    counter.close()
    assert "outbox.sqlite3-wal" in written
    assert "outbox.sqlite3" in nowhere_in_files(tmp_path / "t01")  # after the checkpoint and the close

    rating, amend = sent(hub)
    assert (rating.kind, rating.score, rating.contact) == (Kind.PRESS, 2, None)
    assert (amend.kind, amend.amends, amend.score) == (Kind.AMEND, rating.seq, 2)
    assert amend.reasons == (2, 5)
    assert amend.subscores == (("attitude", 2), ("efficiency", 3))
    assert amend.contact is not None
    assert open_sealed(HUB_KEYS.seal, amend.contact, b"t01") == PHONE.encode()
    with pytest.raises(DecodeError):
        open_sealed(SealKey.generate(), amend.contact, b"t01")  # another hub's key
    with pytest.raises(DecodeError):
        open_sealed(HUB_KEYS.seal, amend.contact, b"t02")  # moved to another terminal's record

    for event in counter.events:
        assert PHONE not in repr(event)
        assert PHONE not in json.dumps(event.to_json(), ensure_ascii=False)
    for record in caplog.records:
        assert PHONE not in record.getMessage()
    assert PHONE not in caplog.text
    assert PHONE not in repr(counter.io.screens)
    assert all(PHONE.encode() not in message.payload for message in hub.received)  # batches, health, events


def test_an_unpaired_terminal_offers_no_call_back_and_drops_a_number(tmp_path: Path) -> None:
    counter, hub = touchscreen(tmp_path, pair=False)
    rate(counter, 1)
    assert screen(counter).follow_up.pages == ("reasons",)  # type: ignore[union-attr]
    answer(counter, reasons=(1,), phone=PHONE, done=True)  # a screen that offered it anyway
    _rating, amend = sent(hub)  # provisioned with the hub's signing key only: it sends, it cannot seal
    assert (amend.reasons, amend.contact) == ((1,), None)
    assert all(PHONE not in repr(event) for event in counter.events)
    assert any("call-back number came" in getattr(event, "detail", "") for event in counter.events)
    assert counter.terminal.flow.state is State.IDLE
