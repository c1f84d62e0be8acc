"""The touchscreen's figures for `pingjia bench` (issue 12; step `touch`), on SDL's dummy drivers.

- `touch_frames`: the real terminal (flow, recorder, outbox) with the real `TouchScreen` in this
  process, its loop on a thread of its own as in `pingjia device run`; this thread is the render
  thread, driving `frame()` at 60 Hz and waiting between frames (`wait_input`: input wakes it) as
  `TouchScreen`'s own loop does, and timing each. A frame that drew nothing (events read, nothing
  changed) is an idle frame; one that drew (a new screen, a touched face, the thank-you, idle
  again) is a transition frame. A simulated customer's finger goes down at a random moment between
  frames (SDL's FINGERDOWN posted from another thread, as the touch driver would); the feedback
  time runs from that moment until the frame that shows the pressed face has been flipped. At both
  panel sizes; the worse of the two is the figure.
- `touch_process`: a touchscreen terminal and a key-panel terminal as processes (`pingjia device
  run`, the touchscreen through simulator.terminal's finger), live to a hub through Mosquitto,
  rating in alternating batches: CPU ms per rating from the scheduler's per-thread counts, as the
  `terminal` step measures `cpu_ms_per_rating` (the median batch), for both in the same run; the
  touchscreen's resident memory after its run.

The dummy video driver draws into memory and shows nothing: a frame's time here is the terminal's
own work (reading events, laying out, drawing, the flip's copy), not a panel's scan-out.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

__all__ = ["FRAME_BUDGET_MS", "touch_figures", "touch_frames", "touch_process"]

Result = dict[str, Any]

FRAME_BUDGET_MS: Final = round(1000 / 60, 1)  # one frame at 60 Hz
_SIZES: Final = ((800, 480), (1280, 800))
_BATCHES: Final = 10
_IDLE_S: Final = 3.0
_COMMON: Final = ("thank_you_ms=0", "amend_window_s=0", "misuse_interval_s=0", "burst_presses=1000")


def touch_figures(workdir: Path, *, quick: bool) -> Result:
    """The step: frames and feedback in this process, CPU and memory of the processes."""
    result = touch_frames(workdir / "frames", cycles=20 if quick else 100)
    result.update(touch_process(workdir / "process", ratings=100 if quick else 500))
    if quick:
        result["touch_note"] = "quick: 20 rating cycles per panel size for frames, 100 ratings per terminal for CPU"
    return result


@contextmanager
def _headless() -> Iterator[None]:
    """SDL's dummy video and audio drivers while the block runs (a bench opens no window)."""
    saved = {name: os.environ.get(name) for name in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER")}
    os.environ.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2) if ordered else 0.0


def touch_frames(workdir: Path, *, cycles: int) -> Result:
    """Frame times (idle, transition) and touch-down to flipped feedback, ms, at each panel size."""
    idle: dict[str, list[float]] = {}
    transition: dict[str, list[float]] = {}
    feedback: dict[str, list[float]] = {}
    with _headless():
        for size in _SIZES:
            name = f"{size[0]}x{size[1]}"
            idle[name], transition[name], feedback[name] = _frames_at(workdir / name, size, cycles)
    result: Result = {"touch_frame_budget_ms": FRAME_BUDGET_MS}
    for name in idle:  # noqa: PLC0206 - three dicts by one name
        result[f"touch_frame_idle_p99_ms_{name}"] = _p99(idle[name])
        result[f"touch_frame_transition_p99_ms_{name}"] = _p99(transition[name])
        result[f"touch_feedback_p99_ms_{name}"] = _p99(feedback[name])
    result["touch_frame_idle_p99_ms"] = max(_p99(samples) for samples in idle.values())
    result["touch_frame_transition_p99_ms"] = max(_p99(samples) for samples in transition.values())
    result["touch_frame_p99_ms"] = max(result["touch_frame_idle_p99_ms"], result["touch_frame_transition_p99_ms"])
    result["touch_feedback_p50_ms"] = round(statistics.median(s for v in feedback.values() for s in v), 2)
    result["touch_feedback_p99_ms"] = max(_p99(samples) for samples in feedback.values())
    result["touch_frames"] = {
        name: {"idle": len(idle[name]), "transition": len(transition[name]), "touches": len(feedback[name])}
        for name in idle
    }
    return result


