"""The terminal's one exception tree. Errors of the wire are protocol.ProtocolError (reason codes)
and of settings runtime.settings.ConfigError: the terminal translates them where they meet it.

    DeviceError
    ├── OutboxError          the outbox cannot store or read (disk full, unwritable, corrupt)
    │   └── ForeignOutbox    it belongs to another device: no retry will make it this one's
    ├── IdentityError        no usable identity, or one that does not match its outbox
    ├── StateError           the stored-state document (clerk binding, cards) cannot be read or written
    └── IllegalEvent         the flow was given an event its state does not take (a fault of the caller)
"""

from __future__ import annotations

from typing import Any

__all__ = ["DeviceError", "ForeignOutbox", "IdentityError", "IllegalEvent", "OutboxError", "StateError"]


class DeviceError(Exception):
    pass


class OutboxError(DeviceError):
    """The outbox could not store or read (disk full, unwritable, corrupt, or not this device's)."""


class ForeignOutbox(OutboxError):
    """The outbox belongs to another device: no retry will make it this one's."""


class IdentityError(DeviceError):
    """The data directory holds no usable identity, or one that does not match its outbox."""


class StateError(DeviceError):
    """The stored-state document cannot be read or written."""


class IllegalEvent(DeviceError):
    """An event the flow's state does not take, or a move the transition table does not allow.

    `state` and `target` are flow States, `event` the flow Event (typed loosely here, so that this
    module needs nothing of the flow's).
    """

    def __init__(self, state: Any, event: Any, target: Any = None) -> None:
        if target is None:
            message = f"event {event.name!r} is not allowed in state {state.value!r}"
        else:
            message = f"event {event.name!r} may not lead from {state.value!r} to {target.value!r}"
        super().__init__(message)
        self.state = state
        self.event = event
        self.target = target
