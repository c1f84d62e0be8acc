"""The touchscreen's benchmark step (issue 12) at a tiny size: every key `make bench` names is there,
with figures that make sense (headless: SDL's dummy drivers, set by the step itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.bench_touch import FRAME_BUDGET_MS, touch_frames, touch_process
from tests.conftest import need_mosquitto

pytestmark = pytest.mark.slow


def test_frames_and_feedback_are_timed_idle_and_in_transitions_at_both_panel_sizes(tmp_path: Path) -> None:
    result = touch_frames(tmp_path, cycles=2)
    for key in ("touch_frame_p99_ms", "touch_frame_idle_p99_ms", "touch_frame_transition_p99_ms"):
        assert 0 < result[key] < 1_000, (key, result)
    assert result["touch_frame_p99_ms"] == max(
        result["touch_frame_idle_p99_ms"], result["touch_frame_transition_p99_ms"]
    )
    assert result["touch_frame_budget_ms"] == FRAME_BUDGET_MS == 16.7
    assert 0 < result["touch_feedback_p99_ms"] < 1_000, result
    for size in ("800x480", "1280x800"):
        counted = result["touch_frames"][size]
        assert counted["touches"] == 2, result  # every touch was seen pressed in a flipped frame
        assert counted["transition"] >= 2 * 3, result  # the faces, the pressed face, the thanks, idle: each drawn
        assert counted["idle"] > counted["transition"], result


@pytest.mark.broker
def test_cpu_per_rating_of_a_touchscreen_beside_a_key_terminal_and_its_memory(tmp_path: Path) -> None:
    need_mosquitto()
    result = touch_process(tmp_path, ratings=4)
    assert result["touch_ratings"] == 4
    for key in ("touch_cpu_ms_per_rating", "touch_key_terminal_cpu_ms_per_rating", "touch_idle_cpu_ms_per_s"):
        assert result[key] > 0, (key, result)
    assert 20 < result["touch_rss_mb"] < 1_000, result
    assert len(result["touch_cpu_ms_per_rating_batches"]) == 4  # one rating per batch at this size
