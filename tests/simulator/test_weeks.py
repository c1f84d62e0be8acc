"""Simulated weeks (simulator.weeks): deterministic per seed, a stream a terminal could have stored,
ground truth that matches it, no flag on an honest hall, and the supervision goal on held-out seeds."""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hub import supervision
from simulator import cli
from simulator.sim import FAKES, Sim
from simulator.weeks import (
    HELD_OUT_SEEDS,
    TARGETS,
    TUNING_SEEDS,
    Behaviour,
    Mix,
    SimulatedWeeks,
    measure,
    presses,
    simulate,
)

SMALL = Mix(counters=8, fakers=3)


@pytest.fixture(scope="module")
def week() -> SimulatedWeeks:
    return simulate(7, Mix(counters=12, fakers=6))


def test_the_same_seed_gives_the_same_week_and_another_seed_another() -> None:
    first, again, other = simulate(3, SMALL), simulate(3, SMALL), simulate(4, SMALL)
    assert first.records == again.records
    assert first.truth == again.truth
    assert first.faked == again.faked
    assert first.records != other.records


def test_the_stream_is_one_a_terminal_could_have_stored(week: SimulatedWeeks) -> None:
    by_device: dict[str, list[Any]] = {}
    for record in week.records:
        by_device.setdefault(record.device, []).append(record)
    assert set(by_device) == set(week.devices)
    for records in by_device.values():
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        assert all(b.prev == a.hash for a, b in itertools.pairwise(records))
        assert all(a.at_ms <= b.at_ms for a, b in itertools.pairwise(records))
        for record in records:
            if record.kind == "timeout":
                assert record.score is None
                assert record.staff is not None
            else:
                assert 1 <= (record.score or 0) <= 5
            if record.kind == "amend":
                assert record.amends is not None
                assert record.amends < record.seq
            if record.ticket is not None:
                assert not record.flags  # only an invitation carries a ticket
    kinds = Counter((r.kind, r.flags) for r in week.records)
    for seen in [("press", ()), ("press", ("uninvited",)), ("press", ("misuse",)), ("timeout", ()), ("amend", ())]:
        assert kinds[seen] > 0, seen
    assert {supervision.iso_week(r.day) for r in week.records} == {"2026-W10"}
    assert {r.day for r in week.records} == {f"2026-03-0{d}" for d in range(2, 7)}  # Monday to Friday
    assert week.services > 12 * 5 * 50


def test_the_ground_truth_is_what_the_fakers_did(week: SimulatedWeeks) -> None:
    fakers = {c.staff: c.fake for c in week.clerks if c.fake}
    assert len(fakers) == 6
    assert sorted(Counter(fakers.values()).values()) == [2, 2, 2]
    assert all(c.regular for c in week.clerks if c.fake)
    assert {staff for staff, _ in week.truth} == set(fakers)
    stored = {(r.device, r.seq): r for r in week.records}
    for (staff, _week), truth in week.truth.items():
        assert truth.fake == fakers[staff]
        assert truth.events >= len(truth.records) > 0 or truth.fake == "selective_invite"
        for key in truth.records:
            record = stored[key]
            assert record.staff == staff
            if truth.fake == "self_press":
                assert (record.kind, record.score, record.ticket) == ("press", 5, None)
            else:
                assert (record.kind, record.score) in {("press", 3), ("timeout", None)}
        if truth.fake == "selective_invite":
            assert truth.records == ()
    for staff, fake in fakers.items():
        mine = [r for r in week.records if r.staff == staff and r.score is not None and not r.reasons]
        if fake == "covered_keys":  # nobody's press on 1 or 2 registers while they are logged in
            assert all((r.score or 0) > 2 for r in mine)
        if fake == "self_press":
            assert sum(r.flags == ("uninvited",) and r.score == 5 for r in mine) >= 30


