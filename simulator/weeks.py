"""Simulated weeks in one process, fast: `pingjia sim`'s hall, with ground truth per clerk and week.

No processes, broker or real time: every counter's terminal is the real rating flow (device.flow)
driven by a discrete-event clock, so its records (kinds, flags, tickets, amends, timeouts) are the
ones a terminal would store. Around it, as in simulator/sim.py: clerks (simulator.customers) log in
at 08:30 (a few minutes apart), hand over to a relief colleague (or close) for 45 minutes at
lunch, and log out at 17:30; customers of each department arrive (eight an hour per counter, half
that at lunch) and wait for a free counter of their department; a service takes about five
minutes; then the queue system invites with the ticket (70 %) or the clerk presses the invite key;
customers rate from their clerk's distribution, walk away (8 %), give reasons after a 1 or 2
(70 %), correct themselves (4 %); a child plays with the keys every other hour.

Honest noise beyond sim.py, so that the rules meet stray presses that are not fakes: a clerk now
and then forgets to invite and the customer presses anyway (uninvited), and a customer who let the
invitation lapse sometimes presses afterwards (uninvited, after the timeout).

Fakes (sim.py's three, with its rates):

- self_press: for 40 % of services the clerk presses 5 themselves 0.3-1.0 s after the service,
  before the queue system's invitation (which then lapses as a timeout with the ticket) or, where
  they invite with the key, right after the key; and, the issue's other case, half the time right
  after logging in. No ticket; the customer never rates. (`pingjia sim` at its speeds plays it
  inside the invitation: its queue system's invitation arrives first, so the hub stores an
  invited 5, often with the ticket. `Behaviour.self_press_in_window` makes these weeks do that.)
- covered_keys: keys 1 and 2 are covered while the clerk is logged in: an unhappy customer presses
  3 or walks away, and nobody's presses on 1 or 2 register (sim.py's children press through the
  covers: `Behaviour.covers_stop_children` makes these weeks do that).
- selective_invite: customers who look unhappy (they would press 1 or 2) are not invited: no record.

Ground truth is per clerk and ISO week: which fake, how many faked events, and the (device, seq)
of the faked records (selective inviting leaves none). `measure` runs hub.supervision over many
seeds and gives each clerk-flagging rule's precision and recall per clerk-week, and the flags on
an honest hall. The rules' parameters were tuned on TUNING_SEEDS (1-20) only; their figures are
measured on HELD_OUT_SEEDS (1000-1019), which were not looked at while tuning.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import random
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from device.flow import Expire, Flow, FlowRules, Invite, Login, Logout, Record, State, Stored
from device.flow import Press as KeyPress
from hub import supervision
from hub.supervision import Press, Rules
from simulator.customers import DEPARTMENTS, make_staff
from simulator.sim import FAKES

__all__ = [
    "HELD_OUT_SEEDS",
    "TARGETS",
    "TUNING_SEEDS",
    "Behaviour",
    "Mix",
    "SimClerk",
    "SimRecord",
    "SimulatedWeeks",
    "Truth",
    "measure",
    "presses",
    "simulate",
]

TUNING_SEEDS = tuple(range(1, 21))
HELD_OUT_SEEDS = tuple(range(1000, 1020))
# The fake each clerk-flagging rule is meant to catch (what its precision and recall are judged on).
TARGETS = {"S1-self-press": "self_press", "S2-covered-keys": "covered_keys", "S3-selective-invite": "selective_invite"}

SITE_TZ = ZoneInfo("Asia/Shanghai")
DAY_START_H = 8.5
LUNCH_H = 12.0
LUNCH_LENGTH_H = 0.75
DAY_END_H = 17.5
ARRIVALS_FROM_H = 8.25
_HOUR_MS = 3_600_000
_GENESIS = "0" * 64


@dataclass(frozen=True, kw_only=True)
class Mix:
    """Who works in the hall: `counters` terminals, each with a regular clerk, plus relief clerks
    (half as many, as in sim.py); `fakers` of the regular clerks fake, one way each, taken in turn
    from `fakes` (default: six, two of each way; None: as `pingjia sim` chooses, max(len(fakes),
    clerks // 8); 0: an honest hall). Each seed's hall works `weeks` weeks from `first_monday`."""

    counters: int = 24
    fakers: int | None = 6
    fakes: tuple[str, ...] = FAKES
    weeks: int = 1
    first_monday: date = date(2026, 3, 2)

    def __post_init__(self) -> None:
        if self.counters < 1 or self.weeks < 1:
            raise ValueError("counters and weeks must be positive")
        if not self.fakes or any(fake not in FAKES for fake in self.fakes):
            raise ValueError(f"fakes must be some of {', '.join(FAKES)}, got {self.fakes}")
        if self.fakers is not None and not 0 <= self.fakers <= self.counters:
            raise ValueError(f"fakers must be 0..{self.counters} (the regular clerks), got {self.fakers}")
        if self.first_monday.weekday() != 0:
            raise ValueError(f"first_monday must be a Monday, got {self.first_monday}")


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """Rates of the hall (sim.py's where it has them; shares are per service unless said)."""

    arrivals_per_hour: float = 8.0  # per counter; half at lunch
    service_mu: float = 1.6  # service minutes: lognormal(mu, sigma), about five minutes
    service_sigma: float = 0.5
    queue_invites: float = 0.7  # the queue system invites, with the ticket; else the invite key
    walk_away: float = 0.08
    reasons: float = 0.7  # after a 1 or 2
    amend: float = 0.04
    children_per_hour: float = 0.5  # per counter, while a clerk is logged in and the terminal idle
    forgot_invite: float = 0.02  # not in sim.py: no invitation at all ...
    pressed_anyway: float = 0.5  # ... and the customer presses anyway (uninvited)
    late_press: float = 0.25  # not in sim.py: of those who let the invitation lapse, pressed after it
    self_press: float = 0.4
    self_press_after_login: float = 0.5  # per log-in of a self-pressing clerk
    # Of the self-presses after a queue system's invitation, those that land inside it (as they do in
    # `pingjia sim`, whose invitations arrive before the clerk's press): an invited 5 with the ticket,
    # like a customer's. 0: the clerk, who presses before the invitation (uninvited, no ticket).
    self_press_in_window: float = 0.0
    covered_walk_away: float = 0.5  # an unhappy customer at covered keys: walks away, else presses 3
    covers_stop_children: bool = True  # sim.py's children press through the covers (it models customers only)
    selective_skip: float = 1.0  # of the customers who look unhappy, not invited


@dataclass(frozen=True, slots=True)
class SimClerk:
    staff: str
    department: str
    profile: tuple[float, ...]  # weights of levels 5..1
    regular: bool  # a counter's own clerk (else a relief at lunch)
    fake: str | None


@dataclass(frozen=True, slots=True)
class SimRecord:
    """A record as the terminal stored it (its signed fields) and as the hub files it (`day`, the
    clerk's `department`). Times: UTC ms; the terminal's clock is right, so t = at_ms. `prev` and
    `hash` are a stand-in chain (nothing is signed here), so that gaps and breaks can be checked."""

    device: str
    seq: int
    kind: str
    staff: str | None
    score: int | None
    amends: int | None
    reasons: tuple[int, ...]
    ticket: str | None
    flags: tuple[str, ...]
    at_ms: int
    boot: str
    mono: int
    department: str
    day: str
    prev: str
    hash: str


@dataclass(frozen=True, slots=True)
class Truth:
    """What a clerk faked in a week: how, how often, and the records it made (device, seq)."""

    staff: str
    week: str
    fake: str
    events: int
    records: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class SimulatedWeeks:
    """A seed's hall: its clerks (who fakes how), terminals, every record stored, the ground truth
    per clerk-week, the faked events one by one, and how many services there were."""

    seed: int
    mix: Mix
    clerks: tuple[SimClerk, ...]
    devices: dict[str, str]  # device -> department
    records: tuple[SimRecord, ...]
    truth: dict[tuple[str, str], Truth]  # (staff, week) -> what they faked that week
    faked: tuple[dict[str, Any], ...]  # one row per faked event, as sim.py's ground_truth.jsonl
    services: int

    @property
    def weeks(self) -> tuple[str, ...]:
        return tuple(sorted({supervision.iso_week(r.day) for r in self.records}))


# -- the hall -------------------------------------------------------------------------------------------


@dataclass
class _Desk:
    index: int
    device: str
    department: str
    regular: SimClerk
    relief: SimClerk | None
    flow: Flow = field(default_factory=lambda: Flow(rules=FlowRules()))
    clerk: SimClerk | None = None
    seq: int = 0
    token: int = 0  # the flow's current deadline; older Expire events are stale
    serving: str | None = None  # the ticket being served
    finished: str | None = None  # a service that ended while the terminal was busy (a child)
    blocking: int = 0  # scheduled actions the desk waits for before the next customer
    boot: str = ""
    boot_ms: int = 0
    shifts: tuple[int, int, int, int] = (0, 0, 0, 0)  # log-in, lunch, back, closing (UTC ms)
    timeout_truth: deque[tuple[str, int]] = field(default_factory=deque)
    last_hash: str = _GENESIS


@dataclass(frozen=True, slots=True)
class _Action:
    what: str  # press, invite
    value: Any  # the key, or the ticket
    source: str  # customer, clerk, child, queue
    blocking: bool = True
    truth: tuple[str, int | None] | None = None  # (fake, the level the customer would have given)


class _Hall:
    def __init__(self, seed: int, mix: Mix, behaviour: Behaviour) -> None:
        self.seed = seed
        self.mix = mix
        self.b = behaviour
        self.rng = random.Random(seed)
        self.heap: list[tuple[int, int, str, int, Any]] = []
        self.order = itertools.count()
        self.records: list[SimRecord] = []
        self.faked: list[dict[str, Any]] = []
        self.services = 0
        self.day = ""
        self.day_ms = 0  # local midnight of the simulated day, UTC ms
        departments = DEPARTMENTS[: max(1, min(4, (mix.counters + 2) // 3))]
        profiles = make_staff(mix.counters + (mix.counters + 1) // 2, len(departments), random.Random(seed))
        count = mix.fakers if mix.fakers is not None else max(len(mix.fakes), len(profiles) // 8)
        fakers = self.rng.sample(range(mix.counters), min(count, mix.counters))
        fake_of = dict(zip(fakers, mix.fakes * len(fakers), strict=False))
        self.clerks = [
            SimClerk(p.staff, p.department, p.weights, index < mix.counters, fake_of.get(index))
            for index, p in enumerate(profiles)
        ]
        self.profiles = {p.staff: p for p in profiles}
        self.department_of = {c.staff: c.department for c in self.clerks}
        self.desks: list[_Desk] = []
        for index in range(mix.counters):
            regular = self.clerks[index]
            relief = next(
                (
                    c
                    for c in self.clerks[mix.counters :]
                    if c.department == regular.department and all(d.relief is not c for d in self.desks)
                ),
                None,
            )
            self.desks.append(_Desk(index, f"desk-{index + 1:02d}", regular.department, regular, relief))
        self.departments = departments
        self.queues: dict[str, deque[str]] = {d: deque() for d in departments}
        self.by_department: dict[str, list[_Desk]] = defaultdict(list)
        for desk in self.desks:
            self.by_department[desk.department].append(desk)

    # -- the clock -------------------------------------------------------------------------------

    def at(self, hour: float) -> int:
        return self.day_ms + int(hour * _HOUR_MS)

    def push(self, at_ms: int, what: str, index: int, detail: Any = None) -> None:
        heapq.heappush(self.heap, (at_ms, next(self.order), what, index, detail))

    def run(self) -> None:
        day = self.mix.first_monday
        for _ in range(self.mix.weeks):
            for weekday in range(5):
                self.run_day(day + timedelta(days=weekday))
            day += timedelta(days=7)

    def run_day(self, day: date) -> None:
        self.day = day.isoformat()
        self.day_ms = int(datetime(day.year, day.month, day.day, tzinfo=SITE_TZ).timestamp() * 1000)
        for desk in self.desks:
            self.open_desk(desk, day)
        tickets = itertools.count(1)
        for number, department in enumerate(self.queues):
            rate = len(self.by_department[department]) * self.b.arrivals_per_hour
            for hour in self.poisson(ARRIVALS_FROM_H, DAY_END_H, rate):
                if not (LUNCH_H <= hour < LUNCH_H + 1 and self.rng.random() < 0.5):
                    self.push(self.at(hour), "arrive", number, f"{department[0]}{next(tickets):04d}")
        while self.heap:
            self.happen(*heapq.heappop(self.heap))
        for queue in self.queues.values():
            queue.clear()  # who still waits at closing time is not served today

    def open_desk(self, desk: _Desk, day: date) -> None:
        """The terminal boots before opening; the day's shift changes and children."""
        desk.flow = Flow(rules=FlowRules())
        desk.boot = f"b{day:%Y%m%d}-{desk.index + 1}"
        desk.boot_ms = self.at(7.8)
        lunch = LUNCH_H + desk.index % 2 * 0.5
        desk.shifts = (
            self.at(DAY_START_H + self.rng.uniform(0, 0.05)),
            self.at(lunch),
            self.at(lunch + LUNCH_LENGTH_H),
            self.at(DAY_END_H),
        )
        for at_ms in desk.shifts:
            self.push(at_ms, "shift", desk.index)
        for hour in self.poisson(DAY_START_H, DAY_END_H, self.b.children_per_hour):
            self.push(self.at(hour), "child", desk.index)

    def poisson(self, first_h: float, last_h: float, per_hour: float) -> list[float]:
        hours = []
        hour = first_h + self.rng.expovariate(per_hour)
        while hour < last_h:
            hours.append(hour)
            hour += self.rng.expovariate(per_hour)
        return hours

    def happen(self, now: int, _order: int, what: str, index: int, detail: Any) -> None:
        if what == "arrive":
            department = self.departments[index]
            self.queues[department].append(detail)
            for desk in self.by_department[department]:
                if desk.serving is None and not desk.blocking:
                    self.settle(desk, now)
            return
        desk = self.desks[index]
        if what == "act":
            self.act(desk, detail, now)
        elif what == "expire":
            if detail == desk.token and desk.flow.deadline_ms is not None:
                self.feed(desk, Expire(), now)
        elif what == "end":
            desk.serving = None
            if desk.flow.state is State.IDLE and not desk.blocking:
                self.end_service(desk, detail, now)
            else:
                desk.finished = detail  # when the terminal is free again (a child at the keys)
        elif what == "child":
            self.child(desk, now)
        self.settle(desk, now)

    # -- the terminal ------------------------------------------------------------------------------

    def feed(self, desk: _Desk, event: Any, now: int) -> list[int]:
        """Hand `event` to the terminal's flow and store what it records, as its driver does; the
        seqs stored. The flow's deadline, if it has one, comes back as an Expire event."""
        stored = self.handle(desk, event, now)
        desk.token += 1
        if desk.flow.deadline_ms is not None:
            self.push(desk.flow.deadline_ms, "expire", desk.index, desk.token)
        return stored

    def handle(self, desk: _Desk, event: Any, now: int) -> list[int]:
        stored: list[int] = []
        for effect in desk.flow.handle(event, now):
            if isinstance(effect, Record):
                desk.seq += 1
                self.store(desk, effect, now)
                stored.append(desk.seq)
                stored += self.handle(desk, Stored(desk.seq), now)
        return stored

    def store(self, desk: _Desk, effect: Record, now: int) -> None:
        digest = hashlib.sha256(f"{desk.device}/{desk.seq}/{desk.last_hash}".encode()).hexdigest()
        self.records.append(
            SimRecord(
                device=desk.device,
                seq=desk.seq,
                kind=effect.kind.value,
                staff=effect.staff,
                score=effect.score,
                amends=effect.amends,
                reasons=effect.reasons,
                ticket=effect.ticket,
                flags=tuple(sorted(flag.value for flag in effect.flags)),
                at_ms=now,
                boot=desk.boot,
                mono=now - desk.boot_ms,
                department=self.department_of.get(effect.staff or "", ""),
                day=self.day,
                prev=desk.last_hash,
                hash=digest,
            )
        )
        desk.last_hash = digest
        if effect.kind.value == "timeout" and desk.timeout_truth:
            fake, intended = desk.timeout_truth.popleft()
            self.truth(desk, fake, intended, seq=desk.seq, now=now, staff=effect.staff)
        elif effect.kind.value == "press" and not effect.flags:
            desk.timeout_truth.clear()  # someone else's press answered the invitation the customer left

    def truth(
        self, desk: _Desk, fake: str, intended: int | None, *, seq: int | None, now: int, staff: str | None
    ) -> None:
        self.faked.append(
            {
                "device": desk.device,
                "seq": seq,
                "staff": staff,
                "kind": fake,
                "intended": intended,
                "day": self.day,
                "at_ms": now,
            }
        )

    def schedule(self, desk: _Desk, at_ms: int, action: _Action) -> None:
        desk.blocking += action.blocking
        self.push(at_ms, "act", desk.index, action)

    def act(self, desk: _Desk, action: _Action, now: int) -> None:
        desk.blocking -= action.blocking
        staff = desk.clerk.staff if desk.clerk is not None else None
        if action.what == "invite":
            self.feed(desk, Invite(action.value), now)
            return
        covered = desk.clerk is not None and desk.clerk.fake == "covered_keys"
        if covered and action.value <= 2 and (action.source != "child" or self.b.covers_stop_children):
            return  # pressed on the cover: nothing happens
        stored = self.feed(desk, KeyPress(action.value), now)
        if action.truth is not None:
            self.truth(desk, action.truth[0], action.truth[1], seq=stored[0] if stored else None, now=now, staff=staff)

    # -- the hall's people ------------------------------------------------------------------------

    def wanted(self, desk: _Desk, now: int) -> SimClerk | None:
        login, lunch, back, closing = desk.shifts
        if now < login or now >= closing:
            return None
        return desk.relief if lunch <= now < back else desk.regular

    def settle(self, desk: _Desk, now: int) -> None:
        """Whatever the desk can do now: finish a service, change clerks, call the next customer."""
        if desk.blocking or desk.serving is not None:
            return
        if desk.finished is not None:
            if desk.flow.state is not State.IDLE:
                return
            ticket, desk.finished = desk.finished, None
            self.end_service(desk, ticket, now)
            if desk.blocking:
                return
        wanted = self.wanted(desk, now)
        if wanted is not desk.clerk:
            if desk.clerk is not None:
                self.feed(desk, Logout(), now)
            desk.clerk = wanted
            if wanted is not None:
                self.feed(desk, Login(wanted.staff), now)
                if wanted.fake == "self_press" and self.rng.random() < self.b.self_press_after_login:
                    at = now + int(self.rng.uniform(5, 60) * 1000)
                    self.schedule(desk, at, _Action("press", 5, "clerk", truth=("self_press", None)))
                    return
        if desk.clerk is None or desk.flow.state is not State.IDLE:
            return
        queue = self.queues[desk.department]
        if queue:
            desk.serving = queue.popleft()
            minutes = self.rng.lognormvariate(self.b.service_mu, self.b.service_sigma)
            self.push(now + int(minutes * 60_000), "end", desk.index, desk.serving)

    def end_service(self, desk: _Desk, ticket: str, now: int) -> None:
        """A service is over: invite (or not), and what the customer, or the clerk, presses."""
        clerk = desk.clerk
        if clerk is None:
            return
        rng, b = self.rng, self.b
        self.services += 1
        intended = self.profiles[clerk.staff].rate(rng)
        if clerk.fake == "selective_invite" and intended <= 2 and rng.random() < b.selective_skip:
            self.truth(desk, "selective_invite", intended, seq=None, now=now, staff=clerk.staff)  # no record
            return
        react = now + int(rng.uniform(2, 8) * 1000)
        if rng.random() < b.forgot_invite:
            key = self.customer_key(desk, intended)
            if key is not None and rng.random() < b.pressed_anyway:
                self.schedule(desk, react, _Action("press", key, "customer"))
            return
        by_queue = rng.random() < b.queue_invites
        if clerk.fake == "self_press" and rng.random() < b.self_press:
            self.press_for_customer(desk, ticket if by_queue else None, intended, now)
            return
        invite = _Action("invite", ticket, "queue") if by_queue else _Action("invite", None, "clerk")
        self.schedule(desk, now + (int(rng.uniform(0.05, 0.3) * 1000) if by_queue else 0), invite)
        self.customer_rates(desk, intended, react)

    def press_for_customer(self, desk: _Desk, ticket: str | None, intended: int, now: int) -> None:
        """The self-pressing clerk's 5 for the customer who just left."""
        pressed = now + int(self.rng.uniform(0.3, 1.0) * 1000)
        fake = _Action("press", 5, "clerk", truth=("self_press", intended))
        share = self.b.self_press_in_window
        inside = share > 0 and (share >= 1 or self.rng.random() < share)  # no draw at 0: seeds keep their weeks
        if ticket is not None and not inside:  # the clerk presses first; the queue's invitation comes after, and lapses
            self.schedule(desk, pressed, fake)
            self.schedule(desk, pressed + int(self.rng.uniform(0.05, 0.5) * 1000), _Action("invite", ticket, "queue"))
        else:  # the invitation (the queue's, or the key's), then the clerk's own press inside it
            self.schedule(desk, now + (50 if ticket is not None else 0), _Action("invite", ticket, "clerk"))
            self.schedule(desk, pressed, fake)

    def customer_rates(self, desk: _Desk, intended: int, react: int) -> None:
        """The invited customer presses, or walks away (and may press after the window)."""
        rng, b = self.rng, self.b
        covered = desk.clerk is not None and desk.clerk.fake == "covered_keys"
        if rng.random() < b.walk_away:
            key = self.customer_key(desk, intended)
            if key is not None and rng.random() < b.late_press:
                late = react + FlowRules().invite_window_ms + int(rng.uniform(2, 30) * 1000)
                self.schedule(desk, late, _Action("press", key, "customer", blocking=False))
        elif covered and intended <= 2:
            if rng.random() < b.covered_walk_away:
                desk.timeout_truth.append(("covered_keys", intended))
            else:
                self.schedule(desk, react, _Action("press", 3, "customer", truth=("covered_keys", intended)))
        else:
            self.schedule(desk, react, _Action("press", intended, "customer"))
            if intended <= 2 and rng.random() < b.reasons:
                for reason in rng.sample(range(1, 6), rng.randint(1, 2)):
                    react += int(rng.uniform(0.5, 1.5) * 1000)
                    self.schedule(desk, react, _Action("press", reason, "customer"))
            elif rng.random() < b.amend:
                self.schedule(desk, react + 1500, _Action("press", rng.randint(3, 5), "customer"))

    def customer_key(self, desk: _Desk, intended: int) -> int | None:
        """The key an unhappy customer can press at covered keys (3, or none: they leave)."""
        if desk.clerk is not None and desk.clerk.fake == "covered_keys" and intended <= 2:
            return 3 if self.rng.random() >= self.b.covered_walk_away else None
        return intended

    def child(self, desk: _Desk, now: int) -> None:
        if desk.clerk is None or desk.blocking or desk.flow.state is not State.IDLE:
            return
        for press in range(self.rng.randint(6, 10)):
            self.schedule(desk, now + press * 80, _Action("press", self.rng.randint(1, 5), "child"))


# -- the generator and its measure -----------------------------------------------------------------------


def simulate(seed: int, mix: Mix | None = None, behaviour: Behaviour | None = None) -> SimulatedWeeks:
    """`mix.weeks` working weeks (Monday to Friday) of a hall, from `seed`: the same seed, mix and
    behaviour give the same records and truth."""
    mix = mix or Mix()
    hall = _Hall(seed, mix, behaviour or Behaviour())
    hall.run()
    truth: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in hall.faked:
        truth[(row["staff"], supervision.iso_week(row["day"]))].append(row)
    return SimulatedWeeks(
        seed=seed,
        mix=mix,
        clerks=tuple(hall.clerks),
        devices={desk.device: desk.department for desk in hall.desks},
        records=tuple(hall.records),
        truth={
            key: Truth(
                staff=key[0],
                week=key[1],
                fake=rows[0]["kind"],
                events=len(rows),
                records=tuple((r["device"], r["seq"]) for r in rows if r["seq"] is not None),
            )
            for key, rows in truth.items()
        },
        faked=tuple(hall.faked),
        services=hall.services,
    )


def presses(weeks: SimulatedWeeks) -> list[Press]:
    """The records as hub.supervision reads them from the hub's `ratings` table."""
    return [
        Press(
            device=r.device,
            seq=r.seq,
            kind=r.kind,
            staff=r.staff,
            score=r.score,
            at_ms=r.at_ms,
            day=r.day,
            department=r.department,
            flags=r.flags,
            ticket=r.ticket,
            amends=r.amends,
            reasons=r.reasons,
            t_device=r.at_ms,
            boot=r.boot,
            mono=r.mono,
            prev=r.prev,
            hash=r.hash,
        )
        for r in weeks.records
    ]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def measure(
    seeds: Iterable[int],
    mix: Mix | None = None,
    behaviour: Behaviour | None = None,
    rules: Rules | None = None,
    *,
    honest: bool = True,
) -> dict[str, Any]:
    """Each clerk-flagging rule's precision and recall per clerk-week over the seeds' halls, and
    (unless not `honest`) every rule's flags on an honest hall of the same seeds (no fakers).

    A clerk-week is positive for a rule when the clerk faked the rule's target (TARGETS) at least
    once that week; a flag on any other clerk-week, a faker of another kind included, is a false
    positive. Precision is None where a rule raised no flag. Tune on TUNING_SEEDS; report on
    HELD_OUT_SEEDS.
    """
    mix = mix or Mix()
    seeds = list(seeds)
    counts = {rule: Counter[str]() for rule in TARGETS}
    positives: Counter[str] = Counter()
    terminal_flags: Counter[str] = Counter()
    honest_flags: Counter[str] = Counter()
    clerk_weeks = honest_clerk_weeks = services = 0
    started = time.perf_counter()
    for seed in seeds:
        weeks = simulate(seed, mix, behaviour)
        services += weeks.services
        flagged: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for flag in supervision.supervise(presses(weeks), rules):
            if flag.subject == "staff":
                flagged[flag.rule].add((flag.key, flag.week))
            else:
                terminal_flags[flag.rule] += 1
        universe = [(clerk.staff, week) for clerk in weeks.clerks for week in weeks.weeks]
        clerk_weeks += len(universe)
        for faked in weeks.truth.values():
            positives[faked.fake] += 1
        for rule, target in TARGETS.items():
            for key in universe:
                truth = weeks.truth.get(key)
                positive = truth is not None and truth.fake == target
                hit = key in flagged[rule]
                counts[rule]["tp" if positive and hit else "fn" if positive else "fp" if hit else "tn"] += 1
        if honest:
            hall = simulate(seed, replace(mix, fakers=0), behaviour)
            honest_clerk_weeks += len(hall.clerks) * len(hall.weeks)
            for flag in supervision.supervise(presses(hall), rules):
                honest_flags[flag.rule] += 1
    per_rule = {
        rule: {
            "target": TARGETS[rule],
            "tp": c["tp"],
            "fp": c["fp"],
            "fn": c["fn"],
            "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
            "recall": _ratio(c["tp"], c["tp"] + c["fn"]),
        }
        for rule, c in counts.items()
    }
    return {
        "seeds": seeds,
        "counters": mix.counters,
        "fakers": mix.fakers,
        "fakes": list(mix.fakes),
        "weeks_per_seed": mix.weeks,
        "clerk_weeks": clerk_weeks,
        "services": services,
        "positives": dict(positives),
        "rules": per_rule,
        "worst_precision": min((r["precision"] or 0.0) for r in per_rule.values()),
        "worst_recall": min((r["recall"] or 0.0) for r in per_rule.values()),
        "terminal_flags": dict(terminal_flags),
        "honest_clerk_weeks": honest_clerk_weeks,
        "honest_flags": sum(honest_flags.values()),
        "honest_flags_by_rule": dict(honest_flags),
        "seconds": round(time.perf_counter() - started, 2),
    }
