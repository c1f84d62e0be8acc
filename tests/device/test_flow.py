from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.flow import (
    TRANSITIONS,
    Display,
    Event,
    Expire,
    Flow,
    FlowRules,
    IllegalEvent,
    Invite,
    Login,
    Logout,
    MisuseAlarm,
    Press,
    Record,
    Recovered,
    Refuse,
    State,
    Stored,
    StoreFailed,
    Thank,
    diagram,
)
from protocol import Flag, Kind

RULES = FlowRules(
    mode="invited",
    thank_you_ms=1000,
    invite_window_ms=30_000,
    amend_window_ms=5_000,
    misuse_interval_ms=3_000,
    burst_presses=5,
    burst_window_ms=10_000,
    reasons_window_ms=6_000,
)


class Driver:
    """Plays the terminal's part: stores every Record at once (seq 1, 2, ...) and feeds the result."""

    def __init__(self, rules: FlowRules = RULES, staff: str | None = "E1", *, fail: bool = False) -> None:
        self.flow = Flow(rules=rules, staff=staff)
        self.records: list[Record] = []
        self.thanked: list[int] = []
        self.effects: list[object] = []
        self.fail = fail

    def send(self, event: Event, now: int) -> list[object]:
        produced: list[object] = []
        for effect in self.flow.handle(event, now):
            produced.append(effect)
            if isinstance(effect, Record):
                if self.fail:
                    produced += self.send(StoreFailed("disk full"), now)
                else:
                    self.records.append(effect)
                    produced += self.send(Stored(len(self.records)), now)
            elif isinstance(effect, Thank):
                self.thanked.append(effect.seq)
        self.effects += produced
        return produced

    @property
    def state(self) -> State:
        return self.flow.state

    def expire(self) -> None:
        assert self.flow.deadline_ms is not None
        self.send(Expire(), self.flow.deadline_ms)


def test_an_invited_press_is_one_rating_stored_then_thanked() -> None:
    terminal = Driver()
    terminal.send(Invite("A012"), 0)
    assert terminal.state is State.INVITED
    effects = terminal.send(Press(4), 100)
    record = effects[0]
    assert record == Record(kind=Kind.PRESS, staff="E1", score=4, ticket="A012")
    assert effects.index(record) < next(i for i, e in enumerate(effects) if isinstance(e, Thank))
    assert terminal.thanked == [1]
    assert terminal.state is State.THANKS
    terminal.expire()
    assert terminal.state is State.IDLE


def test_an_invite_with_no_press_becomes_a_timeout_record_and_is_not_thanked() -> None:
    terminal = Driver()
    terminal.send(Invite("A013"), 0)
    assert terminal.flow.deadline_ms == 30_000
    terminal.expire()
    assert terminal.records == [Record(kind=Kind.TIMEOUT, staff="E1", ticket="A013")]
    assert terminal.thanked == []
    assert terminal.state is State.IDLE


def test_a_second_press_within_the_amend_window_amends_and_a_third_is_misuse() -> None:
    terminal = Driver()
    terminal.send(Invite(), 0)
    terminal.send(Press(3), 100)
    terminal.send(Press(5), 2_000)
    assert terminal.records[1] == Record(kind=Kind.AMEND, staff="E1", score=5, amends=1)
    assert terminal.thanked == [1, 2]
    terminal.send(Press(1), 3_000)
    assert terminal.records[2] == Record(kind=Kind.PRESS, staff="E1", score=1, flags=(Flag.MISUSE,))
    assert terminal.thanked == [1, 2]  # misuse is kept, not thanked


def test_after_the_windows_a_press_without_an_invite_is_kept_flagged_uninvited() -> None:
    terminal = Driver()
    terminal.send(Invite(), 0)
    terminal.send(Press(5), 100)
    terminal.send(Press(5), 9_000)
    assert terminal.records[1] == Record(kind=Kind.PRESS, staff="E1", score=5, flags=(Flag.UNINVITED,))


def test_open_mode_counts_every_press_of_a_logged_in_clerk() -> None:
    terminal = Driver(_open_rules())
    terminal.send(Press(5), 0)
    terminal.send(Press(4), 10_000)
    assert [r.flags for r in terminal.records] == [(), ()]
    assert terminal.thanked == [1, 2]


