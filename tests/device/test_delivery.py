from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from device.delivery import GAP_GRACE_MS, Delivery


def make(**overrides: int) -> Delivery:
    settings = {
        "acked": 0,
        "head": 0,
        "batch_max": 500,
        "window": 1000,
        "ack_timeout_ms": 10_000,
        "ack_timeout_max_ms": 80_000,
    }
    settings.update(overrides)
    return Delivery(**settings)


def test_nothing_is_sent_while_offline() -> None:
    delivery = make(head=10)
    assert delivery.next_range() is None
    delivery.connection_up()
    assert delivery.next_range() == (1, 10)


def test_a_backlog_drains_oldest_first_in_batches_within_the_window() -> None:
    delivery = make(head=2_600, window=1_000)
    delivery.connection_up()
    assert delivery.next_range() == (1, 500)
    delivery.mark_sent(500, 0)
    assert delivery.next_range() == (501, 500)
    delivery.mark_sent(1000, 0)
    assert delivery.next_range() is None  # window full until an ack comes
    delivery.ack(500, 10)
    assert delivery.next_range() == (1001, 500)


def test_unacked_records_are_sent_again_on_a_live_connection_with_growing_timeouts() -> None:
    delivery = make(head=3)
    delivery.connection_up()
    delivery.mark_sent(3, 0)
    assert not delivery.check_timeout(9_999)
    assert delivery.deadline_ms() == 10_000
    assert delivery.check_timeout(10_000)
    assert delivery.next_range() == (1, 3)
    delivery.mark_sent(3, 10_000)
    assert delivery.deadline_ms() == 30_000  # the timeout doubled
    delivery.ack(3, 12_000)
    assert delivery.deadline_ms() is None
    assert delivery.timeout_ms == 10_000  # progress resets it


def test_a_reconnect_resends_everything_unacked() -> None:
    delivery = make(head=5)
    delivery.connection_up()
    delivery.mark_sent(5, 0)
    delivery.ack(2, 1)
    delivery.connection_down()
    delivery.connection_up()
    assert delivery.next_range() == (3, 3)


def test_stale_or_excessive_acks_do_not_move_backwards_or_past_the_head() -> None:
    delivery = make(head=5)
    delivery.connection_up()
    delivery.mark_sent(5, 0)
    assert delivery.ack(4, 1)
    assert not delivery.ack(2, 2)
    assert delivery.ack(99, 3)
    assert delivery.acked == 5


def test_a_lower_ack_is_believed_only_after_a_resend_for_lack_of_progress() -> None:
    delivery = make(head=10)
    delivery.connection_up()
    delivery.mark_sent(10, 0)
    assert delivery.ack(8, 1)
    assert not delivery.hub_behind(5), "a late ack (another hub worker's) is not a loss"
    assert not delivery.ack(5, 2)
    assert delivery.check_timeout(10_001)  # no progress for a whole timeout: everything unacked again
    delivery.mark_sent(10, 10_001)
    assert delivery.hub_behind(5), "the hub still says 5: it lost 6..8 (a restore from an older backup)"
    delivery.rewind(5)
    assert delivery.acked == 5
    assert delivery.next_range() == (6, 5)
    assert not delivery.hub_behind(3), "a rewind answers one stall"
    delivery.mark_sent(10, 10_002)
    assert delivery.ack(10, 10_003)
    assert delivery.deadline_ms() is None


def test_a_settled_terminal_checks_a_hub_that_came_online_and_believes_its_lower_answer() -> None:
    delivery = make(acked=10, head=10)
    assert not delivery.settled, "not connected"
    delivery.connection_up()
    assert delivery.settled
    delivery.checking_hub()  # seq 10 sent again
    assert delivery.hub_behind(7), "the hub answers 7 to seq 10: it lost 8..10"
    delivery.rewind(7)
    assert (delivery.acked, delivery.checking) == (7, False)
    assert delivery.next_range() == (8, 3)
    assert not delivery.settled