def _frames_at(folder: Path, size: tuple[int, int], cycles: int) -> tuple[list[float], list[float], list[float]]:
    from device import identity
    from device.clock import SystemClock
    from device.config import DeviceConfig
    from device.flow import Invite
    from device.io import CardTap, Quit
    from device.io.touch import TouchScreen, TouchSettings
    from device.state import StateDocument
    from device.terminal import Terminal
    from runtime.settings import from_assignments

    made = identity.create(folder, "bench-touch")
    state = StateDocument(folder / identity.STATE_FILE)
    state.update(cards={_CARD: "S001"})
    state.close()
    config = from_assignments(
        DeviceConfig, ["keys=touch", "thank_you_ms=300", "amend_window_s=0", "misuse_interval_s=0", "dim_after_s=0"]
    )
    touch = TouchScreen(settings=TouchSettings.of(config), size=size, threaded=False)
    terminal = Terminal(identity=made, config=config, clock=SystemClock(), broker=None, io=touch)
    terminal.start()  # opens the display here: this thread renders, as the render thread does
    looping = threading.Thread(target=_turns, args=(terminal,), name="pj-bench-terminal", daemon=True)
    looping.start()
    renderer = _Renderer(touch)
    rng = random.Random(12)
    try:
        terminal.post(CardTap(_CARD))
        renderer.until(lambda: touch.page == "idle")
        for cycle in range(cycles):
            quiet_until = time.perf_counter() + 0.5
            renderer.until(lambda until=quiet_until: time.perf_counter() >= until)  # type: ignore[misc]
            terminal.post(Invite(f"B{cycle:04d}"))
            renderer.until(lambda: touch.page == "invite")
            renderer.touch(f"face:{3 + cycle % 3}", at=time.perf_counter() + rng.uniform(0.1, 0.3))
            renderer.until(lambda: touch.page == "idle")  # the thank-you, and idle again
    finally:
        terminal.post(Quit("the bench is done"))
        looping.join(5)
        terminal.close()
    return renderer.idle, renderer.transition, renderer.feedback


_CARD: Final = "04b0b0b0"


def _turns(terminal: Any) -> None:
    """The terminal's loop, as `Terminal.run` turns it (started already), until a Quit."""
    while terminal.turn() is None:
        pass


