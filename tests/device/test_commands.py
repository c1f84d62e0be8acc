"""The clerk's PC (or the queue system, or the hub) drives a terminal over MQTT; the binding
survives a restart; a bad configuration file stops the start with a precise message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from device import identity
from protocol import Channel, Command, CommandName, encode_command, topic
from simulator.processes import MosquittoBroker, TerminalProcess
from tests.rawclient import RawClient

pytestmark = pytest.mark.slow


@pytest.mark.broker
def test_login_invite_and_logout_by_mqtt_command(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    identity.create(tmp_path / "t01", "t01")
    terminal = TerminalProcess(
        tmp_path / "t01", broker_url=mosquitto.url, log=tmp_path / "t01.log", settings=["thank_you_ms=300"]
    )
    pc = RawClient(mosquitto.port, "clerk-pc")
    commands = topic("t01", Channel.CMD)
    try:
        terminal.start()
        terminal.wait_for(lambda t: t.online, 20, "online")
        pc.publish(commands, encode_command(Command(device="t01", cmd=CommandName.LOGIN, staff="E7", id="pc-1")))
        terminal.wait_for(lambda t: t.state == "idle", 10, "the log-in")
        pc.publish(commands, encode_command(Command(device="t01", cmd=CommandName.INVITE, ticket="B042")))
        terminal.wait_for(lambda t: t.state == "invited", 10, "the invitation")
        terminal.press(5)
        terminal.wait_for(lambda t: t.thanked == [1], 10, "the rating")
        assert terminal.recorded[1]["staff"] == "E7"
        pc.publish(commands, b'{"cmd":"reboot","device":"t01","type":"cmd","v":1}')  # not a command we know
        pc.publish("pingjia/hub/rogue/status", b"online!")  # not a hub's status either
        pc.publish(commands, encode_command(Command(device="t01", cmd=CommandName.LOGOUT)))
        terminal.wait_for(lambda t: t.state == "closed", 10, "the log-out")
        details = [e.get("detail", "") for e in terminal.events]
        assert any("unreadable command" in detail for detail in details)
        assert any("unreadable hub status" in detail for detail in details)
    finally:
        terminal.quit()
        pc.close()


def test_the_staff_binding_survives_a_restart(tmp_path: Path) -> None:
    identity.create(tmp_path / "t01", "t01")
    terminal = TerminalProcess(tmp_path / "t01", broker_url=None, log=tmp_path / "t01.log")
    terminal.start()
    terminal.wait_for(lambda t: t.ready, 20, "ready")
    terminal.login("E7")
    terminal.wait_for(lambda t: t.state == "idle", 10, "the log-in")
    assert terminal.quit() == 0
    again = TerminalProcess(tmp_path / "t01", broker_url=None, log=tmp_path / "t01.log")
    again.start()
    again.wait_for(lambda t: t.ready, 20, "ready")
    assert again.state == "idle"
    again.invite()
    again.press(4)
    again.wait_for(lambda t: bool(t.thanked), 10, "a rating for the clerk still logged in")
    assert again.recorded[again.thanked[0]]["staff"] == "E7"
    again.quit()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('mode = "fast"\n', "setting 'mode': 'fast' is not allowed; one of invited, open"),
        ("thank_you_ms = -1\n", "setting 'thank_you_ms': -1 is not allowed; int in 0..15000 ms"),
        ('panel_port = "ttyACM0"\n', "setting 'panel_port': 'ttyACM0' is not allowed; a device path"),
        ("heartbeat = 5\n", "setting 'heartbeat': 5 is not allowed; no such setting"),
    ],
)
def test_a_bad_config_file_stops_the_start_naming_key_value_and_what_is_allowed(
    tmp_path: Path, toml: str, message: str
) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text(toml, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "device",
            "run",
            "--data",
            str(tmp_path / "t"),
            "--config",
            str(config),
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "t").exists()  # nothing was created on a refused start
