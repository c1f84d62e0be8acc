"""The rating flow of a terminal as a transition table (pure: no I/O, times passed in, in ms).

`TRANSITIONS[state][event]` lists the states an event may lead to; `Flow.handle` picks one (the
guards are the flow's rules: mode, windows, what is being stored) and refuses to move anywhere the
table does not allow. It returns effects for the drivers to carry out: store a record, thank,
refuse, show a state, raise a misuse alarm.

Rules it keeps:
- A record is made durable before anything else happens: every record goes through STORING, and
  only the driver's `Stored` leads on (with the thank-you if it was a rating); `StoreFailed` leads
  to OUT_OF_SERVICE, so a customer is never thanked for a rating that was not kept. A terminal
  whose outbox cannot take a write when it starts begins there too.
- One rating per service (一次一评): in `invited` mode the clerk's invite opens a window; one press
  in it is the rating, none becomes a `timeout` record. A press with no invite is kept, flagged
  `uninvited`. In `open` mode every press while someone is logged in is a rating.
- A second press within the amend window replaces the rating with an `amend` record.
- Presses within the misuse interval after a rating are kept with the `misuse` flag; more than
  `burst_presses` presses within `burst_window_ms` raise a misuse alarm.
- After a rating the terminal may ask follow-up questions (REASONS): after a level 1 or 2 rating
  the keys choose reason codes for a few seconds; a screen may also ask for sub-scores (any
  level), reasons after a 4 or 5, and a call-back number after a 1 or 2 (`FlowRules`, `FollowUp`).
  The answers are stored as one amend of the rating carrying them, when the customer is done or
  the window passes; nothing answered, nothing stored. Skipping is letting the window pass (or,
  on a screen, saying done with nothing chosen). A site may require a reason for a bad rating: a
  screen's done without one is refused, and a customer who walks away leaves the rating without.
- With nobody logged in the terminal is closed: presses are kept as unattended (no staff), never
  counted for anyone, and not thanked.
- The thank-you is the same for every level.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import ClassVar, Final

from device.errors import IllegalEvent
from protocol import Flag, Kind, limits
from protocol.record import INDICATORS

__all__ = [
    "PAGES",
    "TRANSITIONS",
    "Details",
    "Display",
    "Event",
    "Expire",
    "Flow",
    "FlowRules",
    "FollowUp",
    "IllegalEvent",
    "Invite",
    "Login",
    "Logout",
    "MisuseAlarm",
    "Phone",
    "Press",
    "Record",
    "Recovered",
    "Refuse",
    "State",
    "StoreFailed",
    "Stored",
    "Thank",
    "diagram",
]


class State(StrEnum):
    CLOSED = "closed"  # nobody logged in: presses count for no one
    IDLE = "idle"  # a clerk is logged in; no invitation open
    INVITED = "invited"  # the clerk asked the customer to rate: the keys blink
    STORING = "storing"  # a record is being made durable
    THANKS = "thanks"  # the customer is being thanked (the same for every level)
    REASONS = "reasons"  # after a rating: the follow-up questions (on the key panel: reason codes after a 1 or 2)
    OUT_OF_SERVICE = "out_of_service"  # the outbox cannot store; presses are refused, never thanked


# -- events (inputs) -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    name: ClassVar[str] = "event"


@dataclass(frozen=True, slots=True)
class Login(Event):
    name: ClassVar[str] = "login"
    staff: str


@dataclass(frozen=True, slots=True)
class Logout(Event):
    name: ClassVar[str] = "logout"


@dataclass(frozen=True, slots=True)
class Invite(Event):
    """The clerk (their PC, their invite key, or the queue system) asks for a rating: 请评价."""

    name: ClassVar[str] = "invite"
    ticket: str | None = None


@dataclass(frozen=True, slots=True)
class Press(Event):
    name: ClassVar[str] = "press"
    key: int  # 1..5, the level chosen; 5 is 非常满意


@dataclass(frozen=True, slots=True)
class Stored(Event):
    name: ClassVar[str] = "stored"
    seq: int


@dataclass(frozen=True, slots=True)
class StoreFailed(Event):
    name: ClassVar[str] = "store_failed"
    detail: str


@dataclass(frozen=True, slots=True)
class Expire(Event):
    """The current state's deadline has passed (the driver sends it at `Flow.deadline_ms`)."""

    name: ClassVar[str] = "expire"