class _Renderer:
    """The render thread's part, timed: `frame()` at 60 Hz, waiting between frames as
    TouchScreen's loop does (`wait_input`), and a finger down between two frames."""

    def __init__(self, touch: Any) -> None:
        from device.io.touch import FPS

        self.screen = touch
        self.period = 1 / FPS
        self.next_frame = time.perf_counter()
        self.idle: list[float] = []
        self.transition: list[float] = []
        self.feedback: list[float] = []
        self._touched_at: float | None = None
        self._face = ""

    def frame(self) -> None:
        before = self.screen.drawn
        started = time.perf_counter()
        self.screen.frame()
        ended = time.perf_counter()
        drew = self.screen.drawn is not before
        (self.transition if drew else self.idle).append((ended - started) * 1000)
        if (
            self._touched_at is not None
            and drew
            and any(c.selected and c.id == self._face for c in self.screen.controls)
        ):
            self.feedback.append((ended - self._touched_at) * 1000)  # the frame with the pressed face is flipped
            self._touched_at = None

    def until(self, done: Callable[[], bool], *, timeout_s: float = 10, finger_at: float | None = None) -> None:
        """Frames at 60 Hz until `done()`; with `finger_at` (perf_counter), a finger goes down then."""
        import pygame

        deadline = time.perf_counter() + timeout_s
        while not done():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"touch bench: timed out on the {self.screen.page} screen")
            self.frame()
            self.next_frame = max(self.next_frame + self.period, time.perf_counter())
            if finger_at is not None and finger_at < self.next_frame:
                # The finger comes from another thread, as a panel's touches do, while this one
                # waits for the next frame the way TouchScreen's loop does.
                x, y = next(c for c in self.screen.controls if c.id == self._face).box.center
                width, height = self.screen.size
                down = pygame.event.Event(pygame.FINGERDOWN, touch_id=1, finger_id=1, x=x / width, y=y / height)
                finger = threading.Timer(max(0.0, finger_at - time.perf_counter()), self._finger, (down,))
                finger.start()
                finger_at = None
            self.screen.wait_input(self.next_frame - time.perf_counter())

    def _finger(self, down: Any) -> None:
        import pygame

        self._touched_at = time.perf_counter()
        pygame.event.post(down)

    def touch(self, face: str, *, at: float) -> None:
        """A finger on `face` at `at` (perf_counter, between frames); frames until its feedback shows."""
        self._face = face
        count = len(self.feedback)
        self.until(lambda: len(self.feedback) > count, finger_at=at)


