"""Session ids of status messages: they grow with every connection, so that a late offline status
(an old connection's will) cannot end a newer session (Sparkplug's bdSeq rule, `newer_status`).

A terminal counts its starts (boots, kept in its outbox) and its connection attempts within a
start: `boots << 24 | attempt`. A hub, whose clock is trusted, uses its start time:
`started_ms << 20 | attempt`. Both stay below 2**63 (MAX_SESSION) for centuries of starts.
"""

from __future__ import annotations

from typing import Final

__all__ = ["HUB_ATTEMPT_BITS", "TERMINAL_ATTEMPT_BITS", "hub_session", "hub_started_ms", "terminal_session"]

TERMINAL_ATTEMPT_BITS: Final = 24
HUB_ATTEMPT_BITS: Final = 20


def terminal_session(boots: int, attempt: int) -> int:
    """The session id of a terminal's connection `attempt` (from 1) in its start number `boots`."""
    return boots << TERMINAL_ATTEMPT_BITS | attempt % (1 << TERMINAL_ATTEMPT_BITS)


def hub_session(started_ms: int, attempt: int) -> int:
    """The session id of a hub worker's connection `attempt`, for a worker started at `started_ms` (UTC)."""
    return started_ms << HUB_ATTEMPT_BITS | attempt % (1 << HUB_ATTEMPT_BITS)


def hub_started_ms(session: int) -> int:
    """When the hub worker whose status carries `session` started (UTC ms)."""
    return session >> HUB_ATTEMPT_BITS
