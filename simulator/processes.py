"""Real processes for demos, tests and benchmarks: brokers, a hub, terminals.

Each child gets a pipe as its standard input and stops when it reaches end of input (a
"lifeline"), so a killed demo or test run leaves no stray brokers, hubs or terminals behind.

Every process here is the product's own command (or Mosquitto) started as a child; tests kill them
with real signals. Terminals report what they do as JSON lines (`--events jsonl`), which
`TerminalProcess` reads back as typed events (device.events) and turns into state that callers
wait on (`wait_for`) instead of sleeping.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import IO, Any, TypeVar

from device.events import (
    Acked,
    Error,
    HubBehind,
    Offline,
    Online,
    Ready,
    Recorded,
    Shown,
    TerminalEvent,
    Thanked,
    from_json,
)
from simulator.touch import WAIT_MS, FingerChannel

E = TypeVar("E", bound=TerminalEvent)

__all__ = [
    "AmqttBroker",
    "BrokerProcess",
    "ChildProcess",
    "HubProcess",
    "MosquittoBroker",
    "ProcessError",
    "TerminalProcess",
    "TerminalWatch",
    "free_port",
    "wait_until",
]

PYTHON = sys.executable


@functools.cache
def site_hub_key() -> tuple[Path, str]:
    """The hub key of the processes this harness starts, made once per run: (its file, the public
    signing key terminals pin). Sites made by the demo or by a test of pairing make their own."""
    from hub import identity

    folder = Path(tempfile.mkdtemp(prefix="pingjia-site-"))
    atexit.register(shutil.rmtree, folder, True)
    keys = identity.create(folder / "hub.key")
    return folder / "hub.key", keys.sign_hex


class ProcessError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.02) -> None:
    """Poll `condition` until it holds; ProcessError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise ProcessError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(poll_s)


def _spawn(
    argv: Sequence[str],
    *,
    log: Path | None,
    stdin: int | None = None,
    stdout: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    log_handle: IO[bytes] | int = subprocess.DEVNULL
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log_handle = open(log, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            list(argv),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else log_handle,
            stderr=log_handle,
            start_new_session=True,  # Ctrl-C reaches only the parent, which stops children in order
            env={**os.environ, **(env or {})},
        )
    finally:
        if not isinstance(log_handle, int):
            log_handle.close()


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes] | None, timeout_s: float = 10) -> None:
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _close_pipes(process)


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class ChildProcess:
    """A child we started: stopped politely (SIGTERM, then SIGKILL) or killed like a power cut."""

    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        _stop(self.process)

    def kill(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            _close_pipes(self.process)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class BrokerProcess(ChildProcess):
    kind = "broker"

    def __init__(self, port: int | None = None, *, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.log = log

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout_s: float = 15) -> BrokerProcess:
        self.process = _spawn(self.argv(), log=self.log, stdin=subprocess.PIPE)
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise ProcessError(f"{self.kind} exited with {process.returncode}; see {self.log}")
            return _port_open(self.port)

        wait_until(up, timeout_s, f"{self.kind} on port {self.port}")
        return self

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class MosquittoBroker(BrokerProcess):
    """Mosquitto with the project's configuration (hub/mosquitto.conf), on its own port and store.

    Started as root, Mosquitto switches to the user its `user` option names (by default its own
    `mosquitto`), which cannot write a test's folder: its store would never be saved, and a restart
    would restore nothing. So as root it is told to stay the user it was started as (or `user`);
    as anyone else it never switches.
    """

    kind = "mosquitto"

    def __init__(
        self,
        port: int | None = None,
        *,
        workdir: Path,
        log: Path | None = None,
        user: str | None = None,
        log_types: Sequence[str] = (),
    ) -> None:
        super().__init__(port, log=log or workdir / "mosquitto.log")
        self.workdir = workdir
        self.user = user
        self.log_types = list(log_types)  # beyond the configuration's: "debug" shows each CONNACK's session flag

    @staticmethod
    def available() -> bool:
        return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()

    def argv(self) -> list[str]:
        template = (resources.files("hub") / "mosquitto.conf").read_text(encoding="utf-8")
        lines = []
        for line in template.splitlines():
            if line.startswith("listener "):
                lines.append(f"listener {self.port} 127.0.0.1")
            elif line.startswith("persistence_location "):
                lines.append(f"persistence_location {self.workdir}/")
            else:
                lines.append(line)
        if os.geteuid() == 0:
            lines.append(f"user {self.user or 'root'}")
        lines += [f"log_type {kind}" for kind in self.log_types]
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return [binary, "-c", str(conf)]


class SiteBroker(BrokerProcess):
    """Mosquitto with a site's own configuration (`pingjia hub broker-config`: accounts, ACL)."""

    kind = "mosquitto"

    def __init__(self, conf: Path, port: int, *, log: Path | None = None) -> None:
        super().__init__(port, log=log or conf.parent / "mosquitto.log")
        self.conf = conf

    def argv(self) -> list[str]:
        return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf)]


