"""`pingjia bench`: the figures the issues name, measured on this machine, as one JSON object.

How each figure is measured is written in docs/benchmarks.md. Benchmarks use real processes, a real
Mosquitto with the project's configuration, and files on the working directory's disk (not tmpfs),
because fsync cost is what they are about.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from device.outbox import Outbox
from protocol import Kind, Rating, SigningKey

__all__ = ["run"]

Result = dict[str, Any]


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _builder(key: SigningKey, now: Callable[[], int]) -> Callable[[int, str], Rating]:
    def build(seq: int, prev: str) -> Rating:
        stamp = now()
        return Rating(
            device="bench",
            seq=seq,
            kind=Kind.PRESS,
            t=stamp,
            boot="bench-boot",
            mono=stamp,
            fw="0.1.0",
            prev=prev,
            staff="S001",
            score=5,
        ).signed(key)

    return build


def press_to_durable(workdir: Path, presses: int) -> Result:
    """Build, sign and commit (full fsync) one record per press, as the terminal does; ms per press."""
    outbox = Outbox(workdir / "durable.sqlite3", device="bench")
    build = _builder(SigningKey.generate(), lambda: time.time_ns() // 1_000_000)
    samples = []
    for _ in range(presses):
        started = time.perf_counter()
        outbox.append(build, now_ms=0)
        samples.append((time.perf_counter() - started) * 1000)
    outbox.close()
    return {
        "press_to_durable_p50_ms": round(statistics.median(samples), 3),
        "press_to_durable_p99_ms": round(_percentile(samples, 0.99), 3),
        "press_to_durable_max_ms": round(max(samples), 3),
    }


def _fill(path: Path, rows: int, body: bytes) -> None:
    """Put `rows` records into an outbox file quickly (one transaction), chained head last."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO records(seq, body, hash, created_ms) VALUES (?, ?, ?, 0)",
        ((seq, body, f"{seq:064x}") for seq in range(1, rows + 1)),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def outbox_growth(workdir: Path, sizes: tuple[int, int], appends: int) -> Result:
    """Median cost of one more append (signed record, full fsync) to a small and a large outbox.

    Appends alternate between the two files so that whatever else the machine does weighs on both
    alike. Measured again without fsync (synchronous=OFF), which isolates the b-tree's share.
    """
    key = SigningKey.generate()
    build = _builder(key, lambda: 1_763_800_000_000)
    body = build(1, "0" * 64).canonical()
    paths = []
    for rows in sizes:
        path = workdir / f"growth-{rows}.sqlite3"
        Outbox(path, device="bench").close()
        _fill(path, rows, body)
        paths.append(path)
    result: Result = {}
    for sync in ("full", "off"):
        outboxes = [Outbox(path, device="bench") for path in paths]
        samples: list[list[float]] = [[] for _ in paths]
        for outbox in outboxes:
            if sync == "off":
                outbox._db.execute("PRAGMA synchronous=OFF")
        for _ in range(appends):
            for index, outbox in enumerate(outboxes):
                started = time.perf_counter()
                outbox.append(build, now_ms=0)
                samples[index].append((time.perf_counter() - started) * 1_000_000)
        for outbox in outboxes:
            outbox.close()
        suffix = "" if sync == "full" else "_nosync"
        medians = [statistics.median(column) for column in samples]
        for rows, median in zip(sizes, medians, strict=True):
            result[f"outbox_append_us_{_size_label(rows)}{suffix}"] = round(median, 1)
        result[f"outbox_append_ratio{suffix}"] = round(medians[1] / medians[0], 3)
    for path in paths:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    return result


def _size_label(rows: int) -> str:
    return f"{rows // 1_000_000}m" if rows >= 1_000_000 else f"{rows // 1_000}k"


def _registered_terminal(workdir: Path, device: str) -> tuple[str, Any]:
    """A hub database under `workdir` and a terminal identity registered in it: (db url, identity)."""
    from device import identity
    from hub import registry
    from hub.writer import Writer

    db = f"sqlite:///{workdir / 'hub.sqlite3'}"
    made = identity.create(workdir / "terminal", device)
    with Writer.open(db) as writer:
        writer.write(registry.add_device, made.device, made.public_hex, department="bench")
    return db, made