@dataclass(frozen=True, slots=True)
class Recovered(Event):
    name: ClassVar[str] = "recovered"


_PHONE: Final = re.compile(r"\+?[0-9]{5,20}")


class Phone:
    """A customer's call-back number as typed on a screen's keypad: plain digits, an optional
    leading +. It lives only from the keypad to the terminal's loop, which seals it to the hub's key
    at once (device.terminal); it never shows itself: its repr and str are `Phone(****)`, so no log
    line, report or traceback can carry it in clear."""

    __slots__ = ("digits",)
    digits: str

    def __init__(self, digits: str) -> None:
        """ValueError (which does not repeat the digits) unless `digits` is 5..20 digits, optionally
        after a +."""
        if not Phone.accepts(digits):
            raise ValueError("a call-back number is 5..20 digits, optionally after a +")
        self.digits = digits

    @staticmethod
    def accepts(digits: object) -> bool:
        """Whether `digits` would make a Phone (for a keypad's OK key)."""
        return isinstance(digits, str) and _PHONE.fullmatch(digits) is not None

    def __repr__(self) -> str:
        return "Phone(****)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Phone) and other.digits == self.digits

    def __hash__(self) -> int:
        return hash(self.digits)


@dataclass(frozen=True, slots=True)
class Details(Event):
    """A screen's follow-up answers so far (cumulative, not a delta): each one replaces the last.

    `reasons`: reason codes chosen, from the group's list (`FollowUp.codes`); `subscores`:
    (indicator, level 1..5) pairs, indicators from protocol.record.INDICATORS ("attitude" 服务态度,
    "efficiency" 办理效率, "competence" 业务水平); `phone`: a call-back number from the keypad,
    which the terminal seals into `contact` before the flow sees the event (an io backend never
    sets `contact`; a number is sent once, and once sealed it is kept until the answers are stored,
    so a later event without one does not lose it); `done`: the customer finished or skipped:
    store now.
    """

    name: ClassVar[str] = "details"
    reasons: tuple[int, ...] = ()
    subscores: tuple[tuple[str, int], ...] = ()
    phone: Phone | None = None
    contact: str | None = None
    done: bool = False


# -- effects (outputs) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """Make a record durable, then report Stored or StoreFailed."""

    kind: Kind
    staff: str | None
    score: int | None = None
    amends: int | None = None
    reasons: tuple[int, ...] = ()
    subscores: tuple[tuple[str, int], ...] = ()  # sorted by indicator
    contact: str | None = None  # sealed to the hub's key
    ticket: str | None = None
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True, slots=True)
class Thank:
    seq: int


@dataclass(frozen=True, slots=True)
class Refuse:
    # closed, out_of_service, bad_key; of a screen's Details: no_follow_up (none is open),
    # reason_required (done without the reason the site requires), bad_details (an answer the open
    # follow-up does not ask for, or out of range)
    reason: str


