"""The recorder: the one part that writes the terminal's disk.

It makes each record the flow asks for durable: signed with the terminal's key, appended to the
outbox with a full fsync, and answered with `Stored` (the flow may now thank the customer) or
`StoreFailed` (it may not: out of service). While out of service it probes the outbox now and then
and answers `Recovered` once it takes writes again. It keeps the clerk's binding and the staff
cards (the stored state), saves the delivery watermark and folds the WAL when the terminal is
idle, and prunes acknowledged records after their retention.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from device import __version__
from device.clock import Clock
from device.errors import OutboxError, StateError
from device.events import Recorded, Report
from device.flow import Record, Recovered, Stored, StoreFailed
from device.identity import STATE_FILE, Identity, open_outbox
from device.outbox import Outbox
from device.state import StateDocument
from protocol import Rating

__all__ = ["Recorder"]

_IDLE_CHECKPOINT_MS = 1000
_PRUNE_EVERY_MS = 3_600_000
_PROBE_EVERY_MS = 5_000
_PROBE_FREE_BYTES = 256 * 1024  # below this, the outbox is not trusted to take a record

Complain = Callable[[str], None]


class Recorder:
    def __init__(
        self, *, identity: Identity, clock: Clock, retention_days: float, report: Report, complain: Complain
    ) -> None:
        """Open the outbox (OutboxError if it cannot be opened now, IdentityError if it is not this
        identity's) and count this start. A start on a full disk is counted in memory, and the
        terminal begins out of service (`storage_error`)."""
        self.identity = identity
        self.clock = clock
        self.retention_ms = int(retention_days * 86_400_000)
        self._report = report
        self._complain = complain
        self.outbox: Outbox = open_outbox(identity)
        self.storage_error: str | None = None
        try:
            self.outbox.next_boot()
        except OutboxError as exc:
            self.storage_error = str(exc)
        self.state = StateDocument(identity.data_dir / STATE_FILE)
        self.saved_staff: str | None = self.state.get("staff")
        now = clock.mono_ms()
        self._next_probe_ms: int | None = None if self.storage_error is None else now + _PROBE_EVERY_MS
        self._next_prune_ms = now
        self._checkpointed = self.outbox.changes  # the outbox's changes as of the last idle checkpoint

    @property
    def boots(self) -> int:
        return self.outbox.boots

    # -- records ------------------------------------------------------------------------------------

    def store(self, effect: Record, now: int) -> Stored | StoreFailed:
        """Sign and append the record the flow asked for; Stored only once it is durable."""

        def build(seq: int, prev: str) -> Rating:
            return Rating(
                device=self.identity.device,
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
                subscores=effect.subscores,
                contact=effect.contact,
                ticket=effect.ticket,
                flags=effect.flags,
            ).signed(self.identity.key)

        try:
            appended = self.outbox.append(build, now_ms=self.clock.wall_ms())
        except Exception as exc:  # noqa: BLE001 - not stored, whyever: never thanked; out of service
            self._complain(f"out of service: {exc}")
            self._next_probe_ms = now + _PROBE_EVERY_MS
            return StoreFailed(str(exc))
        record = appended.record
        self._report(
            Recorded(
                seq=appended.seq,
                kind=record.kind.value,
                staff=record.staff,
                flags=[flag.value for flag in record.flags],
                amends=record.amends,
                reasons=list(record.reasons),
            )
        )
        return Stored(appended.seq)

    def probe(self, now: int) -> Recovered | None:
        """While out of service, when due: Recovered if the outbox takes a record again."""
        if self._next_probe_ms is None or now < self._next_probe_ms:
            return None
        try:
            free = shutil.disk_usage(self.identity.data_dir).free
            if free < _PROBE_FREE_BYTES:
                raise OutboxError(f"only {free} bytes free")
            self.outbox.probe(self.clock.wall_ms())
            self.outbox.save_meta()  # a start counted only in memory while the disk was full
        except (OutboxError, OSError):
            self._next_probe_ms = now + _PROBE_EVERY_MS
            return None
        self._next_probe_ms = None
        return Recovered()

    # -- the stored state ---------------------------------------------------------------------------

    def bind(self, staff: str | None) -> None:
        """Keep the clerk logged in across a reboot: save the binding when it changes."""
        if staff == self.saved_staff:
            return
        try:
            self.state.update(staff=staff, staff_since_ms=self.clock.wall_ms())
            self.saved_staff = staff
        except StateError as exc:
            self._complain(f"staff binding not saved: {exc}")

    def staff_for_card(self, uid: str) -> str | None:
        cards: dict[str, str] = self.state.get("cards", {})
        return cards.get(uid)

    # -- housekeeping -------------------------------------------------------------------------------

    def deadline_ms(self, last_event_ms: int) -> list[int]:
        """When the recorder next has something to do (the loop wakes for it)."""
        deadlines = [self._next_prune_ms]
        if self._next_probe_ms is not None:
            deadlines.append(self._next_probe_ms)
        if self.outbox.changes != self._checkpointed:
            deadlines.append(last_event_ms + _IDLE_CHECKPOINT_MS)
        return deadlines

    def housekeeping(self, now: int, last_event_ms: int) -> None:
        """Once the terminal has been idle a second: save the watermark, fold the WAL; hourly: prune."""
        if self.outbox.changes != self._checkpointed and now - last_event_ms >= _IDLE_CHECKPOINT_MS:
            self._checkpointed = self.outbox.changes  # once per change, even if the disk refuses it
            self._guard(self.outbox.save_meta)
            self._guard(self.outbox.checkpoint)
        if now >= self._next_prune_ms:
            self._next_prune_ms = now + _PRUNE_EVERY_MS
            cutoff = self.clock.wall_ms() - self.retention_ms
            self._guard(lambda: self.outbox.prune(older_than_ms=cutoff))

    def _guard(self, action: Callable[[], object]) -> None:
        try:
            action()
        except OutboxError as exc:
            self._complain(str(exc))

    def close(self) -> None:
        self.state.close()
        self.outbox.close()
