"""The control channel as a terminal sees it (protocol v2): only what the pinned hub key signed,
addressed to this terminal and not replayed, changes anything. In process: the product's terminal,
the in-memory broker and a scripted hub (tests/device/counter.py)."""

from __future__ import annotations

from pathlib import Path

from device.events import Acked, Configured, ControlRefused, GapResent, HubBehind
from protocol import CommandName, SigningKey, decode_health, topic
from protocol.topics import Channel
from runtime.fake import FakeBroker
from tests.device.counter import Counter, HubEnd

FORGER = SigningKey.generate()


def online(tmp_path: Path, *settings: str) -> tuple[Counter, HubEnd, FakeBroker]:
    broker = FakeBroker()
    hub = HubEnd(broker)
    counter = Counter(tmp_path / "t01", broker=broker, settings=["mode=open", "amend_window_s=0", *settings])
    counter.login("E1")
    return counter, hub, broker


def refused(counter: Counter) -> list[tuple[str, str]]:
    return [(event.what, event.reason) for event in counter.of(ControlRefused)]


def test_a_forged_ack_neither_prunes_nor_stops_the_resending(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path, "ack_timeout_s=1")
    for level in (5, 4, 3):
        counter.press(level)
    outbox = counter.terminal.recorder.outbox
    attacker = HubEnd(hub.broker, "attacker")
    for _ in range(20):
        attacker.ack(10**6, key=FORGER)
    counter.settle()
    assert outbox.acked == 0
    assert refused(counter) == [("ack", "bad_signature")] * 20
    counter.after(1100)  # no genuine ack: sent again, as if the forgery had not been there
    assert [b.head.first for b in hub.batches()][-1] == 1
    hub.ack(3)
    counter.settle()
    assert outbox.acked == 3


def test_unsigned_and_misaddressed_acks_are_refused_and_reported_in_health(tmp_path: Path) -> None:
    counter, hub, broker = online(tmp_path, "heartbeat_s=5")
    counter.press(5)
    hub.ack(1, device="t02", on="t01")
    hub.say(topic("t01", Channel.ACK), b'{"device":"t01","t":1,"type":"ack","upto":99,"v":1}')  # a v1 ack
    counter.settle()
    assert counter.terminal.recorder.outbox.acked == 0
    assert refused(counter) == [("ack", "topic_mismatch")]
    assert counter.terminal.uplink.unreadable == 1  # type: ignore[union-attr]
    counter.after(5000)
    health = decode_health(broker.retained(topic("t01", Channel.HEALTH)) or b"")
    assert (health.refused, health.refused_last, health.unreadable) == (1, "ack: topic_mismatch", 1)
    assert health.hub_key is not None
    assert len(health.hub_key) == 16


