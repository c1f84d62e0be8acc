from __future__ import annotations

import random

import pytest

from runtime.mqtt import Backoff, parse_broker_url


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert delays[0] == 0.5  # the first ceiling is the floor
    assert max(delays[5:]) > 4.0
    assert len({round(d, 6) for d in delays[3:]}) == 7  # jitter: no two terminals in lockstep
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_broker_urls() -> None:
    assert str(parse_broker_url("mqtt://h:1884")) == "mqtt://h:1884"
    assert parse_broker_url("mqtt://h").port == 1883
    assert parse_broker_url("mqtt://h:2?protocol=3.1.1").protocol == "3.1.1"
    for bad in ("http://h:1", "mqtt://", "mqtt://h:99999", "mqtt://h:1?protocol=4"):
        with pytest.raises(ValueError, match="broker"):
            parse_broker_url(bad)


def test_the_hubs_backoff_keeps_probing_at_least_once_a_second_after_a_long_outage() -> None:
    from hub.config import HubConfig

    config = HubConfig()
    backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s, random.Random(7))
    delays = [backoff.next_delay() for _ in range(10_000)]  # hours of a broker away
    assert max(delays) <= config.reconnect_max_s <= 1.0
    assert max(delays[10:]) > 0.9 * config.reconnect_max_s  # capped, not stuck at the floor