def _open_rules() -> FlowRules:
    return FlowRules(mode="open", thank_you_ms=1000, amend_window_ms=5_000, misuse_interval_ms=3_000)


def test_the_misuse_interval_follows_the_latest_rating_in_open_mode() -> None:
    terminal = Driver(_open_rules())
    terminal.send(Press(5), 0)
    terminal.send(Press(4), 1_000)  # amend
    terminal.send(Press(4), 2_000)  # misuse: within 3 s of the amend
    terminal.send(Press(4), 5_500)  # 3.5 s after the amend: a new rating
    assert [r.kind for r in terminal.records] == [Kind.PRESS, Kind.AMEND, Kind.PRESS, Kind.PRESS]
    assert [r.flags for r in terminal.records] == [(), (), (Flag.MISUSE,), ()]


def test_a_burst_of_presses_raises_one_misuse_alarm() -> None:
    terminal = Driver(_open_rules())
    alarms = []
    for index in range(8):
        alarms += [e for e in terminal.send(Press(5), index * 500) if isinstance(e, MisuseAlarm)]
    assert alarms == [MisuseAlarm(presses=6, window_ms=10_000)]
    assert len(terminal.records) == 8  # every press kept


def test_a_low_rating_asks_for_reasons_and_stores_them_as_an_amend() -> None:
    terminal = Driver()
    terminal.send(Invite("B7"), 0)
    terminal.send(Press(1), 100)
    assert terminal.state is State.REASONS
    assert terminal.thanked == [1]  # thanked at once: the reasons are extra
    terminal.send(Press(3), 1_000)
    terminal.send(Press(1), 2_000)
    terminal.send(Press(3), 2_500)  # a second press of a reason takes it back
    terminal.send(Press(4), 3_000)
    assert terminal.flow.deadline_ms == 9_000
    terminal.expire()
    assert terminal.records[1] == Record(kind=Kind.AMEND, staff="E1", score=1, amends=1, reasons=(1, 4), ticket="B7")
    assert terminal.state is State.IDLE


def test_an_invite_during_the_reasons_window_stores_the_reasons_first() -> None:
    terminal = Driver()
    terminal.send(Invite("T1"), 0)
    terminal.send(Press(1), 100)
    terminal.send(Press(2), 200)
    terminal.send(Invite("T2"), 300)
    assert terminal.records[1] == Record(kind=Kind.AMEND, staff="E1", score=1, amends=1, reasons=(2,), ticket="T1")
    assert terminal.state is State.INVITED
    assert terminal.flow.ticket == "T2"


def test_reasons_can_be_skipped() -> None:
    terminal = Driver()
    terminal.send(Invite(), 0)
    terminal.send(Press(2), 100)
    terminal.expire()
    assert len(terminal.records) == 1
    assert terminal.state is State.IDLE


def test_the_clerk_leaving_while_a_customer_is_invited_records_a_timeout_for_that_clerk() -> None:
    terminal = Driver()
    terminal.send(Invite("C1"), 0)
    terminal.send(Logout(), 10)
    assert terminal.records == [Record(kind=Kind.TIMEOUT, staff="E1", ticket="C1")]
    assert terminal.state is State.CLOSED
    assert terminal.flow.staff is None


def test_a_new_ticket_while_invited_closes_the_old_one_as_a_timeout() -> None:
    terminal = Driver()
    terminal.send(Invite("C1"), 0)
    terminal.send(Invite("C1"), 10)  # the same service, invited again: no record
    assert terminal.records == []
    terminal.send(Invite("C2"), 20)
    assert terminal.records == [Record(kind=Kind.TIMEOUT, staff="E1", ticket="C1")]
    assert terminal.state is State.INVITED
    terminal.send(Press(5), 30)
    assert terminal.records[1].ticket == "C2"


def test_an_invite_ends_the_previous_customers_amend_window() -> None:
    terminal = Driver()
    terminal.send(Invite(), 0)
    terminal.send(Press(5), 100)
    terminal.send(Invite(), 1_000)
    terminal.send(Press(2), 1_500)
    assert terminal.records[1].kind is Kind.PRESS


