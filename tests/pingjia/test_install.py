"""A terminal or a hub installed without the simulator extra (`pip install pingjia`, no `[sim]`)
neither carries nor imports the simulator's embedded broker (amqtt), and the `pingjia` command then
offers only the product's subcommands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Run a command the way the `pingjia` entry point does, then say which of our packages and of the
# simulator's requirements were imported. `hide_amqtt` makes the interpreter behave as an install
# without the extra: amqtt cannot be found or imported.
PROBE = """
import json, sys
if {hide_amqtt}:
    sys.modules["amqtt"] = None
from pingjia.cli import build_parser, main
commands = sorted(build_parser()._subparsers._group_actions[0].choices)
code = main({argv!r})
loaded = sorted({{name.split(".")[0] for name in sys.modules if sys.modules[name] is not None}})
print(json.dumps({{"code": code, "commands": commands, "loaded": loaded}}))
"""


def probe(argv: list[str], *, hide_amqtt: bool, stdin: str = "") -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv, hide_amqtt=hide_amqtt)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("hide_amqtt", [True, False], ids=["without-the-sim-extra", "with-it"])
def test_a_terminal_run_imports_no_embedded_broker(tmp_path: Path, hide_amqtt: bool) -> None:
    result = probe(
        ["device", "run", "--data", str(tmp_path / "t"), "--id", "w01"], hide_amqtt=hide_amqtt, stdin="quit\n"
    )
    assert result["code"] == 0
    assert "amqtt" not in result["loaded"]
    assert "device" in result["loaded"]
    if hide_amqtt:
        assert "simulator" not in result["loaded"]
        assert result["commands"] == ["device", "hub", "report", "tech"]
    else:
        assert {"demo", "sim", "chaos", "bench"} <= set(result["commands"])


def test_a_hub_command_without_the_extra_imports_neither_terminal_nor_simulator(tmp_path: Path) -> None:
    result = probe(["hub", "rejects", "--db", f"sqlite:///{tmp_path / 'none.sqlite3'}"], hide_amqtt=True)
    loaded = set(result["loaded"])
    assert not loaded & {"amqtt", "simulator", "serial", "tinydb"}
