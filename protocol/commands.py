"""Commands to a terminal (`pingjia/v1/<device>/cmd`): from the clerk's PC, the queue system or the hub.

What each command does is data (`MEANING`), next to the names, so that the spec's table is drawn
from it; the fields are a `Field` table for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from protocol import canonical, limits
from protocol.fields import DEVICE_ID, Field, bad_field, decode_fields, envelope, matching, one_of, text

__all__ = ["COMMAND_FIELDS", "MEANING", "Command", "CommandName", "decode_command", "encode_command"]


class CommandName(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    INVITE = "invite"


MEANING: Final[dict[CommandName, str]] = {
    CommandName.LOGIN: (
        "a clerk (`staff`) starts at this terminal, in place of whoever was logged in; an open invitation "
        "of the previous clerk becomes a `timeout` record"
    ),
    CommandName.LOGOUT: "the clerk leaves: the terminal closes, and presses count for no one until the next login",
    CommandName.INVITE: (
        "请评价: the customer just served may rate, once, within the terminal's invite window (optionally "
        "naming the service `ticket`); refused while nobody is logged in"
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    device: str
    cmd: CommandName
    staff: str | None = None  # login only
    ticket: str | None = None  # invite only
    id: str | None = None  # the sender's reference, echoed in the terminal's log


COMMAND_FIELDS: Final[dict[str, Field]] = {
    **envelope("cmd"),
    "device": matching(DEVICE_ID, doc="the terminal the command is for: the topic's device"),
    "cmd": one_of((c.value for c in CommandName), doc="what to do (below)"),
    "staff": text(limits.MAX_ID_CHARS, required=False, doc="the clerk's staff id: on `login`, and only there"),
    "ticket": text(limits.MAX_TICKET_CHARS, required=False, doc="the queue system's service ticket: `invite` only"),
    "id": text(limits.MAX_ID_CHARS, required=False, doc="the sender's reference, written to the terminal's log"),
}


def encode_command(command: Command) -> bytes:
    wire: dict[str, Any] = {"v": limits.VERSION, "type": "cmd", "device": command.device, "cmd": command.cmd.value}
    for name in ("staff", "ticket", "id"):
        if getattr(command, name) is not None:
            wire[name] = getattr(command, name)
    return canonical.encode(wire)


def decode_command(raw: bytes) -> Command:
    obj = decode_fields(raw, "cmd", COMMAND_FIELDS)
    command = Command(
        device=obj["device"],
        cmd=CommandName(obj["cmd"]),
        staff=obj.get("staff"),
        ticket=obj.get("ticket"),
        id=obj.get("id"),
    )
    if (command.cmd is CommandName.LOGIN) != (command.staff is not None):
        raise bad_field("login, and only login, names a staff member", command.device)
    if command.ticket is not None and command.cmd is not CommandName.INVITE:
        raise bad_field("only invite carries a ticket", command.device)
    return command
