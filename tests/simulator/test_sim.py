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
