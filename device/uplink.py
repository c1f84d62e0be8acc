"""The uplink: the terminal's side of the broker.

It sends the outbox to the hub oldest first, at most a window of records unanswered, and again
when no ack comes in time (device.delivery decides what and when); takes the hub's acks (a record
is forgotten only when one covers it), sends a gap the hub reports again at once, and notices a
hub that lost what it acked; takes commands (log-in, log-out, invite: returned as flow events),
configuration documents and clerks' cards (kept by device.cards; a newer one is posted to the
terminal's inbox as `CardArrived`, for the screen); says online/offline (the offline status is
its MQTT will); and checks a hub that comes online.

Anything that arrives can come from anyone on the broker. What the hub says (acks, commands,
configuration, cards, its status) is taken only when signed by the hub key pinned at pairing,
addressed to this terminal and not replayed (protocol v2: a command's counter only grows, a
configuration's and a card's version only grow, a hub status's session only grows, and an ack
below the watermark is believed only when newer than the one that acked it); anything else is
refused, counted, reported in health, and changes nothing. What cannot be read at all is counted
and said, and the terminal goes on; a retained one, which comes again at every reconnect, is said
once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from device.cards import CardArrived, Cards
from device.delivery import Delivery
from device.errors import OutboxError, StateError
from device.events import Acked, ControlRefused, GapResent, HubBehind, Offline, Online, Report
from device.flow import Event, Invite, Login, Logout
from device.outbox import Outbox, Pending
from device.state import StateDocument
from device.telemetry import Errors
from protocol import (
    AuthError,
    Channel,
    CommandName,
    ConfigDoc,
    ProtocolError,
    Reason,
    SigningKey,
    Status,
    StatusState,
    VerifyKey,
    decode_ack,
    decode_command,
    decode_config,
    decode_status,
    encode_status,
    hub_status_client,
    seal_batch,
    terminal_filters,
    terminal_session,
    topic,
    verify_ack,
    verify_command,
    verify_config,
    verify_status,
)
from protocol.limits import CMD_MAX_AGE_MS
from protocol.topics import QOS, RETAINED
from runtime.link import Broker, Client, Inbound, LinkDown, LinkUp

__all__ = ["Uplink"]

log = logging.getLogger("pingjia.device")

_REMEMBERED_RETAINED = 1000  # unreadable retained messages remembered, so that each is said once
_REMEMBERED_HUBS = 64  # hub workers whose latest session is remembered

# Where the stored state keeps the control channel's counters and the configuration in force.
CMD_N = "cmd_n"
CONFIG_DOC = "config_doc"

ApplyConfig = Callable[[ConfigDoc], str | None]  # None: applied; else why the settings are refused


class Uplink:
    def __init__(
        self,
        *,
        device: str,
        key: SigningKey,
        outbox: Outbox,
        boots: int,
        broker: Broker,
        post: Callable[[object], None],
        delivery: Delivery,
        report: Report,
        errors: Errors,
        hub_key: VerifyKey | None = None,
        state: StateDocument | None = None,
        apply_config: ApplyConfig | None = None,
        config_version: int = 0,
        cards: Cards | None = None,
    ) -> None:
        """`hub_key`: the hub key pinned at pairing (None: not paired; nothing from the broker is
        taken). `state` keeps the command counter and the configuration document across reboots.
        `cards`: where clerks' cards are checked and kept (None: cards are not taken)."""
        self.device = device
        self._post = post
        self._cards = cards
        if cards is not None and hub_key is not None:
            cards.pin(hub_key)  # a terminal paired again: the old hub's cards go
        self.hub_key = hub_key
        self._state = state
        self._apply_config = apply_config
        self.config_version = config_version  # of the configuration document in force (0: none)
        self.cmd_n = int(state.get(CMD_N, 0)) if state is not None else 0
        self.refused = 0  # control messages refused since start
        self.refused_last: str | None = None
        self._ack_t = 0  # hub time of the latest ack taken (acks below the watermark must be newer)
        self._hub_sessions: dict[str, int] = {}  # hub client id -> latest session taken
        self.key = key
        self.outbox = outbox
        self.boots = boots
        self.delivery = delivery
        self.session_id = 0
        self.rejected = 0  # records the hub refused since start
        self.unreadable = 0  # messages from the broker that could not be read (or handled)
        self.hub_epoch_ms: int | None = None  # hub clock minus this boot's monotonic clock, from acks
        self._report = report
        self._errors = errors
        self._topics = {channel: topic(device, channel) for channel in Channel}
        self._hub_came_online = False
        self._said_retained: dict[tuple[str, str], None] = {}  # (topic, sha256) of unreadable retained ones
        self.link = broker.connect(
            Client(
                client_id=device,
                on_event=post,
                subscriptions=[(name, 1) for name in terminal_filters(device)],
                will=self._will,
                clean_start=True,
            )
        )

    @property
    def connected(self) -> bool:
        return self.link.connected

    def start(self) -> None:
        self.link.start()

    def publish(self, channel: Channel, payload: bytes) -> bool:
        """Send on this terminal's own topic, at the QoS and retention the protocol gives it; False
        when not connected (a signal is then dropped)."""
        return self.link.connected and self.link.publish(
            self._topics[channel], payload, qos=QOS[channel], retain=channel in RETAINED
        )

    # -- the connection -----------------------------------------------------------------------------

    def _status(self, state: StatusState, session: int) -> bytes:
        return encode_status(Status(device=self.device, state=state, session=session), self.key)

    def _will(self, attempt: int) -> tuple[str, bytes]:
        return self._topics[Channel.STATUS], self._status(StatusState.OFFLINE, terminal_session(self.boots, attempt))

    def link_up(self, event: LinkUp) -> None:
        self.session_id = terminal_session(self.boots, event.attempt)
        self.publish(Channel.STATUS, self._status(StatusState.ONLINE, self.session_id))
        self.delivery.connection_up()
        self._report(Online(protocol=event.protocol, session=self.session_id))

    def link_down(self, event: LinkDown) -> None:
        self.delivery.connection_down()
        self._report(Offline(event.reason))

    def stop(self) -> None:
        if self.link.connected:
            self.publish(Channel.STATUS, self._status(StatusState.OFFLINE, self.session_id))
        self.link.stop()

    # -- what arrives -------------------------------------------------------------------------------

    def receive(self, message: Inbound, now: int) -> list[Event]:
        """A message from the broker; the flow events it carries (a command's), if any."""
        what = "message"
        try:
            if message.topic == self._topics[Channel.CMD]:
                what = "command"
                return self._command(message.payload, now)
            if message.topic == self._topics[Channel.ACK]:
                what = "ack"
                self._ack(message.payload, now)
            elif message.topic == self._topics[Channel.CONFIG]:
                what = "configuration"
                self._config(message.payload)
            elif message.topic == self._topics[Channel.CARD]:
                what = "card"
                self._card(message.payload)
            elif message.topic.startswith("pingjia/hub/"):
                what = "hub status"
                self._hub_status(hub_status_client(message.topic), message.payload)
        except AuthError as exc:
            self._refuse(what, exc)
        except ProtocolError as exc:
            self._unreadable(message, what, str(exc))
        except Exception as exc:  # noqa: BLE001 - a fault nobody foresaw costs this message only
            self._unreadable(message, what, f"{Reason.UNHANDLED.value}: {exc!r}")
        return []

    def _unreadable(self, message: Inbound, what: str, detail: str) -> None:
        if message.retained:
            seen = (message.topic, hashlib.sha256(message.payload).hexdigest())
            if seen in self._said_retained:
                return
            if len(self._said_retained) >= _REMEMBERED_RETAINED:
                self._said_retained.pop(next(iter(self._said_retained)))
            self._said_retained[seen] = None
        self.unreadable += 1
        retained = ", retained" if message.retained else ""
        self._errors(
            f"unreadable {what} on {message.topic[:120]} ({len(message.payload)} bytes{retained}): {detail}",
            f"unreadable {what}",
        )

    def _refuse(self, what: str, error: ProtocolError) -> None:
        """A control message that is not the hub's, or not to be acted on: counted, said, dropped."""
        self.refused += 1
        self.refused_last = f"{what}: {error.reason.value}"
        self._errors(f"refused {what}: {error}", f"refused {what}")
        self._report(ControlRefused(what=what, reason=error.reason.value, detail=error.detail))

    def _pinned(self) -> VerifyKey:
        if self.hub_key is None:
            raise AuthError("this terminal is not paired: it holds no hub key", reason=Reason.NOT_PAIRED)
        return self.hub_key

    def _mine(self, device: str, what: str) -> None:
        if device != self.device:
            raise AuthError(f"{what} for device {device} on this terminal's topic", reason=Reason.TOPIC_MISMATCH)

    def _command(self, payload: bytes, now: int) -> list[Event]:
        command = decode_command(payload)
        self._mine(command.device, "command")
        verify_command(command, self._pinned())
        if command.n <= self.cmd_n:
            raise AuthError(
                f"command counter {command.n} is not above the last taken, {self.cmd_n}", reason=Reason.REPLAYED
            )
        if self.hub_epoch_ms is not None and self.hub_epoch_ms + now - command.t > CMD_MAX_AGE_MS:
            raise AuthError(
                f"command signed {(self.hub_epoch_ms + now - command.t) // 1000} s ago (hub time)",
                reason=Reason.STALE,
            )
        self.cmd_n = command.n
        if self._state is not None:
            try:
                self._state.update(**{CMD_N: command.n})
            except StateError as exc:
                self._errors(f"command counter not saved: {exc}")
        log.info("%s: command %s n=%d (id %s)", self.device, command.cmd.value, command.n, command.id)
        if command.cmd is CommandName.LOGIN and command.staff is not None:
            return [Login(command.staff)]
        if command.cmd is CommandName.LOGOUT:
            return [Logout()]
        if command.cmd is CommandName.INVITE:
            return [Invite(command.ticket)]
        return []

    def _config(self, payload: bytes) -> None:
        """A configuration document: in force if the hub signed it and it is newer than the one in force."""
        if not payload:
            return  # a retained document cleared: the one in force stays
        doc = decode_config(payload)
        self._mine(doc.device, "configuration")
        verify_config(doc, self._pinned())
        if doc.version == self.config_version:
            return  # the retained copy of the one in force, again at a reconnect
        if doc.version < self.config_version:
            raise AuthError(
                f"configuration version {doc.version} is older than the one in force, {self.config_version}",
                reason=Reason.ROLLBACK,
            )
        problem = self._apply_config(doc) if self._apply_config is not None else None
        if problem is not None:
            raise AuthError(f"configuration version {doc.version} refused: {problem}", reason=Reason.BAD_FIELD)
        self.config_version = doc.version
        if self._state is not None:
            try:
                self._state.update(**{CONFIG_DOC: payload.decode("utf-8")})
            except StateError as exc:
                self._errors(f"configuration {doc.version} in force but not saved: {exc}")

    def _card(self, payload: bytes) -> None:
        """A clerk's card: kept if the hub signed it for this terminal and it is the newest; the
        terminal hears of it (`CardArrived`) to show it."""
        if not payload or self._cards is None:
            return  # a retained card cleared; or a terminal that shows no cards
        self._pinned()  # not paired: refused as every control message is
        card = self._cards.take(payload)
        if card is not None:
            log.info("%s: card of %s taken", self.device, card.staff)
            self._post(CardArrived(card.staff))

    def _hub_status(self, client: str, payload: bytes) -> None:
        """A hub came online, or this terminal connected and heard that one is: check it (`_check_hub`),
        and send at once what is waiting for an ack (a broker restart may have lost it unseen)."""
        if not payload:
            return  # a retained status cleared
        status = decode_status(payload)
        self._mine_hub(status, client)
        verify_status(status, self._pinned(), hub=True)
        if status.session < self._hub_sessions.get(client, 0):
            raise AuthError(
                f"hub {client} status of session {status.session}, older than one taken", reason=Reason.REPLAYED
            )
        if len(self._hub_sessions) >= _REMEMBERED_HUBS and client not in self._hub_sessions:
            self._hub_sessions.pop(next(iter(self._hub_sessions)))
        newer = status.session > self._hub_sessions.get(client, 0)
        self._hub_sessions[client] = status.session
        if status.state is StatusState.ONLINE and newer:
            self._hub_came_online = True  # checked by `pump` once the link is up (it may come before LinkUp)

    @staticmethod
    def _mine_hub(status: Status, client: str) -> None:
        if status.device != client:
            raise AuthError(f"status of hub {status.device} on the topic of {client}", reason=Reason.TOPIC_MISMATCH)

    def _ack(self, payload: bytes, now: int) -> None:
        ack = decode_ack(payload)
        self._mine(ack.device, "ack")
        verify_ack(ack, self._pinned())
        if ack.upto < self.delivery.acked and ack.t <= self._ack_t:
            # A genuine ack from before the one that moved the watermark, sent again by someone: it
            # would make the terminal send what the hub holds. Only a newer one may say the hub is behind.
            raise AuthError(
                f"ack up to {ack.upto} made before the latest one taken (hub time {ack.t} <= {self._ack_t})",
                reason=Reason.REPLAYED,
            )
        self._ack_t = max(self._ack_t, ack.t)
        # Taken against the monotonic clock, it stays right for the whole boot even if the wall clock
        # jumps; the transit time of the ack (milliseconds) is the only error.
        self.hub_epoch_ms = ack.t - now
        for rejection in ack.rejects:
            self.rejected += 1
            self._errors(f"hub rejected seq {rejection.seq}: {rejection.reason.value}: {rejection.detail}")
        if self.delivery.hub_behind(ack.upto):
            self._hub_behind(ack.upto)
            return
        try:
            self.outbox.mark_acked(ack.upto)
        except OutboxError as exc:
            self._errors(str(exc))
            return
        if self.delivery.ack(ack.upto, now):
            self._report(Acked(upto=self.delivery.acked, depth=self.outbox.depth))
        if ack.held is not None:
            self.delivery.held(ack.held[0], now)

    def _hub_behind(self, upto: int) -> None:
        """The hub holds less than it acked (restored from an older backup): send the rest again."""
        watermark = self.delivery.acked
        try:
            kept_from = self.outbox.rewind_acked(upto)
        except OutboxError as exc:
            self._errors(str(exc))
            return
        self.delivery.rewind(kept_from)
        detail = f"the hub holds seqs up to {upto}, below the acked {watermark}; sending from {kept_from + 1} again"
        if kept_from > upto:
            detail += f"; seqs {upto + 1}..{kept_from} were pruned here and must come from the hub's newer backup"
        self._errors(detail)
        self._report(HubBehind(upto=upto, acked=watermark, resend_from=kept_from + 1))

    # -- sending ------------------------------------------------------------------------------------

    def timers(self, now: int) -> None:
        if self.delivery.check_timeout(now):
            log.info(
                "%s: no ack for seqs %d..%d; sending again", self.device, self.delivery.acked + 1, self.delivery.head
            )

    def pump(self, now: int, busy: Callable[[], bool]) -> None:
        """Send what the window allows; stop after a batch when `busy()` (key events are waiting)."""
        if self._hub_came_online and self.delivery.connected:
            self._hub_came_online = False
            self._check_hub()
        gap = self.delivery.gap_due(now)
        if gap is not None and not self._resend_gap(*gap):
            return
        while (span := self.delivery.next_range()) is not None:
            first, count = span
            pending = self.outbox.pending(first, count)
            if pending is None:
                self._errors(f"outbox lacks seq {first}, which the hub has not acked")
                self.delivery.connection_down()
                return
            if not self._send(pending):
                return
            self.delivery.mark_sent(pending.last, now)
            if busy():
                return

    def _resend_gap(self, first: int, last: int) -> bool:
        """Send seqs first..last again (the hub holds records past them); False if the link is down."""
        self._report(GapResent(first=first, last=last))
        log.info("%s: the hub holds records past seq %d; sending %d..%d again", self.device, first - 1, first, last)
        seq = first
        while seq <= last:
            pending = self.outbox.pending(seq, min(self.delivery.batch_max, last - seq + 1))
            if pending is None:
                self._errors(f"outbox lacks seq {seq}, which the hub has not acked")
                return True
            if not self._send(pending):
                return False
            seq = pending.last + 1
        return True

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

    def _send(self, pending: Pending) -> bool:
        """Seal records into one batch and queue it for the hub; False if the link is down."""
        raw = seal_batch(self.key, self.device, pending.first, pending.bodies, pending.last_hash)
        return self.link.publish(self._topics[Channel.RATINGS], raw, qos=QOS[Channel.RATINGS])
