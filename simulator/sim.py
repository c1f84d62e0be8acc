"""`pingjia sim`: a service hall's working day, faster than real time, with ground truth.

Every counter is a real terminal process: `pingjia device run --keys panel` with its key panel
played by the pty emulator, or (`touch` of them) `--keys touch`, the touchscreen on SDL's dummy
drivers, whose customers tap the faces and buttons it draws (simulator.touch). Around them the
simulator plays the hall:

- clerks log in with their staff cards (the panel's reader, or a touchscreen's USB reader) at the
  start of the day, leave for lunch (some counters get a colleague for the hour), and log out at
  the end;
- a queue system issues tickets; customers of each department wait for a free counter; when a
  service ends, the queue system asks the terminal to invite over MQTT (or the clerk presses the
  invite key; a touchscreen has none, so its invitations all come from the queue system);
- customers rate from their clerk's distribution, sometimes correct themselves (amend; on a
  touchscreen the thank-you's change button), say why when unhappy (reason keys; on a touchscreen
  reason tags and Done, or Skip), or walk away (timeout); now and then a child plays with the keys
  (misuse; a touchscreen shows no faces to a child unless it invites);
- a few clerks fake ratings in ways seen in real halls: pressing 非常满意 themselves, covering the
  two lowest keys, or not inviting customers who look unhappy. The simulator writes down every
  faked rating (`ground_truth.jsonl`), so that the hub's supervision can be measured against it
  (precision and recall).

Simulated time runs `speed` times faster than real time: the day's schedule is compressed, and so
are the terminals' windows (within their settings' limits). Ratings carry real time.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from device import identity
from device.events import Misuse, Recorded, TerminalEvent
from device.state import StateDocument
from hub import registry
from hub.queries import Reader
from hub.writer import Writer
from protocol import Channel, Command, CommandName, encode_command, topic
from protocol.panel import INVITE_KEY
from simulator.customers import DEPARTMENTS, StaffProfile, make_staff
from simulator.panel import PanelEmulator
from simulator.processes import AmqttBroker, BrokerProcess, HubProcess, MosquittoBroker, TerminalProcess, site_hub_key
from simulator.touch import headless_env

__all__ = ["Sim"]

DAY_START_H = 8.5  # 08:30
LUNCH = (12.0, 13.0)
DAY_END_H = 17.5
FAKES = ("self_press", "covered_keys", "selective_invite")
TOUCH_REASONS = (1, 2, 3, 4, 5, 6)  # the touchscreen's reason tags after a 1 or 2 (reasons_negative's default)


@dataclass
class Clerk:
    profile: StaffProfile
    card: bytes
    fake: str | None = None  # one of FAKES, for the few who do


@dataclass
class Desk:
    """A counter: its terminal and key panel (none for a touchscreen), the clerk at it, the customer
    being served."""

    index: int
    department: str
    terminal: TerminalProcess
    panel: PanelEmulator | None
    regular: Clerk
    relief: Clerk | None
    clerk: Clerk | None = None
    busy_until: float = 0.0  # simulated hours
    serving: dict[str, Any] | None = None
    actions: deque[tuple[float, str, Any]] = field(default_factory=deque)  # (real time, what, detail)
    expect_fake: list[dict[str, Any]] = field(default_factory=list)  # faked presses awaiting their seq

    @property
    def touch(self) -> bool:
        return self.panel is None

    def card(self, uid: bytes) -> None:
        """The clerk's staff card on the panel's reader or the touchscreen's USB reader."""
        if self.panel is not None:
            self.panel.card(uid)
        else:
            self.terminal.card_reader(uid)

    def press(self, level: int, *, wait_ms: int | None = None) -> None:
        """A key, or a finger on the face of that level once it shows (`wait_ms`: how long one waits)."""
        if self.panel is not None:
            self.panel.press(level)
        elif wait_ms is None:
            self.terminal.tap(f"face:{level}")
        else:
            self.terminal.tap(f"face:{level}", wait_ms)


