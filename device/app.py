"""The terminal's main loop: key events -> flow -> outbox -> link, on one thread.

Key sources (stdin, the serial panel), the MQTT network thread and signal handlers only post events
to `inbox`; everything else (the flow, the outbox, signing, publishing, the panel's LEDs) happens
here, in order. A press is thanked only after its record is committed; records are sent oldest
first and forgotten only when a hub ack covers them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import shutil
from collections.abc import Callable
from typing import Any, Protocol

from device import __version__
from device.clock import Clock
from device.config import DeviceConfig
from device.delivery import Delivery
from device.feedback import BLINK, FEEDBACK, ON, REFUSED_BEEP
from device.flow import (
    Display,
    Event,
    Expire,
    Flow,
    FlowRules,
    Invite,
    Login,
    Logout,
    MisuseAlarm,
    Press,
    Record,
    Recovered,
    Refuse,
    State,
    Stored,
    StoreFailed,
    Thank,
)
from device.identity import SETTINGS_FILE, Identity, open_outbox
from device.keys import BadInput, CardTap, Debouncer, Quit
from device.mqtt import BrokerUrl, Inbound, LinkDown, LinkUp, MqttSession
from device.outbox import OutboxError, Pending
from device.panel import CardRead, KeyDown, KeyUp, PanelDown, PanelUp
from device.settings import Settings, SettingsError
from protocol import (
    HUB_STATUS_FILTER,
    Channel,
    CommandName,
    DecodeError,
    DeviceEvent,
    EventKind,
    Health,
    PanelState,
    ProtocolError,
    Rating,
    Reason,
    Status,
    StatusState,
    decode_ack,
    decode_command,
    decode_status,
    encode_event,
    encode_health,
    encode_status,
    seal_batch,
    topic,
)
from protocol.canonical import printable
from protocol.limits import MAX_DETAIL_CHARS
from protocol.panel import INVITE_KEY
from runtime.logs import LogLimiter

__all__ = ["Terminal"]

log = logging.getLogger("pingjia.device")

_SESSION_BITS = 24  # session id = boots << 24 | connection attempt within this boot
_IDLE_CHECKPOINT_MS = 1000
_PRUNE_EVERY_MS = 3_600_000
_PROBE_EVERY_MS = 5_000
_PROBE_FREE_BYTES = 256 * 1024  # below this, the outbox is not trusted to take a record
_CLOCK_JUMP_MS = 2_000
_HUB_STATUS_PREFIX = HUB_STATUS_FILTER.split("+", 1)[0]  # "pingjia/hub/": a hub's status topic
_REMEMBERED_RETAINED = 1000  # unreadable retained messages remembered, so each is reported once


Emit = Callable[[dict[str, Any]], None]


class PanelLike(Protocol):
    """What the terminal needs of its key panel (device.panel.PanelLink, or a test double)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def set_leds(self, states: Any) -> None: ...

    def beep(self, pattern: Any) -> None: ...

    def show(self, states: Any, beep: Any = None) -> None: ...

    @property
    def counters(self) -> Any: ...