def touch_process(workdir: Path, *, ratings: int) -> Result:
    """CPU ms per rating of a touchscreen terminal and a key-panel one in the same run, and the
    touchscreen's resident memory; both processes live to a hub through Mosquitto."""
    from protocol.panel import LedState
    from simulator.bench import _cpu_split_s, _ms_per, _rating_cycle, _rss_mb, _thread_cpu_ns
    from simulator.panel import PanelEmulator
    from simulator.processes import HubProcess, MosquittoBroker, TerminalProcess
    from simulator.touch import headless_env

    if not MosquittoBroker.available():
        return {"touch_rss_mb": None, "touch_process_note": "mosquitto not installed"}
    db, (touch_dir, key_dir) = _registered(workdir, ("bench-touch", "bench-keys"))
    blink, off = (LedState.BLINK,) * 5, (LedState.OFF,) * 5
    broker = MosquittoBroker(workdir=workdir / "mosquitto").start()
    hub = HubProcess(db=db, broker_url=broker.url, log=workdir / "hub.log").start()
    panel = PanelEmulator(link=workdir / "panel")
    panel.start()
    keys = TerminalProcess(
        key_dir,
        broker_url=broker.url,
        log=workdir / "keys.log",
        settings=["keys=panel", f"panel_port={(workdir / 'panel').resolve()}", *_COMMON],
    )
    touch = TerminalProcess(
        touch_dir,
        broker_url=broker.url,
        log=workdir / "touch.log",
        settings=["keys=touch", "dim_after_s=0", *_COMMON],
        fingers=workdir / "fingers",
        args=["--screen", "800x480"],  # the 7" panel (SDL's dummy display would be 1024x768)
        env=headless_env(),
    )
    spent: dict[str, list[float]] = {"keys": [], "touch": []}
    try:
        hub.wait_online()
        for terminal in (keys, touch):
            terminal.start()
        keys_pid, touch_pid = (_logged_in(terminal) for terminal in (keys, touch))
        before = _thread_cpu_ns(touch_pid)
        time.sleep(_IDLE_S)  # a logged-in screen nobody touches: the 60 Hz loop alone
        idle_ms_per_s = _ms_per(before, _thread_cpu_ns(touch_pid), 1)["total"] / _IDLE_S
        user_before, system_before = _cpu_split_s(touch_pid)
        last_tap: dict[str, float] = {}
        cycle_ms: list[float] = []
        batch = max(1, ratings // _BATCHES)
        for first in range(0, ratings, batch):
            last = min(first + batch, ratings)
            before = _thread_cpu_ns(keys_pid)
            for index in range(first, last):
                _rating_cycle(keys, panel, index, blink, off)
            spent["keys"].append(_ms_per(before, _thread_cpu_ns(keys_pid), last - first)["total"])
            before = _thread_cpu_ns(touch_pid)
            started = time.monotonic()
            for index in range(first, last):
                _touch_cycle(touch, index, last_tap)
            cycle_ms.append((time.monotonic() - started) * 1000 / (last - first))
            spent["touch"].append(_ms_per(before, _thread_cpu_ns(touch_pid), last - first)["total"])
        user_after, system_after = _cpu_split_s(touch_pid)
        touch.wait_for(lambda t: t.acked >= ratings, 30, "the hub's acks")
        rss = _rss_mb(touch_pid)
        key_rss = _rss_mb(keys_pid)
    finally:
        for terminal in (keys, touch):
            terminal.quit()
        touch.close_fingers()
        panel.stop()
        hub.stop()
        broker.stop()
    user, system = user_after - user_before, system_after - system_before
    return {
        "touch_rss_mb": round(rss, 1),
        "touch_rss_goal_mb": 120,
        "touch_key_terminal_rss_mb": round(key_rss, 1),
        "touch_cpu_ms_per_rating": round(statistics.median(spent["touch"]), 3),
        "touch_cpu_ms_per_rating_batches": [round(ms, 3) for ms in spent["touch"]],
        "touch_key_terminal_cpu_ms_per_rating": round(statistics.median(spent["keys"]), 3),
        "touch_key_terminal_cpu_ms_per_rating_batches": [round(ms, 3) for ms in spent["keys"]],
        "touch_cycle_ms": round(statistics.median(cycle_ms), 1),
        "touch_idle_cpu_ms_per_s": round(idle_ms_per_s, 2),
        "touch_cpu_user_share": round(user / (user + system), 2) if user + system > 0 else 0.0,
        "touch_ratings": ratings,
        "touch_process_screen": "800x480",
    }


def _logged_in(terminal: Any) -> int:
    """Wait for a started terminal to connect, log its clerk in; its pid."""
    terminal.wait_for(lambda t: t.online and t.ready, 30, "the terminal to connect")
    terminal.login("S001")
    terminal.wait_for(lambda t: t.state == "idle", 10, "the clerk logged in")
    assert terminal.process is not None
    return int(terminal.process.pid)


def _touch_cycle(terminal: Any, index: int, last_tap: dict[str, float]) -> None:
    """One counter cycle on a touchscreen: an invitation, a finger on a face once the terminal has
    shown the faces (as the key cycle presses once the LEDs blink), back to idle. The same face is
    not touched again within the touch debounce (that would be one shaky touch, and no rating)."""
    from device.io.touch import TOUCH_DEBOUNCE_MS

    face = f"face:{3 + index % 3}"
    terminal.invite()
    terminal.wait_for(lambda t: t.state == "invited", 5, "the touchscreen's invitation")
    time.sleep(max(0.0, last_tap.get(face, 0.0) + (TOUCH_DEBOUNCE_MS + 50) / 1000 - time.monotonic()))
    last_tap[face] = time.monotonic()
    terminal.tap(face)
    terminal.wait_for(
        lambda t: t.state == "idle" and len(t.thanked) >= index + 1, 5, "the touchscreen's thanks and idle again"
    )


def _registered(workdir: Path, devices: tuple[str, ...]) -> tuple[str, list[Path]]:
    """A hub database under `workdir` with these terminals registered: (db url, their folders)."""
    from device import identity
    from hub import registry
    from hub.writer import Writer

    workdir.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{workdir / 'hub.sqlite3'}"
    folders = []
    with Writer.open(db) as writer:
        for device in devices:
            made = identity.create(workdir / device, device)
            writer.write(registry.add_device, made.device, made.public_hex, department="bench")
            folders.append(made.data_dir)
    return db, folders