def test_a_replayed_old_ack_cannot_send_the_terminal_back(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    for level in (5, 4):
        counter.press(level)
    old = hub.ack(1)
    hub.ack(2)
    counter.settle()
    sent = len(hub.batches())
    counter.terminal.uplink.delivery.checking = True  # type: ignore[union-attr]  # as after a hub came online
    hub.say(topic("t01", Channel.ACK), old)
    counter.settle()
    assert counter.terminal.recorder.outbox.acked == 2
    assert not counter.of(HubBehind)
    assert refused(counter) == [("ack", "replayed")]
    assert len(hub.batches()) == sent


def test_forged_replayed_and_stale_commands_change_nothing(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    hub.ack(0)  # the terminal learns the hub's time
    counter.settle()
    hub.command(CommandName.LOGIN, staff="EVIL-007", key=FORGER)
    genuine = hub.command(CommandName.LOGIN, staff="E2")
    counter.settle()
    assert counter.terminal.flow.staff == "E2"
    hub.command(CommandName.LOGOUT, n=1)  # a counter already taken
    hub.say(topic("t01", Channel.CMD), genuine)  # the same command again
    hub.command(CommandName.LOGOUT, n=10, t=1)  # signed long ago (hub time)
    counter.settle()
    assert counter.terminal.flow.staff == "E2"
    assert refused(counter) == [
        ("command", "bad_signature"),
        ("command", "replayed"),
        ("command", "replayed"),
        ("command", "stale"),
    ]
    counter.press(5)
    assert counter.records[-1].staff == "E2"


def test_the_command_counter_survives_a_restart(tmp_path: Path) -> None:
    broker = FakeBroker()
    hub = HubEnd(broker)
    counter = Counter(tmp_path / "t01", broker=broker)
    first = hub.command(CommandName.LOGIN, staff="E2")
    counter.settle()
    counter.close()
    again = Counter(tmp_path / "t01", broker=broker)
    hub.say(topic("t01", Channel.CMD), first)
    again.settle()
    assert refused(again) == [("command", "replayed")]


def test_an_unpaired_terminal_takes_no_control_message(tmp_path: Path) -> None:
    broker = FakeBroker()
    hub = HubEnd(broker)
    counter = Counter(tmp_path / "t01", broker=broker, hub_key=None)
    hub.command(CommandName.LOGIN, staff="E2")
    counter.settle()
    assert counter.state == "closed"
    assert refused(counter) == [("command", "not_paired")]


def test_a_configuration_is_taken_kept_across_a_reboot_and_never_rolled_back(tmp_path: Path) -> None:
    broker = FakeBroker()
    hub = HubEnd(broker)
    counter = Counter(tmp_path / "t01", broker=broker)
    assert counter.io.configs[-1].middle_label == "一般"  # the screen is told the settings at start
    hub.configure(3, mode="open", staff="E5", reason_labels="慢,凶,乱,烦,其他", middle_label="基本满意")
    counter.settle()
    assert counter.of(Configured)[-1].version == 3
    assert (counter.terminal.config.mode, counter.terminal.flow.staff) == ("open", "E5")
    assert counter.terminal._labels[0] == "慢"
    assert (counter.io.configs[-1].mode, counter.io.configs[-1].middle_label) == ("open", "基本满意")
    hub.configure(2, mode="invited")  # an older version: a rollback
    hub.configure(4, mode="invited", key=FORGER)
    hub.configure(5, thank_you_ms="99999999")  # out of range: refused whole
    counter.settle()
    assert counter.terminal.config.mode == "open"
    assert refused(counter) == [
        ("configuration", "rollback"),
        ("configuration", "bad_signature"),
        ("configuration", "bad_field"),
    ]
    counter.close()
    offline = Counter(tmp_path / "t01")  # rebooted with no broker at all
    assert (offline.terminal.config.mode, offline.terminal.config_version) == ("open", 3)
    assert offline.io.configs[-1].middle_label == "基本满意"  # the stored document's, on the screen too


def test_a_gap_the_hub_reports_is_sent_again_at_once(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path, "ack_timeout_s=30")
    for level in (5, 4, 3):
        counter.press(level)
    # The broker lost seq 2's batch: the hub holds 1 and 3.
    hub.ack(1, held=(3, 3))
    counter.settle()
    before = len(hub.batches())
    counter.after(400)  # the grace for a batch still in flight, not the 30 s timeout
    assert counter.of(GapResent) == [GapResent(first=2, last=2)]
    assert [b.head.first for b in hub.batches()[before:]] == [2]
    hub.ack(3)
    counter.settle()
    assert counter.of(Acked)[-1].upto == 3


def test_a_gap_filled_in_time_is_not_sent_again(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    for level in (5, 4, 3):
        counter.press(level)
    hub.ack(1, held=(3, 3))
    hub.ack(3)  # a second hub worker stored seq 2 meanwhile
    counter.settle()
    counter.after(400)
    assert counter.of(GapResent) == []


def test_an_older_hub_status_is_a_replay(tmp_path: Path) -> None:
    counter, hub, _broker = online(tmp_path)
    counter.press(5)
    hub.ack(1)
    hub.online(session=5)
    counter.settle()
    assert [b.head.first for b in hub.batches()] == [1, 1]  # the newest record again, to check the hub
    hub.ack(1)
    hub.online(session=4)  # an older session of the same hub: a replay, ignored
    counter.settle()
    assert [b.head.first for b in hub.batches()] == [1, 1]
    assert refused(counter) == [("hub status", "replayed")]


def test_an_unpaired_terminal_shows_its_pairing_code_until_it_is_paired(tmp_path: Path) -> None:
    counter = Counter(tmp_path / "t01", hub_key=None)
    code = counter.terminal.pairer.shown_code(counter.clock.mono_ms())
    assert code is not None
    last = counter.io.screens[-1]
    assert (last.state.value, last.code) == ("closed", code.digits)
    counter.login("E1")
    assert counter.io.screens[-1].code is None  # a clerk at work: the flow's own screens
    pinned = Counter(tmp_path / "t02", device="t02")  # provisioned with a pinned hub key
    assert pinned.io.screens[-1].code is None
