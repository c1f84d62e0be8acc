"""`pingjia chaos` / `make chaos`: a hall under faults, and proof that nothing was lost or doubled.

Real terminals (each behind its own TCP proxy, on its own small disk, with its own clock), a real
Mosquitto with the project's configuration and the hub, while customers keep coming. At random
moments, many times over: the broker is restarted (its sessions and queued messages saved and
restored, which a probe session checks) or killed (restoring its last autosave); a terminal's network is cut; a
terminal loses power (SIGKILL) mid-write and starts again; the hub is killed mid-ingest and
restarted; a terminal's disk fills up and is freed; a terminal's clock jumps; and a replayer
publishes rating messages again, later and twice (duplicated and reordered deliveries).

At the end the clerks log out, the faults stop, the terminals drain, and the scenario compares
every terminal's outbox and every thanked rating with what the hub stored. It prints one JSON
object and fails unless `lost` and `duplicated` are 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device import identity
from device.events import ClockJumped, Offline
from device.outbox import Outbox
from hub import registry
from hub.queries import Reader
from hub.writer import Writer
from simulator.netfaults import CutProxy, Replayer, SessionProbe
from simulator.processes import BrokerProcess, HubProcess, MosquittoBroker, ProcessError, TerminalProcess

__all__ = ["Chaos"]

FAULTS = ("broker_restart", "broker_crash", "network_cut", "device_power_cut", "hub_kill", "disk_full", "clock_jump")
_TERMINAL_SETTINGS = [
    "thank_you_ms=0",
    "amend_window_s=0",
    "misuse_interval_s=0",
    "burst_presses=1000",
    "invite_window_s=3",
    "ack_timeout_s=2",
    "ack_timeout_max_s=4",
    "reconnect_min_s=0.1",
    "reconnect_max_s=1",
    "heartbeat_s=2",
]


class SmallDisk:
    """A few MiB of tmpfs for one terminal's data directory: a disk that really fills up."""

    def __init__(self, path: Path, mib: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        self.mounted = done.returncode == 0
        self.why = done.stderr.strip()
        self.filler = path / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\xff" * 65536)
        except OSError:
            pass  # full
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], check=False)


@dataclass
class Station:
    """One counter of the hall: its terminal, proxy, disk and clock file."""

    terminal: TerminalProcess
    proxy: CutProxy
    disk: SmallDisk | None
    clock_file: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    tickets: int = 0


