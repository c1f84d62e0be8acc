"""The fault scenario, short: every kind of fault, and nothing lost or counted twice."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simulator.chaos import FAULTS, Chaos
from tests.conftest import need_mosquitto

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_a_short_fault_scenario_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    need_mosquitto()
    seed = int(os.environ["PINGJIA_SEED"]) if "PINGJIA_SEED" in os.environ else None
    chaos = Chaos(seconds=30, devices=4, workdir=tmp_path / "chaos", seed=seed)
    result = chaos.run()
    assert (result["lost"], result["duplicated"]) == (0, 0), result
    assert result["stored"] == result["recorded"] > 0, result
    assert result["thanked"] > 0, result
    for kind in FAULTS:
        assert result["faults"].get(kind, 0) >= 1 or f"{kind}_skipped" in result["faults"], (kind, result)
    assert result["faults"]["replayed_deliveries"] > 0, result
    assert result["terminals_saw"]["offline"] > 0, result
    assert result["hub_rejects"] == {}, result
    # The broker really kept its sessions and queued messages across each restart (its log, and a probe).
    broker = result["broker"]
    assert broker["errors"] == 0, result
    assert broker["saves"] >= result["faults"]["broker_restart"], result
    assert broker["queued_restored"] == broker["queued"] == result["faults"]["broker_restart"], result
    assert broker["hub_session_resumed"] >= result["faults"]["broker_restart"], result
    # A new session only at the very first connection, or after a crash that came before any autosave.
    assert broker["hub_session_new"] <= 1 + result["faults"]["broker_crash"], result
