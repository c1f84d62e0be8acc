"""The layering is a checked contract (import-linter, in setup.cfg, run by `make lint`): protocol
imports nothing of ours and does no I/O; runtime imports only protocol; device and hub never import
each other, nor the simulator; only the `pingjia` command and the simulator sit on top. These tests
show the check passes here, and fails when a layer imports upwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = ("protocol", "runtime", "device", "hub", "simulator", "pingjia")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(where: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [str(LINT), "--no-cache", str(where / "setup.cfg")],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and their contracts, in a folder a test may break."""
    where = tmp_path_factory.mktemp("layers")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, where / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", where / "setup.cfg")
    return where


def plant(copy: Path, module: str, line: str) -> Path:
    """A copy with one more import in `module` (a path under the copy)."""
    broken = copy.parent / f"{copy.name}-{module.replace('/', '-')}"
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(copy, broken)
    target = broken / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return broken


def test_the_layers_hold() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("device/flow.py", "import hub.report  # noqa", "Each layer imports only the layers below it"),
        ("hub/ingest.py", "from device import flow  # noqa", "Each layer imports only the layers below it"),
        ("runtime/link.py", "import device.outbox  # noqa", "Each layer imports only the layers below it"),
        ("protocol/record.py", "import runtime.logs  # noqa", "Each layer imports only the layers below it"),
        ("protocol/record.py", "import socket  # noqa", "The wire protocol does no I/O of its own"),
        ("hub/serve.py", "import simulator.panel  # noqa", "needs no simulator"),
    ],
)
def test_an_upward_import_breaks_the_contract(copy: Path, module: str, line: str, contract: str) -> None:
    done = lint(plant(copy, module, line))
    assert done.returncode != 0
    broken = [row for row in done.stdout.splitlines() if row.rstrip().endswith("BROKEN")]
    assert any(contract in row for row in broken), done.stdout