PAGES: Final = ("subscores", "reasons", "callback")


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The follow-up questions open after a rating (REASONS), for a screen to ask.

    The level itself is never shown: `group` says only which reason list applies.
    """

    group: str  # "negative" (levels 1-2), "positive" (4-5) or "neutral" (3)
    pages: tuple[str, ...]  # in order, a subset of PAGES
    reason_required: bool  # a done without a reason is refused (a bad rating, where the site says so)
    refused: bool = False  # the last done was refused for want of a reason
    codes: tuple[int, ...] = ()  # the reason codes offered, in order (the group's list); () without a reasons page


@dataclass(frozen=True, slots=True)
class Display:
    state: State
    staff: str | None
    reasons: tuple[int, ...] = ()  # the reason codes chosen so far (REASONS only)
    follow_up: FollowUp | None = None  # the questions open (REASONS only)


@dataclass(frozen=True, slots=True)
class MisuseAlarm:
    presses: int
    window_ms: int


Effect = Record | Thank | Refuse | Display | MisuseAlarm

_S = State
TRANSITIONS: Final[dict[State, dict[str, tuple[State, ...]]]] = {
    _S.CLOSED: {
        Login.name: (_S.IDLE,),
        Logout.name: (_S.CLOSED,),
        Invite.name: (_S.CLOSED,),
        Press.name: (_S.STORING,),  # an unattended press
        Details.name: (_S.CLOSED,),  # refused: no follow-up is open (as in every state but reasons)
    },
    _S.IDLE: {
        Login.name: (_S.IDLE,),
        Logout.name: (_S.CLOSED,),
        Invite.name: (_S.INVITED,),
        Press.name: (_S.STORING,),  # open mode: a rating; invited mode: uninvited; or an amend or misuse
        Details.name: (_S.IDLE,),
    },
    _S.INVITED: {
        Press.name: (_S.STORING,),  # the rating
        Invite.name: (_S.INVITED, _S.STORING),  # again: restart, or a timeout for the previous ticket
        Expire.name: (_S.STORING,),  # a timeout record
        Login.name: (_S.STORING,),
        Logout.name: (_S.STORING,),
        Details.name: (_S.INVITED,),
    },
    _S.STORING: {
        Stored.name: (_S.THANKS, _S.REASONS, _S.IDLE, _S.INVITED, _S.CLOSED),
        StoreFailed.name: (_S.OUT_OF_SERVICE,),
        Details.name: (_S.STORING,),  # refused: a late touch (the loop stores within one turn)
    },
    _S.THANKS: {
        Press.name: (_S.STORING,),  # an amend, or misuse
        Invite.name: (_S.INVITED,),
        Expire.name: (_S.IDLE,),
        Login.name: (_S.IDLE,),
        Logout.name: (_S.CLOSED,),
        Details.name: (_S.THANKS,),
    },
    _S.REASONS: {
        Press.name: (_S.REASONS,),  # toggles a reason code
        Details.name: (_S.REASONS, _S.STORING, _S.IDLE),  # answers so far; done: store them, or nothing answered
        Expire.name: (_S.STORING, _S.IDLE),  # store the answers, or nothing answered
        Invite.name: (_S.STORING, _S.INVITED),
        Login.name: (_S.STORING, _S.IDLE),
        Logout.name: (_S.STORING, _S.CLOSED),
    },
    _S.OUT_OF_SERVICE: {
        Press.name: (_S.OUT_OF_SERVICE,),
        Invite.name: (_S.OUT_OF_SERVICE,),
        Login.name: (_S.OUT_OF_SERVICE,),
        Logout.name: (_S.OUT_OF_SERVICE,),
        Recovered.name: (_S.IDLE, _S.CLOSED),
        Details.name: (_S.OUT_OF_SERVICE,),
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowRules:
    mode: str = "invited"  # or "open"
    thank_you_ms: int = 2500
    invite_window_ms: int = 30_000
    amend_window_ms: int = 5_000
    misuse_interval_ms: int = 3_000
    burst_presses: int = 5
    burst_window_ms: int = 10_000
    reasons_window_ms: int = 6_000  # follow-up questions wait this long after the last answer
    reasons_up_to: int = 2  # levels that ask for reasons
    # What else a screen asks after a rating (the key panel asks only reasons, after a 1 or 2):
    subscores: bool = False  # 服务态度 / 办理效率 / 业务水平 after any level
    positive_reasons: bool = False  # reasons after a 4 or 5 too
    callback: bool = False  # a call-back number after a 1 or 2
    reason_required: bool = False  # a screen's done after a 1 or 2 needs a reason
    reasons_negative: tuple[int, ...] = (1, 2, 3, 4, 5, 6)  # the reason codes a screen offers after a 1 or 2 (or 3)
    reasons_positive: tuple[int, ...] = (51, 52, 53, 54, 55, 56)  # ... after a 4 or 5


@dataclass(slots=True)
class _Rated:
    """The latest rating, for amends and the misuse interval."""

    seq: int
    score: int
    at_ms: int  # when it was stored
    last_ms: int  # when it or its amend was stored
    ticket: str | None
    flags: tuple[Flag, ...]
    amended: bool = False


@dataclass(slots=True)
class _Pending:
    """What happens once the record being stored is durable."""

    record: Record
    resume: State
    thank: bool
    rating: bool = False  # a new rating (amendable), or an amend of the latest
    follow_up: FollowUp | None = None  # the questions to open once the rating is stored (resume REASONS)
    deadline_ms: int | None = None  # the resumed state's deadline, if it keeps an old one
    staff_after: str | None = None
    staff_changes: bool = False


@dataclass(slots=True)
class _Burst:
    times: deque[int] = field(default_factory=deque)
    alarmed: bool = False


class Flow:
    """One terminal's flow. Feed events with the current monotonic time; carry out the effects."""

    def __init__(self, *, rules: FlowRules, staff: str | None = None, out_of_service: bool = False) -> None:
        """Start closed, or idle for the staff logged in before; out of service when the outbox
        cannot take a write at start (until `Recovered`)."""
        self.rules = rules
        self.staff = staff
        self.state = State.OUT_OF_SERVICE if out_of_service else State.IDLE if staff else State.CLOSED
        self.deadline_ms: int | None = None  # when to send Expire, if the state has a deadline
        self.ticket: str | None = None  # of the open invitation
        # The follow-up open in REASONS, and the answers so far.
        self.follow_up: FollowUp | None = None
        self.reasons: list[int] = []
        self.subscores: tuple[tuple[str, int], ...] = ()
        self.contact: str | None = None
        self._rated: _Rated | None = None
        self._pending: _Pending | None = None
        self._burst = _Burst()

    # -- the one entry point ------------------------------------------------------------------------

    def handle(self, event: Event, now_ms: int) -> list[Effect]:
        allowed = TRANSITIONS[self.state].get(event.name)
        if allowed is None:
            raise IllegalEvent(self.state, event)
        effects: list[Effect] = []
        if isinstance(event, Press) and not 1 <= event.key <= 5:
            return [Refuse("bad_key")]
        if isinstance(event, Press) and self.state is not State.OUT_OF_SERVICE:
            effects.extend(self._count_burst(now_ms))
        if isinstance(event, Details):  # before anything of the state: refused in all but one
            target, deadline = self._details(event, now_ms, effects)
        else:
            target, deadline = self._decide(event, now_ms, effects)
        if target not in allowed:
            raise IllegalEvent(self.state, event, target)
        changed = target is not self.state
        self.state = target
        self.deadline_ms = deadline
        shown = (
            changed
            or isinstance(event, Login | Logout)
            or (target is State.REASONS and isinstance(event, Press | Details))
        )
        if shown and target is not State.STORING:  # storing takes a millisecond: nothing to show
            follow_up = self.follow_up if target is State.REASONS else None
            effects.append(Display(target, self.staff, tuple(self.reasons), follow_up))
        return effects

    # -- the rules ----------------------------------------------------------------------------------

    def _decide(self, event: Event, now: int, effects: list[Effect]) -> tuple[State, int | None]:
        state = self.state
        if isinstance(event, Stored | StoreFailed):
            return self._stored(event, now, effects)
        if state is State.OUT_OF_SERVICE:
            return self._out_of_service(event, effects)
        if isinstance(event, Login | Logout):
            return self._staff_change(event, now, effects)
        if isinstance(event, Invite):
            return self._invite(event, now, effects)
        if isinstance(event, Expire):
            return self._expire(now, effects)
        if isinstance(event, Press):
            return self._press(event.key, now, effects)
        raise IllegalEvent(state, event)

    def _store(self, effects: list[Effect], pending: _Pending) -> tuple[State, int | None]:
        self._pending = pending
        effects.append(pending.record)
        return State.STORING, None

    def _stored(self, event: Stored | StoreFailed, now: int, effects: list[Effect]) -> tuple[State, int | None]:
        pending, self._pending = self._pending, None
        assert pending is not None  # STORING is only entered with a pending record
        if pending.staff_changes:
            self.staff = pending.staff_after
        if isinstance(event, StoreFailed):
            return State.OUT_OF_SERVICE, None
        record = pending.record
        if pending.rating and record.kind is Kind.AMEND and self._rated is not None:
            self._rated.amended = True
            self._rated.last_ms = now
        elif pending.rating and record.score is not None:
            self._rated = _Rated(
                seq=event.seq, score=record.score, at_ms=now, last_ms=now, ticket=record.ticket, flags=record.flags
            )
        if pending.thank:
            effects.append(Thank(event.seq))
        resume = pending.resume
        if resume is State.REASONS:
            self._forget_answers()
            self.follow_up = pending.follow_up
            return resume, now + self.rules.reasons_window_ms
        if resume is State.THANKS:
            return resume, pending.deadline_ms if pending.deadline_ms is not None else now + self.rules.thank_you_ms
        if resume is State.INVITED:
            return resume, now + self.rules.invite_window_ms
        if resume is State.IDLE and self.staff is None:
            return State.CLOSED, None
        return resume, None

    def _out_of_service(self, event: Event, effects: list[Effect]) -> tuple[State, int | None]:
        if isinstance(event, Login):
            self.staff = event.staff
        elif isinstance(event, Logout):
            self.staff = None
        elif isinstance(event, Recovered):
            return (State.IDLE if self.staff is not None else State.CLOSED), None
        else:
            effects.append(Refuse("out_of_service"))
        return State.OUT_OF_SERVICE, None

    def _staff_change(self, event: Login | Logout, now: int, effects: list[Effect]) -> tuple[State, int | None]:
        after = event.staff if isinstance(event, Login) else None
        resume = State.IDLE if after is not None else State.CLOSED
        pending = None
        if self.state is State.INVITED and self.staff is not None:
            # The invited customer did not rate before the clerk left: that service is a timeout.
            pending = self._timeout(resume, after)
        elif self.state is State.REASONS and self._answered():
            pending = self._answers_amend(resume, staff_after=after)
        self._rated = None  # a new clerk: nothing of the previous one's customers can be amended
        if pending is not None:
            return self._store(effects, pending)
        self._forget_answers()
        self.staff = after
        self.ticket = None
        return resume, None

    def _timeout(self, resume: State, staff_after: str | None = None, *, staff_changes: bool = True) -> _Pending:
        record = Record(kind=Kind.TIMEOUT, staff=self.staff, ticket=self.ticket)
        self.ticket = None
        return _Pending(record=record, resume=resume, thank=False, staff_after=staff_after, staff_changes=staff_changes)

    def _answered(self) -> bool:
        return bool(self.reasons or self.subscores or self.contact)

    def _forget_answers(self) -> None:
        self.follow_up = None
        self.reasons = []
        self.subscores = ()
        self.contact = None

    def _answers_amend(self, resume: State, *, staff_after: str | None = None, staff_changes: bool = True) -> _Pending:
        """The follow-up's answers as an amend of the rating they follow (its level unchanged)."""
        rated = self._rated
        assert rated is not None  # REASONS follows a rating
        record = Record(
            kind=Kind.AMEND,
            staff=self.staff,
            score=rated.score,
            amends=rated.seq,
            reasons=tuple(self.reasons),
            subscores=self.subscores,
            contact=self.contact,
            ticket=rated.ticket,
            flags=rated.flags,
        )
        self._forget_answers()
        return _Pending(record=record, resume=resume, thank=False, staff_after=staff_after, staff_changes=staff_changes)

    def _invite(self, event: Invite, now: int, effects: list[Effect]) -> tuple[State, int | None]:
        if self.state is State.CLOSED:
            effects.append(Refuse("closed"))
            return State.CLOSED, None
        pending = None
        if self.state is State.INVITED and self.ticket is not None and event.ticket != self.ticket:
            pending = self._timeout(State.INVITED, staff_changes=False)
        elif self.state is State.REASONS and self._answered():
            pending = self._answers_amend(State.INVITED, staff_changes=False)
        self._rated = None  # a new service: no amending the previous customer's rating
        self._forget_answers()
        self.ticket = event.ticket
        if pending is not None:
            return self._store(effects, pending)
        return State.INVITED, now + self.rules.invite_window_ms

    def _expire(self, now: int, effects: list[Effect]) -> tuple[State, int | None]:
        if self.state is State.INVITED:
            return self._store(effects, self._timeout(State.IDLE, staff_changes=False))
        if self.state is State.REASONS and self._answered():
            return self._store(effects, self._answers_amend(State.IDLE, staff_changes=False))
        self._forget_answers()
        return State.IDLE, None

    def _details(self, event: Details, now: int, effects: list[Effect]) -> tuple[State, int | None]:
        """A screen's answers so far: kept (the window starts again); done: stored at once as one
        amend, or refused while a required reason is missing."""
        follow_up = self.follow_up
        if self.state is not State.REASONS or follow_up is None:
            effects.append(Refuse("no_follow_up"))  # a late touch: the question is gone
            return self.state, self.deadline_ms
        if not _fits(event, follow_up):
            effects.append(Refuse("bad_details"))
            return State.REASONS, self.deadline_ms
        self.reasons = list(event.reasons)
        self.subscores = tuple(sorted(event.subscores))
        if event.contact is not None:  # sent once, when typed: kept until the answers are stored
            self.contact = event.contact
        if not event.done:
            return State.REASONS, now + self.rules.reasons_window_ms
        if follow_up.reason_required and not self.reasons:
            self.follow_up = replace(follow_up, refused=True)
            effects.append(Refuse("reason_required"))
            return State.REASONS, now + self.rules.reasons_window_ms
        if self._answered():
            return self._store(effects, self._answers_amend(State.IDLE, staff_changes=False))
        self._forget_answers()
        return State.IDLE, None

    def _follow_up(self, level: int) -> FollowUp | None:
        """The questions to ask after a rating of `level`; None: none (straight to the thanks)."""
        rules = self.rules
        group = "negative" if level <= 2 else "positive" if level >= 4 else "neutral"
        reasons = level <= rules.reasons_up_to or (level >= 4 and rules.positive_reasons)
        pages = tuple(
            page
            for page, asked in zip(PAGES, (rules.subscores, reasons, rules.callback and level <= 2), strict=True)
            if asked
        )
        if not pages:
            return None
        codes = (rules.reasons_positive if level >= 4 else rules.reasons_negative) if reasons else ()
        return FollowUp(
            group=group, pages=pages, reason_required=reasons and rules.reason_required and level <= 2, codes=codes
        )

    def _press(self, key: int, now: int, effects: list[Effect]) -> tuple[State, int | None]:
        state, rules = self.state, self.rules
        if state is State.CLOSED:
            record = Record(kind=Kind.PRESS, staff=None, score=key)
            return self._store(effects, _Pending(record=record, resume=State.CLOSED, thank=False))
        if state is State.REASONS:
            if key in self.reasons:
                self.reasons.remove(key)
            elif len(self.reasons) < limits.MAX_REASONS:
                self.reasons.append(key)
            return State.REASONS, now + rules.reasons_window_ms
        follow_up = self._follow_up(key)
        resume_rating = State.REASONS if follow_up is not None else State.THANKS
        if state is State.INVITED:
            return self._rating(key, self.ticket, (), resume_rating, effects, follow_up=follow_up)
        rated = self._rated
        if rated is not None and not rated.amended and now - rated.at_ms < rules.amend_window_ms:
            record = Record(
                kind=Kind.AMEND, staff=self.staff, score=key, amends=rated.seq, ticket=rated.ticket, flags=rated.flags
            )
            rated.score = key
            return self._store(
                effects, _Pending(record=record, resume=resume_rating, thank=True, rating=True, follow_up=follow_up)
            )
        if rated is not None and now - rated.last_ms < rules.misuse_interval_ms:
            record = Record(kind=Kind.PRESS, staff=self.staff, score=key, flags=(Flag.MISUSE,))
            keep = self.deadline_ms if state is State.THANKS else None
            return self._store(effects, _Pending(record=record, resume=state, thank=False, deadline_ms=keep))
        flags = () if rules.mode == "open" else (Flag.UNINVITED,)
        return self._rating(key, None, flags, resume_rating, effects, follow_up=follow_up)

    def _rating(
        self,
        key: int,
        ticket: str | None,
        flags: tuple[Flag, ...],
        resume: State,
        effects: list[Effect],
        *,
        follow_up: FollowUp | None,
    ) -> tuple[State, int | None]:
        self.ticket = None
        record = Record(kind=Kind.PRESS, staff=self.staff, score=key, ticket=ticket, flags=flags)
        return self._store(
            effects, _Pending(record=record, resume=resume, thank=True, rating=True, follow_up=follow_up)
        )

    def _count_burst(self, now: int) -> list[Effect]:
        times, window = self._burst.times, self.rules.burst_window_ms
        times.append(now)
        while times and now - times[0] > window:
            times.popleft()
        if len(times) > self.rules.burst_presses:
            if not self._burst.alarmed:
                self._burst.alarmed = True
                return [MisuseAlarm(presses=len(times), window_ms=window)]
        else:
            self._burst.alarmed = False
        return []