class Sim:
    def __init__(
        self,
        *,
        devices: int,
        hours: float,
        speed: float,
        data: Path,
        seed: int | None = None,
        broker_url: str | None = None,
        quiet: bool = False,
        fakers: int | None = None,
        fakes: tuple[str, ...] = FAKES,
        touch: int = 0,
    ) -> None:
        """`fakers` regular clerks fake ratings, one way each, taken in turn from `fakes` (None: a
        few, max(len(fakes), clerks // 8); 0: an honest hall). `touch` of the counters have a
        touchscreen instead of a key panel, spread over the hall."""
        if devices < 1 or hours <= 0 or speed <= 0:
            raise ValueError("devices, hours and speed must be positive")
        if not 0 <= touch <= devices:
            raise ValueError(f"touch must be 0..{devices} (touchscreen counters), got {touch}")
        self.touch = touch
        if fakers is not None and not 0 <= fakers <= devices:
            raise ValueError(f"fakers must be 0..{devices} (the counters' own clerks), got {fakers}")
        if not fakes or any(fake not in FAKES for fake in fakes):
            raise ValueError(f"fakes must be some of {', '.join(FAKES)}, got {', '.join(fakes) or 'none'}")
        self.fakers = fakers
        self.fakes = tuple(fakes)
        self.devices = devices
        self.hours = min(hours, DAY_END_H - DAY_START_H + 1)
        self.speed = speed
        self.data = data
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.broker_url = broker_url
        self.quiet = quiet
        self.stats: Counter[str] = Counter()
        self.truth: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._queues: dict[str, deque[dict[str, Any]]] = {}
        self._started = 0.0

    # -- time ----------------------------------------------------------------------------------------

    def now_h(self) -> float:
        """Simulated hour of the day."""
        return DAY_START_H - 0.25 + (time.monotonic() - self._started) * self.speed / 3600

    def real_s(self, sim_s: float) -> float:
        return sim_s / self.speed

    # -- setting up ----------------------------------------------------------------------------------

    def _hall(self, writer: Writer, url: str) -> list[Desk]:
        departments = DEPARTMENTS[: max(1, min(4, (self.devices + 2) // 3))]
        staff = make_staff(self.devices + (self.devices + 1) // 2, len(departments), random.Random(self.seed))
        fakers = self.fakers
        if fakers is None:
            fakers = min(self.devices, max(len(self.fakes), len(staff) // 8))  # a few, each way of faking at least once
        clerks = [Clerk(profile=p, card=bytes.fromhex(f"04{index:06x}")) for index, p in enumerate(staff)]
        for clerk, kind in zip(self.rng.sample(clerks[: self.devices], fakers), self.fakes * fakers, strict=False):
            clerk.fake = kind
        desks: list[Desk] = []
        for index in range(self.devices):
            regular = clerks[index]
            department = regular.profile.department
            relief = next(
                (
                    c
                    for c in clerks[self.devices :]
                    if c.profile.department == department and all(d.relief is not c for d in desks)
                ),
                None,
            )
            folder = self.data / f"desk-{index + 1:02d}"
            if (folder / identity.KEY_FILE).exists():
                made = identity.load(folder)
            else:
                made = identity.create(folder, f"desk-{index + 1:02d}")
            writer.write(
                registry.add_device, made.device, made.public_hex, department=department, counter=f"{index + 1}号窗口"
            )
            cards = StateDocument(folder / identity.STATE_FILE)
            cards.update(cards={c.card.hex(): c.profile.staff for c in clerks}, staff=None)
            cards.close()
            log = self.data / "logs" / f"desk-{index + 1:02d}.log"
            panel: PanelEmulator | None = None
            if self._has_touchscreen(index):
                terminal = TerminalProcess(
                    folder,
                    broker_url=url,
                    log=log,
                    settings=self._touch_settings(),
                    fingers=self.data / f"fingers-{index + 1:02d}",
                    args=["--screen", "800x480"],  # the 7" panel
                    env=headless_env(),
                )
            else:
                panel = PanelEmulator(
                    link=(self.data / f"panel-{index + 1:02d}").resolve(), serial=f"PJP-{index + 1:06d}"
                )
                panel.start()
                terminal = TerminalProcess(folder, broker_url=url, log=log, settings=self._terminal_settings(panel))
            desks.append(
                Desk(index=index, department=department, terminal=terminal, panel=panel, regular=regular, relief=relief)
            )
        for clerk in clerks:
            writer.write(
                registry.add_staff, clerk.profile.staff, name=clerk.profile.name, department=clerk.profile.department
            )
        for department in departments:
            self._queues[department] = deque()
        return desks

    def _has_touchscreen(self, index: int) -> bool:
        """Whether counter `index` has a touchscreen: `touch` of them, spread evenly over the hall."""
        return index * self.touch // self.devices != (index + 1) * self.touch // self.devices

    def _scaled(self, seconds: float, low: float) -> str:
        return f"{max(low, seconds / self.speed):.3f}"

    def _touch_settings(self) -> list[str]:
        # A finger does not speed up either: the thank-you stays long enough to find its change
        # button, and the amend window long enough to touch a face again. No call-back number (the
        # simulated hall's terminals hold no seal key of the hub); the questions time out at their
        # floor, as few are left unanswered (an unhappy customer who gives no reason touches Skip).
        return [
            "keys=touch",
            "mode=invited",
            "callback=false",
            f"thank_you_ms={max(600, int(2500 / self.speed))}",
            f"invite_window_s={self._scaled(30, 3)}",
            f"amend_window_s={self._scaled(5, 2)}",
            f"misuse_interval_s={self._scaled(3, 0.5)}",
            f"burst_window_s={self._scaled(10, 1)}",
            "screen_timeout_s=5",
            "dim_after_s=0",
            "ack_timeout_s=5",
        ]

    def _terminal_settings(self, panel: PanelEmulator) -> list[str]:
        # Windows shrink with the simulated speed, within their settings' limits. Fingers do not
        # speed up: a child's presses stay a fraction of a second apart, so the misuse interval
        # keeps at least half a second.
        scaled = self._scaled
        return [
            "keys=panel",
            f"panel_port={panel.link}",
            "mode=invited",
            f"thank_you_ms={max(0, int(2500 / self.speed))}",
            f"invite_window_s={scaled(30, 3)}",
            f"amend_window_s={scaled(5, 0)}",
            f"misuse_interval_s={scaled(3, 0.5)}",
            f"reasons_window_s={scaled(6, 2)}",
            f"burst_window_s={scaled(10, 1)}",
            "ack_timeout_s=5",
        ]

    # -- running -------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.data.mkdir(parents=True, exist_ok=True)
        db = f"sqlite:///{self.data / 'hub.sqlite3'}"
        writer = Writer.open(db)
        broker: BrokerProcess | None = None
        if self.broker_url is None:
            broker = (
                MosquittoBroker(workdir=self.data / "mosquitto")
                if MosquittoBroker.available()
                else AmqttBroker(log=self.data / "logs" / "broker.log")
            ).start()
            url = broker.url + ("?protocol=3.1.1" if isinstance(broker, AmqttBroker) else "")
        else:
            url = self.broker_url
        hub = HubProcess(db=db, broker_url=url, log=self.data / "logs" / "hub.log").start()
        desks = self._hall(writer, url)
        writer.close()
        queue_system = _QueueSystem(url)
        try:
            hub.wait_online()
            for desk in desks:
                desk.terminal.on_event = self._watch(desk)
                desk.terminal.start()
            for desk in desks:
                desk.terminal.wait_for(lambda t: t.ready and t.online, 60, "the terminal to start")
            self._started = time.monotonic()
            self._say(
                f"pingjia sim: {self.devices} counters ({self.touch} with a touchscreen), {self.hours:g} simulated "
                f"hours at x{self.speed:g}, seed {self.seed}"
            )
            end_h = DAY_START_H - 0.25 + self.hours
            next_line = time.monotonic()
            while self.now_h() < end_h:
                self._tick(desks, queue_system)
                if time.monotonic() >= next_line:
                    next_line += 5
                    self._say(self._line(desks))
                time.sleep(0.01)
            return self._finish(desks, hub, db)
        finally:
            queue_system.close()
            for desk in desks:
                desk.terminal.quit()
                desk.terminal.close_fingers()
                if desk.panel is not None:
                    desk.panel.stop()
            hub.stop()
            if broker is not None:
                broker.stop()

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def _line(self, desks: list[Desk]) -> str:
        hour = self.now_h()
        waiting = sum(len(q) for q in self._queues.values())
        return (
            f"{int(hour):02d}:{int(hour % 1 * 60):02d}  served {self.stats['services']:5d}  "
            f"thanked {sum(len(d.terminal.thanked) for d in desks):5d}  in queue {waiting:3d}  "
            f"faked {len(self.truth):3d}"
        )

    def _tick(self, desks: list[Desk], queue_system: _QueueSystem) -> None:
        hour = self.now_h()
        self._arrivals(hour)
        for desk in desks:
            self._shift(desk, hour)
            now = time.monotonic()
            while desk.actions and desk.actions[0][0] <= now:
                _, what, detail = desk.actions.popleft()
                self._act(desk, what, detail, queue_system)
            if desk.clerk is None or desk.actions or desk.terminal.state not in ("idle",):
                continue
            if desk.serving is not None and hour >= desk.busy_until:
                self._end_service(desk, queue_system)
            elif desk.serving is None:
                queue = self._queues[desk.department]
                if queue:
                    desk.serving = queue.popleft()
                    desk.busy_until = hour + self.rng.lognormvariate(1.6, 0.5) / 60  # about 5 minutes
            if self.rng.random() < 0.5 * self.speed / 3600 * 0.01:  # a child at the counter every other hour
                self._child(desk)

    def _arrivals(self, hour: float) -> None:
        if LUNCH[0] <= hour < LUNCH[1] and self.rng.random() < 0.5:
            return
        rate_per_s = self.devices * 8 / 3600 * self.speed  # eight customers an hour per counter
        if self.rng.random() < rate_per_s * 0.01:
            department = self.rng.choice(list(self._queues))
            self.stats["arrivals"] += 1
            self._queues[department].append({"ticket": f"{department[0]}{self.stats['arrivals']:04d}"})

    def _shift(self, desk: Desk, hour: float) -> None:
        at_lunch = LUNCH[0] + desk.index % 2 * 0.5 <= hour < LUNCH[0] + desk.index % 2 * 0.5 + 0.75
        if hour < DAY_START_H or hour >= DAY_END_H:
            wanted = None
        elif at_lunch:
            wanted = desk.relief
        else:
            wanted = desk.regular
        if wanted is desk.clerk or desk.serving is not None or desk.actions:
            return
        if desk.clerk is not None:
            desk.card(desk.clerk.card)  # the card again: log-out
            self.stats["logouts"] += 1
        if wanted is not None:
            desk.actions.append((time.monotonic() + 0.05, "card", wanted.card))
            self.stats["logins"] += 1
        desk.clerk = wanted

    def _end_service(self, desk: Desk, queue_system: _QueueSystem) -> None:
        customer, desk.serving = desk.serving, None
        clerk = desk.clerk
        assert customer is not None
        assert clerk is not None
        self.stats["services"] += 1
        intended = clerk.profile.rate(self.rng)
        now = time.monotonic()
        if clerk.fake == "selective_invite" and intended <= 2:
            self._truth(desk, "selective_invite", intended, seq=None)  # never invited: no record
            return
        self.stats["invites"] += 1
        if desk.panel is None or self.rng.random() < 0.7:
            queue_system.invite(desk.terminal.device, customer["ticket"])
        else:
            desk.panel.press(INVITE_KEY)
        if clerk.fake == "self_press" and self.rng.random() < 0.4:
            desk.actions.append((now + self.real_s(self.rng.uniform(0.3, 1.0)), "fake_press", intended))
            return
        if self.rng.random() < 0.08:
            self.stats["walked_away"] += 1
            return
        react = now + self.real_s(self.rng.uniform(2, 8))
        score = intended
        if clerk.fake == "covered_keys" and intended <= 2:
            if self.rng.random() < 0.5:
                self.stats["walked_away"] += 1
                return
            score = 3
            desk.actions.append((react, "covered_press", intended))
            return
        desk.actions.append((react, "press", score))
        if desk.touch:
            self._touch_follow_up(desk, score, react)
        elif score <= 2 and self.rng.random() < 0.7:
            for reason in self.rng.sample(range(1, 6), self.rng.randint(1, 2)):
                react += self.real_s(self.rng.uniform(0.5, 1.5))
                desk.actions.append((react, "press", reason))
            self.stats["reasons"] += 1
        elif self.rng.random() < 0.04:
            desk.actions.append((react + self.real_s(1.5), "press", self.rng.randint(3, 5)))
            self.stats["amends"] += 1

    def _touch_follow_up(self, desk: Desk, score: int, react: float) -> None:
        """After a face on a touchscreen: reason tags and Done (or Skip) after a 1 or 2; now and then
        the thank-you's change button and another face."""
        if score <= 2:
            if self.rng.random() < 0.7:
                for reason in self.rng.sample(TOUCH_REASONS, self.rng.randint(1, 2)):
                    react += self.real_s(self.rng.uniform(0.5, 1.5))
                    desk.actions.append((react, "tap", f"reason:{reason}"))
                desk.actions.append((react + self.real_s(0.5), "tap", "done"))
                self.stats["reasons"] += 1
            else:
                desk.actions.append((react + self.real_s(0.5), "tap", "skip"))
        elif self.rng.random() < 0.04:
            desk.actions.append((react + self.real_s(0.5), "tap", "change"))
            desk.actions.append((react + self.real_s(1.0), "press", self.rng.randint(3, 5)))
            self.stats["amends"] += 1

    def _child(self, desk: Desk) -> None:
        start = time.monotonic()
        for press in range(self.rng.randint(6, 10)):
            desk.actions.append((start + press * 0.08, "child_press", self.rng.randint(1, 5)))
        self.stats["children"] += 1

    def _act(self, desk: Desk, what: str, detail: Any, queue_system: _QueueSystem) -> None:
        del queue_system
        if what == "card":
            desk.card(detail)
        elif what == "tap":
            desk.terminal.tap(detail)
        elif what == "child_press":
            desk.press(detail, wait_ms=0)  # a child touches what shows now, if anything
        elif what in ("press", "fake_press", "covered_press"):
            if what != "press":
                with self._lock:
                    desk.expect_fake.append(
                        {"kind": "self_press" if what == "fake_press" else "covered_keys", "intended": detail}
                    )
            desk.press(5 if what == "fake_press" else 3 if what == "covered_press" else detail)

    def _watch(self, desk: Desk) -> Any:
        def on_event(terminal: TerminalProcess, event: TerminalEvent) -> None:
            if not isinstance(event, Recorded) or event.kind != "press":
                return
            with self._lock:
                if desk.expect_fake:
                    fake = desk.expect_fake.pop(0)
                    self._truth(desk, fake["kind"], fake["intended"], seq=event.seq)

        return on_event

    def _truth(self, desk: Desk, kind: str, intended: int, seq: int | None) -> None:
        assert desk.clerk is not None
        self.truth.append(
            {
                "device": desk.terminal.device,
                "seq": seq,
                "staff": desk.clerk.profile.staff,
                "kind": kind,
                "intended": intended,
                "sim_hour": round(self.now_h(), 3),
            }
        )

    # -- the end -------------------------------------------------------------------------------------

    def _finish(self, desks: list[Desk], hub: HubProcess, db: str) -> dict[str, Any]:
        for desk in desks:
            if desk.clerk is not None:
                desk.card(desk.clerk.card)
                desk.clerk = None
        for desk in desks:
            desk.terminal.wait_for(lambda t: t.state == "closed", 60, "the clerk to log out")
            desk.terminal.wait_for(_acked_all, 120, "the hub to store everything")
        (self.data / "ground_truth.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in self.truth), encoding="utf-8"
        )
        reader = Reader.open(db)
        lost = stored = duplicates = 0
        kinds: Counter[str] = Counter()
        flags: Counter[str] = Counter()
        for desk in desks:
            seqs = set(reader.stored_seqs(desk.terminal.device))
            recorded = {seq for seq, event in desk.terminal.recorded.items()}
            lost += len(recorded - seqs) + len(set(desk.terminal.thanked) - seqs)
            stored += len(recorded & seqs)
            rows = reader.presses_after(desk.terminal.device, 0)
            moments = [(boot, mono) for _, boot, mono in rows if mono is not None]
            duplicates += len(moments) - len(set(moments))  # one record stored under two seqs
            for event in desk.terminal.recorded.values():
                kinds[event.kind] += 1
                for flag in event.flags:
                    flags[flag] += 1
        alarms = sum(len(d.terminal.of(Misuse)) for d in desks)
        reader.close()
        return {
            "simulated_hours": self.hours,
            "speed": self.speed,
            "devices": self.devices,
            "touch_devices": self.touch,
            "services": self.stats["services"],
            "invites": self.stats["invites"],
            "thanked": sum(len(d.terminal.thanked) for d in desks),
            "thanked_touch": sum(len(d.terminal.thanked) for d in desks if d.touch),
            "records": dict(kinds),
            "flags": dict(flags),
            "misuse_alarms": alarms,
            "walked_away": self.stats["walked_away"],
            "logins": self.stats["logins"],
            "faked": dict(Counter(row["kind"] for row in self.truth)),
            "ground_truth": str(self.data / "ground_truth.jsonl"),
            "stored": stored,
            "lost": lost,
            "duplicates": duplicates,
            "seed": self.seed,
        }


def _acked_all(terminal: TerminalProcess) -> bool:
    return terminal.acked >= max(terminal.recorded, default=0)


class _QueueSystem:
    """The hall's queue system: it asks terminals to invite, over MQTT, with the ticket.

    A real one asks the hub, which checks the request and signs the command (`pingjia hub
    command`); here it stands in for that service and signs with the site's hub key, numbering the
    commands from the clock (in microseconds) so that each is above any the terminal took before.
    """

    def __init__(self, url: str) -> None:
        from hub import identity
        from runtime.mqtt import parse_broker_url

        self._key = identity.load(site_hub_key()[0]).sign
        self._n = 0

        parsed = parse_broker_url(url)
        version = paho.MQTTv311 if parsed.protocol == "3.1.1" else paho.MQTTv5
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"queue-system-{time.monotonic_ns()}", protocol=version
        )
        self._client.connect(parsed.host, parsed.port)
        self._client.loop_start()

    def invite(self, device: str, ticket: str) -> None:
        now_us = time.time_ns() // 1000
        self._n = max(self._n + 1, now_us)
        command = Command(device=device, cmd=CommandName.INVITE, ticket=ticket, n=self._n, t=now_us // 1000)
        self._client.publish(topic(device, Channel.CMD), encode_command(command, self._key), qos=1)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
