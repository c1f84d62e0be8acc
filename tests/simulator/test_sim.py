"""A short simulated day: every counter a real terminal with its panel, and ground truth that holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.queries import Reader
from simulator.sim import Sim

pytestmark = pytest.mark.slow


def test_a_short_day_stores_everything_and_its_ground_truth_matches_the_hub(tmp_path: Path) -> None:
    result = Sim(devices=3, hours=1.5, speed=360, data=tmp_path / "sim", seed=11, quiet=True).run()
    assert result["lost"] == 0, result
    assert result["services"] > 10, result
    assert result["records"].get("press", 0) > 0, result
    assert result["logins"] >= 3, result
    truth = [json.loads(line) for line in Path(result["ground_truth"]).read_text(encoding="utf-8").splitlines()]
    assert len(truth) == sum(result["faked"].values())
    store = Reader.open(f"sqlite:///{tmp_path / 'sim' / 'hub.sqlite3'}")
    try:
        for row in truth:
            if row["seq"] is None:
                assert row["kind"] == "selective_invite"
                continue
            stored = store.execute(
                "SELECT staff, score, kind FROM ratings WHERE device = ? AND seq = ?", (row["device"], row["seq"])
            ).fetchone()
            assert stored is not None, row
            assert stored[0] == row["staff"], (row, stored)
            assert stored[1] == {"self_press": 5, "covered_keys": 3}[row["kind"]], (row, stored)
    finally:
        store.close()


def test_a_mixed_hall_of_key_panels_and_touchscreens_stores_everything_once(tmp_path: Path) -> None:
    result = Sim(devices=3, touch=2, hours=1.5, speed=360, data=tmp_path / "sim", seed=11, quiet=True).run()
    assert (result["lost"], result["duplicates"]) == (0, 0), result
    assert result["touch_devices"] == 2
    assert result["thanked_touch"] > 0, result  # the touchscreens' customers rated by touching the faces
    assert result["thanked"] > result["thanked_touch"], result  # and the key panel's by keys
    assert result["logins"] >= 3, result  # the touchscreens' clerks by their USB card readers
    store = Reader.open(f"sqlite:///{tmp_path / 'sim' / 'hub.sqlite3'}")
    try:
        stored = store.execute("SELECT count(*) FROM ratings").fetchone()[0]
    finally:
        store.close()
    assert stored == result["stored"], result
