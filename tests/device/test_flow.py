from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.flow import (
    TRANSITIONS,
    Details,
    Display,
    Event,
    Expire,
    Flow,
    FlowRules,
    FollowUp,
    IllegalEvent,
    Invite,
    Login,
    Logout,
    MisuseAlarm,
    Phone,
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
from protocol import GENESIS, Flag, Kind, Rating, rating_from_wire
from protocol.record import INDICATORS

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


# -- a screen's follow-up questions ----------------------------------------------------------------

SCREEN = replace(RULES, subscores=True, positive_reasons=True, callback=True)
SEALED = "c2VhbGVk"  # stands for what the terminal seals; the flow never opens it


def rated(level: int, rules: FlowRules = SCREEN) -> Driver:
    terminal = Driver(rules)
    terminal.send(Invite("T9"), 0)
    terminal.send(Press(level), 100)
    return terminal


def shown_follow_up(terminal: Driver) -> FollowUp | None:
    return [e for e in terminal.effects if isinstance(e, Display)][-1].follow_up


def test_a_rating_with_nothing_to_ask_goes_straight_to_the_thanks() -> None:
    terminal = rated(3, replace(SCREEN, subscores=False))
    assert terminal.state is State.THANKS
    assert terminal.flow.follow_up is None
    assert shown_follow_up(terminal) is None


def test_the_follow_up_depends_on_the_level_and_the_rules() -> None:
    assert rated(1).flow.follow_up == FollowUp(
        group="negative", pages=("subscores", "reasons", "callback"), reason_required=False, codes=(1, 2, 3, 4, 5, 6)
    )
    assert rated(3).flow.follow_up == FollowUp(group="neutral", pages=("subscores",), reason_required=False)
    assert rated(5).flow.follow_up == FollowUp(
        group="positive", pages=("subscores", "reasons"), reason_required=False, codes=(51, 52, 53, 54, 55, 56)
    )
    required = replace(RULES, reason_required=True)
    assert rated(2, required).flow.follow_up == FollowUp(
        group="negative", pages=("reasons",), reason_required=True, codes=(1, 2, 3, 4, 5, 6)
    )
    assert rated(4, required).state is State.THANKS  # the key panel's rules: nothing after a 4


def test_sub_scores_after_a_five_are_stored_as_one_amend_when_done() -> None:
    terminal = rated(5, replace(SCREEN, positive_reasons=False))
    assert (terminal.state, terminal.thanked) == (State.REASONS, [1])  # thanked at once, as for reasons
    assert shown_follow_up(terminal) == FollowUp(group="positive", pages=("subscores",), reason_required=False)
    terminal.send(Details(subscores=(("efficiency", 4),)), 1_000)
    assert len(terminal.records) == 1  # not done: nothing stored yet
    terminal.send(Details(subscores=(("efficiency", 4), ("attitude", 5)), done=True), 2_000)
    amend = Record(
        kind=Kind.AMEND, staff="E1", score=5, amends=1, subscores=(("attitude", 5), ("efficiency", 4)), ticket="T9"
    )
    assert terminal.records[1:] == [amend]
    assert terminal.state is State.IDLE
    assert terminal.thanked == [1]  # the answers are not thanked again


def test_reasons_after_a_bad_rating_and_a_sealed_call_back_number() -> None:
    terminal = rated(2)
    terminal.send(Details(reasons=(3, 1), contact=SEALED, done=True), 1_000)
    assert terminal.records[1] == Record(
        kind=Kind.AMEND, staff="E1", score=2, amends=1, reasons=(3, 1), contact=SEALED, ticket="T9"
    )
    assert terminal.state is State.IDLE


def test_a_call_back_number_given_once_is_kept_when_later_answers_come_without_it() -> None:
    """A screen sends the number once, when it is typed: answers sent after it do not drop it."""
    terminal = rated(2)
    terminal.send(Details(reasons=(3,), contact=SEALED), 1_000)
    terminal.send(Details(reasons=(3, 4), done=True), 2_000)
    assert (terminal.records[1].reasons, terminal.records[1].contact) == ((3, 4), SEALED)


def test_reasons_after_a_good_rating_come_from_the_positive_list() -> None:
    terminal = rated(4)
    terminal.send(Details(reasons=(52, 51), done=True), 1_000)
    assert terminal.records[1].reasons == (52, 51)
    terminal = rated(4)
    effects = terminal.send(Details(reasons=(1,), done=True), 1_000)  # a negative reason after a 4
    assert Refuse("bad_details") in effects
    assert (terminal.state, len(terminal.records)) == (State.REASONS, 1)


def test_a_required_reason_refuses_done_without_one_and_then_takes_it() -> None:
    terminal = rated(1, replace(SCREEN, reason_required=True))
    effects = terminal.send(Details(subscores=(("attitude", 1),), done=True), 1_000)
    assert Refuse("reason_required") in effects
    assert terminal.state is State.REASONS
    assert shown_follow_up(terminal).refused  # type: ignore[union-attr]  # the screen says a reason is needed
    assert terminal.flow.deadline_ms == 1_000 + SCREEN.reasons_window_ms
    terminal.send(Details(reasons=(2,), subscores=(("attitude", 1),), done=True), 2_000)
    assert terminal.records[1] == Record(
        kind=Kind.AMEND, staff="E1", score=1, amends=1, reasons=(2,), subscores=(("attitude", 1),), ticket="T9"
    )


def test_a_required_reason_walked_away_from_leaves_the_rating_and_what_was_answered() -> None:
    terminal = rated(1, replace(SCREEN, reason_required=True))
    terminal.send(Details(subscores=(("competence", 2),), done=True), 1_000)  # refused
    terminal.expire()
    assert terminal.records[1].subscores == (("competence", 2),)
    assert terminal.records[1].reasons == ()
    assert terminal.state is State.IDLE


def test_done_with_nothing_answered_stores_nothing() -> None:
    terminal = rated(2)
    terminal.send(Details(reasons=(1,)), 1_000)
    terminal.send(Details(done=True), 2_000)  # answers are cumulative: this takes the 1 back
    assert len(terminal.records) == 1
    assert terminal.state is State.IDLE


def test_answers_restart_the_window_and_a_timeout_stores_what_was_answered() -> None:
    terminal = rated(2)
    assert terminal.flow.deadline_ms == 100 + SCREEN.reasons_window_ms
    terminal.send(Details(reasons=(4,), subscores=(("attitude", 3),)), 5_000)
    assert terminal.flow.deadline_ms == 5_000 + SCREEN.reasons_window_ms
    terminal.expire()
    assert terminal.records[1] == Record(
        kind=Kind.AMEND, staff="E1", score=2, amends=1, reasons=(4,), subscores=(("attitude", 3),), ticket="T9"
    )
    assert terminal.state is State.IDLE


def test_an_invite_or_a_log_out_during_the_questions_stores_the_answers_first() -> None:
    terminal = rated(5)
    terminal.send(Details(subscores=(("attitude", 5),)), 1_000)
    terminal.send(Invite("T10"), 2_000)
    assert terminal.records[1].subscores == (("attitude", 5),)
    assert terminal.state is State.INVITED
    terminal = rated(1)
    terminal.send(Details(contact=SEALED), 1_000)
    terminal.send(Logout(), 2_000)
    assert terminal.records[1].contact == SEALED
    assert terminal.state is State.CLOSED


def test_details_outside_the_questions_are_refused_and_change_nothing() -> None:
    terminal = Driver(SCREEN)
    terminal.send(Invite(), 0)
    deadline = terminal.flow.deadline_ms
    assert terminal.send(Details(reasons=(1,), done=True), 500) == [Refuse("no_follow_up")]
    assert (terminal.state, terminal.flow.deadline_ms, terminal.records) == (State.INVITED, deadline, [])
    closed = Driver(SCREEN, staff=None)
    assert closed.send(Details(done=True), 0) == [Refuse("no_follow_up")]
    assert closed.state is State.CLOSED
    late = rated(2)
    late.send(Details(done=True), 1_000)
    assert late.send(Details(reasons=(1,), done=True), 1_100) == [Refuse("no_follow_up")]  # a second tap
    broken = Driver(SCREEN, fail=True)
    broken.send(Press(5), 0)
    assert broken.send(Details(done=True), 100) == [Refuse("no_follow_up")]
    assert broken.state is State.OUT_OF_SERVICE


def test_a_late_touch_while_a_record_is_stored_is_refused() -> None:
    flow = Flow(rules=SCREEN, staff="E1")
    flow.handle(Invite(), 0)
    assert isinstance(flow.handle(Press(2), 100)[0], Record)
    assert flow.state is State.STORING
    assert flow.handle(Details(done=True), 101) == [Refuse("no_follow_up")]
    assert flow.state is State.STORING


@pytest.mark.parametrize(
    "details",
    [
        Details(reasons=(1, 1)),
        Details(reasons=(1, 2, 3, 4, 5, 6, 7)),
        Details(reasons=(99,)),  # not on the list offered
        Details(subscores=(("mood", 3),)),
        Details(subscores=(("attitude", 6),)),
        Details(subscores=(("attitude", 0),)),
        Details(subscores=(("attitude", 3), ("attitude", 4))),
        Details(phone=Phone("13800138000")),  # not sealed: the terminal seals before the flow sees it
        Details(contact="x" * 2_000),
    ],
)
def test_answers_the_questions_do_not_ask_for_are_refused(details: Details) -> None:
    terminal = rated(2)
    deadline = terminal.flow.deadline_ms
    assert Refuse("bad_details") in terminal.send(details, 1_000)
    assert (terminal.state, terminal.flow.deadline_ms, terminal.flow.reasons) == (State.REASONS, deadline, [])


def test_answers_to_a_page_not_offered_are_refused() -> None:
    terminal = rated(5, RULES)  # the key panel's rules: nothing after a 5
    assert terminal.state is State.THANKS
    terminal = rated(3, replace(RULES, subscores=True))
    assert Refuse("bad_details") in terminal.send(Details(reasons=(1,)), 1_000)  # no reasons after a 3
    assert Refuse("bad_details") in terminal.send(Details(contact=SEALED), 1_000)  # no call-back after a 3


def test_an_amended_level_asks_the_questions_of_the_new_level() -> None:
    terminal = Driver(replace(SCREEN, subscores=False))
    terminal.send(Invite("T1"), 0)
    terminal.send(Press(5), 100)
    assert terminal.state is State.REASONS  # positive reasons
    terminal.send(Expire(), 100 + SCREEN.reasons_window_ms)  # nothing chosen
    terminal = Driver(replace(SCREEN, subscores=False, positive_reasons=False))
    terminal.send(Invite("T1"), 0)
    terminal.send(Press(5), 100)
    assert terminal.state is State.THANKS
    terminal.send(Press(2), 600)  # within the amend window: the level becomes 2
    assert terminal.records[1] == Record(kind=Kind.AMEND, staff="E1", score=2, amends=1, ticket="T1")
    assert terminal.flow.state is State.REASONS  # (not terminal.state: mypy narrowed it to THANKS above)
    assert terminal.flow.follow_up is not None
    assert terminal.flow.follow_up.group == "negative"
    terminal.send(Details(reasons=(5,), done=True), 1_000)
    assert terminal.records[2] == Record(kind=Kind.AMEND, staff="E1", score=2, amends=1, reasons=(5,), ticket="T1")
    assert terminal.thanked == [1, 2]


def test_the_key_panel_still_toggles_reasons_with_keys_in_the_questions() -> None:
    terminal = rated(1)
    terminal.send(Press(2), 1_000)
    terminal.send(Details(reasons=(2, 6), subscores=(("attitude", 2),)), 2_000)  # a screen replaces them
    terminal.send(Press(6 - 1), 3_000)
    assert terminal.flow.reasons == [2, 6, 5]
    terminal.expire()
    assert terminal.records[1].reasons == (2, 6, 5)


def test_a_phone_number_never_shows_itself() -> None:
    phone = Phone("+8613800138000")
    assert repr(phone) == str(phone) == f"{phone}" == "Phone(****)"
    assert "138" not in repr(Details(phone=phone, done=True))
    assert Phone.accepts("12345")
    assert [Phone.accepts(bad) for bad in ("1234", "1" * 21, "138 0013 8000", 13800138000)] == [False] * 4
    with pytest.raises(ValueError, match=r"5\.\.20 digits") as caught:
        Phone("138-0013")
    assert "138" not in str(caught.value)


answers = st.builds(
    Details,
    reasons=st.lists(st.sampled_from([1, 2, 6, 51, 56, 99]), max_size=7).map(tuple),
    subscores=st.lists(st.tuples(st.sampled_from([*INDICATORS, "mood"]), st.integers(0, 6)), max_size=4).map(tuple),
    contact=st.none() | st.just(SEALED),
    done=st.booleans(),
)


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.builds(Login, st.sampled_from(["E1", "E2"])),
                st.just(Logout()),
                st.builds(Invite, st.none() | st.sampled_from(["T1", "T2"])),
                st.builds(Press, st.integers(1, 5)),
                st.just(Expire()),
                answers,
            ),
            st.integers(0, 4_000),
        ),
        max_size=60,
    ),
    st.booleans(),
    st.booleans(),
)
def test_any_sequence_with_a_screen_makes_only_valid_records(
    steps: list[tuple[Event, int]], required: bool, subscores: bool
) -> None:
    terminal = Driver(replace(SCREEN, thank_you_ms=1000, reason_required=required, subscores=subscores))
    now = 0
    for event, gap in steps:
        now += gap
        if isinstance(event, Expire) and (terminal.flow.deadline_ms is None or terminal.flow.deadline_ms > now):
            continue
        terminal.send(event, now)  # never an IllegalEvent, whatever a screen sends whenever
        assert terminal.state is not State.STORING
    for seq, record in enumerate(terminal.records, start=1):
        rating = Rating(
            device="d1",
            seq=seq,
            kind=record.kind,
            t=0,
            boot="b",
            mono=0,
            fw="1",
            prev=GENESIS,
            staff=record.staff,
            score=record.score,
            amends=record.amends,
            reasons=record.reasons,
            subscores=record.subscores,
            contact=record.contact,
            ticket=record.ticket,
            flags=record.flags,
        )
        assert rating_from_wire({**rating.wire(), "sig": "0" * 128}) == replace(rating, sig="0" * 128)


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
