"""What terminals say about themselves: status (online/offline), health (heartbeats) and events.

Kept per terminal for `pingjia hub devices`; none of it is a rating. Each is signed by the
terminal's registered key (protocol v2) and refused otherwise, or when that key is revoked. A status is taken only if it
is newer than the stored one (protocol.newer_status: a late will cannot end a newer session). A
heartbeat's clocks go on to hub.clock, which the writer calls with what `health` returns.

A heartbeat that names another clerk than the one stored before it is how the hub learns that a
clerk logged in at a terminal (by card, from the clerk's PC or the queue system, or by the hub's
own command): `logins` notes it, and the serving hub publishes that clerk's card (hub.cards) once
the heartbeat is committed.
"""

from __future__ import annotations

import json
from collections import Counter

from hub.rows import DeviceEntry
from hub.store import Store
from protocol import (
    AuthError,
    DecodeError,
    Health,
    ProtocolError,
    Reason,
    decode_event,
    decode_health,
    decode_status,
    newer_status,
    verify_event,
    verify_health,
    verify_status,
)
from protocol import Status as WireStatus
from protocol import StatusState as WireState

__all__ = ["Telemetry"]


class Telemetry:
    def __init__(self, store: Store, counters: Counter[str]) -> None:
        self._store = store
        self._counters = counters
        self.logins: dict[str, str] = {}  # device -> the clerk who logged in there, until `take_logins`

    def status(self, device: str, payload: bytes, now_ms: int) -> None:
        """Store a terminal's status if it is newer than the stored one; ProtocolError if refused."""
        if not payload:
            return  # a cleared retained status
        status = decode_status(payload)
        if status.device != device:
            raise DecodeError(f"status of {status.device} on the topic of {device}", reason=Reason.TOPIC_MISMATCH)
        entry = self._known(device, "status")
        verify_status(status, entry.key)
        current = None
        if entry.status_state is not None and entry.status_session is not None:
            current = WireStatus(device=device, state=WireState(entry.status_state), session=entry.status_session)
        if newer_status(current, status):
            self._store.set_status(device, status.state.value, status.session, now_ms)
            self._counters[f"status_{status.state.value}"] += 1
        else:
            self._counters["status_stale"] += 1

    def health(self, device: str, payload: bytes, now_ms: int) -> Health | None:
        """Store a terminal's latest health as received; return it (None: a cleared retained one)."""
        if not payload:
            return None  # a cleared retained message
        health = decode_health(payload)
        if health.device != device:
            raise DecodeError(f"health of {health.device} on the topic of {device}", reason=Reason.TOPIC_MISMATCH)
        verify_health(health, self._known(device, "health").key)
        if health.staff is not None and health.staff != self._stored_staff(device):
            self.logins[device] = health.staff
        self._store.set_health(device, payload.decode("utf-8"), now_ms)
        self._counters["health"] += 1
        return health

    def take_logins(self) -> list[tuple[str, str]]:
        """(device, staff) of the log-ins noted since the last call (after a failed group, those of
        its messages may come twice: a card published twice is harmless)."""
        logins, self.logins = list(self.logins.items()), {}
        return logins

    def _stored_staff(self, device: str) -> str | None:
        """The clerk the stored health of `device` names (None: none, or no health yet)."""
        row = self._store.db.execute("SELECT health FROM devices WHERE id = ?", (device,)).fetchone()
        if row is None or row[0] is None:
            return None
        staff = json.loads(row[0]).get("staff")
        return staff if isinstance(staff, str) else None

    def event(self, device: str, payload: bytes, now_ms: int) -> None:
        event = decode_event(payload)
        if event.device != device:
            raise DecodeError(f"event of {event.device} on the topic of {device}", reason=Reason.TOPIC_MISMATCH)
        verify_event(event, self._known(device, "event").key)
        self._store.add_device_event(device, now_ms, event.t, event.kind.value, event.detail or "")
        self._counters[f"event_{event.kind.value}"] += 1

    def _known(self, device: str, what: str) -> DeviceEntry:
        entry = self._store.device(device)
        if entry is None:
            raise ProtocolError(
                f"{what} from unregistered device {device}", reason=Reason.UNKNOWN_DEVICE, device=device
            )
        if entry.revoked_ms is not None:
            raise AuthError(f"{what} of {device}, whose key is revoked", reason=Reason.REVOKED, device=device)
        return entry