def _fits(event: Details, follow_up: FollowUp) -> bool:
    """Whether the answers are ones the open follow-up asks for, each in range: what reaches a
    record must be a valid one (protocol.record), whatever a backend sends. A phone must have been
    sealed into `contact` by the terminal before the flow sees it."""
    reasons, subscores, pages = event.reasons, event.subscores, follow_up.pages
    if reasons and (
        "reasons" not in pages
        or len(reasons) > limits.MAX_REASONS
        or len(set(reasons)) != len(reasons)
        or not set(reasons) <= set(follow_up.codes)
    ):
        return False
    indicators = [name for name, _level in subscores]
    if subscores and (
        "subscores" not in pages
        or len(set(indicators)) != len(indicators)
        or not set(indicators) <= set(INDICATORS)
        or any(type(level) is not int or not 1 <= level <= 5 for _name, level in subscores)
    ):
        return False
    if event.contact is not None and (
        "callback" not in pages or not 0 < len(event.contact) <= limits.MAX_CONTACT_CHARS
    ):
        return False
    return event.phone is None


def diagram() -> str:
    """The transition table as a Mermaid state diagram (README.md embeds this text verbatim)."""
    lines = ["stateDiagram-v2", f"    [*] --> {State.CLOSED.value}"]
    for source, edges in TRANSITIONS.items():
        for event, targets in edges.items():
            for target in targets:
                if target is not source:
                    lines.append(f"    {source.value} --> {target.value}: {event}")
    return "\n".join(lines)
