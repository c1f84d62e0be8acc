"""Session ids (protocol/session.py) must grow with every connection, across restarts, and stay
within what a status may carry: a late will of an old connection must never end a newer one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocol import Status, StatusState, hub_session, hub_started_ms, limits, newer_status, terminal_session
from protocol.session import HUB_ATTEMPT_BITS, TERMINAL_ATTEMPT_BITS

TERMINAL_ATTEMPTS = st.integers(1, (1 << TERMINAL_ATTEMPT_BITS) - 1)
HUB_ATTEMPTS = st.integers(1, (1 << HUB_ATTEMPT_BITS) - 1)
BOOTS = st.integers(0, limits.MAX_SESSION >> TERMINAL_ATTEMPT_BITS)
YEAR_2200_MS = 7_258_118_400_000
STARTS = st.integers(0, YEAR_2200_MS)


@given(BOOTS, TERMINAL_ATTEMPTS)
def test_a_terminal_session_holds_its_boot_and_attempt(boots: int, attempt: int) -> None:
    session = terminal_session(boots, attempt)
    assert session >> TERMINAL_ATTEMPT_BITS == boots
    assert session & ((1 << TERMINAL_ATTEMPT_BITS) - 1) == attempt
    assert 0 <= session <= limits.MAX_SESSION


@given(STARTS, HUB_ATTEMPTS)
def test_a_hub_session_gives_back_when_the_hub_started(started_ms: int, attempt: int) -> None:
    session = hub_session(started_ms, attempt)
    assert hub_started_ms(session) == started_ms
    assert session & ((1 << HUB_ATTEMPT_BITS) - 1) == attempt
    assert 0 <= session <= limits.MAX_SESSION


@given(BOOTS, TERMINAL_ATTEMPTS, TERMINAL_ATTEMPTS)
def test_terminal_sessions_grow_with_every_attempt_and_every_boot(boots: int, attempt: int, later: int) -> None:
    if later > attempt:
        assert terminal_session(boots, later) > terminal_session(boots, attempt)
    if boots < limits.MAX_SESSION >> TERMINAL_ATTEMPT_BITS:
        # The first connection of the next start beats the last one of this start.
        assert terminal_session(boots + 1, 1) > terminal_session(boots, (1 << TERMINAL_ATTEMPT_BITS) - 1)
        assert terminal_session(boots + 1, attempt) > terminal_session(boots, later)


@given(STARTS, st.integers(1, 10**6), HUB_ATTEMPTS, HUB_ATTEMPTS)
def test_hub_sessions_grow_with_every_attempt_and_every_start(
    started_ms: int, after_ms: int, attempt: int, other: int
) -> None:
    if other > attempt:
        assert hub_session(started_ms, other) > hub_session(started_ms, attempt)
    assert hub_session(started_ms + after_ms, attempt) > hub_session(started_ms, other)


def test_the_layouts_last_for_centuries_below_the_largest_session() -> None:
    assert terminal_session(limits.MAX_SESSION >> TERMINAL_ATTEMPT_BITS, (1 << TERMINAL_ATTEMPT_BITS) - 1) == (
        limits.MAX_SESSION
    )
    assert hub_session(YEAR_2200_MS, (1 << HUB_ATTEMPT_BITS) - 1) < limits.MAX_SESSION
    assert hub_started_ms(limits.MAX_SESSION) > YEAR_2200_MS


@given(BOOTS, st.integers(1, (1 << TERMINAL_ATTEMPT_BITS) - 2))
def test_the_will_of_an_earlier_connection_cannot_end_a_later_one(boots: int, attempt: int) -> None:
    old, new = terminal_session(boots, attempt), terminal_session(boots, attempt + 1)
    online = Status(device="d1", state=StatusState.ONLINE, session=new)
    assert not newer_status(online, Status(device="d1", state=StatusState.OFFLINE, session=old))
    assert newer_status(online, Status(device="d1", state=StatusState.OFFLINE, session=new))