class AmqttBroker(BrokerProcess):
    """The embedded Python broker (MQTT 3.1.1 only), for a machine with nothing installed."""

    kind = "amqtt"

    def argv(self) -> list[str]:
        return [PYTHON, "-m", "simulator.broker", "--port", str(self.port)]


class HubProcess(ChildProcess):
    def __init__(
        self,
        *,
        db: str,
        broker_url: str,
        log: Path | None = None,
        settings: Sequence[str] = (),
        client_id: str = "pingjia-hub",
        hub_key: Path | None = None,
        extra: Sequence[str] = (),
        watch_as: tuple[str, str] | None = None,
    ) -> None:
        """`watch_as`: the broker account (username, password) to watch for the hub's status with."""
        self.watch_as = watch_as
        self.db = db
        self.hub_key = hub_key or site_hub_key()[0]
        self.extra = list(extra)
        self.broker_url = broker_url
        self.log = log
        self.settings = list(settings)
        self.client_id = client_id
        self.started_ms = 0

    def start(self) -> HubProcess:
        argv = [
            PYTHON,
            "-m",
            "pingjia",
            "hub",
            "serve",
            "--db",
            self.db,
            "--broker",
            self.broker_url,
            "--client-id",
            self.client_id,
            "--hub-key",
            str(self.hub_key),
            "--lifeline",
            *self.extra,
        ]
        for assignment in self.settings:
            argv += ["--set", assignment]
        self.started_ms = time.time_ns() // 1_000_000
        self.process = _spawn(argv, log=self.log, stdin=subprocess.PIPE)
        return self

    def wait_online(self, timeout_s: float = 30) -> None:
        """Wait until the hub says (on its retained status topic) that it is subscribed and serving."""
        wait_hub_online(
            self.broker_url,
            self.client_id,
            timeout_s,
            process=self.process,
            log=self.log,
            started_ms=self.started_ms,
            watch_as=self.watch_as,
        )


def wait_hub_online(
    broker_url: str,
    client_id: str,
    timeout_s: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    started_ms: int = 0,
    watch_as: tuple[str, str] | None = None,
) -> None:
    """Wait for a hub worker's online status from a session begun at or after `started_ms` (a hub's
    session id carries its start time: protocol.session), so that the retained status of a hub
    killed a moment ago does not count."""
    from protocol import ProtocolError, StatusState, decode_status, hub_started_ms, hub_status_topic
    from runtime.link import Inbound
    from runtime.mqtt import MqttSession, parse_broker_url

    name = hub_status_topic(client_id)
    online = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, Inbound) and event.topic == name:
            try:
                status = decode_status(event.payload)
            except ProtocolError:
                return
            if status.state is StatusState.ONLINE and hub_started_ms(status.session) >= started_ms:
                online.set()

    watcher = MqttSession(
        url=parse_broker_url(broker_url),
        client_id=watch_as[0] if watch_as else f"watch-{os.getpid()}-{free_port()}",
        username=watch_as[0] if watch_as else None,
        password=watch_as[1] if watch_as else None,
        on_event=on_event,
        subscriptions=[(name, 1)],
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )
    watcher.start()
    try:

        def up() -> bool:
            if process is not None and process.poll() is not None:
                raise ProcessError(f"hub exited with {process.returncode}; see {log}")
            return online.is_set()

        wait_until(up, timeout_s, f"hub {client_id} to come online")
    finally:
        watcher.stop()