def test_a_closed_terminal_keeps_presses_for_no_one_and_refuses_invites() -> None:
    terminal = Driver(staff=None)
    terminal.send(Press(1), 0)
    assert terminal.records == [Record(kind=Kind.PRESS, staff=None, score=1)]
    assert terminal.thanked == []
    assert terminal.state is State.CLOSED
    assert terminal.send(Invite(), 1) == [Refuse("closed")]


def test_a_failed_store_is_never_thanked_and_takes_the_terminal_out_of_service() -> None:
    terminal = Driver(fail=True)
    terminal.send(Invite(), 0)
    terminal.send(Press(5), 100)
    assert terminal.thanked == []
    assert terminal.state is State.OUT_OF_SERVICE
    assert terminal.send(Press(5), 200) == [Refuse("out_of_service")]
    terminal.fail = False
    terminal.send(Recovered(), 300)
    assert terminal.state is State.IDLE


def test_recovering_with_nobody_logged_in_closes_the_terminal() -> None:
    terminal = Driver(fail=True)
    terminal.send(Press(5), 0)
    terminal.send(Logout(), 1)
    terminal.send(Recovered(), 2)
    assert terminal.state is State.CLOSED


def test_the_thanks_and_the_display_never_depend_on_the_level() -> None:
    shown = []
    for key in range(3, 6):
        terminal = Driver()
        terminal.send(Invite(), 0)
        effects = terminal.send(Press(key), 100)
        shown.append([e for e in effects if isinstance(e, Display | Thank)])
    assert shown[0] == shown[1] == shown[2]


def test_bad_keys_are_refused() -> None:
    terminal = Driver()
    assert terminal.send(Press(0), 0) == [Refuse("bad_key")]
    assert terminal.send(Press(6), 0) == [Refuse("bad_key")]


def test_illegal_events_name_the_state_and_the_event() -> None:
    with pytest.raises(IllegalEvent, match="'stored' is not allowed in state 'idle'"):
        Flow(rules=RULES, staff="E1").handle(Stored(1), 0)


events = st.one_of(
    st.builds(Login, st.sampled_from(["E1", "E2"])),
    st.just(Logout()),
    st.builds(Invite, st.none() | st.sampled_from(["T1", "T2"])),
    st.builds(Press, st.integers(1, 5)),
    st.just(Expire()),
)


@settings(max_examples=1_000)
@given(st.lists(st.tuples(events, st.integers(0, 4_000)), max_size=60), st.sampled_from(["invited", "open"]))
def test_any_sequence_keeps_the_rules(steps: list[tuple[Event, int]], mode: str) -> None:
    terminal = Driver(FlowRules(mode=mode, thank_you_ms=1000))
    now = 0
    for event, gap in steps:
        now += gap
        if isinstance(event, Expire) and (terminal.flow.deadline_ms is None or terminal.flow.deadline_ms > now):
            continue  # the driver sends Expire only once the deadline has passed
        before = len(terminal.records)
        produced = terminal.send(event, now)
        thanks = [e for e in produced if isinstance(e, Thank)]
        new_records = terminal.records[before:]
        # A thanks is only ever for a rating just stored, and never for misuse or a closed terminal.
        for thank in thanks:
            record = terminal.records[thank.seq - 1]
            assert record in new_records
            assert record.kind in (Kind.PRESS, Kind.AMEND)
            assert record.staff is not None
            assert Flag.MISUSE not in record.flags
        for record in new_records:
            if record.kind is Kind.TIMEOUT:
                assert record.score is None
            assert record.kind is not Kind.AMEND or record.amends is not None
        assert terminal.state is not State.STORING
        assert (terminal.state is State.CLOSED) == (terminal.flow.staff is None)


def test_every_state_is_reachable_and_has_a_way_out() -> None:
    targets = {State.CLOSED}
    for edges in TRANSITIONS.values():
        for options in edges.values():
            targets.update(options)
    assert targets == set(State)
    for state, edges in TRANSITIONS.items():
        assert any(t is not state for options in edges.values() for t in options), f"{state} is a dead end"


def test_the_readme_diagram_is_drawn_from_the_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert diagram() in readme