def test_an_answer_that_holds_the_watermark_ends_the_check() -> None:
    delivery = make(acked=10, head=10)
    delivery.connection_up()
    delivery.checking_hub()
    assert not delivery.ack(10, 1), "the hub still holds seq 10: no progress, and nothing lost"
    assert not delivery.checking
    assert not delivery.hub_behind(5), "a late lower ack after the answer is not a loss"
    delivery.checking_hub()
    delivery.connection_down()  # the answer may never come; the next connection checks again
    assert not delivery.checking
    assert not make(acked=0, head=0).settled, "no records: nothing to check with"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["append", "send", "ack", "tick", "down", "up", "check", "behind"]), st.integers(0, 50)
        ),
        max_size=200,
    )
)
def test_every_record_is_eventually_sent_after_the_last_ack(steps: list[tuple[str, int]]) -> None:
    """Model check: whatever happens, once connected the sender offers every unacked seq, in order."""
    delivery = make(window=7, batch_max=3, ack_timeout_ms=5, ack_timeout_max_ms=20)
    now = 0
    sent_this_connection: list[int] = []
    for action, value in steps:
        now += 1
        if action == "append":
            delivery.appended(delivery.head + 1)
        elif action == "send" and (span := delivery.next_range()):
            first, count = span
            assert first == delivery.sent + 1
            assert delivery.outstanding + count <= delivery.window
            sent_this_connection.extend(range(first, first + count))
            delivery.mark_sent(first + count - 1, now)
        elif action == "ack":
            delivery.ack(min(value, delivery.sent), now)
        elif action == "tick":
            now += value
            delivery.check_timeout(now)
        elif action == "down":
            delivery.connection_down()
        elif action == "up":
            delivery.connection_up()
        elif action == "check" and delivery.settled:  # a hub came online
            delivery.checking_hub()
        elif action == "behind" and delivery.hub_behind(value):  # a hub restored from an older backup
            delivery.rewind(value)
        assert delivery.acked <= delivery.sent <= delivery.head
    delivery.connection_up()
    offered: list[int] = []
    while span := delivery.next_range():
        offered.extend(range(span[0], span[0] + span[1]))
        delivery.mark_sent(span[0] + span[1] - 1, now)
        delivery.ack(span[0] + span[1] - 1, now)
    assert offered == list(range(offered[0], delivery.head + 1)) if offered else delivery.acked == delivery.head


def sent_up_to(head: int) -> Delivery:
    delivery = make(head=head)
    delivery.connection_up()
    delivery.mark_sent(head, 0)
    return delivery


def test_a_reported_gap_is_due_after_the_grace_and_only_what_is_still_missing() -> None:
    delivery = sent_up_to(10)
    delivery.ack(3, 0)
    delivery.held(8, 100)  # the hub holds 8.. but nothing in 4..7
    assert delivery.deadline_ms() == 100 + GAP_GRACE_MS
    assert delivery.gap_due(100 + GAP_GRACE_MS - 1) is None
    delivery.ack(5, 200)  # meanwhile 4..5 arrived (another worker): looked at again a grace later
    assert delivery.gap_due(100 + GAP_GRACE_MS) is None
    assert delivery.gap_due(100 + 2 * GAP_GRACE_MS) == (6, 7)  # what is still missing
    assert delivery.gap_due(10_000) is None  # once
    assert delivery.gaps == 1


def test_a_gap_past_what_was_sent_or_already_acked_is_no_gap() -> None:
    delivery = sent_up_to(10)
    delivery.ack(9, 0)
    delivery.held(10, 0)  # nothing missing below it
    assert delivery.gap_due(10_000) is None
    fresh = make(head=10)
    fresh.connection_up()  # nothing sent on this connection yet
    fresh.held(5, 0)
    assert fresh.gap_due(10_000) is None


def test_a_gap_dies_with_its_connection() -> None:
    delivery = sent_up_to(10)
    delivery.held(8, 0)
    delivery.connection_down()
    delivery.connection_up()
    assert delivery.gap_due(10_000) is None


def test_a_gap_is_looked_at_again_while_the_watermark_moves() -> None:
    delivery = sent_up_to(10)
    delivery.held(8, 0)  # nothing in 1..7, but the hub is working through a queue that holds them
    delivery.ack(3, 100)
    assert delivery.gap_due(GAP_GRACE_MS) is None  # it moved: not now
    assert delivery.gap_due(2 * GAP_GRACE_MS) == (4, 7)  # it stood still for a grace: sent again
