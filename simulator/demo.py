"""`pingjia demo` / `make run`: a service hall on one machine.

Starts a broker (the embedded amqtt unless a broker URL is given), the hub on SQLite under the data
directory, and N terminals (real `pingjia device run` processes) whose simulated customers press
keys. Prints a live line per second; on Ctrl-C (or after --seconds) it stops the customers, lets the
terminals drain, stops everything in order, prints today's figures per department and per staff
member, and last one JSON object with the tallies.

With `--screen`, the first counter has a touchscreen (`--keys touch`) in an 800x480 window, and its
customers tap the faces it draws (simulator.touch): what a customer sees. Without a display (no
$DISPLAY or $WAYLAND_DISPLAY, or one that cannot be opened) the demo says so and runs that counter's
touchscreen headless; without the CJK font, it says so and that counter keeps its keys.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from device import identity
from device.events import Online, Ready
from hub import registry
from hub.config import HubConfig
from hub.db import Database
from hub.policy import from_settings
from hub.queries import Reader
from hub.report import aggregate, book, parse_period, render
from hub.writer import Writer
from simulator.cable import Cable
from simulator.customers import StaffProfile, make_staff
from simulator.processes import PYTHON, AmqttBroker, BrokerProcess, HubProcess, ProcessError, TerminalProcess
from simulator.site import Site
from simulator.touch import headless_env

__all__ = ["Demo"]

_DRAIN_S = 30.0
SCREEN_SIZE = "800x480"  # the 7" counter panel
_TOUCH_REASONS = (1, 2, 3, 4, 5, 6)  # the touchscreen's reason tags after a 1 or 2 (reasons_negative's default)


@dataclass
class Counter:
    """One counter of the hall: a terminal, the clerk logged in at it, and its queue of customers."""

    terminal: TerminalProcess
    staff: StaffProfile
    start_seq: int
    letter: str
    cable: Cable
    counter: str
    next_customer: float = 0.0
    served: int = 0
    keys: list[tuple[float, str]] = field(default_factory=list)  # (when, input line or "tap ID") still to come
    touch: bool = False  # a touchscreen: its customers tap (simulator.touch)
    stored: int = 0


class Demo:
    def __init__(
        self,
        *,
        data: Path,
        devices: int,
        departments: int,
        speed: float,
        broker_url: str | None,
        quiet: bool = False,
        seed: int | None = None,
        screen: bool = False,
    ) -> None:
        """`screen`: the first counter is a touchscreen, shown in a window when there is a display."""
        if devices < 1 or departments < 1 or speed <= 0:
            raise ValueError("devices and departments must be at least 1, speed above 0")
        self.data = data
        self.devices = devices
        self.departments = departments
        self.speed = speed
        self.broker_url = broker_url
        self.quiet = quiet
        self.rng = random.Random(seed)
        self.db_url = f"sqlite:///{data / 'hub.sqlite3'}"
        self.broker: BrokerProcess | None = None
        self.hub: HubProcess | None = None
        self.counters: list[Counter] = []
        self.cables: list[Cable] = []
        self.tz = ZoneInfo(HubConfig().timezone)
        self.screen = screen
        self.screen_shown: str | None = None  # what became of --screen, for the summary

    # -- setting up ---------------------------------------------------------------------------------

    def _register(self) -> list[tuple[Path, StaffProfile]]:
        """The hall's clerks, registered in one transaction, and its terminals out of the box (their
        identity made; the technician pairs them once the hub runs). The demo's database outlives a
        run (var/demo): it is brought to this version's schema first, as `pingjia hub migrate` would."""
        with Writer.open(self.db_url, migrate=True) as writer:
            return writer.write(self._registrations)

    def _registrations(self, db: Database) -> list[tuple[Path, StaffProfile]]:
        staff = make_staff(self.devices, self.departments, random.Random(7))  # the same hall on every run
        placed = []
        for index, profile in enumerate(staff):
            folder = self.data / f"counter-{index + 1:02d}"
            if not (folder / identity.KEY_FILE).exists():
                identity.create(folder, f"counter-{index + 1:02d}")
            registry.add_staff(db, profile.staff, name=profile.name, department=profile.department)
            placed.append((folder, profile))
        return placed

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    # -- running ------------------------------------------------------------------------------------

    def run(self, seconds: float | None) -> int:
        started = time.monotonic()
        # Ctrl-C, and a supervisor's SIGTERM, end the run the same orderly way (even when the shell
        # that started us in the background left SIGINT ignored).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        self.data.mkdir(parents=True, exist_ok=True)
        placed = self._register()
        store = Reader.open(self.db_url)
        logs = self.data / "logs"
        if self.broker_url is None:
            self.broker = AmqttBroker(log=logs / "broker.log").start()
            # The demo knows amqtt speaks 3.1.1 only; saying so skips the MQTT 5 probe.
            url = self.broker.url + "?protocol=3.1.1"
            broker_name = f"embedded amqtt on port {self.broker.port}"
        else:
            url = self.broker_url
            broker_name = url
        self._say(f"pingjia demo: {self.devices} counters, {self.departments} departments, broker {broker_name}")
        self._say(f"  hub database {self.db_url}, logs in {logs}/")
        site = Site(self.data / "site", db=self.db_url, mosquitto=False, broker_url=url).setup()
        self.hub = site.hub(log=logs / "hub.log").start()
        self.hub.wait_online()
        self._start_counters(site, placed, url, logs)
        self._pair(site)
        for counter in self.counters:
            counter.start_seq = _head(counter.terminal)
            counter.terminal.login(counter.staff.staff)
            counter.next_customer = time.monotonic() + self._gap()
        interrupted = False
        first_stored_s: float | None = None
        try:
            next_line = time.monotonic() + 1
            while seconds is None or time.monotonic() - started < seconds:
                self._serve_customers()
                now = time.monotonic()
                if now >= next_line:
                    next_line = now + 1
                    stored = self._count_stored(store)
                    if first_stored_s is None and stored:
                        first_stored_s = round(now - started, 2)
                        self._say(f"first rating stored at the hub {first_stored_s} s after start")
                    self._live_line(stored)
                time.sleep(0.02)
        except KeyboardInterrupt:
            interrupted = True
            self._say("\nstopping: customers stopped, letting the terminals drain ...")
        summary = self._finish(store, started, first_stored_s)
        if interrupted or seconds is None or not self.quiet:
            self._say(self._tables(store))
        store.close()
        print(json.dumps(summary, ensure_ascii=False), flush=True)
        clean = summary["lost"] == 0 and summary["duplicates"] == 0 and summary["records_missing"] == 0
        return 0 if clean else 1

    def _start_counters(self, site: Site, placed: list[tuple[Path, StaffProfile]], url: str, logs: Path) -> None:
        settings = [
            f"thank_you_ms={max(300, int(2500 / self.speed))}",
            f"invite_window_s={max(3.0, 30 / self.speed)}",
            f"reasons_window_s={max(2.0, 6 / self.speed)}",
            "ack_timeout_s=3",
        ]
        touch_env = self._screen_env() if self.screen else None
        for index, (folder, profile) in enumerate(placed):
            cable = Cable(self.data / "site" / f"console-{index + 1:02d}")
            self.cables.append(cable)
            # A terminal paired on an earlier run is told this run's broker (the embedded one moves to a
            # new port each time); a new one gets it from pairing, and until then sends nothing.
            paired = _paired(folder)
            touch = index == 0 and touch_env is not None
            terminal = site.terminal(
                folder,
                cable,
                settings=[*settings, *(["keys=touch", "callback=false", "dim_after_s=0"] if touch else [])],
                log=logs / f"{folder.name}.log",
                broker_url=url if paired else None,
                fingers=self.data / "site" / f"fingers-{index + 1:02d}" if touch else None,
                args=["--screen", SCREEN_SIZE] if touch else (),
                env=touch_env if touch else None,
            )
            letter = chr(ord("A") + index % 26)
            self.counters.append(
                Counter(
                    terminal=terminal.start(),
                    staff=profile,
                    start_seq=0,
                    letter=letter,
                    cable=cable,
                    counter=f"{index + 1}号窗口",
                    touch=touch,
                )
            )

    def _screen_env(self) -> dict[str, str] | None:
        """The environment of the counter with a touchscreen: a window if a display can be opened,
        else SDL's dummy drivers (said so); None if the touchscreen cannot run here (no CJK font)."""
        from device.io.fonts import FontMissing, find_cjk_font

        try:
            find_cjk_font()
        except FontMissing as exc:
            self.screen_shown = "no touchscreen: the CJK font is missing"
            self._say(f"  --screen: no touchscreen counter, {exc}; counter 1 keeps its keys")
            return None
        problem = _display_problem()
        if problem is not None:
            self.screen_shown = f"headless: {problem}"
            self._say(f"  --screen: {problem}; counter 1's touchscreen runs without a window (SDL's dummy driver)")
            return headless_env()
        self.screen_shown = f"window {SCREEN_SIZE}"
        self._say(f"  --screen: counter 1's touchscreen in a {SCREEN_SIZE} window")
        return {}

    def _pair(self, site: Site) -> None:
        """The technician's round: each terminal not paired yet is paired over its console cable
        (`pingjia tech pair`, confirming the code it shows), as at a real site."""
        for counter in self.counters:
            counter.terminal.wait_for(lambda t: t.ready, 30, "the terminal to start")
        fresh = [c for c in self.counters if not c.terminal.of(Ready)[0].paired]
        for counter in fresh:
            started = time.monotonic()
            site.pair(counter.terminal, counter.cable, department=counter.staff.department, counter=counter.counter)
            counter.terminal.wait_for(lambda t: t.of(Online), 30, "the paired terminal online")
            self._say(
                f"  paired {counter.terminal.device} ({counter.staff.department}, {counter.counter}) "
                f"in {time.monotonic() - started:.1f} s"
            )
        if not fresh:
            self._say(f"  {len(self.counters)} terminals paired with this hub before")

    def _gap(self) -> float:
        # A customer every 5 s per counter on average at speed 1.
        return self.rng.expovariate(self.speed / 5.0)

    def _serve_customers(self) -> None:
        """The clerk invites each customer served; most rate, a few walk away, unhappy ones say why."""
        now = time.monotonic()
        for counter in self.counters:
            terminal = counter.terminal
            while counter.keys and counter.keys[0][0] <= now:
                line = counter.keys.pop(0)[1]
                if line.startswith("tap "):
                    terminal.tap(line.removeprefix("tap "))
                else:
                    terminal.send(line)
            if counter.keys or now < counter.next_customer or terminal.state != "idle":
                continue
            counter.served += 1
            terminal.invite(f"{counter.letter}{counter.served:03d}")
            counter.next_customer = now + self._gap()
            if self.rng.random() < 0.05:
                continue  # gone before rating: the terminal records a timeout
            react = now + self.rng.uniform(0.5, 2.0) / self.speed
            score = counter.staff.rate(self.rng)
            if counter.touch:
                self._tap_a_rating(counter, score, react)
                continue
            counter.keys.append((react, str(score)))
            if score <= 2 and self.rng.random() < 0.7:
                for reason in self.rng.sample(range(1, 6), self.rng.randint(1, 2)):
                    react += self.rng.uniform(0.3, 1.0) / self.speed
                    counter.keys.append((react, str(reason)))

    def _tap_a_rating(self, counter: Counter, score: int, react: float) -> None:
        """A customer at the touchscreen: the face, and after a 1 or 2 reason tags and Done, or Skip."""
        counter.keys.append((react, f"tap face:{score}"))
        if score > 2:
            return
        if self.rng.random() < 0.7:
            for reason in self.rng.sample(_TOUCH_REASONS, self.rng.randint(1, 2)):
                react += self.rng.uniform(0.3, 1.0) / self.speed
                counter.keys.append((react, f"tap reason:{reason}"))
            counter.keys.append((react + 0.5 / self.speed, "tap done"))
        else:
            counter.keys.append((react + 0.5 / self.speed, "tap skip"))

    def _count_stored(self, store: Reader) -> int:
        total = 0
        for counter in self.counters:
            counter.stored = store.stored_after(counter.terminal.device, counter.start_seq)
            total += counter.stored
        return total

    def _pressed(self) -> int:
        return sum(len([s for s in c.terminal.thanked if s > c.start_seq]) for c in self.counters)

    def _waiting(self) -> int:
        return sum(max(0, max(c.terminal.recorded, default=0) - c.terminal.acked) for c in self.counters)

    def _live_line(self, stored: int) -> None:
        online = sum(1 for c in self.counters if c.terminal.online)
        clock = datetime.now(self.tz).strftime("%H:%M:%S")
        self._say(
            f"{clock}  ratings pressed {self._pressed():6d}  records stored at hub {stored:6d}  "
            f"waiting on devices {self._waiting():4d}  online {online}/{len(self.counters)}"
        )

    # -- stopping -----------------------------------------------------------------------------------

    def _finish(self, store: Reader, started: float, first_stored_s: float | None) -> dict[str, Any]:
        drained = True
        for counter in self.counters:
            counter.terminal.send("logout")  # the clerks leave; presses still on their way are handled first
        for counter in self.counters:
            try:
                counter.terminal.wait_for(lambda t: t.state == "closed", _DRAIN_S, "the terminal to close")
                counter.terminal.wait_for(
                    lambda t: t.acked >= max(t.recorded, default=0), _DRAIN_S, "the hub to ack everything"
                )
            except ProcessError as exc:
                drained = False
                print(f"pingjia demo: {exc}", file=sys.stderr)
        for counter in self.counters:
            counter.terminal.quit()
            counter.terminal.close_fingers()
        if self.hub is not None:
            self.hub.stop()
        if self.broker is not None:
            self.broker.stop()
        for cable in self.cables:
            cable.close()
        pressed = lost = duplicates = unexpected = stored = records = records_missing = 0
        for counter in self.counters:
            thanked = {s for s in counter.terminal.thanked if s > counter.start_seq}
            recorded = {s for s in counter.terminal.recorded if s > counter.start_seq}
            rows = store.presses_after(counter.terminal.device, counter.start_seq)
            seqs = {row[0] for row in rows}
            presses = {(row[1], row[2]) for row in rows}
            pressed += len(thanked)
            stored += len(seqs & thanked)
            lost += len(thanked - seqs)
            records += len(recorded)
            records_missing += len(recorded - seqs)
            unexpected += len(seqs - recorded)
            duplicates += len(rows) - len(presses)  # one press stored under two seqs
        return {
            "pressed": pressed,
            "stored": stored,
            "duplicates": duplicates,
            "lost": lost,
            "unexpected": unexpected,
            "records": records,
            "records_missing": records_missing,
            "drained": drained,
            "devices": len(self.counters),
            "seconds": round(time.monotonic() - started, 1),
            "first_stored_s": first_stored_s,
            "rejects": store.reject_counts(),
            "screen": self.screen_shown,
            "pressed_on_screen": sum(
                len([s for s in c.terminal.thanked if s > c.start_seq]) for c in self.counters if c.touch
            ),
        }

    def _tables(self, store: Reader) -> str:
        today = datetime.now(self.tz).date().isoformat()
        period = parse_period(today)
        config = HubConfig()
        rules = book(store, from_settings(config.timeout_score, config.count_uninvited))
        parts = []
        for level, heading in (("department", "department"), ("staff", "staff member")):
            parts.append(f"\ntoday ({today}) per {heading}:")
            parts.append(render(aggregate(store, period, level, rules=rules), period=period, fmt="table"))
        return "\n".join(parts) + "\n"


def _display_problem() -> str | None:
    """Why no window can be shown here, or None. The probe opens a window in a child process, so that
    a display that fails (or hangs) fails there and not in the demo."""
    if os.environ.get("SDL_VIDEODRIVER") == "dummy":
        return "SDL_VIDEODRIVER=dummy"
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return "no display ($DISPLAY and $WAYLAND_DISPLAY are unset)"
    probe = "import pygame; pygame.display.init(); pygame.display.set_mode((64, 64)); pygame.display.quit()"
    try:
        done = subprocess.run(
            [PYTHON, "-c", probe],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env={**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"},
        )
    except subprocess.TimeoutExpired:
        return "the display did not answer in 20 s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["exit status " + str(done.returncode)])[-1]
        return f"the display cannot be opened ({last[:200]})"
    return None


def _paired(folder: Path) -> bool:
    from device.pairing import load_pairing
    from device.state import StateDocument

    state = StateDocument(folder / identity.STATE_FILE)
    try:
        return load_pairing(state) is not None
    finally:
        state.close()


def _head(terminal: TerminalProcess) -> int:
    ready = terminal.of(Ready)
    return ready[0].head if ready else 0
