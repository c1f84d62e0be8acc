"""MQTT topics of protocol v1, all under pingjia/v1/<device>/<channel>.

pingjia/v1/<device>/ratings   terminal -> hub   batch, QoS 1
pingjia/v1/<device>/ack       hub -> terminal   ack, QoS 1
pingjia/v1/<device>/status    terminal -> all   status, QoS 1, retained; the offline one is the will
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from protocol.canonical import show
from protocol.errors import DecodeError, Reason
from protocol.record import valid_device_id

__all__ = ["HUB_STATUS_FILTER", "PREFIX", "Channel", "hub_filters", "hub_status_topic", "parse", "topic"]

PREFIX: Final = "pingjia/v1"
HUB_STATUS_FILTER: Final = "pingjia/hub/+/status"


class Channel(StrEnum):
    RATINGS = "ratings"
    ACK = "ack"
    STATUS = "status"
    HEALTH = "health"
    EVENT = "event"
    CMD = "cmd"


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
    return f"pingjia/hub/{client_id}/status"