class Chaos:
    def __init__(self, *, seconds: float, devices: int, workdir: Path, seed: int | None = None) -> None:
        self.seconds = seconds
        self.devices = devices
        self.workdir = workdir
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.faults: Counter[str] = Counter()
        self.broker_checks: Counter[str] = Counter()
        self.skipped: dict[str, str] = {}
        self._halt = threading.Event()

    # -- the run -------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        db = f"sqlite:///{self.workdir / 'hub.sqlite3'}"
        writer = Writer.open(db)
        writer.write(registry.add_staff, "E1", name="王芳", department="综合受理")
        broker = MosquittoBroker(workdir=self.workdir / "mosquitto", log_types=["information", "debug"]).start()
        self.probe = SessionProbe(broker.port)
        self.probe.arm()
        hub = HubProcess(db=db, broker_url=broker.url, log=self.workdir / "hub.log").start()
        hub.wait_online()
        counters = [self._counter(index, writer, broker.port) for index in range(self.devices)]
        writer.close()
        replayer = Replayer(broker.port, share=0.05, delay_s=(0.2, 5.0), rng=random.Random(self.seed + 1)).start()
        customers = threading.Thread(target=self._customers, args=(counters,), daemon=True)
        try:
            for counter in counters:
                counter.terminal.wait_for(lambda t: t.online, 60, "the terminal to connect")
                counter.terminal.login("E1")
            customers.start()
            deadline = time.monotonic() + self.seconds
            round_: list[str] = []
            while time.monotonic() < deadline:
                if not round_:  # every kind of fault in each round, in a random order
                    round_ = self.rng.sample(FAULTS, len(FAULTS))
                self._fault(round_.pop(), counters, broker, hub)
                time.sleep(self.rng.uniform(0.5, 2.0))  # time between faults, part of the scenario
            self._halt.set()
            customers.join()
            replayer.stop()
            self.faults["replayed_deliveries"] = replayer.replayed
            return self._settle(counters, hub, db, started)
        finally:
            self._halt.set()
            for counter in counters:
                counter.terminal.quit()
                counter.proxy.stop()
                if counter.disk is not None:
                    counter.disk.unmount()
            hub.stop()
            broker.stop()

    def _counter(self, index: int, writer: Writer, broker_port: int) -> Station:
        name = f"c{index + 1:02d}"
        disk: SmallDisk | None = SmallDisk(self.workdir / "disks" / name, 16)
        if disk is not None and not disk.mounted:
            self.skipped["disk_full"] = f"needs permission to mount a tmpfs ({disk.why})"
            disk = None
        folder = (disk.path if disk is not None else self.workdir / "disks" / name) / "data"
        made = identity.create(folder, name)
        writer.write(
            registry.add_device, made.device, made.public_hex, department="综合受理", counter=f"{index + 1}号窗口"
        )
        proxy = CutProxy(broker_port).start()
        clock_file = self.workdir / f"{name}.clock"
        clock_file.write_text("0")
        terminal = TerminalProcess(
            folder,
            broker_url=f"mqtt://127.0.0.1:{proxy.port}",
            settings=_TERMINAL_SETTINGS,
            log=self.workdir / f"{name}.log",
            clock_offset_file=clock_file,
        )
        terminal.start()
        return Station(terminal=terminal, proxy=proxy, disk=disk, clock_file=clock_file)

    def _customers(self, counters: list[Station]) -> None:
        """Each counter serves a customer every ~100 ms: invite, and (mostly) a press."""
        rng = random.Random(self.seed + 2)
        while not self._halt.wait(0.02):
            counter = rng.choice(counters)
            with counter.lock:  # not while the terminal is being restarted
                counter.tickets += 1
                counter.terminal.invite(f"T{counter.tickets}")
                if rng.random() < 0.9:
                    counter.terminal.press(rng.choice((5, 5, 4, 4, 3)))

    # -- faults --------------------------------------------------------------------------------------

    def _fault(self, kind: str, counters: list[Station], broker: BrokerProcess, hub: HubProcess) -> None:
        counter = self.rng.choice(counters)
        if kind == "broker_restart":  # stopped (it saves its store) and started again: nothing may be forgotten
            payload = f"queued before restart {self.faults[kind] + 1}".encode()
            queued = self.probe.queue(payload)
            broker.stop()
            time.sleep(self.rng.uniform(0.2, 2.0))  # the broker is away this long
            broker.start()
            if queued:
                self.broker_checks["queued"] += 1
                self.broker_checks["queued_restored"] += self.probe.collect(payload)
        elif kind == "broker_crash":  # killed: it restores what it last saved (autosave_interval)
            broker.kill()
            time.sleep(self.rng.uniform(0.2, 2.0))
            broker.start()
            self.probe.arm()  # a session made after the last save is gone: make it again
        elif kind == "network_cut":
            counter.proxy.cut(self.rng.uniform(0.5, 4.0))
        elif kind == "device_power_cut":
            with counter.lock:
                counter.terminal.kill()
                counter.terminal.start()
                counter.terminal.wait_for(lambda t: t.ready, 60, "the terminal to start again")
        elif kind == "hub_kill":
            hub.kill()
            hub.start()
        elif kind == "disk_full":
            if counter.disk is None:
                return
            counter.disk.fill()
            threading.Timer(self.rng.uniform(1.0, 4.0), counter.disk.free).start()
        elif kind == "clock_jump":
            counter.clock_file.write_text(str(self.rng.choice((-1, 1)) * self.rng.randint(60_000, 3 * 86_400_000)))
        self.faults[kind] += 1

    # -- the verdict ---------------------------------------------------------------------------------

    def _broker_log(self) -> dict[str, int]:
        """What the broker's own log says of its restarts: stores saved, errors (a store it could
        not write), and the hub's session found again at each reconnect (CONNACK's session flag)."""
        saves, errors, epoll, resumed, fresh = _count_lines(
            self.workdir / "mosquitto" / "mosquitto.log",
            "Saving in-memory database",
            "Error",
            "Error in epoll",  # Mosquitto 2.0's note of a socket that closed under it: not about its store
            "Sending CONNACK to pingjia-hub (1,",
            "Sending CONNACK to pingjia-hub (0,",
        )
        return {
            "saves": saves,
            "errors": errors - epoll,
            "hub_session_resumed": resumed,
            "hub_session_new": fresh,
            **dict(sorted(self.broker_checks.items())),
        }

    def _settle(self, counters: list[Station], hub: HubProcess, db: str, started: float) -> dict[str, Any]:
        for counter in counters:
            if counter.disk is not None:
                counter.disk.free()
            if not counter.terminal.alive():
                counter.terminal.start()
        if not hub.alive():
            hub.start()
        for counter in counters:
            terminal = counter.terminal
            terminal.wait_for(lambda t: t.ready, 60, "the terminal")
            terminal.send("logout")  # the clerk leaves: every press before this has been handled
            terminal.wait_for(lambda t: t.state in ("closed", "out_of_service"), 60, "the terminal to close")
        for counter in counters:
            terminal = counter.terminal
            terminal.wait_for(lambda t: t.state == "closed", 60, "the terminal back in service")
            head = _outbox_head(terminal)
            terminal.wait_for(_acked_at_least(head), 180, f"the hub to ack all {head} records")
        reader = Reader.open(db)
        thanked = stored = recorded = lost = duplicated = missing_from_outbox = 0
        for counter in counters:
            terminal = counter.terminal
            seqs = set(reader.stored_seqs(terminal.device))
            outbox_seqs = _outbox_seqs(terminal)
            mine = set(terminal.thanked)
            thanked += len(mine)
            recorded += len(outbox_seqs)
            stored += len(seqs)
            lost += len(mine - seqs) + len(outbox_seqs - seqs)
            missing_from_outbox += len(mine - outbox_seqs)
            # Every service has its own ticket: one stored twice (under two seqs) was counted twice.
            doubled = reader.tickets_stored_twice(terminal.device)
            duplicated += int(doubled) + len(seqs - outbox_seqs)
        rejects = reader.reject_counts()
        reader.close()
        seen: Counter[str] = Counter()
        for counter in counters:
            terminal = counter.terminal
            seen["offline"] += len(terminal.of(Offline))
            seen["clock_jump"] += len(terminal.of(ClockJumped))
            seen["out_of_service"] += sum("out of service" in detail for detail in terminal.errors())
        return {
            "thanked": thanked,
            "recorded": recorded,
            "stored": stored,
            "lost": lost + missing_from_outbox,
            "duplicated": duplicated,
            "faults": {**dict(sorted(self.faults.items())), **{f"{k}_skipped": v for k, v in self.skipped.items()}},
            "terminals_saw": {
                "offline": seen["offline"],
                "out_of_service": seen["out_of_service"],
                "clock_jump": seen["clock_jump"],
            },
            "hub_rejects": rejects,
            "broker": self._broker_log(),
            "devices": self.devices,
            "seconds": round(time.monotonic() - started, 1),
            "seed": self.seed,
        }


