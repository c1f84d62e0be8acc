"""The terminal: one loop, inbox -> flow -> effects -> parts, on one thread.

Everything that happens is posted to `inbox` from wherever it happens (the input backend, the
broker's link, signal handlers); the loop takes one item at a time and, in order: hands flow events
to the flow (device.flow, pure), carries out the flow's effects through the parts, and feeds what
the parts answer (a record Stored or StoreFailed, a Recovered outbox, a command's events) back to
the flow, from a queue: nothing re-enters the flow while it handles an event. Then it runs the
timers and lets the uplink send. The parts:

- recorder (device.recorder): signs and stores records, keeps the clerk's binding and the cards;
- uplink (device.uplink): the broker, sending, acks, commands, hub status;
- telemetry (device.telemetry): health, events, the last error, the clock watch;
- io (device.io): what a person touches and sees: the key panel, stdin lines, a screen.

A press is thanked only after its record is committed; records are sent oldest first and forgotten
only when a hub ack covers it. A call-back number a screen posts (`Details.phone`) is sealed to the
hub's X25519 key the moment the loop takes it, before the flow or anything that logs, reports or
stores sees the event; a terminal that holds no seal key (not paired) offers no call-back. The
loop can also be turned by a test, one item at a time (`turn(wait=False)`), with a manual clock
and the in-memory broker and io.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from device import __version__
from device.cards import CardArrived, Cards
from device.claim import ClaimClient, Claimed
from device.clock import Clock
from device.config import DeviceConfig, reason_codes
from device.console import ConsoleLink, ConsoleRequest
from device.delivery import Delivery
from device.events import BadInput as BadInputReported
from device.events import (
    Configured,
    Identified,
    PairedWith,
    PairingCodeShown,
    PanelChanged,
    Ready,
    Refused,
    Report,
    Shown,
    Stopped,
    Thanked,
    UnpairedEvent,
)
from device.flow import (
    Details,
    Display,
    Effect,
    Event,
    Expire,
    Flow,
    FlowRules,
    Login,
    Logout,
    MisuseAlarm,
    Record,
    Recovered,
    Refuse,
    State,
    Stored,
    StoreFailed,
    Thank,
)
from device.identity import Identity
from device.io import BadInput, CardTap, Io, IoDown, IoStatus, IoUp, Quit, Screen
from device.pairing import Identify, Paired, Pairer, Pairing, Unpaired, load_pairing, store_in
from device.recorder import Recorder
from device.telemetry import Errors, Telemetry
from device.uplink import CONFIG_DOC, Uplink
from protocol import (
    AuthError,
    Channel,
    ConfigDoc,
    DecodeError,
    EventKind,
    PanelState,
    VerifyKey,
    decode_config,
    seal,
    verify_config,
)
from runtime.link import Broker, Inbound, LinkDown, LinkUp
from runtime.settings import ConfigError, replaced

__all__ = ["Terminal"]

log = logging.getLogger("pingjia.device")

CARDS_FOLDER = "cards"  # in the data folder: the clerks' cards the hub sent (device.cards)


def _ignore(_event: object) -> None:
    return None


class Terminal:
    def __init__(
        self,
        *,
        identity: Identity,
        config: DeviceConfig,
        clock: Clock,
        broker: Broker | None,
        io: Io | None = None,
        report: Report = _ignore,
        flush: Callable[[], None] = lambda: None,
        hub_key: VerifyKey | None = None,
        hub_seal: str | None = None,
        console: ConsoleLink | None = None,
        broker_for: Callable[[Pairing], Broker | None] | None = None,
        claim_connect: Callable[[str, str], Broker] | None = None,
    ) -> None:
        """OutboxError if the outbox cannot be opened now (the caller may wait for it); IdentityError
        if it is not this identity's.

        `hub_key`: a hub key to pin instead of the one pairing stored (None: pairing's; not paired:
        nothing the broker brings is taken). `hub_seal`: the hub's X25519 public key (hex) to seal
        call-back numbers to instead of the one pairing stored (None: pairing's; neither: no
        call-back is offered). `broker`: the broker to use instead of the one pairing
        gave; `broker_for(pairing)` makes the broker of a pairing (at start, when `broker` is None,
        and when a technician pairs the terminal again). `console`: the technician's serial console
        (default: one on the `console_port` setting, if set).
        """
        self.device = identity.device
        self.identity = identity
        self.inbox: queue.Queue[object] = queue.Queue()
        if console is None and config.console_port:
            console = ConsoleLink(config.console_port, self.inbox.put)
        self.console = console
        self._broker_for = broker_for
        self.base_config = config  # the terminal's own settings; a hub's document goes on top
        self.config = config
        self.hub_key = hub_key
        self.clock = clock
        self.io = io
        self.report = report
        self._flush = flush  # hands on what `report` has buffered: once per turn of the loop
        self.errors = Errors(self.device, report)
        self.recorder = Recorder(
            identity=identity,
            clock=clock,
            retention_days=config.retention_days,
            report=report,
            complain=self.errors,
        )
        pairing = load_pairing(self.recorder.state)
        self.pairer = Pairer(
            device=identity.device,
            pubkey=identity.public_hex,
            fw=__version__,
            pairing=pairing,
            now_ms=clock.mono_ms(),
            persist=store_in(self.recorder.state),
        )
        if hub_key is None and pairing is not None:
            self.hub_key = hub_key = VerifyKey.from_hex(pairing.hub_sign)
        self.hub_seal = hub_seal if hub_seal is not None else pairing.hub_seal if pairing is not None else None
        self.cards = Cards(identity.data_dir / CARDS_FOLDER, device=identity.device, hub_key=self.hub_key)
        if broker is None and pairing is not None and broker_for is not None:
            broker = broker_for(pairing)
        self._said_code: str | None = None
        # Unpaired with a claim broker set: the terminal claims its registration over MQTT with the
        # code it shows (device.claim); `_claim_code` is read from the claim client's thread.
        self._claim_code: str | None = None
        self.claim: ClaimClient | None = None
        if config.claim_broker:
            self.claim = ClaimClient(
                config.claim_broker,
                identity.device,
                identity.key,
                lambda: self._claim_code,
                lambda pairing: self.inbox.put(Claimed(pairing)),
                protocol=config.mqtt_protocol,
                connect=claim_connect,
            )
        self.config_version, config_problem = self._stored_config()
        self.flow = Flow(
            rules=_rules(self.config, can_seal=self.hub_seal is not None),
            staff=self.recorder.saved_staff,
            out_of_service=self.recorder.storage_error is not None,
        )
        self.uplink: Uplink | None = None
        if broker is not None:
            self.uplink = self._uplink(broker)
        self.telemetry = Telemetry(
            device=self.device,
            clock=clock,
            heartbeat_s=config.heartbeat_s,
            data_dir=identity.data_dir,
            report=report,
            errors=self.errors,
            publish=self._publish,
            key=identity.key,
        )
        self._labels = [label.strip() for label in self.config.reason_labels.split(",")]
        self._last_event_ms = clock.mono_ms()
        if config_problem is not None:
            self.errors(config_problem)
        for problem in self.cards.problems:
            self.errors(problem)

    def _uplink(self, broker: Broker) -> Uplink:
        outbox = self.recorder.outbox
        config = self.config
        return Uplink(
            device=self.device,
            key=self.identity.key,
            outbox=outbox,
            boots=self.recorder.boots,
            broker=broker,
            post=self.inbox.put,
            delivery=Delivery(
                acked=outbox.acked,
                head=outbox.head[0],
                batch_max=config.batch_max,
                window=config.window_records,
                ack_timeout_ms=int(config.ack_timeout_s * 1000),
                ack_timeout_max_ms=int(config.ack_timeout_max_s * 1000),
            ),
            report=self.report,
            errors=self.errors,
            hub_key=self.hub_key,
            state=self.recorder.state,
            apply_config=self._apply_config,
            config_version=self.config_version,
            cards=self.cards,
        )

    def _publish(self, channel: Channel, raw: bytes) -> bool:
        return self.uplink is not None and self.uplink.publish(channel, raw)

    # -- the technician's console -------------------------------------------------------------------

    def _console(self, item: ConsoleRequest, now: int) -> None:
        response, change = self.pairer.handle(item.request, now_ms=now, wall_ms=self.clock.wall_ms())
        item.reply(response)
        if isinstance(change, Paired):
            self._paired(change.pairing, change.staff, now)
        elif isinstance(change, Unpaired):
            self._unpaired(now)
        elif isinstance(change, Identify):
            log.warning("%s: a technician asked this terminal to show itself", self.device)
            self.report(Identified())
            if self.io is not None:
                self.io.refuse()  # the panel's beep and blink
                self._show(self._now_showing(), said=False)

    def _paired(self, pairing: Pairing, staff: str | None, now: int) -> None:
        """Take the new hub: its key, and the broker account pairing gave (the old link ends)."""
        if self.uplink is not None:
            self.uplink.stop()
            self.uplink = None
        self.hub_key = VerifyKey.from_hex(pairing.hub_sign)
        self.hub_seal = pairing.hub_seal
        self.cards.pin(self.hub_key)  # the cards another hub signed go
        self.flow.rules = _rules(self.config, can_seal=True)
        self._said_code = None
        broker = self._broker_for(pairing) if self._broker_for is not None else None
        if broker is not None:
            self.uplink = self._uplink(broker)
            self.uplink.start()
        log.warning(
            "%s: paired with hub %s by %s (%s, %s)",
            self.device,
            pairing.hub_sign[:16],
            pairing.tech,
            pairing.department,
            pairing.counter,
        )
        self.report(
            PairedWith(
                hub_key=pairing.hub_sign[:16],
                broker=pairing.broker,
                department=pairing.department,
                counter=pairing.counter,
                tech=pairing.tech,
            )
        )
        self._show(self._now_showing(), said=False)  # the code goes away
        if staff:
            self._feed([Login(staff)], now)

    def _unpaired(self, now: int) -> None:
        if self.uplink is not None:
            self.uplink.stop()
            self.uplink = None
        self.hub_key = None
        self.hub_seal = None
        self.cards.pin(None)
        self.flow.rules = _rules(self.config, can_seal=False)  # nothing to seal a call-back number to
        log.warning("%s: unpaired; it takes nothing from a hub until paired again", self.device)
        self.report(UnpairedEvent())
        self._say_code(now)

    def _say_code(self, now: int) -> None:
        """While unpaired, say the pairing code (again whenever it is renewed)."""
        code = self.pairer.shown_code(now)
        self._claim_code = code.digits if code is not None and self.hub_key is None else None
        if code is None or self.hub_key is not None or code.digits == self._said_code:
            return  # paired, or provisioned with a pinned key (the console still gives the code)
        self._said_code = code.digits
        self._show(self._now_showing(), said=False)  # the panel plays the new code
        left_s = code.left_ms(now) // 1000
        log.warning("%s: not paired; pairing code %s (valid %d s more)", self.device, code.digits, left_s)
        self.report(PairingCodeShown(code=code.digits, left_s=left_s))

    # -- configuration from the hub -----------------------------------------------------------------

    def _stored_config(self) -> tuple[int, str | None]:
        """Put the last good configuration document in force again (kept across reboots, and checked
        again with the pinned key); (its version or 0, a problem to say or None)."""
        raw = self.recorder.state.get(CONFIG_DOC)
        if not isinstance(raw, str) or self.hub_key is None:
            return 0, None
        try:
            doc = decode_config(raw.encode("utf-8"))
            verify_config(doc, self.hub_key)
        except (DecodeError, AuthError) as exc:
            return 0, f"the stored configuration document is not in force: {exc}"
        if doc.device != self.device:
            return 0, f"the stored configuration document is for {doc.device}"
        try:
            self.config = self._configured(doc)
        except ConfigError as exc:
            return 0, f"the stored configuration document {doc.version} is not in force: {exc}"
        return doc.version, None

    def _configured(self, doc: ConfigDoc) -> DeviceConfig:
        settings = {name: value for name, value in doc.settings.items() if name != "staff"}
        return replaced(self.base_config, settings, source=f"configuration document {doc.version}")

    def _apply_config(self, doc: ConfigDoc) -> str | None:
        """Put a verified, newer document in force; None, or why its settings are refused (then
        nothing of it is in force)."""
        try:
            config = self._configured(doc)
        except ConfigError as exc:
            return str(exc)
        self.config = config
        self.config_version = doc.version
        self.flow.rules = _rules(config, can_seal=self.hub_seal is not None)
        self._labels = [label.strip() for label in config.reason_labels.split(",")]
        if self.io is not None:
            self.io.configure(config)
            self._show(self._now_showing(), said=False)
        self.report(Configured(version=doc.version, settings=dict(doc.settings)))
        staff = doc.settings.get("staff")
        if staff is not None and staff != (self.flow.staff or ""):
            self.post(Logout() if staff == "" else Login(staff))
        return None

    # -- running ------------------------------------------------------------------------------------

    def post(self, item: object) -> None:
        """Hand something to the loop (safe from any thread)."""
        self.inbox.put(item)

    def run(self) -> str:
        """Serve until a Quit arrives; return its reason."""
        self.start()
        try:
            while (reason := self.turn()) is None:
                pass
            return reason
        finally:
            self.close()

    def start(self) -> None:
        if self.io is not None:
            self.io.configure(self.config)
            self.io.start(self.inbox.put)
        if self.console is not None:
            self.console.start()
        if self.claim is not None:
            self.claim.start()
        if self.uplink is not None:
            self.uplink.start()
        outbox = self.recorder.outbox
        if self.recorder.storage_error is not None:
            self.errors(f"out of service: {self.recorder.storage_error}")
        self.report(
            Ready(
                device=self.device,
                head=outbox.head[0],
                acked=outbox.acked,
                state=self.flow.state.value,
                config_version=self.config_version,
                paired=self.pairer.pairing is not None,
            )
        )
        log.info(
            "%s: ready, head seq %d, acked %d, state %s", self.device, outbox.head[0], outbox.acked, self.flow.state
        )
        self._show(self._now_showing(), said=False)
        self._say_code(self.clock.mono_ms())

    def turn(self, *, wait: bool = True) -> str | None:
        """Take one item from the inbox (waiting for it until the next deadline, if `wait`), then run
        the timers and send; return the reason of a Quit, else None."""
        self._flush()  # what the last turn reported, before waiting for the next event
        now = self.clock.mono_ms()
        try:
            item = self.inbox.get(timeout=self._wait_s(now)) if wait else self.inbox.get_nowait()
        except queue.Empty:
            item = None
        now = self.clock.mono_ms()
        if isinstance(item, Quit):
            return item.reason
        try:
            if item is not None:
                self._last_event_ms = now
                self._dispatch(item, now)
            self._timers(now)
            if self.uplink is not None:
                self.uplink.pump(now, busy=lambda: not self.inbox.empty())
        except Exception as exc:  # noqa: BLE001 - the terminal outlives any one fault; it is counted and said
            self.errors(f"fault, going on: {exc!r}", "fault")
        return None

    def _wait_s(self, now: int) -> float:
        deadlines = [self.telemetry.next_health_ms, *self.recorder.deadline_ms(self._last_event_ms)]
        code = self.pairer.shown_code(now)
        if code is not None:
            deadlines.append(code.expires_ms)
        for deadline in (self.flow.deadline_ms, self.uplink.delivery.deadline_ms() if self.uplink else None):
            if deadline is not None:
                deadlines.append(deadline)
        return max(0.0, min(deadlines) - now) / 1000

    def _dispatch(self, item: object, now: int) -> None:
        if isinstance(item, Details):
            item = self._sealed(item)  # first of all: the number in clear goes no further
        if isinstance(item, Event):
            self._feed([item], now)
        elif isinstance(item, CardTap):
            self._card(item.uid, now)
        elif isinstance(item, Inbound | LinkUp | LinkDown):
            self._link_event(item, now)
        elif isinstance(item, IoUp | IoDown):
            self._io_changed(item, now)
        elif isinstance(item, ConsoleRequest):
            self._console(item, now)
        elif isinstance(item, Claimed):
            paired = self.pairer.adopt(item.pairing, now)
            if paired is not None:
                self._paired(paired.pairing, None, now)
                self._say_code(now)  # no code to claim with any more
        elif isinstance(item, CardArrived):
            if item.staff == self.flow.staff:
                self._show(self._now_showing(), said=False)  # the clerk at the counter, with the new card
        elif isinstance(item, BadInput):
            log.warning("%s: ignored input %r: %s", self.device, item.line, item.detail)
            self.report(BadInputReported(line=item.line, detail=item.detail))

    def _link_event(self, item: Inbound | LinkUp | LinkDown, now: int) -> None:
        uplink = self.uplink
        if uplink is None:
            return  # not paired (or unpaired since): nothing from a broker is taken
        if isinstance(item, Inbound):
            self._feed(uplink.receive(item, now), now)
        elif isinstance(item, LinkUp):
            uplink.link_up(item)
            self._publish_health(now)
        else:
            uplink.link_down(item)

    def _timers(self, now: int) -> None:
        if self.flow.deadline_ms is not None and now >= self.flow.deadline_ms:
            self._feed([Expire()], now)
        if self.uplink is not None:
            self.uplink.timers(now)
        recovered = self.recorder.probe(now)
        if recovered is not None:
            log.info("%s: the outbox takes records again", self.device)
            self._feed([recovered], now)
        self.recorder.housekeeping(now, self._last_event_ms)
        if self.telemetry.clock_jumped(now):
            self._publish_health(now)
        if now >= self.telemetry.next_health_ms:
            self._publish_health(now)
        self._say_code(now)

    def _sealed(self, details: Details) -> Details:
        """`details` with its call-back number sealed to the hub's key (device id as associated data)
        into `contact`, and the number dropped. A contact an io backend set itself is dropped too:
        only the terminal seals. With no seal key pinned the number is dropped, and said (not the
        number: the log says only that one was dropped)."""
        phone, contact = details.phone, None
        if phone is not None:
            if self.hub_seal is None:
                self.errors("a call-back number came, but no hub key to seal it to is pinned: dropped")
            else:
                try:
                    contact = seal(self.hub_seal, phone.digits.encode("ascii"), self.device.encode("utf-8"))
                except DecodeError as exc:  # the pinned key is not an X25519 key: pairing is broken
                    self.errors(f"a call-back number could not be sealed, dropped: {exc}")
        return replace(details, phone=None, contact=contact)

    # -- the flow -----------------------------------------------------------------------------------

    def _feed(self, events: list[Event], now: int) -> None:
        """Events through the flow; what the parts answer to its effects goes round again, after."""
        waiting = deque(events)
        while waiting:
            event = waiting.popleft()
            clerk = self.flow.staff
            for effect in self.flow.handle(event, now):
                waiting.extend(self._carry_out(effect, event, now))
            self.recorder.bind(self.flow.staff)  # the clerk's log-in survives a reboot
            if self.flow.staff != clerk:
                self._publish_health(now)  # the hub knows who is at the counter (a replacement takes them over)
            if isinstance(event, StoreFailed):
                self.telemetry.event(EventKind.OUT_OF_SERVICE, now, event.detail)
                self._publish_health(now)
            elif isinstance(event, Recovered):
                self.telemetry.event(EventKind.RECOVERED, now)
                self._publish_health(now)

    def _carry_out(self, effect: Effect, cause: Event, now: int) -> list[Event]:
        if isinstance(effect, Record):
            result = self.recorder.store(effect, now)
            if isinstance(result, Stored) and self.uplink is not None:
                self.uplink.delivery.appended(result.seq)
            return [result]
        if isinstance(effect, Thank):
            self.report(Thanked(seq=effect.seq, hash=self.recorder.outbox.head[1], staff=self.flow.staff))
        elif isinstance(effect, Refuse):
            self.report(Refused(reason=effect.reason, key=getattr(cause, "key", None)))
            if self.io is not None:
                self.io.refuse()
        elif isinstance(effect, Display):
            self._show(effect)
        elif isinstance(effect, MisuseAlarm):
            self.telemetry.misuse(effect.presses, effect.window_ms, now)
        return []

    def _show(self, display: Display, *, said: bool = True) -> None:
        """Show a state on the io; `said`: also report it (a panel coming back is shown, not said)."""
        labels = self._labels if display.state is State.REASONS else ()
        follow_up = display.follow_up
        if follow_up is not None and self.hub_seal is None and "callback" in follow_up.pages:
            # Unpaired while the questions were open: no number may be asked that cannot be sealed.
            follow_up = replace(follow_up, pages=tuple(page for page in follow_up.pages if page != "callback"))
        if self.io is not None:
            self.io.show(
                Screen(
                    state=display.state,
                    staff=display.staff,
                    reasons=display.reasons,
                    labels=labels,
                    code=self._code_shown(display.state),
                    follow_up=follow_up,
                    card=self.cards.get(display.staff) if display.staff is not None else None,
                    language=self.config.language,
                )
            )
        if said:
            self.report(
                Shown(
                    state=display.state.value,
                    staff=display.staff,
                    reasons=list(display.reasons),
                    labels=list(labels) if labels else None,
                )
            )

    def _code_shown(self, state: State) -> str | None:
        """The pairing code to show with `state`: while not paired, on a closed terminal."""
        if self.hub_key is not None or state is not State.CLOSED:
            return None
        code = self.pairer.shown_code(self.clock.mono_ms())
        return None if code is None else code.digits

    def _now_showing(self) -> Display:
        flow = self.flow
        follow_up = flow.follow_up if flow.state is State.REASONS else None
        return Display(flow.state, flow.staff, tuple(flow.reasons), follow_up)

    def _card(self, uid: str, now: int) -> None:
        staff = self.recorder.staff_for_card(uid)
        if staff is None:
            self.errors(f"unknown staff card {uid}")
            self.telemetry.event(EventKind.CARD_UNKNOWN, now, uid)
            if self.io is not None:
                self.io.refuse()
            return
        self._feed([Logout() if self.flow.staff == staff else Login(staff)], now)

    # -- what the terminal says of itself -----------------------------------------------------------

    def _io_changed(self, event: IoUp | IoDown, now: int) -> None:
        if isinstance(event, IoUp):
            self._show(self._now_showing(), said=False)  # a panel that rebooted shows nothing
            self.telemetry.event(EventKind.PANEL_UP, now, f"{event.fw} {event.serial}")
            self.report(PanelChanged(connected=True, fw=event.fw))
        else:
            self.errors(f"key panel {event.reason}")
            self.telemetry.event(EventKind.PANEL_DOWN, now, event.reason)
            self.report(PanelChanged(connected=False, reason=event.reason))
        self._publish_health(now)

    def _publish_health(self, now: int) -> None:
        uplink = self.uplink
        self.telemetry.publish_health(
            now,
            self.telemetry.health(
                now,
                state=self.flow.state.value,
                staff=self.flow.staff,
                outbox=self.recorder.outbox,
                io=self.io.status() if self.io is not None else IoStatus(panel=PanelState.NONE),
                session=uplink.session_id if uplink else 0,
                rejected=uplink.rejected if uplink else 0,
                unreadable=uplink.unreadable if uplink else 0,
                hub_epoch_ms=uplink.hub_epoch_ms if uplink else None,
                refused=uplink.refused if uplink else 0,
                refused_last=uplink.refused_last if uplink else None,
                config_version=uplink.config_version if uplink else self.config_version,
                hub_key=self.hub_key.hex if self.hub_key is not None else None,
            ),
        )

    def close(self) -> None:
        if self.claim is not None:
            self.claim.stop()
        if self.console is not None:
            self.console.stop()
        if self.io is not None:
            self.io.stop()
        if self.uplink is not None:
            self.uplink.stop()
        outbox = self.recorder.outbox
        self.recorder.close()
        self.report(
            Stopped(
                head=outbox.head[0],
                acked=outbox.acked,
                resends=self.uplink.delivery.resends if self.uplink else 0,
                bounces=self.io.bounces if self.io is not None else 0,
            )
        )
        self._flush()


def _rules(config: DeviceConfig, *, can_seal: bool) -> FlowRules:
    """The flow's rules from the settings. The follow-up questions beyond the key panel's reasons
    need a screen (`keys = "touch"`), whose questions wait `screen_timeout_s`; a call-back number
    needs a hub key to seal it to (`can_seal`)."""
    screen = config.keys == "touch"
    window_s = config.screen_timeout_s if screen else config.reasons_window_s
    return FlowRules(
        mode=config.mode,
        thank_you_ms=config.thank_you_ms,
        invite_window_ms=int(config.invite_window_s * 1000),
        amend_window_ms=int(config.amend_window_s * 1000),
        misuse_interval_ms=int(config.misuse_interval_s * 1000),
        burst_presses=config.burst_presses,
        burst_window_ms=int(config.burst_window_s * 1000),
        reasons_window_ms=int(window_s * 1000),
        subscores=screen and config.subscores,
        positive_reasons=screen and config.positive_reasons,
        callback=screen and config.callback and can_seal,
        reason_required=screen and config.reason_required,
        reasons_negative=reason_codes(config.reasons_negative),
        reasons_positive=reason_codes(config.reasons_positive),
    )
