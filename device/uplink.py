"""The uplink: the terminal's side of the broker.

It sends the outbox to the hub oldest first, at most a window of records unanswered, and again
when no ack comes in time (device.delivery decides what and when); takes the hub's acks (a record
is forgotten only when one covers it) and notices a hub that lost what it acked; takes commands
(log-in, log-out, invite: returned as flow events); says online/offline (the offline status is its
MQTT will); and checks a hub that comes online. Anything that arrives can come from anyone on the
broker: what cannot be read is counted and said, and the terminal goes on; a retained one, which
comes again at every reconnect, is said once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from device.delivery import Delivery
from device.errors import OutboxError
from device.events import Acked, HubBehind, Offline, Online, Report
from device.flow import Event, Invite, Login, Logout
from device.outbox import Outbox, Pending
from device.telemetry import Errors
from protocol import (
    Channel,
    CommandName,
    DecodeError,
    ProtocolError,
    Reason,
    SigningKey,
    Status,
    StatusState,
    decode_ack,
    decode_command,
    decode_status,
    encode_status,
    hub_status_client,
    seal_batch,
    terminal_filters,
    terminal_session,
    topic,
)
from protocol.topics import QOS, RETAINED
from runtime.link import Broker, Client, Inbound, LinkDown, LinkUp

__all__ = ["Uplink"]

log = logging.getLogger("pingjia.device")

_REMEMBERED_RETAINED = 1000  # unreadable retained messages remembered, so that each is said once


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
    ) -> None:
        self.device = device
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
        return encode_status(Status(device=self.device, state=state, session=session))

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
                return self._command(message.payload)
            if message.topic == self._topics[Channel.ACK]:
                what = "ack"
                self._ack(message.payload, now)
            elif message.topic.startswith("pingjia/hub/"):
                what = "hub status"
                hub_status_client(message.topic)
                self._hub_status(message.payload)
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

    def _command(self, payload: bytes) -> list[Event]:
        command = decode_command(payload)
        if command.device != self.device:
            raise DecodeError(
                f"command for device {command.device} on this terminal's topic", reason=Reason.TOPIC_MISMATCH
            )
        log.info("%s: command %s (id %s)", self.device, command.cmd.value, command.id)
        if command.cmd is CommandName.LOGIN and command.staff is not None:
            return [Login(command.staff)]
        if command.cmd is CommandName.LOGOUT:
            return [Logout()]
        if command.cmd is CommandName.INVITE:
            return [Invite(command.ticket)]
        return []

    def _hub_status(self, payload: bytes) -> None:
        """A hub came online, or this terminal connected and heard that one is: check it (`_check_hub`)."""
        if not payload:
            return  # a retained status cleared
        if decode_status(payload).state is StatusState.ONLINE:
            self._hub_came_online = True  # checked by `pump` once the link is up (it may come before LinkUp)

    def _ack(self, payload: bytes, now: int) -> None:
        ack = decode_ack(payload)
        if ack.device != self.device:
            raise DecodeError(f"ack for device {ack.device} on this terminal's topic", reason=Reason.TOPIC_MISMATCH)
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
