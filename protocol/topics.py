"""MQTT topics of the protocol (the layout is still `pingjia/v1/...` in v2): every topic, who publishes it, and how.

`ROUTES` (pingjia/v1/<device>/<channel>, one per channel) and `HUB_STATUS` (pingjia/hub/<client-id>/status)
hold it as data, QoS and retain flag included: protocol/spec.py draws the spec's topic table from them,
so the spec says what the code does. `parse` and `hub_status_client` turn a topic name back into its
parts, or refuse it (bad_topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from protocol.canonical import show
from protocol.errors import DecodeError, Reason
from protocol.fields import valid_device_id

__all__ = [
    "CLAIM_REPLY",
    "CLAIM_REQUEST",
    "CLAIM_REQUEST_FILTER",
    "HUB_STATUS",
    "HUB_STATUS_FILTER",
    "PREFIX",
    "QOS",
    "RETAINED",
    "ROUTES",
    "Channel",
    "Route",
    "claim_topics",
    "claim_user_of",
    "hub_filters",
    "hub_status_client",
    "hub_status_topic",
    "parse",
    "terminal_filters",
    "topic",
]

PREFIX: Final = "pingjia/v1"
_HUB_PREFIX: Final = "pingjia/hub"
HUB_STATUS_FILTER: Final = f"{_HUB_PREFIX}/+/status"


class Channel(StrEnum):
    RATINGS = "ratings"
    ACK = "ack"
    STATUS = "status"
    HEALTH = "health"
    EVENT = "event"
    CMD = "cmd"
    CONFIG = "config"
    CARD = "card"


@dataclass(frozen=True, slots=True)
class Route:
    """How one topic is used. `topic` names the variable level `<device>` or `<client-id>`."""

    topic: str
    direction: str
    payload: str
    qos: int
    retained: bool
    notes: str = ""


def _v1(channel: Channel) -> str:
    return f"{PREFIX}/<device>/{channel.value}"


ROUTES: Final[dict[Channel, Route]] = {
    Channel.RATINGS: Route(_v1(Channel.RATINGS), "terminal → hub", "batch", 1, False, "sent again until acked"),
    Channel.ACK: Route(
        _v1(Channel.ACK),
        "hub → terminal",
        "ack",
        0,
        False,
        "signed by the hub, after its commit; a lost ack costs a resend",
    ),
    Channel.STATUS: Route(
        _v1(Channel.STATUS),
        "terminal → all",
        "status",
        1,
        True,
        "signed by the terminal; the offline status is the will",
    ),
    Channel.HEALTH: Route(
        _v1(Channel.HEALTH),
        "terminal → hub",
        "health",
        1,
        True,
        "signed by the terminal; every heartbeat, and on changes",
    ),
    Channel.EVENT: Route(
        _v1(Channel.EVENT), "terminal → hub", "event", 1, False, "signed by the terminal; as they happen; not kept"
    ),
    Channel.CMD: Route(
        _v1(Channel.CMD),
        "hub → terminal",
        "cmd",
        1,
        False,
        "signed by the hub (the clerk's PC and queue system ask it)",
    ),
    Channel.CONFIG: Route(
        _v1(Channel.CONFIG), "hub → terminal", "config", 1, True, "signed by the hub; the latest version is kept"
    ),
    Channel.CARD: Route(
        _v1(Channel.CARD),
        "hub → terminal",
        "card",
        1,
        True,
        "signed by the hub: the card of the clerk logged in; the latest version is kept",
    ),
}
HUB_STATUS: Final = Route(
    f"{_HUB_PREFIX}/<client-id>/status",
    "hub → all",
    "status",
    1,
    retained=True,
    notes="signed by the hub; the hub's MQTT client id as `device`; the offline status is the will",
)
CLAIM_REQUEST: Final = Route(
    "pingjia/claim/<claim-user>/request",
    "terminal → hub",
    "claim",
    1,
    retained=False,
    notes="a terminal claiming its registration with a short-lived claim account (see Pairing; protocol/claim.py)",
)
CLAIM_REPLY: Final = Route(
    "pingjia/claim/<claim-user>/reply",
    "hub → terminal",
    "claimed",
    1,
    retained=False,
    notes="signed by the hub: the terminal's own broker account and the hub's keys",
)
CLAIM_REQUEST_FILTER: Final = "pingjia/claim/+/request"
QOS: Final[dict[Channel, int]] = {channel: route.qos for channel, route in ROUTES.items()}
RETAINED: Final = frozenset(channel for channel, route in ROUTES.items() if route.retained)


def topic(device: str, channel: Channel) -> str:
    if not valid_device_id(device):
        raise ValueError(f"device id {device!r} cannot be a topic level")
    return f"{PREFIX}/{device}/{channel.value}"


def parse(name: str) -> tuple[str, Channel]:
    """(device, channel) of a topic; DecodeError(bad_topic) if it is not a v1 topic."""
    parts = name.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != PREFIX or not valid_device_id(parts[2]):
        raise DecodeError(f"topic {show(name, 120)} is not {PREFIX}/<device>/<channel>", reason=Reason.BAD_TOPIC)
    try:
        channel = Channel(parts[3])
    except ValueError:
        raise DecodeError(
            f"topic channel {show(parts[3])} is not one of {[c.value for c in Channel]}",
            reason=Reason.BAD_TOPIC,
        ) from None
    return parts[2], channel


def terminal_filters(device: str) -> tuple[str, ...]:
    """Subscriptions of a terminal: its acks, commands, configuration and clerk's card, and every hub's status."""
    return (
        topic(device, Channel.ACK),
        topic(device, Channel.CMD),
        topic(device, Channel.CONFIG),
        topic(device, Channel.CARD),
        HUB_STATUS_FILTER,
    )


def claim_topics(claim_user: str) -> tuple[str, str]:
    """(request, reply) topics of a claim account."""
    if not valid_device_id(claim_user):
        raise ValueError(f"claim account {claim_user!r} cannot be a topic level")
    return f"pingjia/claim/{claim_user}/request", f"pingjia/claim/{claim_user}/reply"


def claim_user_of(name: str) -> str:
    """The claim account of a claim request topic; DecodeError(bad_topic) for any other topic."""
    parts = name.split("/")
    if len(parts) != 4 or parts[:2] != ["pingjia", "claim"] or parts[3] != "request" or not valid_device_id(parts[2]):
        raise DecodeError(f"topic {show(name, 120)} is not pingjia/claim/<claim-user>/request", reason=Reason.BAD_TOPIC)
    return parts[2]


def hub_status_client(name: str) -> str:
    """The hub client id of a hub status topic; DecodeError(bad_topic) for any other topic."""
    parts = name.split("/")
    if len(parts) != 4 or f"{parts[0]}/{parts[1]}" != _HUB_PREFIX or parts[3] != "status":
        raise DecodeError(f"topic {show(name, 120)} is not pingjia/hub/<client>/status", reason=Reason.BAD_TOPIC)
    if not valid_device_id(parts[2]):
        raise DecodeError(f"hub client id {show(parts[2])} is not valid", reason=Reason.BAD_TOPIC)
    return parts[2]


def hub_filters(share_group: str | None = None) -> tuple[str, ...]:
    """Subscriptions of a hub worker; with a group, as MQTT 5 shared subscriptions."""
    filters = tuple(f"{PREFIX}/+/{c.value}" for c in (Channel.RATINGS, Channel.STATUS, Channel.HEALTH, Channel.EVENT))
    if share_group is None:
        return filters
    return tuple(f"$share/{share_group}/{f}" for f in filters)


def hub_status_topic(client_id: str) -> str:
    """Where a hub worker says it is online (retained) and its will says offline."""
    if not valid_device_id(client_id):
        raise ValueError(f"hub client id {client_id!r} cannot be a topic level")
    return f"{_HUB_PREFIX}/{client_id}/status"
