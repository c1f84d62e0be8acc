"""What to send to the hub next, and when to send it again (pure; times in monotonic ms).

A record is delivered only when a hub ack covers it; a broker's PUBACK proves nothing (brokers drop
QoS 1 messages when a subscriber's queue is full). So: send unacked records oldest first, at most
`window` of them outstanding; when no ack has moved the watermark for `ack_timeout`, rewind and send
again from the watermark, doubling the timeout up to a cap; on every new connection, rewind too.
The hub stores idempotently, so sending again is always safe.

A hub restored from an older backup has lost records it once acked. It says so by answering below
the watermark. A lower ack is believed only after a resend for lack of progress, or after the
newest acked record was sent again to check a hub that has just come online (a late ack from a
second hub worker may also be lower, and costs nothing when ignored); then `hub_behind` is true
and `rewind` moves the watermark back so those records are sent again. The check is what tells a
terminal with nothing to send, which would otherwise wait for its next press to find out.

Gap repair: an ack may say the hub holds records past a gap (`held`): the broker lost a batch (a
restart drops what a shared subscription had no subscriber for). The gap is sent again after
GAP_GRACE_MS, instead of after the whole ack timeout, unless an ack covers it first (a second hub
worker may still be storing it) or the watermark moves meanwhile (a hub working through a queue that
holds the gap too: it is looked at again a grace later).
"""

from __future__ import annotations

__all__ = ["GAP_GRACE_MS", "Delivery"]

GAP_GRACE_MS = 300  # how long a gap the hub reports may still be filled by a batch in flight


class Delivery:
    def __init__(
        self,
        *,
        acked: int,
        head: int,
        batch_max: int,
        window: int,
        ack_timeout_ms: int,
        ack_timeout_max_ms: int,
    ) -> None:
        self.acked = acked  # every seq up to here is stored at the hub
        self.head = head  # newest seq in the outbox
        self.sent = acked  # newest seq sent on the current connection
        self.connected = False
        self.batch_max = batch_max
        self.window = window
        self.base_timeout_ms = ack_timeout_ms
        self.max_timeout_ms = ack_timeout_max_ms
        self.timeout_ms = ack_timeout_ms
        self.waiting_since_ms: int | None = None  # when the oldest outstanding send started waiting
        self.resends = 0
        self.stalled = False  # records were sent again for lack of progress, and nothing moved since
        self.checking = False  # the newest acked record was sent again; no ack has answered it yet
        self._gap_last: int | None = None  # the hub holds nothing in acked+1..this, and records past it
        self._gap_due_ms: int | None = None
        self._gap_acked = 0  # the watermark when the gap was reported (or last looked at)
        self.gaps = 0  # gaps sent again

    @property
    def outstanding(self) -> int:
        return self.sent - self.acked

    def appended(self, seq: int) -> None:
        self.head = max(self.head, seq)

    def connection_up(self) -> None:
        self.connected = True
        self.sent = self.acked
        self.waiting_since_ms = None

    def connection_down(self) -> None:
        self.connected = False
        self._gap_last = self._gap_due_ms = None
        self.sent = self.acked
        self.waiting_since_ms = None
        self.checking = False

    @property
    def settled(self) -> bool:
        """Connected, with records, every one of them acked: nothing to send and nothing awaited."""
        return self.connected and 0 < self.head == self.acked == self.sent

    def checking_hub(self) -> None:
        """The newest record, acked, was sent again to a hub that has just come online: its answer
        says whether it still holds everything it acked."""
        self.checking = True

    def ack(self, upto: int, now_ms: int) -> bool:
        """The hub holds every seq up to `upto`; True if that is progress."""
        upto = min(upto, self.head)
        if upto >= self.acked:
            self.checking = False  # the hub holds at least what it acked
        if upto <= self.acked:
            return False
        self.acked = upto
        self.sent = max(self.sent, upto)
        self.timeout_ms = self.base_timeout_ms
        self.waiting_since_ms = now_ms if self.sent > self.acked else None
        self.stalled = False
        return True

    def hub_behind(self, upto: int) -> bool:
        """True if an ack for `upto` means the hub lost records it had acked (see the module doc)."""
        return (self.stalled or self.checking) and upto < self.acked

    def rewind(self, upto: int) -> None:
        """The hub holds only up to `upto`: send again from there."""
        self.acked = self.sent = min(upto, self.acked)
        self.waiting_since_ms = None
        self.timeout_ms = self.base_timeout_ms
        self.stalled = False
        self.checking = False

    def held(self, first_held: int, now_ms: int) -> None:
        """The hub holds seq `first_held` (and on), but nothing between the watermark and it."""
        last = min(first_held - 1, self.sent)
        if last <= self.acked or self._gap_last is not None:
            return  # nothing of it was sent yet on this connection, or a repair is already due
        self._gap_last = last
        self._gap_due_ms = now_ms + GAP_GRACE_MS
        self._gap_acked = self.acked

    def gap_due(self, now_ms: int) -> tuple[int, int] | None:
        """(first, last) of a reported gap to send again now, if it is due and still open."""
        if self._gap_last is None or self._gap_due_ms is None or now_ms < self._gap_due_ms:
            return None
        if self.acked != self._gap_acked and self.acked < self._gap_last:
            # The watermark moved meanwhile: the hub is working through a queue that holds the gap's
            # records too (a hub back after an absence). Look again a grace later instead.
            self._gap_due_ms = now_ms + GAP_GRACE_MS
            self._gap_acked = self.acked
            return None
        first, last = self.acked + 1, self._gap_last
        self._gap_last = self._gap_due_ms = None
        if first > last or not self.connected:
            return None
        self.gaps += 1
        return first, last

    def next_range(self) -> tuple[int, int] | None:
        """(first, count) to send now, or None (nothing new, not connected, or the window is full)."""
        if not self.connected or self.sent >= self.head:
            return None
        room = self.window - self.outstanding
        if room <= 0:
            return None
        return self.sent + 1, min(self.batch_max, self.head - self.sent, room)

    def mark_sent(self, last: int, now_ms: int) -> None:
        if self.waiting_since_ms is None:
            self.waiting_since_ms = now_ms
        self.sent = max(self.sent, last)

    def check_timeout(self, now_ms: int) -> bool:
        """Rewind to the watermark if the hub has been silent too long; True if it rewound."""
        if self.waiting_since_ms is None or self.outstanding <= 0 or now_ms - self.waiting_since_ms < self.timeout_ms:
            return False
        self.sent = self.acked
        self.waiting_since_ms = None
        self.timeout_ms = min(self.timeout_ms * 2, self.max_timeout_ms)
        self.resends += 1
        self.stalled = True
        return True

    def deadline_ms(self) -> int | None:
        """When `check_timeout` may next rewind or a gap is due (None: nothing outstanding)."""
        timeout = None
        if self.waiting_since_ms is not None and self.outstanding > 0:
            timeout = self.waiting_since_ms + self.timeout_ms
        if self._gap_due_ms is None:
            return timeout
        return self._gap_due_ms if timeout is None else min(timeout, self._gap_due_ms)