def press_to_hub(workdir: Path, presses: int, pace_s: float) -> Result:
    """Live ratings through Mosquitto on loopback: from the key line written to the terminal until
    the terminal holds the hub's ack for it (an upper bound of press-to-stored: the ack follows the
    commit)."""
    from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess

    if not MosquittoBroker.available():
        return {"press_to_hub_p99_ms": None, "press_to_hub_note": "mosquitto not installed"}
    db, made = _registered_terminal(workdir, "bench-01")
    broker = MosquittoBroker(workdir=workdir / "mosquitto").start()
    hub = HubProcess(db=db, broker_url=broker.url, log=workdir / "hub.log").start()
    terminal = TerminalProcess(
        made.data_dir, broker_url=broker.url, settings=["thank_you_ms=0"], log=workdir / "terminal.log"
    )
    try:
        hub.wait_online()
        terminal.start()
        terminal.wait_for(lambda t: t.online, 30, "the terminal to connect")
        terminal.login("S001")
        samples = []
        for _ in range(presses):
            base = terminal.acked
            started = time.perf_counter()
            terminal.press(5)
            terminal.wait_for(_acked_past(base), 10, "the ack")
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(pace_s)  # customers come one at a time
    finally:
        terminal.quit()
        hub.stop()
        broker.stop()
    return {
        "press_to_hub_p50_ms": round(statistics.median(samples), 2),
        "press_to_hub_p99_ms": round(_percentile(samples, 0.99), 2),
        "press_to_hub_max_ms": round(max(samples), 2),
    }