def _count_lines(path: Path, *needles: str) -> list[int]:
    counts = [0] * len(needles)
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            for index, needle in enumerate(needles):
                counts[index] += needle in line
    return counts


def _acked_at_least(seq: int) -> Any:
    return lambda terminal: terminal.acked >= seq


def _outbox_path(terminal: TerminalProcess) -> Path:
    return terminal.data_dir / identity.OUTBOX_FILE


def _outbox_head(terminal: TerminalProcess) -> int:
    outbox = Outbox(_outbox_path(terminal), device=terminal.device, create=False)
    try:
        return outbox.head[0]
    finally:
        outbox.close()


def _outbox_seqs(terminal: TerminalProcess) -> set[int]:
    outbox = Outbox(_outbox_path(terminal), device=terminal.device, create=False)
    try:
        outbox.verify_chain()
        return {record.seq for record in outbox.records()}
    finally:
        outbox.close()


def main(seconds: float, devices: int, workdir: Path, seed: int | None) -> int:
    chaos = Chaos(seconds=seconds, devices=devices, workdir=workdir, seed=seed)
    try:
        result = chaos.run()
    except ProcessError as exc:
        print(json.dumps({"error": str(exc), "seed": chaos.seed, "workdir": str(workdir)}))
        return 1
    print(json.dumps(result, ensure_ascii=False))
    with contextlib.suppress(OSError):
        (workdir / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1
