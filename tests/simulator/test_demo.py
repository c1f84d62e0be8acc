"""`pingjia demo` as a user runs it: bounded, on the embedded broker or a given one, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.processes import MosquittoBroker

pytestmark = pytest.mark.slow


def run_demo(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "pingjia", "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_bounded_demo_on_the_embedded_broker_loses_nothing(tmp_path: Path) -> None:
    summary = run_demo(["--seconds", "8", "--devices", "4", "--speed", "6", "--quiet", "--data", str(tmp_path)])
    assert summary["pressed"] > 0
    assert summary["stored"] == summary["pressed"]
    assert (summary["lost"], summary["duplicates"], summary["unexpected"]) == (0, 0, 0)
    assert summary["first_stored_s"] is not None
    assert summary["rejects"] == {}
    # A second run carries on with the same terminals and seqs.
    again = run_demo(["--seconds", "5", "--devices", "4", "--speed", "6", "--quiet", "--data", str(tmp_path)])
    assert (again["lost"], again["duplicates"]) == (0, 0)


@pytest.mark.broker
def test_demo_uses_the_broker_it_is_given(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    summary = run_demo(
        ["--seconds", "6", "--devices", "3", "--speed", "6", "--quiet", "--data", str(tmp_path)],
        env={"PINGJIA_BROKER": mosquitto.url},
    )
    assert summary["pressed"] > 0
    assert (summary["lost"], summary["duplicates"]) == (0, 0)


def test_ctrl_c_drains_prints_the_tables_and_the_tallies(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "pingjia", "demo", "--devices", "2", "--speed", "8", "--data", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    lines = []
    for line in demo.stdout:
        lines.append(line)
        if "stored at hub" in line and " stored at hub      0" not in line:
            break
    demo.send_signal(signal.SIGINT)
    rest, errors = demo.communicate(timeout=120)
    output = "".join(lines) + rest
    assert demo.returncode == 0, output + errors
    assert "per department" in output
    assert "per staff member" in output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["pressed"] > 0
    assert (summary["lost"], summary["duplicates"]) == (0, 0)


def test_demo_screen_without_a_display_says_so_and_runs_the_touchscreen_headless(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name not in ("DISPLAY", "WAYLAND_DISPLAY")}
    argv = ["demo", "--screen", "--seconds", "8", "--devices", "2", "--speed", "6", "--data", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "pingjia", *argv],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "--screen: no display ($DISPLAY and $WAYLAND_DISPLAY are unset)" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["screen"].startswith("headless: no display")
    assert summary["pressed"] > 0
    assert (summary["lost"], summary["duplicates"], summary["records_missing"]) == (0, 0, 0)
    assert summary["pressed_on_screen"] > 0  # counter 1's customers rated by touching the faces it drew