class TerminalWatch:
    """What a terminal reported (device.events), in order, and the state callers wait on
    (`wait_for`) instead of sleeping. A terminal process, or one running in this process, feeds it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.device = ""
        self.thanked: list[int] = []  # seqs thanked, across restarts
        self.recorded: dict[int, Recorded] = {}  # every record stored, by seq: kind, flags, staff
        self.thanked_at: dict[int, float] = {}  # seq -> time.monotonic() when the thanks was reported
        self.acked = 0
        self.online = False
        self.ready = False
        self.state = ""
        self.events: list[TerminalEvent] = []  # everything it reported, in order
        self._condition = threading.Condition()

    def take(self, event: TerminalEvent) -> None:
        """One more reported event (from any thread)."""
        with self._condition:
            self.events.append(event)
            self._follow(event)
            self._condition.notify_all()

    def _follow(self, event: TerminalEvent) -> None:
        match event:
            case Ready():
                self.device, self.state, self.ready = event.device, event.state, True
                self.acked = max(self.acked, event.acked)
            case Thanked():
                self.thanked.append(event.seq)
                self.thanked_at[event.seq] = time.monotonic()
            case Recorded():
                self.recorded[event.seq] = event
            case Acked():
                self.acked = max(self.acked, event.upto)
            case HubBehind():  # the hub lost records it had acked: they go again
                self.acked = event.resend_from - 1
            case Shown():
                self.state = event.state
            case Online():
                self.online = True
            case Offline():
                self.online = False

    def of(self, kind: type[E]) -> list[E]:
        """What it reported of one kind, in order."""
        with self._condition:
            return [event for event in self.events if isinstance(event, kind)]

    def errors(self) -> list[str]:
        return [event.detail for event in self.of(Error)]

    def _gone(self) -> str | None:
        """Why the terminal can no longer report anything, if so."""
        return None

    def wait_for(self, predicate: Callable[[Any], object], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProcessError(f"{self.device or self.name}: timed out waiting for {what}")
                gone = self._gone()
                if gone is not None and not predicate(self):
                    raise ProcessError(f"{self.device or self.name}: {gone} while waiting for {what}")
                self._condition.wait(min(remaining, 0.5))

    def notify(self) -> None:
        with self._condition:
            self._condition.notify_all()


class TerminalProcess(TerminalWatch):
    """A terminal (`pingjia device run --events jsonl`) driven through its stdin (and, with
    `keys=panel` in its settings, through a key panel)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        broker_url: str | None,
        settings: Sequence[str] = (),
        log: Path | None = None,
        on_event: Callable[[TerminalProcess, TerminalEvent], None] | None = None,
        clock_offset_file: Path | None = None,
        hub_key: str | None = None,
        fingers: Path | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """`hub_key`: the hub key to pin (hex); default: this harness's site key when there is a
        broker, none for a terminal that pairs (or stores only). `fingers`: a touchscreen terminal
        (`keys=touch` in its settings) gets a finger on this named pipe (simulator.touch), which
        `tap` and `card_reader` write to. `args`: more options of `device run` (`--screen 800x480`);
        `env`: more environment (SDL's drivers)."""
        super().__init__(str(data_dir))
        self.fingers = FingerChannel(fingers) if fingers is not None else None
        self.args = list(args)
        self.env = dict(env or {})
        self.hub_key = hub_key if hub_key is not None else (site_hub_key()[1] if broker_url else None)
        self.data_dir = data_dir
        self.broker_url = broker_url
        self.settings = list(settings)
        self.log = log
        self.on_event = on_event
        self.clock_offset_file = clock_offset_file
        self.process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> TerminalProcess:
        # A simulated clock or finger needs the simulator's runner of the same terminal; else the product's command.
        runner = ["simulator.terminal"]
        if self.clock_offset_file is not None:
            runner += ["--clock-offset-file", str(self.clock_offset_file)]
        if self.fingers is not None:
            runner += ["--fingers", str(self.fingers.path)]
        argv = [
            PYTHON,
            "-m",
            *(runner if len(runner) > 1 else ["pingjia"]),
            "device",
            "run",
            "--data",
            str(self.data_dir),
            "--events",
            "jsonl",
            "--lifeline",
            "--log-level",
            "INFO",
        ]
        if self.broker_url:
            argv += ["--broker", self.broker_url]
        if self.hub_key:
            argv += ["--hub-key", self.hub_key]
        for assignment in self.settings:
            argv += ["--set", assignment]
        argv += self.args
        with self._condition:
            self.ready = False
            self.online = False
        self.process = _spawn(argv, log=self.log, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env)
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        return self

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            try:
                event = from_json(json.loads(raw))
            except (ValueError, TypeError):
                continue
            if event is None:
                continue
            self.take(event)
            if self.on_event is not None:
                self.on_event(self, event)
        self.notify()

    def _gone(self) -> str | None:
        if self.process is not None and self.process.poll() is not None:
            return f"exited ({self.process.returncode}); see {self.log}"
        return None

    def send(self, line: str) -> bool:
        """Write one input line; False if the terminal is gone."""
        if self.process is None or self.process.stdin is None:
            return False
        try:
            self.process.stdin.write(line.encode("utf-8") + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def press(self, key: int) -> bool:
        return self.send(str(key))

    def invite(self, ticket: str | None = None) -> bool:
        return self.send("invite" if ticket is None else f"invite {ticket}")

    def login(self, staff: str) -> bool:
        return self.send(f"login {staff}")

    def tap(self, ident: str, wait_ms: int = WAIT_MS) -> bool:
        """A finger on the touchscreen's control `ident` once it shows (simulator.touch); False
        without a finger or once the pipe is closed."""
        return self.fingers is not None and self.fingers.tap(ident, wait_ms)

    def card_reader(self, uid: bytes | str) -> bool:
        """A staff card on the touchscreen's USB card reader (simulator.touch)."""
        return self.fingers is not None and self.fingers.card(uid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def last_thanked(self) -> int:
        with self._condition:
            return max(self.thanked, default=0)

    def quit(self, timeout_s: float = 15) -> int | None:
        """Ask the terminal to stop cleanly and wait for it."""
        if self.process is None:
            return None
        self.send("quit")
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._join()
        return code

    def kill(self) -> None:
        """Power cut: SIGKILL, no chance to flush or say goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._join()

    def close_fingers(self) -> None:
        """Close the simulator's end of the finger pipe (after the last `quit`)."""
        if self.fingers is not None:
            self.fingers.close()

    def _join(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self.process is not None:
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