def test_the_behaviour_knobs_play_a_fake_as_pingjia_sim_does() -> None:
    mix = Mix(counters=8, fakers=2, fakes=("self_press", "covered_keys"))
    plain = simulate(9, mix)
    inside = simulate(9, mix, Behaviour(self_press_in_window=1.0, covers_stop_children=False))
    for weeks, uninvited in ((plain, True), (inside, False)):
        stored = {(r.device, r.seq): r for r in weeks.records}
        [faked] = [t for t in weeks.truth.values() if t.fake == "self_press"]
        ticketed = [stored[key] for key in faked.records if stored[key].ticket is not None]
        assert bool(ticketed) is not uninvited  # inside the queue's invitation: its ticket
        # after log-in the press is uninvited either way; for a customer, only before the invitation
        assert sum(stored[key].flags == ("uninvited",) for key in faked.records) > (40 if uninvited else 0)
        assert sum(not stored[key].flags for key in faked.records) > (10 if uninvited else 40)
        covered = next(c.staff for c in weeks.clerks if c.fake == "covered_keys")
        strays = [r for r in weeks.records if r.staff == covered and r.flags == ("misuse",) and (r.score or 9) <= 2]
        assert bool(strays) is not uninvited  # children's presses on 1 and 2 get through the covers


def test_an_honest_hall_has_no_truth_and_raises_no_flag() -> None:
    for seed in (21, 22):
        honest = simulate(seed, Mix(counters=12, fakers=0))
        assert honest.truth == {}
        assert not any(c.fake for c in honest.clerks)
        assert supervision.supervise(presses(honest)) == []


def test_presses_carry_what_the_rules_read(week: SimulatedWeeks) -> None:
    converted = presses(week)
    assert len(converted) == len(week.records)
    for record, press in zip(week.records, converted, strict=True):
        assert (press.device, press.seq, press.kind, press.staff, press.score) == (
            record.device,
            record.seq,
            record.kind,
            record.staff,
            record.score,
        )
        assert (press.ticket, press.flags, press.amends, press.day) == (
            record.ticket,
            record.flags,
            record.amends,
            record.day,
        )
    flagged = {(f.rule, f.key) for f in supervision.supervise(converted)}
    fakers = {c.staff: c.fake for c in week.clerks if c.fake}
    assert {key for rule, key in flagged if rule == "S1-self-press"} <= {
        s for s, f in fakers.items() if f == "self_press"
    }


def test_the_goal_holds_on_two_held_out_seeds() -> None:
    measured = measure(HELD_OUT_SEEDS[:2])
    assert measured["honest_flags"] == 0
    assert measured["positives"] == dict.fromkeys(FAKES, 4)
    for rule, figures in measured["rules"].items():
        assert figures["precision"] is not None, rule
        assert figures["precision"] >= 0.9, (rule, figures)
        assert figures["recall"] >= 0.8, (rule, figures)
    assert measured["worst_recall"] == min(r["recall"] for r in measured["rules"].values())
    assert set(measured["rules"]) == set(TARGETS)
    assert measured["clerk_weeks"] == 2 * 36


def test_a_rule_that_never_speaks_is_measured_as_such() -> None:
    mute = supervision.Rules(self_press=supervision.SelfPress(min_presses=10**6))
    measured = measure([TUNING_SEEDS[0]], Mix(counters=8, fakers=3), rules=mute)
    s1 = measured["rules"]["S1-self-press"]
    assert (s1["tp"], s1["fp"], s1["precision"], s1["recall"]) == (0, 0, None, 0.0)
    assert measured["worst_precision"] == 0.0


def test_the_mix_is_checked() -> None:
    with pytest.raises(ValueError, match="fakes must be"):
        Mix(fakes=("bribery",))
    with pytest.raises(ValueError, match="fakers must be"):
        Mix(counters=4, fakers=5)
    # as pingjia sim chooses: max(ways of faking, clerks // 8) = max(1, 18 // 8)
    only = simulate(5, Mix(counters=12, fakers=None, fakes=("covered_keys",)))
    assert [c.fake for c in only.clerks if c.fake] == ["covered_keys", "covered_keys"]


def test_pingjia_sim_takes_the_mix(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["sim", "--fakers", "0", "--fakes", "covered_keys,self_press"])
    assert (args.fakers, args.fakes) == (0, ("covered_keys", "self_press"))
    defaults = parser.parse_args(["sim"])
    assert (defaults.fakers, defaults.fakes) == (None, None)  # today's hall
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "--fakes", "bribery"])
    assert Sim(devices=4, hours=1, speed=60, data=tmp_path).fakes == FAKES
    with pytest.raises(ValueError, match="fakers"):
        Sim(devices=4, hours=1, speed=60, data=tmp_path, fakers=5)
    with pytest.raises(ValueError, match="fakes"):
        Sim(devices=4, hours=1, speed=60, data=tmp_path, fakes=("bribery",))
