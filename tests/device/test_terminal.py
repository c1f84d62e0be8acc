"""The whole terminal in this process: the real loop, flow, recorder, uplink and telemetry, with the
in-memory io, broker and clock (tests/device/counter.py). Each test takes milliseconds; the
subprocess tests keep what needs a real process (kills, a real pty, a real broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.events import (
    Acked,
    ControlRefused,
    Error,
    HealthReported,
    HubBehind,
    Misuse,
    Offline,
    Online,
    PanelChanged,
    Ready,
    Refused,
    Shown,
    Stopped,
    Thanked,
)
from device.flow import State
from protocol import (
    Channel,
    CommandName,
    EventKind,
    Reason,
    Rejection,
    StatusState,
    decode_event,
    decode_health,
    decode_status,
    limits,
    topic,
)
from protocol.card import Card, ClerkCard, encode_card
from runtime.fake import FakeBroker
from tests.device.counter import Counter, HubEnd
from tests.helpers import HUB_KEYS

CARD = "04a1b2c3"


@pytest.fixture
def counter(tmp_path: Path) -> Counter:
    return Counter(tmp_path / "t01", cards={CARD: "E1024"})


def online(tmp_path: Path, *settings: str) -> tuple[Counter, HubEnd, FakeBroker]:
    broker = FakeBroker()
    hub = HubEnd(broker)
    counter = Counter(tmp_path / "t01", broker=broker, settings=["mode=open", "amend_window_s=0", *settings])
    counter.login("E1")
    return counter, hub, broker


# -- the counter's flows -------------------------------------------------------------------------------


def test_it_starts_closed_and_a_card_logs_the_clerk_in_and_out(counter: Counter) -> None:
    assert counter.of(Ready)[0].state == "closed"
    counter.card(CARD)
    assert (counter.state, counter.io.screen.staff) == ("idle", "E1024")  # type: ignore[union-attr]
    counter.card(CARD)
    assert counter.state == "closed"


def test_an_invited_press_is_stored_then_thanked_the_same_way_for_every_level(counter: Counter) -> None:
    counter.card(CARD)
    thanks = []
    for level in (5, 1):
        counter.invite("B042")
        assert counter.io.screen.state is State.INVITED  # type: ignore[union-attr]
        counter.press(level)
        thanks.append([s for s in counter.io.screens if s.state is State.THANKS][-1])
        counter.after(3_000)  # thanks, and for a 1 the reasons window, run out
    first, second = counter.records
    assert (first.kind, first.staff, first.flags, second.staff) == ("press", "E1024", [], "E1024")
    assert [t.seq for t in counter.of(Thanked)] == [1, 2]
    assert thanks[0] == thanks[1]  # nothing the clerk sees depends on the level


def test_a_second_press_within_the_amend_window_amends_and_a_third_is_misuse(counter: Counter) -> None:
    counter.card(CARD)
    counter.invite()
    counter.press(5)
    counter.after(200)
    counter.press(4)
    counter.after(200)
    counter.press(3)
    press, amend, misuse = counter.records
    assert (amend.kind, amend.amends) == ("amend", press.seq)
    assert misuse.flags == ["misuse"]
    assert [t.seq for t in counter.of(Thanked)] == [press.seq, amend.seq]  # misuse is never thanked


def test_an_invite_with_no_press_becomes_a_timeout_when_its_window_ends(counter: Counter) -> None:
    counter.card(CARD)
    counter.invite("A7")
    counter.after(2_900)
    assert counter.records == []
    counter.after(200)
    (timeout,) = counter.records
    assert (timeout.kind, timeout.staff) == ("timeout", "E1024")
    assert counter.state == "idle"
    assert counter.of(Thanked) == []


def test_a_low_rating_takes_reasons_and_stores_them_as_an_amend(counter: Counter) -> None:
    counter.card(CARD)
    counter.invite()
    counter.press(2)
    assert counter.io.screen.state is State.REASONS  # type: ignore[union-attr]
    assert counter.of(Shown)[-1].labels == ["等候时间长", "服务态度差", "业务不熟练", "流程繁琐", "其他"]
    counter.press(1)
    counter.press(3)
    assert counter.io.screen.reasons == (1, 3)  # type: ignore[union-attr]
    counter.after(2_100)
    rating, reasons = counter.records
    assert (reasons.kind, reasons.amends, reasons.reasons) == ("amend", rating.seq, [1, 3])


def test_a_burst_of_presses_raises_one_misuse_alarm(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path, "burst_presses=3")
    for _ in range(6):
        counter.press(5)
    assert len(counter.of(Misuse)) == 1
    kinds = [decode_event(raw).kind for raw in hub.on(Channel.EVENT)]
    assert kinds == [EventKind.MISUSE_BURST]


def test_a_closed_terminal_keeps_presses_for_no_one_and_refuses_invites(counter: Counter) -> None:
    counter.press(4)
    counter.invite()
    (record,) = counter.records
    assert record.staff is None
    assert counter.of(Thanked) == []
    assert [r.reason for r in counter.of(Refused)] == ["closed"]
    assert counter.io.refusals == 1


def test_an_unknown_card_is_refused_and_said(counter: Counter) -> None:
    counter.card("ffff")
    assert counter.state == "closed"
    assert counter.io.refusals == 1
    assert any("unknown staff card ffff" in e.detail for e in counter.of(Error))


def test_the_clerks_log_in_survives_a_restart(tmp_path: Path) -> None:
    first = Counter(tmp_path / "t01")
    first.login("E7")
    first.close()
    again = Counter(tmp_path / "t01")
    assert again.state == "idle"
    again.invite()
    again.press(4)
    assert again.records[0].staff == "E7"
    assert first.of(Stopped)[0].head == 0


def test_an_outbox_that_cannot_store_takes_the_terminal_out_of_service_and_back(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    counter.press(5)
    db = counter.terminal.recorder.outbox._db
    db.execute("PRAGMA query_only = ON")  # SQLite refuses every write, as on a full or failing disk
    counter.press(4)
    assert counter.state == "out_of_service"
    assert [t.seq for t in counter.of(Thanked)] == [1]  # never thanked for what it could not keep
    counter.press(3)
    assert counter.of(Refused)[-1].reason == "out_of_service"
    db.execute("PRAGMA query_only = OFF")  # the disk takes writes again
    counter.after(5_100)  # the next probe
    assert counter.state == "idle"
    counter.press(2)
    assert [t.seq for t in counter.of(Thanked)] == [1, 2]
    events = [decode_event(raw).kind for raw in hub.on(Channel.EVENT)]
    assert events == [EventKind.OUT_OF_SERVICE, EventKind.RECOVERED]


def test_a_terminal_that_has_used_every_seq_goes_out_of_service_for_good(tmp_path: Path) -> None:
    counter = Counter(tmp_path / "t01", settings=["mode=open"])
    counter.terminal.recorder.outbox._head = (limits.MAX_SEQ - 1, "00" * 32)
    counter.login()
    counter.press(5)
    assert counter.records[0].seq == limits.MAX_SEQ
    counter.after(3_000)
    counter.press(4)
    assert counter.state == "out_of_service"
    counter.after(10_100)  # probes find no seq to use
    assert counter.state == "out_of_service"
    assert any("every seq up to" in e.detail for e in counter.of(Error))


# -- the broker: commands, acks, resends, the hub ---------------------------------------------------


def test_login_invite_and_logout_arrive_as_commands(tmp_path: Path) -> None:
    broker = FakeBroker()
    hub = HubEnd(broker, "hub-control")
    counter = Counter(tmp_path / "t01", broker=broker)
    commands = topic("t01", Channel.CMD)
    hub.command(CommandName.LOGIN, staff="E7")
    counter.settle()
    assert counter.state == "idle"
    hub.command(CommandName.INVITE, ticket="B042")
    counter.settle()
    counter.press(5)
    assert (counter.records[0].staff, counter.of(Thanked)[0].seq) == ("E7", 1)
    hub.say(commands, b'{"cmd":"reboot","device":"t01","type":"cmd","v":2}')  # not a command we know
    hub.command(CommandName.LOGOUT, device="t02", on="t01")  # another's, on this terminal's topic
    hub.say("pingjia/hub/rogue/status", b"online!")  # not a hub's status either
    counter.settle()
    assert counter.state != "closed"
    uplink = counter.terminal.uplink
    assert uplink is not None
    assert (uplink.unreadable, uplink.refused) == (2, 1)
    details = [e.detail for e in counter.of(Error)]
    assert sum("unreadable command" in d for d in details) == 1
    assert any("unreadable hub status" in d for d in details)
    assert [r.reason for r in counter.of(ControlRefused)] == ["topic_mismatch"]
    counter.after(300)
    hub.command(CommandName.LOGOUT)
    counter.settle()
    assert counter.state == "closed"


def test_records_are_acked_and_the_watermark_is_saved_when_idle(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    for level in (5, 4, 3):
        counter.press(level)
    assert [b.head.last for b in hub.batches()] == [1, 2, 3]  # each sent as soon as stored
    hub.ack(3)
    counter.settle()
    assert counter.of(Acked)[-1] == Acked(upto=3, depth=0)
    outbox = counter.terminal.recorder.outbox
    assert outbox.acked == 3

    def saved() -> str:
        return str(outbox._db.execute("SELECT value FROM meta WHERE key = 'acked'").fetchone()[0])

    assert saved() == "0"
    counter.after(1_100)  # idle for a second: the watermark is written
    assert saved() == "3"


def test_unacked_records_are_sent_again_with_a_growing_timeout(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path, "ack_timeout_s=1", "ack_timeout_max_s=4")
    counter.press(5)
    counter.after(1_100)
    counter.after(2_100)
    # The broker took the message (its PUBACK) but no hub acked it end to end: the same record,
    # again and again, without reconnecting.
    assert [b.head.first for b in hub.batches()] == [1, 1, 1]  # again after 1 s, then after 2 s
    assert counter.terminal.uplink.delivery.resends == 2  # type: ignore[union-attr]
    assert len(counter.of(Online)) == 1
    hub.ack(1)
    counter.settle()
    counter.after(10_000)
    assert len(hub.batches()) == 3  # acked: no more


def test_a_lost_connection_resends_everything_unacked(tmp_path: Path) -> None:
    counter, hub, broker = online(tmp_path)
    counter.press(5)
    broker.stop()
    counter.settle()
    assert isinstance(counter.events[-1], Offline) or counter.of(Offline)
    counter.press(4)  # kept while offline
    broker.start()
    counter.settle()
    assert len(counter.of(Online)) == 2
    assert [(b.head.first, b.head.last) for b in hub.batches()] == [(1, 1), (1, 2)]


def test_a_hub_restored_from_an_older_backup_gets_what_it_lost_again(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path, "ack_timeout_s=1")
    for level in (5, 4, 3, 2):
        counter.press(level)
        counter.after(2_500)  # past thanks and the reasons window of a 2
    hub.ack(4)
    counter.settle()
    counter.press(5)  # seq 5 goes out; the restored hub only holds up to 2
    counter.after(1_100)  # no ack: sent again for lack of progress
    hub.ack(2)
    counter.settle()
    (behind,) = counter.of(HubBehind)
    assert behind == HubBehind(upto=2, acked=4, resend_from=3)
    assert hub.batches()[-1].head.first == 3


def test_an_idle_terminal_checks_a_hub_that_comes_online(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    counter.press(5)
    hub.ack(1)
    counter.settle()
    hub.online(session=1, client="h1")
    counter.settle()
    assert [b.head.first for b in hub.batches()] == [1, 1]  # the newest record again, to check
    hub.ack(0)  # a hub that lost it answers lower: believed, sent again
    counter.settle()
    assert counter.of(HubBehind)


def test_rejections_in_an_ack_are_counted_and_said(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    counter.press(5)
    hub.ack(0, rejects=(Rejection(reason=Reason.BAD_SIGNATURE, detail="head signature does not verify"),))
    counter.settle()
    assert counter.terminal.uplink.rejected == 1  # type: ignore[union-attr]
    assert "bad_signature" in counter.of(Error)[-1].detail


def test_status_and_health_say_who_is_there(tmp_path: Path) -> None:
    counter, hub, broker = online(tmp_path, "heartbeat_s=5")
    status = decode_status(broker.retained(topic("t01", Channel.STATUS)) or b"")
    assert status.state is StatusState.ONLINE
    at_connect, at_login = (decode_health(raw) for raw in hub.on(Channel.HEALTH)[:2])
    assert (at_connect.state, at_connect.staff, at_connect.session) == ("closed", None, status.session)
    assert (at_login.state, at_login.staff) == ("idle", "E1")  # the hub knows who is at the counter at once
    before = len(hub.on(Channel.HEALTH))
    counter.after(5_000)
    assert len(hub.on(Channel.HEALTH)) == before + 1  # a heartbeat
    beat = decode_health(broker.retained(topic("t01", Channel.HEALTH)) or b"")
    assert (beat.state, beat.staff, beat.uptime_s) == ("idle", "E1", 5)
    broker.cut("t01", reconnect=False)  # the terminal vanishes: its will says so
    assert decode_status(broker.retained(topic("t01", Channel.STATUS)) or b"").state is StatusState.OFFLINE
    counter.terminal.close()


def test_a_jumping_wall_clock_is_said_and_reported(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    counter.clock.jump(-3_600_000)
    counter.settle()
    assert [decode_event(raw).kind for raw in hub.on(Channel.EVENT)] == [EventKind.CLOCK_JUMP]
    assert counter.of(HealthReported)


def test_unreadable_messages_are_counted_and_a_retained_one_is_said_once(tmp_path: Path) -> None:
    broker = FakeBroker()
    attacker = HubEnd(broker, "attacker")
    attacker.say("pingjia/hub/evil/status", b'{"session":' + b"9" * 5000 + b"}", retain=True)
    counter = Counter(tmp_path / "t01", broker=broker, settings=["mode=open"])
    counter.login()
    attacker.say(topic("t01", Channel.ACK), b"\xff not even utf-8")
    counter.settle()
    for _ in range(3):
        broker.cut("t01")  # each reconnect brings the retained one again
        counter.settle()
    counter.press(5)
    assert counter.records  # and the terminal goes on
    unreadable = [e.detail for e in counter.of(Error) if "unreadable" in e.detail]
    assert sum("unreadable hub status" in d for d in unreadable) == 1
    assert sum("unreadable ack" in d for d in unreadable) == 1
    assert counter.terminal.uplink.unreadable == 2  # type: ignore[union-attr]


def test_the_panel_coming_and_going_is_said_and_shown_again(counter: Counter) -> None:
    counter.card(CARD)
    shown = len(counter.io.screens)
    counter.io.plug("panel-2.0")
    counter.settle()
    assert counter.of(PanelChanged)[-1] == PanelChanged(connected=True, fw="panel-2.0")
    assert len(counter.io.screens) == shown + 1  # a panel that rebooted shows the state again
    counter.io.unplug()
    counter.settle()
    assert counter.of(PanelChanged)[-1] == PanelChanged(connected=False, reason="unplugged")
    assert "key panel unplugged" in counter.of(Error)[-1].detail


def test_a_store_only_terminal_needs_no_broker(counter: Counter) -> None:
    counter.card(CARD)
    counter.invite()
    counter.press(5)
    assert counter.of(Thanked)
    assert counter.terminal.uplink is None
    counter.after(60_000)  # a heartbeat, said even with nobody to hear it
    health = counter.of(HealthReported)[-1].fields
    assert (health["outbox_depth"], health["state"]) == (1, "idle")


def test_the_screen_shows_the_card_of_the_clerk_logged_in(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)

    def card_shown() -> ClerkCard | None:
        assert counter.io.screen is not None
        return counter.io.screen.card

    assert card_shown() is None  # none yet: the screen's placeholder
    card = Card(device="t01", version=1, t=1, staff="E1", name="王芳", department="社保医保", counter="3号窗口")
    hub.say(topic("t01", Channel.CARD), encode_card(card, HUB_KEYS.sign), retain=True)
    counter.settle()
    shown = ClerkCard(staff="E1", name="王芳", department="社保医保", counter="3号窗口", photo=None)
    assert card_shown() == shown
    counter.io.logout()
    counter.settle()
    assert card_shown() is None
    counter.login("E1")
    assert card_shown() == shown  # kept: shown at once
