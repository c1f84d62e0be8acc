"""Commands to a terminal (`pingjia/v1/<device>/cmd`): from the clerk's PC, the queue system or the hub.

login <staff>     a clerk starts at this terminal
logout            the clerk leaves
invite [ticket]   请评价: ask the customer just served to rate (optionally naming the ticket)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from protocol import canonical, limits
from protocol.errors import DecodeError, Reason
from protocol.fields import Field, decode_fields, integer, text
from protocol.record import DEVICE_ID

__all__ = ["Command", "CommandName", "decode_command", "encode_command"]


class CommandName(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    INVITE = "invite"


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    device: str
    cmd: CommandName
    staff: str | None = None  # login only
    ticket: str | None = None  # invite only
    id: str | None = None  # the sender's reference, echoed in the terminal's log


_FIELDS: Final[dict[str, Field]] = {
    "v": integer(1, 1),
    "type": text(8),
    "device": Field(str, pattern=DEVICE_ID),
    "cmd": text(16, choices=frozenset(c.value for c in CommandName)),
    "staff": text(limits.MAX_ID_CHARS, required=False),
    "ticket": text(limits.MAX_TICKET_CHARS, required=False),
    "id": text(64, required=False),
}


def encode_command(command: Command) -> bytes:
    wire: dict[str, Any] = {"v": limits.VERSION, "type": "cmd", "device": command.device, "cmd": command.cmd.value}
    for name in ("staff", "ticket", "id"):
        if getattr(command, name) is not None:
            wire[name] = getattr(command, name)
    return canonical.encode(wire)


def decode_command(raw: bytes) -> Command:
    obj = decode_fields(raw, "cmd", _FIELDS)
    command = Command(
        device=obj["device"],
        cmd=CommandName(obj["cmd"]),
        staff=obj.get("staff"),
        ticket=obj.get("ticket"),
        id=obj.get("id"),
    )
    if (command.cmd is CommandName.LOGIN) != (command.staff is not None):
        raise DecodeError("login, and only login, names a staff member", reason=Reason.BAD_FIELD)
    if command.ticket is not None and command.cmd is not CommandName.INVITE:
        raise DecodeError("only invite carries a ticket", reason=Reason.BAD_FIELD)
    return command