def _acked_past(seq: int) -> Callable[[Any], bool]:
    return lambda terminal: bool(terminal.acked > seq)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _cpu_split_s(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far (in clock ticks: 10 ms steps)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _thread_cpu_ns(pid: int) -> dict[str, int]:
    """Nanoseconds on a CPU so far, by thread name ("main" for the process's first thread), from
    the scheduler's own count: exact, where /proc/PID/stat counts in 10 ms ticks."""
    times: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
            ran = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between the listing and the read
        times[name] = times.get(name, 0) + ran
    if "main" not in times:  # a kernel without per-thread scheduler counts: no figure, not a zero
        raise RuntimeError(f"/proc/{pid}/task/{pid}/schedstat cannot be read")
    return times


def _share(user: float, system: float) -> float:
    return user / (user + system) if user + system > 0 else 0.0


def _ms_per(before: dict[str, int], after: dict[str, int], count: int) -> dict[str, float]:
    spent = {name: (ns - before.get(name, 0)) / 1e6 / count for name, ns in after.items()}
    spent["total"] = sum(spent.values())
    return spent


def _led_change(panel: Any, since: int, leds: tuple[Any, ...]) -> Callable[[], bool]:
    return lambda: any(state == leds for _, state in panel.led_log[since:])


def _idle_after(thanks: int) -> Callable[[Any], bool]:
    return lambda terminal: bool(terminal.state == "idle" and len(terminal.thanked) >= thanks)


_CPU_BATCHES = 10


def _rating_cycle(terminal: Any, panel: Any, index: int, blink: tuple[Any, ...], off: tuple[Any, ...]) -> float:
    """One counter cycle (invite key, customer key, back to idle); ms from key-down to thank-you LEDs."""
    from protocol.panel import INVITE_KEY

    panel.press(INVITE_KEY)
    panel.wait_for(lambda: panel.leds == blink, 5, "the invite LEDs")
    changes = len(panel.led_log)
    started = time.monotonic()
    panel.key_down(3 + index % 3)
    panel.wait_for(_led_change(panel, changes, off), 5, "the thank-you LEDs")
    shown = next(at for at, leds in panel.led_log[changes:] if leds == off)
    panel.key_up(3 + index % 3)
    terminal.wait_for(_idle_after(index + 1), 5, "idle again")
    return float(shown - started) * 1000


def terminal_figures(workdir: Path, ratings: int) -> Result:
    """A real terminal process with its key panel (the pty emulator) and a live link to a hub:
    resident memory, CPU time per rating, and key-down to LED feedback.

    Each rating is the counter's whole cycle: the clerk's invite key, the LEDs blink, a customer
    key; the feedback time runs from the customer's key-down frame leaving the panel until the
    panel has the thank-you LEDs, which the terminal sets only after the rating is durable.
    """
    from protocol.panel import LedState
    from simulator.panel import PanelEmulator
    from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess

    if not MosquittoBroker.available():
        return {"device_rss_mb": None, "terminal_note": "mosquitto not installed"}
    db, made = _registered_terminal(workdir, "bench-t")
    blink, off = (LedState.BLINK,) * 5, (LedState.OFF,) * 5
    broker = MosquittoBroker(workdir=workdir / "mosquitto").start()
    hub = HubProcess(db=db, broker_url=broker.url, log=workdir / "hub.log").start()
    panel = PanelEmulator(link=workdir / "panel")
    panel.start()
    terminal = TerminalProcess(
        made.data_dir,
        broker_url=broker.url,
        log=workdir / "terminal.log",
        settings=[
            "keys=panel",
            f"panel_port={(workdir / 'panel').resolve()}",
            "thank_you_ms=0",
            "amend_window_s=0",
            "misuse_interval_s=0",
            "burst_presses=1000",
        ],
    )
    try:
        hub.wait_online()
        terminal.start()
        terminal.wait_for(lambda t: t.online and t.ready, 30, "the terminal to connect")
        terminal.login("S001")
        terminal.wait_for(lambda t: t.state == "idle", 10, "the clerk logged in")
        assert terminal.process is not None
        pid = terminal.process.pid
        user_before, system_before = _cpu_split_s(pid)
        samples: list[float] = []
        batches: list[dict[str, float]] = []  # CPU ms per rating, by thread, for each batch
        batch = max(1, ratings // _CPU_BATCHES)
        for first in range(0, ratings, batch):
            last = min(first + batch, ratings)
            before = _thread_cpu_ns(pid)
            for index in range(first, last):
                samples.append(_rating_cycle(terminal, panel, index, blink, off))
            batches.append(_ms_per(before, _thread_cpu_ns(pid), last - first))
        user_after, system_after = _cpu_split_s(pid)
        terminal.wait_for(lambda t: t.acked >= ratings, 30, "the hub's acks")
        rss = _rss_mb(pid)
    finally:
        terminal.quit()
        panel.stop()
        hub.stop()
        broker.stop()
    return {
        "device_rss_mb": round(rss, 1),
        # The median batch: one slow batch (another process took the CPU's cache) does not move it.
        "cpu_ms_per_rating": round(statistics.median(b["total"] for b in batches), 3),
        "cpu_ms_per_rating_batches": [round(b["total"], 3) for b in batches],
        "cpu_ms_per_rating_by_thread": {
            name: round(statistics.median(b.get(name, 0.0) for b in batches), 3)
            for name in sorted({name for b in batches for name in b} - {"total"})
        },
        "cpu_user_share": round(_share(user_after - user_before, system_after - system_before), 2),
        "key_to_led_p50_ms": round(statistics.median(samples), 2),
        "key_to_led_p99_ms": round(_percentile(samples, 0.99), 2),
        "key_to_led_max_ms": round(max(samples), 2),
    }


def transport(samples: int = 3) -> Result:
    """The ceilings the hub is measured against: Ed25519 checks on one core, and bare paho ->
    Mosquitto -> paho (QoS 1, 200-byte messages; the median of `samples` runs: it varies)."""
    from simulator.loadgen import broker_ceiling, verify_rate
    from simulator.processes import MosquittoBroker

    result: Result = {"verify_per_s_1core": round(verify_rate(2.0))}
    if not MosquittoBroker.available():
        return {**result, "broker_msgs_per_s": None}
    with tempfile.TemporaryDirectory(dir="var/bench") as scratch:
        broker = MosquittoBroker(workdir=Path(scratch)).start()
        try:
            runs = sorted(broker_ceiling(broker.port) for _ in range(samples))
        finally:
            broker.stop()
    return {
        **result,
        "broker_msgs_per_s": round(runs[len(runs) // 2]),
        "broker_msgs_per_s_runs": [round(r) for r in runs],
    }


def _hub_with_fleet(workdir: Path, fleet: Any, name: str, settings: Sequence[str] = ()) -> Result:
    from hub.writer import Writer
    from simulator.processes import HubProcess, MosquittoBroker

    db = f"sqlite:///{workdir / (name + '.sqlite3')}"
    with Writer.open(db) as writer:
        fleet.register(writer)
    broker = MosquittoBroker(workdir=workdir / f"mosquitto-{name}").start()
    hub = HubProcess(
        db=db, broker_url=broker.url, log=workdir / f"{name}.log", settings=["receive_maximum=10000", *settings]
    ).start()
    try:
        hub.wait_online()
        result: Result = fleet.run(broker.port)
        return result
    finally:
        hub.stop()
        broker.stop()


def hub_reconnect(workdir: Path, *, outage_s: float, samples: int) -> Result:
    """Seconds from a broker coming back (its port open) to the hub serving again (its new online
    status heard), after the broker was away `outage_s` (long enough for the backoff to reach its
    cap), `samples` times: the wait is random below the cap, so one sample says little."""
    from hub.config import HubConfig
    from protocol import ProtocolError, StatusState, decode_status, hub_status_topic
    from runtime.link import Inbound
    from runtime.mqtt import MqttSession, parse_broker_url
    from simulator.processes import HubProcess, MosquittoBroker

    if not _mosquitto():
        return {"hub_reconnect_s": None}
    db = f"sqlite:///{workdir / 'reconnect.sqlite3'}"
    broker = MosquittoBroker(workdir=workdir / "mosquitto-reconnect").start()
    hub = HubProcess(db=db, broker_url=broker.url, log=workdir / "reconnect-hub.log").start()
    sessions: list[int] = []
    heard = threading.Condition()

    def on_event(event: object) -> None:
        if isinstance(event, Inbound) and event.payload:
            try:
                status = decode_status(event.payload)
            except ProtocolError:
                return
            if status.state is StatusState.ONLINE:
                with heard:
                    sessions.append(status.session)
                    heard.notify_all()

    def newest_after(before: int) -> int:
        """Connect a watcher (at once: it has not failed yet) and wait for a newer online status."""
        watcher = MqttSession(
            url=parse_broker_url(broker.url),
            client_id=f"reconnect-watch-{time.monotonic_ns()}",
            on_event=on_event,
            subscriptions=[(hub_status_topic(hub.client_id), 1)],
        )
        watcher.start()
        try:
            with heard:
                if not heard.wait_for(lambda: max(sessions, default=-1) > before, 60):
                    raise RuntimeError("the hub did not come back within 60 s of the broker")
                return max(sessions)
        finally:
            watcher.stop()

    seconds = []
    try:
        hub.wait_online()
        session = newest_after(-1)
        for _ in range(samples):
            broker.kill()
            time.sleep(outage_s)  # the hub keeps trying; its waits grow to reconnect_max_s
            broker.start()
            came_back = time.monotonic()
            session = newest_after(session)
            seconds.append(time.monotonic() - came_back)
    finally:
        hub.stop()
        broker.stop()
    return {
        "hub_reconnect_s": round(max(seconds), 2),
        "hub_reconnect_s_runs": [round(value, 2) for value in seconds],
        "hub_reconnect_outage_s": outage_s,
        "hub_reconnect_max_s": HubConfig().reconnect_max_s,
    }


def pair_to_first_rating(workdir: Path, *, samples: int) -> Result:
    """Seconds from a technician's `pingjia tech pair` (the terminal on, showing its code) to the
    first rating of the paired terminal stored at the hub: a closed site (Mosquitto with accounts and
    an ACL, written by `pingjia hub broker-config`), the terminal's own account made and the broker
    reloaded by the tool, the clerk logged in and one press. `samples` terminals, one after another."""
    from device.events import PairingCodeShown
    from hub import registry
    from hub.queries import Reader
    from hub.writer import Writer
    from simulator.cable import Cable
    from simulator.processes import wait_until
    from simulator.site import Site

    if not _mosquitto():
        return {"pair_to_first_rating_s": None}
    db = f"sqlite:///{workdir / 'hub.sqlite3'}"
    site = Site(workdir / "site", db=db, mosquitto=True).setup()
    with Writer.open(db) as writer:
        writer.write(registry.add_staff, "S001", name="王芳", department="综合受理")
    hub = site.hub(log=workdir / "hub.log").start()
    seconds = []
    try:
        hub.wait_online()
        for index in range(samples):
            cable = Cable(workdir / f"console-{index}")
            terminal = site.terminal(
                workdir / f"t{index}", cable, settings=["thank_you_ms=0", "mode=open"], log=workdir / f"t{index}.log"
            ).start()
            try:
                terminal.wait_for(lambda t: t.of(PairingCodeShown), 30, "the pairing code")
                started = time.monotonic()
                device = str(site.pair(terminal, cable, department="综合受理", counter=f"{index + 1}号窗口")["device"])
                terminal.login("S001")
                terminal.press(5)
                with Reader.open(db) as reader:
                    wait_until(lambda: reader.stored_after(device, 0) >= 1, 60, "the first rating stored")  # noqa: B023
                seconds.append(time.monotonic() - started)
            finally:
                terminal.quit()
                cable.close()
    finally:
        hub.stop()
        site.stop()
    return {
        "pair_to_first_rating_s": round(max(seconds), 2),
        "pair_to_first_rating_s_runs": [round(value, 2) for value in seconds],
        "pair_to_first_rating_goal_s": 30,
    }


def broker_restart_stall(workdir: Path, *, terminals: int, seconds_after: float) -> Result:
    """How long records wait after a broker restart, with two hub workers on an MQTT 5 shared
    subscription and PostgreSQL. Mosquitto drops what a shared subscription has no subscriber for
    between its restart and the workers' resubscription; the terminals must notice (gap repair, a hub
    coming online) instead of waiting for their ack timeout (10 s, doubling). The worst order is
    arranged: the terminals are back before the workers. Presses keep coming throughout.

    `broker_restart_stall_s`: the longest a record waited for its ack after both workers were back
    (thanked, or the workers' return if later, to the ack); `broker_restart_wait_max_s`: the longest
    wait at all, the workers' absence included."""
    import uuid

    pg = os.environ.get("PINGJIA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
    if not _mosquitto():
        return {"broker_restart_stall_s": None}
    try:
        import psycopg

        admin = psycopg.connect(pg, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means the same here
        return {"broker_restart_stall_s": None, "broker_restart_stall_note": f"PostgreSQL not reachable: {exc}"}
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        return _restart_stall(
            workdir, f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}", terminals, seconds_after
        )
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def _restart_stall(workdir: Path, db: str, terminals: int, seconds_after: float) -> Result:
    from device import identity
    from device.events import Acked
    from hub import registry
    from hub.writer import Writer
    from protocol import ProtocolError, StatusState, decode_status
    from runtime.link import Inbound
    from runtime.mqtt import MqttSession, parse_broker_url
    from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess, site_hub_key, wait_hub_online

    acks: dict[str, list[tuple[float, int]]] = {}
    online: list[tuple[float, str, int]] = []  # (when, worker, session) of every online status heard
    lock = threading.Lock()

    def on_event(terminal: TerminalProcess, event: object) -> None:
        if isinstance(event, Acked):
            with lock:
                acks.setdefault(terminal.name, []).append((time.monotonic(), event.upto))

    def on_status(event: object) -> None:
        if isinstance(event, Inbound) and event.payload:
            try:
                status = decode_status(event.payload)
            except ProtocolError:
                return
            if status.state is StatusState.ONLINE:
                with lock:
                    online.append((time.monotonic(), status.device, status.session))

    with Writer.open(db, migrate=True) as writer:
        for index in range(terminals):
            made = identity.create(workdir / f"t{index}", f"stall-{index:02d}")
            writer.write(registry.add_device, made.device, made.public_hex, department="综合受理")
        writer.write(registry.add_staff, "S001", name="王芳", department="综合受理")
    broker = MosquittoBroker(workdir=workdir / "mosquitto").start()
    hub = HubProcess(
        db=db,
        broker_url=broker.url,
        log=workdir / "hub.log",
        hub_key=site_hub_key()[0],
        extra=["--workers", "2", "--share-group", "stall"],
        settings=["reconnect_min_s=1", "reconnect_max_s=2"],  # back after the terminals
    ).start()
    watcher = MqttSession(
        url=parse_broker_url(broker.url),
        client_id=f"stall-watch-{time.monotonic_ns()}",
        on_event=on_status,
        subscriptions=[("pingjia/hub/+/status", 1)],
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    settings = ["thank_you_ms=0", "mode=open", "misuse_interval_s=0", "burst_presses=1000"]
    settings += ["reconnect_min_s=0.05", "reconnect_max_s=0.2"]
    fleet = [
        TerminalProcess(
            workdir / f"t{index}",
            broker_url=broker.url,
            settings=settings,
            log=workdir / f"t{index}.log",
            on_event=on_event,
        )
        for index in range(terminals)
    ]
    try:
        for worker in (1, 2):
            wait_hub_online(broker.url, f"pingjia-hub-{worker}", 60, process=hub.process, log=hub.log)
        watcher.start()
        for terminal in fleet:
            terminal.start().wait_for(lambda t: t.online, 30, "online")
            terminal.login("S001")
        restarted, back = _press_through_restart(fleet, broker, seconds_after)
        for terminal in fleet:
            top = max(terminal.recorded)
            terminal.wait_for(lambda t: t.acked >= top, 120, "everything acked")  # noqa: B023
    finally:
        for terminal in fleet:
            terminal.quit()
        watcher.stop()
        hub.stop()
        broker.stop()
    with lock:
        return _stall_figures(fleet, dict(acks), list(online), restarted, back)


def _stall_figures(
    fleet: Sequence[Any],
    acks: dict[str, list[tuple[float, int]]],
    online: list[tuple[float, str, int]],
    restarted: float,
    back: float,
) -> Result:
    returns = []
    for name in ("pingjia-hub-1", "pingjia-hub-2"):
        before = max((session for at, worker, session in online if worker == name and at < restarted), default=-1)
        returns.append(min((at for at, worker, session in online if worker == name and session > before), default=None))
    got = {name: sorted(times) for name, times in acks.items()}
    if None in returns:
        raise RuntimeError("a hub worker was not heard online again after the broker restart")
    workers_back = max(at for at in returns if at is not None)
    stalls, waits = [], []
    for terminal in fleet:
        for seq, thanked in terminal.thanked_at.items():
            if thanked < restarted - 1:
                continue
            acked = next((at for at, upto in got.get(terminal.name, []) if upto >= seq), None)
            if acked is not None:
                waits.append(acked - thanked)
                stalls.append(acked - max(thanked, workers_back))
    return {
        "broker_restart_stall_s": round(max(stalls), 2),
        "broker_restart_wait_max_s": round(max(waits), 2),
        "broker_restart_wait_p50_s": round(statistics.median(waits), 3),
        "broker_restart_records": len(waits),
        "broker_restart_down_s": round(back - restarted, 2),
        "broker_restart_workers_back_s": round(workers_back - back, 2),
    }


def _press_through_restart(fleet: Sequence[Any], broker: Any, seconds_after: float) -> tuple[float, float]:
    """Ten presses a second at each terminal; a graceful broker restart after 3 s (sessions kept);
    `seconds_after` more. (When the restart began, when the broker was back.)"""
    stop = threading.Event()

    def customers() -> None:
        while not stop.is_set():
            for terminal in fleet:
                terminal.press(5)
            stop.wait(0.1)

    presser = threading.Thread(target=customers, daemon=True)
    presser.start()
    try:
        time.sleep(3)  # the fleet in its stride
        restarted = time.monotonic()
        broker.stop()
        broker.start()
        back = time.monotonic()
        time.sleep(seconds_after)
    finally:
        stop.set()
        presser.join()
    return restarted, back


def hub_live(workdir: Path, *, devices: int, per_device: int) -> Result:
    """Ratings stored per second when every message carries one rating (each press sent at once):
    `devices` terminals played from pre-signed messages, the hub acking each after its commit."""
    from simulator.loadgen import Fleet

    if not _mosquitto():
        return {"hub_live_per_s": None}
    measured = _hub_with_fleet(workdir, Fleet(devices=devices, records=per_device, per_message=1), "live")
    return {"hub_live_per_s": round(measured["records_per_s"]), "hub_live_messages": measured["messages"]}


def drain(workdir: Path, *, devices: int, per_device: int) -> Result:
    """Real terminal processes, each holding `per_device` ratings buffered while the hub was away;
    the hub comes back: seconds until every rating is stored, and ratings/s while draining."""
    from hub import registry
    from hub.db import Database
    from hub.queries import Reader
    from hub.writer import Writer
    from simulator.prefill import fleet_with_backlog
    from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess

    if not _mosquitto():
        return {"drain_s": None}
    total = devices * per_device
    cache, keys = fleet_with_backlog(
        Path("var/bench") / f"fleet-{devices}x{per_device}", devices=devices, per_device=per_device
    )
    fleet_dir = workdir / "fleet"
    shutil.copytree(cache, fleet_dir)
    db = f"sqlite:///{workdir / 'drain.sqlite3'}"

    def register(conn: Database) -> None:
        for device, key in keys.items():
            registry.add_device(conn, device, key, department="bench")

    with Writer.open(db) as writer:
        writer.write(register)
    broker = MosquittoBroker(workdir=workdir / "mosquitto-drain").start()
    hub = HubProcess(db=db, broker_url=broker.url, log=workdir / "drain-hub.log")
    terminals = [
        TerminalProcess(
            fleet_dir / device,
            broker_url=broker.url,
            log=workdir / "drain-terminals.log",
            settings=["ack_timeout_s=120", "reconnect_min_s=0.1", "reconnect_max_s=0.5"],
        )
        for device in sorted(keys)
    ]
    try:
        hub.start()
        hub.wait_online()  # the hub's persistent session now holds its subscriptions ...
        hub.stop()  # ... and it goes away; the terminals connect and send into its queue
        for terminal in terminals:
            terminal.start()
        for terminal in terminals:
            terminal.wait_for(lambda t: t.online, 120, "the terminal to connect")
        reader = Reader.open(db)
        started = time.monotonic()
        hub.start()
        first = None
        stored = 0
        while stored < total:
            time.sleep(0.05)
            stored = reader.stored_upto_total()
            if stored and first is None:
                first = time.monotonic()
            if time.monotonic() - started > 600:
                raise RuntimeError(f"drain stalled at {stored} of {total}")
        finished = time.monotonic()
        reader.close()
    finally:
        for terminal in terminals:
            terminal.quit()
        hub.stop()
        broker.stop()
    assert first is not None
    return {
        "drain_ratings": total,
        "drain_s": round(finished - started, 2),
        "hub_backlog_per_s": round(total / (finished - first)),
    }


def report_month(workdir: Path, *, ratings: int) -> Result:
    """The month's figures per staff member and per department over `ratings` ratings."""
    from hub.queries import Reader
    from hub.report import aggregate, parse_period, render
    from simulator.prefill import hub_with_ratings

    database = hub_with_ratings(Path("var/bench") / f"report-{ratings}.sqlite3", ratings=ratings)
    store = Reader.open(f"sqlite:///{database}")
    samples = []
    try:
        for _ in range(5):
            started = time.perf_counter()
            period = parse_period("2026-11")
            for level in ("staff", "department"):
                render(aggregate(store, period, level), period=period, fmt="json")
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
    return {"report_month_ms": round(statistics.median(samples), 1), "report_ratings": ratings}


def province_reports(workdir: Path, *, quick: bool) -> Result:
    """A province's month of reports (issue 11), on SQLite and PostgreSQL: simulator.bench_figures."""
    from simulator.bench_figures import province

    return province(workdir, quick=quick)


def supervision_figures(*, quick: bool) -> Result:
    """Precision and recall per clerk-week of each supervision rule that flags clerks, on simulated
    weeks with seeds the rules were not tuned on, and the flags an honest hall raises:
    simulator.bench_supervision."""
    from simulator.bench_supervision import run as measure

    return dict(measure(quick))


def explain_cell(workdir: Path, *, quick: bool) -> Result:
    """The first row of an explained cell with 100,000 ratings behind it: simulator.bench_figures."""
    from simulator.bench_figures import explain_first_row

    return explain_first_row(workdir, quick=quick)


def touch_step(workdir: Path, *, quick: bool) -> Result:
    """The touchscreen's figures (issue 12): simulator.bench_touch."""
    from simulator.bench_touch import touch_figures

    return touch_figures(workdir, quick=quick)


def _mosquitto() -> bool:
    from simulator.processes import MosquittoBroker

    return MosquittoBroker.available()


def first_stored_by_make_run(repo: Path, timeout_s: float = 60) -> Result:
    """Start `make run` as a user would (virtualenv already made) and time its first stored rating."""
    if shutil.which("make") is None or not (repo / "Makefile").exists():
        return {"make_run_first_stored_s": None}
    data = Path(tempfile.mkdtemp(prefix="pingjia-make-run-"))
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PINGJIA_DEMO_DATA": str(data)},
    )
    seconds = None
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if "first rating stored" in line:
                seconds = round(time.monotonic() - started, 2)
                break
            if time.monotonic() - started > timeout_s:
                break
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        shutil.rmtree(data, ignore_errors=True)
    return {"make_run_first_stored_s": seconds}


def run(*, quick: bool, only: set[str] | None = None, workdir: Path | None = None) -> Result:
    base = workdir or Path("var/bench")
    base.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    result: Result = {"quick": quick, "python": sys.version.split()[0], "cpus": os.cpu_count()}
    steps: dict[str, Callable[[], Result]] = {
        "transport": transport,
        "live": lambda: hub_live(scratch / "live", devices=200, per_device=50 if quick else 200),
        "drain": lambda: drain(scratch / "drain", devices=100, per_device=1_000 if quick else 10_000),
        "durable": lambda: press_to_durable(scratch, 500 if quick else 2_000),
        "growth": lambda: outbox_growth(scratch, (1_000, 1_000_000), 200 if quick else 500),
        "hub": lambda: press_to_hub(scratch / "hub", 100 if quick else 300, 0.02),
        "terminal": lambda: terminal_figures(scratch / "terminal", 200 if quick else 1_000),
        "report": lambda: report_month(scratch, ratings=1_000_000 if quick else 10_000_000),
        "province": lambda: province_reports(scratch / "province", quick=quick),
        "explain": lambda: explain_cell(scratch / "explain", quick=quick),
        "supervision": lambda: supervision_figures(quick=quick),
        "make_run": lambda: first_stored_by_make_run(Path.cwd()),
        "reconnect": lambda: hub_reconnect(
            scratch / "reconnect", outage_s=10 if quick else 30, samples=3 if quick else 5
        ),
        "pair": lambda: pair_to_first_rating(scratch / "pair", samples=2 if quick else 5),
        "stall": lambda: broker_restart_stall(scratch / "stall", terminals=4, seconds_after=5 if quick else 10),
        "touch": lambda: touch_step(scratch / "touch", quick=quick),
    }
    unknown = (only or set()) - set(steps)
    if unknown:
        raise SystemExit(f"pingjia bench: no step {sorted(unknown)}; steps are {', '.join(steps)}")
    try:
        for name, step in steps.items():
            if only is None or name in only:
                (scratch / name).mkdir(exist_ok=True)
                started = time.monotonic()
                result.update(step())
                result[f"seconds_{name}"] = round(time.monotonic() - started, 1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _derive(result, quick=quick)
    return result


def _derive(result: Result, *, quick: bool) -> None:
    """The figures the issues name, from what was measured (scaled where quick mode measures less)."""
    if result.get("hub_live_per_s") and result.get("broker_msgs_per_s"):
        result["hub_live_vs_broker"] = round(result["hub_live_per_s"] / result["broker_msgs_per_s"], 3)
    if result.get("drain_s") is not None:
        scale = 1_000_000 / result["drain_ratings"]
        result["drain_1m_s"] = round(result["drain_s"] * scale, 1)
        if scale != 1:
            result["drain_1m_s_note"] = f"measured on {result['drain_ratings']:,} ratings, scaled x{scale:g}"
    if result.get("report_month_ms") is not None:
        result["report_month_ms_10m"] = result["report_month_ms"]
        if result["report_ratings"] != 10_000_000:
            result["report_month_ms_10m_note"] = (
                f"measured over {result['report_ratings']:,} ratings; the report reads daily counts, whose size "
                "depends on staff x days, not on the number of ratings"
            )


def main_json(result: Result) -> str:
    return json.dumps(result, indent=2)
