"""`pingjia tech ...` over a real pty to a terminal's console (device/console.py's ConsoleLink and
device/pairing.py's Pairer, served by a small loop here), against a real SQLite hub database.

A `Cable` is two ptys joined by a relay thread, like the USB cable between the technician's laptop
and the terminal's gadget port: the tool opens one end's path, the ConsoleLink the other's (a
symlink, so that the terminal's end can be unplugged and plugged in again). Every wait is on a
condition with a timeout; the code's clock is the test's to move.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import serial

from device.console import ConsoleLink, ConsoleRequest
from device.pairing import Change, Identify, Paired, Pairer, PairingCode, Unpaired, load_pairing, store_in
from device.state import StateDocument
from hub import brokerconf, identity
from hub.identity import HubKeys
from hub.pairing import add_technician, issue_tech_credential
from hub.queries import Reader
from hub.writer import Writer
from pingjia import tech
from protocol import SealKey, SigningKey
from protocol import console as wire
from simulator.cable import Cable
from simulator.processes import wait_until

WAIT_S = 5.0
LIFETIME = wire.CODE_LIFETIME_MS


# -- the cable -------------------------------------------------------------------------------------


# -- a terminal: the console link and the pairer, served by a small loop ---------------------------


class Terminal:
    """ConsoleLink + Pairer on their own threads, as the terminal's loop runs them."""

    def __init__(self, cable: Cable, data: Path, device: str) -> None:
        self.device = device
        self.key = SigningKey.generate()
        self.state = StateDocument(data / f"{device}.json")
        self.state.update(device=device)
        self.mono_ms = 0  # the terminal's monotonic clock: the test moves it
        self.pairer = Pairer(
            device=device,
            pubkey=self.key.public.hex,
            fw="0.1.0",
            pairing=load_pairing(self.state),
            now_ms=0,
            persist=store_in(self.state),
            codes=PairingCode(0),
        )
        self.changes: list[Change] = []
        self._requests: queue.Queue[object] = queue.Queue()
        self._stopping = threading.Event()
        self.link = ConsoleLink(str(cable.link), self._requests.put, reopen_interval_s=0.02)
        self._thread = threading.Thread(target=self._serve, name=f"terminal-{device}", daemon=True)
        self.link.start()
        self._thread.start()
        wait_until(lambda: self.link.connected, WAIT_S, "the console link to open its port")

    def code(self) -> str:
        return self.pairer.codes.current(self.mono_ms).digits

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(WAIT_S)
        self.link.stop()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._requests.get(timeout=0.02)
            except queue.Empty:
                continue
            assert isinstance(item, ConsoleRequest)
            response, change = self.pairer.handle(item.request, now_ms=self.mono_ms, wall_ms=time.time_ns() // 10**6)
            if change is not None:
                self.changes.append(change)
            item.reply(response)


# -- the hub ---------------------------------------------------------------------------------------


@dataclass
class Hub:
    db: str
    keys: HubKeys
    key_file: Path  # the private key file (the tool on the hub's machine)
    public_file: Path  # what `pingjia hub init` prints (the tool on a laptop)
    credential: Path
    other_credential: Path  # issued by another hub to the same name

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with Reader.open(self.db) as reader:
            return [tuple(row) for row in reader.execute(sql, params).fetchall()]


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    now = time.time_ns() // 10**6
    with Writer.open(db, migrate=True) as writer:
        writer.write(add_technician, "wang", now)
    keys = identity.create(tmp_path / "hub.key")
    public = tmp_path / "hub.pub.json"
    public.write_text(identity.describe(keys, tmp_path / "hub.key"))
    credential = tmp_path / "wang.cred"
    credential.write_bytes(issue_tech_credential(keys, "wang", 8, now) + b"\n")
    other = HubKeys(sign=SigningKey.generate(), seal=SealKey.generate())
    other_credential = tmp_path / "wang.other.cred"
    other_credential.write_bytes(issue_tech_credential(other, "wang", 8, now))
    return Hub(db, keys, tmp_path / "hub.key", public, credential, other_credential)


@pytest.fixture
def cable(tmp_path: Path) -> Iterator[Cable]:
    made = Cable(tmp_path / "console-a")
    yield made
    made.close()


@pytest.fixture
def terminal(cable: Cable, tmp_path: Path) -> Iterator[Terminal]:
    made = Terminal(cable, tmp_path, "hall1-w03")
    yield made
    made.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object] | None, str]:
    """One `pingjia tech ...` command: its exit status, its JSON (if any), its stderr."""
    parser = argparse.ArgumentParser(prog="pingjia")
    tech.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["tech", *argv])
    capsys.readouterr()
    code = args.func(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code != 0:
        assert out == ""
        assert err.count("\n") == 1, err  # one line
    return code, (json.loads(out) if out else None), err


def hub_args(hub: Hub, *, credential: Path | None = None, key: Path | None = None) -> list[str]:
    return ["--credential", str(credential or hub.credential), "--db", hub.db, "--hub-key", str(key or hub.key_file)]


def pair_args(hub: Hub, cable: Cable, code: str, **kwargs: Path) -> list[str]:
    return [
        "pair",
        "--port",
        cable.tool_port,
        *hub_args(hub, **kwargs),
        "--broker",
        "mqtt://broker.hall1:1883",
        "--site",
        "hall1",
        "--department",
        "综合受理",
        "--counter",
        "3号窗口",
        "--code",
        code,
    ]


def read_response(port: serial.Serial) -> wire.Response:
    """The next response on `port`, past empty lines (the terminal sends one when it opens its end)."""
    line = b"\n"
    while line == b"\n":
        line = port.read_until(b"\n")
    return wire.decode_response(line)


# -- the tests -------------------------------------------------------------------------------------


def test_the_whole_pair_flow(hub: Hub, cable: Cable, terminal: Terminal, capsys: pytest.CaptureFixture[str]) -> None:
    code, info, _ = run(capsys, "info", "--port", cable.tool_port)
    assert code == 0
    assert info is not None
    assert (info["device"], info["pubkey"], info["paired"]) == ("hall1-w03", terminal.key.public.hex, False)
    assert info["code"] == terminal.code()
    assert 0 < int(str(info["code_left_s"])) <= LIFETIME // 1000

    code, paired, err = run(capsys, *pair_args(hub, cable, str(info["code"]), key=hub.public_file))
    assert code == 0, err
    assert paired == {
        "device": "hall1-w03",
        "pubkey": terminal.key.public.hex,
        "hub": hub.keys.sign_hex[:16],
        "site": "hall1",
        "department": "综合受理",
        "counter": "3号窗口",
        "broker": "mqtt://broker.hall1:1883",
        "username": "hall1-w03",
        "tech": "wang",
    }
    # The terminal holds the hub's keys and its own account, stored before it answered.
    stored = load_pairing(StateDocument(terminal.state.path))
    assert stored is not None
    assert (stored.hub_sign, stored.hub_seal, stored.broker) == (
        hub.keys.sign_hex,
        hub.keys.seal_hex,
        "mqtt://broker.hall1:1883",
    )
    assert (stored.site, stored.department, stored.counter, stored.tech) == ("hall1", "综合受理", "3号窗口", "wang")
    assert terminal.changes == [Paired(stored)]
    assert stored.password not in json.dumps(paired)
    # The hub registered it, paired by wang, with an account whose password is the terminal's.
    assert hub.rows("SELECT id, pubkey, department, counter, paired_by, revoked_ms FROM devices") == [
        ("hall1-w03", terminal.key.public.hex, "综合受理", "3号窗口", "wang", None)
    ]
    ((pw_hash,),) = hub.rows("SELECT pw_hash FROM broker_users WHERE username = 'hall1-w03' AND revoked_ms IS NULL")
    assert brokerconf.verify_password(stored.password, str(pw_hash))

    code, info, _ = run(capsys, "info", "--port", cable.tool_port)
    assert info is not None
    assert (info["paired"], info["hub"], info["counter"]) == (True, hub.keys.sign_hex[:16], "3号窗口")

    code, identified, _ = run(capsys, "identify", "--port", cable.tool_port, "--credential", str(hub.credential))
    assert (code, identified) == (0, {"device": "hall1-w03", "identified": True})
    assert terminal.changes[-1] == Identify()


def test_an_expired_code_is_refused_with_a_clear_message(
    hub: Hub, cable: Cable, terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = terminal.code()
    terminal.mono_ms += LIFETIME  # ten minutes at the counter, by the terminal's clock
    code, out, err = run(capsys, *pair_args(hub, cable, shown))
    assert (code, out) == (2, None)
    assert err.startswith("pingjia tech pair: the terminal refused: ")
    assert f"code {shown} has expired" in err
    assert "run the command again with the code the terminal shows now" in err
    assert terminal.code() != shown
    assert terminal.changes == []
    assert hub.rows("SELECT id FROM devices") == []
    assert hub.rows("SELECT username FROM broker_users") == []


def test_a_used_code_is_refused_and_unpair_keeps_the_identity(
    hub: Hub, cable: Cable, terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = terminal.code()
    assert run(capsys, *pair_args(hub, cable, shown))[0] == 0

    code, unpaired, err = run(capsys, "unpair", "--port", cable.tool_port, *hub_args(hub))
    assert code == 0, err
    assert unpaired == {"device": "hall1-w03", "revoked": True, "terminal_cleared": True, "tech": "wang"}
    assert terminal.changes[-1] == Unpaired()
    assert load_pairing(StateDocument(terminal.state.path)) is None
    assert StateDocument(terminal.state.path).get("device") == "hall1-w03"
    assert hub.rows("SELECT revoked_ms IS NOT NULL FROM devices") == [(1,)]
    assert hub.rows("SELECT revoked_ms IS NOT NULL FROM broker_users") == [(1,)]

    code, _, err = run(capsys, *pair_args(hub, cable, shown))
    assert code == 2
    assert f"code {shown} was used already" in err
    assert "(used_code)" in err
    assert hub.rows("SELECT revoked_ms IS NOT NULL FROM devices") == [(1,)]  # nothing was registered again


def test_a_credential_of_another_hub_is_refused_by_the_tool_and_by_the_terminal(
    hub: Hub, cable: Cable, terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *pair_args(hub, cable, terminal.code(), credential=hub.other_credential))
    assert code == 2
    assert "not issued by this hub" in err
    assert "pair" not in terminal.link.counters.requests  # refused before the terminal was asked

    assert run(capsys, *pair_args(hub, cable, terminal.code()))[0] == 0
    code, _, err = run(capsys, "identify", "--port", cable.tool_port, "--credential", str(hub.other_credential))
    assert code == 2
    assert "(bad_credential)" in err
    assert terminal.changes[-1] != Identify()


def test_an_unpaired_terminal_refuses_identify(
    hub: Hub, cable: Cable, terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    with serial.Serial(cable.tool_port, 115200, timeout=WAIT_S) as port:
        port.write(b"\n" + wire.encode_request(wire.InfoRequest(id=1)).replace(b'"info"', b'"identify"'))
        port.write(b'{"id":2,"op":"identify","v":1}*' + b"%08x\n" % wire.crc32(b'{"id":2,"op":"identify","v":1}'))
        first, second = read_response(port), read_response(port)
    assert isinstance(first, wire.Refusal)
    assert first.error is wire.ConsoleCode.BAD_CRC  # the op was changed, the CRC was not
    assert isinstance(second, wire.Refusal)
    assert (second.id, second.error) == (2, wire.ConsoleCode.BAD_FIELD)
    assert "missing ['credential']" in second.detail
    assert terminal.link.counters.refused == {"bad_crc": 1, "bad_field": 1}

    code, _, err = run(capsys, "identify", "--port", cable.tool_port, "--credential", str(hub.credential))
    assert code == 2
    assert "not paired" in err
    assert terminal.changes == []


def test_replace_moves_the_place_and_the_clerk_and_revokes_the_old_terminal(
    hub: Hub, cable: Cable, terminal: Terminal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, *pair_args(hub, cable, terminal.code()))[0] == 0
    health = json.dumps({"device": "hall1-w03", "staff": "E1024", "type": "health", "v": 2})
    with Writer.open(hub.db) as writer:
        writer.write(lambda db: db.execute("UPDATE devices SET health = ? WHERE id = 'hall1-w03'", (health,)))

    other_cable = Cable(tmp_path / "console-b")
    new = Terminal(other_cable, tmp_path, "hall1-w03b")
    try:
        argv = ["replace", "--old", "hall1-w03", "--port", other_cable.tool_port, *hub_args(hub)]
        code, replaced, err = run(capsys, *argv, "--broker", "mqtt://broker.hall1:1883", "--code", new.code())
        assert code == 0, err
        assert replaced == {
            "device": "hall1-w03b",
            "replaces": "hall1-w03",
            "department": "综合受理",
            "counter": "3号窗口",
            "clerk": "E1024",
            "hub": hub.keys.sign_hex[:16],
            "tech": "wang",
        }
        (change,) = new.changes
        assert isinstance(change, Paired)
        assert change.staff == "E1024"  # the new terminal starts with the old one's clerk
        assert (change.pairing.department, change.pairing.counter) == ("综合受理", "3号窗口")
        rows = hub.rows("SELECT id, department, counter, revoked_ms IS NOT NULL, replaced_by FROM devices ORDER BY id")
        assert rows == [
            ("hall1-w03", "综合受理", "3号窗口", 1, "hall1-w03b"),
            ("hall1-w03b", "综合受理", "3号窗口", 0, None),
        ]
        accounts = hub.rows("SELECT username, revoked_ms IS NOT NULL FROM broker_users ORDER BY username")
        assert accounts == [("hall1-w03", 1), ("hall1-w03b", 0)]
    finally:
        new.stop()
        other_cable.close()


def test_the_console_survives_its_port_going_away(
    hub: Hub, cable: Cable, terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    cable.unplug()
    wait_until(lambda: not terminal.link.connected, WAIT_S, "the link to notice the port is gone")
    code, _, err = run(capsys, "info", "--port", cable.tool_port, "--timeout", "0.2")
    assert code == 2
    assert "did not answer hello within 0.2 s" in err
    cable.replug()
    wait_until(lambda: terminal.link.connected, WAIT_S, "the link to open the port again")
    code, info, _ = run(capsys, "info", "--port", cable.tool_port)
    assert code == 0
    assert info is not None
    assert info["device"] == "hall1-w03"
    assert terminal.link.counters.reconnects == 1


def test_an_oversize_line_is_answered_and_the_next_frame_is_read(
    cable: Cable, terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    with serial.Serial(cable.tool_port, 115200, timeout=WAIT_S) as port:
        port.write(b"x" * (wire.MAX_FRAME_BYTES + 10) + b"\n" + wire.encode_request(wire.InfoRequest(id=3)))
        first, second = read_response(port), read_response(port)
    assert isinstance(first, wire.Refusal)
    assert first.error is wire.ConsoleCode.OVERSIZE
    assert isinstance(second, wire.InfoReply)
    assert second.id == 3
    assert terminal.link.counters.refused == {"oversize": 1}


def test_without_a_code_and_no_one_to_ask_the_tool_says_so(
    hub: Hub, cable: Cable, terminal: Terminal, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = pair_args(hub, cable, "x")[:-2]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "--code" in err
    assert "pair" not in terminal.link.counters.requests
    assert hub.rows("SELECT id FROM devices") == []


def test_a_missing_port_or_credential_is_one_line(hub: Hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "info", "--port", str(tmp_path / "nothing"))
    assert code == 2
    assert "cannot open the console port" in err
    code, _, err = run(capsys, "identify", "--port", str(tmp_path / "nothing"), "--credential", str(tmp_path / "x"))
    assert code == 2
    assert "cannot read the credential" in err
    (tmp_path / "bad.cred").write_text("{}")
    code, _, err = run(capsys, "unpair", "--device", "d1", *hub_args(hub, credential=tmp_path / "bad.cred"))
    assert code == 2
    assert "is not a technician credential" in err