class Terminal:
    def __init__(
        self,
        *,
        identity: Identity,
        config: DeviceConfig,
        broker: BrokerUrl | None,
        clock: Clock,
        emit: Emit,
        panel: Callable[[Callable[[object], None]], PanelLike] | None = None,
        flush: Callable[[], None] = lambda: None,
    ) -> None:
        self.identity = identity
        self.device = identity.device
        self.config = config
        self.clock = clock
        self.emit = emit
        self._flush = flush  # hands on what `emit` has buffered: once per turn of the loop
        self.inbox: queue.Queue[object] = queue.Queue()
        self.outbox = open_outbox(identity)
        try:  # a start is counted before anything else; on a full disk it is counted in memory
            self.outbox.next_boot()
            self._storage_error: str | None = None
        except OutboxError as exc:
            self._storage_error = str(exc)
        self.boots = self.outbox.boots
        self.settings = Settings(identity.data_dir / SETTINGS_FILE)
        self._saved_staff: str | None = self.settings.get("staff")
        self.flow = Flow(rules=_rules(config), staff=self._saved_staff, out_of_service=self._storage_error is not None)
        self.delivery = Delivery(
            acked=self.outbox.acked,
            head=self.outbox.head[0],
            batch_max=config.batch_max,
            window=config.window_records,
            ack_timeout_ms=int(config.ack_timeout_s * 1000),
            ack_timeout_max_ms=int(config.ack_timeout_max_s * 1000),
        )
        self.debouncer = Debouncer(config.debounce_ms)
        self._reason_labels = [label.strip() for label in config.reason_labels.split(",")]
        self.session_id = 0
        self.last_error: str | None = None
        self.rejected = 0
        self.unreadable = 0  # messages from the broker that could not be read (or handled)
        self.faults = 0  # turns of the loop that failed for a reason nobody foresaw
        self._limited = LogLimiter(log)
        self._unreadable_retained: dict[tuple[str, str], None] = {}  # (topic, sha256) reported once
        self.misuse_alarms = 0
        self.hub_epoch_ms: int | None = None  # hub clock minus this boot's monotonic clock, from acks
        self.panel_state = PanelState.NONE if panel is None else PanelState.DISCONNECTED
        self.panel_fw: str | None = None
        self._dirty = False
        self._hub_came_online = False
        now = clock.mono_ms()
        self._started_ms = now
        self._last_event_ms = now
        self._next_prune_ms = now
        self._next_health_ms = now
        self._next_probe_ms: int | None = None if self._storage_error is None else now + _PROBE_EVERY_MS
        self._epoch_ms = clock.wall_ms() - now  # wall minus mono: moves only when the wall clock jumps
        self._topics = {channel: topic(self.device, channel) for channel in Channel}
        self.panel = panel(self._from_panel) if panel is not None else None
        self.link: MqttSession | None = None
        if broker is not None:
            self.link = MqttSession(
                url=broker,
                client_id=self.device,
                on_event=self.inbox.put,
                subscriptions=[(self._topics[Channel.ACK], 1), (self._topics[Channel.CMD], 1), (HUB_STATUS_FILTER, 1)],
                will=self._will,
                clean_start=True,
                protocol=config.mqtt_protocol,
                keepalive_s=config.keepalive_s,
                connect_timeout_s=config.connect_timeout_s,
                reconnect_min_s=config.reconnect_min_s,
                reconnect_max_s=config.reconnect_max_s,
            )

    # -- running ------------------------------------------------------------------------------------

    def post(self, event: object) -> None:
        """Hand an event to the main loop (safe from any thread)."""
        self.inbox.put(event)

    def _from_panel(self, event: object) -> None:
        # A press is its down-edge: a key's release would only wake the loop for nothing.
        if not isinstance(event, KeyUp):
            self.inbox.put(event)

    def run(self) -> str:
        """Serve until a Quit arrives; return its reason."""
        if self.link is not None:
            self.link.start()
        if self.panel is not None:
            self.panel.start()
        head, acked = self.outbox.head[0], self.outbox.acked
        if self._storage_error is not None:
            self._error(f"out of service: {self._storage_error}")
        self.emit({"event": "ready", "device": self.device, "head": head, "acked": acked, "state": self.flow.state})
        log.info("%s: ready, head seq %d, acked %d, state %s", self.device, head, acked, self.flow.state)
        self._show(Display(self.flow.state, self.flow.staff))
        try:
            return self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> str:
        while True:
            self._flush()  # what the last turn emitted, before waiting for the next event
            now = self.clock.mono_ms()
            try:
                item = self.inbox.get(timeout=self._wait_s(now))
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
                self._pump(now)
            except Exception as exc:  # noqa: BLE001 - the terminal outlives any one fault; it is counted and said
                self.faults += 1
                self._error(f"fault, going on: {exc!r}", kind="fault")

    def _wait_s(self, now: int) -> float:
        deadlines = [self._next_prune_ms, self._next_health_ms]
        for deadline in (self.flow.deadline_ms, self.delivery.deadline_ms(), self._next_probe_ms):
            if deadline is not None:
                deadlines.append(deadline)
        if self._dirty:
            deadlines.append(self._last_event_ms + _IDLE_CHECKPOINT_MS)
        return max(0.0, min(deadlines) - now) / 1000

    def _dispatch(self, item: object, now: int) -> None:
        if isinstance(item, Event):
            self._feed(item, now)
        elif isinstance(item, KeyDown):
            if item.key == INVITE_KEY:
                self._feed(Invite(), now)
            elif self.debouncer.press(item.key, item.panel_ms):
                self._feed(Press(item.key), now)
        elif isinstance(item, CardTap | CardRead):
            self._card(item.uid, now)
        elif isinstance(item, Inbound):
            self._inbound(item, now)
        elif isinstance(item, LinkUp):
            self._link_up(item, now)
        elif isinstance(item, LinkDown):
            self.delivery.connection_down()
            self.emit({"event": "offline", "reason": item.reason})
        elif isinstance(item, PanelUp | PanelDown):
            self._panel(item, now)
        elif isinstance(item, BadInput):
            log.warning("%s: ignored input %r: %s", self.device, item.line, item.detail)
            self.emit({"event": "bad_input", "line": item.line, "detail": item.detail})

    def _timers(self, now: int) -> None:
        if self.flow.deadline_ms is not None and now >= self.flow.deadline_ms:
            self._feed(Expire(), now)
        if self.delivery.check_timeout(now):
            log.info(
                "%s: no ack for seqs %d..%d; sending again", self.device, self.delivery.acked + 1, self.delivery.head
            )
        if self._next_probe_ms is not None and now >= self._next_probe_ms:
            self._probe(now)
        if self._dirty and now - self._last_event_ms >= _IDLE_CHECKPOINT_MS:
            self._dirty = False
            self._guard(self.outbox.save_meta)
            self._guard(self.outbox.checkpoint)
        if now >= self._next_prune_ms:
            self._next_prune_ms = now + _PRUNE_EVERY_MS
            cutoff = self.clock.wall_ms() - int(self.config.retention_days * 86_400_000)
            self._guard(lambda: self.outbox.prune(older_than_ms=cutoff))
        self._watch_clock(now)
        if now >= self._next_health_ms:
            self._publish_health(now)

    def _guard(self, action: Callable[[], object]) -> None:
        try:
            action()
        except OutboxError as exc:
            self._error(str(exc))

    def _error(self, detail: str, *, kind: str = "error") -> None:
        """Say what went wrong: in health (`last_error`), as an event, and in the log (at most a few
        lines a minute of each `kind`, which anyone on the broker could otherwise provoke at will)."""
        detail = printable(detail, 1000)
        self.last_error = detail[:MAX_DETAIL_CHARS]
        self._limited.log(logging.ERROR, kind, "%s: %s", self.device, detail)
        self.emit({"event": "error", "detail": detail})

    # -- the flow -----------------------------------------------------------------------------------

    def _feed(self, event: Event, now: int) -> None:
        for effect in self.flow.handle(event, now):
            if isinstance(effect, Record):
                self._store(effect, now)
            elif isinstance(effect, Thank):
                self.emit(
                    {"event": "thanked", "seq": effect.seq, "hash": self.outbox.head[1], "staff": self.flow.staff}
                )
            elif isinstance(effect, Refuse):
                self.emit({"event": "refused", "reason": effect.reason, "key": getattr(event, "key", None)})
                if self.panel is not None:
                    self.panel.beep(REFUSED_BEEP)
            elif isinstance(effect, Display):
                self._display(effect, event)
            elif isinstance(effect, MisuseAlarm):
                self.misuse_alarms += 1
                detail = f"{effect.presses} presses within {effect.window_ms // 1000} s"
                self.emit({"event": "misuse", "detail": detail})
                self._publish_event(EventKind.MISUSE_BURST, now, detail)

    def _store(self, effect: Record, now: int) -> None:
        def build(seq: int, prev: str) -> Rating:
            return Rating(
                device=self.device,
                seq=seq,
                kind=effect.kind,
                t=self.clock.wall_ms(),
                boot=self.clock.boot,
                mono=now,
                fw=__version__,
                prev=prev,
                staff=effect.staff,
                score=effect.score,
                amends=effect.amends,
                reasons=effect.reasons,
                ticket=effect.ticket,
                flags=effect.flags,
            ).signed(self.identity.key)

        try:
            appended = self.outbox.append(build, now_ms=self.clock.wall_ms())
        except Exception as exc:  # noqa: BLE001 - not stored, whyever: never thanked; out of service
            self._error(f"out of service: {exc}")
            self._next_probe_ms = now + _PROBE_EVERY_MS
            self._feed(StoreFailed(str(exc)), now)
            self._publish_event(EventKind.OUT_OF_SERVICE, now, str(exc))
            self._publish_health(now)
            return
        self._dirty = True
        self.delivery.appended(appended.seq)
        record = appended.record
        self.emit(
            {
                "event": "recorded",
                "seq": appended.seq,
                "kind": record.kind.value,
                "staff": record.staff,
                "flags": [flag.value for flag in record.flags],
                "amends": record.amends,
                "reasons": list(record.reasons),
            }
        )
        self._feed(Stored(appended.seq), now)

    def _display(self, effect: Display, event: Event) -> None:
        if effect.staff != self._saved_staff:  # a log-in or log-out: the binding survives a reboot
            try:
                self.settings.update(staff=effect.staff, staff_since_ms=self.clock.wall_ms())
                self._saved_staff = effect.staff
            except SettingsError as exc:
                self._error(f"staff binding not saved: {exc}")
        self._show(effect)
        shown: dict[str, Any] = {
            "event": "display",
            "state": effect.state,
            "staff": effect.staff,
            "reasons": list(effect.reasons),
        }
        if effect.state is State.REASONS:  # what a screen shows and a voice reads for keys 1..5
            shown["labels"] = self._reason_labels
        self.emit(shown)

    def _show(self, effect: Display) -> None:
        if self.panel is None:
            return
        feedback = FEEDBACK[effect.state]
        leds = feedback.leds
        if effect.state is State.REASONS and effect.reasons:
            leds = tuple(ON if key in effect.reasons else BLINK for key in range(1, 6))  # type: ignore[assignment]
        self.panel.show(leds, feedback.beep or None)

    def _card(self, uid: str, now: int) -> None:
        cards: dict[str, str] = self.settings.get("cards", {})
        staff = cards.get(uid)
        if staff is None:
            self._error(f"unknown staff card {uid}")
            self._publish_event(EventKind.CARD_UNKNOWN, now, uid)
            if self.panel is not None:
                self.panel.beep(REFUSED_BEEP)
            return
        self._feed(Logout() if self.flow.staff == staff else Login(staff), now)

    def _probe(self, now: int) -> None:
        """While out of service, check whether the outbox can take a record again."""
        try:
            free = shutil.disk_usage(self.identity.data_dir).free
            if free < _PROBE_FREE_BYTES:
                raise OutboxError(f"only {free} bytes free")
            self.outbox.probe(self.clock.wall_ms())
            self.outbox.save_meta()  # a start counted only in memory while the disk was full
        except (OutboxError, OSError):
            self._next_probe_ms = now + _PROBE_EVERY_MS
            return
        self._next_probe_ms = None
        log.info("%s: the outbox takes records again", self.device)
        self._feed(Recovered(), now)
        self._publish_event(EventKind.RECOVERED, now, None)
        self._publish_health(now)

    # -- the panel ----------------------------------------------------------------------------------

    def _panel(self, event: PanelUp | PanelDown, now: int) -> None:
        if isinstance(event, PanelUp):
            self.panel_state, self.panel_fw = PanelState.CONNECTED, event.fw
            self._show(Display(self.flow.state, self.flow.staff, tuple(self.flow.reasons)))
            self._publish_event(EventKind.PANEL_UP, now, f"{event.fw} {event.serial}")
            self.emit({"event": "panel", "connected": True, "fw": event.fw})
        else:
            self.panel_state = PanelState.DISCONNECTED
            self._error(f"key panel {event.reason}")
            self._publish_event(EventKind.PANEL_DOWN, now, event.reason)
            self.emit({"event": "panel", "connected": False, "reason": event.reason})
        self._publish_health(now)

    # -- health and events --------------------------------------------------------------------------

    def _watch_clock(self, now: int) -> None:
        epoch = self.clock.wall_ms() - now
        jump = epoch - self._epoch_ms
        if abs(jump) >= _CLOCK_JUMP_MS:
            self._epoch_ms = epoch
            detail = f"wall clock moved {jump:+d} ms"
            log.warning("%s: %s", self.device, detail)
            self.emit({"event": "clock_jump", "ms": jump})
            self._publish_event(EventKind.CLOCK_JUMP, now, detail)
            self._publish_health(now)

    def health(self, now: int) -> Health:
        oldest = self.outbox.oldest_unacked_ms()
        wall = self.clock.wall_ms()
        try:
            free = shutil.disk_usage(self.identity.data_dir).free
        except OSError:
            free = 0
        return Health(
            device=self.device,
            t=wall,
            boot=self.clock.boot,
            mono=now,
            fw=__version__,
            uptime_s=(now - self._started_ms) // 1000,
            state=self.flow.state.value,
            panel=self.panel_state,
            outbox_depth=self.outbox.depth,
            free_disk_bytes=free,
            misuse_alarms=self.misuse_alarms,
            rejected=self.rejected,
            session=self.session_id,
            staff=self.flow.staff,
            panel_fw=self.panel_fw,
            oldest_unacked_s=None if oldest is None else max(0, (wall - oldest) // 1000),
            hub_offset_ms=None if self.hub_epoch_ms is None else self.hub_epoch_ms - (wall - now),
            last_error=self.last_error,
            panel_dropped=None if self.panel is None else sum(self.panel.counters.dropped.values()),
            unreadable=self.unreadable,
        )

    def _publish_health(self, now: int) -> None:
        self._next_health_ms = now + int(self.config.heartbeat_s * 1000)
        health = encode_health(self.health(now))
        self.emit({"event": "health", **json.loads(health)})
        if self.link is not None and self.link.connected:
            self.link.publish(self._topics[Channel.HEALTH], health, retain=True)

    def _publish_event(self, kind: EventKind, now: int, detail: str | None) -> None:
        if self.link is None or not self.link.connected:
            return
        event = DeviceEvent(
            device=self.device,
            t=self.clock.wall_ms(),
            boot=self.clock.boot,
            mono=now,
            kind=kind,
            detail=None if detail is None else detail[:200],
        )
        self.link.publish(self._topics[Channel.EVENT], encode_event(event))

    # -- the link -----------------------------------------------------------------------------------

    def _will(self, attempt: int) -> tuple[str, bytes]:
        session = self.boots << _SESSION_BITS | attempt % (1 << _SESSION_BITS)
        status = Status(device=self.device, state=StatusState.OFFLINE, session=session)
        return self._topics[Channel.STATUS], encode_status(status)

    def _link_up(self, event: LinkUp, now: int) -> None:
        assert self.link is not None
        self.session_id = self.boots << _SESSION_BITS | event.attempt % (1 << _SESSION_BITS)
        online = Status(device=self.device, state=StatusState.ONLINE, session=self.session_id)
        self.link.publish(self._topics[Channel.STATUS], encode_status(online), retain=True)
        self.delivery.connection_up()
        self._publish_health(now)
        self.emit({"event": "online", "protocol": event.protocol, "session": self.session_id})

    def _inbound(self, message: Inbound, now: int) -> None:
        """A message from the broker. Anyone there may have sent it: what cannot be read, or makes a
        handler fail for a reason nobody foresaw, is reported (`_unreadable`) and the terminal goes on."""
        what = "message"
        try:
            if message.topic == self._topics[Channel.CMD]:
                what = "command"
                self._command(message.payload, now)
            elif message.topic == self._topics[Channel.ACK]:
                what = "ack"
                self._ack(message.payload, now)
            elif message.topic.startswith(_HUB_STATUS_PREFIX):
                what = "hub status"
                self._hub_status(message.payload)
        except ProtocolError as exc:
            self._unreadable(message, what, str(exc))
        except Exception as exc:  # noqa: BLE001 - see above
            self._unreadable(message, what, f"{Reason.UNHANDLED.value}: {exc!r}")

    def _unreadable(self, message: Inbound, what: str, detail: str) -> None:
        """Count and say it; a retained message, which comes again at every reconnect, only once."""
        if message.retained:
            seen = (message.topic, hashlib.sha256(message.payload).hexdigest())
            if seen in self._unreadable_retained:
                return
            if len(self._unreadable_retained) >= _REMEMBERED_RETAINED:
                self._unreadable_retained.pop(next(iter(self._unreadable_retained)))
            self._unreadable_retained[seen] = None
        self.unreadable += 1
        retained = ", retained" if message.retained else ""
        self._error(
            f"unreadable {what} on {message.topic[:120]} ({len(message.payload)} bytes{retained}): {detail}",
            kind=f"unreadable {what}",
        )

    def _hub_status(self, payload: bytes) -> None:
        """A hub came online, or this terminal connected and heard that one is: check it (`_check_hub`)."""
        if not payload:
            return  # a retained status cleared
        status = decode_status(payload)
        if status.state is StatusState.ONLINE:
            self._hub_came_online = True  # checked by _pump once the link is up (it may come before LinkUp)

    def _check_hub(self) -> None:
        """If everything here is acked, send the newest record again. A hub restored from an older
        backup answers below the watermark, and the terminal sends it what it lost at once, instead
        of at its next press. One check at a time: several hub workers each say they are online."""
        if not self.delivery.settled or self.delivery.checking:
            return  # records in flight: their acks tell the same
        pending = self.outbox.pending(self.delivery.head, 1)
        if pending is None:
            return
        if self._send(pending):
            self.delivery.checking_hub()
            log.info("%s: a hub came online; sent seq %d again to check it holds it", self.device, pending.first)

    def _command(self, payload: bytes, now: int) -> None:
        command = decode_command(payload)
        if command.device != self.device:
            raise DecodeError(
                f"command for device {command.device} on this terminal's topic", reason=Reason.TOPIC_MISMATCH
            )
        log.info("%s: command %s (id %s)", self.device, command.cmd.value, command.id)
        if command.cmd is CommandName.LOGIN and command.staff is not None:
            self._feed(Login(command.staff), now)
        elif command.cmd is CommandName.LOGOUT:
            self._feed(Logout(), now)
        elif command.cmd is CommandName.INVITE:
            self._feed(Invite(command.ticket), now)

    def _ack(self, payload: bytes, now: int) -> None:
        ack = decode_ack(payload)
        if ack.device != self.device:
            raise DecodeError(f"ack for device {ack.device} on this terminal's topic", reason=Reason.TOPIC_MISMATCH)
        # Taken against the monotonic clock, it stays right for the whole boot even if the wall clock
        # jumps; the transit time of the ack (milliseconds) is the only error.
        self.hub_epoch_ms = ack.t - now
        for rejection in ack.rejects:
            self.rejected += 1
            self._error(f"hub rejected seq {rejection.seq}: {rejection.reason.value}: {rejection.detail}")
        if self.delivery.hub_behind(ack.upto):
            self._hub_behind(ack.upto)
            return
        try:
            self.outbox.mark_acked(ack.upto)
        except OutboxError as exc:
            self._error(str(exc))
            return
        if self.delivery.ack(ack.upto, now):
            self._dirty = True  # the watermark is saved when the terminal is next idle
            self.emit({"event": "acked", "upto": self.delivery.acked, "depth": self.outbox.depth})

    def _hub_behind(self, upto: int) -> None:
        """The hub holds less than it acked (restored from an older backup): send the rest again."""
        watermark = self.delivery.acked
        try:
            kept_from = self.outbox.rewind_acked(upto)
        except OutboxError as exc:
            self._error(str(exc))
            return
        self.delivery.rewind(kept_from)
        self._dirty = True
        detail = f"the hub holds seqs up to {upto}, below the acked {watermark}; sending from {kept_from + 1} again"
        if kept_from > upto:
            detail += f"; seqs {upto + 1}..{kept_from} were pruned here and must come from the hub's newer backup"
        self._error(detail)
        self.emit({"event": "hub_behind", "upto": upto, "acked": watermark, "resend_from": kept_from + 1})

    def _pump(self, now: int) -> None:
        """Send what the window allows; yield to waiting key events after each batch."""
        if self.link is None:
            return
        if self._hub_came_online and self.delivery.connected:
            self._hub_came_online = False
            self._check_hub()
        while (span := self.delivery.next_range()) is not None:
            first, count = span
            pending = self.outbox.pending(first, count)
            if pending is None:
                self._error(f"outbox lacks seq {first}, which the hub has not acked")
                self.delivery.connection_down()
                return
            if not self._send(pending):
                return
            self.delivery.mark_sent(pending.last, now)
            if not self.inbox.empty():
                return

    def _send(self, pending: Pending) -> bool:
        """Seal records into one batch and queue it for the hub; False if the link is down."""
        assert self.link is not None
        raw = seal_batch(self.identity.key, self.device, pending.first, pending.bodies, pending.last_hash)
        return self.link.publish(self._topics[Channel.RATINGS], raw)

    def _shutdown(self) -> None:
        if self.panel is not None:
            self.panel.stop()
        if self.link is not None:
            if self.link.connected:
                offline = Status(device=self.device, state=StatusState.OFFLINE, session=self.session_id)
                self.link.publish(self._topics[Channel.STATUS], encode_status(offline), retain=True)
            self.link.stop()
        self.settings.close()
        self.outbox.close()
        self.emit(
            {
                "event": "stopped",
                "head": self.outbox.head[0],
                "acked": self.outbox.acked,
                "resends": self.delivery.resends,  # times the hub was silent too long
                "bounces": self.debouncer.bounces,  # key contacts that bounced
            }
        )
        self._flush()


def _rules(config: DeviceConfig) -> FlowRules:
    return FlowRules(
        mode=config.mode,
        thank_you_ms=config.thank_you_ms,
        invite_window_ms=int(config.invite_window_s * 1000),
        amend_window_ms=int(config.amend_window_s * 1000),
        misuse_interval_ms=int(config.misuse_interval_s * 1000),
        burst_presses=config.burst_presses,
        burst_window_ms=int(config.burst_window_s * 1000),
        reasons_window_ms=int(config.reasons_window_s * 1000),
    )
