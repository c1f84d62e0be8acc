"""The supervision figures of `pingjia bench`: each clerk-flagging rule's precision and recall per
clerk-week on simulated weeks of held-out seeds, and the flags raised on an honest hall.

The rules' parameters (hub.supervision) were tuned on seeds 1-20 (simulator.weeks.TUNING_SEEDS);
these figures come from seeds 1000-1019 (HELD_OUT_SEEDS), or their first five with `quick`. Each
seed is one hall of 24 counters (36 clerks) for one working week with 6 fakers, two of each way
of faking, and the same hall again with nobody faking. In-process and single-threaded: about two
seconds a seed.

Two limits are measured beside them (`supervision_limits`, on the first three held-out seeds),
where these weeks are made to play a fake as `pingjia sim` does: a clerk who presses 5 inside the
invitation (its invitations arrive before the clerk's press) stores a record like a customer's,
so S1 cannot see it; and where children press through the covers (sim.py models the covers for
customers only), S2 cannot tell covers from selective inviting, and S3 flags both.
"""

from __future__ import annotations

from typing import Any

from simulator.weeks import HELD_OUT_SEEDS, Behaviour, Mix, measure

__all__ = ["run"]

QUICK_SEEDS = 5
LIMIT_SEEDS = 3


def _figures(measured: dict[str, Any], rule: str) -> dict[str, Any]:
    figures = measured["rules"][rule]
    return {key: figures[key] for key in ("tp", "fp", "fn", "precision", "recall")}


def run(quick: bool) -> dict[str, Any]:
    """`supervision_precision` and `supervision_recall` (the worst clerk-flagging rule's),
    `supervision_honest_flags` (every rule's flags on the honest halls: the goal is 0), per-rule
    figures under `supervision_rules`, and what was measured on."""
    seeds = HELD_OUT_SEEDS[:QUICK_SEEDS] if quick else HELD_OUT_SEEDS
    mix = Mix()
    measured = measure(seeds, mix)
    limits = HELD_OUT_SEEDS[:LIMIT_SEEDS]
    inside = measure(limits, Mix(fakes=("self_press",)), Behaviour(self_press_in_window=1.0), honest=False)
    through = measure(
        limits, Mix(fakes=("covered_keys", "selective_invite")), Behaviour(covers_stop_children=False), honest=False
    )
    return {
        "supervision_precision": measured["worst_precision"],
        "supervision_recall": measured["worst_recall"],
        "supervision_honest_flags": measured["honest_flags"],
        "supervision_rules": measured["rules"],
        "supervision_terminal_flags": measured["terminal_flags"],
        "supervision_honest_flags_by_rule": measured["honest_flags_by_rule"],
        "supervision_seeds": list(seeds),
        "supervision_quick": quick,
        "supervision_tuned_on": "seeds 1-20",
        "supervision_hall": {
            "counters": mix.counters,
            "clerks_per_week": measured["clerk_weeks"] // max(1, len(seeds) * mix.weeks),
            "fakers": mix.fakers,
            "fakes": list(mix.fakes),
            "weeks_per_seed": mix.weeks,
            "positives": measured["positives"],
        },
        "supervision_clerk_weeks": measured["clerk_weeks"],
        "supervision_honest_clerk_weeks": measured["honest_clerk_weeks"],
        "supervision_services": measured["services"],
        "supervision_limits": {
            "seeds": list(limits),
            "self_press_inside_invitation": {"S1-self-press": _figures(inside, "S1-self-press")},
            "children_press_through_covers": {
                rule: _figures(through, rule) for rule in ("S2-covered-keys", "S3-selective-invite")
            },
        },
        "supervision_seconds": measured["seconds"],
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv[1:]), ensure_ascii=False, indent=2))
